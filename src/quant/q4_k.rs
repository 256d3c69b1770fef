//! Q4_K: super-blocks of 256 values in 8 sub-blocks of 32, 4-bit codes, 6-bit sub-block scales and mins.
//!
//! Value `= d * sc_s * code - dmin * m_s` for sub-block `s` ([`get_scale_min_k4`]). Codes come in four
//! chunks of 64: in chunk `c`, byte `qs[32c + l]` holds element `64c + l` in its low nibble and element
//! `64c + 32 + l` in its high nibble.

use half::f16;

use super::k_common::{check_row, get_scale_min_k4, K_SCALE_SIZE, QK_K};

/// One Q4_K block, laid out exactly like ggml's `block_q4_K` (144 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the mins.
    pub dmin: f16,
    /// 8 packed 6-bit scales and 8 packed 6-bit mins.
    pub scales: [u8; K_SCALE_SIZE],
    /// 4-bit codes, two per byte.
    pub qs: [u8; QK_K / 2],
}

const _: () = assert!(std::mem::size_of::<BlockQ4K>() == 144);
const _: () = assert!(std::mem::align_of::<BlockQ4K>() == 2);

/// Dequantizes one block exactly like ggml's `dequantize_row_q4_K`: `y = d1 * code - m1` in f32 with
/// `d1 = d * sc` and `m1 = dmin * m`.
pub fn dequantize_block_q4_k(b: &BlockQ4K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let min = b.dmin.to_f32();
    for c in 0..4 {
        let (sc1, m1) = get_scale_min_k4(2 * c, &b.scales);
        let (sc2, m2) = get_scale_min_k4(2 * c + 1, &b.scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        for l in 0..32 {
            let q = b.qs[32 * c + l];
            y[64 * c + l] = d1 * f32::from(q & 0x0F) - m1;
            y[64 * c + 32 + l] = d2 * f32::from(q >> 4) - m2;
        }
    }
}

/// Dequantizes the blocks `x` into `y` (ggml's `dequantize_row_q4_K`).
///
/// # Panics
/// If `y.len() != x.len() * 256`.
pub fn dequantize_row_q4_k(x: &[BlockQ4K], y: &mut [f32]) {
    check_row("dequantize_row_q4_k", x.len(), y.len());
    for (xb, yb) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block_q4_k(xb, yb.try_into().expect("chunks_exact yields whole blocks"));
    }
}
