#!/usr/bin/env python3
"""Generate cross-check vectors for ggvk's K-quant dequantizers (tests/kquant_crosscheck.rs).

The expected values come from the numpy dequantizers of the PyPI package `gguf` (version 0.19.0), which are
independent of ggvk and reproduce ggml's dequantize_row_q2_K .. dequantize_row_q6_K. gguf has no K-quant
quantizers, so the inputs are random blocks: random bytes for codes, packed scales and masks, with every f16
field (d, dmin) replaced by a random finite f16 (normal, subnormal, zero, either sign), plus edge blocks
(all-zero bytes, all-one bytes, largest and smallest f16 scales, one sign only). Install gguf with:

    pip install gguf==0.19.0 numpy

Usage:

    python3 scripts/kquant_crosscheck.py --out VECTORS.bin [--blocks 4096] [--seed 4321]

File format (all integers little-endian, all floats IEEE little-endian):

    magic        8 bytes   b"GGVKKQ01"
    n_types      u32
    n_types times:
        ggml_type  u32    ggml's enum ggml_type value (10 = Q2_K .. 14 = Q6_K)
        n_blocks   u32
        type_size  u32    bytes of one block
        blocks     n_blocks x type_size bytes
        dequant    n_blocks x 256 x f32       gguf's dequantize(blocks)
"""

from __future__ import annotations

import argparse
import struct
import sys

MAGIC = b"GGVKKQ01"
QK_K = 256
REQUIRED_GGUF = "0.19.0"

try:
    import numpy as np
    import gguf
except ImportError as e:  # pragma: no cover - environment problem
    print(f"kquant_crosscheck.py: {e}. Install with: pip install gguf=={REQUIRED_GGUF} numpy", file=sys.stderr)
    sys.exit(3)

Q = gguf.GGMLQuantizationType
# type -> (block size in bytes, byte offsets of the f16 fields)
LAYOUT = {
    Q.Q2_K: (84, (80, 82)),
    Q.Q3_K: (110, (108,)),
    Q.Q4_K: (144, (0, 2)),
    Q.Q5_K: (176, (0, 2)),
    Q.Q6_K: (210, (208,)),
}


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


def make_blocks(rng: np.random.Generator, qt, n_random: int) -> np.ndarray:
    size, f16_offsets = LAYOUT[qt]
    blocks = rng.integers(0, 256, size=(n_random, size), dtype=np.uint16).astype(np.uint8)
    for off in f16_offsets:
        blocks[:, off:off + 2] = random_finite_f16(rng, n_random).view(np.uint8).reshape(n_random, 2)
    edges = []
    for fill in (0x00, 0xFF, 0x55, 0xAA):
        for d in (0x0000, 0x8000, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x0001, 0x8001, 0x0400, 0x2E66):
            b = np.full(size, fill, dtype=np.uint8)
            for k, off in enumerate(f16_offsets):
                # second field (dmin) gets a different scale so d and dmin are told apart
                v = d if k == 0 else (d ^ 0x8000 if fill & 1 else 0x3800)
                b[off:off + 2] = np.array([v], dtype="<u2").view(np.uint8)
            edges.append(b)
    return np.concatenate([blocks, np.stack(edges)], axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--blocks", type=int, default=4096, help="random blocks per type (edge blocks come on top)")
    ap.add_argument("--seed", type=int, default=4321)
    args = ap.parse_args()
    if args.blocks < 0:
        print("kquant_crosscheck.py: --blocks must be >= 0", file=sys.stderr)
        sys.exit(2)
    try:
        from importlib.metadata import version as dist_version

        v = dist_version("gguf")
        if v != REQUIRED_GGUF:
            print(f"kquant_crosscheck.py: warning: gguf {v} installed, expected {REQUIRED_GGUF}", file=sys.stderr)
    except Exception:  # noqa: BLE001 - metadata may be missing for source installs
        pass

    rng = np.random.default_rng(args.seed)
    out = []
    for qt in LAYOUT:
        blocks = make_blocks(rng, qt, args.blocks)
        with np.errstate(over="raise", invalid="raise", under="ignore"):
            deq = gguf.quants.dequantize(blocks, qt).astype(np.float32, copy=False).reshape(blocks.shape[0], QK_K)
        assert np.isfinite(deq).all(), qt.name
        out.append((qt, blocks, deq))

    with open(args.out, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(out)))
        for qt, blocks, deq in out:
            f.write(struct.pack("<III", int(qt), blocks.shape[0], blocks.shape[1]))
            f.write(np.ascontiguousarray(blocks).tobytes())
            f.write(np.ascontiguousarray(deq).astype("<f4").tobytes())
    print("kquant_crosscheck.py: " + ", ".join(f"{qt.name}: {b.shape[0]} blocks" for qt, b, _ in out)
          + f" written to {args.out}")


if __name__ == "__main__":
    main()
