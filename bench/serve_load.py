#!/usr/bin/env python3
"""Load generator for bench/serve.sh: CONCURRENCY clients post PNGs to /v1/predict for
SECONDS; prints images/s and the median/p95 latency. Standard library only."""
import sys, threading, time, urllib.request, statistics

url, concurrency, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
images = [open(p, "rb").read() for p in sys.argv[4:]]
latencies, errors = [], []
lock = threading.Lock()
deadline = time.monotonic() + seconds

def client(k):
    i = k
    while time.monotonic() < deadline:
        body = images[i % len(images)]
        i += concurrency
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "image/png"}, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                reply.read()
            with lock:
                latencies.append(time.monotonic() - started)
        except Exception as e:  # 503s and errors are counted, not fatal
            with lock:
                errors.append(str(e))

threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
began = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - began
latencies.sort()
p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
print(f"{len(latencies) / elapsed:.1f} {statistics.median(latencies) * 1000 if latencies else float('nan'):.0f} {p95 * 1000:.0f} {len(errors)}")
