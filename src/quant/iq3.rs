//! IQ3_XXS and IQ3_S: super-blocks of 256 values, 4 at a time taken from a lattice grid (entries of 4 bytes,
//! [`super::iq_grids`]) with a sign per value.
//!
//! IQ3_XXS: per 32 values one u32 holding 4 x 7 sign bits (the eighth from parity, [`super::iq2::ksigns`]) and a
//! 4-bit scale `s`: `db = (d * (0.5 + s)) * 0.5`. IQ3_S: 9-bit grid indices (high bits in `qh`), all 8 sign bits
//! stored, a 4-bit scale `s` per 32 values: `db = d * (1 + 2 s)`. A value is `db * grid_byte`, negated where its
//! sign bit is set. ggml's `dequantize_row_iq3_xxs`, `dequantize_row_iq3_s`.

use half::f16;

use super::iq2::ksigns;
use super::iq_grids::{IQ3S_GRID, IQ3XXS_GRID};
use super::k_common::QK_K;

/// Writes 4 values: byte `j` of `grid` times `db`, negated where bit `j` of `signs` is set.
fn grid4(y: &mut [f32], db: f32, grid: u32, signs: u32) {
    for (j, y) in y.iter_mut().enumerate().take(4) {
        let v = db * ((grid >> (8 * j)) & 0xFF) as f32;
        *y = if signs & (1 << j) != 0 { -v } else { v };
    }
}

/// One IQ3_XXS block, laid out exactly like ggml's `block_iq3_xxs` (98 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq3Xxs {
    /// Super-block scale.
    pub d: f16,
    /// 64 grid indices (bytes 0..64), then per 32 values a little-endian u32 of signs and scale (bytes 64..96).
    pub qs: [u8; 3 * QK_K / 8],
}

const _: () = assert!(std::mem::size_of::<BlockIq3Xxs>() == 98);

/// Dequantizes one block exactly like ggml's `dequantize_row_iq3_xxs`.
pub fn dequantize_block_iq3_xxs(b: &BlockIq3Xxs, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    for (ib, y) in y.chunks_exact_mut(32).enumerate() {
        let o = QK_K / 4 + 4 * ib;
        let aux = u32::from_le_bytes([b.qs[o], b.qs[o + 1], b.qs[o + 2], b.qs[o + 3]]);
        let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let signs = ksigns(aux >> (7 * l));
            let g1 = IQ3XXS_GRID[usize::from(b.qs[8 * ib + 2 * l])];
            let g2 = IQ3XXS_GRID[usize::from(b.qs[8 * ib + 2 * l + 1])];
            grid4(&mut y[..4], db, g1, signs);
            grid4(&mut y[4..], db, g2, signs >> 4);
        }
    }
}

/// One IQ3_S block, laid out exactly like ggml's `block_iq3_s` (110 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq3S {
    /// Super-block scale.
    pub d: f16,
    /// Low 8 bits of the 64 grid indices.
    pub qs: [u8; QK_K / 4],
    /// Per 32 values: bit 8 of its eight grid indices.
    pub qh: [u8; QK_K / 32],
    /// Sign bits, one byte per 8 values.
    pub signs: [u8; QK_K / 8],
    /// Per 64 values: 4-bit scales of its two halves of 32 (low nibble first).
    pub scales: [u8; QK_K / 64],
}

const _: () = assert!(std::mem::size_of::<BlockIq3S>() == 110);

/// Dequantizes one block exactly like ggml's `dequantize_row_iq3_s`.
pub fn dequantize_block_iq3_s(b: &BlockIq3S, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    for (ib, y) in y.chunks_exact_mut(32).enumerate() {
        let s = (b.scales[ib / 2] >> (4 * (ib % 2))) & 0x0F;
        let db = d * (1 + 2 * i32::from(s)) as f32;
        let qh = u32::from(b.qh[ib]);
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let i1 = u32::from(b.qs[8 * ib + 2 * l]) | ((qh << (8 - 2 * l)) & 256);
            let i2 = u32::from(b.qs[8 * ib + 2 * l + 1]) | ((qh << (7 - 2 * l)) & 256);
            let signs = u32::from(b.signs[4 * ib + l]);
            grid4(&mut y[..4], db, IQ3S_GRID[i1 as usize], signs);
            grid4(&mut y[4..], db, IQ3S_GRID[i2 as usize], signs >> 4);
        }
    }
}
