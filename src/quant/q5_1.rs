//! Q5_1: blocks of 32 values stored as 5-bit unsigned codes with an f16 scale and an f16 minimum.
//!
//! Value `j` of a block is `code_j * d + m`. Codes are packed like Q5_0: low four bits in `qs` (elements `j` and
//! `j + 16` share byte `j`), fifth bits in the little-endian 32-bit word `qh`.

use half::f16;

use super::c_cast_f32_to_i8;

/// Elements per Q5_1 block (ggml's `QK5_1`).
pub const QK5_1: usize = 32;

/// One Q5_1 block, laid out exactly like ggml's `block_q5_1` (24 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_1 {
    /// Scale (delta).
    pub d: f16,
    /// Minimum (offset).
    pub m: f16,
    /// Fifth bits of the 32 codes: bit `j` of this little-endian word is bit 4 of element `j`'s code.
    pub qh: [u8; 4],
    /// Low four bits of the codes: low nibble of `qs[j]` is element `j`, high nibble element `j + 16`.
    pub qs: [u8; QK5_1 / 2],
}

const _: () = assert!(std::mem::size_of::<BlockQ5_1>() == 24);
const _: () = assert!(std::mem::align_of::<BlockQ5_1>() == 2);

/// Quantizes one block of 32 values exactly like ggml's `quantize_row_q5_1_ref`.
///
/// `d = (max - min) / 31`, codes `(uint8)((x - min) * (1/d) + 0.5)` in f32 (the C conversion, through 32 bits on
/// x86-64), `1/d` from the f32 `d`; `d` and `min` are stored rounded to f16.
pub fn quantize_block_q5_1(x: &[f32; QK5_1]) -> BlockQ5_1 {
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
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    // C: uint8_t xi = (uint8_t)(v + 0.5f); the low byte of a truncating conversion, as for int8_t.
    let code = |v: f32| -> u8 { c_cast_f32_to_i8((v - min) * id + 0.5) as u8 };
    let mut qs = [0u8; QK5_1 / 2];
    let mut qh = 0u32;
    for (j, q) in qs.iter_mut().enumerate() {
        let c0 = code(x[j]);
        let c1 = code(x[j + QK5_1 / 2]);
        *q = (c0 & 0x0F) | ((c1 & 0x0F) << 4);
        qh |= u32::from((c0 & 0x10) >> 4) << j;
        qh |= u32::from((c1 & 0x10) >> 4) << (j + QK5_1 / 2);
    }
    BlockQ5_1 { d: f16::from_f32(d), m: f16::from_f32(min), qh: qh.to_le_bytes(), qs }
}

/// Dequantizes one block exactly like ggml's `dequantize_row_q5_1`: `y = code * d + m` in f32 (not fused).
pub fn dequantize_block_q5_1(b: &BlockQ5_1, y: &mut [f32; QK5_1]) {
    let d = b.d.to_f32();
    let m = b.m.to_f32();
    let qh = u32::from_le_bytes(b.qh);
    for (j, &q) in b.qs.iter().enumerate() {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        let x0 = (u32::from(q) & 0x0F) | h0;
        let x1 = (u32::from(q) >> 4) | h1;
        y[j] = x0 as f32 * d + m;
        y[j + QK5_1 / 2] = x1 as f32 * d + m;
    }
}

/// Quantizes a row of `x.len()` values into `y` (ggml's `quantize_row_q5_1_ref`).
///
/// # Panics
/// If `x.len() != y.len() * QK5_1`.
pub fn quantize_row_q5_1(x: &[f32], y: &mut [BlockQ5_1]) {
    assert_eq!(x.len(), y.len() * QK5_1, "quantize_row_q5_1: {} values do not fill {} blocks", x.len(), y.len());
    for (xb, yb) in x.chunks_exact(QK5_1).zip(y) {
        *yb = quantize_block_q5_1(xb.try_into().expect("chunks_exact yields whole blocks"));
    }
}

/// Dequantizes the blocks `x` into `y` (ggml's `dequantize_row_q5_1`).
///
/// # Panics
/// If `y.len() != x.len() * QK5_1`.
pub fn dequantize_row_q5_1(x: &[BlockQ5_1], y: &mut [f32]) {
    assert_eq!(y.len(), x.len() * QK5_1, "dequantize_row_q5_1: {} blocks do not fill {} values", x.len(), y.len());
    for (xb, yb) in x.iter().zip(y.chunks_exact_mut(QK5_1)) {
        dequantize_block_q5_1(xb, yb.try_into().expect("chunks_exact yields whole blocks"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dq(b: &BlockQ5_1) -> [f32; QK5_1] {
        let mut y = [0f32; QK5_1];
        dequantize_block_q5_1(b, &mut y);
        y
    }

    #[test]
    fn layout() {
        let b = BlockQ5_1 {
            d: f16::from_bits(0x1234),
            m: f16::from_bits(0x5678),
            qh: [1, 2, 3, 4],
            qs: std::array::from_fn(|i| i as u8 + 0x40),
        };
        let bytes = bytemuck::bytes_of(&b);
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[..4], &[0x34, 0x12, 0x78, 0x56]);
        assert_eq!(&bytes[4..8], &[1, 2, 3, 4]);
        assert_eq!(bytes[8], 0x40);
        assert_eq!(bytes[23], 0x4F);
    }

    #[test]
    fn integer_grid_round_trips() {
        // 3..=34 in a shuffled order: min 3, max 34, d = 1, codes v - 3 cover 0..=31.
        let x: [f32; QK5_1] = std::array::from_fn(|i| ((i * 7) % 32) as f32 + 3.0);
        let b = quantize_block_q5_1(&x);
        assert_eq!((b.d.to_f32(), b.m.to_f32()), (1.0, 3.0));
        assert_eq!(dq(&b), x);
    }

    #[test]
    fn constant_block_has_zero_scale() {
        let b = quantize_block_q5_1(&[-2.5; QK5_1]);
        assert_eq!(b.d.to_bits(), 0);
        assert_eq!(b.m.to_f32(), -2.5);
        assert_eq!((b.qs, b.qh), ([0; 16], [0; 4]));
        assert!(dq(&b).iter().all(|&v| v == -2.5));
    }
}
