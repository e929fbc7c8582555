"""A minimal Chromium DevTools client over --remote-debugging-pipe (no Python packages), for the
reading workstation's browser checks (browser_check.py, reading_pace.py)."""
import json, os, select, subprocess, tempfile, time


class Failed(Exception):
    pass


class Browser:
    """A headless Chromium with one page; `evaluate`, `key`, `drag`, `until`, `goto`."""

    def __init__(self, chromium, base, width=1280, height=900):
        self.base = base
        to_r, self._to_w = os.pipe()
        self._from_r, from_w = os.pipe()

        def child_fds():
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        profile = tempfile.mkdtemp(prefix="hipfrac-chromium-")
        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", f"--window-size={width},{height}"],
            pass_fds=(3, 4), preexec_fn=child_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self._out = os.fdopen(self._to_w, "wb", buffering=0)
        self._in = os.fdopen(self._from_r, "rb", buffering=0)
        self._buffer = b""
        self._next_id = 0
        self.events = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=self.session)
        self.size(width, height)

    def close(self):
        self.proc.kill()
        self.proc.wait()

    def _receive(self, deadline):
        while b"\0" not in self._buffer:
            left = deadline - time.time()
            # Wait for data at most until the deadline: a hung Chromium must not hang the test.
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError("no message from Chromium")
            chunk = self._in.read(65536)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=None, timeout=30):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._out.write(json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def page(self, method, params=None, timeout=30):
        return self.send(method, params, session=self.session, timeout=timeout)

    def wait_load(self, timeout=30):
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == "Page.loadEventFired" and e.get("sessionId") == self.session:
                    del self.events[: i + 1]
                    return
            self.events.append(self._receive(deadline))

    def evaluate(self, expression):
        result = self.page("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in result:
            raise Failed(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, path):
        self.events.clear()
        self.page("Page.navigate", {"url": self.base + path})
        self.wait_load()

    def submit(self, expression):
        """Runs `expression` (which submits a form) and waits for the page it loads."""
        self.events.clear()
        self.evaluate(expression)
        self.wait_load()

    def login(self, name, password):
        self.goto("/login")
        self.submit(f"document.getElementById('name').value = {json.dumps(name)}; document.getElementById('password').value = {json.dumps(password)}; document.getElementById('login').click(); true")

    def key(self, k):
        if k == "Enter":
            down = {"type": "rawKeyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
        elif k == "Escape":
            down = {"type": "rawKeyDown", "key": "Escape", "code": "Escape", "windowsVirtualKeyCode": 27, "nativeVirtualKeyCode": 27}
        else:
            down = {"type": "keyDown", "key": k, "text": k}
        self.page("Input.dispatchKeyEvent", down)
        self.page("Input.dispatchKeyEvent", {"type": "keyUp", "key": k})

    def mouse(self, kind, x, y, button="left"):
        self.page("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": button, "clickCount": 1})

    def drag(self, x0, y0, x1, y1):
        self.mouse("mousePressed", x0, y0)
        self.mouse("mouseMoved", (x0 + x1) / 2, (y0 + y1) / 2)
        self.mouse("mouseMoved", x1, y1)
        self.mouse("mouseReleased", x1, y1)

    def until(self, expression, what, timeout=20):
        deadline = time.time() + timeout
        while not self.evaluate(expression):
            if time.time() > deadline:
                raise Failed(f"timed out: {what}")
            time.sleep(0.02)

    def size(self, width, height):
        self.page("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def screenshot(self, path):
        import base64
        shot = self.page("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot))
