#!/usr/bin/env bash
# Installs what hipfrac needs on Debian/Ubuntu and builds the release binary.
#   cmake  — builds the CharLS (JPEG-LS) and OpenJPEG (JPEG 2000) decoders
#   dcmtk  — the reference DICOM toolkit the tests and benchmarks compare against
#   libgloo-dev — the Gloo headers libtorch's ProcessGroupGloo includes (data-parallel
#            training over c10d; the torch wheel ships the library but not these headers)
#   --cuda — for a GPU host: the CUDA libraries libtorch_cuda needs (cuBLAS, cuDNN, NCCL…,
#            about 3 GB) into the same .venv, so `--device cuda` works with no variable set
# Usage: scripts/setup.sh [--no-build] [--cuda]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=1
CUDA=0
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    --cuda) CUDA=1 ;;
    *) echo "error: unknown option $arg (expected --no-build, --cuda)" >&2; exit 2 ;;
  esac
done
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v dcmdump >/dev/null || need+=(dcmtk)
[ -f /usr/include/gloo/algorithm.h ] || [ -f /usr/local/include/gloo/algorithm.h ] || [ -n "${HIPFRAC_GLOO_INCLUDE:-}" ] || need+=(libgloo-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from rustup.rs" >&2; exit 1; }
# libtorch 2.11.0 for tch, from the PyPI wheel, without the 3 GB of CUDA libraries: only the
# CUDA runtime and CUPTI, which libtorch_cpu links and does not load without. .cargo/config.toml
# points tch's build at it and the binaries carry an RPATH to it, so no environment variable is
# needed. On a GPU host, libtorch_cuda is loaded at run time from the system's torch.
VENV=.venv
if [ ! -f "$VENV/lib/python3.11/site-packages/torch/lib/libtorch_cpu.so" ]; then
  command -v python3.11 >/dev/null || { echo "error: python3.11 is required to fetch libtorch" >&2; exit 1; }
  echo "installing libtorch 2.11.0 into $VENV (about 1.3 GB)" >&2
  python3.11 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps torch==2.11.0 "nvidia-cuda-runtime==13.0.96.*" "nvidia-cuda-cupti==13.0.85.*"
fi
if [ "$CUDA" = 1 ]; then
  echo "installing the CUDA libraries of torch 2.11.0 into $VENV (about 3 GB)" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check torch==2.11.0
  command -v nvidia-smi >/dev/null || echo "note: nvidia-smi not found: is the NVIDIA driver installed?" >&2
fi
if [ "$BUILD" = 1 ]; then
  cargo build --release -j"$(nproc)" -p hipfrac
  echo "built target/release/hipfrac" >&2
fi
