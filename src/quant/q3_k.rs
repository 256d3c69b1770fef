//! Q3_K: super-blocks of 256 values in 16 sub-blocks of 16, 3-bit codes, 6-bit signed sub-block scales.
//!
//! Value `= d * (scale_s - 32) * (low2 - (high bit set ? 0 : 4))`. The low 2 bits sit like Q2_K's codes
//! (half `h`, byte `qs[32h + l]`, bit offset `2j` for element `128h + 32j + l`); the high bit of that element
//! is bit `4h + j` of `hmask[l]`. The 16 6-bit scales are packed in 12 bytes: low nibbles in bytes 0..8
//! (scale `s` in byte `s % 8`, nibble `s / 8`), top 2 bits in bytes 8..12 (byte `8 + s % 4`, bit offset
//! `2 * (s / 4)`).

use half::f16;

use super::k_common::{check_row, QK_K};

/// One Q3_K block, laid out exactly like ggml's `block_q3_K` (110 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ3K {
    /// High bit of each code.
    pub hmask: [u8; QK_K / 8],
    /// Low 2 bits of each code, four per byte.
    pub qs: [u8; QK_K / 4],
    /// 16 packed 6-bit scales (stored with a +32 offset).
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: f16,
}

const _: () = assert!(std::mem::size_of::<BlockQ3K>() == 110);
const _: () = assert!(std::mem::align_of::<BlockQ3K>() == 2);

/// The 16 sub-block scales of a Q3_K block minus their offset 32 (range -32..=31), as ggml unpacks them.
pub fn q3_k_scales(packed: &[u8; 12]) -> [i32; 16] {
    std::array::from_fn(|s| {
        let low = (packed[s % 8] >> (4 * (s / 8))) & 0x0F;
        let high = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
        i32::from(low | (high << 4)) - 32
    })
}

/// Dequantizes one block exactly like ggml's `dequantize_row_q3_K`: `y = dl * q` in f32 with
/// `dl = d * (scale - 32)` and the integer code `q = low2 - (high bit ? 0 : 4)`.
pub fn dequantize_block_q3_k(b: &BlockQ3K, y: &mut [f32; QK_K]) {
    let d_all = b.d.to_f32();
    let scales = q3_k_scales(&b.scales);
    for half in 0..2 {
        let q = &b.qs[32 * half..32 * half + 32];
        for j in 0..4 {
            let shift = 2 * j;
            let m = 1u8 << (4 * half + j);
            for sub in 0..2 {
                let dl = d_all * scales[8 * half + 2 * j + sub] as f32;
                let base = 128 * half + 32 * j + 16 * sub;
                for l in 0..16 {
                    let low = i32::from((q[16 * sub + l] >> shift) & 3);
                    let code = low - if b.hmask[16 * sub + l] & m != 0 { 0 } else { 4 };
                    y[base + l] = dl * code as f32;
                }
            }
        }
    }
}

/// Dequantizes the blocks `x` into `y` (ggml's `dequantize_row_q3_K`).
///
/// # Panics
/// If `y.len() != x.len() * 256`.
pub fn dequantize_row_q3_k(x: &[BlockQ3K], y: &mut [f32]) {
    check_row("dequantize_row_q3_k", x.len(), y.len());
    for (xb, yb) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        dequantize_block_q3_k(xb, yb.try_into().expect("chunks_exact yields whole blocks"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_unpacking_follows_ggml_word_shuffle() {
        // ggml unpacks through 32-bit words and masks; recompute it that way and compare on many patterns.
        let mut state = 0x9E37_79B9u32;
        for _ in 0..1000 {
            let mut packed = [0u8; 12];
            for p in &mut packed {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *p = (state >> 24) as u8;
            }
            let w =
                |i: usize| u32::from_le_bytes([packed[4 * i], packed[4 * i + 1], packed[4 * i + 2], packed[4 * i + 3]]);
            let (a0, a1, tmp) = (w(0), w(1), w(2));
            let (k1, k2) = (0x0303_0303u32, 0x0f0f_0f0fu32);
            let aux = [
                (a0 & k2) | ((tmp & k1) << 4),
                (a1 & k2) | (((tmp >> 2) & k1) << 4),
                ((a0 >> 4) & k2) | (((tmp >> 4) & k1) << 4),
                ((a1 >> 4) & k2) | (((tmp >> 6) & k1) << 4),
            ];
            let want: Vec<i32> = aux.iter().flat_map(|v| v.to_le_bytes()).map(|b| i32::from(b as i8) - 32).collect();
            assert_eq!(q3_k_scales(&packed).to_vec(), want, "{packed:?}");
        }
    }
}
