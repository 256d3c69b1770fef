#!/usr/bin/env bash
# Builds the reference llama.cpp / ggml that ggvk matches: the copy vendored in the PyPI sdist
# llama-cpp-python==0.3.36 (ggml 0.25.3, backend API version 2). CPU backend + test-backend-ops,
# llama-completion, llama-bench, llama-perplexity, llama-quantize, llama-server (no web UI) and the RPC server
# ggml-rpc-server (GGML_RPC=ON), into $GGVK_CACHE/llama.cpp-0.3.36/build-<key>, where <key> is a hash of the cmake
# options and targets: a change to either builds afresh in a new directory (reused when present). Prints the bin
# directory on its last line.
# `--source-only`: only fetch and unpack the sources; prints the source directory.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
VERSION=0.3.36
BASE="$GGVK_CACHE/llama.cpp-$VERSION"
SRC="$BASE/src"
TARGETS=(test-backend-ops llama-completion llama-bench llama-perplexity llama-quantize llama-server ggml-rpc-server)
# No web UI for llama-server (LLAMA_BUILD_UI=OFF: no npm; LLAMA_USE_PREBUILT_UI=OFF: no download).
CMAKE_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
  -DLLAMA_BUILD_TESTS=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_RPC=ON
  -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)
KEY=$(printf '%s\n' "${CMAKE_ARGS[@]}" "${TARGETS[@]}" | sha256sum | cut -c1-12)
BUILD="$BASE/build-$KEY"

if [ ! -f "$SRC/ggml/src/ggml-backend-impl.h" ]; then
  mkdir -p "$BASE/dl"
  if [ ! -f "$BASE/dl/llama_cpp_python-$VERSION.tar.gz" ]; then
    echo "reference: downloading llama-cpp-python==$VERSION (sdist)" >&2
    python3 -m pip download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$BASE/dl" >&2
  fi
  rm -rf "$BASE/x" && mkdir -p "$BASE/x"
  tar xzf "$BASE/dl/llama_cpp_python-$VERSION.tar.gz" -C "$BASE/x"
  rm -rf "$SRC" && mv "$BASE/x/llama_cpp_python-$VERSION/vendor/llama.cpp" "$SRC" && rm -rf "$BASE/x"
fi

if [ "${1:-}" = "--source-only" ]; then
  echo "$SRC"
  exit 0
fi

have_all=1
for t in "${TARGETS[@]}"; do [ -x "$BUILD/bin/$t" ] || have_all=0; done
if [ "$have_all" = 0 ]; then
  echo "reference: building ${TARGETS[*]} in $BUILD" >&2
  cmake -S "$SRC" -B "$BUILD" "${CMAKE_ARGS[@]}" >&2
  cmake --build "$BUILD" --target "${TARGETS[@]}" -j "$(nproc)" >&2
fi
echo "$BUILD/bin"
