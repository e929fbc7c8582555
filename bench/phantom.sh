#!/usr/bin/env bash
# Phantom throughput: images per second at 1024 px (longer side), all cores, per built-in
# site — whole `hipfrac phantom` runs (simulation + DICOM + PNG + VOC + manifest).
# Usage: bench/phantom.sh [COUNT]   (default 40 images per site)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-40}"
cargo build --release -j2 -p hipfrac >&2
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "hipfrac phantom, $COUNT images per site at 1024 px, $(nproc) cores"
for site in site-a site-b site-c; do
  start=$(date +%s%N)
  target/release/hipfrac phantom --count "$COUNT" --site "$site" --seed 7 --size 1024 --out "$WORK/$site" 2>/dev/null
  end=$(date +%s%N)
  awk -v n="$COUNT" -v ns="$((end - start))" -v s="$site" 'BEGIN { printf "%-8s %6.2f s  %5.2f images/s\n", s, ns / 1e9, n / (ns / 1e9) }'
done
