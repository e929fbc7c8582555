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
</style></head><body><main>{}</main></body></html>",
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

/// The keys of the viewer, for the help overlay.
const KEYS: [(&str, &str); 16] = [
    ("1 – 5", "choose a label"),
    ("Enter", "confirm the read"),
    ("U", "undo a confirmed read (3 s)"),
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
    ("?", "this help"),
    ("Esc", "close help, stop drawing"),
];

/// The reading page: the image fills the window, the side panel holds everything else.
pub fn case(page: &CasePage<'_>) -> String {
    let CasePage {
        study,
        phase,
        step,
        position,
        total,
        case,
        csrf,
        ai,
    } = *page;
    let step_text = match step {
        Some(Step::Unaided) => {
            "<p id=\"step\" class=\"note\">First read: without the AI. The AI is shown after you confirm.</p>"
                .to_string()
        }
        Some(Step::Final) => {
            "<p id=\"step\" class=\"note\">Final read: with the AI (your first read is stored).</p>".to_string()
        }
        None => String::new(),
    };
    let overlay = match ai {
        Some(a) => {
            let negative = a.summary.starts_with("no visible fracture") || a.summary.starts_with("not assessable");
            format!(
                "<section id=\"ai-panel\"><div id=\"ai-overlay\" class=\"{}\"><span class=\"small\">AI (research, not for diagnosis)</span><br><b id=\"ai-verdict\">{}</b></div>\
<button type=\"button\" id=\"toggle-ai\" aria-pressed=\"true\">Hide AI boxes (A)</button></section>",
                if negative { "ai negative" } else { "ai positive" },
                escape(&a.summary)
            )
        }
        None => String::new(),
    };
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
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Reading — case {position} of {total}</title><style>{style}</style></head><body>
<div id="workstation">
<div id="stage"><canvas id="viewer" data-case="{case}"></canvas>
<div id="loading" class="veil">Loading the image…</div>
<div id="veil" class="veil" hidden>Paused — the clock is stopped. <button type="button" id="resume">Resume (P)</button></div>
<div id="help" class="veil" hidden><div><h2>Keys</h2><table>{keys}</table><p><button type="button" id="close-help">Close (Esc)</button></p></div></div>
<div id="wl" class="hud"></div></div>
<aside id="panel">
<p><b>{study}</b><br><span id="phase">Phase {phase}</span> · <span id="progress">Case {position} of {total}</span></p>
{step_text}{overlay}
<form method="post" action="/read" id="readform"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="phase" value="{phase}">
<input type="hidden" name="case" value="{case}"><input type="hidden" name="step" value="{step_attr}"><input type="hidden" name="bbox" id="bbox" value=""><input type="hidden" name="label" id="label" value="">
<div id="labels">{buttons}</div>
<p id="choice" aria-live="polite">Choose a label (1–5).</p><p id="warning" role="alert"></p>
<p><button type="submit" id="confirm" disabled>Confirm (Enter)</button></p>
<p id="undo" hidden>Storing in <span id="countdown">3</span> s — <button type="button" id="undo-button">Undo (U)</button></p></form>
<div class="tools"><button type="button" id="drawbox" aria-pressed="false">Draw box (B)</button><button type="button" id="deletebox" disabled>Delete box (Del)</button>
<button type="button" id="fit">Fit (=)</button><button type="button" id="reset">Reset (R)</button><button type="button" id="invert" aria-pressed="false">Invert (I)</button>
<button type="button" id="preset">Window: auto (W)</button><button type="button" id="pause">Pause (P)</button><button type="button" id="show-help">Keys (?)</button></div>
<p class="small">Wheel: zoom · drag: pan · right- or shift-drag: window/level</p>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">Log out</button></form>
</aside></div>
<script type="application/json" id="reader-data">{{"case":{case},"boxes":{boxes},"styles":{styles}}}</script>
<script src="/reader.js"></script></body></html>"#,
        style = READER_STYLE,
        study = escape(study),
        phase = escape(phase),
        csrf = escape(csrf),
    )
}

/// The reading page's style: the image fills everything but a fixed side panel; a dark
/// surround; nothing scrolls but the panel's own content.
const READER_STYLE: &str = "html,body{height:100%;margin:0;background:#000;color:#eee;font-family:sans-serif;overflow:hidden}\
#workstation{display:grid;grid-template-columns:1fr 330px;height:100vh;width:100vw}\
#stage{position:relative;overflow:hidden;background:#000;min-width:0}#viewer{position:absolute;inset:0;width:100%;height:100%;cursor:grab;display:block}\
#panel{background:#181818;border-left:1px solid #333;padding:.6em .8em;overflow-y:auto;font-size:14px}\
.veil{position:absolute;inset:0;display:flex;align-items:center;justify-content:center;background:#000;font-size:1.3em;text-align:center}\
.veil[hidden]{display:none}.hud{position:absolute;left:.6em;bottom:.5em;font:13px monospace;color:#ccc;text-shadow:0 0 3px #000}\
#labels{display:flex;flex-direction:column;gap:.3em}button{font-size:1em;padding:.45em .7em;margin:.15em 0;background:#2a2a2a;color:#eee;border:1px solid #555;border-radius:4px}\
button:disabled{opacity:.45}button[aria-pressed=true]{background:#0b5;border-color:#3f8;color:#000;font-weight:bold}\
#confirm:not(:disabled){background:#06c;border-color:#39f}.tools{display:flex;flex-wrap:wrap;gap:.3em}\
.ai{padding:.6em;margin:.4em 0;border-radius:4px}.ai.positive{background:#402a00;border-left:6px solid #e69f00}.ai.negative{background:#003040;border-left:6px solid #56b4e9}\
#ai-verdict{font-size:1.25em}.small{font-size:.85em;color:#aaa}.note{background:#222;padding:.4em;border-left:4px solid #999}#warning{color:#fc6}\
kbd{border:1px solid #777;border-radius:3px;padding:0 .3em;font-size:.85em}#help table{margin:auto}#help td{padding:.2em .8em;text-align:left}";
