//! NVFP4: blocks of 64 E2M1 values in four sub-blocks of 16, each with an unsigned E4M3 scale (4.5 bits per value).
//!
//! Layout (36 bytes): `d[4]`, the sub-block scales as UE4M3 bytes, then `qs[32]`: byte `8 s + j` holds value
//! `16 s + j` of sub-block `s` in its low nibble and value `16 s + j + 8` in its high nibble. Value =
//! `KVALUES_MXFP4[code] * ue4m3(d[s])`, where the table holds the E2M1 values doubled and [`ue4m3_to_f32`] returns
//! half the scale, as ggml's `ggml_ue4m3_to_fp32` (bytes 0 and 0x7F give 0; bit 7 is not read otherwise). ggml's
//! `dequantize_row_nvfp4`.
//!
//! The reference quantizer (`quantize_row_nvfp4_ref`): per sub-block `amax = max |x|`, scale byte
//! `ggml_fp32_to_ue4m3(amax / 6)` ([`f32_to_ue4m3`]), then per value the code whose level `KVALUES_MXFP4[i] * d`
//! (with `d` the decoded byte) is nearest, the first one on a tie (`best_index_mxfp4`).

use super::mxfp4::KVALUES_MXFP4;

/// Values per NVFP4 block (ggml's `QK_NVFP4`).
pub const QK_NVFP4: usize = 64;
/// Values per NVFP4 sub-block, each with its own scale (ggml's `QK_NVFP4_SUB`).
pub const QK_NVFP4_SUB: usize = 16;

/// One NVFP4 block, laid out exactly like ggml's `block_nvfp4` (36 bytes, alignment 1).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockNvfp4 {
    /// UE4M3 scale of each sub-block of 16 values.
    pub d: [u8; QK_NVFP4 / QK_NVFP4_SUB],
    /// Codes: low nibble of `qs[8 s + j]` is value `16 s + j`, high nibble value `16 s + j + 8`.
    pub qs: [u8; QK_NVFP4 / 2],
}

const _: () = assert!(std::mem::size_of::<BlockNvfp4>() == 36);

/// ggml's `ggml_ue4m3_to_fp32`: an unsigned E4M3 byte (exponent bias 7, 3 mantissa bits, subnormals at exponent
/// field 0) times 0.5, to go with the doubled E2M1 table. Bytes 0 and 0x7F give 0; bit 7 only matters for 0xFF (read
/// as 0x7F's pattern without the zero rule: 240).
pub fn ue4m3_to_f32(x: u8) -> f32 {
    if x == 0 || x == 0x7F {
        return 0.0;
    }
    let exp = i32::from((x >> 3) & 0xF);
    let man = f32::from(x & 7);
    // Both branches are exact: a 4-bit significand scaled by a power of two.
    let raw = if exp == 0 { man * 2f32.powi(-9) } else { (1.0 + man / 8.0) * 2f32.powi(exp - 7) };
    raw * 0.5
}

/// ggml's `ggml_fp32_to_ue4m3`: the scale byte for a positive f32 (0 for zero, negatives and NaN). Values above 448
/// clamp to 448; normal results round on the first dropped mantissa bit (half up, a carry may bump the exponent),
/// exponents past 14 give 0x7E (448); below 2^-6 the byte is the subnormal `(int)(x * 512 + 0.5)` clamped to 1..7
/// (0 below 1).
pub fn f32_to_ue4m3(x: f32) -> u8 {
    // `!(x > 0)` also catches NaN.
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    let x = if x > 448.0 { 448.0 } else { x };
    let bits = x.to_bits();
    let fp32_exp = ((bits >> 23) & 0xFF) as i32 - 127;
    let fp32_man = ((bits >> 20) & 7) as i32;
    let mut exp = fp32_exp + 7;
    if exp <= 0 {
        // x * 512 is exact; the sum rounds once, then C's (int) truncates.
        let man = (x * 512.0 + 0.5) as i32;
        return if man < 1 { 0 } else { man.min(7) as u8 };
    }
    if exp >= 15 {
        return 0x7E;
    }
    let mut man = fp32_man + ((bits >> 19) & 1) as i32;
    if man > 7 {
        man = 0;
        exp += 1;
        if exp >= 15 {
            return 0x7E;
        }
    }
    ((exp << 3) | man) as u8
}

/// ggml's `best_index_mxfp4`: the code whose level `KVALUES_MXFP4[i] * e` is nearest `x` (strictly nearer than
/// every earlier code wins, so ties keep the first; NaN keeps code 0).
pub fn best_index_fp4(x: f32, e: f32) -> u8 {
    let mut best = 0u8;
    let mut best_err = (f32::from(KVALUES_MXFP4[0]) * e - x).abs();
    for (i, &k) in KVALUES_MXFP4.iter().enumerate().skip(1) {
        let err = (f32::from(k) * e - x).abs();
        if err < best_err {
            best = i as u8;
            best_err = err;
        }
    }
    best
}

/// Quantizes one block exactly like ggml's `quantize_row_nvfp4_ref`.
pub fn quantize_block_nvfp4(x: &[f32; QK_NVFP4]) -> BlockNvfp4 {
    let mut b = BlockNvfp4::default();
    for (s, xb) in x.chunks_exact(QK_NVFP4_SUB).enumerate() {
        let mut amax = 0.0f32;
        for &v in xb {
            if amax < v.abs() {
                amax = v.abs();
            }
        }
        let ue = f32_to_ue4m3(amax / 6.0);
        b.d[s] = ue;
        let d = ue4m3_to_f32(ue);
        for j in 0..QK_NVFP4_SUB / 2 {
            let lo = best_index_fp4(xb[j], d);
            let hi = best_index_fp4(xb[j + QK_NVFP4_SUB / 2], d);
            b.qs[s * QK_NVFP4_SUB / 2 + j] = lo | (hi << 4);
        }
    }
    b
}

/// Dequantizes one block exactly like ggml's `dequantize_row_nvfp4`: `y = kvalue * d` in f32.
pub fn dequantize_block_nvfp4(b: &BlockNvfp4, y: &mut [f32; QK_NVFP4]) {
    for (s, yb) in y.chunks_exact_mut(QK_NVFP4_SUB).enumerate() {
        let d = ue4m3_to_f32(b.d[s]);
        for j in 0..QK_NVFP4_SUB / 2 {
            let q = b.qs[s * QK_NVFP4_SUB / 2 + j];
            yb[j] = f32::from(KVALUES_MXFP4[usize::from(q & 0x0F)]) * d;
            yb[j + QK_NVFP4_SUB / 2] = f32::from(KVALUES_MXFP4[usize::from(q >> 4)]) * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ue4m3_decoding() {
        // Normal: (1 + m / 8) * 2^(e - 7), halved.
        assert_eq!(ue4m3_to_f32(0x38), 0.5); // e = 7, m = 0: 1.0 / 2
        assert_eq!(ue4m3_to_f32(0x3C), 0.75); // 1.5 / 2
        assert_eq!(ue4m3_to_f32(0x7E), 224.0); // e = 15, m = 6: 448 / 2
        assert_eq!(ue4m3_to_f32(0x08), 2f32.powi(-7)); // e = 1: 2^-6 / 2
                                                       // Subnormal: m * 2^-9, halved.
        assert_eq!(ue4m3_to_f32(0x01), 2f32.powi(-10));
        assert_eq!(ue4m3_to_f32(0x07), 7.0 * 2f32.powi(-10));
        // Zero rules: 0 and 0x7F only; 0x80 decodes to 0 through its fields, 0xFF is 480 / 2.
        assert_eq!(ue4m3_to_f32(0x00), 0.0);
        assert_eq!(ue4m3_to_f32(0x7F), 0.0);
        assert_eq!(ue4m3_to_f32(0x80), 0.0);
        assert_eq!(ue4m3_to_f32(0xFF), 240.0);
        assert_eq!(ue4m3_to_f32(0xB8), 0.5);
    }

    #[test]
    fn ue4m3_encoding() {
        assert_eq!(f32_to_ue4m3(0.0), 0);
        assert_eq!(f32_to_ue4m3(-1.0), 0);
        assert_eq!(f32_to_ue4m3(f32::NAN), 0);
        assert_eq!(f32_to_ue4m3(1.0), 0x38);
        assert_eq!(f32_to_ue4m3(448.0), 0x7E);
        assert_eq!(f32_to_ue4m3(1e9), 0x7E);
        assert_eq!(f32_to_ue4m3(f32::INFINITY), 0x7E);
        // 1.0625 = 1 + 1/16: the first dropped bit rounds up to 1.125 (m = 1).
        assert_eq!(f32_to_ue4m3(1.0625), 0x39);
        // 1.9375 rounds up past m = 7: the next exponent, 2.0.
        assert_eq!(f32_to_ue4m3(1.9375), 0x40);
        // 2^8 * 1.9375 = 496 > 448 clamps first: 448 = 0x7E.
        assert_eq!(f32_to_ue4m3(496.0), 0x7E);
        // 2^7 * 1.9375 = 248 carries into exponent 15: 0x7E (448), like every value from 256 up.
        assert_eq!(f32_to_ue4m3(248.0), 0x7E);
        assert_eq!(f32_to_ue4m3(256.0), 0x7E);
        // Subnormal range (below 2^-6): round(x * 512) clamped to 1..7.
        assert_eq!(f32_to_ue4m3(3.0 / 512.0), 3);
        assert_eq!(f32_to_ue4m3(2.5 / 512.0), 3); // half rounds up
        assert_eq!(f32_to_ue4m3(0.4 / 512.0), 0);
        assert_eq!(f32_to_ue4m3(7.9 / 512.0), 7);
        // Bytes below exponent 15 come back from their own value: encode(2 * decode(b)) == b.
        for b in 1u8..0x78 {
            assert_eq!(f32_to_ue4m3(2.0 * ue4m3_to_f32(b)), b, "byte {b:#x}");
        }
    }

    #[test]
    fn best_index_takes_the_first_of_ties() {
        // Levels with e = 0.5: 0, 0.5, 1, 1.5, 2, 3, 4, 6, then the negatives (code 8 is -0 = 0).
        assert_eq!(best_index_fp4(0.0, 0.5), 0);
        assert_eq!(best_index_fp4(0.25, 0.5), 0); // between 0 and 0.5: tie, the first
        assert_eq!(best_index_fp4(0.26, 0.5), 1);
        assert_eq!(best_index_fp4(2.5, 0.5), 4); // 2 and 3 tie
        assert_eq!(best_index_fp4(100.0, 0.5), 7);
        assert_eq!(best_index_fp4(-0.75, 0.5), 9); // -0.5 and -1 tie: code 9 (-0.5) comes first
        assert_eq!(best_index_fp4(-5.5, 0.5), 15);
        assert_eq!(best_index_fp4(f32::NAN, 0.5), 0);
        assert_eq!(best_index_fp4(1.0, 0.0), 0);
    }

    #[test]
    fn round_trip_of_levels() {
        // Sub-block s holds the levels of scale 2^s (amax 6 * 2^s / 6 = 2^s: an exact UE4M3 scale).
        let x: [f32; QK_NVFP4] = std::array::from_fn(|i| {
            let s = (i / 16) as i32;
            f32::from(KVALUES_MXFP4[i % 16]) * 0.5 * 2f32.powi(s)
        });
        let b = quantize_block_nvfp4(&x);
        assert_eq!(b.d, [0x38, 0x40, 0x48, 0x50]);
        let mut y = [0f32; QK_NVFP4];
        dequantize_block_nvfp4(&b, &mut y);
        assert_eq!(x, y);
        // Nibble order: qs[8 s + j] holds values 16 s + j (low) and 16 s + j + 8 (high).
        // Values 0 and 8 are +0 (code 0; code 8, also 0, never wins a tie), values 1 and 9 codes 1 and 9.
        assert_eq!(b.qs[0], 0x00);
        assert_eq!(b.qs[1], 0x91);
    }

    #[test]
    fn layout_from_bytes() {
        let mut bytes = [0u8; 36];
        bytes[0] = 0x38; // sub-block 0: d = 0.5
        bytes[1] = 0x40; // sub-block 1: d = 1
        bytes[4] = 0x7F; // value 0: code 15 (-12), value 8: code 7 (12)
        bytes[12] = 0x01; // value 16: code 1 (1), value 24: code 0
        let b: BlockNvfp4 = bytemuck::pod_read_unaligned(&bytes);
        let mut y = [0f32; QK_NVFP4];
        dequantize_block_nvfp4(&b, &mut y);
        assert_eq!(y[0], -6.0);
        assert_eq!(y[8], 6.0);
        assert_eq!(y[16], 1.0);
        assert_eq!(y[24], 0.0);
        assert!(y[32..].iter().all(|&v| v == 0.0));
    }
}
