#!/usr/bin/env bash
# The accuracy benchmark (single-stage, the paper's configuration at CPU scale), rerunnable.
#
# Simulates the internal hospitals site-a + site-b (INTERNAL radiographs, split by patient
# 80/10/10: with 4,000, about 400 in the test split) and the external hospital site-c
# (EXTERNAL, held out whole), trains DAMO-YOLO nano at 320 px (the CPU demo's recipe, EPOCHS
# epochs), chooses the operating points on the validation split, and evaluates the internal
# test split (Table II) and site-c with the internal operating points (Table III), with
# patient-level bootstrap 95 % intervals — all through `hipfrac demo`, whose report.html and
# cases.csv it leaves in OUT. ACQUISITION > 0 trains with random re-acquisition.
#
# Phantom radiographs: the numbers say how the pipeline learns the simulator's fractures, not
# how it would do on patients. Runs of this size move by a few points from machine to machine.
# Usage: bench/accuracy.sh [OUT]   (env: BIN, INTERNAL=4000, EXTERNAL=400, EPOCHS=20,
#        ACQUISITION=0, SEED=7)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/accuracy-$(date -u +%Y%m%d-%H%M%S)}"
BIN="${BIN:-target/release/hipfrac}"
if [ "$BIN" = target/release/hipfrac ]; then cargo build --release -j2 -p hipfrac >&2; fi
started=$(date +%s)
echo "accuracy benchmark: $(nproc) cores ($(uname -m)), $(date -u +%Y-%m-%dT%H:%MZ), internal ${INTERNAL:-4000}, external ${EXTERNAL:-400}, ${EPOCHS:-20} epochs, acquisition ${ACQUISITION:-0}"
"$BIN" demo --out "$OUT" --internal-images "${INTERNAL:-4000}" --external-images "${EXTERNAL:-400}" \
  --epochs "${EPOCHS:-20}" --acquisition "${ACQUISITION:-0}" --seed "${SEED:-7}" --device cpu
echo "wall time: $(( $(date +%s) - started )) s; report: $OUT/report/report.html"
echo
echo "== Tables II/III style, at the verdict, with patient-level bootstrap 95 % intervals (report.md)"
awk '/^## /{section=$0} /^At the verdict/{print section; show=1; next} show&&/^At the high-specificity/{show=0} show' "$OUT/report/report.md"
