#!/usr/bin/env bash
# The main job: install what is missing, build ggvk, describe the Vulkan devices, run the mat-vec benchmark
# (Q4_0 m=4096 k=14336, weights streamed from a >= 256 MiB set) on the default device next to the CPU reference,
# then have an unmodified llama.cpp (the pinned reference build) load libggvk.so and generate text on GGVK0.
# The model is a small random-weight llama that this script writes (its text is noise); real models (Gemma 3
# 270M) need the ops of the next milestone. Extra arguments go to `ggvk bench` (e.g. --device 1, --resident).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$GGVK_ROOT/scripts/setup.sh"
cd "$GGVK_ROOT"
cargo build --release
"$CARGO_TARGET_DIR/release/ggvk" info
"$CARGO_TARGET_DIR/release/ggvk" bench "$@"
BIN=$(bash scripts/reference-llama.sh | tail -n 1)
MODEL="$GGVK_CACHE/demo/tiny-llama-q4_0.gguf"
mkdir -p "$(dirname "$MODEL")"
python3 scripts/make_tiny_llama.py "$MODEL" --type q4_0 --layers 4 --embd 512 --ff 1024
echo "== llama-completion on GGVK0 (GGML_BACKEND_PATH=$CARGO_TARGET_DIR/release/libggvk.so)"
GGML_BACKEND_PATH="$CARGO_TARGET_DIR/release/libggvk.so" "$BIN/llama-completion" -m "$MODEL" --device GGVK0 -ngl 99 \
  -p "Once upon a time" -n 64 --temp 0 -no-cnv -v 2>"$GGVK_CACHE/demo/llama-completion.log"
echo
grep -aE "using device|offloaded|splits|eval time" "$GGVK_CACHE/demo/llama-completion.log" || true
