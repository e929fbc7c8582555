#!/usr/bin/env bash
# Regenerates the phantom contact sheets in docs/img: for each built-in site, 9 phantom
# images (spread over the classes, boxes drawn) beside the real hip CR RG2 from
# ../shared/data/dicom, every image through its own DICOM window (as `hipfrac convert`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -j2 -p hipfrac >&2
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
REAL=../shared/data/dicom/dicom_wg04_hip/RG2_UNC
for site in site-a site-b site-c; do
  target/release/hipfrac phantom --count 40 --site "$site" --seed 2025 --size 768 --out "$WORK/$site" 2>/dev/null
  compare=()
  [ -f "$REAL" ] && compare=(--compare "$REAL")
  target/release/hipfrac phantom sheet "$WORK/$site" --out "docs/img/phantom-$site.png" --count 10 --columns 5 --tile 220 "${compare[@]}"
done
