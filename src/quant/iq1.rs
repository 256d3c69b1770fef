//! IQ1_S and IQ1_M: super-blocks of 256 values, 8 at a time taken from a ternary lattice grid (entries of 8 bytes
//! from {-1, 0, 1}, [`super::iq_grids`]) shifted by ±1/8.
//!
//! IQ1_S: per 32 values a u16 with the high 3 bits of its four 11-bit grid indices, a 3-bit scale `s` (bits 12..14)
//! and the shift's sign (bit 15): values `(d * (2 s + 1)) * (grid_byte + shift)`. IQ1_M: no f16 field; the
//! super-block scale is spread over the top nibbles of the four u16 scale words; per 16 values a 3-bit scale, per 8
//! values a shift sign. ggml's `dequantize_row_iq1_s`, `dequantize_row_iq1_m`.

use half::f16;

use super::iq_grids::IQ1S_GRID;
use super::k_common::QK_K;

/// ggml's `IQ1S_DELTA` (and `IQ1M_DELTA`): the grid shift.
pub const IQ1_DELTA: f32 = 0.125;

/// Writes 8 values `dl * (grid_byte + delta)`, the grid bytes read as int8.
fn grid8_shifted(y: &mut [f32], dl: f32, grid: u64, delta: f32) {
    for (j, y) in y.iter_mut().enumerate().take(8) {
        let g = ((grid >> (8 * j)) & 0xFF) as u8 as i8;
        *y = dl * (f32::from(g) + delta);
    }
}

/// One IQ1_S block, laid out exactly like ggml's `block_iq1_s` (50 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq1S {
    /// Super-block scale.
    pub d: f16,
    /// Low 8 bits of the 32 grid indices.
    pub qs: [u8; QK_K / 8],
    /// Per 32 values: high bits of its four indices (3 each), scale (bits 12..14), shift sign (bit 15).
    pub qh: [u16; QK_K / 32],
}

const _: () = assert!(std::mem::size_of::<BlockIq1S>() == 50);

/// Dequantizes one block exactly like ggml's `dequantize_row_iq1_s`.
pub fn dequantize_block_iq1_s(b: &BlockIq1S, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    for (ib, y) in y.chunks_exact_mut(32).enumerate() {
        let qh = u32::from(b.qh[ib]);
        let dl = d * (2 * ((qh >> 12) & 7) + 1) as f32;
        let delta = if qh & 0x8000 != 0 { -IQ1_DELTA } else { IQ1_DELTA };
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let idx = u32::from(b.qs[4 * ib + l]) | (((qh >> (3 * l)) & 7) << 8);
            grid8_shifted(y, dl, IQ1S_GRID[idx as usize], delta);
        }
    }
}

/// One IQ1_M block, laid out exactly like ggml's `block_iq1_m` (56 bytes, alignment 1).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq1M {
    /// Low 8 bits of the 32 grid indices.
    pub qs: [u8; QK_K / 8],
    /// Per 8 values a nibble: high 3 bits of the index, shift sign (bit 3); two groups per byte.
    pub qh: [u8; QK_K / 16],
    /// Four little-endian u16: 3-bit scales of 16 values each (bits 0..11), and a nibble of the f16 super-block
    /// scale in bits 12..15 (word `k` holds bits `4k .. 4k + 3`).
    pub scales: [u8; QK_K / 32],
}

const _: () = assert!(std::mem::size_of::<BlockIq1M>() == 56);

/// The f16 super-block scale of an IQ1_M block, from the top nibbles of its scale words.
pub fn iq1m_scale(sc: &[u16; 4]) -> f16 {
    f16::from_bits((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000))
}

/// Dequantizes one block exactly like ggml's `dequantize_row_iq1_m`.
pub fn dequantize_block_iq1_m(b: &BlockIq1M, y: &mut [f32; QK_K]) {
    let sc: [u16; 4] = std::array::from_fn(|k| u16::from_le_bytes([b.scales[2 * k], b.scales[2 * k + 1]]));
    let d = iq1m_scale(&sc).to_f32();
    for (ib, y) in y.chunks_exact_mut(32).enumerate() {
        let s = u32::from(sc[ib / 2]) >> (6 * (ib % 2));
        let dl = [d * (2 * (s & 7) + 1) as f32, d * (2 * ((s >> 3) & 7) + 1) as f32];
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let h = u32::from(b.qh[2 * ib + l / 2]) >> (4 * (l % 2));
            let idx = u32::from(b.qs[4 * ib + l]) | ((h & 7) << 8);
            let delta = if h & 8 != 0 { -IQ1_DELTA } else { IQ1_DELTA };
            grid8_shifted(y, dl[l / 2], IQ1S_GRID[idx as usize], delta);
        }
    }
}
