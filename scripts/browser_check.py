#!/usr/bin/env python3
"""Drive a real Chromium through the reading workstation (no Python packages needed: the
DevTools protocol over --remote-debugging-pipe, scripts/cdp.py).

    browser_check.py BASE_URL CHROMIUM SCREENSHOT.png

Logs in as alice; checks that a read sent before the image is drawn is refused; reads 3 cases
in phase I (no AI on the page): one by keyboard with a box dragged on the image (the window
presets checked against the film's white frame, and no duplicated rows at a non-integer fit),
one confirmed, undone from the next case and read again (the next case shows within 0.5 s of
confirming), one with the key help open (no read while it is open) and after a pause, with a
fracture label confirmed without a box on the second Enter; reads one case in the sequential
phase III (the unaided read without the AI, then the AI: no label over any mark, hidden and
shown with A, screenshots SCREENSHOT-1440x900.png and -1366x768.png with the layout checked);
logs in as admin and exports the reads CSV. Prints one line per step; exits non-zero on the
first failure.
"""
import os, sys, time

sys.path.insert(0, os.path.dirname(__file__))
from cdp import Browser, Failed

base, chromium, screenshot = sys.argv[1], sys.argv[2], sys.argv[3]
browser = Browser(chromium, base)
evaluate, key = browser.evaluate, browser.key


def fail(message):
    raise Failed(message)


def until(expression, what, timeout=20):
    browser.until(expression, what, timeout)


def layout_ok(label):
    # The image area fills the window but the side panel; the panel's Confirm is in view.
    got = evaluate("(() => { const c = document.getElementById('viewer').getBoundingClientRect(), b = document.getElementById('confirm').getBoundingClientRect();"
                   " return [c.width, c.height, innerWidth, innerHeight, b.bottom]; })()")
    cw, ch, iw, ih, bottom = got
    if cw < iw - 340 or ch < ih - 2 or bottom > ih:
        fail(f"{label}: layout {got}")
    print(f"{label}: image {cw:.0f}x{ch:.0f} in a {iw}x{ih} window, Confirm in view")


def confirm_and_time(what):
    """Enter, then the next case (or step) on the screen: returns the seconds in between, by
    the page's own clock (from the key to the next image painted)."""
    before = evaluate("page.case + '/' + document.getElementById('phase').textContent + '/' + document.getElementById('progress').textContent + '/' + document.querySelector('[name=step]').value")
    evaluate("window.confirmedAt = performance.now(); true")
    key("Enter")
    until(f"drawn === true && (page.case + '/' + document.getElementById('phase').textContent + '/' + document.getElementById('progress').textContent + '/' + document.querySelector('[name=step]').value) !== {before!r}", what)
    return evaluate("(shownAt - window.confirmedAt) / 1000")


# A box of the viewer in page coordinates.
VIEWER = "(() => { const r = document.getElementById('viewer').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()"

try:
    browser.login("alice", "alice-password")
    status = evaluate("(document.getElementById('status') || {}).textContent || ''")
    if "Phase I" not in status:
        fail(f"after login: {status!r}")
    print("login ok:", status)
    # A read sent before the image was drawn (the page fetched, its script not run) is refused.
    early = evaluate("fetch('/case').then(r => r.text()).then(t => { const d = new DOMParser().parseFromString(t, 'text/html'), v = n => d.querySelector(`[name=${n}]`).value;"
                     " return fetch('/read', {method: 'POST', body: new URLSearchParams({csrf: v('csrf'), phase: v('phase'), case: v('case'), step: v('step'), label: 'DF', bbox: ''})}).then(r => r.status); })")
    if early != 409:
        fail(f"a read before the image was drawn: HTTP {early}")
    print("read before the image was drawn: refused")

    browser.goto("/case")
    until("drawn === true", "the viewer draws the first case")
    if evaluate("document.getElementById('ai-overlay') !== null"):
        fail("phase I: the AI overlay is on the page")
    layout_ok("1280x900")
    # Window presets: computed inside the body, they differ from the full range on a film with
    # a white collimation frame, which is drawn dark.
    presets = evaluate("presets")
    full = next(p for p in presets if p["name"] == "full range")
    auto = next(p for p in presets if p["name"] == "body (auto)")
    frame = evaluate("field[0] > 0 || field[1] > 0 || field[2] < w || field[3] < h")
    if not frame:
        fail(f"the phantom film has a white frame, but the field is the whole image: {evaluate('field')}")
    if (auto["lo"], auto["hi"]) == (full["lo"], full["hi"]) or auto["hi"] > full["hi"] or auto["lo"] < full["lo"]:
        fail(f"presets: body {auto} vs full range {full}")
    dark = evaluate("(() => { const c = document.createElement('canvas'); c.width = w; c.height = h; const g = c.getContext('2d'); g.drawImage(bitmap, 0, 0);"
                    " const d = g.getImageData(0, 0, w, h).data, inside = (x, y) => x >= field[0] && x < field[2] && y >= field[1] && y < field[3]; let m = 0;"
                    " for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (!inside(x, y)) m = Math.max(m, d[4 * (y * w + x)]); return m; })()")
    if dark > 40:
        fail(f"the collimated border is drawn at grey {dark}, not dark")
    print(f"presets: {[p['name'] for p in presets]}; body (auto) {auto['lo']:.0f}-{auto['hi']:.0f} vs full range {full['lo']:.0f}-{full['hi']:.0f}; frame drawn dark ({dark})")
    # Sharp at a non-integer fit: no output row repeats its neighbour unless the image's own
    # rows do (the fault was nearest-neighbour scaling at 105 %).
    rows = evaluate("""(() => {
      zoom = 1.05 * (window.devicePixelRatio || 1); px = 10; py = 10; moved = true; paint();
      const ih = Math.floor(h * zoom), iw = Math.floor(w * zoom), x0 = Math.ceil(px + field[0] * zoom) + 2, x1 = Math.floor(px + field[2] * zoom) - 2;
      const y0 = Math.ceil(py + field[1] * zoom) + 2, y1 = Math.min(canvas.height, Math.floor(py + field[3] * zoom)) - 2;
      const out = ctx.getImageData(x0, y0, x1 - x0, y1 - y0).data, stride = 4 * (x1 - x0);
      const same = (d, a, b, n) => { for (let i = 0; i < n; i += 4) if (d[a + i] !== d[b + i]) return false; return true; };
      let drawn = 0; for (let y = 1; y < y1 - y0; y++) if (same(out, (y - 1) * stride, y * stride, stride)) drawn++;
      const c = document.createElement('canvas'); c.width = w; c.height = h; const g = c.getContext('2d'); g.drawImage(bitmap, 0, 0);
      const src = g.getImageData(0, 0, w, h).data, sw = 4 * w; let source = 0;
      for (let y = field[1] + 1; y < field[3]; y++) if (same(src, (y - 1) * sw + 4 * field[0], y * sw + 4 * field[0], 4 * (field[2] - field[0]))) source++;
      const result = [drawn, source, y1 - y0, ctx.imageSmoothingEnabled]; fit(); paint(); return result; })()""")
    if rows[0] > rows[1] or not rows[3]:
        fail(f"at 105 %: {rows[0]} duplicated rows of {rows[2]} (the image has {rows[1]}), smoothing {rows[3]}")
    print(f"105 % zoom: {rows[0]} duplicated rows of {rows[2]} drawn (the image itself has {rows[1]}), smoothing on")
    # Case 1, by keyboard: label 1 (DF), B, a box dragged on the image, Enter.
    first = evaluate("page.case")
    key("1")
    if evaluate("document.getElementById('label-DF').getAttribute('aria-pressed')") != "true":
        fail("key 1 did not choose DF")
    key("b")
    r = evaluate(VIEWER)
    browser.drag(r[0] + r[2] * 0.4, r[1] + r[3] * 0.4, r[0] + r[2] * 0.6, r[1] + r[3] * 0.6)
    if not evaluate("box !== null"):
        fail("no box after the drag")
    # A click that slips by 2 pixels is not a pan: the image stays fitted.
    browser.mouse("mousePressed", r[0] + 50, r[1] + 50)
    browser.mouse("mouseMoved", r[0] + 52, r[1] + 51)
    browser.mouse("mouseReleased", r[0] + 52, r[1] + 51)
    if evaluate("moved"):
        fail("a 2-pixel slip counted as a pan")
    seconds = confirm_and_time("case 2 shown")
    if seconds > 0.5:
        fail(f"the next case showed {seconds:.2f} s after confirming")
    print(f"phase I case 1 (case {first}): DF with a box, by keyboard; a 2-pixel slip is no pan; the next case showed {seconds:.2f} s after Enter")
    # Case 2: read, then taken back from case 3 within the undo window: case 2 again.
    second = evaluate("page.case")
    if second == first:
        fail("the next case did not open")
    key("5")
    seconds = confirm_and_time("case 3 shown")
    if seconds > 0.5:
        fail(f"the next case showed {seconds:.2f} s after confirming")
    if evaluate("document.getElementById('undo').hidden"):
        fail("no undo offered on the next case")
    browser.events.clear()
    key("u")
    browser.wait_load()
    until("drawn === true", "the undone case drawn again")
    if evaluate("page.case") != second:
        fail("undo did not return to the undone case")
    print(f"phase I case 2: read, the next case showed {seconds:.2f} s after Enter; undo returned to case 2")
    key("5")
    confirm_and_time("case 3 shown again")
    # Case 3: the key help covers the image: no read while it is open, the clock stops.
    key("?")
    until("!document.getElementById('help').hidden && document.getElementById('label-DF').disabled", "the help open")
    key("5")
    key("Enter")
    if evaluate("document.getElementById('label-none').getAttribute('aria-pressed')") == "true" or not evaluate("submitted === false"):
        fail("a read was given with the help over the image")
    evaluate("clock")  # every clock event so far (the help's pause) is recorded
    direct = evaluate("(() => { const f = new URLSearchParams(new FormData(document.getElementById('readform'))); f.set('label', 'none');"
                      " return fetch('/read', {method: 'POST', body: f}).then(r => r.text().then(t => [r.status, t.includes('paused')])); })()")
    direct = direct[0] if direct[1] else direct
    if direct != 409:
        fail(f"the server took a read while the help was open: HTTP {direct}")
    key("Escape")
    until("document.getElementById('help').hidden && !document.getElementById('label-DF').disabled", "the help closed")
    print("phase I case 3: with the help open, no label chosen and the server refused a read (clock paused)")
    # ...then a pause (the veil hides the image), resume, a fracture without a box asks first.
    key("p")
    until("!document.getElementById('veil').hidden && document.getElementById('label-DF').disabled", "the pause veil")
    time.sleep(0.3)
    key("p")
    until("document.getElementById('veil').hidden && !document.getElementById('label-DF').disabled", "resume")
    key("1")
    key("Enter")
    if "No box" not in evaluate("document.getElementById('warning').textContent"):
        fail("a fracture without a box was not questioned")
    confirm_and_time("phase III shown")
    print("phase I case 3: paused and resumed; a fracture without a box confirmed on the second Enter")
    # Phase III, sequential: the unaided read first (no AI on the page), then the AI.
    if evaluate("document.getElementById('phase').textContent") != "Phase III":
        fail("phase III did not open after phase I")
    if evaluate("document.getElementById('ai-overlay') !== null"):
        fail("phase III: the AI shown before the unaided read")
    first_iii = evaluate("page.case")
    key("5")
    confirm_and_time("phase III final read")
    if not evaluate("document.getElementById('undo').hidden"):
        fail("phase III: an undo of the unaided read was offered with the AI on the screen")
    key("u")
    time.sleep(0.5)
    if evaluate("document.querySelector('[name=step]').value") != "final" or evaluate("page.case") != first_iii:
        fail("phase III: U after the unaided read went back to it")
    if not evaluate("document.getElementById('ai-overlay') !== null"):
        fail("phase III: no AI after the unaided read")
    print("phase III: overlay visible after the unaided read:", evaluate("document.getElementById('ai-verdict').textContent"))
    # No AI label over any AI mark (or another label): the model's marks, then a crowded set.
    overlap = "(() => { const bad = []; labelRects.forEach((r, k) => { if (!r) { bad.push(`no label for mark ${k}`); return; } marks.forEach((m, j) => { if (overlaps(r, rectOf(m.bbox))) bad.push(`label ${k} over mark ${j}`); });" \
              " labelRects.forEach((q, j) => { if (j !== k && q && overlaps(r, q)) bad.push(`label ${k} over label ${j}`); });" \
              " if (r.x < -px / zoom - 0.01 || r.y < -py / zoom - 0.01 || r.x + r.w > (canvas.width - px) / zoom + 0.01 || r.y + r.h > (canvas.height - py) / zoom + 0.01) bad.push(`label ${k} out of view`); });" \
              " return [labelRects.length, marks.length, bad]; })()"
    placed, count, bad = evaluate(overlap)
    if bad or placed != count:
        fail(f"AI labels: {bad}, {placed} labels for {count} marks")
    crowded = evaluate("(() => { const real = marks; marks = [[0.30, 0.30, 0.50, 0.45], [0.32, 0.46, 0.52, 0.60], [0.10, 0.28, 0.29, 0.40], [0.51, 0.25, 0.70, 0.44], [0.05, 0.05, 0.95, 0.2]]"
                       ".map(([a, b, c, d]) => ({bbox: [a * w, b * h, c * w, d * h], findings: [{class: 'VF', score: 0.57}, {class: 'DF', score: 0.29}]})); paint();"
                       f" const got = {overlap}; marks = real; paint(); return got; }})()")
    if crowded[2] or crowded[0] != crowded[1]:
        fail(f"crowded AI labels: {crowded}")
    print(f"AI labels: {placed} for {count} marks, none over a mark; 5 crowded marks: none over a mark or label")
    key("a")
    if evaluate("aiVisible") or evaluate("document.getElementById('toggle-ai').getAttribute('aria-pressed')") != "false":
        fail("key A did not hide the AI")
    key("a")
    if not evaluate("aiVisible"):
        fail("key A did not show the AI again")
    print("AI hidden and shown with A")
    # The viewer script (/reader.js, allowed by the page's Content-Security-Policy) ran and drew.
    if not evaluate("typeof bitmap !== 'undefined' && bitmap !== null && marks.length > 0"):
        fail("phase III: the viewer did not draw the image (reader.js blocked or failed)")
    print("viewer drew the image")
    stem = screenshot[:-4] if screenshot.endswith(".png") else screenshot
    for width, height in [(1440, 900), (1366, 768)]:
        browser.size(width, height)
        time.sleep(0.5)
        layout_ok(f"{width}x{height}")
        browser.screenshot(f"{stem}-{width}x{height}.png")
    key("2")
    key("b")
    r = evaluate(VIEWER)
    browser.drag(r[0] + r[2] * 0.3, r[1] + r[3] * 0.3, r[0] + r[2] * 0.5, r[1] + r[3] * 0.5)
    confirm_and_time("phase III's next case after the final read")
    browser.login("admin", "admin-password")
    csv = evaluate("fetch('/admin/reads.csv').then(r => r.text())")
    rows = [line for line in csv.strip().splitlines()[1:] if line]
    phases = sorted(r.split(",")[1] for r in rows)
    if len(rows) != 5 or not all(r.startswith("alice,") for r in rows) or phases != ["I", "I", "I", "III", "III:unaided"]:
        fail(f"export: {csv!r}")
    print(f"export: {len(rows)} reads")
except Failed as e:
    print("FAILED:", e)
    sys.exit(1)
finally:
    browser.close()
