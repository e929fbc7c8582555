#!/usr/bin/env bash
# DICOM → 8-bit PNG: hipfrac convert vs dcmtk on the real hip CR (RG2) in four transfer
# syntaxes (native, RLE, JPEG lossless, JPEG-LS lossless), each file with its own window.
#
# Whole-process wall time for the set, median of RUNS runs, printed as a ratio:
#   dcmtk:   one process per file, as a script would run it: dcmj2pnm +Wi 1 +on (native, RLE,
#            JPEG) and dcml2pnm +Wi 1 +on (JPEG-LS)
#   hipfrac: one `hipfrac convert` process for the four files (all cores), and again with
#            --jobs 1 (one core) for a like-for-like per-core figure.
# Needs: dcmtk (apt-get install dcmtk), ../shared/data/dicom. Usage: bench/convert.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${HIPFRAC_DICOM:-../shared/data/dicom}/dicom_wg04_hip"
RUNS="${RUNS:-7}"
for tool in dcmj2pnm dcml2pnm; do
  command -v "$tool" >/dev/null || { echo "error: $tool (dcmtk) not found; apt-get install dcmtk" >&2; exit 2; }
done
[ -d "$DATA" ] || { echo "error: $DATA not found" >&2; exit 2; }
cargo build --release -j2 -p hipfrac >&2
BIN="$PWD/target/release/hipfrac"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FILES=("$DATA/RG2_UNC" "$DATA/RG2_RLE" "$DATA/RG2_JPLL" "$DATA/RG2_JLSL")

run_dcmtk() {
  dcmj2pnm +Wi 1 +on "$DATA/RG2_UNC" "$WORK/d_unc.png"
  dcmj2pnm +Wi 1 +on "$DATA/RG2_RLE" "$WORK/d_rle.png"
  dcmj2pnm +Wi 1 +on "$DATA/RG2_JPLL" "$WORK/d_jpll.png"
  dcml2pnm +Wi 1 +on "$DATA/RG2_JLSL" "$WORK/d_jlsl.png"
}
run_hipfrac() { "$BIN" convert "${FILES[@]}" --out "$WORK/h" --overwrite --no-sidecar "$@" 2>/dev/null; }

# Median wall time in milliseconds of RUNS runs of "$@" (after one warm-up run).
median_ms() {
  "$@" >/dev/null 2>&1
  local times=()
  for _ in $(seq "$RUNS"); do
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

dcmtk_ms=$(median_ms run_dcmtk)
hipfrac_ms=$(median_ms run_hipfrac)
hipfrac1_ms=$(median_ms run_hipfrac --jobs 1)
echo "DICOM -> 8-bit PNG, RG2 (2140x1760, 10 bit) x 4 transfer syntaxes, median of $RUNS runs, $(nproc) cores"
printf '%-32s %8s ms\n' "dcmtk (4 processes)" "$dcmtk_ms"
printf '%-32s %8s ms   %.2fx faster than dcmtk\n' "hipfrac convert (all cores)" "$hipfrac_ms" "$(awk "BEGIN {print $dcmtk_ms / $hipfrac_ms}")"
printf '%-32s %8s ms   %.2fx faster than dcmtk\n' "hipfrac convert --jobs 1" "$hipfrac1_ms" "$(awk "BEGIN {print $dcmtk_ms / $hipfrac1_ms}")"
