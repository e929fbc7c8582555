#!/usr/bin/env bash
# hipfrac serve under load: an existing load generator (`hey`, Debian's package, installed when
# missing) against `hipfrac serve` on loopback, for the nano and T presets at 1, 8 and 32
# concurrent clients, with dynamic batching off (--max-batch 1) and on (--max-batch 8
# --max-wait-ms 10): requests/s, p50 and p99 latency (ms), and the ratio on/off. Then an
# overload run: OVERLOAD_S seconds offered at twice the best sustained rate (T preset, batching
# on, 128 rate-limited clients against --max-requests 32): every answer must be 200 or 503 (no
# other 5xx), and the server's resident memory is sampled every 30 s.
#
# Models: trained for one epoch on phantom radiographs at 320 px (the weights do not change
# the time); requests: a 1024-px phantom PNG. Prints the machine and the date.
# Usage: bench/serve.sh   (env: BIN=target/release/hipfrac, DEVICE=cpu, SECONDS_EACH=15,
#        CONCURRENCY="1 8 32", PRESETS="nano t", OVERLOAD_S=300)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-target/release/hipfrac}"
DEVICE="${DEVICE:-cpu}"
SECS="${SECONDS_EACH:-15}"
CONCURRENCY="${CONCURRENCY:-1 8 32}"
PRESETS="${PRESETS:-nano t}"
OVERLOAD_S="${OVERLOAD_S:-300}"
if ! command -v hey >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -qq hey >/dev/null
fi
if [ "$BIN" = target/release/hipfrac ]; then cargo build --release -j2 -p hipfrac >&2; fi
WORK="$(mktemp -d)"
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$WORK"' EXIT
COUNT=24
. bench/quick_models.sh
IMAGE="$(ls "$WORK"/data/images/*.png | head -1)"

PID=""; PORT=""
start() { # preset max_batch [extra args]
  local log="$WORK/serve.log"
  "$BIN" serve --model "$WORK/run-$1/best" --device "$DEVICE" --no-auth --addr 127.0.0.1:0 --max-batch "$2" --max-wait-ms 10 "${@:3}" 2>"$log" &
  PID=$!
  for _ in $(seq 600); do grep -q "listening on" "$log" && break; sleep 0.1; done
  PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$')
  until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.1; done
}
stop() { kill -TERM "$PID"; wait "$PID" || true; }
# hey's summary → "requests/s p50_ms p99_ms non200"
load() { # concurrency seconds [extra hey args]
  hey -z "$2s" -c "$1" -t 120 -m POST -T image/png -D "$IMAGE" "${@:3}" "http://127.0.0.1:$PORT/v1/predict" > "$WORK/hey.txt"
  awk '/Requests\/sec/{rps=$2} /50% in/{p50=$3} /99% in/{p99=$3} /^  \[[0-9]+\]/{gsub(/[\[\]]/,"",$1); if ($1 != "200") bad += $2} END {printf "%.1f %.0f %.0f %d\n", rps, p50*1000, p99*1000, bad}' "$WORK/hey.txt"
}

echo "hipfrac serve on $(nproc) cores ($(uname -m)), device $DEVICE, $(date -u +%Y-%m-%d), ${SECS} s per run, load from hey"
echo "preset  clients  batching  req/s  p50_ms  p99_ms  non-200"
best=0
for preset in $PRESETS; do
  for c in $CONCURRENCY; do
    declare -A rate=()
    for batch in 1 8; do
      start "$preset" "$batch" --queue 256 --max-requests 256
      read -r rps p50 p99 bad < <(load "$c" "$SECS")
      stop
      printf '%-6s  %7s  %8s  %5s  %6s  %6s  %7s\n' "$preset" "$c" "$([ "$batch" = 1 ] && echo off || echo on)" "$rps" "$p50" "$p99" "$bad"
      rate[$batch]=$rps
      if [ "$preset" = t ] && [ "$batch" = 8 ]; then best=$(python3 -c "print(max($best, ${rps}))"); fi
    done
    python3 -c "print(f'  {\"$preset\"} at $c clients: batching on / off = {${rate[8]} / max(${rate[1]}, 1e-9):.2f}x')"
  done
done
if [ "$OVERLOAD_S" -gt 0 ] && [ "$best" != 0 ]; then
  # More clients than the service admits (--max-requests 32, --queue 32), offering twice the
  # best sustained rate: the excess must be refused with 503, nothing else may fail, and the
  # memory must level off (RSS every 30 s).
  clients=128
  per_client=$(python3 -c "print(round(2 * $best / $clients, 3))")
  start t 8 --queue 32 --max-requests 32
  rss() { ps -o rss= -p "$PID" | tr -d ' '; }
  samples="$(rss)"
  hey -z "${OVERLOAD_S}s" -c "$clients" -q "$per_client" -t 120 -m POST -T image/png -D "$IMAGE" "http://127.0.0.1:$PORT/v1/predict" > "$WORK/overload.txt" &
  hey_pid=$!
  while kill -0 "$hey_pid" 2>/dev/null; do sleep 30; kill -0 "$hey_pid" 2>/dev/null && samples="$samples $(rss)"; done
  wait "$hey_pid" || true
  samples="$samples $(rss)"
  stop
  echo "overload: ${OVERLOAD_S} s offered at 2 x ${best} req/s (t, batching on, $clients clients, --max-requests 32 --queue 32); status codes:"
  sed -n '/Status code distribution/,/^$/p' "$WORK/overload.txt" | tail -n +2
  grep -A3 "Error distribution" "$WORK/overload.txt" || true
  echo "  server RSS (KiB) at start, every 30 s and at the end: $samples"
fi
