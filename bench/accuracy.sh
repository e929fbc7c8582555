#!/usr/bin/env bash
# The accuracy benchmark, rerunnable: the paper's single-stage detector and hipfrac's
# two-stage one (hip localiser, then the fracture detector on each hip's crop), on the same
# simulated data.
#
# For each configuration, `hipfrac demo` simulates the internal hospitals site-a + site-b
# (INTERNAL radiographs, split by patient in RATIOS: 70/10/20 by default, so that the test
# split holds at least 400 radiographs with about as many training images as 80/10/10 of
# 2,000) and the external hospital site-c
# (EXTERNAL, held out whole) at PHANTOM_PX pixels (the same seed: the same radiographs for
# both), trains DAMO-YOLO nano with the CPU demo's recipe for EPOCHS epochs (single stage:
# the whole film at 320 px; two-stage: the localiser at 256 px for a third as many, at least
# 10, then the fracture detector on each hip's crop at 256 px), chooses the operating points on the validation
# split, and evaluates the internal test split (Table II) and site-c with the internal
# operating points (Table III), with patient-level bootstrap 95 % intervals. Then it times
# `hipfrac predict` of both models on the internal test split (the localising stage's cost).
# ACQUISITION > 0 trains with random re-acquisition. Each run's report.html and cases.csv
# stay in OUT/single and OUT/two-stage.
#
# Phantom radiographs: the numbers say how the pipeline learns the simulator's fractures, not
# how it would do on patients. Runs of this size move by a few points from machine to machine.
# Measured 2026-12-02 (2 cores, EPOCHS=20, the debug build): 947 s single + 962 s two-stage.
# Usage: bench/accuracy.sh [OUT]   (env: BIN, INTERNAL=2250, RATIOS=0.7,0.1,0.2, EXTERNAL=400, EPOCHS=30,
#        PHANTOM_PX=640, ACQUISITION=0, SEED=7, CONFIGS="single two-stage")
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/accuracy-$(date -u +%Y%m%d-%H%M%S)}"
BIN="${BIN:-target/release/hipfrac}"
if [ "$BIN" = target/release/hipfrac ]; then cargo build --release -j2 -p hipfrac >&2; fi
CONFIGS="${CONFIGS:-single two-stage}" INTERNAL="${INTERNAL:-2250}" RATIOS="${RATIOS:-0.7,0.1,0.2}" EXTERNAL="${EXTERNAL:-400}" EPOCHS="${EPOCHS:-30}" PHANTOM_PX="${PHANTOM_PX:-640}"
mkdir -p "$OUT"
echo "accuracy benchmark: $(nproc) cores ($(uname -m)), $(date -u +%Y-%m-%dT%H:%MZ), internal $INTERNAL (split $RATIOS), external $EXTERNAL, simulated at $PHANTOM_PX px, $EPOCHS epochs, acquisition ${ACQUISITION:-0}"
for config in $CONFIGS; do
  case "$config" in
    single) flag=(--single-stage) ;;
    two-stage) flag=(--two-stage) ;;
    *) echo "error: unknown configuration $config (single, two-stage)" >&2; exit 2 ;;
  esac
  started=$(date +%s)
  "$BIN" demo "${flag[@]}" --out "$OUT/$config" --internal-images "$INTERNAL" --ratios "$RATIOS" --external-images "$EXTERNAL" \
    --epochs "$EPOCHS" --phantom-px "$PHANTOM_PX" --acquisition "${ACQUISITION:-0}" --seed "${SEED:-7}" --device cpu
  echo
  echo "== $config: wall time $(( $(date +%s) - started )) s; report: $OUT/$config/report/report.html"
  echo "== Tables II/III style, at the verdict, with patient-level bootstrap 95 % intervals (report.md)"
  awk '/^## /{section=$0} /^At the verdict/{print section; show=1; next} show&&/^At the high-specificity/{show=0} show' "$OUT/$config/report/report.md"
  python3 - "$OUT/$config/report/cases.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for section in dict.fromkeys(r["section"] for r in rows):
    rs = [r for r in rows if r["section"] == section]
    refused = [r for r in rs if r["not_assessable"]]
    clear = [r for r in rs if r["truth"] == "none"]
    print(f"== {section}: {len(refused)} of {len(rs)} not assessable (the localiser found no hip; "
          f"{sum(r['truth'] != 'none' for r in refused)} of them fractured); "
          f"{sum(r['verdict'] == 'none' for r in clear)} of {len(clear)} without a fracture answered none")
PY
done
# The localising stage's cost: predict the internal test split with each model, 2 threads.
test_images=$(awk -F, 'NR>1{print $1}' "$OUT/${CONFIGS%% *}/internal/splits/test.csv" | sed "s|^|$OUT/${CONFIGS%% *}/internal/splits/|" | head -100)
for config in $CONFIGS; do
  [ -d "$OUT/$config/run/best" ] || continue
  rm -rf "$OUT/$config/timing"
  started=$(date +%s%N)
  # shellcheck disable=SC2086
  "$BIN" predict --model "$OUT/$config/run/best" --out "$OUT/$config/timing" $test_images > /dev/null
  echo "== $config: predict $(echo "$test_images" | wc -l) test radiographs: $(( ($(date +%s%N) - started) / 1000000 )) ms"
done
