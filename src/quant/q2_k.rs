//! Q2_K: super-blocks of 256 values in 16 sub-blocks of 16, 2-bit codes, 4-bit sub-block scales and mins.
//!
//! Value `= d * (scales[s] & 0xF) * code - dmin * (scales[s] >> 4)` for sub-block `s`. The 256 codes sit in two
//! halves of 128; in half `h`, byte `qs[32h + l]` holds, at bit offset `2j`, the code of element
//! `128h + 32j + l` (`l` < 32).

use half::f16;

use super::k_common::{check_row, QK_K};

/// One Q2_K block, laid out exactly like ggml's `block_q2_K` (84 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ2K {
    /// Per sub-block: scale in the low nibble, min in the high nibble.
    pub scales: [u8; QK_K / 16],
    /// 2-bit codes, four per byte.
    pub qs: [u8; QK_K / 4],
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the mins.
    pub dmin: f16,
}

const _: () = assert!(std::mem::size_of::<BlockQ2K>() == 84);
const _: () = assert!(std::mem::align_of::<BlockQ2K>() == 2);

/// Dequantizes one block exactly like ggml's `dequantize_row_q2_K`: `y = dl * code - ml` in f32 with
/// `dl = d * (sc & 0xF)` and `ml = dmin * (sc >> 4)`.
pub fn dequantize_block_q2_k(b: &BlockQ2K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let min = b.dmin.to_f32();
    for half in 0..2 {
        let q = &b.qs[32 * half..32 * half + 32];
        for j in 0..4 {
            let shift = 2 * j;
            for sub in 0..2 {
                let sc = b.scales[8 * half + 2 * j + sub];
                let dl = d * (sc & 0x0F) as f32;
                let ml = min * (sc >> 4) as f32;
                let base = 128 * half + 32 * j + 16 * sub;
                for l in 0..16 {
                    let code = (q[16 * sub + l] >> shift) & 3;
                    y[base + l] = dl * code as f32 - ml;
                }
            }
        }
    }
}

/// Dequantizes the blocks `x` into `y` (ggml's `dequantize_row_q2_K`).
///
/// # Panics
/// If `y.len() != x.len() * 256`.
pub fn dequantize_row_q2_k(x: &[BlockQ2K], y: &mut [f32]) {
    check_row("dequantize_row_q2_k", x.len(), y.len());
    for (xb, yb) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block_q2_k(xb, yb.try_into().expect("chunks_exact yields whole blocks"));
    }
}
