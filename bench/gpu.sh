#!/usr/bin/env bash
# The GPU checks of issue #16 in one run, for a session that is lent a GPU (the `device` tool,
# 15 minutes in all): prepared and built here, run there with the binaries carried.
#
#   here:  bench/gpu.sh --prepare                 # release binaries → gpu-bin/ (ignored, ~35 MB)
#   there: run(command="bash bench/gpu.sh", carry=["gpu-bin"], timeout_s=560)
#
# On the GPU host it measures, each with its own time limit so the whole fits one command:
#   1. the train step at 1024 px, batch 64 (forward, real loss, backward, SGD): hipfrac fp32 and
#      bf16 against the official-architecture network in that host's PyTorch 2.11
#      (bench/train_step/damo_t.py: default layout, channels-last, channels-last + bf16);
#      goal ≥ 255 images/s (1.5× the official code's 170);
#   2. bulk inference at batch 32, 1024 px: hipfrac fp32/bf16 (network, and the whole
#      Predictor::predict_batch) against damo_t.py --infer; goal ≥ 1,600 images/s;
#   3. three epochs of the paper's recipe (DAMO-YOLO-T, 1024 px, batch 64) on 768 phantom
#      radiographs, to show the loss falling (log.csv).
# Everything lands in $OUT (results.jsonl, train-log.csv, nvidia-smi.txt, the console log).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --prepare ]; then
  set -e
  cargo build --release -j2 -p hipfrac
  cargo build --release -j2 -p hipfrac-train --example train_step
  cargo build --release -j2 -p hipfrac-infer --features test-support --example infer_step
  mkdir -p gpu-bin
  cp target/release/hipfrac target/release/hipfrac-torch target/release/examples/train_step target/release/examples/infer_step gpu-bin/
  du -sh gpu-bin
  exit 0
fi
OUT="${OUT:-bench/out/gpu}"
mkdir -p "$OUT"
PYTHON="${PYTHON:-/opt/torch/.venv/bin/python}"
# The CUDA torch the binaries load (hipfrac finds it by itself; the examples need it named).
TORCH_LIB="${HIPFRAC_TORCH_LIB:-$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}"
export HIPFRAC_TORCH_LIB="$TORCH_LIB" LD_LIBRARY_PATH="$TORCH_LIB:${LD_LIBRARY_PATH:-}"
THREADS="$(nproc)"
log() { echo "== $*" | tee -a "$OUT/console.log"; }
record() { tee -a "$OUT/results.jsonl" | tee -a "$OUT/console.log"; }
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
log "GPU: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null), $(date -u +%Y-%m-%dT%H:%MZ)"

log "1. train step, 1024 px, batch 64"
for precision in fp32 bf16; do
  PRECISION=$precision timeout 90 gpu-bin/train_step 1024 64 10 "$THREADS" cuda full | record
done
timeout 90 "$PYTHON" bench/train_step/damo_t.py --size 1024 --batch 64 --steps 10 --device cuda | record
timeout 90 "$PYTHON" bench/train_step/damo_t.py --size 1024 --batch 64 --steps 10 --device cuda --channels-last | record
timeout 90 "$PYTHON" bench/train_step/damo_t.py --size 1024 --batch 64 --steps 10 --device cuda --channels-last --bf16 | record

log "2. inference, 1024 px, batch 32"
for precision in fp32 bf16; do
  PRECISION=$precision timeout 90 gpu-bin/infer_step 1024 32 20 "$THREADS" cuda t | record
done
timeout 60 "$PYTHON" bench/train_step/damo_t.py --infer --size 1024 --batch 32 --steps 20 --device cuda --channels-last | record
timeout 60 "$PYTHON" bench/train_step/damo_t.py --infer --size 1024 --batch 32 --steps 20 --device cuda --channels-last --bf16 | record

log "3. the paper's recipe for three epochs on phantom radiographs"
WORK="$(mktemp -d)"
timeout 120 gpu-bin/hipfrac phantom --count 768 --size 1024 --seed 7 --out "$WORK/data" >> "$OUT/console.log" 2>&1
gpu-bin/hipfrac dataset split "$WORK/data" --ratios 0.8,0.2,0 --seed 1 >> "$OUT/console.log" 2>&1
printf 'train = "%s"\nval = "%s"\nout = "%s"\nepochs = 3\nwarmup_epochs = 1.0\nno_aug_epochs = 1\nprecision = "bf16"\n' \
  "$WORK/data/splits/train.csv" "$WORK/data/splits/val.csv" "$WORK/run" > "$WORK/paper.toml"
HIPFRAC_TORCH=gpu-bin/hipfrac-torch timeout 240 gpu-bin/hipfrac train --device cuda --config "$WORK/paper.toml" >> "$OUT/console.log" 2>&1
cp "$WORK/run/log.csv" "$OUT/train-log.csv" 2>/dev/null && cat "$OUT/train-log.csv" | tee -a "$OUT/console.log"
log "done"
