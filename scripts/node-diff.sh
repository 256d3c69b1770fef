#!/usr/bin/env bash
# Where a model's computation on GGVK0 first departs from the CPU backend's: every node's output of one batch
# (tests/e2e/nodes.c, llama.cpp's eval callback) on both, compared node by node (largest |difference| over the
# node's largest |CPU value|). Knobs (GGVK_*) in the environment apply to the GGVK0 run.
#   bash scripts/node-diff.sh MODEL.gguf [N_TOKENS [UBATCH [PROMPT_FILE]]]
# N_TOKENS (default 8) tokens of the prompt file (default: the pinned llama.cpp's README) are decoded in batches
# of UBATCH (default 1: token by token, every product a mat-vec); the last batch's nodes are compared.
# Prints one line per node and the first node whose relative difference exceeds 1e-5 (f32 summation-order noise
# stays near 1e-7).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
[ $# -ge 1 ] || { sed -n '2,9p' "$0"; exit 2; }
MODEL=$1; NTOK=${2:-8}; UB=${3:-1}
BIN=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" | tail -n 1)
SRC=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" --source-only | tail -n 1)
PROMPT=${4:-$SRC/README.md}
[ -f "$GGVK_LIB" ] || (cd "$GGVK_ROOT" && cargo build --release --lib)
OUT="$GGVK_CACHE/node-diff"; mkdir -p "$OUT"
cc -O2 -Wall -Wextra -Werror -I"$SRC/include" -I"$SRC/ggml/include" "$GGVK_ROOT/tests/e2e/nodes.c" \
  -L"$BIN" -lllama -lggml -lggml-base -Wl,-rpath,"$BIN" -o "$OUT/nodes"
"$OUT/nodes" "$MODEL" CPU "$NTOK" "$UB" "$PROMPT" "$OUT/cpu.bin" 2>"$OUT/cpu.log" >/dev/null \
  || { tail -5 "$OUT/cpu.log"; exit 1; }
GGML_BACKEND_PATH="$GGVK_LIB" "$OUT/nodes" "$MODEL" GGVK0 "$NTOK" "$UB" "$PROMPT" "$OUT/ggvk.bin" \
  2>"$OUT/ggvk.log" >/dev/null || { tail -5 "$OUT/ggvk.log"; exit 1; }
python3 - "$OUT/cpu.bin" "$OUT/ggvk.bin" <<'EOF'
import struct, sys
from array import array

def load(path):
    nodes = []
    with open(path, "rb") as f:
        while head := f.read(64):
            name = head.split(b"\0")[0].decode()
            (n,) = struct.unpack("<Q", f.read(8))
            values = array("f")
            values.frombytes(f.read(4 * n))
            nodes.append((name, values))
    return nodes

cpu, ggvk = load(sys.argv[1]), load(sys.argv[2])
if [name for name, _ in cpu] != [name for name, _ in ggvk]:
    sys.exit("the two runs read different nodes (graphs differ)")
first = None
print(f"{'node':<32} {'values':>8} {'max |diff| / max |cpu|':>24}")
for (name, a), (_, b) in zip(cpu, ggvk):
    if len(a) != len(b):
        sys.exit(f"{name}: {len(a)} vs {len(b)} values")
    scale = max((abs(x) for x in a), default=0.0) or 1.0
    rel = max((abs(x - y) for x, y in zip(a, b)), default=0.0) / scale
    print(f"{name:<32} {len(a):>8} {rel:>24.3e}")
    if first is None and not rel <= 1e-5:
        first = (name, rel)
print("first node above 1e-5:", f"{first[0]} ({first[1]:.3e})" if first else "none")
EOF
