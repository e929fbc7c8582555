#!/usr/bin/env bash
# Learning check: simulate 480 phantom radiographs (site-a, 320 px), split by patient
# (85 % train, 15 % validation), train the nano preset on the CPU with configs/phantom-nano.toml
# and print the validation mAP per 5 epochs and the wall time. Phantom results only: they
# show the pipeline learns, not how it would do on patients.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -j2 -p hipfrac >&2
if [ -e runs/learn-nano ]; then
  echo "error: runs/learn-nano exists (an earlier run); move or remove it first" >&2
  exit 2
fi
target/release/hipfrac phantom --count 480 --site site-a --seed 11 --size 320 --out runs/learn-nano/data
target/release/hipfrac dataset split runs/learn-nano/data --ratios 0.85,0.15,0 --seed 1
start=$(date +%s)
target/release/hipfrac train --config configs/phantom-nano.toml --device cpu 2>&1 | grep -E "mAP|done"
echo "wall time: $(( $(date +%s) - start )) s"
