#!/usr/bin/env bash
# Installs what hipfrac needs on Debian/Ubuntu and builds the release binary.
#   cmake  — builds the CharLS (JPEG-LS) and OpenJPEG (JPEG 2000) decoders
#   dcmtk  — the reference DICOM toolkit the tests and benchmarks compare against
# Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v dcmdump >/dev/null || need+=(dcmtk)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from rustup.rs" >&2; exit 1; }
if [ "${1:-}" != "--no-build" ]; then
  cargo build --release -j"$(nproc)" -p hipfrac
  echo "built target/release/hipfrac" >&2
fi
