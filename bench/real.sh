#!/usr/bin/env bash
# The real-film benchmark: how hipfrac does on real radiographs, cross-validated on the shared
# FracAtlas films (CC BY 4.0; Abedeen et al., Sci Data 2023) and the real CRs.
#
# Data: the 89 real AP hip/pelvis films of ../shared/data/real/fracatlas (11 fractured, type
# unknown; hip boxes from data/real), its 90 hand/leg/shoulder films, the chest and tibia CRs
# (RG1, RG3) given as PNG so that no header can help, and the hip CR RG2. Patient-disjoint
# 5-fold cross-validation of the FracAtlas films by ID block (`hipfrac dataset folds`): for
# fold i, fold i is the test, fold i+1 the validation (hip threshold and operating points,
# `hipfrac calibrate --out-of-scope`), the other three train. Variants (the two-stage
# detector, nano, 256 px):
#   a  phantom-only: `hipfrac demo --phantom-only` (the localiser and the fracture detector
#      learn the phantom alone); one model predicts every film (no fold ever trains it)
#   b  phantom pre-training, then fine-tuning on each fold's real films (train.toml `init`):
#      the localiser on 160 phantom radiographs + the fold's real hips + its out-of-scope
#      films (turned by 90° at random), the fracture detector on 160 phantom radiographs +
#      the fold's real hips (FracAtlas boxes: partial labels, type unknown)
#   c  real only: the same fold data without the phantom or pre-training
#   v2 phantom v2 only: `hipfrac demo --phantom-only --generator v2` (a, on phantom v2's
#      radiographs projected from 3D anatomy: its transfer to real films); not in the default
#      VARIANTS (its simulation alone takes about 8 minutes on 2 cores)
#   MODELS="NAME=DIR ..." adds a row per existing model (e.g. `demo=runs/demo/run/best`),
#      predicted on every film as it is (a model that learned some of these films, as the
#      demo's localiser does, is measured partly on its training films: say so).
# PHANTOM=DIR reuses an earlier `hipfrac demo --phantom-only` (or a demo of the same recipe)
# instead of running one.
# RG1, RG3 and RG2 are never trained on; in b and c fold 1's model answers them.
# Prints one table (bench/real_table.py): any-fracture AUC (95 % interval, patient bootstrap),
# Se/Sp at the verdict, localisation, hip films assessed, out-of-scope films refused and
# called a fracture, RG2's answer. Few real fractures (11 films, about 6 patients): read
# every number with its interval. Runs differ from machine to machine by a few points.
# Usage: bench/real.sh [OUT]   (env: BIN, SHARED=../shared, VARIANTS="a b c" (or v2; none: MODELS only), MODELS, PHANTOM, K=5,
#        LOC_EPOCHS=30, DET_EPOCHS=20 (b), REAL_LOC_EPOCHS=30, REAL_DET_EPOCHS=40 (c))
set -euo pipefail
# Paths given relative to where the script was started, resolved before moving to the checkout.
here="$(pwd)"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
[ -n "${1:-}" ] && set -- "$(abs "$1")"
[ -n "${BIN:-}" ] && BIN="$(abs "$BIN")"
[ -n "${SHARED:-}" ] && SHARED="$(abs "$SHARED")"
[ -n "${PHANTOM:-}" ] && PHANTOM="$(abs "$PHANTOM")"
models=()
for given in ${MODELS:-}; do models+=("${given%%=*}=$(abs "${given#*=}")"); done
cd "$(dirname "$0")/.."
OUT="${1:-runs/real-$(date -u +%Y%m%d-%H%M%S)}"
BIN="${BIN:-target/release/hipfrac}"
SHARED="${SHARED:-../shared}"
VARIANTS="${VARIANTS:-a b c}"
K="${K:-5}"
[ "$K" -ge 3 ] || { echo "error: K=$K: each fold needs a test, a validation and a training part (K >= 3)" >&2; exit 2; }
if [ "$BIN" = target/release/hipfrac ]; then cargo build --release -j2 -p hipfrac >&2; fi
real="$SHARED/data/real/fracatlas"
[ -f "$real/manifest.csv" ] || { echo "error: $real/manifest.csv not found (set SHARED)" >&2; exit 2; }
started=$(date +%s)
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
BIN="$(realpath "$BIN")"
echo "real-film benchmark: $(nproc) cores ($(uname -m)), $(date -u +%Y-%m-%dT%H:%MZ), variants: $VARIANTS${MODELS:+; models: $MODELS}"

# -- data: the shared films with hipfrac's annotations; RG1/RG3 as PNG; folds by ID block
D="$OUT/data"
if [ ! -f "$D/ready" ]; then
  rm -rf "$D" && mkdir -p "$D/fracatlas"
  ln -s "$(realpath "$real/images")" "$D/fracatlas/images"
  cp -r data/real/fracatlas/annotations "$D/fracatlas/"
  cp data/real/fracatlas/hips-all.csv "$D/fracatlas/hips.csv"
  cp data/real/fracatlas/out-of-scope-all.csv "$D/fracatlas/oos.csv"
  # Every shared film is the one the annotations were drawn on.
  python3 - "$real" <<'PY'
import csv, hashlib, sys
base = sys.argv[1]
for r in csv.DictReader(open(f"{base}/manifest.csv")):
    digest = hashlib.sha256(open(f"{base}/{r['image']}", "rb").read()).hexdigest()[:16]
    if digest != r["sha16"]:
        sys.exit(f"{r['image']}: sha256 {digest} is not the manifest's {r['sha16']}")
PY
  "$BIN" convert "$SHARED/data/dicom/dicom_pydicomdata_chest_mono1/RG1_J2KI.dcm" \
    "$SHARED/data/dicom/dicom_wg04_tibia_mono1/RG3_JPLL" --out "$D/crs" >/dev/null
  rm -f "$D"/crs/*.json   # no sidecar: the PNG alone
  "$BIN" dataset folds "$D/fracatlas/hips.csv" "$D/fracatlas/oos.csv" --k "$K" --seed 1 --out "$D/folds"
  touch "$D/ready"
fi
RG2="$SHARED/data/dicom/dicom_wg04_hip/RG2_UNC"
oos_files() { awk -F, 'NR>1{print $1}' "$1" | sed "s|^|$(dirname "$1")/|"; }

# Predicts with MODEL into RUN: the hip films of MANIFEST (evaluate), the out-of-scope films
# of OOS_MANIFEST (predict), and, with a third argument, RG1/RG3 and RG2.
answer() {
  local model="$1" run="$2" hips="$3" oos="$4" extras="${5:-}"
  mkdir -p "$run"
  "$BIN" evaluate --model "$model" --data "real hips=$hips" --out "$run/eval" --device cpu --overwrite >"$run/eval.log" 2>&1 \
    || { cat "$run/eval.log" >&2; return 1; }
  local files=()
  mapfile -t files < <(oos_files "$oos")
  if [ -n "$extras" ]; then files+=("$D/crs/RG1_J2KI.png" "$D/crs/RG3_JPLL.png"); fi
  "$BIN" predict "${files[@]}" --model "$model" --out "$run/oos" --no-overlay --device cpu --overwrite >"$run/oos.log" 2>&1 || true
  if [ -n "$extras" ]; then
    "$BIN" predict "$RG2" --model "$model" --out "$(dirname "$run")/rg2" --device cpu --overwrite >"$run/rg2.log" 2>&1 || true
  fi
}

# A train.toml for the two-stage CPU recipe (nano, 256 px, equalised).
write_config() { # FILE STAGE TRAIN VAL OUT EPOCHS LR INIT ROTATE
  cat >"$1" <<EOF
train = "$3"
val = "$4"
out = "$5"
stage = "$2"
image_size = 256
batch_size = 16
epochs = $6
warmup_epochs = 1.0
no_aug_epochs = $(( $6 / 5 ))
val_interval = $6
base_lr_per_image = $7
equalize = true
acquisition = 0.5
rotate90 = $9
mosaic = 0.0
mixup = 0.0
seed = 3
EOF
  if [ -n "$8" ]; then echo "init = \"$8\"" >>"$1"; fi
  printf '\n[model]\npreset = "nano"\n' >>"$1"
}

# Two-stage model of one fold: the localiser, then the crop detector, assembled and calibrated.
fold_model() { # WORK PHANTOM_TRAIN(or "") INIT_DIR(or "") LOC_EPOCHS DET_EPOCHS LR TRAIN_HIPS TRAIN_OOS VAL_HIPS VAL_OOS
  local w="$1" phantom="$2" init="$3"
  mkdir -p "$w"
  local loc_train=("$7" "$8") det_train=("$7")
  if [ -n "$phantom" ]; then loc_train+=("$phantom"); det_train+=("$phantom"); fi
  "$BIN" dataset merge "${loc_train[@]}" --out "$w/loc-train.csv" --overwrite >/dev/null
  "$BIN" dataset merge "${det_train[@]}" --out "$w/det-train.csv" --overwrite >/dev/null
  write_config "$w/loc.toml" hips "$w/loc-train.csv" "$9" "$w/loc" "$4" "$6" "${init:+$init/localiser}" 0.25
  write_config "$w/det.toml" hip_crops "$w/det-train.csv" "$9" "$w/det" "$5" "$6" "${init:+$init}" 0.0
  "$BIN" train --config "$w/loc.toml" --device cpu >"$w/loc.log" 2>&1 || { tail -5 "$w/loc.log" >&2; return 1; }
  "$BIN" train --config "$w/det.toml" --device cpu >"$w/det.log" 2>&1 || { tail -5 "$w/det.log" >&2; return 1; }
  # No validation improvement ever written (e.g. a fold without a fracture): the last weights.
  for part in loc det; do [ -d "$w/$part/best" ] || cp -r "$w/$part/last" "$w/$part/best"; done
  rm -rf "$w/model" && cp -r "$w/det/best" "$w/model" && cp -r "$w/loc/best" "$w/model/localiser"
  "$BIN" calibrate --model "$w/model" --data "$9" --out-of-scope "${10}" --device cpu >"$w/calibrate.log" 2>&1 \
    || { tail -5 "$w/calibrate.log" >&2; return 1; }
}

runs=()
for given in "${models[@]}"; do
  name="${given%%=*}" dir="${given#*=}"
  mkdir -p "$OUT/model-$name" && echo "model $name ($dir)" >"$OUT/model-$name/NAME"
  answer "$(realpath "$dir")" "$OUT/model-$name/all" "$D/fracatlas/hips.csv" "$D/fracatlas/oos.csv" extras
  runs+=("$OUT/model-$name")
done
if [ -n "${PHANTOM:-}" ] && [ ! -d "$PHANTOM/run/best" ]; then
  echo "error: PHANTOM=$PHANTOM holds no demo model (run/best)" >&2; exit 2
fi
PHANTOM="${PHANTOM:-$OUT/phantom}"
if [[ " $VARIANTS " == *" a "* || " $VARIANTS " == *" b "* ]] && [ ! -d "$PHANTOM/run/best" ]; then
  rm -rf "$OUT/phantom"
  t=$(date +%s)
  "$BIN" demo --phantom-only --out "$PHANTOM" --device cpu >"$OUT/phantom.log" 2>&1 || { tail -20 "$OUT/phantom.log" >&2; exit 1; }
  echo "phantom pre-training (hipfrac demo --phantom-only): $(( $(date +%s) - t )) s"
fi
if [[ " $VARIANTS " == *" v2 "* ]]; then
  if [ ! -d "$OUT/phantom-v2/run/best" ]; then
    rm -rf "$OUT/phantom-v2"
    t=$(date +%s)
    "$BIN" demo --phantom-only --generator v2 --out "$OUT/phantom-v2" --device cpu >"$OUT/phantom-v2.log" 2>&1 \
      || { tail -20 "$OUT/phantom-v2.log" >&2; exit 1; }
    echo "phantom v2 training (hipfrac demo --phantom-only --generator v2): $(( $(date +%s) - t )) s"
  fi
  mkdir -p "$OUT/v2" && echo "v2: phantom v2 only" >"$OUT/v2/NAME"
  answer "$OUT/phantom-v2/run/best" "$OUT/v2/all" "$D/fracatlas/hips.csv" "$D/fracatlas/oos.csv" extras
  runs+=("$OUT/v2")
fi
if [[ " $VARIANTS " == *" a "* ]]; then
  mkdir -p "$OUT/a" && echo "a: phantom only" >"$OUT/a/NAME"
  answer "$PHANTOM/run/best" "$OUT/a/all" "$D/fracatlas/hips.csv" "$D/fracatlas/oos.csv" extras
  runs+=("$OUT/a")
fi
if [[ " $VARIANTS " == *" b "* ]]; then
  # 160 phantom radiographs (both sites, drawn at random) beside the real films: the real ones
  # would drown in the demo's 416. Written beside the demo's manifest (its paths are relative).
  python3 - "$PHANTOM/internal/splits/train.csv" "$OUT/phantom-160.csv" <<'PY'
import csv, os, random, sys
rows = list(csv.DictReader(open(sys.argv[1])))
random.Random(5).shuffle(rows)
base = os.path.dirname(os.path.abspath(sys.argv[1]))
with open(sys.argv[2], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["image", "annotation", "patient", "site", "label"], extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows[:160]:
        for k in ("image", "annotation"):
            if r[k]:
                r[k] = os.path.join(base, r[k])
        w.writerow(r)
PY
fi
for variant in b c; do
  [[ " $VARIANTS " == *" $variant "* ]] || continue
  t=$(date +%s)
  mkdir -p "$OUT/$variant"
  case $variant in
    b) echo "b: phantom pre-training + real fine-tuning" >"$OUT/b/NAME" ;;
    c) echo "c: real films only" >"$OUT/c/NAME" ;;
  esac
  for i in $(seq 1 "$K"); do
    v=$(( i % K + 1 ))
    w="$OUT/$variant/fold-$i"
    mkdir -p "$w"
    train_hips=() train_oos=()
    for j in $(seq 1 "$K"); do
      [ "$j" = "$i" ] || [ "$j" = "$v" ] && continue
      train_hips+=("$D/folds/fold-$j/hips.test.csv"); train_oos+=("$D/folds/fold-$j/oos.test.csv")
    done
    "$BIN" dataset merge "${train_hips[@]}" --out "$w/real-hips.csv" --overwrite >/dev/null
    "$BIN" dataset merge "${train_oos[@]}" --out "$w/real-oos.csv" --overwrite >/dev/null
    val_hips="$D/folds/fold-$v/hips.test.csv" val_oos="$D/folds/fold-$v/oos.test.csv"
    if [ $variant = b ]; then
      fold_model "$w" "$OUT/phantom-160.csv" "$PHANTOM/run/best" "${LOC_EPOCHS:-30}" "${DET_EPOCHS:-20}" 0.0005 \
        "$w/real-hips.csv" "$w/real-oos.csv" "$val_hips" "$val_oos"
    else
      fold_model "$w" "" "" "${REAL_LOC_EPOCHS:-30}" "${REAL_DET_EPOCHS:-40}" 0.00125 \
        "$w/real-hips.csv" "$w/real-oos.csv" "$val_hips" "$val_oos"
    fi
    answer "$w/model" "$w" "$D/folds/fold-$i/hips.test.csv" "$D/folds/fold-$i/oos.test.csv" $([ "$i" = 1 ] && echo extras)
    echo "variant $variant fold $i: $(grep -h 'hip threshold' "$w/calibrate.log" || true)"
  done
  echo "variant $variant: $(( $(date +%s) - t )) s"
  runs+=("$OUT/$variant")
done
echo
python3 bench/real_table.py "${runs[@]}"
echo
echo "whole benchmark: $(( $(date +%s) - started )) s; outputs in $OUT"
