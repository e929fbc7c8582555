#!/usr/bin/env python3
"""A scripted reader in a real Chromium: reads N cases of the open phase by keyboard (looks
for THINK seconds, presses 5 then Enter) and measures, per case, the wall time from one case's
image on the screen to the next one's, and from Enter to the next image.

    reading_pace.py BASE_URL CHROMIUM N THINK

Prints one line per case and a summary; exits non-zero when a case does not open.
"""
import statistics, sys, time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from cdp import Browser, Failed

base, chromium, count, think = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
browser = Browser(chromium, base, 1440, 900)
SHOWN = "(() => { try { return drawn === true ? document.getElementById('progress').textContent : ''; } catch (e) { return ''; } })()"


def shown():
    try:
        return browser.evaluate(SHOWN)
    except (Failed, RuntimeError):
        return ""  # the page is being replaced


def wait_for_other(previous, timeout=30):
    deadline = time.time() + timeout
    while True:
        now = shown()
        if now and now != previous:
            return now, time.time()
        if time.time() > deadline:
            raise Failed(f"no new case after {previous!r}")
        time.sleep(0.01)


try:
    browser.login("alice", "alice-password")
    browser.goto("/case")
    current, at = wait_for_other("")
    per_case, after_enter = [], []
    for k in range(count):
        time.sleep(think)
        browser.key("5")
        pressed = time.time()
        browser.key("Enter")
        if k == count - 1:
            break
        current_next, next_at = wait_for_other(current)
        per_case.append(next_at - at)
        after_enter.append(next_at - pressed)
        print(f"case {k + 1}: {per_case[-1]:.2f} s on screen to the next case; next image {after_enter[-1]:.2f} s after the confirming key")
        current, at = current_next, next_at
    # Every read was stored (the export holds them all, with the server's reading times).
    time.sleep(0.5)
    browser.login("admin", "alice-password")
    rows = [r for r in browser.evaluate("fetch('/admin/reads.csv').then(r => r.text())").strip().splitlines()[1:] if r]
    if len(rows) != count:
        raise Failed(f"{len(rows)} reads stored of {count}")
    stored = [float(r.split(",")[4]) for r in rows]
    print(f"stored: {len(rows)} reads; reading time by the server's clock: median {statistics.median(stored):.2f} s")
    print(f"summary: {len(per_case)} cases, think {think:.1f} s: median {statistics.median(per_case):.2f} s per case "
          f"(mean {statistics.mean(per_case):.2f}); next image median {statistics.median(after_enter):.2f} s, "
          f"max {max(after_enter):.2f} s after the confirming key")
except Failed as e:
    print("FAILED:", e)
    sys.exit(1)
finally:
    browser.close()
