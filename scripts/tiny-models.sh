#!/usr/bin/env bash
# Random-weight llama / qwen2 / qwen3 GGUFs in several weight types, for quality and end-to-end tests.
#   bash scripts/tiny-models.sh OUTDIR [TYPES...]     (default types: q4_0 q4_k q6_k q8_0 f16)
# Legacy and float types are written directly by scripts/make_tiny_llama.py (gguf-py); K-quants are made from the
# f32 file by the reference llama-quantize with --pure (every matrix in that type). Prints the files it wrote.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
OUT=$1; shift
TYPES=("$@"); [ ${#TYPES[@]} -gt 0 ] || TYPES=(q4_0 q4_k q6_k q8_0 f16)
BIN=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" | tail -n 1)
mkdir -p "$OUT"
# head size 64 (llama, qwen2) and 128 (qwen3); GQA 4 and 2.
declare -A SHAPE=(
  [llama]="--embd 512 --heads 8 --kv-heads 2 --ff 1024 --layers 2"
  [qwen2]="--embd 512 --heads 8 --kv-heads 2 --ff 1024 --layers 2"
  [qwen3]="--embd 512 --heads 4 --kv-heads 2 --ff 1024 --layers 2"
)
for arch in llama qwen2 qwen3; do
  f32="$OUT/tiny-$arch-f32.gguf"
  [ -f "$f32" ] || python3 "$GGVK_ROOT/scripts/make_tiny_llama.py" "$f32" --arch "$arch" --type f32 ${SHAPE[$arch]} >&2
  for t in "${TYPES[@]}"; do
    f="$OUT/tiny-$arch-$t.gguf"
    if [ ! -f "$f" ]; then
      case $t in
        *_k) "$BIN/llama-quantize" --pure "$f32" "$f" "${t^^}" >"$f.log" 2>&1 || { cat "$f.log" >&2; exit 1; } ;;
        *) python3 "$GGVK_ROOT/scripts/make_tiny_llama.py" "$f" --arch "$arch" --type "$t" ${SHAPE[$arch]} >&2 ;;
      esac
    fi
    echo "$f"
  done
done
