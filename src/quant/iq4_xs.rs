//! IQ4_XS: super-blocks of 256 values as 4-bit indices into IQ4_NL's non-linear table, with an f16 scale and a
//! 6-bit scale per 32 values.
//!
//! Sub-block `ib` (0..8) of 32 values has scale `ls = low nibble (ib even) or high nibble (ib odd) of
//! scales_l[ib / 2]`, plus bits `2 ib, 2 ib + 1` of `scales_h` as bits 4 and 5; its values are
//! `(d * (ls - 32)) * KVALUES_IQ4NL[code]`, codes packed as in IQ4_NL (byte `j` of the sub-block's 16 holds value `j`
//! in its low nibble and value `j + 16` in its high nibble). ggml's `dequantize_row_iq4_xs`.

use half::f16;

use super::iq4_nl::KVALUES_IQ4NL;
use super::k_common::QK_K;

/// One IQ4_XS block, laid out exactly like ggml's `block_iq4_xs` (136 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq4Xs {
    /// Super-block scale.
    pub d: f16,
    /// Bits 4..5 of the eight sub-block scales, two bits each.
    pub scales_h: u16,
    /// Bits 0..3 of the sub-block scales, two per byte (low nibble first).
    pub scales_l: [u8; QK_K / 64],
    /// Codes, 16 bytes per sub-block of 32.
    pub qs: [u8; QK_K / 2],
}

const _: () = assert!(std::mem::size_of::<BlockIq4Xs>() == 136);

/// Dequantizes one block exactly like ggml's `dequantize_row_iq4_xs`.
pub fn dequantize_block_iq4_xs(b: &BlockIq4Xs, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    for (ib, (y, qs)) in y.chunks_exact_mut(32).zip(b.qs.chunks_exact(16)).enumerate() {
        let lo = (b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F;
        let hi = ((b.scales_h >> (2 * ib)) & 3) as u8;
        let ls = i32::from(lo | (hi << 4));
        let dl = d * (ls - 32) as f32;
        for (j, &q) in qs.iter().enumerate() {
            y[j] = dl * f32::from(KVALUES_IQ4NL[usize::from(q & 0x0F)]);
            y[j + 16] = dl * f32::from(KVALUES_IQ4NL[usize::from(q >> 4)]);
        }
    }
}
