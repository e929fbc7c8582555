#!/usr/bin/env python3
"""Drive a real Chromium through the reading workstation (no Python packages needed: the
DevTools protocol over --remote-debugging-pipe).

    browser_check.py BASE_URL CHROMIUM SCREENSHOT.png

Logs in as alice, reads 3 cases in phase I (checking no AI overlay is on the page), reads one
case in phase III (checking the overlay is there, screenshot), logs in as admin and exports the
reads CSV. Prints one line per step; exits non-zero on the first failure.
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

    login("alice", "alice-password")
    status = evaluate("(document.getElementById('status') || {}).textContent || ''")
    if "Phase I" not in status:
        fail(f"after login: {status!r}")
    print("login ok:", status)
    for k in range(1, 4):
        goto("/case")
        phase = evaluate("document.getElementById('phase').textContent")
        if phase != "Phase I":
            fail(f"case {k}: {phase}")
        if evaluate("document.getElementById('ai-overlay') !== null"):
            fail(f"phase I case {k}: the AI overlay is on the page")
        case = evaluate("document.getElementById('viewer').dataset.case")
        if evaluate(f"fetch('/image/{case}').then(r => r.status)") != 200:
            fail(f"image of case {case} not served")
        print(f"phase I case {k}: no overlay (case {case})")
        submit("document.getElementById('label-DF').click(); true")
    goto("/case")
    if evaluate("document.getElementById('phase').textContent") != "Phase III":
        fail("phase III did not open after phase I")
    if not evaluate("document.getElementById('ai-overlay') !== null"):
        fail("phase III: no AI overlay")
    print("phase III: overlay visible:", evaluate("document.getElementById('ai-overlay').textContent"))
    # Let the viewer fetch and draw the image, then keep a screenshot.
    evaluate("new Promise(r => setTimeout(r, 1500))")
    # The viewer script (/reader.js, allowed by the page's Content-Security-Policy) ran and drew.
    if not evaluate("typeof bitmap !== 'undefined' && bitmap !== null && boxes.length >= 0"):
        fail("phase III: the viewer did not draw the image (reader.js blocked or failed)")
    print("viewer drew the image")
    shot = send("Page.captureScreenshot", {"format": "png"}, session=page)["data"]
    with open(screenshot, "wb") as f:
        f.write(base64.b64decode(shot))
    submit("document.getElementById('label-VF').click(); true")
    login("admin", "admin-password")
    csv = evaluate("fetch('/admin/reads.csv').then(r => r.text())")
    rows = [line for line in csv.strip().splitlines()[1:] if line]
    if len(rows) != 4 or not all(r.startswith("alice,") for r in rows):
        fail(f"export: {csv!r}")
    print(f"export: {len(rows)} reads")
finally:
    proc.kill()
    proc.wait()
