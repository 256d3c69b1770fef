//! Q1_0: blocks of 128 signs with one f16 magnitude (1.125 bits per value).
//!
//! Value `j` of a block is `d` where bit `j % 8` of byte `qs[j / 8]` is set and `-d` where it is clear (ggml's
//! `dequantize_row_q1_0`). The reference quantizer (`quantize_row_q1_0_ref`, the CPU backend's `from_float` for
//! Q1_0) takes `d = sum |x| / 128` (summed in f32, element order) and sets the bit of every value `>= 0` (so -0.0
//! sets it and NaN does not).

use half::f16;

/// Values per Q1_0 block (ggml's `QK1_0`).
pub const QK1_0: usize = 128;

/// One Q1_0 block, laid out exactly like ggml's `block_q1_0` (18 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ1_0 {
    /// Magnitude.
    pub d: f16,
    /// Signs: bit `j % 8` of `qs[j / 8]` set means value `j` is `+d`.
    pub qs: [u8; QK1_0 / 8],
}

const _: () = assert!(std::mem::size_of::<BlockQ1_0>() == 18);
const _: () = assert!(std::mem::align_of::<BlockQ1_0>() == 2);

/// Quantizes one block exactly like ggml's `quantize_row_q1_0_ref`.
pub fn quantize_block_q1_0(x: &[f32; QK1_0]) -> BlockQ1_0 {
    let mut sum_abs = 0.0f32;
    for &v in x {
        sum_abs += v.abs();
    }
    let d = sum_abs / QK1_0 as f32;
    let mut qs = [0u8; QK1_0 / 8];
    for (j, &v) in x.iter().enumerate() {
        if v >= 0.0 {
            qs[j / 8] |= 1 << (j % 8);
        }
    }
    BlockQ1_0 { d: f16::from_f32(d), qs }
}

/// Dequantizes one block exactly like ggml's `dequantize_row_q1_0`.
pub fn dequantize_block_q1_0(b: &BlockQ1_0, y: &mut [f32; QK1_0]) {
    let d = b.d.to_f32();
    for (j, y) in y.iter_mut().enumerate() {
        *y = if (b.qs[j / 8] >> (j % 8)) & 1 != 0 { d } else { -d };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_mean_magnitude() {
        // |x| sums to 128 * 0.75 = 96: d = 0.75 exactly; signs by position.
        let x: [f32; QK1_0] = std::array::from_fn(|j| match j % 4 {
            0 => 0.5,
            1 => -1.0,
            2 => 0.0,
            _ => -1.5,
        });
        let b = quantize_block_q1_0(&x);
        assert_eq!(b.d.to_f32(), 0.75);
        // Per byte: values 0 (+), 2 (0.0 counts as >= 0), 4, 6 set: 0b0101_0101.
        assert!(b.qs.iter().all(|&q| q == 0x55), "{:?}", b.qs);
        let mut y = [0f32; QK1_0];
        dequantize_block_q1_0(&b, &mut y);
        for (j, v) in y.iter().enumerate() {
            assert_eq!(*v, if j % 2 == 0 { 0.75 } else { -0.75 }, "value {j}");
        }
    }

    #[test]
    fn negative_zero_sets_the_bit_nan_does_not() {
        let mut x = [0f32; QK1_0];
        x[0] = -0.0;
        x[1] = f32::NAN;
        x[2] = -f32::MIN_POSITIVE;
        x[9] = 2.0;
        let b = quantize_block_q1_0(&x);
        assert_eq!(b.qs[0], 0b1111_1001);
        assert_eq!(b.qs[1], 0xFF);
        // The sum is NaN (ggml's too): d stores as an f16 NaN.
        assert!(b.d.is_nan());
    }

    #[test]
    fn block_layout_from_bytes() {
        // d = 0x3C00 (1.0), then byte 0 = 0x01: value 0 is +1, values 1..8 are -1; byte 15 = 0x80: value 127 is +1.
        let mut bytes = [0u8; 18];
        bytes[0..2].copy_from_slice(&0x3C00u16.to_le_bytes());
        bytes[2] = 0x01;
        bytes[17] = 0x80;
        let b: BlockQ1_0 = bytemuck::pod_read_unaligned(&bytes);
        let mut y = [0f32; QK1_0];
        dequantize_block_q1_0(&b, &mut y);
        assert_eq!(y[0], 1.0);
        assert!(y[1..127].iter().all(|&v| v == -1.0));
        assert_eq!(y[127], 1.0);
    }
}
