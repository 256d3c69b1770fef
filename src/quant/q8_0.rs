//! Q8_0: blocks of 32 values stored as signed 8-bit codes with one f16 scale.
//!
//! Value `i` of a block is `qs[i] * d`.

use half::f16;

use super::c_cast_f32_to_i8;

/// Elements per Q8_0 block (ggml's `QK8_0`).
pub const QK8_0: usize = 32;

/// One Q8_0 block, laid out exactly like ggml's `block_q8_0` (34 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_0 {
    /// Scale (delta).
    pub d: f16,
    /// 32 signed codes, one per element.
    pub qs: [i8; QK8_0],
}

const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);
const _: () = assert!(std::mem::align_of::<BlockQ8_0>() == 2);

/// Quantizes one block of 32 values exactly like ggml's `quantize_row_q8_0_ref`.
///
/// `d = amax / 127` with `amax` the largest magnitude; codes are `roundf(x * (1/d))` (halves away from
/// zero), all in f32; `1/d` uses the f32 `d`, and `d` is then stored rounded to f16 (nearest, ties to even).
pub fn quantize_block_q8_0(x: &[f32; QK8_0]) -> BlockQ8_0 {
    let mut amax = 0.0f32;
    for &v in x {
        // C: amax = MAX(amax, fabsf(v)), with MAX(a, b) = a > b ? a : b.
        let a = v.abs();
        amax = if amax > a { amax } else { a };
    }

    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };

    let mut qs = [0i8; QK8_0];
    for (q, &v) in qs.iter_mut().zip(x) {
        // f32::round rounds halves away from zero, like C's roundf.
        *q = c_cast_f32_to_i8((v * id).round());
    }
    BlockQ8_0 { d: f16::from_f32(d), qs }
}

/// Dequantizes one block exactly like ggml's `dequantize_row_q8_0`: `y = code * d` in f32.
pub fn dequantize_block_q8_0(b: &BlockQ8_0, y: &mut [f32; QK8_0]) {
    let d = b.d.to_f32();
    for (y, &q) in y.iter_mut().zip(&b.qs) {
        *y = f32::from(q) * d;
    }
}

/// Quantizes a row of `x.len()` values into `y` (ggml's `quantize_row_q8_0_ref`).
///
/// # Panics
/// If `x.len() != y.len() * QK8_0`.
pub fn quantize_row_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
    assert_eq!(
        x.len(),
        y.len() * QK8_0,
        "quantize_row_q8_0: {} values do not fill {} blocks of {QK8_0}",
        x.len(),
        y.len()
    );
    for (xb, yb) in x.chunks_exact(QK8_0).zip(y) {
        *yb = quantize_block_q8_0(xb.try_into().expect("chunks_exact yields whole blocks"));
    }
}

/// Dequantizes the blocks `x` into `y` (ggml's `dequantize_row_q8_0`).
///
/// # Panics
/// If `y.len() != x.len() * QK8_0`.
pub fn dequantize_row_q8_0(x: &[BlockQ8_0], y: &mut [f32]) {
    assert_eq!(
        y.len(),
        x.len() * QK8_0,
        "dequantize_row_q8_0: {} blocks of {QK8_0} do not fill {} values",
        x.len(),
        y.len()
    );
    for (xb, yb) in x.iter().zip(y.chunks_exact_mut(QK8_0)) {
        dequantize_block_q8_0(xb, yb.try_into().expect("chunks_exact yields whole blocks"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(x: &[f32; QK8_0]) -> BlockQ8_0 {
        quantize_block_q8_0(x)
    }

    fn dq(b: &BlockQ8_0) -> [f32; QK8_0] {
        let mut y = [0f32; QK8_0];
        dequantize_block_q8_0(b, &mut y);
        y
    }

    #[test]
    fn layout() {
        let b = BlockQ8_0 { d: f16::from_bits(0xABCD), qs: std::array::from_fn(|i| i as i8 - 16) };
        let bytes = bytemuck::bytes_of(&b);
        assert_eq!(bytes.len(), 34);
        assert_eq!(&bytes[..2], &0xABCDu16.to_ne_bytes());
        assert_eq!(bytes[2], (-16i8) as u8);
        assert_eq!(bytes[33], 15);
    }

    #[test]
    fn amax_127_gives_unit_scale_and_exact_round_trip() {
        let mut x: [f32; QK8_0] = std::array::from_fn(|i| (i as f32 - 16.0) * 7.0);
        x[0] = -127.0;
        let b = q(&x);
        assert_eq!(b.d.to_f32(), 1.0);
        for (c, v) in b.qs.iter().zip(&x) {
            assert_eq!(f32::from(*c), *v);
        }
        assert_eq!(dq(&b), x);
    }

    #[test]
    fn halves_round_away_from_zero() {
        // amax = 127 -> d = 1, id = 1, so codes are roundf(x) directly.
        let mut x = [0f32; QK8_0];
        x[0] = 127.0;
        x[1] = 0.5;
        x[2] = -0.5;
        x[3] = 1.5;
        x[4] = 2.5; // ties-to-even would give 2
        x[5] = -2.5;
        x[6] = 2.4999998;
        x[7] = -126.5;
        let b = q(&x);
        assert_eq!(&b.qs[..8], &[127, 1, -1, 2, 3, -3, 2, -127]);
    }

    #[test]
    fn all_zeros() {
        for z in [0.0f32, -0.0] {
            let b = q(&[z; QK8_0]);
            // amax = fabsf(z) = +0.0 -> d = +0.0, id = 0, codes roundf(+-0) = 0.
            assert_eq!(b.d.to_bits(), 0x0000);
            assert_eq!(b.qs, [0i8; QK8_0]);
            assert!(dq(&b).iter().all(|v| v.to_bits() == 0));
        }
    }

    #[test]
    fn all_equal_and_sign() {
        let b = q(&[-2.0; QK8_0]);
        assert_eq!(b.d.to_f32(), f16::from_f32(2.0 / 127.0).to_f32());
        assert_eq!(b.qs, [-127i8; QK8_0]);
        let b = q(&[0.75; QK8_0]);
        assert_eq!(b.qs, [127i8; QK8_0]);
        // The scale is always non-negative for Q8_0.
        assert!(b.d.to_f32() > 0.0);
    }

    #[test]
    fn huge_scale_overflows_f16() {
        let mut x = [0f32; QK8_0];
        x[0] = 1e30;
        x[1] = -5e29;
        let b = q(&x);
        assert_eq!(b.d.to_bits(), f16::INFINITY.to_bits());
        assert_eq!(&b.qs[..3], &[127, -64, 0]); // -5e29 * (127 / 1e30) is about -63.5: rounds to -64
        let y = dq(&b);
        assert_eq!(y[0], f32::INFINITY);
        assert_eq!(y[1], f32::NEG_INFINITY);
        assert!(y[2].is_nan()); // 0 * inf
    }

    #[test]
    fn tiny_scale_underflows_f16_but_codes_use_f32_scale() {
        let mut x = [0f32; QK8_0];
        x[0] = -1e-30;
        x[1] = 0.5e-30;
        let b = q(&x);
        assert_eq!(b.d.to_bits(), 0x0000);
        // 0.5e-30 * (1 / (1e-30 / 127)) lands on (or just above) 63.5 in f32 and rounds to 64.
        assert_eq!(b.qs[0], -127);
        assert_eq!(b.qs[1], 64);
        assert!(dq(&b).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn f32_subnormal_scale() {
        // amax = 1e-37: d = 7.9e-40 (f32 subnormal), 1/d overflows to +inf; the products are NaN or +-inf and
        // C's conversion to int8 is undefined; x86-64 yields 0.
        let mut x = [0f32; QK8_0];
        x[0] = 1e-37;
        x[1] = -1e-38;
        let b = q(&x);
        assert_eq!(b.d.to_bits(), 0x0000);
        assert_eq!(b.qs, [0i8; QK8_0]);
    }

    #[test]
    fn row_round_trip_error_bound() {
        let x: Vec<f32> = (0..256).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 3.0).collect();
        let mut b = vec![BlockQ8_0::default(); 8];
        quantize_row_q8_0(&x, &mut b);
        let mut y = vec![0f32; 256];
        dequantize_row_q8_0(&b, &mut y);
        for (blk, (xs, ys)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
            let d = b[blk].d.to_f32();
            for (a, c) in xs.iter().zip(ys) {
                // Half a step from rounding the code, plus up to 127 * d * 2^-11 from the f16 scale.
                assert!((a - c).abs() <= d * 0.57, "{a} vs {c} (d={d})");
            }
        }
    }

    #[test]
    #[should_panic(expected = "do not fill")]
    fn row_length_mismatch_panics() {
        let mut y = [0f32; 31];
        dequantize_row_q8_0(&[BlockQ8_0::default()], &mut y);
    }
}
