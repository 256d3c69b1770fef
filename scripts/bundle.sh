#!/usr/bin/env bash
# Packs what a test machine with a GPU but no Rust toolchain needs to run ggvk next to ggml-vulkan: the stripped
# libggvk.so, the pinned llama.cpp built with ggml-vulkan (llama-bench, llama-completion, llama-perplexity,
# test-backend-ops and their shared libraries, stripped), into OUT (default dev/ggvk-bundle.tar.xz, ignored by git).
# On the target: tar xJf ggvk-bundle.tar.xz -C DIR; DIR/bin holds the tools, DIR/lib/libggvk.so the plug-in;
# scripts/gpu-suite.sh runs the conformance suite and the side-by-side benchmark from there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
OUT=${1:-$GGVK_ROOT/dev/ggvk-bundle.tar.xz}
VKBIN=$(bash "$GGVK_ROOT/scripts/reference-llama-vulkan.sh" | tail -n 1)
(cd "$GGVK_ROOT" && cargo build --release --lib >&2)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib"
for t in llama-bench llama-completion llama-perplexity test-backend-ops; do cp "$VKBIN/$t" "$STAGE/bin/"; done
cp -P "$VKBIN"/*.so* "$STAGE/bin/" 2>/dev/null || true
cp "$GGVK_LIB" "$STAGE/lib/libggvk.so"
strip --strip-unneeded "$STAGE"/bin/* "$STAGE/lib/libggvk.so" 2>/dev/null || true
mkdir -p "$(dirname "$OUT")"
tar -C "$STAGE" -cf - bin lib | xz -T0 -6 >"$OUT"
echo "bundle: $OUT ($(du -h "$OUT" | cut -f1))" >&2
echo "$OUT"
