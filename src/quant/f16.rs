//! F16 rows: conversion between f32 and IEEE half floats as ggml's reference does it.
//!
//! f32 -> f16 rounds to nearest, ties to even, overflowing to infinity and flushing nothing (f16 subnormals
//! are produced); this is what ggml's `GGML_FP32_TO_FP16` computes for every non-NaN input. f16 -> f32 is
//! exact. NaN payloads are not guaranteed to match ggml's (ggml's portable path returns one canonical NaN).

use half::f16;

/// Converts f32 values to f16, rounding to nearest-even (ggml's `ggml_fp32_to_fp16_row`).
///
/// # Panics
/// If `x.len() != y.len()`.
pub fn quantize_row_f16(x: &[f32], y: &mut [f16]) {
    assert_eq!(x.len(), y.len(), "quantize_row_f16: {} values do not fill {} halves", x.len(), y.len());
    for (y, &x) in y.iter_mut().zip(x) {
        *y = f16::from_f32(x);
    }
}

/// Converts f16 values to f32, exactly (ggml's `ggml_fp16_to_fp32_row`).
///
/// # Panics
/// If `x.len() != y.len()`.
pub fn dequantize_row_f16(x: &[f16], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "dequantize_row_f16: {} halves do not fill {} values", x.len(), y.len());
    for (y, &x) in y.iter_mut().zip(x) {
        *y = x.to_f32();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: f32) -> u16 {
        let mut y = [f16::ZERO];
        quantize_row_f16(&[v], &mut y);
        y[0].to_bits()
    }

    #[test]
    fn rounding_and_ranges() {
        assert_eq!(h(1.0), 0x3C00);
        assert_eq!(h(-2.0), 0xC000);
        assert_eq!(h(-0.0), 0x8000);
        assert_eq!(h(65504.0), 0x7BFF);
        assert_eq!(h(65519.99), 0x7BFF);
        assert_eq!(h(65520.0), 0x7C00); // tie between 65504 and 65536 -> even -> inf
        assert_eq!(h(1e30), 0x7C00);
        assert_eq!(h(-1e30), 0xFC00);
        // 1 + 2^-11 is the tie between 1 and 1 + 2^-10: even mantissa (1.0) wins.
        assert_eq!(h(1.0 + 2f32.powi(-11)), 0x3C00);
        // 1 + 3 * 2^-11 ties between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
        assert_eq!(h(1.0 + 3.0 * 2f32.powi(-11)), 0x3C02);
        // Just above a tie rounds up.
        assert_eq!(h(1.0 + 2f32.powi(-11) + 2f32.powi(-23)), 0x3C01);
        // Smallest f16 subnormal 2^-24, half of it ties to 0, a bit more rounds up.
        assert_eq!(h(2f32.powi(-24)), 0x0001);
        assert_eq!(h(2f32.powi(-25)), 0x0000);
        assert_eq!(h(2f32.powi(-25) * 1.0001), 0x0001);
        assert_eq!(h(1e-30), 0x0000);
        assert_eq!(h(-1e-30), 0x8000);
    }

    #[test]
    fn every_half_round_trips() {
        let halves: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
        let mut f = vec![0f32; halves.len()];
        dequantize_row_f16(&halves, &mut f);
        let mut back = vec![f16::ZERO; halves.len()];
        quantize_row_f16(&f, &mut back);
        for (a, b) in halves.iter().zip(&back) {
            if a.is_nan() {
                assert!(b.is_nan());
            } else {
                assert_eq!(a.to_bits(), b.to_bits());
            }
        }
    }
}
