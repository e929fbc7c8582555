// The reading workstation's viewer: the image as modality values, zoom, pan, window/level,
// the reader's box, and the AI's boxes (present only in AI phases). Served as /reader.js so
// the pages need no inline script (Content-Security-Policy: script-src 'self').
'use strict';
const page = JSON.parse(document.getElementById('reader-data').textContent);
const boxes = page.boxes, colours = page.colours;
const canvas = document.getElementById('viewer'), ctx = canvas.getContext('2d');
let img = null, w = 0, h = 0, lo = 0, hi = 1, zoom = 1, px = 0, py = 0, drawing = false, box = null, drag = null;
fetch('/image/' + page.case, {credentials:'same-origin'}).then(r => { if (!r.ok) throw new Error(r.status); return r.arrayBuffer(); }).then(buf => {
  const head = new DataView(buf, 0, 8); w = head.getUint32(0, true); h = head.getUint32(4, true);
  img = new Uint16Array(buf, 8, w * h);
  const sorted = Array.from(img).sort((a, b) => a - b); lo = sorted[Math.floor(sorted.length * 0.01)]; hi = sorted[Math.floor(sorted.length * 0.99)]; if (hi <= lo) hi = lo + 1;
  fit(); render();
});
function fit() { zoom = Math.min(canvas.width / w, canvas.height / h); px = (canvas.width - w * zoom) / 2; py = (canvas.height - h * zoom) / 2; }
let bitmap = null;
function render() {
  if (!img) return;
  const data = new ImageData(w, h);
  for (let i = 0; i < w * h; i++) { let v = (img[i] - lo) * 255 / (hi - lo); v = v < 0 ? 0 : v > 255 ? 255 : v; data.data[4*i] = data.data[4*i+1] = data.data[4*i+2] = v; data.data[4*i+3] = 255; }
  createImageBitmap(data).then(b => { bitmap = b; paint(); });
}
function paint() {
  ctx.setTransform(1, 0, 0, 1, 0, 0); ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!bitmap) return;
  ctx.setTransform(zoom, 0, 0, zoom, px, py); ctx.imageSmoothingEnabled = zoom < 1; ctx.drawImage(bitmap, 0, 0);
  ctx.lineWidth = 2 / zoom; ctx.font = (14 / zoom) + 'px sans-serif';
  for (const b of boxes) { ctx.strokeStyle = ctx.fillStyle = colours[b.class] || '#fff'; ctx.strokeRect(b.bbox[0], b.bbox[1], b.bbox[2] - b.bbox[0], b.bbox[3] - b.bbox[1]); ctx.fillText(b.class + ' ' + b.score.toFixed(2), b.bbox[0], b.bbox[1] - 3 / zoom); }
  if (box) { ctx.strokeStyle = '#fff'; ctx.setLineDash([6 / zoom, 4 / zoom]); ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]); ctx.setLineDash([]); }
}
const toImage = e => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left - px) / zoom, (e.clientY - r.top - py) / zoom]; };
canvas.addEventListener('wheel', e => { e.preventDefault(); const [x, y] = toImage(e); const f = e.deltaY < 0 ? 1.2 : 1 / 1.2; zoom *= f; px -= x * zoom * (1 - 1 / f); py -= y * zoom * (1 - 1 / f); paint(); });
canvas.addEventListener('contextmenu', e => e.preventDefault());
canvas.addEventListener('mousedown', e => { drag = {x: e.clientX, y: e.clientY, px, py, lo, hi, button: e.button, start: toImage(e)}; });
window.addEventListener('mouseup', () => {
  if (drag && drawing && box) {
    // Inside the image, whole pixels, not empty: what the server accepts.
    const b = [Math.max(0, Math.min(w, Math.round(box[0]))), Math.max(0, Math.min(h, Math.round(box[1]))), Math.max(0, Math.min(w, Math.round(box[2]))), Math.max(0, Math.min(h, Math.round(box[3])))];
    document.getElementById('bbox').value = b[2] > b[0] && b[3] > b[1] ? b.join(',') : '';
    box = b[2] > b[0] && b[3] > b[1] ? b : null; drawing = false; paint();
  }
  drag = null;
});
window.addEventListener('mousemove', e => {
  if (!drag) return; const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
  if (drawing && drag.button === 0) { const [x, y] = toImage(e); const s = drag.start; box = [Math.min(s[0], x), Math.min(s[1], y), Math.max(s[0], x), Math.max(s[1], y)]; paint(); }
  else if (drag.button === 2 || e.shiftKey) { const width = (drag.hi - drag.lo) * Math.exp(dx / 200), centre = (drag.hi + drag.lo) / 2 + dy * (drag.hi - drag.lo) / 400; lo = centre - width / 2; hi = centre + width / 2; render(); }
  else { px = drag.px + dx; py = drag.py + dy; paint(); }
});
document.getElementById('drawbox').addEventListener('click', () => { drawing = true; });
document.getElementById('reset').addEventListener('click', () => { fit(); paint(); });
