//! HTML of the workstation's pages (no external assets: works offline in a reading room).

use crate::ai::AiOverlay;
use crate::config::Step;
use hipfrac_core::{escape_html as escape, FractureClass, Label};

pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
body{{font-family:sans-serif;margin:0;background:#111;color:#eee}}main{{padding:1em}}a{{color:#8cf}}\
table{{border-collapse:collapse}}td,th{{border:1px solid #555;padding:3px 8px}}\
button{{font-size:1em;margin:.2em;padding:.4em .8em}}#viewer{{background:#000;cursor:grab;display:block}}\
.bar{{display:flex;gap:1em;align-items:center;flex-wrap:wrap;padding:.4em}}#ai-overlay{{background:#332;padding:.4em;border-left:4px solid #e69f00}}\
</style></head><body><main>{}</main><script src=\"/local-time.js\"></script></body></html>",
        escape(title),
        body
    )
}

/// The log-out button (every page of a logged-in person carries it).
pub fn logout(csrf: &str) -> String {
    format!("<form method=\"post\" action=\"/logout\" id=\"logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Log out</button></form>", escape(csrf))
}

pub fn login(study: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p role=\"alert\" style=\"color:#f88\">{}</p>", escape(e)))
        .unwrap_or_default();
    layout(
        "Log in",
        &format!(
            "<h1>{}</h1>{error}<form method=\"post\" action=\"/login\"><p><label>Name <input id=\"name\" name=\"name\" autocomplete=\"username\"></label></p>\
<p><label>Password <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\"></label></p><p><button id=\"login\" type=\"submit\">Log in</button></p></form>",
            escape(study)
        ),
    )
}

/// What the reading page shows.
pub struct CasePage<'a> {
    pub study: &'a str,
    pub phase: &'a str,
    /// The phase's place in the study (0-based): each phase is drawn in its own colour.
    pub phase_number: usize,
    /// Whether the phase shows the AI.
    pub phase_ai: bool,
    /// In a sequential phase, which read is open.
    pub step: Option<Step>,
    /// 1-based position of the case in the reader's order, and the number of cases.
    pub position: usize,
    pub total: usize,
    /// The case's number (its image is `/image/{case}`).
    pub case: usize,
    pub csrf: &'a str,
    /// The AI's overlay, in AI phases only.
    pub ai: Option<&'a AiOverlay>,
    /// The case after this one in the reader's order (its image may be fetched ahead).
    pub next: Option<usize>,
}

/// JSON for a `<script>` element: `<` is escaped so no value can close the element.
fn script_json(json: &str) -> String {
    json.replace('<', "\\u003c")
}

/// How each class is drawn (colour-blind-safe palette of `hipfrac-imaging`, and a line
/// pattern per class so that no two classes rely on colour alone), as JSON by code.
fn styles() -> String {
    let dash = |c: FractureClass| match c {
        FractureClass::DisplacedNeck => serde_json::json!([]),
        FractureClass::ValgusImpactedNeck => serde_json::json!([10, 5]),
        FractureClass::StableIntertrochanteric => serde_json::json!([3, 4]),
        FractureClass::UnstableIntertrochanteric => serde_json::json!([12, 4, 3, 4]),
    };
    let map: serde_json::Map<String, serde_json::Value> = FractureClass::ALL
        .iter()
        .map(|&c| {
            (
                c.code().to_string(),
                serde_json::json!({"colour": hipfrac_imaging::css_colour(c), "dash": dash(c), "name": c.full_name()}),
            )
        })
        .collect();
    script_json(&serde_json::Value::Object(map).to_string())
}

/// Seconds a confirmed read can be taken back (U) while the next case is already shown.
pub const UNDO_SECONDS: u32 = 3;

/// The keys of the viewer, for the help overlay.
const KEYS: [(&str, &str); 16] = [
    ("1 – 5", "choose a label"),
    ("Enter", "confirm the read"),
    (
        "U",
        "undo the read just confirmed, while the countdown runs: back to its case",
    ),
    ("B", "draw a box (drag on the image)"),
    ("Delete", "delete your box"),
    ("wheel, + / −", "zoom"),
    ("=", "fit the image to the window"),
    ("drag", "pan"),
    ("right-drag or shift-drag", "window / level"),
    ("W", "next window preset"),
    ("I", "invert"),
    ("R", "reset view and window"),
    ("A", "hide / show the AI"),
    ("P", "pause (the clock stops)"),
    ("?", "this help (the clock stops while it is open)"),
    ("Esc", "close help, stop drawing"),
];

/// The reading page: the image fills the window, the side panel holds everything else.
pub fn case(page: &CasePage<'_>) -> String {
    let CasePage {
        study,
        phase,
        phase_number,
        phase_ai,
        step,
        position,
        total,
        case,
        csrf,
        ai,
        next,
    } = *page;
    let (step_text, mode) = match step {
        Some(Step::Unaided) => (
            "<p id=\"step\" class=\"note\">First read: without the AI. The AI is shown after you confirm.</p>",
            "first read, without AI",
        ),
        Some(Step::Final) => (
            "<p id=\"step\" class=\"note\">Final read: with the AI (your first read is stored).</p>",
            "final read, with AI",
        ),
        None if phase_ai => ("", "with AI"),
        None => ("", "without AI"),
    };
    let overlay = match ai {
        Some(a) => {
            let marks: String = a
                .mark_lines
                .iter()
                .map(|line| format!("<li>{}</li>", escape(line)))
                .collect();
            let marks = if marks.is_empty() {
                "<p id=\"ai-marks\" class=\"small\">No mark on the image.</p>".to_string()
            } else {
                format!("<p class=\"small\">Marks on the image (type and score):</p><ol id=\"ai-marks\">{marks}</ol>")
            };
            format!(
                "<section id=\"ai-panel\"><div id=\"ai-overlay\" class=\"ai {kind}\"><span class=\"small\">AI (research, not for diagnosis)</span><br><b id=\"ai-verdict\">{headline}</b>\
<p id=\"ai-detail\">{detail}</p>{marks}<p class=\"small\" id=\"ai-words\">Likely: the score passed the AI's fracture threshold. Possible: only its lower flagging threshold; the AI is unsure.</p></div>\
<button type=\"button\" id=\"toggle-ai\" class=\"toggle\" aria-pressed=\"true\">Hide the AI marks (A)</button></section>",
                kind = a.kind,
                headline = escape(&a.headline),
                detail = escape(&a.detail),
            )
        }
        None => String::new(),
    };
    let marks = script_json(ai.map_or("[]", |a| a.marks.as_str()));
    let boxes = script_json(ai.map_or("[]", |a| a.boxes.as_str()));
    let styles = styles();
    let buttons: String = Label::ALL
        .iter()
        .enumerate()
        .map(|(k, l)| {
            format!(
                "<button type=\"button\" class=\"label\" data-label=\"{code}\" data-fracture=\"{fracture}\" id=\"label-{code}\" aria-pressed=\"false\" disabled><kbd>{key}</kbd> {code} — {name}</button>",
                code = l.code(),
                name = escape(l.full_name()),
                key = k + 1,
                fracture = matches!(l, Label::Fracture(_)),
            )
        })
        .collect();
    let keys: String = KEYS
        .iter()
        .map(|(k, what)| format!("<tr><td><kbd>{}</kbd></td><td>{}</td></tr>", escape(k), escape(what)))
        .collect();
    let step_attr = step.unwrap_or(Step::Final).as_str();
    let colour = phase_number % PHASE_COLOURS;
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Reading — phase {phase}, case {position} of {total}</title><style>{style}</style></head><body>
<div id="workstation">
<div id="stage"><canvas id="viewer" data-case="{case}"></canvas>
<div id="loading" class="veil">Loading the image…</div>
<div id="veil" class="veil" hidden>Paused — the clock is stopped. <button type="button" id="resume">Resume (P)</button></div>
<div id="help" class="veil" hidden><div><h2>Keys</h2><p>The clock is stopped while this help is open; reads wait until it is closed.</p><table>{keys}</table><p><button type="button" id="close-help">Close (Esc)</button></p></div></div>
<div id="wl" class="hud"></div></div>
<aside id="panel">
<div id="phase-banner" class="phase-{colour}"><span id="phase">Phase {phase}</span><span id="mode">{mode}</span></div>
<p id="undo" hidden><span id="undo-what"></span> <button type="button" id="undo-button">Undo (U) · <span id="countdown">{undo}</span> s</button></p>
<p><b>{study}</b><br><span id="progress">Case {position} of {total}</span></p>
{step_text}{overlay}
<form method="post" action="/read" id="readform"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="phase" value="{phase}">
<input type="hidden" name="case" value="{case}"><input type="hidden" name="step" value="{step_attr}"><input type="hidden" name="bbox" id="bbox" value=""><input type="hidden" name="label" id="label" value="">
<div id="labels">{buttons}</div>
<p id="choice" aria-live="polite">Choose a label (1–5).</p><p id="warning" role="alert"></p>
<p><button type="submit" id="confirm" disabled>Confirm (Enter)</button></p></form>
<div class="tools"><button type="button" id="drawbox" aria-pressed="false">Draw box (B)</button><button type="button" id="deletebox" disabled>Delete box (Del)</button>
<button type="button" id="fit">Fit (=)</button><button type="button" id="reset">Reset (R)</button><button type="button" id="invert" aria-pressed="false">Invert (I)</button>
<button type="button" id="preset">Window (W)</button><button type="button" id="pause">Pause (P)</button><button type="button" id="show-help">Keys (?)</button></div>
<p class="small">Wheel: zoom · drag: pan · right- or shift-drag: window/level</p>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">Log out</button></form>
<script type="application/json" id="reader-data">{{"case":{case},"next":{next},"undo_seconds":{undo},"marks":{marks},"boxes":{boxes},"styles":{styles}}}</script>
</aside></div>
<script src="/reader.js"></script></body></html>"#,
        style = READER_STYLE,
        study = escape(study),
        phase = escape(phase),
        csrf = escape(csrf),
        undo = UNDO_SECONDS,
        next = next.map_or("null".to_string(), |n| n.to_string()),
    )
}

/// Phases are told apart by colour as well as by name (see `.phase-N` in the style).
const PHASE_COLOURS: usize = 4;

/// The reading page's style: the image fills everything but a fixed side panel; a dark
/// surround; nothing scrolls but the panel's own content.
const READER_STYLE: &str = "html,body{height:100%;margin:0;background:#000;color:#eee;font-family:sans-serif;overflow:hidden}\
#workstation{display:grid;grid-template-columns:1fr 330px;height:100vh;width:100vw}\
#stage{position:relative;overflow:hidden;background:#000;min-width:0}#viewer{position:absolute;inset:0;width:100%;height:100%;cursor:grab;display:block}\
#panel{background:#181818;border-left:1px solid #333;padding:.6em .8em;overflow-y:auto;font-size:14px}\
.veil{position:absolute;inset:0;display:flex;align-items:center;justify-content:center;background:#000;font-size:1.3em;text-align:center}\
.veil[hidden]{display:none}.hud{position:absolute;left:.6em;bottom:.5em;font:13px monospace;color:#ddd;background:rgba(0,0,0,.75);padding:.15em .5em;border-radius:3px}\
#phase-banner{display:flex;flex-direction:column;padding:.35em .6em;margin:-.6em -.8em .5em;border-bottom:3px solid #fff3}\
#phase{font-size:26px;font-weight:bold;letter-spacing:.04em}#mode{font-size:15px;text-transform:uppercase;letter-spacing:.08em}\
.phase-0{background:#1d3f6e}.phase-1{background:#5c2d6e}.phase-2{background:#6e4a12}.phase-3{background:#145c4c}\
#undo{background:#333;padding:.4em;border-left:4px solid #fc6}\
#labels{display:flex;flex-direction:column;gap:.2em}button{font-size:1em;padding:.3em .6em;margin:.1em 0;background:#2a2a2a;color:#eee;border:1px solid #555;border-radius:4px}\
button:disabled{opacity:.45}button[aria-pressed=true]{background:#0b5;border-color:#3f8;color:#000;font-weight:bold}\
button.toggle,button.toggle[aria-pressed=true]{background:transparent;border:1px dashed #999;color:#ddd;font-weight:normal}\
#confirm:not(:disabled){background:#06c;border-color:#39f}.tools{display:flex;flex-wrap:wrap;gap:.3em}\
.ai{padding:.4em .6em;margin:.3em 0;border-radius:4px;background:#222;border-left:6px solid #888}\
.ai.likely{background:#4a1d00;border-left-color:#d55e00}.ai.likely #ai-verdict{color:#ffb27a}\
.ai.possible{border-left:6px dashed #bbb}.ai.possible #ai-verdict{color:#ddd;font-weight:normal;font-style:italic}\
.ai.none #ai-verdict,.ai.not-assessable #ai-verdict{color:#ccc;font-weight:normal}\
#ai-verdict{font-size:1.2em}#ai-detail{margin:.2em 0}#ai-marks{margin:.1em 0;padding-left:1.4em}#ai-words{margin:.2em 0}#panel p{margin:.4em 0}\
.small{font-size:.85em;color:#aaa}.note{background:#222;padding:.4em;border-left:4px solid #999}#warning{color:#fc6}\
kbd{border:1px solid #777;border-radius:3px;padding:0 .3em;font-size:.85em}#help table{margin:auto}#help td{padding:.2em .8em;text-align:left}";
