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
<script>
const boxes = {boxes};
const canvas = document.getElementById('viewer'), ctx = canvas.getContext('2d');
let img = null, w = 0, h = 0, lo = 0, hi = 1, zoom = 1, px = 0, py = 0, drawing = false, box = null, drag = null;
const colours = {colours};
fetch('/image/{case}', {{credentials:'same-origin'}}).then(r => {{ if (!r.ok) throw new Error(r.status); return r.arrayBuffer(); }}).then(buf => {{
  const head = new DataView(buf, 0, 8); w = head.getUint32(0, true); h = head.getUint32(4, true);
  img = new Uint16Array(buf, 8, w * h);
  const sorted = Array.from(img).sort((a, b) => a - b); lo = sorted[Math.floor(sorted.length * 0.01)]; hi = sorted[Math.floor(sorted.length * 0.99)]; if (hi <= lo) hi = lo + 1;
  fit(); render();
}});
function fit() {{ zoom = Math.min(canvas.width / w, canvas.height / h); px = (canvas.width - w * zoom) / 2; py = (canvas.height - h * zoom) / 2; }}
let bitmap = null;
function render() {{
  if (!img) return;
  const data = new ImageData(w, h);
  for (let i = 0; i < w * h; i++) {{ let v = (img[i] - lo) * 255 / (hi - lo); v = v < 0 ? 0 : v > 255 ? 255 : v; data.data[4*i] = data.data[4*i+1] = data.data[4*i+2] = v; data.data[4*i+3] = 255; }}
  createImageBitmap(data).then(b => {{ bitmap = b; paint(); }});
}}
function paint() {{
  ctx.setTransform(1, 0, 0, 1, 0, 0); ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!bitmap) return;
  ctx.setTransform(zoom, 0, 0, zoom, px, py); ctx.imageSmoothingEnabled = zoom < 1; ctx.drawImage(bitmap, 0, 0);
  ctx.lineWidth = 2 / zoom; ctx.font = (14 / zoom) + 'px sans-serif';
  for (const b of boxes) {{ ctx.strokeStyle = ctx.fillStyle = colours[b.class] || '#fff'; ctx.strokeRect(b.bbox[0], b.bbox[1], b.bbox[2] - b.bbox[0], b.bbox[3] - b.bbox[1]); ctx.fillText(b.class + ' ' + b.score.toFixed(2), b.bbox[0], b.bbox[1] - 3 / zoom); }}
  if (box) {{ ctx.strokeStyle = '#fff'; ctx.setLineDash([6 / zoom, 4 / zoom]); ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]); ctx.setLineDash([]); }}
}}
const toImage = e => {{ const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left - px) / zoom, (e.clientY - r.top - py) / zoom]; }};
canvas.addEventListener('wheel', e => {{ e.preventDefault(); const [x, y] = toImage(e); const f = e.deltaY < 0 ? 1.2 : 1 / 1.2; zoom *= f; px -= x * zoom * (1 - 1 / f); py -= y * zoom * (1 - 1 / f); paint(); }});
canvas.addEventListener('contextmenu', e => e.preventDefault());
canvas.addEventListener('mousedown', e => {{ drag = {{x: e.clientX, y: e.clientY, px, py, lo, hi, button: e.button, start: toImage(e)}}; }});
window.addEventListener('mouseup', () => {{ if (drag && drawing && box) {{ document.getElementById('bbox').value = box.map(v => Math.round(Math.max(0, v))).join(','); drawing = false; }} drag = null; }});
window.addEventListener('mousemove', e => {{
  if (!drag) return; const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
  if (drawing && drag.button === 0) {{ const [x, y] = toImage(e); const s = drag.start; box = [Math.min(s[0], x), Math.min(s[1], y), Math.max(s[0], x), Math.max(s[1], y)]; paint(); }}
  else if (drag.button === 2 || e.shiftKey) {{ const width = (drag.hi - drag.lo) * Math.exp(dx / 200), centre = (drag.hi + drag.lo) / 2 + dy * (drag.hi - drag.lo) / 400; lo = centre - width / 2; hi = centre + width / 2; render(); }}
  else {{ px = drag.px + dx; py = drag.py + dy; paint(); }}
}});
document.getElementById('drawbox').addEventListener('click', () => {{ drawing = true; }});
document.getElementById('reset').addEventListener('click', () => {{ fit(); paint(); }});
</script>"#,
            study = escape(study),
            phase = escape(phase),
            phase_attr = escape(phase),
            csrf = escape(csrf),
        ),
    )
}
