#!/usr/bin/env bash
# hipfrac listen (the DICOM node) against hipfrac predict on the same files: COUNT phantom CR
# DICOMs (1024 px) sent by dcmtk's storescu to the node, whose results (SR + presentation state
# + Secondary Capture) go to dcmtk's storescp on loopback. Instances/s is counted from the
# first byte sent to the last result delivered; `predict --dicom sr,gsps,sc` on the same files
# is the peer measured in the same run. Presets nano and T, each trained for one epoch on
# phantom radiographs at 320 px (the weights do not change the time). dcmtk runs with
# TCP_NODELAY=1: without it storescp stalls ~60 ms per object on delayed ACKs (measured: 72
# objects in one association, 4.4 s vs 0.22 s), which would time dcmtk, not the node.
# Usage: bench/node.sh   (env: BIN=target/release/hipfrac, DEVICE=cpu, COUNT=48, PRESETS="nano t")
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-target/release/hipfrac}"
DEVICE="${DEVICE:-cpu}"
COUNT="${COUNT:-48}"
PRESETS="${PRESETS:-nano t}"
for tool in storescu storescp; do
  command -v "$tool" >/dev/null || { echo "bench/node.sh needs dcmtk ($tool): scripts/setup.sh installs it" >&2; exit 2; }
done
if [ "$BIN" = target/release/hipfrac ]; then cargo build --release -j2 -p hipfrac >&2; fi
WORK="$(mktemp -d)"
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$WORK"' EXIT
. bench/quick_models.sh
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

echo "hipfrac listen vs predict on $(nproc) cores ($(uname -m)), device $DEVICE, $(date -u +%Y-%m-%d), $COUNT phantom CR DICOMs of 1024 px, results SR+GSPS+SC"
echo "preset  predict_img/s  node_inst/s  node/predict"
for preset in $PRESETS; do
  model="$WORK/run-$preset/best"
  t0=$(now)
  "$BIN" predict "$WORK/data/dicom" --model "$model" --device "$DEVICE" --out "$WORK/pred-$preset" --no-overlay --dicom sr,gsps,sc >/dev/null 2>&1
  t1=$(now)
  predict_rate=$(python3 -c "print(f'{$COUNT/($t1-$t0):.2f}')")

  pacs_port=$(free_port)
  mkdir -p "$WORK/pacs-$preset"
  TCP_NODELAY=1 storescp -aet PACS -od "$WORK/pacs-$preset" "$pacs_port" >/dev/null 2>&1 &
  log="$WORK/listen-$preset.log"
  "$BIN" listen --model "$model" --device "$DEVICE" --addr 127.0.0.1:0 --spool "$WORK/spool-$preset" --dest "PACS@127.0.0.1:$pacs_port" 2>"$log" &
  node_pid=$!
  for _ in $(seq 600); do grep -q "listening as" "$log" && break; sleep 0.1; done
  port=$(grep -o 'on 127.0.0.1:[0-9]*' "$log" | head -1 | grep -o '[0-9]*$')
  t0=$(now)
  TCP_NODELAY=1 storescu -aec HIPFRAC 127.0.0.1 "$port" "$WORK"/data/dicom/*.dcm >/dev/null 2>&1
  until [ "$(ls "$WORK/spool-$preset/done" | wc -l)" -ge "$COUNT" ]; do sleep 0.05; done
  t1=$(now)
  node_rate=$(python3 -c "print(f'{$COUNT/($t1-$t0):.2f}')")
  kill -TERM "$node_pid"; wait "$node_pid" || true
  received=$(ls "$WORK/pacs-$preset" | wc -l)
  [ "$received" -ge $((COUNT * 3)) ] || { echo "the PACS received $received objects, expected $((COUNT * 3))" >&2; exit 1; }
  printf '%-6s  %13s  %11s  %12s\n' "$preset" "$predict_rate" "$node_rate" "$(python3 -c "print(f'{$node_rate/$predict_rate:.2f}x')")"
done
