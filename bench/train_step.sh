#!/usr/bin/env bash
# DAMO-YOLO-T train step (forward, backward, SGD): hipfrac on tch vs the same architecture
# in PyTorch (bench/train_step/damo_t.py), same machine, same threads, same stand-in
# objective; plus hipfrac's step with the real loss (AlignOTA + QFL + GIoU + DFL).
# Needs a Python with torch 2.11 (PYTHON=/path/to/python; the CPU-only project venv cannot
# import torch in Python, so make one: python3.11 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.11.0).
# Usage: bench/train_step.sh [SIZE] [BATCH] [STEPS] [THREADS] [DEVICE]   (default 512 4 10 2 cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${1:-512}"; BATCH="${2:-4}"; STEPS="${3:-10}"; THREADS="${4:-2}"; DEVICE="${5:-cpu}"
PYTHON="${PYTHON:-python3}"
cargo build --release -j2 -p hipfrac-train --example train_step >&2
ours=$(target/release/examples/train_step "$SIZE" "$BATCH" "$STEPS" "$THREADS" "$DEVICE" plain)
full=$(target/release/examples/train_step "$SIZE" "$BATCH" "$STEPS" "$THREADS" "$DEVICE" full)
theirs=$("$PYTHON" bench/train_step/damo_t.py --size "$SIZE" --batch "$BATCH" --steps "$STEPS" --threads "$THREADS" --device "$DEVICE")
echo "$ours"; echo "$full"; echo "$theirs"
"$PYTHON" - "$ours" "$theirs" "$full" <<'PY'
import json, sys
ours, theirs, full = (json.loads(s) for s in sys.argv[1:4])
print(f"images/s at {ours['size']} px, batch {ours['batch']}: hipfrac {ours['images_per_s']:.2f}, PyTorch {theirs['images_per_s']:.2f} "
      f"→ {ours['images_per_s'] / theirs['images_per_s']:.2f}× PyTorch (same network and objective); "
      f"hipfrac with the real loss {full['images_per_s']:.2f}")
PY
