#!/usr/bin/env bash
# How much one training run's luck moves the real-film numbers: retrains the models of an
# existing phantom-only demo (`hipfrac demo --phantom-only`, v1 or `--generator v2`) with
# other seeds on the very same simulated radiographs and recipe, and answers the shared real
# films with each (bench/real.sh's table, one row per seed). A change to the phantom or the
# recipe that moves a number by less than the spread between seeds is not shown by one run.
#
# PART=localiser (default): each seed retrains the hip localiser only (about 90 s on 2 cores
# for the demo's 20 epochs at 256 px) and keeps the demo's fracture detector and operating
# points: the spread of "hips assessed" and of the out-of-scope refusals. PART=both also
# retrains the crop detector (6-7 minutes more per seed for the demo's 60 epochs) and chooses
# its operating points on the demo's validation split: the spread of the fracture AUC too.
# The seed the demo trained with is among the rows as it was (`demo`); every other row
# differs from it in the seed alone (EXTRA="key = value" lines override the recipe of every
# model retrained, e.g. EXTRA="epochs = 10", to measure a recipe change against the seeds'
# spread; not seed, out or a [section]'s key).
# The demo must be phantom-only (a localiser without a hip threshold chosen on real films)
# and its train.toml's paths absolute (bench/real.sh gives its demos absolute paths).
#
# Usage: bench/seeds.sh DEMO_DIR [OUT]   (env: BIN, SHARED=../shared, SEEDS="8 9 10 11",
#        PART=localiser|both, EXTRA; a seed trained before in OUT is kept unless FRESH=1)
set -euo pipefail
here="$(pwd)"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
[ -n "${1:-}" ] || { echo "usage: bench/seeds.sh DEMO_DIR [OUT]" >&2; exit 2; }
DEMO="$(abs "$1")"
OUT_GIVEN=""
[ -n "${2:-}" ] && OUT_GIVEN="$(abs "$2")"
[ -n "${BIN:-}" ] && BIN="$(abs "$BIN")"
[ -n "${SHARED:-}" ] && SHARED="$(abs "$SHARED")"
cd "$(dirname "$0")/.."
OUT="${OUT_GIVEN:-runs/seeds-$(date -u +%Y%m%d-%H%M%S)}"
BIN="${BIN:-target/release/hipfrac}"
SEEDS="${SEEDS:-8 9 10 11}"
PART="${PART:-localiser}"
case "$PART" in localiser | both) ;; *) echo "error: PART=$PART: localiser or both" >&2; exit 2 ;; esac
model="$DEMO/run/best"
for f in "$model/train.toml" "$model/localiser/train.toml"; do
  [ -f "$f" ] || { echo "error: $f not found: DEMO_DIR must hold a finished hipfrac demo (run/best with its localiser)" >&2; exit 2; }
  python3 - "$f" <<'PY' || exit 2
import sys, tomllib
config = tomllib.load(open(sys.argv[1], "rb"))
for key in ("train", "val"):
    if not str(config.get(key, "")).startswith("/"):
        sys.exit(f"error: {sys.argv[1]}: {key} = {config.get(key)!r} is not an absolute path (rerun the demo with an absolute --out)")
PY
done
if [ -f "$model/localiser/hip_threshold.json" ]; then
  echo "error: $model/localiser/hip_threshold.json: this demo's localiser learned real films (its hip threshold was chosen on them); bench/seeds.sh measures phantom-only demos (hipfrac demo --phantom-only)" >&2
  exit 2
fi
# EXTRA: `key = value` lines of train.toml's top level, checked before anything is trained.
python3 - "${EXTRA:-}" <<'PY' || exit 2
import sys, tomllib
for line in sys.argv[1].splitlines():
    if not line.strip():
        continue
    key, eq, value = line.partition("=")
    key = key.strip()
    if not eq or not value.strip() or not key.isidentifier():
        sys.exit(f"error: EXTRA: {line!r} is not `key = value` with a top-level key")
    if key in ("seed", "out"):
        sys.exit(f"error: EXTRA: {key} is set by bench/seeds.sh")
    try:
        tomllib.loads(line)
    except tomllib.TOMLDecodeError as e:
        sys.exit(f"error: EXTRA: {line!r}: {e}")
PY
if [ "$BIN" = target/release/hipfrac ]; then cargo build --release -j2 -p hipfrac >&2; fi
BIN="$(realpath "$BIN")"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
started=$(date +%s)
echo "seed spread: $(nproc) cores ($(uname -m)), $(date -u +%Y-%m-%dT%H:%MZ), demo $DEMO, part: $PART, seeds: $SEEDS${EXTRA:+, recipe: $(echo "$EXTRA" | paste -sd';')}"

# A train.toml like FROM with `seed`, `out` and EXTRA's keys replaced (keys before [model]).
retarget() { # FROM TO OUT_DIR SEED
  python3 - "$1" "$2" "$3" "$4" "${EXTRA:-}" <<'PY'
import sys
src, dst, out, seed, extra = sys.argv[1:]
over = {"seed": seed, "out": '"%s"' % out}
for line in extra.splitlines():  # checked before the loop
    if line.strip():
        key, _, value = line.partition("=")
        over[key.strip()] = value.strip()
lines, seen, top = [], set(), True
for line in open(src).read().splitlines():
    if line.startswith("[") and top:
        lines += [f"{k} = {v}" for k, v in over.items() if k not in seen]
        seen.update(over)
        top = False
    key = line.split("=")[0].strip()
    if top and key in over:
        seen.add(key)
        line = f"{key} = {over[key]}"
    lines.append(line)
if top:
    lines += [f"{k} = {v}" for k, v in over.items() if k not in seen]
open(dst, "w").write("\n".join(lines) + "\n")
PY
}

models=("demo=$model")
for seed in $SEEDS; do
  w="$OUT/seed-$seed"
  # A seed trained before with the same PART and EXTRA is kept (its `done` records them).
  recipe="PART=$PART EXTRA=$(echo "${EXTRA:-}" | paste -sd';')"
  if [ -f "$w/done" ] && [ "$(cat "$w/done")" = "$recipe" ] && [ -z "${FRESH:-}" ]; then
    echo "seed $seed: trained before, kept (FRESH=1 retrains)"
    models+=("seed-$seed=$w/model")
    continue
  fi
  rm -rf "$w" && mkdir -p "$w"
  t=$(date +%s)
  cp -r "$model" "$w/model"
  retarget "$model/localiser/train.toml" "$w/loc.toml" "$w/loc" "$seed"
  "$BIN" train --config "$w/loc.toml" --device cpu >"$w/loc.log" 2>&1 || { tail -5 "$w/loc.log" >&2; exit 1; }
  rm -rf "$w/model/localiser" && cp -r "$w/loc/$([ -d "$w/loc/best" ] && echo best || echo last)" "$w/model/localiser"
  if [ "$PART" = both ]; then
    retarget "$model/train.toml" "$w/det.toml" "$w/det" "$seed"
    "$BIN" train --config "$w/det.toml" --device cpu >"$w/det.log" 2>&1 || { tail -5 "$w/det.log" >&2; exit 1; }
    part="$([ -d "$w/det/best" ] && echo best || echo last)"
    find "$w/det/$part" -maxdepth 1 -type f -exec cp {} "$w/model/" \;
    # Operating points on the demo's own validation split, as the demo chose them (the
    # demo's belong to its own detector).
    rm -f "$w/model/operating_points.json"
    "$BIN" calibrate --model "$w/model" --data "$(awk -F' = ' '$1 == "val" {gsub(/"/, "", $2); print $2}' "$model/train.toml")" \
      --device cpu >"$w/calibrate.log" 2>&1 || { tail -5 "$w/calibrate.log" >&2; exit 1; }
  fi
  echo "$recipe" >"$w/done"
  echo "seed $seed: trained in $(( $(date +%s) - t )) s"
  models+=("seed-$seed=$w/model")
done
[ -n "${SHARED:-}" ] && export SHARED
BIN="$BIN" VARIANTS=none MODELS="${models[*]}" bench/real.sh "$OUT/real" | sed -n '/^| /,$p'
echo
echo "seed spread: $(( $(date +%s) - started )) s; outputs in $OUT"
