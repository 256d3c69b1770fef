#!/usr/bin/env python3
"""Generate cross-check vectors for ggvk's CPU quantizers (tests/quant_crosscheck.rs).

The expected results come from the numpy implementation in the PyPI package `gguf` (version 0.19.0), which is
independent of ggvk and reproduces ggml's C reference routines (quantize_row_q4_0_ref, dequantize_row_q4_0,
quantize_row_q8_0_ref, dequantize_row_q8_0, the Q4_1, Q5_0 and Q5_1 routines, FP32<->FP16, FP32<->BF16).
Install it with:

    pip install gguf==0.19.0 numpy

Usage:

    python3 scripts/quant_crosscheck.py --out VECTORS.bin [--rows 10000] [--row-len 256] [--seed 1234]

The rows are: `--rows` random rows from a mix of distributions (normal with scales 1e-6..1e6, per-block
scales, uniform, one-signed, sparse, outliers, exact quantization grids that hit rounding ties, f16 rounding
ties of the scale, random f32 bit patterns, wide dynamic range), followed by hand-made edge rows (zeros, signed
zeros, constant rows, huge and tiny magnitudes, values around the f16 limits, alternating signs, single
non-zero elements, ties between equal magnitudes).

Known divergence from ggml's C reference, corrected here (and counted in the output): for a Q4_0 or Q5_0 block
whose values are all zeros, C keeps `max = +0.0` and stores `d = +0.0 / -8 (or -16) = -0.0` (f16 0x8000), while
gguf's numpy code takes `max` from the block itself, so a block starting with -0.0 gets `d = +0.0` (0x0000). The
script stores the C result: f16 -0.0 for every all-zero Q4_0/Q5_0 block, and dequantizes those corrected bytes with
gguf. Likewise for Q4_1/Q5_1: C's `min`/`max` keep the first of equal values (`v < min`, `v > max`), so of +0.0 and
-0.0 the first in the block wins, while numpy's min/max may return the other zero; the script stores C's `m` and
`d` (the correction is asserted to touch only blocks whose min or max is a zero).

Rows whose block scale `d` is an f32 subnormal small enough that `1/d` overflows (|max| < ~2.4e-38 for Q4_0,
amax < ~3.7e-37 for Q8_0) make C convert NaN/inf to int8, which is undefined behaviour; x86-64 (and numpy
on x86-64) yields 0. Those rows (categories starting with "ub_") are only generated on x86-64.

File format (all integers little-endian, all floats IEEE little-endian):

    magic        8 bytes   b"GGVKQX01"
    version      u32       1
    n_rows       u32
    row_len      u32       elements per row, a multiple of 32
    n_cats       u32       number of row categories
    n_cats times:
        name_len u32
        name     name_len bytes of UTF-8
    row_cat      n_rows x u16     category index of each row
    input        n_rows x row_len x f32
    n_types      u32
    n_types times:
        ggml_type  u32    ggml's enum ggml_type value (1 = F16, 2 = Q4_0, 3 = Q4_1, 6 = Q5_0, 7 = Q5_1,
                          8 = Q8_0, 30 = BF16)
        row_bytes  u32    bytes of one quantized row
        quantized  n_rows x row_bytes bytes     expected quantize(input)
        dequant    n_rows x row_len x f32       expected dequantize(quantized)
"""

from __future__ import annotations

import argparse
import platform
import struct
import sys
import warnings

MAGIC = b"GGVKQX01"
VERSION = 1
BLOCK = 32
REQUIRED_GGUF = "0.19.0"


def die(msg: str, code: int = 3) -> None:
    print(f"quant_crosscheck.py: {msg}", file=sys.stderr)
    sys.exit(code)


try:
    import numpy as np
except ImportError as e:  # pragma: no cover - environment problem
    die(f"numpy is not importable ({e}); run: pip install gguf=={REQUIRED_GGUF} numpy")

try:
    import gguf
    import gguf.quants
except ImportError as e:  # pragma: no cover - environment problem
    die(f"the gguf package is not importable ({e}); run: pip install gguf=={REQUIRED_GGUF} numpy")

F32 = np.float32
IS_X86_64 = platform.machine().lower() in ("x86_64", "amd64")


# ----------------------------------------------------------------------------------------------------------
# Row generators. Each takes (rng, n_rows, row_len) and returns an (n_rows, row_len) float32 array.


def log_scale(rng, size, lo=-6.0, hi=6.0):
    return (10.0 ** rng.uniform(lo, hi, size=size)).astype(np.float64)


def gen_normal_rowscale(rng, n, L):
    return (rng.standard_normal((n, L)) * log_scale(rng, (n, 1))).astype(F32)


def gen_normal_blockscale(rng, n, L):
    s = np.repeat(log_scale(rng, (n, L // BLOCK)), BLOCK, axis=1)
    return (rng.standard_normal((n, L)) * s).astype(F32)


def gen_uniform_sym(rng, n, L):
    return (rng.uniform(-1.0, 1.0, (n, L)) * log_scale(rng, (n, 1))).astype(F32)


def gen_uniform_pos(rng, n, L):
    return (rng.uniform(0.0, 1.0, (n, L)) * log_scale(rng, (n, 1))).astype(F32)


def gen_uniform_neg(rng, n, L):
    return (-rng.uniform(0.0, 1.0, (n, L)) * log_scale(rng, (n, 1))).astype(F32)


def gen_sparse90(rng, n, L):
    x = rng.standard_normal((n, L)) * log_scale(rng, (n, 1))
    x[rng.random((n, L)) < 0.9] = 0.0
    return x.astype(F32)


def gen_sparse99(rng, n, L):
    x = rng.standard_normal((n, L)) * log_scale(rng, (n, 1))
    x[rng.random((n, L)) < 0.99] = 0.0
    return x.astype(F32)


def gen_outliers(rng, n, L):
    x = rng.standard_normal((n, L)) * log_scale(rng, (n, 1), -4.0, 3.0)
    mask = rng.random((n, L)) < 0.02
    x[mask] *= 10.0 ** rng.uniform(2.0, 4.0, size=mask.sum())
    return x.astype(F32)


def gen_student_t(rng, n, L):
    # Heavy tails, like real weight matrices.
    return (rng.standard_t(3.0, (n, L)) * log_scale(rng, (n, 1), -3.0, 1.0)).astype(F32)


def _grid(rng, n, L, top, lo_exp=-20, hi_exp=20):
    """Blocks of exact multiples of s/2 in [-top*s, top*s] with one element at +-top*s (s a power of two).

    For Q4_0 (top = 8) and Q8_0 (top = 127) this makes x * (1/d) land exactly on .5 ties."""
    nb = L // BLOCK
    s = np.ldexp(1.0, rng.integers(lo_exp, hi_exp, size=(n, nb, 1)))
    k = rng.integers(-2 * top, 2 * top + 1, size=(n, nb, BLOCK)).astype(np.float64)
    x = k * 0.5 * s
    pos = rng.integers(0, BLOCK, size=(n, nb))
    sign = np.where(rng.random((n, nb)) < 0.5, -1.0, 1.0)
    ii, jj = np.meshgrid(np.arange(n), np.arange(nb), indexing="ij")
    x[ii, jj, pos] = sign * top * s[..., 0]
    return x.reshape(n, L).astype(F32)


def gen_grid_q4(rng, n, L):
    return _grid(rng, n, L, 8)


def gen_grid_q8(rng, n, L):
    return _grid(rng, n, L, 127)


def gen_grid_q5(rng, n, L):
    return _grid(rng, n, L, 16)


def _grid_min(rng, n, L, levels, lo_exp=-20, hi_exp=20):
    """Blocks of min + k * s/2 (k = 0..2*levels, both ends present, s a power of two, min a multiple of s).

    For Q4_1 (levels = 15) and Q5_1 (levels = 31), d = (max - min) / levels = s, so (x - min) * (1/d) + 0.5 lands
    exactly on .5 ties."""
    nb = L // BLOCK
    s = np.ldexp(1.0, rng.integers(lo_exp, hi_exp, size=(n, nb, 1)))
    k = rng.integers(0, 2 * levels + 1, size=(n, nb, BLOCK)).astype(np.float64)
    k[..., 0] = 0
    k[..., 1] = 2 * levels
    for i in range(n):
        for j in range(nb):
            rng.shuffle(k[i, j])
    base = rng.integers(-3 * levels, 3 * levels, size=(n, nb, 1)) * s
    return (base + k * 0.5 * s).reshape(n, L).astype(F32)


def gen_grid_q4_1(rng, n, L):
    return _grid_min(rng, n, L, 15)


def gen_grid_q5_1(rng, n, L):
    return _grid_min(rng, n, L, 31)


def gen_bf16_ties(rng, n, L):
    """f32 values exactly halfway between two adjacent bf16 values (and their neighbours one ulp away)."""
    b = rng.integers(0x0001, 0x7F7F, size=(n, L)).astype(np.uint32)
    bits = (b << 16) | 0x8000
    bits = bits + rng.integers(-1, 2, size=(n, L)).astype(np.int64).astype(np.uint32)
    sign = np.where(rng.random((n, L)) < 0.5, np.uint32(0x80000000), np.uint32(0))
    return (bits | sign).astype(np.uint32).view(F32)


def _f16_midpoints(rng, size, lo_bits=0x0001, hi_bits=0x7BFE):
    """f32 values exactly halfway between two adjacent positive finite f16 values."""
    b = rng.integers(lo_bits, hi_bits + 1, size=size).astype(np.uint16)
    a = b.view(np.float16).astype(np.float64)
    c = (b + 1).astype(np.uint16).view(np.float16).astype(np.float64)
    return (a + c) / 2.0


def _scale_ties(rng, n, L, top):
    """One element per block is +-top * (an f16 midpoint), so d = max/-8 or amax/127 is an exact f16 tie."""
    nb = L // BLOCK
    mid = _f16_midpoints(rng, (n, nb))
    big = top * mid  # exact in f32: 12-bit significand times a <= 7-bit integer
    x = rng.uniform(-1.0, 1.0, size=(n, nb, BLOCK)) * big[..., None]
    pos = rng.integers(0, BLOCK, size=(n, nb))
    sign = np.where(rng.random((n, nb)) < 0.5, -1.0, 1.0)
    ii, jj = np.meshgrid(np.arange(n), np.arange(nb), indexing="ij")
    x[ii, jj, pos] = sign * big
    return x.reshape(n, L).astype(F32)


def gen_scale_tie_q4(rng, n, L):
    return _scale_ties(rng, n, L, 8)


def gen_scale_tie_q8(rng, n, L):
    return _scale_ties(rng, n, L, 127)


def gen_f16_ties(rng, n, L):
    """Inputs that are themselves f16 rounding ties (for the F16 conversion), random signs."""
    sign = np.where(rng.random((n, L)) < 0.5, -1.0, 1.0)
    return (sign * _f16_midpoints(rng, (n, L))).astype(F32)


def gen_random_bits(rng, n, L):
    bits = rng.integers(0, 2**32, size=(n, L), dtype=np.uint64).astype(np.uint32)
    x = bits.view(F32).copy()
    bad = ~np.isfinite(x)
    while bad.any():
        x[bad] = rng.integers(0, 2**32, size=bad.sum(), dtype=np.uint64).astype(np.uint32).view(F32)
        bad = ~np.isfinite(x)
    return x


def gen_wide_dynamic(rng, n, L):
    sign = np.where(rng.random((n, L)) < 0.5, -1.0, 1.0)
    return (sign * log_scale(rng, (n, L), -30.0, 30.0)).astype(F32)


def gen_f16_range(rng, n, L):
    """Magnitudes around the f16 limits, for F16 overflow/subnormals and Q8_0/Q4_0 scales near 65504."""
    choice = rng.integers(0, 4, size=(n, 1))
    base = np.select(
        [choice == 0, choice == 1, choice == 2, choice == 3],
        [np.full((n, 1), 65504.0), np.full((n, 1), 65504.0 * 8), np.full((n, 1), 65504.0 * 127), np.full((n, 1), 6e-8)],
    )
    sign = np.where(rng.random((n, L)) < 0.5, -1.0, 1.0)
    return (sign * base * rng.uniform(0.9, 1.1, size=(n, L))).astype(F32)


def gen_fma_trap_q4(rng, n, L):
    """Q4_0 blocks full of values where fusing `x*id + 8.5` into one FMA changes the code.

    ggml's reference rounds the product x*id to f32 before adding 8.5. Just below x*id = -7.5, -6.5, -5.5 or
    -4.5 the product rounds up onto the .5 (so the sum is an integer k and truncates to k), while an FMA keeps
    the exact product, the sum lands just below k and truncates to k - 1. Such inputs catch an implementation
    (CPU with -ffp-contract, or a GPU shader without `precise`) that contracts the expression."""
    nb = L // BLOCK
    sign = np.where(rng.random((n, nb)) < 0.5, -1.0, 1.0)
    m = (sign * log_scale(rng, (n, nb), -3.0, 3.0)).astype(F32)  # the block max (sign kept)
    d = m / F32(-8)
    idv = (F32(1) / d).astype(np.float64)
    found = np.zeros((n, nb, 0), dtype=F32)
    for t in (-7.5, -6.5, -5.5, -4.5):
        x0 = (t / idv).astype(F32)
        for k in range(-6, 7):
            x = x0.copy()
            step = np.inf if k > 0 else -np.inf
            for _ in range(abs(k)):
                x = np.nextafter(x, F32(step))
            exact = x.astype(np.float64) * idv  # product of two f32 values: exact in f64
            unfused = np.trunc((exact.astype(F32) + F32(8.5)).astype(np.float64))
            fused = np.trunc((exact + 8.5).astype(F32).astype(np.float64))  # exact + 8.5 is exact in f64
            trap = unfused != fused
            found = np.concatenate([found, np.where(trap, x, np.nan).astype(F32)[..., None]], axis=-1)
    out = (rng.uniform(-1.0, 1.0, size=(n, nb, BLOCK)) * m[..., None]).astype(F32)
    for i in range(n):
        for j in range(nb):
            traps = found[i, j][~np.isnan(found[i, j])]
            if traps.size:
                out[i, j, 1:] = rng.choice(traps, size=BLOCK - 1)
            out[i, j, 0] = m[i, j]
            rng.shuffle(out[i, j])
    return out.reshape(n, L)


RANDOM_GENERATORS = [
    ("fma_trap_q4", gen_fma_trap_q4, 3),
    ("normal_rowscale", gen_normal_rowscale, 14),
    ("normal_blockscale", gen_normal_blockscale, 10),
    ("uniform_sym", gen_uniform_sym, 8),
    ("uniform_pos", gen_uniform_pos, 4),
    ("uniform_neg", gen_uniform_neg, 4),
    ("sparse90", gen_sparse90, 6),
    ("sparse99", gen_sparse99, 4),
    ("outliers", gen_outliers, 8),
    ("student_t", gen_student_t, 6),
    ("grid_q4", gen_grid_q4, 6),
    ("grid_q8", gen_grid_q8, 6),
    ("grid_q5", gen_grid_q5, 4),
    ("grid_q4_1", gen_grid_q4_1, 4),
    ("grid_q5_1", gen_grid_q5_1, 4),
    ("bf16_ties", gen_bf16_ties, 3),
    ("scale_tie_q4", gen_scale_tie_q4, 5),
    ("scale_tie_q8", gen_scale_tie_q8, 5),
    ("f16_ties", gen_f16_ties, 4),
    ("random_bits", gen_random_bits, 4),
    ("wide_dynamic", gen_wide_dynamic, 3),
    ("f16_range", gen_f16_range, 3),
]


# ----------------------------------------------------------------------------------------------------------
# Edge rows: (name, row) pairs.


def edge_rows(L: int):
    rows: list[tuple[str, np.ndarray]] = []

    def add(name, values):
        v = np.asarray(values, dtype=np.float64)
        reps = -(-L // v.size)
        rows.append((name, np.tile(v, reps)[:L].astype(F32)))

    add("edge:zeros", [0.0])
    add("edge:neg_zeros", [-0.0])
    add("edge:mixed_zeros", [-0.0, 0.0, 0.0, -0.0, -0.0])
    add("edge:zeros_then_neg_zero_first", [-0.0] + [0.0] * 31)
    for c in (1.0, 3.7, 1e-3, 0.1, 123456.0, 7.0):
        add(f"edge:const_{c:g}", [c])
        add(f"edge:const_-{c:g}", [-c])
    for c in (1e30, 3.4028234e38, 1e38, 6e4, 65504.0, 65519.99, 65520.0, 7e4,
              65504.0 * 8, 65520.0 * 8, 65504.0 * 127, 65520.0 * 127, 1e6, 1e10):
        add(f"edge:huge_{c:g}", [c])
        add(f"edge:huge_alt_{c:g}", [c, -c])
        add(f"edge:huge_mixed_{c:g}", [c, 0.25 * c, -0.5 * c, 0.0, -c / 3.0, 1.0, -1.0, 0.75 * c])
    for c in (1e-3, 1e-5, 6e-5, 6.1e-5, 6e-8, 3e-8, 1e-8, 1e-20, 1e-30, 1e-36, 1.4e-45, 3e-45):
        add(f"edge:tiny_{c:g}", [c])
        add(f"edge:tiny_alt_{c:g}", [-c, c])
        add(f"edge:tiny_mixed_{c:g}", [c, 0.5 * c, -0.25 * c, 0.0, -c, 0.3 * c])
    for c in (0.5, 2.0, 1e3):
        add(f"edge:alternating_{c:g}", [c, -c])
        add(f"edge:alternating_neg_first_{c:g}", [-c, c])
    for pos in (0, 1, 15, 16, 17, 31):
        for v in (1.0, -1.0, 1e-7, -3e5):
            row = [0.0] * BLOCK
            row[pos] = v
            add(f"edge:one_nonzero_p{pos}_{v:g}", row)
    add("edge:ramp", np.linspace(-1.0, 1.0, BLOCK))
    add("edge:ramp_rev", np.linspace(1.0, -1.0, BLOCK))
    add("edge:ramp_int_q4", np.arange(BLOCK) % 16 - 8.0)
    add("edge:ramp_int_q8", np.linspace(-127.0, 127.0, BLOCK).round())
    add("edge:tie_first_pos", [3.0, -3.0] + [1.0] * 30)
    add("edge:tie_first_neg", [-3.0, 3.0] + [1.0] * 30)
    add("edge:max_last", [0.1] * 31 + [-9.0])
    add("edge:halves_q8", [127.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 63.5, -63.5] + [0.0] * 21)
    add("edge:halves_q4", [-8.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 7.5, -7.5, 6.5, -6.5, 7.0, 8.0] + [0.0] * 19)
    add("edge:ramp_int_q5", np.arange(BLOCK) - 16.0)
    add("edge:halves_q5", [-16.0, 0.5, -0.5, 1.5, -1.5, 15.5, -15.5, 14.5, -14.5, 16.0] + [0.0] * 22)
    add("edge:ramp_int_q4_1", np.arange(BLOCK) % 16 + 3.0)
    add("edge:halves_q4_1", [0.0, 15.0, 0.5, 1.5, 2.5, 13.5, 14.5, 7.5] + [1.0] * 24)
    add("edge:halves_q5_1", [0.0, 31.0, 0.5, 1.5, 29.5, 30.5, 15.5] + [-0.0] * 25)
    if IS_X86_64:
        # f32-subnormal scales: 1/d overflows, C's float->int8 conversion is undefined (x86-64: 0).
        for c in (1e-38, 2e-38, 1e-40, 1e-42, 3e-37, 1e-37):
            add(f"ub_tiny_{c:g}", [c])
            add(f"ub_tiny_mixed_{c:g}", [c, -0.5 * c, 0.0, 0.25 * c])
    return rows


# ----------------------------------------------------------------------------------------------------------


def check_gguf_version() -> None:
    version = None
    try:
        from importlib.metadata import version as dist_version

        version = dist_version("gguf")
    except Exception:  # noqa: BLE001 - metadata may be missing for source installs
        pass
    if version is not None and version != REQUIRED_GGUF:
        print(
            f"quant_crosscheck.py: warning: gguf {version} installed, vectors were designed against "
            f"{REQUIRED_GGUF} (pip install gguf=={REQUIRED_GGUF})",
            file=sys.stderr,
        )


def expected_q4_0(x: np.ndarray):
    qt = gguf.GGMLQuantizationType.Q4_0
    q = gguf.quants.quantize(x, qt).copy()  # (n, row_bytes) uint8
    n, L = x.shape
    blocks = q.reshape(n, L // BLOCK, 18)
    # C reference: an all-zero block keeps max = +0.0, so d = -0.0 (f16 0x8000), codes all 8.
    allzero = (np.abs(x.reshape(n, L // BLOCK, BLOCK)) == 0).all(axis=-1)
    differs = allzero & ~((blocks[..., 0] == 0x00) & (blocks[..., 1] == 0x80))
    corrected = int(differs.sum())
    blocks[allzero, 0] = 0x00
    blocks[allzero, 1] = 0x80
    assert (blocks[allzero, 2:] == 0x88).all()
    deq = gguf.quants.dequantize(q, qt).astype(F32, copy=False)
    return q, deq, corrected


def _corrected_symmetric(x: np.ndarray, qt, block_bytes: int):
    """gguf's bytes for Q4_0/Q5_0 with all-zero blocks given C's d = -0.0 (f16 0x8000), then dequantized."""
    q = gguf.quants.quantize(x, qt).copy()
    n, L = x.shape
    blocks = q.reshape(n, L // BLOCK, block_bytes)
    allzero = (np.abs(x.reshape(n, L // BLOCK, BLOCK)) == 0).all(axis=-1)
    differs = allzero & ~((blocks[..., 0] == 0x00) & (blocks[..., 1] == 0x80))
    blocks[allzero, 0] = 0x00
    blocks[allzero, 1] = 0x80
    deq = gguf.quants.dequantize(q, qt).astype(F32, copy=False)
    return q, deq, int(differs.sum())


def expected_q5_0(x: np.ndarray):
    q, deq, corrected = _corrected_symmetric(x, gguf.GGMLQuantizationType.Q5_0, 22)
    n, L = x.shape
    allzero = (np.abs(x.reshape(n, L // BLOCK, BLOCK)) == 0).all(axis=-1)
    # Codes of an all-zero block are all 16: low nibbles 0, every fifth bit set.
    assert (q.reshape(n, L // BLOCK, 22)[allzero, 2:6] == 0xFF).all()
    assert (q.reshape(n, L // BLOCK, 22)[allzero, 6:] == 0x00).all()
    return q, deq, corrected


def expected_with_min(qt, levels: int, block_bytes: int):
    """Q4_1/Q5_1: gguf's bytes with d and m recomputed from C's min/max (first of equal values wins)."""

    def expected(x: np.ndarray):
        q = gguf.quants.quantize(x, qt).copy()
        n, L = x.shape
        blocks = q.reshape(n, L // BLOCK, block_bytes)
        xb = x.reshape(n, L // BLOCK, BLOCK)
        # argmin/argmax return the first index of the extreme value, and -0.0 == 0.0 there as in C.
        mn = np.take_along_axis(xb, xb.argmin(axis=-1)[..., None], axis=-1)[..., 0]
        mx = np.take_along_axis(xb, xb.argmax(axis=-1)[..., None], axis=-1)[..., 0]
        d = ((mx - mn) / F32(levels)).astype(np.float16).view(np.uint8).reshape(n, L // BLOCK, 2)
        m = mn.astype(np.float16).view(np.uint8).reshape(n, L // BLOCK, 2)
        header = np.concatenate([d, m], axis=-1)
        differs = (blocks[..., :4] != header).any(axis=-1)
        assert ((mn[differs] == 0) | (mx[differs] == 0)).all(), "min/max correction outside signed zeros"
        blocks[..., :4] = header
        deq = gguf.quants.dequantize(q, qt).astype(F32, copy=False)
        return q, deq, int(differs.sum())

    return expected


def _plain(qt):
    def expected(x: np.ndarray):
        q = gguf.quants.quantize(x, qt)
        q = np.ascontiguousarray(q).view(np.uint8).reshape(x.shape[0], -1)
        deq = gguf.quants.dequantize(q, qt).astype(F32, copy=False).reshape(x.shape)
        return q, deq, 0

    return expected


def expected_q8_0(x: np.ndarray):
    qt = gguf.GGMLQuantizationType.Q8_0
    q = gguf.quants.quantize(x, qt)
    deq = gguf.quants.dequantize(q, qt).astype(F32, copy=False)
    return q, deq, 0


def expected_f16(x: np.ndarray):
    qt = gguf.GGMLQuantizationType.F16
    h = gguf.quants.quantize(x, qt)  # float16 array
    q = np.ascontiguousarray(h).view(np.uint8).reshape(x.shape[0], -1)
    deq = gguf.quants.dequantize(q, qt).astype(F32, copy=False).reshape(x.shape)
    return q, deq, 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output vectors file")
    ap.add_argument("--rows", type=int, default=10000, help="number of random rows (edge rows come on top)")
    ap.add_argument("--row-len", type=int, default=256, help="elements per row (multiple of 32)")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    L = args.row_len
    if L <= 0 or L % BLOCK != 0:
        die(f"--row-len must be a positive multiple of {BLOCK}", 2)
    if args.rows < 0:
        die("--rows must be >= 0", 2)

    check_gguf_version()
    if not IS_X86_64:
        print("quant_crosscheck.py: not x86-64, skipping the ub_* rows", file=sys.stderr)

    rng = np.random.default_rng(args.seed)
    cat_names: list[str] = []
    cat_of_row: list[int] = []
    parts: list[np.ndarray] = []

    total_w = sum(w for _, _, w in RANDOM_GENERATORS)
    remaining = args.rows
    for i, (name, fn, w) in enumerate(RANDOM_GENERATORS):
        count = remaining if i == len(RANDOM_GENERATORS) - 1 else min(remaining, args.rows * w // total_w)
        remaining -= count
        if count == 0:
            continue
        x = fn(rng, count, L)
        assert x.shape == (count, L) and x.dtype == F32 and np.isfinite(x).all(), name
        cat_names.append(name)
        cat_of_row += [len(cat_names) - 1] * count
        parts.append(x)

    for name, row in edge_rows(L):
        assert np.isfinite(row).all(), name
        cat_names.append(name)
        cat_of_row.append(len(cat_names) - 1)
        parts.append(row.reshape(1, L))

    x = np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=F32)
    n = x.shape[0]
    if len(cat_names) >= 2**16:
        die("too many categories", 2)

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        results = [
            (gguf.GGMLQuantizationType.F16, *expected_f16(x)),
            (gguf.GGMLQuantizationType.Q4_0, *expected_q4_0(x)),
            (gguf.GGMLQuantizationType.Q4_1, *expected_with_min(gguf.GGMLQuantizationType.Q4_1, 15, 20)(x)),
            (gguf.GGMLQuantizationType.Q5_0, *expected_q5_0(x)),
            (gguf.GGMLQuantizationType.Q5_1, *expected_with_min(gguf.GGMLQuantizationType.Q5_1, 31, 24)(x)),
            (gguf.GGMLQuantizationType.Q8_0, *expected_q8_0(x)),
            (gguf.GGMLQuantizationType.BF16, *_plain(gguf.GGMLQuantizationType.BF16)(x)),
        ]

    le_f32 = np.dtype("<f4")
    with open(args.out, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<IIII", VERSION, n, L, len(cat_names)))
        for name in cat_names:
            b = name.encode("utf-8")
            f.write(struct.pack("<I", len(b)))
            f.write(b)
        f.write(np.asarray(cat_of_row, dtype="<u2").tobytes())
        f.write(x.astype(le_f32).tobytes())
        f.write(struct.pack("<I", len(results)))
        for qt, q, deq, _ in results:
            q = np.ascontiguousarray(q, dtype=np.uint8).reshape(n, -1)
            deq = np.ascontiguousarray(deq).reshape(n, L)
            f.write(struct.pack("<II", int(qt), q.shape[1]))
            f.write(q.tobytes())
            f.write(deq.astype(le_f32).tobytes())

    summary = ", ".join(f"{qt.name}: {q.size} bytes" + (f" ({c} blocks corrected to C's signed-zero rule)" if c else "")
                        for qt, q, _, c in results)
    print(f"quant_crosscheck.py: wrote {n} rows x {L} ({args.rows} random, {n - args.rows} edge, "
          f"{len(cat_names)} categories) to {args.out}; {summary}")


if __name__ == "__main__":
    main()
