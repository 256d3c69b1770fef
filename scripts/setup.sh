#!/usr/bin/env bash
# Installs what ggvk needs on a Debian bookworm machine, skipping what is already there:
# a C toolchain, cmake + ninja (shaderc builds from source), pkg-config (the C harness finds the installed ggvk.pc),
# the Vulkan loader, Mesa's lavapipe (a CPU Vulkan device, for machines without a GPU), the Khronos validation
# layers, valgrind, nightly Rust with Miri, cargo-fuzz, cbindgen, and gguf + numpy (the independent quantization
# reference used by the tests).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

pkgs=(build-essential cmake ninja-build pkg-config libvulkan1 mesa-vulkan-drivers vulkan-validationlayers valgrind)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo (Rust) is required: https://rustup.rs" >&2
  exit 1
fi
rustup component add clippy rustfmt >/dev/null 2>&1 || true
# Nightly with Miri (the pure-Rust modules under Miri) and rust-src (Miri's sysroot); cargo-fuzz (libFuzzer).
# Only the tests need them (GGVK_SETUP_TESTS=0, as the demo sets it, skips them).
if [ "${GGVK_SETUP_TESTS:-1}" = 1 ] && ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^miri'; then
  echo "setup: installing the nightly toolchain with miri and rust-src"
  rustup toolchain install nightly --profile minimal --component miri,rust-src >/dev/null
fi
if [ "${GGVK_SETUP_TESTS:-1}" = 1 ] && ! cargo-fuzz --version 2>/dev/null | grep -q "0.13"; then
  echo "setup: installing cargo-fuzz 0.13 into $GGVK_CACHE/tools"
  cargo install cargo-fuzz --version '^0.13' --locked --root "$GGVK_CACHE/tools" >/dev/null 2>&1
fi

if ! cbindgen --version 2>/dev/null | grep -q "cbindgen 0.29"; then
  echo "setup: installing cbindgen 0.29 into $GGVK_CACHE/tools"
  cargo install cbindgen --version '^0.29' --locked --root "$GGVK_CACHE/tools" >/dev/null 2>&1
fi

PY="${GGVK_PYTHON:-python3}"
if ! "$PY" -m pip show gguf 2>/dev/null | grep '^Version: 0.19.0' >/dev/null || ! "$PY" -c 'import numpy' 2>/dev/null; then
  echo "setup: installing gguf==0.19.0 and numpy"
  "$PY" -m pip install -q gguf==0.19.0 numpy
fi
echo "setup: ok (cache: $GGVK_CACHE)"
