#!/usr/bin/env bash
# Greedy generation of 64 tokens from Gemma 3 270M (Q4_K_M) on the CPU backend, on GGVK0 and (where the Vulkan
# reference build exists) on ggml-vulkan's Vulkan0, through tests/e2e/greedy.c (one process each, the pinned
# llama.cpp with ggml-vulkan linked in); prints the first position where each differs from the CPU and the CPU's
# top-2 logit gap there.   bash scripts/gemma-greedy.sh [N] [PROMPT]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
N=${1:-64}
PROMPT=${2:-"The three most important inventions of the twentieth century are"}
SRC=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" --source-only | tail -n 1)
BIN=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" | tail -n 1)
VKBIN="$GGVK_CACHE/llama.cpp-0.3.36/build-vulkan/bin"
[ -x "$VKBIN/llama-completion" ] && BIN="$VKBIN"
MODEL=$(bash "$GGVK_ROOT/scripts/gemma3-model.sh" | tail -n 1)
OUT="$GGVK_CACHE/gemma-greedy"; mkdir -p "$OUT"
cc -O2 -Wall -Wextra -Werror -I"$SRC/include" -I"$SRC/ggml/include" "$GGVK_ROOT/tests/e2e/greedy.c" \
  -L"$BIN" -lllama -lggml -lggml-base -Wl,-rpath,"$BIN" -o "$OUT/greedy"
export GGML_BACKEND_PATH="$GGVK_LIB" GGML_VK_VISIBLE_DEVICES=${GGML_VK_VISIBLE_DEVICES:-0}
"$OUT/greedy" "$MODEL" CPU "$N" "$PROMPT" >"$OUT/cpu.txt" 2>"$OUT/cpu.log"
devs=(GGVK0); [ "$BIN" = "$VKBIN" ] && devs+=(Vulkan0)
for d in "${devs[@]}"; do
  "$OUT/greedy" "$MODEL" "$d" "$N" "$PROMPT" >"$OUT/$d.txt" 2>"$OUT/$d.log" || { tail -5 "$OUT/$d.log"; exit 1; }
  first=$(paste -d' ' <(awk '{print $4}' "$OUT/cpu.txt") <(awk '{print $4}' "$OUT/$d.txt") \
    | awk '$1 != $2 {print NR - 1; exit}')
  if [ -z "$first" ]; then
    echo "$d: $(wc -l <"$OUT/$d.txt") greedy tokens, identical to the CPU backend's"
  else
    gap=$(awk -v s="$first" '$2 == s {print $NF}' "$OUT/cpu.txt")
    echo "$d: first differs from the CPU backend at token $first (CPU top-2 logit gap there: $gap)"
  fi
done
