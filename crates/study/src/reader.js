// The reading workstation's viewer: the image (16-bit modality values) filling its area, zoom,
// pan, window/level with presets and invert, the reader's box, the AI's boxes (present only
// when the page carries them), a two-step read (choose, confirm, a few seconds to undo) and
// the reading clock's events (drawn, pause, resume). Served as /reader.js so the page needs no
// inline script (Content-Security-Policy: script-src 'self'). Keys: see the help overlay (?).
'use strict';
const page = JSON.parse(document.getElementById('reader-data').textContent);
const boxes = page.boxes, styles = page.styles;
const $ = id => document.getElementById(id);
const stage = $('stage'), canvas = $('viewer'), ctx = canvas.getContext('2d'), form = $('readform');
const labelButtons = Array.from(document.querySelectorAll('button.label'));
const UNDO_SECONDS = 3;
let img = null, w = 0, h = 0, lo = 0, hi = 1, zoom = 1, px = 0, py = 0, moved = false;
let invert = false, presets = [], preset = 0, aiVisible = true;
let drawing = false, box = null, drag = null, bitmap = null;
let drawn = false, paused = false, chosen = null, warned = false, pending = null, submitted = false;

// --- the clock's events: the server times the read from its own clock -----------------------
function post(event) {
  const body = new URLSearchParams({csrf: form.csrf.value, phase: form.phase.value, case: form.case.value, step: form.step.value, event});
  return fetch('/event', {method: 'POST', credentials: 'same-origin', body}).then(r => {
    // The login ended (logged out elsewhere, or idle): back to the login page.
    if (r.status === 401) { window.location.href = '/login'; throw new Error('logged out'); }
    if (!r.ok) throw new Error('HTTP ' + r.status);
  });
}
function say(id, text) { $(id).textContent = text; }
function fail(text) { const l = $('loading'); l.hidden = false; l.textContent = text + ' Nothing was stored; reload the page (F5) to try again.'; }

// --- the image ------------------------------------------------------------------------------
fetch('/image/' + page.case, {credentials: 'same-origin'}).then(r => { if (!r.ok) throw new Error('HTTP ' + r.status); return r.arrayBuffer(); }).then(buf => {
  const head = new DataView(buf, 0, 8); w = head.getUint32(0, true); h = head.getUint32(4, true);
  img = new Uint16Array(buf, 8, w * h);
  const sorted = Uint16Array.from(img).sort();
  const at = q => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
  presets = [['auto', at(0.01), at(0.99)], ['full range', sorted[0], sorted[sorted.length - 1]], ['high contrast', at(0.2), at(0.9)]]
    .map(([name, a, b]) => ({name, lo: a, hi: b > a ? b : a + 1}));
  applyPreset(0); resize(); fit();
  return render();
}).then(() => post('drawn')).then(() => {
  // Only now, with the image on the screen and the clock started, can a read be given.
  drawn = true; $('loading').hidden = true; enable();
}).catch(e => fail('The image could not be shown (' + e.message + ').'));

function applyPreset(k) { preset = k; lo = presets[k].lo; hi = presets[k].hi; say('preset', 'Window: ' + presets[k].name + ' (W)'); }
function resize() {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(stage.clientWidth * dpr)); canvas.height = Math.max(1, Math.round(stage.clientHeight * dpr));
  if (!moved) fit();
  paint();
}
new ResizeObserver(resize).observe(stage);
function fit() { if (!w) return; zoom = Math.min(canvas.width / w, canvas.height / h); px = (canvas.width - w * zoom) / 2; py = (canvas.height - h * zoom) / 2; moved = false; }
function render() {
  if (!img) return Promise.resolve();
  const data = new ImageData(w, h), d = data.data, scale = 255 / (hi - lo);
  for (let i = 0, j = 0; i < img.length; i++, j += 4) {
    let v = (img[i] - lo) * scale; v = v < 0 ? 0 : v > 255 ? 255 : v; if (invert) v = 255 - v;
    d[j] = d[j + 1] = d[j + 2] = v; d[j + 3] = 255;
  }
  return createImageBitmap(data).then(b => { bitmap = b; paint(); });
}
function hud() {
  const centre = Math.round((lo + hi) / 2), width = Math.round(hi - lo);
  say('wl', `C ${centre}  W ${width}  ·  ${Math.round(zoom * 100 / (window.devicePixelRatio || 1))} %${invert ? '  ·  inverted' : ''}${boxes.length && !aiVisible ? '  ·  AI hidden (A)' : ''}`);
}
function paint() {
  ctx.setTransform(1, 0, 0, 1, 0, 0); ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!bitmap) return;
  ctx.setTransform(zoom, 0, 0, zoom, px, py); ctx.imageSmoothingEnabled = zoom < 1; ctx.drawImage(bitmap, 0, 0);
  const line = 2.5 / zoom, text = 15 / zoom;
  ctx.lineWidth = line; ctx.font = `bold ${text}px sans-serif`;
  if (aiVisible) {
    // Labels never overlap: each goes above its box, moved down past labels already placed.
    const placed = [];
    for (const b of boxes) {
      const s = styles[b.class] || {colour: '#fff', dash: [], name: b.class};
      ctx.strokeStyle = ctx.fillStyle = s.colour; ctx.setLineDash(s.dash.map(v => v / zoom));
      ctx.strokeRect(b.bbox[0], b.bbox[1], b.bbox[2] - b.bbox[0], b.bbox[3] - b.bbox[1]); ctx.setLineDash([]);
      const label = `AI ${b.class} ${b.score.toFixed(2)}`, tw = ctx.measureText(label).width;
      let x = b.bbox[0], y = b.bbox[1] - 4 / zoom;
      while (placed.some(p => x < p.x + p.w && p.x < x + tw && Math.abs(p.y - y) < text * 1.1)) y += text * 1.2;
      placed.push({x, y, w: tw});
      ctx.fillStyle = 'rgba(0,0,0,.7)'; ctx.fillRect(x - 2 / zoom, y - text, tw + 4 / zoom, text * 1.2);
      ctx.fillStyle = s.colour; ctx.fillText(label, x, y);
    }
  }
  if (box) { ctx.strokeStyle = '#fff'; ctx.setLineDash([6 / zoom, 4 / zoom]); ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]); ctx.setLineDash([]); }
  hud();
}

// --- the read: choose, confirm, undo ----------------------------------------------------------
function busy() { return !drawn || paused || pending !== null || submitted; }
function enable() {
  for (const b of labelButtons) b.disabled = busy();
  $('confirm').disabled = busy() || chosen === null;
  $('deletebox').disabled = box === null || busy();
}
function choose(button) {
  if (busy() || !button) return;
  chosen = button; warned = false; say('warning', '');
  for (const b of labelButtons) b.setAttribute('aria-pressed', String(b === button));
  form.label.value = button.dataset.label;
  say('choice', 'Chosen: ' + button.textContent.replace(/^\s*\d\s*/, '') + ' — confirm with Enter.');
  enable();
}
for (const b of labelButtons) b.addEventListener('click', () => choose(b));
function confirmRead() {
  if (busy() || chosen === null) return;
  if (chosen.dataset.fracture === 'true' && box === null && !warned) {
    warned = true;
    say('warning', 'No box drawn for a fracture: draw one (B), or press Enter again to confirm without a box.');
    return;
  }
  // What is stored is what the screen shows now: the chosen label and the box as drawn; the
  // reading time ends now (the server's clock), not when the undo window closes.
  form.bbox.value = box ? box.join(',') : '';
  let left = UNDO_SECONDS;
  $('undo').hidden = false; say('countdown', String(left));
  pending = setInterval(() => {
    left -= 1; say('countdown', String(Math.max(left, 0)));
    if (left <= 0) {
      clearInterval(pending); submitted = true; $('undo').hidden = true; say('choice', 'Storing…');
      HTMLFormElement.prototype.submit.call(form);
    }
  }, 1000);
  post('confirm').catch(() => {});
  enable();
}
function undo() {
  if (pending === null || submitted) return;
  clearInterval(pending); pending = null; $('undo').hidden = true;
  post('undo').catch(() => {});
  say('choice', 'Not stored. Choose a label (1–5).');
  enable();
}
form.addEventListener('submit', e => { e.preventDefault(); confirmRead(); });
$('undo-button').addEventListener('click', undo);

// --- pause: the veil hides the image and the clock stops -----------------------------------------
function togglePause() {
  if (!drawn || pending !== null) return;
  const next = !paused;
  post(next ? 'pause' : 'resume').then(() => { paused = next; $('veil').hidden = !paused; say('pause', paused ? 'Resume (P)' : 'Pause (P)'); enable(); })
    .catch(e => say('warning', 'The pause was not recorded (' + e.message + ').'));
}
$('pause').addEventListener('click', togglePause); $('resume').addEventListener('click', togglePause);

// --- tools ----------------------------------------------------------------------------------------
function setDrawing(on) { drawing = on; $('drawbox').setAttribute('aria-pressed', String(on)); canvas.style.cursor = on ? 'crosshair' : 'grab'; }
function deleteBox() { if (busy()) return; box = null; form.bbox.value = ''; enable(); paint(); }
function zoomBy(f, cx, cy) { const x = (cx - px) / zoom, y = (cy - py) / zoom; zoom *= f; px = cx - x * zoom; py = cy - y * zoom; moved = true; paint(); }
function reset() { applyPreset(0); invert = false; $('invert').setAttribute('aria-pressed', 'false'); fit(); render(); }
function toggleInvert() { invert = !invert; $('invert').setAttribute('aria-pressed', String(invert)); render(); }
function nextPreset() { if (presets.length) { applyPreset((preset + 1) % presets.length); render(); } }
function toggleAi() {
  if (!boxes.length && !$('toggle-ai')) return;
  aiVisible = !aiVisible;
  const t = $('toggle-ai'); if (t) { t.setAttribute('aria-pressed', String(aiVisible)); t.textContent = aiVisible ? 'Hide AI boxes (A)' : 'Show AI boxes (A)'; }
  paint();
}
function help(show) { $('help').hidden = !show; }
$('drawbox').addEventListener('click', () => { if (!busy()) setDrawing(!drawing); });
$('deletebox').addEventListener('click', deleteBox);
$('fit').addEventListener('click', () => { fit(); paint(); });
$('reset').addEventListener('click', reset);
$('invert').addEventListener('click', toggleInvert);
$('preset').addEventListener('click', nextPreset);
$('show-help').addEventListener('click', () => help(true));
$('close-help').addEventListener('click', () => help(false));
if ($('toggle-ai')) $('toggle-ai').addEventListener('click', toggleAi);

// --- mouse -----------------------------------------------------------------------------------------
const toCanvas = e => { const r = canvas.getBoundingClientRect(), s = canvas.width / r.width; return [(e.clientX - r.left) * s, (e.clientY - r.top) * s]; };
const toImage = e => { const [x, y] = toCanvas(e); return [(x - px) / zoom, (y - py) / zoom]; };
canvas.addEventListener('wheel', e => { e.preventDefault(); const [x, y] = toCanvas(e); zoomBy(e.deltaY < 0 ? 1.2 : 1 / 1.2, x, y); }, {passive: false});
canvas.addEventListener('contextmenu', e => e.preventDefault());
canvas.addEventListener('mousedown', e => { drag = {x: e.clientX, y: e.clientY, px, py, lo, hi, button: e.button, start: toImage(e)}; });
window.addEventListener('mouseup', () => {
  if (drag && drawing && box) {
    // Inside the image, whole pixels, not empty: what the server accepts.
    const b = [Math.max(0, Math.min(w, Math.round(box[0]))), Math.max(0, Math.min(h, Math.round(box[1]))), Math.max(0, Math.min(w, Math.round(box[2]))), Math.max(0, Math.min(h, Math.round(box[3])))];
    box = b[2] > b[0] && b[3] > b[1] ? b : null; setDrawing(false); warned = false; say('warning', ''); enable(); paint();
  }
  drag = null;
});
window.addEventListener('mousemove', e => {
  if (!drag) return; const s = canvas.width / canvas.getBoundingClientRect().width, dx = (e.clientX - drag.x) * s, dy = (e.clientY - drag.y) * s;
  if (drawing && drag.button === 0 && !busy()) { const [x, y] = toImage(e), a = drag.start; box = [Math.min(a[0], x), Math.min(a[1], y), Math.max(a[0], x), Math.max(a[1], y)]; paint(); }
  else if (drag.button === 2 || e.shiftKey) { const width = (drag.hi - drag.lo) * Math.exp(dx / 200), centre = (drag.hi + drag.lo) / 2 + dy * (drag.hi - drag.lo) / 400; lo = centre - width / 2; hi = centre + width / 2; render(); }
  else { px = drag.px + dx; py = drag.py + dy; moved = true; paint(); }
});

// --- keys ------------------------------------------------------------------------------------------
document.addEventListener('keydown', e => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key;
  if (k === '?') help($('help').hidden);
  else if (k === 'Escape') { help(false); setDrawing(false); }
  else if (k >= '1' && k <= '5') choose(labelButtons[Number(k) - 1]);
  else if (k === 'Enter') confirmRead();
  else if (k === 'u' || k === 'U') undo();
  else if (k === 'p' || k === 'P') togglePause();
  else if (k === 'b' || k === 'B') { if (!busy()) setDrawing(!drawing); }
  else if (k === 'Delete' || k === 'Backspace') deleteBox();
  else if (k === '+') zoomBy(1.2, canvas.width / 2, canvas.height / 2);
  else if (k === '-') zoomBy(1 / 1.2, canvas.width / 2, canvas.height / 2);
  else if (k === '=') { fit(); paint(); }
  else if (k === 'r' || k === 'R') reset();
  else if (k === 'i' || k === 'I') toggleInvert();
  else if (k === 'w' || k === 'W') nextPreset();
  else if (k === 'a' || k === 'A') toggleAi();
  else return;
  e.preventDefault();
});
