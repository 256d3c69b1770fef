//! Q2_0: blocks of 64 two-bit codes with one f16 scale (2.25 bits per value).
//!
//! Code `q` of value `j` sits at bits `2 (j % 4)` of byte `qs[j / 4]`; the value is `(q - 1) * d`, so the levels are
//! `-d, 0, d, 2d` (ggml's `dequantize_row_q2_0`). The reference quantizer (`quantize_row_q2_0_ref`, the CPU
//! backend's `from_float` for Q2_0) takes `d = max |x|` (NaN never wins the comparison), `id = 1 / d` (0 for an
//! all-zero block) and `q = (int)roundf(x * id) + 1` clamped to 0..3, with C's `(int)` as x86-64 executes it (NaN
//! and values beyond `int` give `INT_MIN`, hence code 0).

use half::f16;

/// Values per Q2_0 block (ggml's `QK2_0`).
pub const QK2_0: usize = 64;

/// One Q2_0 block, laid out exactly like ggml's `block_q2_0` (18 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ2_0 {
    /// Scale.
    pub d: f16,
    /// Codes: bits `2 (j % 4)` of `qs[j / 4]` hold value `j`'s.
    pub qs: [u8; QK2_0 / 4],
}

const _: () = assert!(std::mem::size_of::<BlockQ2_0>() == 18);
const _: () = assert!(std::mem::align_of::<BlockQ2_0>() == 2);

/// `(int)roundf(v)` as ggml's x86-64 build computes it: `roundf` rounds half away from zero (as `f32::round`), and
/// the conversion of NaN or of a value outside `int`'s range yields `INT_MIN` (`cvttss2si`).
fn c_round_to_int(v: f32) -> i32 {
    let r = v.round();
    if (-2_147_483_648.0..2_147_483_648.0).contains(&r) {
        r as i32
    } else {
        i32::MIN
    }
}

/// Quantizes one block exactly like ggml's `quantize_row_q2_0_ref`.
pub fn quantize_block_q2_0(x: &[f32; QK2_0]) -> BlockQ2_0 {
    let mut amax = 0.0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
        }
    }
    let d = amax;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; QK2_0 / 4];
    for (j, &w) in x.iter().enumerate() {
        let q = c_round_to_int(w * id).saturating_add(1).clamp(0, 3) as u8;
        qs[j / 4] |= q << (2 * (j % 4));
    }
    BlockQ2_0 { d: f16::from_f32(d), qs }
}

/// Dequantizes one block exactly like ggml's `dequantize_row_q2_0`: `((int)q - 1) * d` in f32.
pub fn dequantize_block_q2_0(b: &BlockQ2_0, y: &mut [f32; QK2_0]) {
    let d = b.d.to_f32();
    for (j, y) in y.iter_mut().enumerate() {
        let q = i32::from((b.qs[j / 4] >> (2 * (j % 4))) & 3);
        *y = (q - 1) as f32 * d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_rounding_and_clamp() {
        // d = max |x| = 2: x / d rounds half away from zero, then clamps to -1..2.
        let mut x = [0f32; QK2_0];
        let pattern = [2.0, -2.0, 1.0, -1.0, 0.99, -0.99, 0.0, -0.0, 1.5, 0.5];
        x[..pattern.len()].copy_from_slice(&pattern);
        let b = quantize_block_q2_0(&x);
        assert_eq!(b.d.to_f32(), 2.0);
        // x / d: 1, -1, 0.5, -0.5, 0.495, -0.495, 0, -0, 0.75, 0.25 -> rounded 1, -1, 1, -1, 0, 0, 0, 0, 1, 0
        // -> codes 2, 0, 2, 0, 1, 1, 1, 1, 2, 1.
        let want = [2u8, 0, 2, 0, 1, 1, 1, 1, 2, 1];
        for (j, &c) in want.iter().enumerate() {
            assert_eq!((b.qs[j / 4] >> (2 * (j % 4))) & 3, c, "value {j}");
        }
        // The untouched zeros code 1 (value 0).
        assert!(b.qs[3..].iter().all(|&q| q == 0x55));
        let mut y = [0f32; QK2_0];
        dequantize_block_q2_0(&b, &mut y);
        assert_eq!(&y[..10], &[2.0, -2.0, 2.0, -2.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0]);
    }

    #[test]
    fn code_three_is_twice_the_scale() {
        // Only dequantization reaches code 3 (the quantizer's x / max |x| is at most 1).
        let mut bytes = [0u8; 18];
        bytes[0..2].copy_from_slice(&0xB800u16.to_le_bytes()); // -0.5
        bytes[2] = 0b11_10_01_00; // values 0..3: codes 0, 1, 2, 3
        let b: BlockQ2_0 = bytemuck::pod_read_unaligned(&bytes);
        let mut y = [0f32; QK2_0];
        dequantize_block_q2_0(&b, &mut y);
        assert_eq!(&y[..4], &[0.5, -0.0, -0.5, -1.0]);
        // Code 0 elsewhere: -1 * d.
        assert!(y[4..].iter().all(|&v| v == 0.5));
    }

    #[test]
    fn zero_and_non_finite_blocks() {
        let z = quantize_block_q2_0(&[0.0; QK2_0]);
        assert_eq!(z.d.to_bits(), 0);
        assert!(z.qs.iter().all(|&q| q == 0x55));
        // NaN never becomes the maximum; its own code is INT_MIN + 1 clamped to 0.
        let mut x = [0.25f32; QK2_0];
        x[5] = f32::NAN;
        let b = quantize_block_q2_0(&x);
        assert_eq!(b.d.to_f32(), 0.25);
        assert_eq!((b.qs[1] >> 2) & 3, 0);
        assert_eq!(b.qs[0], 0xAA);
        assert_eq!(c_round_to_int(2.5), 3);
        assert_eq!(c_round_to_int(-2.5), -3);
        assert_eq!(c_round_to_int(3e9), i32::MIN);
        assert_eq!(c_round_to_int(f32::INFINITY), i32::MIN);
    }
}
