#!/usr/bin/env python3
"""Drive a real Chromium through the reading workstation (no Python packages needed: the
DevTools protocol over --remote-debugging-pipe).

    browser_check.py BASE_URL CHROMIUM SCREENSHOT.png

Logs in as alice; checks that a read sent before the image is drawn is refused; reads 3 cases
in phase I (no AI on the page): one by keyboard with a box dragged on the image, one confirmed
then undone and read again, one after a pause with a fracture label confirmed without a box on
the second Enter; reads one case in the sequential phase III (the unaided read without the AI,
then the AI shown, hidden and shown with A, screenshots SCREENSHOT-1440x900.png and
-1366x768.png with the layout checked); logs in as admin and exports the reads CSV. Prints one
line per step; exits non-zero on the first failure.
"""
import base64, json, os, subprocess, sys, tempfile, time

base, chromium, screenshot = sys.argv[1], sys.argv[2], sys.argv[3]
to_chrome_r, to_chrome_w = os.pipe()
from_chrome_r, from_chrome_w = os.pipe()


def child_fds():
    os.dup2(to_chrome_r, 3)
    os.dup2(from_chrome_w, 4)


profile = tempfile.mkdtemp(prefix="hipfrac-chromium-")
proc = subprocess.Popen(
    [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
     "--remote-debugging-pipe", f"--user-data-dir={profile}", "--window-size=1280,900"],
    pass_fds=(3, 4), preexec_fn=child_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(to_chrome_r)
os.close(from_chrome_w)
out = os.fdopen(to_chrome_w, "wb", buffering=0)
inp = os.fdopen(from_chrome_r, "rb", buffering=0)
buffer = b""
next_id = 0
events = []


def receive(deadline):
    global buffer
    while b"\0" not in buffer:
        if time.time() > deadline:
            raise TimeoutError("no message from Chromium")
        chunk = inp.read(65536)
        if not chunk:
            raise RuntimeError("Chromium closed the pipe")
        buffer += chunk
    message, buffer = buffer.split(b"\0", 1)
    return json.loads(message)


def send(method, params=None, session=None, timeout=30):
    global next_id
    next_id += 1
    message = {"id": next_id, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    out.write(json.dumps(message).encode() + b"\0")
    deadline = time.time() + timeout
    while True:
        reply = receive(deadline)
        if reply.get("id") == next_id:
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply.get("result", {})
        events.append(reply)


def wait_load(session, timeout=30):
    deadline = time.time() + timeout
    while True:
        for i, e in enumerate(events):
            if e.get("method") == "Page.loadEventFired" and e.get("sessionId") == session:
                del events[: i + 1]
                return
        events.append(receive(deadline))


def fail(message):
    print("FAILED:", message)
    proc.kill()
    sys.exit(1)


try:
    target = send("Target.createTarget", {"url": "about:blank"})["targetId"]
    page = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    send("Page.enable", session=page)

    def evaluate(expression):
        result = send("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}, session=page)
        if "exceptionDetails" in result:
            fail(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(path):
        events.clear()
        send("Page.navigate", {"url": base + path}, session=page)
        wait_load(page)

    def submit(expression):
        events.clear()
        evaluate(expression)
        wait_load(page)

    def login(name, password):
        goto("/login")
        submit(f"document.getElementById('name').value = {json.dumps(name)}; document.getElementById('password').value = {json.dumps(password)}; document.getElementById('login').click(); true")

    def key(k):
        if k == "Enter":
            down = {"type": "rawKeyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
        else:
            down = {"type": "keyDown", "key": k, "text": k}
        send("Input.dispatchKeyEvent", down, session=page)
        send("Input.dispatchKeyEvent", {"type": "keyUp", "key": k}, session=page)

    def drag(x0, y0, x1, y1):
        send("Input.dispatchMouseEvent", {"type": "mousePressed", "x": x0, "y": y0, "button": "left", "clickCount": 1}, session=page)
        send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": (x0 + x1) / 2, "y": (y0 + y1) / 2, "button": "left"}, session=page)
        send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x1, "y": y1, "button": "left"}, session=page)
        send("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": x1, "y": y1, "button": "left", "clickCount": 1}, session=page)

    def until(expression, what, timeout=20):
        deadline = time.time() + timeout
        while not evaluate(expression):
            if time.time() > deadline:
                fail(f"timed out: {what}")
            time.sleep(0.05)

    def confirm_and_wait():
        events.clear()
        key("Enter")
        wait_load(page)

    def layout_ok(label):
        # The image area fills the window but the side panel; the panel's Confirm is in view.
        got = evaluate("(() => { const c = document.getElementById('viewer').getBoundingClientRect(), b = document.getElementById('confirm').getBoundingClientRect();"
                       " return [c.width, c.height, innerWidth, innerHeight, b.bottom]; })()")
        cw, ch, iw, ih, bottom = got
        if cw < iw - 340 or ch < ih - 2 or bottom > ih:
            fail(f"{label}: layout {got}")
        print(f"{label}: image {cw:.0f}x{ch:.0f} in a {iw}x{ih} window, Confirm in view")

    login("alice", "alice-password")
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

    goto("/case")
    until("drawn === true", "the viewer draws the first case")
    if evaluate("document.getElementById('ai-overlay') !== null"):
        fail("phase I: the AI overlay is on the page")
    layout_ok("1280x900")
    # Case 1, by keyboard: label 1 (DF), B, a box dragged on the image, Enter.
    first = evaluate("document.getElementById('viewer').dataset.case")
    key("1")
    if evaluate("document.getElementById('label-DF').getAttribute('aria-pressed')") != "true":
        fail("key 1 did not choose DF")
    key("b")
    r = evaluate("(() => { const r = document.getElementById('viewer').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()")
    drag(r[0] + r[2] * 0.4, r[1] + r[3] * 0.4, r[0] + r[2] * 0.6, r[1] + r[3] * 0.6)
    if not evaluate("box !== null"):
        fail("no box after the drag")
    confirm_and_wait()
    print(f"phase I case 1 (case {first}): DF with a box, by keyboard")
    # Case 2: confirm, then undo within the countdown; nothing is stored; then none.
    until("drawn === true", "case 2 drawn")
    second = evaluate("document.getElementById('viewer').dataset.case")
    if second == first:
        fail("the next case did not open")
    key("5")
    key("Enter")
    until("!document.getElementById('undo').hidden", "the undo countdown")
    key("u")
    time.sleep(3.6)
    if evaluate("document.getElementById('viewer').dataset.case") != second or not evaluate("pending === null && document.getElementById('undo').hidden"):
        fail("undo did not keep the case open")
    print("phase I case 2: undo kept the case open, nothing stored")
    key("5")
    confirm_and_wait()
    # Case 3: pause (the veil hides the image), resume, a fracture without a box asks first.
    until("drawn === true", "case 3 drawn")
    key("p")
    until("!document.getElementById('veil').hidden && document.getElementById('label-DF').disabled", "the pause veil")
    time.sleep(0.5)
    key("p")
    until("document.getElementById('veil').hidden && !document.getElementById('label-DF').disabled", "resume")
    key("1")
    key("Enter")
    if "No box" not in evaluate("document.getElementById('warning').textContent"):
        fail("a fracture without a box was not questioned")
    confirm_and_wait()
    print("phase I case 3: paused and resumed; a fracture without a box confirmed on the second Enter")
    # Phase III, sequential: the unaided read first (no AI on the page), then the AI.
    until("drawn === true", "phase III drawn")
    if evaluate("document.getElementById('phase').textContent") != "Phase III":
        fail("phase III did not open after phase I")
    if evaluate("document.getElementById('ai-overlay') !== null"):
        fail("phase III: the AI shown before the unaided read")
    key("5")
    confirm_and_wait()
    until("drawn === true", "phase III final read drawn")
    if not evaluate("document.getElementById('ai-overlay') !== null"):
        fail("phase III: no AI after the unaided read")
    print("phase III: overlay visible after the unaided read:", evaluate("document.getElementById('ai-overlay').textContent"))
    key("a")
    if evaluate("aiVisible") or evaluate("document.getElementById('toggle-ai').getAttribute('aria-pressed')") != "false":
        fail("key A did not hide the AI")
    key("a")
    if not evaluate("aiVisible"):
        fail("key A did not show the AI again")
    print("AI hidden and shown with A")
    # The viewer script (/reader.js, allowed by the page's Content-Security-Policy) ran and drew.
    if not evaluate("typeof bitmap !== 'undefined' && bitmap !== null && boxes.length >= 0"):
        fail("phase III: the viewer did not draw the image (reader.js blocked or failed)")
    print("viewer drew the image")
    stem = screenshot[:-4] if screenshot.endswith(".png") else screenshot
    for width, height in [(1440, 900), (1366, 768)]:
        send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=page)
        time.sleep(0.5)
        layout_ok(f"{width}x{height}")
        shot = send("Page.captureScreenshot", {"format": "png"}, session=page)["data"]
        with open(f"{stem}-{width}x{height}.png", "wb") as f:
            f.write(base64.b64decode(shot))
    key("2")
    key("b")
    r = evaluate("(() => { const r = document.getElementById('viewer').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()")
    drag(r[0] + r[2] * 0.3, r[1] + r[3] * 0.3, r[0] + r[2] * 0.5, r[1] + r[3] * 0.5)
    confirm_and_wait()
    login("admin", "admin-password")
    csv = evaluate("fetch('/admin/reads.csv').then(r => r.text())")
    rows = [line for line in csv.strip().splitlines()[1:] if line]
    phases = sorted(r.split(",")[1] for r in rows)
    if len(rows) != 5 or not all(r.startswith("alice,") for r in rows) or phases != ["I", "I", "I", "III", "III:unaided"]:
        fail(f"export: {csv!r}")
    print(f"export: {len(rows)} reads")
finally:
    proc.kill()
    proc.wait()
