//! Q4_1: blocks of 32 values stored as 4-bit unsigned codes with an f16 scale and an f16 minimum.
//!
//! Value `j` of a block is `code_j * d + m`. Codes of elements `j` and `j + 16` share byte `qs[j]`: the first in
//! the low nibble, the second in the high nibble.

use half::f16;

use super::c_cast_f32_to_i8;

/// Elements per Q4_1 block (ggml's `QK4_1`).
pub const QK4_1: usize = 32;

/// One Q4_1 block, laid out exactly like ggml's `block_q4_1` (20 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_1 {
    /// Scale (delta).
    pub d: f16,
    /// Minimum (offset).
    pub m: f16,
    /// 32 4-bit codes: low nibble of `qs[j]` is element `j`, high nibble is element `j + 16`.
    pub qs: [u8; QK4_1 / 2],
}

const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);
const _: () = assert!(std::mem::align_of::<BlockQ4_1>() == 2);

/// Quantizes one block of 32 values exactly like ggml's `quantize_row_q4_1_ref`.
///
/// `d = (max - min) / 15`, codes `min(15, (int8)((x - min) * (1/d) + 0.5))` in f32, `1/d` from the f32 `d`;
/// `d` and `min` are stored rounded to f16.
pub fn quantize_block_q4_1(x: &[f32; QK4_1]) -> BlockQ4_1 {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    // C: uint8_t xi = MIN(15, (int8_t)(v + 0.5f));
    let code = |v: f32| -> u8 { c_cast_f32_to_i8((v - min) * id + 0.5).min(15) as u8 };
    let mut qs = [0u8; QK4_1 / 2];
    for (j, q) in qs.iter_mut().enumerate() {
        *q = code(x[j]) | (code(x[j + QK4_1 / 2]) << 4);
    }
    BlockQ4_1 { d: f16::from_f32(d), m: f16::from_f32(min), qs }
}

/// Dequantizes one block exactly like ggml's `dequantize_row_q4_1`: `y = code * d + m` in f32 (not fused).
pub fn dequantize_block_q4_1(b: &BlockQ4_1, y: &mut [f32; QK4_1]) {
    let d = b.d.to_f32();
    let m = b.m.to_f32();
    let (lo, hi) = y.split_at_mut(QK4_1 / 2);
    for ((&q, y0), y1) in b.qs.iter().zip(lo).zip(hi) {
        *y0 = (q & 0x0F) as f32 * d + m;
        *y1 = (q >> 4) as f32 * d + m;
    }
}

/// Quantizes a row of `x.len()` values into `y` (ggml's `quantize_row_q4_1_ref`).
///
/// # Panics
/// If `x.len() != y.len() * QK4_1`.
pub fn quantize_row_q4_1(x: &[f32], y: &mut [BlockQ4_1]) {
    assert_eq!(x.len(), y.len() * QK4_1, "quantize_row_q4_1: {} values do not fill {} blocks", x.len(), y.len());
    for (xb, yb) in x.chunks_exact(QK4_1).zip(y) {
        *yb = quantize_block_q4_1(xb.try_into().expect("chunks_exact yields whole blocks"));
    }
}

/// Dequantizes the blocks `x` into `y` (ggml's `dequantize_row_q4_1`).
///
/// # Panics
/// If `y.len() != x.len() * QK4_1`.
pub fn dequantize_row_q4_1(x: &[BlockQ4_1], y: &mut [f32]) {
    assert_eq!(y.len(), x.len() * QK4_1, "dequantize_row_q4_1: {} blocks do not fill {} values", x.len(), y.len());
    for (xb, yb) in x.iter().zip(y.chunks_exact_mut(QK4_1)) {
        dequantize_block_q4_1(xb, yb.try_into().expect("chunks_exact yields whole blocks"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dq(b: &BlockQ4_1) -> [f32; QK4_1] {
        let mut y = [0f32; QK4_1];
        dequantize_block_q4_1(b, &mut y);
        y
    }

    #[test]
    fn layout() {
        let b =
            BlockQ4_1 { d: f16::from_bits(0x1234), m: f16::from_bits(0x5678), qs: std::array::from_fn(|i| i as u8) };
        let bytes = bytemuck::bytes_of(&b);
        assert_eq!(bytes.len(), 20);
        assert_eq!(&bytes[..4], &[0x34, 0x12, 0x78, 0x56]);
        assert_eq!(bytes[4], 0);
        assert_eq!(bytes[19], 15);
    }

    #[test]
    fn integer_grid_round_trips() {
        // -4..=11: min -4, max 11, d = 1, codes v + 4.
        let x: [f32; QK4_1] = std::array::from_fn(|i| ((i * 3) % 16) as f32 - 4.0);
        let b = quantize_block_q4_1(&x);
        assert_eq!((b.d.to_f32(), b.m.to_f32()), (1.0, -4.0));
        assert_eq!(dq(&b), x);
        assert_eq!(b.qs[1], 3 | (((16 + 1) * 3 % 16) << 4) as u8);
    }

    #[test]
    fn half_steps_round_up() {
        // min 0, max 15, d = 1: 2.5 -> trunc(3.0) = 3, 14.49 -> 14.
        let mut x = [0f32; QK4_1];
        x[1] = 15.0;
        x[2] = 2.5;
        x[3] = 14.49;
        let y = dq(&quantize_block_q4_1(&x));
        assert_eq!(&y[..4], &[0.0, 15.0, 3.0, 14.0]);
    }
}
