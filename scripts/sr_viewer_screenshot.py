#!/usr/bin/env python3
"""Screenshot of hipfrac's TID 1500 SR drawn by a standard viewer: the OHIF Viewer (v3, the
prebuilt `dist` of the npm package @ohif/app) reading Orthanc over DICOMweb. Not run by the tests.

    target/debug/hipfrac phantom --count 1 --size 512 --seed 3 --out /tmp/x
    target/debug/hipfrac predict /tmp/x/dicom --model runs/demo-after28/run/best --device cpu \
        --dicom sr,gsps,sc --out /tmp/x-out
    python3 scripts/sr_viewer_screenshot.py --source /tmp/x/dicom/site-a_000000.dcm \
        --results /tmp/x-out --out docs/img/sr-in-ohif.png

Starts Orthanc (with its DICOMweb plugin) on free loopback ports with a generated configuration,
uploads the source radiograph and hipfrac's .sr.dcm/.pr.dcm, serves OHIF's dist from a small
Python server that also proxies /dicom-web/ to Orthanc (one origin, no CORS), opens the study in
headless Chromium at 1440x900, double-clicks the SR's thumbnail (OHIF then loads the SR on its
own and draws its SCOORDs over the image they reference; nothing in the page is patched) and
saves a screenshot. Prints what OHIF made of the SR and what the page threw or logged as an error.
Needs: Orthanc + orthanc-dicomweb, chromium, npm (to fetch @ohif/app once, into /tmp, unless
--ohif-dist is given).
"""
import argparse, glob, http.client, http.server, json, os, shutil, socket, subprocess, sys, tempfile, threading, time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser, Failed  # noqa: E402

OHIF_VERSION = "3.13.2"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ohif_dist(path):
    if path:
        return path
    root = f"/tmp/ohif-app-{OHIF_VERSION}"
    dist = os.path.join(root, "package", "dist")
    if not os.path.isfile(os.path.join(dist, "index.html")):
        os.makedirs(root, exist_ok=True)
        subprocess.run(["npm", "pack", f"@ohif/app@{OHIF_VERSION}"], cwd=root, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["tar", "xzf", f"ohif-app-{OHIF_VERSION}.tgz"], cwd=root, check=True)
    return dist


APP_CONFIG = """window.config = {
  routerBasename: null,
  extensions: [],
  modes: [],
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  defaultDataSourceName: 'orthanc',
  investigationalUseDialog: { option: 'never' },
  dataSources: [{
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'orthanc',
    configuration: {
      friendlyName: 'Orthanc (hipfrac screenshot)',
      name: 'orthanc',
      wadoUriRoot: window.location.origin + '/wado',
      qidoRoot: window.location.origin + '/dicom-web',
      wadoRoot: window.location.origin + '/dicom-web',
      qidoSupportsIncludeField: false,
      imageRendering: 'wadors',
      thumbnailRendering: 'wadors',
      enableStudyLazyLoad: true,
      supportsFuzzyMatching: false,
      supportsWildcard: true,
      staticWado: false,
      singlepart: 'bulkdata,video',
      bulkDataURI: { enabled: true },
      omitQuotationForMultipartRequest: true,
    },
  }],
};
"""


def serve(dist, orthanc_port):
    """OHIF's dist (index.html for unknown paths), our app-config.js, /dicom-web/ and /wado
    proxied to Orthanc."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=dist, **k)

        def log_message(self, *a):
            pass

        def proxy(self):
            body = None
            if "Content-Length" in self.headers:
                body = self.rfile.read(int(self.headers["Content-Length"]))
            conn = http.client.HTTPConnection("127.0.0.1", orthanc_port, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
            conn.request(self.command, self.path, body=body, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
            self.send_response(reply.status)
            for k, v in reply.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            path = self.path.split("?")[0]
            if path.startswith("/dicom-web/") or path.startswith("/wado"):
                return self.proxy()
            if path == "/app-config.js":
                data = APP_CONFIG.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/javascript")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                return self.wfile.write(data)
            if not os.path.isfile(os.path.join(dist, path.lstrip("/"))):
                self.path = "/index.html"
            return super().do_GET()

        def do_POST(self):
            return self.proxy()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_orthanc(work):
    http_port, dicom_port = free_port(), free_port()
    storage = os.path.join(work, "orthanc-storage")
    os.makedirs(storage)
    config = {
        "Name": "hipfrac-screenshot", "StorageDirectory": storage, "IndexDirectory": storage,
        "HttpPort": http_port, "DicomPort": dicom_port, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    path = os.path.join(work, "orthanc.json")
    with open(path, "w") as f:
        json.dump(config, f)
    log = open(os.path.join(work, "orthanc.log"), "w")
    proc = subprocess.Popen(["Orthanc", path], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/system", timeout=2).read()
            return proc, http_port
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit(f"Orthanc did not start; see {log.name}")
            time.sleep(0.2)


def upload(port, path):
    with open(path, "rb") as f:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/instances", data=f.read(), method="POST")
    return json.loads(urllib.request.urlopen(request).read())


def scoords(port, instance):
    """The number of SCOORD content items in an uploaded SR (Orthanc's JSON of its tags)."""
    tags = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/instances/{instance}/tags?simplify").read())

    def count(node):
        if isinstance(node, dict):
            return (node.get("ValueType") == "SCOORD") + sum(count(v) for v in node.values())
        if isinstance(node, list):
            return sum(count(v) for v in node)
        return 0

    return count(tags)


def page_errors(browser):
    """What the page threw or logged as an error so far (Runtime events)."""
    said = []
    for e in browser.events:
        params = e.get("params", {})
        if e.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            said.append("exception: " + (details.get("exception", {}).get("description") or details.get("text", "")).split("\n")[0])
        elif e.get("method") == "Runtime.consoleAPICalled":
            # OHIF's error boundary reports a crash with console.debug.
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            if params.get("type") in ("error", "warning") or "Error" in args or "rehydratable" in args:
                said.append(f"console.{params['type']}: " + args.split("\n")[0][:300])
    return said


def report(browser):
    """Prints what OHIF made of the SR (read only) and what the page threw; returns the latter."""
    try:
        state = browser.evaluate("""(() => {
          const sr = window.services.displaySetService.getActiveDisplaySets().find(d => d.Modality === 'SR');
          return sr && {isLoaded: sr.isLoaded, measurements: (sr.measurements || []).map(m =>
            ({TrackingIdentifier: m.TrackingIdentifier, coords: m.coords.length, loaded: m.loaded}))};
        })()""")
        print("OHIF's SR display set: " + json.dumps(state), file=sys.stderr)
    except Exception as e:  # noqa: BLE001 (a report, not a check)
        print(f"OHIF's SR display set: unreadable ({e})", file=sys.stderr)
    errors = page_errors(browser)
    for line in errors:
        print("page " + line, file=sys.stderr)
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, help="the radiograph hipfrac predicted (DICOM)")
    ap.add_argument("--results", required=True, help="hipfrac predict's --out (holds NAME.sr.dcm, NAME.pr.dcm)")
    ap.add_argument("--out", default="docs/img/sr-in-ohif.png")
    ap.add_argument("--ohif-dist", help="OHIF's prebuilt dist/ (default: npm pack @ohif/app@%s into /tmp)" % OHIF_VERSION)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--keep", action="store_true", help="keep the servers running until Enter")
    args = ap.parse_args()

    dist = ohif_dist(args.ohif_dist)
    work = tempfile.mkdtemp(prefix="hipfrac-ohif-")
    orthanc, orthanc_port = start_orthanc(work)
    server = browser = None
    try:
        study = upload(orthanc_port, args.source)["ParentStudy"]
        stem = os.path.basename(args.source).rsplit(".", 1)[0]
        results = sorted(glob.glob(os.path.join(args.results, stem + ".sr.dcm")) + glob.glob(os.path.join(args.results, stem + ".pr.dcm")))
        if not any(r.endswith(".sr.dcm") for r in results):
            raise SystemExit(f"no {stem}.sr.dcm in {args.results}")
        sr_instance = None
        for r in results:
            uploaded = upload(orthanc_port, r)
            if r.endswith(".sr.dcm"):
                sr_instance = uploaded["ID"]
        uid = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{orthanc_port}/studies/{study}").read())["MainDicomTags"]["StudyInstanceUID"]
        server = serve(dist, orthanc_port)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        print(f"OHIF at {base}/viewer?StudyInstanceUIDs={uid}", file=sys.stderr)

        browser = Browser(args.chromium, base, 1440, 900)
        browser.page("Runtime.enable")  # the page's exceptions and console errors, for report()
        browser.goto(f"/viewer?StudyInstanceUIDs={uid}")
        browser.until("!!(window.services && window.services.displaySetService.getActiveDisplaySets().some(d => d.Modality === 'SR')) && document.querySelectorAll('[data-cy=\"study-browser-thumbnail-no-image\"]').length > 0", "the study's display sets", timeout=120)
        time.sleep(2)
        # The onboarding tour, if shown.
        browser.evaluate("[...document.querySelectorAll('button, a, span')].find(e => e.innerText && e.innerText.trim() === 'Skip all')?.click(); true")
        # Nothing in the page is changed: the double-click below has OHIF load the SR its own
        # way. The boxes to wait for are the SR's SCOORDs, counted in the SR itself.
        kept = scoords(orthanc_port, sr_instance)
        if not kept:
            # OHIF 3.13.2's SR viewport fails on an SR without a measurement (its error boundary
            # reports "Cannot destructure property 'displaySetInstanceUID' of 'measurement'").
            raise SystemExit("the SR has no box (SCOORD): OHIF's SR viewport has nothing to show")
        # Double-click the SR's thumbnail: OHIF's SR viewport shows the referenced image with the
        # boxes. Once the first image is on screen; again if a late layout change undid it.
        browser.until("!!document.querySelector('[data-cy=\"viewport-pane\"] canvas')", "the radiograph on screen", timeout=60)
        time.sleep(2)
        for attempt in range(3):
            browser.evaluate("""(() => {
              const sr = [...document.querySelectorAll('[data-cy="study-browser-thumbnail-no-image"]')]
                .find(e => e.querySelector('[data-cy="series-modality-label"]')?.innerText.trim() === 'SR');
              sr.dispatchEvent(new MouseEvent('dblclick', {bubbles: true}));
            })()""")
            try:
                browser.until("document.querySelectorAll('svg.svg-layer polyline').length >= %d" % kept, "the SR's boxes drawn", timeout=30)
                break
            except Failed:
                if attempt == 2:
                    raise
        time.sleep(2)
        # "Do you want to continue tracking measurements for this study?" -> No (view only).
        browser.evaluate("[...document.querySelectorAll('button')].find(e => e.innerText && e.innerText.trim() === 'No')?.click(); true")
        time.sleep(3)
        browser.until("document.querySelectorAll('svg.svg-layer polyline').length >= %d" % kept, "the SR's boxes still drawn", timeout=20)
        browser.screenshot(args.out)
        print(f"saved {args.out}", file=sys.stderr)
        if any("exception" in e or "Error Boundary" in e for e in report(browser)):
            raise Failed("the page threw while showing the SR (above)")
        if args.keep:
            input("Enter to stop the servers: ")
    except Failed:
        if browser:
            browser.screenshot(args.out + ".failed.png")
            print(f"failed; the page as it was: {args.out}.failed.png", file=sys.stderr)
            report(browser)
        raise
    finally:
        if browser:
            browser.close()
        if server:
            server.shutdown()
        orthanc.kill()
        orthanc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
