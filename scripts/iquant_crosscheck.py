#!/usr/bin/env python3
"""Generate cross-check vectors for ggvk's IQ, ternary, MXFP4 and NVFP4 dequantizers (tests/iquant_crosscheck.rs).

The expected values come from the numpy dequantizers of the PyPI package `gguf` (version 0.19.0), which are
independent of ggvk (their grids are rebuilt from gguf's own compact encoding, not from ggml's tables) and
reproduce ggml's dequantize_row_iq2_xxs .. dequantize_row_iq4_xs, dequantize_row_tq1_0 / tq2_0 and
dequantize_row_mxfp4 / dequantize_row_nvfp4. The inputs are random blocks: random bytes for indices, signs, scales and codes, with every
f16 field replaced by a random finite f16 (normal, subnormal, zero, either sign), IQ1_M's scale (spread over the top
nibbles of its four scale words) likewise, MXFP4's E8M0 exponent kept where the values stay finite (0..250, both
subnormal scales included), NVFP4's UE4M3 scale bytes all 256 patterns, plus edge blocks (all-zero bytes, all-one bytes, 0x55 / 0xAA patterns with a few
scales). Install gguf with:

    pip install gguf==0.19.0 numpy

Usage:

    python3 scripts/iquant_crosscheck.py --out VECTORS.bin [--blocks 4096] [--seed 8765]

File format (all integers little-endian, all floats IEEE little-endian):

    magic        8 bytes   b"GGVKIQ01"
    n_types      u32
    n_types times:
        ggml_type  u32    ggml's enum ggml_type value
        n_blocks   u32
        type_size  u32    bytes of one block
        block_len  u32    values per block
        blocks     n_blocks x type_size bytes
        dequant    n_blocks x block_len x f32      gguf's dequantize(blocks)
"""

from __future__ import annotations

import argparse
import struct
import sys

MAGIC = b"GGVKIQ01"
REQUIRED_GGUF = "0.19.0"

try:
    import numpy as np
    import gguf
except ImportError as e:  # pragma: no cover - environment problem
    print(f"iquant_crosscheck.py: {e}. Install with: pip install gguf=={REQUIRED_GGUF} numpy", file=sys.stderr)
    sys.exit(3)

Q = gguf.GGMLQuantizationType
# type -> (block size in bytes, values per block, byte offsets of the f16 fields)
LAYOUT = {
    Q.IQ4_XS: (136, 256, (0,)),
    Q.MXFP4: (17, 32, ()),
    Q.IQ3_S: (110, 256, (0,)),
    Q.IQ3_XXS: (98, 256, (0,)),
    Q.IQ2_XXS: (66, 256, (0,)),
    Q.IQ2_XS: (74, 256, (0,)),
    Q.IQ2_S: (82, 256, (0,)),
    Q.IQ1_S: (50, 256, (0,)),
    Q.IQ1_M: (56, 256, ()),
    Q.TQ1_0: (54, 256, (52,)),
    Q.TQ2_0: (66, 256, (64,)),
    Q.NVFP4: (36, 64, ()),
}
EDGE_F16 = (0x0000, 0x8000, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x0001, 0x8001, 0x0400, 0x2E66)


def random_finite_f16(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random finite f16 bit patterns: a mix of any finite pattern, typical weight scales, zeros, subnormals."""
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    inf_nan = (bits & 0x7C00) == 0x7C00
    while inf_nan.any():
        bits[inf_nan] = rng.integers(0, 1 << 16, size=int(inf_nan.sum()), dtype=np.uint32).astype(np.uint16)
        inf_nan = (bits & 0x7C00) == 0x7C00
    kind = rng.integers(0, 8, size=n)
    typical = (rng.lognormal(-7.0, 2.0, size=n) * rng.choice([-1.0, 1.0], size=n)).astype(np.float16).view(np.uint16)
    bits = np.where(kind < 3, typical, bits)
    bits = np.where(kind == 3, rng.integers(0, 0x400, size=n).astype(np.uint16) | (bits & 0x8000), bits)  # subnormal
    bits = np.where(kind == 4, bits & 0x8000, bits)  # +-0
    return bits.astype(np.uint16)


def set_iq1m_scale(blocks: np.ndarray, d: np.ndarray) -> None:
    """Write the f16 bit patterns `d` into the top nibbles of the four IQ1_M scale words (bytes 48..56)."""
    sc = blocks[:, 48:56].copy().view("<u2")  # (n, 4)
    for k in range(4):
        sc[:, k] = (sc[:, k] & 0x0FFF) | (((d.astype(np.uint32) >> (4 * k)) & 0xF) << 12).astype(np.uint16)
    blocks[:, 48:56] = sc.view(np.uint8)


def fix_scales(qt, blocks: np.ndarray, d: np.ndarray) -> None:
    """Put the f16 scale patterns `d` (one per block) where `qt` keeps its scale."""
    _, _, offs = LAYOUT[qt]
    for off in offs:
        blocks[:, off:off + 2] = d.view(np.uint8).reshape(-1, 2)
    if qt == Q.IQ1_M:
        set_iq1m_scale(blocks, d)
    if qt == Q.MXFP4:
        blocks[:, 0] = np.minimum(blocks[:, 0], 250)


def make_blocks(rng: np.random.Generator, qt, n_random: int) -> np.ndarray:
    size, _, _ = LAYOUT[qt]
    blocks = rng.integers(0, 256, size=(n_random, size), dtype=np.uint16).astype(np.uint8)
    fix_scales(qt, blocks, random_finite_f16(rng, n_random))
    if qt == Q.MXFP4:
        # Typical exponents (scales around 2^-10 .. 2^2) for most blocks, the subnormal ones for a few.
        blocks[: n_random // 2, 0] = rng.integers(110, 132, size=n_random // 2)
        blocks[n_random // 2: n_random // 2 + 16, 0] = np.arange(16) % 3
    fills = (0x00, 0xFF, 0x55, 0xAA)
    edges = np.stack([np.full(size, fill, dtype=np.uint8) for fill in fills for _ in EDGE_F16])
    fix_scales(qt, edges, np.array([d for _ in fills for d in EDGE_F16], dtype=np.uint16))
    return np.concatenate([blocks, edges], axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--blocks", type=int, default=4096, help="random blocks per type (edge blocks come on top)")
    ap.add_argument("--seed", type=int, default=8765)
    args = ap.parse_args()
    if args.blocks < 0:
        print("iquant_crosscheck.py: --blocks must be >= 0", file=sys.stderr)
        sys.exit(2)
    try:
        from importlib.metadata import version as dist_version

        v = dist_version("gguf")
        if v != REQUIRED_GGUF:
            print(f"iquant_crosscheck.py: warning: gguf {v} installed, expected {REQUIRED_GGUF}", file=sys.stderr)
    except Exception:  # noqa: BLE001 - metadata may be missing for source installs
        pass

    rng = np.random.default_rng(args.seed)
    out = []
    for qt, (_, n, _) in LAYOUT.items():
        blocks = make_blocks(rng, qt, args.blocks)
        with np.errstate(over="raise", invalid="raise", under="ignore"):
            deq = gguf.quants.dequantize(blocks, qt).astype(np.float32, copy=False).reshape(blocks.shape[0], n)
        assert np.isfinite(deq).all(), qt.name
        out.append((qt, blocks, deq))

    with open(args.out, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(out)))
        for qt, blocks, deq in out:
            f.write(struct.pack("<IIII", int(qt), blocks.shape[0], blocks.shape[1], deq.shape[1]))
            f.write(np.ascontiguousarray(blocks).tobytes())
            f.write(np.ascontiguousarray(deq).astype("<f4").tobytes())
    print("iquant_crosscheck.py: " + ", ".join(f"{qt.name}: {b.shape[0]} blocks" for qt, b, _ in out)
          + f" written to {args.out}")


if __name__ == "__main__":
    main()
