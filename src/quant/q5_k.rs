//! Q5_K: super-blocks of 256 values in 8 sub-blocks of 32, 5-bit codes, 6-bit sub-block scales and mins.
//!
//! Like Q4_K (low 4 bits in `qs`, same nibble layout, same scales) plus a fifth bit: element `64c + l` takes
//! bit `2c` of `qh[l]`, element `64c + 32 + l` bit `2c + 1`.

use half::f16;

use super::k_common::{check_row, get_scale_min_k4, K_SCALE_SIZE, QK_K};

/// One Q5_K block, laid out exactly like ggml's `block_q5_K` (176 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the mins.
    pub dmin: f16,
    /// 8 packed 6-bit scales and 8 packed 6-bit mins.
    pub scales: [u8; K_SCALE_SIZE],
    /// Fifth (high) bit of each code.
    pub qh: [u8; QK_K / 8],
    /// Low 4 bits of each code, two per byte.
    pub qs: [u8; QK_K / 2],
}

const _: () = assert!(std::mem::size_of::<BlockQ5K>() == 176);
const _: () = assert!(std::mem::align_of::<BlockQ5K>() == 2);

/// Dequantizes one block exactly like ggml's `dequantize_row_q5_K`: `y = d1 * (low4 + (high ? 16 : 0)) - m1`
/// in f32 with `d1 = d * sc` and `m1 = dmin * m`.
pub fn dequantize_block_q5_k(b: &BlockQ5K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let min = b.dmin.to_f32();
    for c in 0..4 {
        let (sc1, m1) = get_scale_min_k4(2 * c, &b.scales);
        let (sc2, m2) = get_scale_min_k4(2 * c + 1, &b.scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        let (u1, u2) = (1u8 << (2 * c), 2u8 << (2 * c));
        for l in 0..32 {
            let q = b.qs[32 * c + l];
            let h = b.qh[l];
            let lo = (q & 0x0F) + if h & u1 != 0 { 16 } else { 0 };
            let hi = (q >> 4) + if h & u2 != 0 { 16 } else { 0 };
            y[64 * c + l] = d1 * f32::from(lo) - m1;
            y[64 * c + 32 + l] = d2 * f32::from(hi) - m2;
        }
    }
}

/// Dequantizes the blocks `x` into `y` (ggml's `dequantize_row_q5_K`).
///
/// # Panics
/// If `y.len() != x.len() * 256`.
pub fn dequantize_row_q5_k(x: &[BlockQ5K], y: &mut [f32]) {
    check_row("dequantize_row_q5_k", x.len(), y.len());
    for (xb, yb) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block_q5_k(xb, yb.try_into().expect("chunks_exact yields whole blocks"));
    }
}
