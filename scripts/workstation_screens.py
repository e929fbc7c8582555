#!/usr/bin/env python3
"""Screenshots of the reading workstation for docs/img, with full-size radiographs, in a real
Chromium: phase I (a real adult hip CR, 2140x1760), the key help open, and the AI phase on a
film where the model finds two types over one hip (drawn as one mark).

    workstation_screens.py HIPFRAC_BIN MODEL_DIR TWO_FINDINGS.dcm OUT_DIR

HIPFRAC_BIN is the folder with hipfrac; MODEL_DIR a trained model (the demo's
runs/demo/run/best); TWO_FINDINGS.dcm a film on which that model draws two overlapping boxes
(for the demo model trained on 2026-12-07 on a 2-core machine: site-b_000127.dcm of
`hipfrac phantom --count 150 --size 1024 --site site-b --seed 33`; another machine's demo
model may need another film: `hipfrac predict` lists the boxes it draws).
"""
import os, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(__file__))
from cdp import Browser, Failed

bin_dir, model, two, out = sys.argv[1:5]
here = os.path.dirname(os.path.abspath(__file__))
rg2 = os.path.join(here, "../../shared/data/dicom/dicom_wg04_hip/RG2_UNC")
work = tempfile.mkdtemp(prefix="hipfrac-screens-")
hipfrac = os.path.join(bin_dir, "hipfrac")
cases = os.path.join(work, "cases")
subprocess.run([hipfrac, "phantom", "--count", "1", "--size", "1024", "--seed", "11", "--out", cases], check=True, stdout=subprocess.DEVNULL)
shutil.copy(rg2, os.path.join(cases, "rg2.dcm"))
shutil.copy(two, os.path.join(cases, "two.dcm"))
with open(os.path.join(cases, "manifest.csv"), "w") as f:
    f.write("image,annotation,patient,site,label\n")
    f.write("rg2.dcm,,RG2,nema,none\ndicom/site-a_000000.dcm,,P1,site-a,none\ntwo.dcm,,P2,site-c,none\n")
digest = subprocess.run([hipfrac, "study", "hash-password"], input="reader-password\n", capture_output=True, text=True, check=True).stdout.strip()
with open(os.path.join(work, "study.toml"), "w") as f:
    f.write(f'name = "Hip fracture reader study (phantom and NEMA test films)"\ncases = "cases/manifest.csv"\ndatabase = "db.sqlite"\n'
            f'model = "{os.path.abspath(model)}"\nseed = 2\nphases = [{{ name = "I" }}, {{ name = "III", ai = true }}]\n'
            f'[[readers]]\nname = "reader"\npassword_hash = "{digest}"\n[[admins]]\nname = "admin"\npassword_hash = "{digest}"\n')
port = 20000 + os.getpid() % 20000
server = subprocess.Popen([hipfrac, "study", "serve", "--study", os.path.join(work, "study.toml"), "--addr", f"127.0.0.1:{port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
browser = None
try:
    import urllib.request
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login")
            break
        except OSError:
            time.sleep(0.2)
    browser = Browser("chromium", f"http://127.0.0.1:{port}", 1440, 900)
    browser.login("reader", "reader-password")
    browser.goto("/case")
    shown = "(() => { try { return drawn ? document.getElementById('phase').textContent + '/' + page.case : ''; } catch (e) { return ''; } })()"

    def open_case(phase, case):
        """Reads 'none' until `case` of `phase` is on the screen."""
        for _ in range(8):
            browser.until(shown, "a case drawn")
            now = browser.evaluate(shown)
            if now == f"Phase {phase}/{case}":
                return
            before = now
            browser.key("5")
            browser.key("Enter")
            browser.until(f"{shown} !== {before!r} && {shown} !== ''", "the next case")
        raise Failed(f"case {case} of phase {phase} never opened")

    def shoot(name):
        for width, height in [(1440, 900), (1920, 1080)]:
            browser.size(width, height)
            time.sleep(0.6)
            browser.screenshot(os.path.join(out, f"workstation-{name}-{width}x{height}.png"))

    os.makedirs(out, exist_ok=True)
    open_case("I", 0)
    shoot("phase1")
    browser.key("?")
    shoot("help")
    browser.key("Escape")
    open_case("III", 2)
    shoot("ai")
    print("screenshots in", out)
finally:
    if browser:
        browser.close()
    server.kill()
    shutil.rmtree(work, ignore_errors=True)
