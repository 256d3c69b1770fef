//! IQ2_XXS, IQ2_XS, IQ2_S: super-blocks of 256 values, 8 at a time taken from a lattice grid (entries of 8 bytes
//! from {8, 25, 43}, [`super::iq_grids`]) with a sign per value, and a 4-bit scale per 32 (IQ2_XXS) or per 16
//! (IQ2_XS, IQ2_S) values.
//!
//! Signs: IQ2_XXS and IQ2_XS store 7 sign bits per 8 values; the eighth makes the number of minus signs even
//! (ggml's `ksigns_iq2xs`, see [`ksigns`]). IQ2_S stores all 8. A value is `(db * grid_byte)`, negated where its
//! sign bit is set; `db = (d * (0.5 + s)) * 0.25` for a 4-bit scale `s`. ggml's `dequantize_row_iq2_xxs`,
//! `dequantize_row_iq2_xs`, `dequantize_row_iq2_s`.

use half::f16;

use super::iq_grids::{IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID};
use super::k_common::QK_K;

/// ggml's `ksigns_iq2xs[i]`: the 7 stored sign bits `i` plus an eighth that makes the count of set bits even.
pub fn ksigns(i: u32) -> u32 {
    let i = i & 127;
    i | ((i.count_ones() & 1) << 7)
}

/// Writes 8 values: byte `j` of `grid` times `db`, negated where bit `j` of `signs` is set.
pub(crate) fn grid8(y: &mut [f32], db: f32, grid: u64, signs: u32) {
    for (j, y) in y.iter_mut().enumerate().take(8) {
        let v = db * ((grid >> (8 * j)) & 0xFF) as f32;
        *y = if signs & (1 << j) != 0 { -v } else { v };
    }
}

/// `(d * (0.5 + s)) * 0.25`, the 2-bit types' scale of a 4-bit `s`.
fn scale2(d: f32, s: u32) -> f32 {
    d * (0.5 + s as f32) * 0.25
}

/// One IQ2_XXS block, laid out exactly like ggml's `block_iq2_xxs` (66 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq2Xxs {
    /// Super-block scale.
    pub d: f16,
    /// Per 32 values, two u32 (as 4 u16): 4 grid indices (bytes of the first), then 4 x 7 sign bits and a 4-bit
    /// scale (bits 28..31) in the second.
    pub qs: [u16; QK_K / 8],
}

const _: () = assert!(std::mem::size_of::<BlockIq2Xxs>() == 66);

/// Dequantizes one block exactly like ggml's `dequantize_row_iq2_xxs`.
pub fn dequantize_block_iq2_xxs(b: &BlockIq2Xxs, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    for (y, q) in y.chunks_exact_mut(32).zip(b.qs.chunks_exact(4)) {
        let idx = u32::from(q[0]) | (u32::from(q[1]) << 16);
        let aux = u32::from(q[2]) | (u32::from(q[3]) << 16);
        let db = scale2(d, aux >> 28);
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let g = IQ2XXS_GRID[((idx >> (8 * l)) & 0xFF) as usize];
            grid8(y, db, g, ksigns(aux >> (7 * l)));
        }
    }
}

/// One IQ2_XS block, laid out exactly like ggml's `block_iq2_xs` (74 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq2Xs {
    /// Super-block scale.
    pub d: f16,
    /// Per 8 values: a 9-bit grid index and 7 sign bits (bits 9..15).
    pub qs: [u16; QK_K / 8],
    /// Per 32 values: 4-bit scales of its two halves (low nibble first).
    pub scales: [u8; QK_K / 32],
}

const _: () = assert!(std::mem::size_of::<BlockIq2Xs>() == 74);

/// Dequantizes one block exactly like ggml's `dequantize_row_iq2_xs`.
pub fn dequantize_block_iq2_xs(b: &BlockIq2Xs, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    for (ib, y) in y.chunks_exact_mut(32).enumerate() {
        let sc = u32::from(b.scales[ib]);
        let db = [scale2(d, sc & 0x0F), scale2(d, sc >> 4)];
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let q = u32::from(b.qs[4 * ib + l]);
            grid8(y, db[l / 2], IQ2XS_GRID[(q & 511) as usize], ksigns(q >> 9));
        }
    }
}

/// One IQ2_S block, laid out exactly like ggml's `block_iq2_s` (82 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq2S {
    /// Super-block scale.
    pub d: f16,
    /// Low 8 bits of the 32 grid indices (bytes 0..32), then the 8 sign bits of each group of 8 (bytes 32..64).
    pub qs: [u8; QK_K / 4],
    /// Per 32 values: bits 8..9 of its four grid indices, two bits each.
    pub qh: [u8; QK_K / 32],
    /// Per 32 values: 4-bit scales of its two halves (low nibble first).
    pub scales: [u8; QK_K / 32],
}

const _: () = assert!(std::mem::size_of::<BlockIq2S>() == 82);

/// Dequantizes one block exactly like ggml's `dequantize_row_iq2_s`.
pub fn dequantize_block_iq2_s(b: &BlockIq2S, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    for (ib, y) in y.chunks_exact_mut(32).enumerate() {
        let sc = u32::from(b.scales[ib]);
        let db = [scale2(d, sc & 0x0F), scale2(d, sc >> 4)];
        let qh = u32::from(b.qh[ib]);
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let idx = u32::from(b.qs[4 * ib + l]) | ((qh << (8 - 2 * l)) & 0x300);
            grid8(y, db[l / 2], IQ2S_GRID[idx as usize], u32::from(b.qs[QK_K / 8 + 4 * ib + l]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksigns_matches_ggml_table_start() {
        // ggml's ksigns_iq2xs begins 0, 129, 130, 3, 132, 5, 6, 135 and ends 255.
        let want = [0, 129, 130, 3, 132, 5, 6, 135];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(ksigns(i as u32), *w);
        }
        assert_eq!(ksigns(127), 255);
        assert_eq!(ksigns(126), 126);
    }
}
