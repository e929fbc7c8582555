#!/usr/bin/env bash
# Fuzz every input parser with libFuzzer (cargo fuzz, nightly toolchain), each target seeded
# from real files, under a 1 GB memory limit (a file that needs more is a finding too).
#
#   bench/fuzz.sh [DICOM_SECONDS [OTHER_SECONDS]]     defaults: 600 (dicom, jpeg12) and 120
#   TARGETS="dicom train_config" bench/fuzz.sh        some targets only
#
# Targets (fuzz/fuzz_targets): dicom, png (DICOM/PNG read + decode + display pipeline), jpeg12
# (the in-house 12-bit JPEG decoder), voc, coco, yolo, manifest, train_config (TOML parse and
# range checks). The corpus grows in
# fuzz/corpus/<target>; crashes land in fuzz/artifacts/<target>/ and fail the script. Each
# crash found becomes a regression test with its input under crates/*/tests/data/.
# A summary (executions, coverage, corpus size, crashes per target) goes to
# bench/out/fuzz-<date>.txt; each target's log in fuzz/logs/. JOBS targets run at once (default:
# one per core). Needs: rustup nightly, ../shared/data/dicom (optional seeds).
set -euo pipefail
cd "$(dirname "$0")/.."
DICOM_SECONDS="${1:-600}"
OTHER_SECONDS="${2:-120}"
DATA="${HIPFRAC_DICOM:-../shared/data/dicom}"
BAD="$(dirname "$DATA")/bad-dicom"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p bench/out
SUMMARY="bench/out/fuzz-$(date +%Y-%m-%d).txt"

# Seeds: the phantom (tiny images, VOC, manifest), its labels as COCO and YOLO, the real
# radiographs under 1 MB, the bad-dicom reproducers, JPEG streams cut from the JPEG files.
BIN=target/release/hipfrac
[ -x "$BIN" ] || BIN=target/debug/hipfrac
[ -x "$BIN" ] || { cargo build -j2 -p hipfrac --bin hipfrac >&2; BIN=target/debug/hipfrac; }
SEEDS="$(mktemp -d)"
trap 'rm -rf "$SEEDS"' EXIT
"$BIN" phantom --count 4 --size 64 --seed 9 --out "$SEEDS/phantom" >/dev/null 2>&1
"$BIN" labels convert --from voc "$SEEDS/phantom/images" --to coco "$SEEDS/labels.json" >/dev/null 2>&1
"$BIN" labels convert --from voc "$SEEDS/phantom/images" --to yolo "$SEEDS/yolo" >/dev/null 2>&1
add() { local target="$1"; shift; mkdir -p "fuzz/corpus/$target"; for f in "$@"; do [ -f "$f" ] && cp "$f" "fuzz/corpus/$target/seed-$(basename "$f")"; done; return 0; }
add dicom "$SEEDS"/phantom/dicom/*.dcm
if [ -d "$DATA" ]; then
  while IFS= read -r f; do add dicom "$f"; done < <(find "$DATA" -type f -size -1024k ! -name '*.md' ! -name 'SHA256SUMS')
fi
[ -d "$BAD" ] && while IFS= read -r f; do add dicom "$f"; done < <(find "$BAD" -type f -name '*.dcm' -size -1024k)
add png "$SEEDS"/phantom/images/*.png
add voc "$SEEDS"/phantom/images/*.xml
add train_config configs/*.toml
add manifest "$SEEDS/phantom/manifest.csv"
add coco "$SEEDS/labels.json"
add yolo "$SEEDS"/yolo/*.txt
mkdir -p fuzz/corpus/jpeg12
if [ -d "$DATA" ]; then
  python3 - "$DATA" fuzz/corpus/jpeg12 <<'PY'
import pathlib, sys
for path in pathlib.Path(sys.argv[1]).rglob("*JPLY*"):
    data = path.read_bytes()
    start, end = data.find(b"\xff\xd8\xff"), data.rfind(b"\xff\xd9")
    if start >= 0 and end > start:
        (pathlib.Path(sys.argv[2]) / f"seed-{path.name}.jpg").write_bytes(data[start:end + 2])
PY
fi

# train_config links libtorch (hipfrac-train): the project venv's copy (scripts/setup.sh).
TORCH_LIB="$PWD/.venv/lib/python3.11/site-packages/torch/lib"
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd fuzz
cargo +nightly fuzz build -O >&2
# One target per core (JOBS, default: the number of cores): libFuzzer runs one process each.
JOBS="${JOBS:-$(nproc)}"
{
  echo "bench/fuzz.sh $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores: ${DICOM_SECONDS} s for dicom and jpeg12, ${OTHER_SECONDS} s for the others; memory limit 1 GB"
  echo "($JOBS targets at a time; cov = coverage points, ft = features, corpus = inputs kept, crashes = files in artifacts/)"
  printf '%-12s %8s %12s %8s %9s %8s %s\n' target seconds executions cov ft corpus crashes
  echo "(seconds: as run; a target stops at its first crash)"
} > "../$SUMMARY"
fuzz_one() {
  local target="$1" seconds max_len log status=0 started
  started=$(date +%s)
  case "$target" in dicom|jpeg12) seconds="$DICOM_SECONDS"; max_len=262144 ;; png) seconds="$OTHER_SECONDS"; max_len=262144 ;; *) seconds="$OTHER_SECONDS"; max_len=65536 ;; esac
  mkdir -p "artifacts/$target" logs
  log="logs/$target.log"
  cargo +nightly fuzz run -O "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=1024 \
       -timeout=20 -max_len="$max_len" -print_final_stats=1 -artifact_prefix="artifacts/$target/" >"$log" 2>&1 || status=$?
  executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  features=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  crashes=$(find "artifacts/$target" -type f | wc -l)
  printf '%-12s %8s %12s %8s %9s %8s %s\n' "$target" "$(( $(date +%s) - started ))" "$executions" "$coverage" "$features" "$(ls "corpus/$target" | wc -l)" "$crashes" > "logs/$target.row"
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then tail -30 "$log" >&2; return 1; fi
}
failed=0
running=0
TARGETS="${TARGETS:-dicom jpeg12 png voc coco yolo manifest train_config}"
for target in $TARGETS; do
  if [ "$running" -ge "$JOBS" ]; then wait -n || failed=1; running=$((running - 1)); fi
  fuzz_one "$target" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
for target in $TARGETS; do cat "logs/$target.row" >> "../$SUMMARY"; done
cat "../$SUMMARY"
[ "$failed" -eq 0 ] || { echo "fuzzing found crashes: see fuzz/artifacts/" >&2; exit 1; }
