//! Q6_K: super-blocks of 256 values in 16 sub-blocks of 16, 6-bit codes, signed 8-bit sub-block scales.
//!
//! Value `= d * scales[s] * (code - 32)`. Two halves of 128; in half `h`, for `l` < 32, `ql[64h + l]` holds
//! the low 4 bits of elements `128h + l` (low nibble) and `128h + 64 + l` (high nibble), `ql[64h + 32 + l]` those
//! of `128h + 32 + l` and `128h + 96 + l`, and `qh[32h + l]` the top 2 bits of the four elements
//! `128h + 32k + l` at bit offset `2k`.

use half::f16;

use super::k_common::{check_row, QK_K};

/// One Q6_K block, laid out exactly like ggml's `block_q6_K` (210 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ6K {
    /// Low 4 bits of each code, two per byte.
    pub ql: [u8; QK_K / 2],
    /// Top 2 bits of each code, four per byte.
    pub qh: [u8; QK_K / 4],
    /// Signed 8-bit sub-block scales.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: f16,
}

const _: () = assert!(std::mem::size_of::<BlockQ6K>() == 210);
const _: () = assert!(std::mem::align_of::<BlockQ6K>() == 2);

/// Dequantizes one block exactly like ggml's `dequantize_row_q6_K`: `y = (d * sc) * (code - 32)` in f32.
pub fn dequantize_block_q6_k(b: &BlockQ6K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    for half in 0..2 {
        let ql = &b.ql[64 * half..64 * half + 64];
        let qh = &b.qh[32 * half..32 * half + 32];
        let sc = &b.scales[8 * half..8 * half + 8];
        for l in 0..32 {
            let is = l / 16;
            let h = qh[l];
            let codes = [
                (ql[l] & 0x0F) | (h & 3) << 4,
                (ql[l + 32] & 0x0F) | ((h >> 2) & 3) << 4,
                (ql[l] >> 4) | ((h >> 4) & 3) << 4,
                (ql[l + 32] >> 4) | ((h >> 6) & 3) << 4,
            ];
            for (k, &code) in codes.iter().enumerate() {
                let q = i32::from(code) - 32;
                y[128 * half + 32 * k + l] = d * f32::from(sc[is + 2 * k]) * q as f32;
            }
        }
    }
}

/// Dequantizes the blocks `x` into `y` (ggml's `dequantize_row_q6_K`).
///
/// # Panics
/// If `y.len() != x.len() * 256`.
pub fn dequantize_row_q6_k(x: &[BlockQ6K], y: &mut [f32]) {
    check_row("dequantize_row_q6_k", x.len(), y.len());
    for (xb, yb) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block_q6_k(xb, yb.try_into().expect("chunks_exact yields whole blocks"));
    }
}
