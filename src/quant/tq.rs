//! TQ1_0 and TQ2_0 (ternary, BitNet-style): super-blocks of 256 values from {-1, 0, 1} times an f16 scale.
//!
//! TQ2_0: 2 bits per value, `q - 1`; byte `m` of each 32-byte group holds values `m`, `m + 32`, `m + 64`, `m + 96`
//! of that group's 128 (bits 0..1, 2..3, 4..5, 6..7). TQ1_0: five ternary digits per byte in base 3 as a fraction
//! of 256 (digit `n` of byte `q` is `((q * 3^n mod 256) * 3) >> 8`), 48 bytes for 240 values, then 4 bytes of 4
//! digits for the last 16. Values `(digit - 1) * d`. ggml's `dequantize_row_tq1_0`, `dequantize_row_tq2_0`.

use half::f16;

use super::k_common::QK_K;

/// One TQ1_0 block, laid out exactly like ggml's `block_tq1_0` (54 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockTq1_0 {
    /// Five digits per byte: values 0..160 (bytes 0..32) and 160..240 (bytes 32..48).
    pub qs: [u8; (QK_K - 4 * QK_K / 64) / 5],
    /// Four digits per byte: values 240..256.
    pub qh: [u8; QK_K / 64],
    /// Scale.
    pub d: f16,
}

const _: () = assert!(std::mem::size_of::<BlockTq1_0>() == 54);

/// Digit `n` (0..5) of a TQ1_0 byte: 0, 1 or 2.
pub fn tq1_digit(q: u8, n: u32) -> i32 {
    let q = q.wrapping_mul(3u8.pow(n));
    ((u32::from(q) * 3) >> 8) as i32
}

/// Dequantizes one block exactly like ggml's `dequantize_row_tq1_0`.
pub fn dequantize_block_tq1_0(b: &BlockTq1_0, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let mut o = 0;
    for (start, width) in [(0usize, 32usize), (32, 16)] {
        for n in 0..5 {
            for m in 0..width {
                y[o] = (tq1_digit(b.qs[start + m], n) - 1) as f32 * d;
                o += 1;
            }
        }
    }
    for n in 0..4 {
        for &q in &b.qh {
            y[o] = (tq1_digit(q, n) - 1) as f32 * d;
            o += 1;
        }
    }
}

/// One TQ2_0 block, laid out exactly like ggml's `block_tq2_0` (66 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockTq2_0 {
    /// 2-bit codes, four per byte.
    pub qs: [u8; QK_K / 4],
    /// Scale.
    pub d: f16,
}

const _: () = assert!(std::mem::size_of::<BlockTq2_0>() == 66);

/// Dequantizes one block exactly like ggml's `dequantize_row_tq2_0`.
pub fn dequantize_block_tq2_0(b: &BlockTq2_0, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    for (g, y) in y.chunks_exact_mut(128).enumerate() {
        for (l, y) in y.chunks_exact_mut(32).enumerate() {
            for (m, y) in y.iter_mut().enumerate() {
                let q = i32::from((b.qs[32 * g + m] >> (2 * l)) & 3);
                *y = (q - 1) as f32 * d;
            }
        }
    }
}
