// The reading workstation's viewer: the image (16-bit values) filling its area, zoom, pan,
// window/level with presets (the file's own windows first, then presets computed inside the
// body) and invert, collimated borders drawn dark, the reader's box, the AI's marks (present
// only when the page carries them), a read in two steps (choose, confirm), the next case shown
// at once with a few seconds to undo, and the reading clock's events (drawn, pause, resume).
// Served as /reader.js so the page needs no inline script (Content-Security-Policy:
// script-src 'self'). Keys: see the help overlay (?).
'use strict';
const $ = id => document.getElementById(id);
const stage = $('stage'), canvas = $('viewer'), ctx = canvas.getContext('2d');
const PAN_THRESHOLD = 4; // CSS pixels a drag must travel before it pans or windows
let page = null, marks = [], boxes = [], styles = {};
let img = null, w = 0, h = 0, field = [0, 0, 0, 0], lo = 0, hi = 1, zoom = 1, px = 0, py = 0, moved = false;
let invert = false, presets = [], preset = 0, aiVisible = true, labelRects = [];
let drawing = false, box = null, drag = null, bitmap = null;
let drawn = false, failed = false, chosen = null, warned = false, submitted = false;
const covers = new Set(); // what is over the image now ('pause', 'help'): no read, the clock stops
const images = new Map(); // case number -> Promise of its decoded image
const decoded = new Set(); // case numbers whose image has arrived and been decoded
let undoable = null, undoTimer = null, shownCase = null, shownAt = 0; // shownAt: when the open case's image was painted (performance.now())

const form = () => $('readform');
function say(id, text) { const e = $(id); if (e) e.textContent = text; }
function fail(text) {
  failed = true; const l = $('loading'); l.hidden = false;
  l.textContent = text + ' Nothing was stored; reload the page (F5) to try again.'; enable();
}

// --- the clock's events: the server times the read from its own clock -----------------------
// Events go one after another (a pause must not overtake the resume before it); `clock` is the
// chain, which settles once every event so far is recorded.
let clock = Promise.resolve();
function post(event) {
  const sent = clock.then(() => postNow(event));
  clock = sent.catch(() => {});
  return sent;
}
function postNow(event) {
  const f = form();
  const body = new URLSearchParams({csrf: f.csrf.value, phase: f.phase.value, case: f.case.value, step: f.step.value, event});
  return fetch('/event', {method: 'POST', credentials: 'same-origin', body}).then(r => {
    // The login ended (logged out elsewhere, or idle): back to the login page.
    if (r.status === 401) { window.location.href = '/login'; throw new Error('logged out'); }
    if (!r.ok) throw new Error('HTTP ' + r.status);
  });
}

// Anything over the image (the pause veil, the key help) stops the clock and every read.
function cover(what, on) {
  const before = covers.size;
  if (on) covers.add(what); else covers.delete(what);
  if (drawn && before === 0 && covers.size > 0) post('pause').catch(e => say('warning', 'The pause was not recorded (' + e.message + ').'));
  if (drawn && before > 0 && covers.size === 0) post('resume').catch(e => say('warning', 'The resume was not recorded (' + e.message + ').'));
  enable();
}

// --- the image: HFV1, the view as JSON, then each row's differences (gzip on the wire) --------
function fetchImage(number) {
  if (!images.has(number)) {
    images.set(number, fetch('/image/' + number, {credentials: 'same-origin'}).then(r => {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.arrayBuffer();
    }).then(buf => {
      const head = new DataView(buf, 0, 8);
      if (new TextDecoder().decode(new Uint8Array(buf, 0, 4)) !== 'HFV1') throw new Error('not an image');
      const n = head.getUint32(4, true), view = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, n)));
      const deltas = new Uint16Array(buf.slice(8 + n)), pixels = new Uint16Array(deltas.length);
      for (let y = 0, i = 0; y < view.height; y++) {
        let v = 0;
        for (let x = 0; x < view.width; x++, i++) { v = (v + deltas[i]) & 0xffff; pixels[i] = v; }
      }
      decoded.add(number);
      return {view, pixels};
    }));
    images.get(number).catch(() => { images.delete(number); decoded.delete(number); });
  }
  return images.get(number);
}

// Opens the case the page (or the panel just swapped in) describes.
function openCase() {
  page = JSON.parse($('reader-data').textContent);
  marks = page.marks; boxes = page.boxes; styles = page.styles;
  canvas.dataset.case = String(page.case);
  drawn = false; chosen = null; warned = false; submitted = false; box = null; setDrawing(false);
  aiVisible = true; enable();
  // Never the previous case's image under this case's panel: the screen is cleared until this
  // image is drawn, and the loading veil shows unless it has already arrived.
  if (bitmap && String(page.case) !== shownCase) { bitmap = null; paint(); }
  if (!decoded.has(page.case)) { $('loading').hidden = false; $('loading').textContent = 'Loading the image…'; }
  for (const k of [...images.keys()]) if (k !== page.case && k !== page.next) { images.delete(k); decoded.delete(k); }
  return fetchImage(page.case).then(({view, pixels}) => {
    img = pixels; w = view.width; h = view.height; field = view.field; presets = view.presets;
    invert = false; $('invert').setAttribute('aria-pressed', 'false');
    applyPreset(0); resize(); fit();
    return render();
  }).then(() => { shownAt = performance.now(); shownCase = String(page.case); return post('drawn'); }).then(() => {
    // Only now, with the image on the screen and the clock started, can a read be given.
    drawn = true; $('loading').hidden = true;
    if (covers.size > 0) post('pause').catch(() => {});
    enable();
    if (page.next !== null && page.next !== undefined) fetchImage(page.next).catch(() => {});
  }).catch(e => fail('The image could not be shown (' + e.message + ').'));
}

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
  const [fx0, fy0, fx1, fy1] = field;
  for (let y = 0, i = 0, j = 0; y < h; y++) {
    const rowInside = y >= fy0 && y < fy1;
    for (let x = 0; x < w; x++, i++, j += 4) {
      let v = (img[i] - lo) * scale; v = v < 0 ? 0 : v > 255 ? 255 : v; if (invert) v = 255 - v;
      // Collimated borders are dark whatever the window: no glaring frame in a reading room.
      if (!rowInside || x < fx0 || x >= fx1) v = 12;
      d[j] = d[j + 1] = d[j + 2] = v; d[j + 3] = 255;
    }
  }
  return createImageBitmap(data).then(b => { bitmap = b; paint(); });
}
function hud() {
  const centre = Math.round((lo + hi) / 2), width = Math.round(hi - lo);
  say('wl', `C ${centre}  W ${width}  ·  ${Math.round(zoom * 100 / (window.devicePixelRatio || 1))} %${invert ? '  ·  inverted' : ''}${marks.length && !aiVisible ? '  ·  AI hidden (A)' : ''}`);
}

// Whether two rectangles {x, y, w, h} overlap.
const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
const rectOf = b => ({x: b[0], y: b[1], w: b[2] - b[0], h: b[3] - b[1]});

// Places each mark's label outside every mark (never over the region a mark points at), off
// the other labels and in view: beside its own mark where there is room, else in the margin
// beside the image, one finding per line, with a leader line. `texts[k]` holds mark k's lines
// (its number and first finding, then one line per other finding). Returns rectangles in
// image pixels, with the lines to draw.
function placeLabels(texts, lineHeight, gap) {
  const taken = marks.map(m => rectOf(m.bbox)), placed = [];
  const visible = {x: -px / zoom, y: -py / zoom, w: canvas.width / zoom, h: canvas.height / zoom};
  const inView = r => r.x >= visible.x && r.y >= visible.y && r.x + r.w <= visible.x + visible.w && r.y + r.h <= visible.y + visible.h;
  const free = r => inView(r) && !taken.some(t => overlaps(r, t)) && !placed.some(p => p && overlaps(r, p));
  const width = lines => Math.max(...lines.map(l => ctx.measureText(l).width)) + 2 * gap;
  marks.forEach((m, k) => {
    const [x0, y0, x1, y1] = m.bbox, one = [texts[k].join(' · ')], tw = width(one), th = lineHeight;
    const candidates = [[x0, y0 - th - gap], [x1 - tw, y0 - th - gap], [x0, y1 + gap], [x1 - tw, y1 + gap], [x1 + gap, y0], [x0 - tw - gap, y0],
      [x1 + gap, y1 - th], [x0 - tw - gap, y1 - th]];
    let rect = null;
    for (const [x, y] of candidates) {
      const r = {x, y, w: tw, h: th, lines: one};
      if (free(r)) { rect = r; break; }
    }
    if (!rect) {
      // The margin with more room beside the image, from the mark's height down, then up.
      const lines = texts[k], sw = width(lines), sh = th * lines.length;
      const leftRoom = px, rightRoom = canvas.width - (px + w * zoom);
      const x = leftRoom >= rightRoom ? Math.max(visible.x, -sw - gap) : Math.min(w + gap, visible.x + visible.w - sw);
      const top = Math.max(visible.y, Math.min(y0, visible.y + visible.h - sh));
      const steps = Math.ceil(visible.h / (th / 2));
      for (let i = 0; i <= 2 * steps && !rect; i++) {
        const y = top + (i % 2 ? -1 : 1) * Math.ceil(i / 2) * th / 2, r = {x, y, w: sw, h: sh, lines, leader: true};
        if (free(r)) rect = r;
      }
      // No room anywhere (the marks cover the whole view): no label on the image rather than
      // one over a mark; the side panel lists every mark with its types and scores.
    }
    placed.push(rect);
  });
  return placed;
}

function paint() {
  ctx.setTransform(1, 0, 0, 1, 0, 0); ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!bitmap) return;
  // Sharp at every zoom: whole device pixels per image pixel are drawn exactly; any other
  // scale is interpolated (never duplicated rows or uneven blocks).
  const whole = zoom >= 1 && Math.abs(zoom - Math.round(zoom)) < 1e-6;
  if (whole) { zoom = Math.round(zoom); px = Math.round(px); py = Math.round(py); }
  ctx.setTransform(zoom, 0, 0, zoom, px, py); ctx.imageSmoothingEnabled = !whole; ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0);
  const line = 2.5 / zoom, text = 15 / zoom, gap = 4 / zoom;
  ctx.lineWidth = line; ctx.font = `bold ${text}px sans-serif`;
  labelRects = [];
  if (aiVisible && marks.length) {
    const texts = marks.map((m, k) => m.findings.map((f, j) => `${j ? '' : k + 1 + '  '}${f.class} ${f.score.toFixed(2)}`));
    labelRects = placeLabels(texts, text * 1.35, gap);
    marks.forEach((m, k) => {
      const s = styles[m.findings[0].class] || {colour: '#fff', dash: []}, r = labelRects[k];
      ctx.strokeStyle = s.colour; ctx.setLineDash(s.dash.map(v => v / zoom));
      ctx.strokeRect(m.bbox[0], m.bbox[1], m.bbox[2] - m.bbox[0], m.bbox[3] - m.bbox[1]); ctx.setLineDash([]);
      if (!r) return;
      if (r.leader) {
        ctx.lineWidth = 1 / zoom; ctx.beginPath();
        ctx.moveTo(r.x < m.bbox[0] ? r.x + r.w : r.x, r.y + r.h / 2); ctx.lineTo(r.x < m.bbox[0] ? m.bbox[0] : m.bbox[2], m.bbox[1]); ctx.stroke();
        ctx.lineWidth = line;
      }
      ctx.fillStyle = 'rgba(0,0,0,.8)'; ctx.fillRect(r.x, r.y, r.w, r.h);
      ctx.fillStyle = s.colour; ctx.textBaseline = 'middle';
      r.lines.forEach((l, i) => ctx.fillText(l, r.x + gap, r.y + (i + 0.5) * r.h / r.lines.length));
    });
  }
  if (box) { ctx.strokeStyle = '#fff'; ctx.setLineDash([6 / zoom, 4 / zoom]); ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]); ctx.setLineDash([]); }
  hud();
}

// --- the read: choose, confirm; the next case shows at once, with a few seconds to undo ----------
function busy() { return !drawn || failed || covers.size > 0 || submitted; }
function enable() {
  for (const b of document.querySelectorAll('button.label')) b.disabled = busy();
  if ($('confirm')) $('confirm').disabled = busy() || chosen === null;
  if ($('deletebox')) $('deletebox').disabled = box === null || busy();
}
function choose(button) {
  if (busy() || !button) return;
  chosen = button; warned = false; say('warning', '');
  for (const b of document.querySelectorAll('button.label')) b.setAttribute('aria-pressed', String(b === button));
  form().label.value = button.dataset.label;
  say('choice', 'Chosen: ' + button.textContent.replace(/^\s*\d\s*/, '') + ' — confirm with Enter.');
  enable();
}
function confirmRead() {
  if (busy() || chosen === null) return;
  if (chosen.dataset.fracture === 'true' && box === null && !warned) {
    warned = true;
    say('warning', 'No box drawn for a fracture: draw one (B), or press Enter again to confirm without a box.');
    return;
  }
  // What is stored is what the screen shows now: the chosen label and the box as drawn; the
  // reading time ends now, on the server's clock.
  const f = form();
  f.bbox.value = box ? box.join(',') : '';
  const read = {phase: f.phase.value, case: f.case.value, step: f.step.value, csrf: f.csrf.value,
    what: `${$('progress').textContent}: “${chosen.dataset.label}” stored.`};
  submitted = true; enable(); say('choice', 'Storing…');
  fetch('/read', {method: 'POST', credentials: 'same-origin', body: new URLSearchParams(new FormData(f))}).then(r => {
    if (r.status === 401) { window.location.href = '/login'; throw new Error('logged out'); }
    return r.text().then(html => ({r, html}));
  }).then(({r, html}) => {
    const next = new DOMParser().parseFromString(html, 'text/html');
    if (!r.ok) {
      submitted = false; enable();
      say('warning', 'Not stored: ' + ((next.querySelector('[role=alert]') || {}).textContent || 'HTTP ' + r.status));
      return;
    }
    // A read is stored: an earlier one can no longer be undone (only the latest can).
    clearInterval(undoTimer); undoable = null;
    if (next.getElementById('panel') && next.getElementById('reader-data')) {
      // The next case, at once; its image was fetched ahead.
      document.title = next.title;
      $('panel').replaceWith(document.adoptNode(next.getElementById('panel')));
      // The unaided read of a sequential phase stands: the AI is on the screen from now on.
      if (read.step !== 'unaided') offerUndo(read, null);
      openCase();
    } else {
      // The phase is done: the start page follows once the undo window has passed.
      offerUndo(read, r.url);
    }
  }).catch(e => { submitted = false; enable(); say('warning', 'Not stored (' + e.message + '); confirm again.'); });
}
function offerUndo(read, then) {
  clearInterval(undoTimer);
  undoable = read; let left = page.undo_seconds || 3;
  $('undo').hidden = false; say('undo-what', read.what); say('countdown', String(left));
  undoTimer = setInterval(() => {
    left -= 1; say('countdown', String(Math.max(left, 0)));
    if (left <= 0) {
      clearInterval(undoTimer); undoable = null; $('undo').hidden = true;
      if (then) window.location.href = then;
    }
  }, 1000);
}
function undo() {
  if (!undoable) return;
  const read = undoable; undoable = null; clearInterval(undoTimer);
  const body = new URLSearchParams({csrf: read.csrf, phase: read.phase, case: read.case, step: read.step});
  fetch('/undo', {method: 'POST', credentials: 'same-origin', body}).then(r => r.text().then(html => {
    if (!r.ok) {
      $('undo').hidden = true;
      const why = new DOMParser().parseFromString(html, 'text/html').querySelector('[role=alert]');
      say('warning', why ? why.textContent : 'The undo failed (HTTP ' + r.status + ').');
      return;
    }
    // Back to the case whose read was taken back.
    window.location.replace('/case');
  })).catch(e => say('warning', 'The undo failed (' + e.message + ').'));
}

// --- pause and help: both cover the image -----------------------------------------------------
function togglePause() {
  if (!drawn || submitted) return;
  const on = !covers.has('pause');
  $('veil').hidden = !on; say('pause', on ? 'Resume (P)' : 'Pause (P)');
  cover('pause', on);
}
function help(show) { $('help').hidden = !show; cover('help', show); }

// --- tools ----------------------------------------------------------------------------------------
function setDrawing(on) { drawing = on; if ($('drawbox')) $('drawbox').setAttribute('aria-pressed', String(on)); canvas.style.cursor = on ? 'crosshair' : 'grab'; }
function deleteBox() { if (busy()) return; box = null; form().bbox.value = ''; enable(); paint(); }
function zoomBy(f, cx, cy) { const x = (cx - px) / zoom, y = (cy - py) / zoom; zoom *= f; px = cx - x * zoom; py = cy - y * zoom; moved = true; paint(); }
function reset() { applyPreset(0); invert = false; $('invert').setAttribute('aria-pressed', 'false'); fit(); render(); }
function toggleInvert() { invert = !invert; $('invert').setAttribute('aria-pressed', String(invert)); render(); }
function nextPreset() { if (presets.length) { applyPreset((preset + 1) % presets.length); render(); } }
function toggleAi() {
  const t = $('toggle-ai'); if (!t) return;
  aiVisible = !aiVisible;
  t.setAttribute('aria-pressed', String(aiVisible)); t.textContent = aiVisible ? 'Hide the AI marks (A)' : 'Show the AI marks (A)';
  paint();
}
// The panel is replaced with each case: its buttons are handled here, by id.
const clicks = {
  'undo-button': undo, resume: togglePause, pause: togglePause, 'close-help': () => help(false), 'show-help': () => help(true),
  drawbox: () => { if (!busy()) setDrawing(!drawing); }, deletebox: deleteBox, fit: () => { fit(); paint(); }, reset, invert: toggleInvert,
  preset: nextPreset, 'toggle-ai': toggleAi,
};
document.addEventListener('click', e => {
  const b = e.target.closest('button'); if (!b) return;
  if (b.classList.contains('label')) choose(b);
  else if (clicks[b.id]) clicks[b.id]();
});
document.addEventListener('submit', e => { if (e.target.id === 'readform') { e.preventDefault(); confirmRead(); } });

// --- mouse -----------------------------------------------------------------------------------------
const toCanvas = e => { const r = canvas.getBoundingClientRect(), s = canvas.width / r.width; return [(e.clientX - r.left) * s, (e.clientY - r.top) * s]; };
const toImage = e => { const [x, y] = toCanvas(e); return [(x - px) / zoom, (y - py) / zoom]; };
canvas.addEventListener('wheel', e => { e.preventDefault(); const [x, y] = toCanvas(e); zoomBy(e.deltaY < 0 ? 1.2 : 1 / 1.2, x, y); }, {passive: false});
canvas.addEventListener('contextmenu', e => e.preventDefault());
canvas.addEventListener('mousedown', e => { drag = {x: e.clientX, y: e.clientY, px, py, lo, hi, button: e.button, start: toImage(e), active: false}; });
window.addEventListener('mouseup', () => {
  if (drag && drawing && box) {
    // Inside the image, whole pixels, not empty: what the server accepts.
    const b = [Math.max(0, Math.min(w, Math.round(box[0]))), Math.max(0, Math.min(h, Math.round(box[1]))), Math.max(0, Math.min(w, Math.round(box[2]))), Math.max(0, Math.min(h, Math.round(box[3])))];
    box = b[2] > b[0] && b[3] > b[1] ? b : null; setDrawing(false); warned = false; say('warning', ''); enable(); paint();
  }
  drag = null;
});
window.addEventListener('mousemove', e => {
  if (!drag) return;
  if (drawing && drag.button === 0 && !busy()) { const [x, y] = toImage(e), a = drag.start; box = [Math.min(a[0], x), Math.min(a[1], y), Math.max(a[0], x), Math.max(a[1], y)]; paint(); return; }
  // A pan (or window drag) starts only past a few pixels: a click that slips does not move the image.
  if (!drag.active && Math.hypot(e.clientX - drag.x, e.clientY - drag.y) < PAN_THRESHOLD) return;
  drag.active = true;
  const s = canvas.width / canvas.getBoundingClientRect().width, dx = (e.clientX - drag.x) * s, dy = (e.clientY - drag.y) * s;
  if (drag.button === 2 || e.shiftKey) { const width = (drag.hi - drag.lo) * Math.exp(dx / 200), centre = (drag.hi + drag.lo) / 2 + dy * (drag.hi - drag.lo) / 400; lo = centre - width / 2; hi = centre + width / 2; render(); }
  else { px = drag.px + dx; py = drag.py + dy; moved = true; paint(); }
});

// --- keys ------------------------------------------------------------------------------------------
document.addEventListener('keydown', e => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key;
  if (k === '?') help($('help').hidden);
  else if (k === 'Escape') { help(false); setDrawing(false); }
  else if (k >= '1' && k <= '5') choose(document.querySelectorAll('button.label')[Number(k) - 1]);
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

openCase();
