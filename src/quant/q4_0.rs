//! Q4_0: blocks of 32 values stored as 4-bit unsigned codes with one f16 scale.
//!
//! Value `i` of a block is `(code_i - 8) * d`. Codes of elements `j` and `j + 16` share byte `qs[j]`: the
//! first in the low nibble, the second in the high nibble.

use half::f16;

use super::c_cast_f32_to_i8;

/// Elements per Q4_0 block (ggml's `QK4_0`).
pub const QK4_0: usize = 32;

/// One Q4_0 block, laid out exactly like ggml's `block_q4_0` (18 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    /// Scale (delta).
    pub d: f16,
    /// 32 4-bit codes: low nibble of `qs[j]` is element `j`, high nibble is element `j + 16`.
    pub qs: [u8; QK4_0 / 2],
}

const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == 18);
const _: () = assert!(std::mem::align_of::<BlockQ4_0>() == 2);

/// Quantizes one block of 32 values exactly like ggml's `quantize_row_q4_0_ref`.
///
/// The scale is `d = max / -8`, where `max` is the first value of largest magnitude (sign kept), so that
/// value maps to code 0. Codes are `min(15, (int8)(x * (1/d) + 8.5))`, all in f32; `1/d` uses the f32 `d`,
/// and `d` is then stored rounded to f16 (nearest, ties to even).
pub fn quantize_block_q4_0(x: &[f32; QK4_0]) -> BlockQ4_0 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }

    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };

    let code = |v: f32| -> u8 {
        // C: uint8_t xi = MIN(15, (int8_t)(v * id + 8.5f));
        c_cast_f32_to_i8(v * id + 8.5).min(15) as u8
    };
    let mut qs = [0u8; QK4_0 / 2];
    for (j, q) in qs.iter_mut().enumerate() {
        let lo = code(x[j]);
        let hi = code(x[j + QK4_0 / 2]);
        *q = lo | (hi << 4);
    }
    BlockQ4_0 { d: f16::from_f32(d), qs }
}

/// Dequantizes one block exactly like ggml's `dequantize_row_q4_0`: `y = (code - 8) * d` in f32.
pub fn dequantize_block_q4_0(b: &BlockQ4_0, y: &mut [f32; QK4_0]) {
    let d = b.d.to_f32();
    let (lo, hi) = y.split_at_mut(QK4_0 / 2);
    for ((&q, y0), y1) in b.qs.iter().zip(lo).zip(hi) {
        *y0 = ((q & 0x0F) as i32 - 8) as f32 * d;
        *y1 = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

/// Quantizes a row of `x.len()` values into `y` (ggml's `quantize_row_q4_0_ref`).
///
/// # Panics
/// If `x.len() != y.len() * QK4_0`.
pub fn quantize_row_q4_0(x: &[f32], y: &mut [BlockQ4_0]) {
    assert_eq!(
        x.len(),
        y.len() * QK4_0,
        "quantize_row_q4_0: {} values do not fill {} blocks of {QK4_0}",
        x.len(),
        y.len()
    );
    for (xb, yb) in x.chunks_exact(QK4_0).zip(y) {
        *yb = quantize_block_q4_0(xb.try_into().expect("chunks_exact yields whole blocks"));
    }
}

/// Dequantizes the blocks `x` into `y` (ggml's `dequantize_row_q4_0`).
///
/// # Panics
/// If `y.len() != x.len() * QK4_0`.
pub fn dequantize_row_q4_0(x: &[BlockQ4_0], y: &mut [f32]) {
    assert_eq!(
        y.len(),
        x.len() * QK4_0,
        "dequantize_row_q4_0: {} blocks of {QK4_0} do not fill {} values",
        x.len(),
        y.len()
    );
    for (xb, yb) in x.iter().zip(y.chunks_exact_mut(QK4_0)) {
        dequantize_block_q4_0(xb, yb.try_into().expect("chunks_exact yields whole blocks"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(x: &[f32; QK4_0]) -> BlockQ4_0 {
        quantize_block_q4_0(x)
    }

    fn dq(b: &BlockQ4_0) -> [f32; QK4_0] {
        let mut y = [0f32; QK4_0];
        dequantize_block_q4_0(b, &mut y);
        y
    }

    /// Unpacks the 32 codes in element order.
    fn codes(b: &BlockQ4_0) -> [u8; QK4_0] {
        let mut c = [0u8; QK4_0];
        for j in 0..QK4_0 / 2 {
            c[j] = b.qs[j] & 0x0F;
            c[j + 16] = b.qs[j] >> 4;
        }
        c
    }

    #[test]
    fn layout() {
        let b = BlockQ4_0 { d: f16::from_bits(0x1234), qs: std::array::from_fn(|i| i as u8 + 0x40) };
        let bytes = bytemuck::bytes_of(&b);
        assert_eq!(bytes.len(), 18);
        assert_eq!(&bytes[..2], &0x1234u16.to_ne_bytes());
        assert_eq!(bytes[2], 0x40);
        assert_eq!(bytes[17], 0x4F);
    }

    #[test]
    fn max_minus_eight_gives_unit_scale() {
        // Elements -8..=7 then -8..=7 again: max is the first -8 (|-8| is the largest), d = -8 / -8 = 1.
        let x: [f32; QK4_0] = std::array::from_fn(|i| (i % 16) as f32 - 8.0);
        let b = q(&x);
        assert_eq!(b.d.to_bits(), f16::ONE.to_bits());
        // code = trunc(v + 8.5) = v + 8.
        let expect: [u8; QK4_0] = std::array::from_fn(|i| (i % 16) as u8);
        assert_eq!(codes(&b), expect);
        assert_eq!(b.qs[0], 0x00);
        assert_eq!(b.qs[15], 0xFF);
        // Exact round trip.
        assert_eq!(dq(&b), x);
    }

    #[test]
    fn positive_max_maps_to_code_zero_and_clamps() {
        // max = +8 -> d = -1, id = -1: +8 -> trunc(0.5) = 0; -8 -> trunc(16.5) = 16 -> clamped to 15.
        let mut x = [0f32; QK4_0];
        x[0] = 8.0;
        x[1] = -8.0;
        x[2] = 3.0;
        x[3] = -2.5; // -2.5 * -1 + 8.5 = 11
        x[4] = 2.5; // 2.5 * -1 + 8.5 = 6
        x[5] = -7.6; // 16.1 -> 16 -> 15
        x[20] = 1.0; // 7.5 -> 7
        let b = q(&x);
        assert_eq!(b.d.to_f32(), -1.0);
        let c = codes(&b);
        assert_eq!(&c[..6], &[0, 15, 5, 11, 6, 15]);
        assert_eq!(c[20], 7);
        assert_eq!(c[6], 8); // zeros -> 8
        let y = dq(&b);
        assert_eq!(&y[..6], &[8.0, -7.0, 3.0, -3.0, 2.0, -7.0]);
        assert_eq!(y[20], 1.0);
    }

    #[test]
    fn first_of_tied_magnitudes_wins() {
        let mut x = [0f32; QK4_0];
        x[3] = 4.0;
        x[9] = -4.0;
        let b = q(&x);
        assert_eq!(b.d.to_f32(), -0.5); // from +4.0 (first), not from -4.0
        let mut x2 = [0f32; QK4_0];
        x2[3] = -4.0;
        x2[9] = 4.0;
        assert_eq!(q(&x2).d.to_f32(), 0.5);
    }

    #[test]
    fn all_zeros() {
        let b = q(&[0.0; QK4_0]);
        // max stays +0.0, so d = +0.0 / -8 = -0.0; id = 0; every code is trunc(8.5) = 8.
        assert_eq!(b.d.to_bits(), 0x8000);
        assert_eq!(b.qs, [0x88; 16]);
        let y = dq(&b);
        // (8 - 8) * -0.0 = -0.0
        assert!(y.iter().all(|v| v.to_bits() == (-0.0f32).to_bits()));
        // Negative zeros never beat amax = 0, so the result is identical.
        assert_eq!(bytemuck::bytes_of(&q(&[-0.0; QK4_0])), bytemuck::bytes_of(&b));
    }

    #[test]
    fn all_equal() {
        // All 3.0: max = 3, d = -0.375, id = -8/3; 3 * id = -8 (rounded) -> trunc(0.5) = 0.
        let b = q(&[3.0; QK4_0]);
        assert_eq!(b.d.to_f32(), -0.375);
        assert_eq!(b.qs, [0x00; 16]);
        assert!(dq(&b).iter().all(|&v| v == 3.0));
        // All -3.0: d = +0.375, same codes.
        let b = q(&[-3.0; QK4_0]);
        assert_eq!(b.d.to_f32(), 0.375);
        assert_eq!(b.qs, [0x00; 16]);
        assert!(dq(&b).iter().all(|&v| v == -3.0));
    }

    #[test]
    fn negative_max() {
        let mut x: [f32; QK4_0] = std::array::from_fn(|i| i as f32 * 0.1);
        x[7] = -16.0;
        let b = q(&x);
        assert_eq!(b.d.to_f32(), 2.0);
        let c = codes(&b);
        assert_eq!(c[7], 0);
        // 3.1 * 0.5 + 8.5 = 10.05 -> 10
        assert_eq!(c[31], 10);
        assert_eq!(dq(&b)[31], 4.0);
    }

    #[test]
    fn huge_scale_overflows_f16() {
        // d = 1e30 / -8 is a normal f32 but -inf in f16; the codes still come from the f32 d.
        let mut x = [1e30f32; QK4_0];
        x[1] = -1e30;
        x[2] = 0.0;
        x[3] = 5e29;
        let b = q(&x);
        assert_eq!(b.d.to_bits(), f16::NEG_INFINITY.to_bits());
        let c = codes(&b);
        assert_eq!(c[0], 0); // -8 + 8.5
        assert_eq!(c[1], 15); // 16.5 clamps
        assert_eq!(c[2], 8);
        assert_eq!(c[3], 4); // -4 + 8.5
        let y = dq(&b);
        assert_eq!(y[0], f32::INFINITY); // (0 - 8) * -inf
        assert_eq!(y[1], f32::NEG_INFINITY); // 7 * -inf
        assert!(y[2].is_nan()); // 0 * -inf
        assert_eq!(y[3], f32::INFINITY);
    }

    #[test]
    fn f16_max_boundary() {
        // max = -65504 * 8: d = 65504 exactly, the largest finite f16.
        let mut x = [0f32; QK4_0];
        x[0] = -65504.0 * 8.0;
        assert_eq!(q(&x).d.to_f32(), 65504.0);
        // d = 65520 is the tie between 65504 and 65536 (inf); ties to even rounds to inf.
        x[0] = -65520.0 * 8.0;
        assert_eq!(q(&x).d.to_bits(), f16::INFINITY.to_bits());
    }

    #[test]
    fn tiny_scale_underflows_f16_but_codes_use_f32_scale() {
        // d is far below the smallest f16 subnormal, so it is stored as a signed zero, but id = 1/d is
        // computed from the f32 d and is finite, so the codes are the usual ones.
        // x[0] = -1.6e-31 has the largest magnitude: d = 2e-32 (stored as +0.0), id = 5e31.
        let x: [f32; QK4_0] = std::array::from_fn(|i| (i as f32 - 16.0) * 1e-32);
        let b = q(&x);
        assert_eq!(b.d.to_bits(), 0x0000);
        let c = codes(&b);
        assert_eq!(c[0], 0);
        assert_eq!(c[16], 8);
        assert_eq!(c[31], 15);
        assert!(dq(&b).iter().all(|&v| v == 0.0));

        // max = 1e-30: d = -1.25e-31 -> f16 -0.0, id = -8e30.
        let mut x = [0f32; QK4_0];
        x[5] = 1e-30;
        x[6] = -1e-30;
        let b = q(&x);
        assert_eq!(b.d.to_bits(), 0x8000);
        let c = codes(&b);
        assert_eq!((c[5], c[6], c[0]), (0, 15, 8));
    }

    #[test]
    fn f32_subnormal_scale() {
        // max = 1e-38: d = -1.25e-39 (f32 subnormal), 1/d overflows to -inf. x * id is then NaN (0 * inf) or
        // +-inf, which C's (int8_t) cast leaves undefined; on x86-64 it yields 0, so every code is 0.
        let mut x = [0f32; QK4_0];
        x[0] = 1e-38;
        x[1] = -3e-39;
        let b = q(&x);
        assert_eq!(b.d.to_bits(), 0x8000);
        assert_eq!(b.qs, [0u8; 16]);
        // max = 1e-45 (smallest subnormal): d = -1e-45 / 8 underflows to -0.0, so id = 0 and codes are 8.
        let mut x = [0f32; QK4_0];
        x[0] = 1e-45;
        let b = q(&x);
        assert_eq!(b.qs, [0x88u8; 16]);
    }

    #[test]
    fn row_round_trip_error_bound() {
        let x: Vec<f32> = (0..256).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 3.0).collect();
        let mut b = vec![BlockQ4_0::default(); 8];
        quantize_row_q4_0(&x, &mut b);
        let mut y = vec![0f32; 256];
        dequantize_row_q4_0(&b, &mut y);
        for (blk, (xs, ys)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
            let d = b[blk].d.to_f32().abs();
            for (a, c) in xs.iter().zip(ys) {
                // Codes are rounded (half up), so the error is at most d/2, plus the clamp at the top (one
                // step) and f16 rounding of d.
                assert!((a - c).abs() <= d * 1.01, "{a} vs {c} (d={d})");
            }
        }
    }

    #[test]
    #[should_panic(expected = "do not fill")]
    fn row_length_mismatch_panics() {
        let mut b = [BlockQ4_0::default(); 1];
        quantize_row_q4_0(&[0.0; 31], &mut b);
    }
}
