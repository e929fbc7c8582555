#!/usr/bin/env bash
# DAMO-YOLO-T train step (forward, backward, SGD): hipfrac on tch vs the same architecture
# in PyTorch (bench/train_step/damo_t.py) in its default layout and channels-last, same
# machine, same threads, same stand-in objective; plus hipfrac's step with the real loss
# (AlignOTA + QFL + GIoU + DFL). The runs alternate for ROUNDS rounds (machines drift) and
# the medians are compared.
# Needs a Python with torch 2.11 (PYTHON=/path/to/python; the CPU-only project venv cannot
# import torch in Python, so make one: python3.11 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.11.0).
# Usage: bench/train_step.sh [SIZE] [BATCH] [STEPS] [THREADS] [DEVICE] [EXTRA...]   (default 512 4 6 2 cpu)
# EXTRA goes to the PyTorch side (e.g. --bf16 on a GPU); ROUNDS=3 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${1:-512}"; BATCH="${2:-4}"; STEPS="${3:-6}"; THREADS="${4:-2}"; DEVICE="${5:-cpu}"
shift $(( $# < 5 ? $# : 5 ))
PYTHON="${PYTHON:-python3}"; ROUNDS="${ROUNDS:-3}"
cargo build --release -j2 -p hipfrac-train --example train_step >&2
BIN="${TRAIN_STEP_BIN:-target/release/examples/train_step}"
log=$(mktemp)
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  "$BIN" "$SIZE" "$BATCH" "$STEPS" "$THREADS" "$DEVICE" plain | tee -a "$log" >&2
  "$PYTHON" bench/train_step/damo_t.py --size "$SIZE" --batch "$BATCH" --steps "$STEPS" --threads "$THREADS" --device "$DEVICE" "$@" | tee -a "$log" >&2
  "$PYTHON" bench/train_step/damo_t.py --size "$SIZE" --batch "$BATCH" --steps "$STEPS" --threads "$THREADS" --device "$DEVICE" --channels-last "$@" | tee -a "$log" >&2
done
"$BIN" "$SIZE" "$BATCH" "$STEPS" "$THREADS" "$DEVICE" full | tee -a "$log" >&2
"$PYTHON" - "$log" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
def median(pred):
    return statistics.median(r["images_per_s"] for r in runs if pred(r))
ours = median(lambda r: r["framework"] == "hipfrac-tch" and r["objective"] == "plain")
full = median(lambda r: r["framework"] == "hipfrac-tch" and r["objective"] == "full")
plain = median(lambda r: r["framework"] == "pytorch" and not r.get("channels_last"))
cl = median(lambda r: r["framework"] == "pytorch" and r.get("channels_last"))
r = runs[0]
print(f"images/s at {r['size']} px, batch {r['batch']} (medians): hipfrac {ours:.2f}; PyTorch {plain:.2f} "
      f"(→ {ours / plain:.2f}×), PyTorch channels-last {cl:.2f} (→ {ours / cl:.2f}×); "
      f"hipfrac with the real loss {full:.2f}")
PY
rm -f "$log"
