//! Q5_0: blocks of 32 values stored as 5-bit unsigned codes with one f16 scale.
//!
//! Value `j` of a block is `(code_j - 16) * d`. The low four bits of the codes of elements `j` and `j + 16` share
//! byte `qs[j]` (low nibble, high nibble); the fifth bit of element `j` is bit `j` of the little-endian 32-bit word
//! `qh`.

use half::f16;

use super::c_cast_f32_to_i8;

/// Elements per Q5_0 block (ggml's `QK5_0`).
pub const QK5_0: usize = 32;

/// One Q5_0 block, laid out exactly like ggml's `block_q5_0` (22 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_0 {
    /// Scale (delta).
    pub d: f16,
    /// Fifth bits of the 32 codes: bit `j` of this little-endian word is bit 4 of element `j`'s code.
    pub qh: [u8; 4],
    /// Low four bits of the codes: low nibble of `qs[j]` is element `j`, high nibble element `j + 16`.
    pub qs: [u8; QK5_0 / 2],
}

const _: () = assert!(std::mem::size_of::<BlockQ5_0>() == 22);
const _: () = assert!(std::mem::align_of::<BlockQ5_0>() == 2);

/// Quantizes one block of 32 values exactly like ggml's `quantize_row_q5_0_ref`.
///
/// `d = max / -16`, where `max` is the first value of largest magnitude (sign kept); codes are
/// `min(31, (int8)(x * (1/d) + 16.5))` in f32, with `1/d` from the f32 `d`; `d` is stored rounded to f16.
pub fn quantize_block_q5_0(x: &[f32; QK5_0]) -> BlockQ5_0 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    // C: uint8_t xi = MIN(31, (int8_t)(v * id + 16.5f));
    let code = |v: f32| -> u8 { c_cast_f32_to_i8(v * id + 16.5).min(31) as u8 };
    let mut qs = [0u8; QK5_0 / 2];
    let mut qh = 0u32;
    for (j, q) in qs.iter_mut().enumerate() {
        let c0 = code(x[j]);
        let c1 = code(x[j + QK5_0 / 2]);
        *q = (c0 & 0x0F) | ((c1 & 0x0F) << 4);
        qh |= u32::from((c0 & 0x10) >> 4) << j;
        qh |= u32::from((c1 & 0x10) >> 4) << (j + QK5_0 / 2);
    }
    BlockQ5_0 { d: f16::from_f32(d), qh: qh.to_le_bytes(), qs }
}

/// Dequantizes one block exactly like ggml's `dequantize_row_q5_0`: `y = (code - 16) * d` in f32.
pub fn dequantize_block_q5_0(b: &BlockQ5_0, y: &mut [f32; QK5_0]) {
    let d = b.d.to_f32();
    let qh = u32::from_le_bytes(b.qh);
    for (j, &q) in b.qs.iter().enumerate() {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        let x0 = ((u32::from(q) & 0x0F) | h0) as i32 - 16;
        let x1 = ((u32::from(q) >> 4) | h1) as i32 - 16;
        y[j] = x0 as f32 * d;
        y[j + QK5_0 / 2] = x1 as f32 * d;
    }
}

/// Quantizes a row of `x.len()` values into `y` (ggml's `quantize_row_q5_0_ref`).
///
/// # Panics
/// If `x.len() != y.len() * QK5_0`.
pub fn quantize_row_q5_0(x: &[f32], y: &mut [BlockQ5_0]) {
    assert_eq!(x.len(), y.len() * QK5_0, "quantize_row_q5_0: {} values do not fill {} blocks", x.len(), y.len());
    for (xb, yb) in x.chunks_exact(QK5_0).zip(y) {
        *yb = quantize_block_q5_0(xb.try_into().expect("chunks_exact yields whole blocks"));
    }
}

/// Dequantizes the blocks `x` into `y` (ggml's `dequantize_row_q5_0`).
///
/// # Panics
/// If `y.len() != x.len() * QK5_0`.
pub fn dequantize_row_q5_0(x: &[BlockQ5_0], y: &mut [f32]) {
    assert_eq!(y.len(), x.len() * QK5_0, "dequantize_row_q5_0: {} blocks do not fill {} values", x.len(), y.len());
    for (xb, yb) in x.iter().zip(y.chunks_exact_mut(QK5_0)) {
        dequantize_block_q5_0(xb, yb.try_into().expect("chunks_exact yields whole blocks"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dq(b: &BlockQ5_0) -> [f32; QK5_0] {
        let mut y = [0f32; QK5_0];
        dequantize_block_q5_0(b, &mut y);
        y
    }

    #[test]
    fn layout() {
        let b = BlockQ5_0 { d: f16::from_bits(0x1234), qh: [1, 2, 3, 4], qs: std::array::from_fn(|i| i as u8 + 0x40) };
        let bytes = bytemuck::bytes_of(&b);
        assert_eq!(bytes.len(), 22);
        assert_eq!(&bytes[..2], &0x1234u16.to_ne_bytes());
        assert_eq!(&bytes[2..6], &[1, 2, 3, 4]);
        assert_eq!(bytes[6], 0x40);
        assert_eq!(bytes[21], 0x4F);
    }

    #[test]
    fn integer_grid_round_trips() {
        // -16..=15 twice: max is the first -16, d = 1; code = v + 16 covers all 32 codes, fifth bit included.
        let x: [f32; QK5_0] = std::array::from_fn(|i| ((i * 5) % 32) as f32 - 16.0);
        let b = quantize_block_q5_0(&x);
        assert_eq!(b.d.to_f32(), 1.0);
        assert_eq!(dq(&b), x);
        // Element 0 is -16 (code 0), element 16 is (80 % 32) - 16 = 0 (code 16: fifth bit set, bit 16 of qh).
        assert_eq!(b.qs[0] & 0x0F, 0);
        assert_eq!(u32::from_le_bytes(b.qh) >> 16 & 1, 1);
    }

    #[test]
    fn positive_max_clamps_at_31() {
        // max = +16 -> d = -1: +16 -> trunc(0.5) = 0; -16 -> trunc(32.5) = 32 -> 31 (value -15).
        let mut x = [0f32; QK5_0];
        x[0] = 16.0;
        x[1] = -16.0;
        x[2] = 2.5; // -2.5 + 16.5 = 14 -> 2
        let b = quantize_block_q5_0(&x);
        let y = dq(&b);
        assert_eq!(&y[..3], &[16.0, -15.0, 2.0]);
        assert_eq!(y[3], 0.0);
    }

    #[test]
    fn all_zeros_store_negative_zero_scale() {
        let b = quantize_block_q5_0(&[0.0; QK5_0]);
        assert_eq!(b.d.to_bits(), 0x8000);
        // Codes are trunc(16.5) = 16: low nibbles 0, every fifth bit set.
        assert_eq!(b.qs, [0; 16]);
        assert_eq!(b.qh, [0xFF; 4]);
    }
}
