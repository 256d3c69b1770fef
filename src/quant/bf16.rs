//! BF16 rows: conversion between f32 and bfloat16 (the top 16 bits of an f32) as ggml's reference does it.
//!
//! f32 -> bf16 rounds to nearest, ties to even, by adding `0x7fff + lsb` to the bits and keeping the top half
//! (overflow rounds to infinity); a NaN keeps its top bits with the quiet bit (`0x40`) forced on
//! (ggml's `ggml_compute_fp32_to_bf16`). bf16 -> f32 is exact: the bits shifted up by 16.

/// f32 -> bf16 bits exactly like ggml's `GGML_FP32_TO_BF16`.
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let u = x.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// bf16 bits -> f32, exactly (ggml's `GGML_BF16_TO_FP32`).
pub fn bf16_bits_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// Converts f32 values to bf16 bit patterns (ggml's `ggml_fp32_to_bf16_row_ref`).
///
/// # Panics
/// If `x.len() != y.len()`.
pub fn quantize_row_bf16(x: &[f32], y: &mut [u16]) {
    assert_eq!(x.len(), y.len(), "quantize_row_bf16: {} values do not fill {} bf16s", x.len(), y.len());
    for (y, &x) in y.iter_mut().zip(x) {
        *y = f32_to_bf16_bits(x);
    }
}

/// Converts bf16 bit patterns to f32 values (ggml's `ggml_bf16_to_fp32_row`).
///
/// # Panics
/// If `x.len() != y.len()`.
pub fn dequantize_row_bf16(x: &[u16], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "dequantize_row_bf16: {} bf16s do not fill {} values", x.len(), y.len());
    for (y, &x) in y.iter_mut().zip(x) {
        *y = bf16_bits_to_f32(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_ties_and_nan() {
        assert_eq!(f32_to_bf16_bits(1.0), 0x3F80);
        assert_eq!(f32_to_bf16_bits(-2.0), 0xC000);
        // 1 + 2^-8 is the tie between 1 and 1 + 2^-7: even (1.0) wins; 1 + 3 * 2^-8 rounds up to the even 1 + 2^-6.
        assert_eq!(f32_to_bf16_bits(1.0 + 2f32.powi(-8)), 0x3F80);
        assert_eq!(f32_to_bf16_bits(1.0 + 3.0 * 2f32.powi(-8)), 0x3F82);
        assert_eq!(f32_to_bf16_bits(1.0 + 2f32.powi(-8) + 2f32.powi(-23)), 0x3F81);
        // The largest f32 rounds to infinity; infinities stay.
        assert_eq!(f32_to_bf16_bits(f32::MAX), 0x7F80);
        assert_eq!(f32_to_bf16_bits(f32::NEG_INFINITY), 0xFF80);
        // A signalling NaN gets the quiet bit; its top payload bits are kept.
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x7F81_0000)), 0x7FC1);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0xFF80_0001)), 0xFFC0);
        assert_eq!(bf16_bits_to_f32(0x3F80), 1.0);
        assert_eq!(bf16_bits_to_f32(0x8000).to_bits(), 0x8000_0000);
    }

    #[test]
    fn every_bf16_round_trips() {
        for h in 0..=u16::MAX {
            let f = bf16_bits_to_f32(h);
            let back = f32_to_bf16_bits(f);
            if f.is_nan() {
                assert_eq!(back, h | 64, "{h:#06x}");
            } else {
                assert_eq!(back, h, "{h:#06x}");
            }
        }
    }
}
