#!/usr/bin/env bash
# ggvk's K/V cache quantizers (SET_ROWS on the GPU and the CPU references in src/quant) against ggml's own
# quantize_row_<type>_ref (what the CPU backend's from_float calls for these types), byte for byte: writes
# 131072 inputs (random over many magnitudes, zero and tiny blocks, ties), runs ggml's quantizers on them through
# ctypes on the pinned build's libggml-base, then the ignored test tests/cache_quant_ggml.rs compares.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
BIN=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" | tail -n 1)
DIR="${GGVK_CACHE_XCHECK_DIR:-$GGVK_CACHE/cache-quant-xcheck}"
mkdir -p "$DIR"
python3 - "$BIN/libggml-base.so" "$DIR" <<'PY'
import ctypes, sys
import numpy as np
lib = ctypes.CDLL(sys.argv[1])
out = sys.argv[2]
rng = np.random.default_rng(11)
n = 32 * 4096
x = (rng.standard_normal(n) * rng.choice([1e-3, 0.1, 1.0, 30.0], size=n)).astype(np.float32)
x[:32] = 0.0                                    # a zero block
x[32:64] = 1e-20                                # below IQ4_NL's 1e-15 group limit
x[64:96] = np.arange(32, dtype=np.float32) - 16 # codes on exact halves for the 4/5-bit types
x[96:128] = np.where(np.arange(32) % 2 == 0, 8.0, -8.0)  # +/- max ties
x.tofile(f"{out}/in.bin")
for name, size in [("q4_0", 18), ("q4_1", 20), ("q5_0", 22), ("q5_1", 24), ("iq4_nl", 18)]:
    y = np.zeros(n // 32 * size, dtype=np.uint8)
    getattr(lib, f"quantize_row_{name}_ref")(x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p),
                                             ctypes.c_int64(n))
    y.tofile(f"{out}/{name}.bin")
print(f"cache-quant: ggml's outputs for {n} values in {out}")
PY
cd "$GGVK_ROOT"
GGVK_CACHE_XCHECK_DIR="$DIR" cargo test --release --test cache_quant_ggml -- --ignored --nocapture
