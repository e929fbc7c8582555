#!/usr/bin/env bash
# hipfrac serve: throughput with dynamic batching vs one image per forward pass, at several
# client concurrencies, on this machine (CPU unless --device says otherwise).
#
# A model trained for one epoch on phantom radiographs (320 px, DAMO-YOLO-T: the
# weights do not change the time), phantom PNGs of 1024 px as requests. For each concurrency
# C in CONCURRENCY, the same service is measured twice, SECONDS each: --max-batch 1 (no
# batching) and --max-batch 8 --max-wait-ms 10 (batching). Printed: images/s, median and
# p95 latency (ms), failed requests; and the ratio batched / unbatched.
# Usage: bench/serve.sh   (env: BIN=target/release/hipfrac, DEVICE=cpu, SECONDS_EACH=20, CONCURRENCY="1 4 16")
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-target/release/hipfrac}"
DEVICE="${DEVICE:-cpu}"
SECS="${SECONDS_EACH:-20}"
CONCURRENCY="${CONCURRENCY:-1 4 16}"
if [ "$BIN" = target/release/hipfrac ]; then cargo build --release -j2 -p hipfrac >&2; fi
WORK="$(mktemp -d)"
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$BIN" phantom --count 24 --size 1024 --seed 11 --out "$WORK/data" >/dev/null 2>&1
"$BIN" dataset split "$WORK/data" --ratios 0.5,0.5,0 --seed 1 >/dev/null 2>&1
printf 'train = "%s"\nval = "%s"\nout = "%s"\nimage_size = 320\nbatch_size = 4\nepochs = 1\nwarmup_epochs = 0.0\nmosaic = 0.0\nmixup = 0.0\n[model]\npreset = "t"\n' \
  "$WORK/data/splits/train.csv" "$WORK/data/splits/val.csv" "$WORK/run" > "$WORK/train.toml"
"$BIN" train --device "$DEVICE" --config "$WORK/train.toml" >/dev/null 2>&1
IMAGES=("$WORK"/data/images/*.png)
echo "hipfrac serve on $(nproc) cores ($(uname -m)), device $DEVICE, $(date -u +%Y-%m-%d), ${SECS} s per run"
echo "concurrency  max_batch  images/s  median_ms  p95_ms  failed"
for c in $CONCURRENCY; do
  declare -A rate
  for batch in 1 8; do
    log="$WORK/serve-$c-$batch.log"
    "$BIN" serve --model "$WORK/run/best" --device "$DEVICE" --no-auth --addr 127.0.0.1:0 --max-batch "$batch" --max-wait-ms 10 --queue 256 2>"$log" &
    pid=$!
    for _ in $(seq 600); do grep -q "listening on" "$log" && break; sleep 0.1; done
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$')
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.1; done
    read -r ips med p95 failed < <(python3 bench/serve_load.py "http://127.0.0.1:$port/v1/predict" "$c" "$SECS" "${IMAGES[@]}")
    printf '%11s  %9s  %8s  %9s  %6s  %6s\n' "$c" "$batch" "$ips" "$med" "$p95" "$failed"
    rate[$batch]=$ips
    kill -TERM "$pid"; wait "$pid" || true
  done
  python3 -c "print(f'  concurrency $c: batched / unbatched = {${rate[8]} / ${rate[1]}:.2f}x')"
done
