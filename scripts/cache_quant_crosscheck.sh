#!/usr/bin/env bash
# ggvk's K/V cache quantizers and those of Q1_0, Q2_0, NVFP4 (SET_ROWS on the GPU and the CPU references in
# src/quant) against ggml's own quantize_row_<type>_ref (what the CPU backend's from_float calls for these types),
# byte for byte: writes 131072 inputs (random over many magnitudes, zero and tiny blocks, ties), runs ggml's
# quantizers on them through ctypes on the pinned build's libggml-base; likewise ggml's dequantize_row_<type> of
# random Q1_0, Q2_0 and NVFP4 blocks (gguf's numpy package has no Q1_0/Q2_0 dequantizer to compare with). Then the
# ignored test tests/cache_quant_ggml.rs compares.
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
x[128:144] = 1e-3 * (np.arange(16) - 8)         # NVFP4: a scale in UE4M3's subnormal range (here 0)
x[144:160] = 600.0 * (np.arange(16) - 8)        # NVFP4: max / 6 beyond 448 (scale byte 0x7E)
x[160:168] = -0.0                               # Q1_0: -0 counts as >= 0
x[192:256] = np.arange(64, dtype=np.float32) / 8 - 4  # Q2_0: x / max on exact halves
x.tofile(f"{out}/in.bin")
for name, size, qk in [("q4_0", 18, 32), ("q4_1", 20, 32), ("q5_0", 22, 32), ("q5_1", 24, 32), ("iq4_nl", 18, 32),
                       ("q1_0", 18, 128), ("q2_0", 18, 64), ("nvfp4", 36, 64)]:
    y = np.zeros(n // qk * size, dtype=np.uint8)
    getattr(lib, f"quantize_row_{name}_ref")(x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p),
                                             ctypes.c_int64(n))
    y.tofile(f"{out}/{name}.bin")
# Dequantizers: 4096 random blocks each (f16 scale words finite: normal, subnormal, zero, either sign; NVFP4's
# UE4M3 bytes all 256 patterns), plus all-0x00 / all-0xFF / 0x55 / 0xAA blocks with a scale of 1.
for name, size, qk, f16_at in [("q1_0", 18, 128, 0), ("q2_0", 18, 64, 0), ("nvfp4", 36, 64, None)]:
    nb = 4096
    blocks = rng.integers(0, 256, size=(nb, size), dtype=np.uint16).astype(np.uint8)
    if f16_at is not None:
        h = rng.integers(0, 1 << 16, size=nb, dtype=np.uint32).astype(np.uint16)
        h = np.where((h & 0x7C00) == 0x7C00, h & 0x83FF, h)  # no infinities or NaNs
        blocks[:, f16_at:f16_at + 2] = h.view(np.uint8).reshape(-1, 2)
    edges = np.stack([np.full(size, f, dtype=np.uint8) for f in (0x00, 0xFF, 0x55, 0xAA)])
    if f16_at is not None:
        edges[:, f16_at:f16_at + 2] = np.array([0x00, 0x3C], dtype=np.uint8)
    blocks = np.ascontiguousarray(np.concatenate([blocks, edges]))
    y = np.zeros(blocks.shape[0] * qk, dtype=np.float32)
    getattr(lib, f"dequantize_row_{name}")(blocks.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p),
                                           ctypes.c_int64(y.size))
    blocks.tofile(f"{out}/dq_{name}.blocks")
    y.tofile(f"{out}/dq_{name}.f32")
print(f"cache-quant: ggml's outputs for {n} values and {nb + 4} blocks per dequantizer in {out}")
PY
cd "$GGVK_ROOT"
GGVK_CACHE_XCHECK_DIR="$DIR" cargo test --release --test cache_quant_ggml -- --ignored --nocapture
