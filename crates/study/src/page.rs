//! HTML of the workstation's pages (no external assets: works offline in a reading room).

use crate::ai::AiOverlay;
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
    let error = error.map(|e| format!("<p role=\"alert\" style=\"color:#f88\">{}</p>", escape(e))).unwrap_or_default();
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

/// The class colours of the overlays (the palette of `hipfrac-imaging`), as a JSON object by code.
fn colours() -> String {
    let map: serde_json::Map<String, serde_json::Value> = FractureClass::ALL.iter().map(|&c| (c.code().to_string(), hipfrac_imaging::css_colour(c).into())).collect();
    script_json(&serde_json::Value::Object(map).to_string())
}

/// The reading page.
pub fn case(page: &CasePage<'_>) -> String {
    let CasePage { study, phase, position, total, case, csrf, ai } = *page;
    let overlay = ai.map(|a| format!("<div id=\"ai-overlay\"><b>AI:</b> {}</div>", escape(&a.summary))).unwrap_or_default();
    let boxes = script_json(ai.map_or("[]", |a| a.boxes.as_str()));
    let colours = colours();
    let buttons: String = Label::ALL
        .iter()
        .map(|l| format!("<button type=\"submit\" name=\"label\" value=\"{code}\" id=\"label-{code}\">{code} — {name}</button>", code = l.code(), name = escape(l.full_name())))
        .collect();
    layout(
        "Reading",
        &format!(
            r#"<div class="bar"><b>{study}</b><span id="phase">Phase {phase}</span><span id="progress">Case {position} of {total}</span>
<span>Wheel: zoom · drag: pan · right-drag: window/level · <button type="button" id="drawbox">Draw box</button> <button type="button" id="reset">Reset view</button></span>
<form method="post" action="/logout" style="display:inline"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">Log out</button></form></div>
{overlay}
<canvas id="viewer" width="900" height="700" data-case="{case}"></canvas>
<form method="post" action="/read" id="readform"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="phase" value="{phase_attr}">
<input type="hidden" name="case" value="{case}"><input type="hidden" name="bbox" id="bbox" value=""><div class="bar">{buttons}</div></form>
<script type="application/json" id="reader-data">{{"case":{case},"boxes":{boxes},"colours":{colours}}}</script>
<script src="/reader.js"></script>"#,
            study = escape(study),
            phase = escape(phase),
            phase_attr = escape(phase),
            csrf = escape(csrf),
        ),
    )
}
