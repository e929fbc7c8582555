#!/usr/bin/env bash
# DAMO-YOLO inference on the CPU: hipfrac on tch (crates/infer/examples/infer_step.rs: the fused
# network, the network with decoding + NMS, and the whole Predictor::predict_batch on a
# 2140 x 1760 radiograph) against the same fused network in PyTorch 2.11
# (bench/train_step/damo_t.py --infer, eval, no autograd, default layout and channels-last),
# same machine, same threads. Runs alternate for ROUNDS rounds (machines drift); medians of
# seconds per image are compared. The 2-core machine's FLOP floor for T at 1024 px is about
# 0.29 s (ROADMAP).
# Needs a Python with torch 2.11 (PYTHON=/path/to/python; the project venv lacks the CUDA
# libraries Python's torch imports: python3.11 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.11.0).
# Usage: bench/infer.sh [SIZE] [BATCH] [STEPS] [THREADS] [PRESET]   (default 1024 1 10 2 t)
#        PRECISION=bf16 bench/infer.sh ...   times both sides in bf16 autocast
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${1:-1024}"; BATCH="${2:-1}"; STEPS="${3:-10}"; THREADS="${4:-2}"; PRESET="${5:-t}"
PYTHON="${PYTHON:-python3}"; ROUNDS="${ROUNDS:-3}"
cargo build --release -j2 -p hipfrac-infer --features test-support --example infer_step >&2
BIN="${INFER_STEP_BIN:-target/release/examples/infer_step}"
NANO=""; [ "$PRESET" = nano ] && NANO="--nano"
BF16=""; [ "${PRECISION:-fp32}" = bf16 ] && BF16="--bf16"
log=$(mktemp)
echo "DAMO-YOLO-$PRESET inference (${PRECISION:-fp32}), $SIZE px, batch $BATCH, $THREADS threads, CPU ($(nproc) cores, $(uname -m)), $(date -u +%Y-%m-%d), $ROUNDS rounds of $STEPS" >&2
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  "$BIN" "$SIZE" "$BATCH" "$STEPS" "$THREADS" cpu "$PRESET" | tee -a "$log" >&2
  "$PYTHON" bench/train_step/damo_t.py --infer $NANO --size "$SIZE" --batch "$BATCH" --steps "$STEPS" --threads "$THREADS" $BF16 2>/dev/null | tee -a "$log" >&2
  "$PYTHON" bench/train_step/damo_t.py --infer $NANO --size "$SIZE" --batch "$BATCH" --steps "$STEPS" --threads "$THREADS" --channels-last $BF16 2>/dev/null | tee -a "$log" >&2
done
"$PYTHON" - "$log" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
def median(pred):
    return statistics.median(r["seconds_per_batch"] / r["batch"] for r in runs if pred(r))
ours = median(lambda r: r["framework"] == "hipfrac-tch" and r["what"] == "network")
decode = median(lambda r: r["framework"] == "hipfrac-tch" and r["what"] == "network+decode")
whole = median(lambda r: r["framework"] == "hipfrac-tch" and r["what"] == "predict_batch")
plain = median(lambda r: r["framework"] == "pytorch" and not r["channels_last"])
cl = median(lambda r: r["framework"] == "pytorch" and r["channels_last"])
best = min(plain, cl)
print(f"seconds per image (medians): hipfrac network {ours:.3f}, + decode/NMS {decode:.3f}, whole predict_batch {whole:.3f}; "
      f"PyTorch {plain:.3f}, channels-last {cl:.3f}; hipfrac network / PyTorch's best = {ours / best:.2f}x time")
PY
rm -f "$log"
