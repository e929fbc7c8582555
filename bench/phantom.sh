#!/usr/bin/env bash
# Phantom throughput: images per second per built-in site — whole `hipfrac phantom` runs
# (simulation + DICOM + PNG + VOC + manifest), all cores — for each simulator and size asked.
# Usage: bench/phantom.sh [COUNT]   (default 40 images per site; env: BIN=target/release/hipfrac,
#        GENERATORS="v1" (or "v1 v2", issue 27's comparison), SIZES="1024" (or "640 1024"))
set -euo pipefail
here="$(pwd)"
[ -n "${BIN:-}" ] && case "$BIN" in /*) ;; *) BIN="$here/$BIN" ;; esac
cd "$(dirname "$0")/.."
COUNT="${1:-40}"
BIN="${BIN:-target/release/hipfrac}"
GENERATORS="${GENERATORS:-v1}"
SIZES="${SIZES:-1024}"
if [ "$BIN" = target/release/hipfrac ]; then cargo build --release -j2 -p hipfrac >&2; fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "hipfrac phantom, $COUNT images per site, $(nproc) cores, $(date -u +%Y-%m-%d), $BIN"
for generator in $GENERATORS; do
  for size in $SIZES; do
    for site in site-a site-b site-c; do
      out="$WORK/$generator-$size-$site"
      start=$(date +%s%N)
      "$BIN" phantom --generator "$generator" --count "$COUNT" --site "$site" --seed 7 --size "$size" --out "$out" 2>/dev/null
      end=$(date +%s%N)
      awk -v n="$COUNT" -v ns="$((end - start))" -v s="$site" -v g="$generator" -v z="$size" \
        'BEGIN { printf "%-3s %5d px  %-8s %7.2f s  %5.2f images/s\n", g, z, s, ns / 1e9, n / (ns / 1e9) }'
      rm -rf "$out"
    done
  done
done
