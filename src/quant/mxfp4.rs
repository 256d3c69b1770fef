//! MXFP4 (OCP microscaling FP4, gpt-oss): blocks of 32 E2M1 values with a shared power-of-two scale (E8M0).
//!
//! Value `j` of a block is `KVALUES_MXFP4[code_j] * s`, where the table holds the E2M1 values doubled
//! (0, ±0.5, ±1, ±1.5, ±2, ±3, ±4, ±6 times 2) and `s = 2^(e - 128)` is half the block's scale `2^(e - 127)`
//! (ggml's `GGML_E8M0_TO_FP32_HALF`; `e` = 0 and 1 give the f32 subnormals 2^-128 and 2^-127). Codes are packed as
//! in Q4_0: byte `qs[j]` holds value `j` (low nibble) and value `j + 16` (high nibble). ggml's
//! `dequantize_row_mxfp4`. Blocks are 17 bytes, so only an even number of blocks starts on a 16-bit word: ggvk's
//! GPU kernels take MXFP4 rows of a multiple of 64 values.

/// Values per MXFP4 block (ggml's `QK_MXFP4`).
pub const QK_MXFP4: usize = 32;

/// ggml's `kvalues_mxfp4`: E2M1 values, doubled.
pub const KVALUES_MXFP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// One MXFP4 block, laid out exactly like ggml's `block_mxfp4` (17 bytes, alignment 1).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockMxfp4 {
    /// Shared exponent (E8M0).
    pub e: u8,
    /// Codes: low nibble of `qs[j]` is value `j`, high nibble value `j + 16`.
    pub qs: [u8; QK_MXFP4 / 2],
}

const _: () = assert!(std::mem::size_of::<BlockMxfp4>() == 17);

/// `2^(e - 128)` as ggml's `ggml_e8m0_to_fp32_half` builds it from bits.
pub fn e8m0_to_f32_half(e: u8) -> f32 {
    let bits = if e < 2 { 0x0020_0000u32 << e } else { u32::from(e - 1) << 23 };
    f32::from_bits(bits)
}

/// Dequantizes one block exactly like ggml's `dequantize_row_mxfp4`: `y = kvalue * s` in f32.
pub fn dequantize_block_mxfp4(b: &BlockMxfp4, y: &mut [f32; QK_MXFP4]) {
    let d = e8m0_to_f32_half(b.e);
    for (j, &q) in b.qs.iter().enumerate() {
        y[j] = f32::from(KVALUES_MXFP4[usize::from(q & 0x0F)]) * d;
        y[j + QK_MXFP4 / 2] = f32::from(KVALUES_MXFP4[usize::from(q >> 4)]) * d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e8m0_half_is_two_to_the_e_minus_128() {
        assert_eq!(e8m0_to_f32_half(0), 2f32.powi(-128));
        assert_eq!(e8m0_to_f32_half(1), 2f32.powi(-127));
        assert_eq!(e8m0_to_f32_half(2), 2f32.powi(-126));
        assert_eq!(e8m0_to_f32_half(128), 1.0);
        assert_eq!(e8m0_to_f32_half(127), 0.5);
        assert_eq!(e8m0_to_f32_half(254), 2f32.powi(126));
    }
}
