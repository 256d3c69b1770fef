//! IQ4_NL: blocks of 32 values stored as 4-bit indices into a fixed non-linear table, with one f16 scale.
//!
//! Value `j` of a block is `d * KVALUES_IQ4NL[code_j]`. Codes are packed as in Q4_0: byte `qs[j]` holds element
//! `j` (low nibble) and element `j + 16` (high nibble). The table is ggml's `kvalues_iq4nl`.
//!
//! The quantizer is ggml's `quantize_row_iq4_nl_ref` (the CPU backend's `from_float` for IQ4_NL, used for K/V
//! caches): no importance weights (`w = x * x`), no scale search (`ntry = -1`): a first scale `max / -127` picks
//! the nearest table entry per value, then the scale is refit by weighted least squares
//! `d = sum(w q x) / sum(w q q)`.

use half::f16;

/// Elements per IQ4_NL block (ggml's `QK4_NL`).
pub const QK4_NL: usize = 32;

/// ggml's `kvalues_iq4nl`: the 16 levels a code selects (times the block scale).
pub const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// ggml's `GROUP_MAX_EPS`: blocks whose largest magnitude is below it get scale 0.
const GROUP_MAX_EPS: f32 = 1e-15;

/// One IQ4_NL block, laid out exactly like ggml's `block_iq4_nl` (18 bytes, alignment 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq4Nl {
    /// Scale (delta).
    pub d: f16,
    /// Codes: low nibble of `qs[j]` is element `j`, high nibble element `j + 16`.
    pub qs: [u8; QK4_NL / 2],
}

const _: () = assert!(std::mem::size_of::<BlockIq4Nl>() == 18);
const _: () = assert!(std::mem::align_of::<BlockIq4Nl>() == 2);

/// ggml's `best_index_int8` over [`KVALUES_IQ4NL`]: the index of the level nearest `x` (the lower one on a tie).
pub fn best_index_iq4nl(x: f32) -> usize {
    let val = &KVALUES_IQ4NL;
    let n = val.len();
    if x <= f32::from(val[0]) {
        return 0;
    }
    if x >= f32::from(val[n - 1]) {
        return n - 1;
    }
    let (mut ml, mut mu) = (0usize, n - 1);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < f32::from(val[mav]) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - f32::from(val[mu - 1]) < f32::from(val[mu]) - x {
        mu - 1
    } else {
        mu
    }
}

/// Quantizes one block of 32 values exactly like ggml's `quantize_row_iq4_nl_ref`.
///
/// A block whose largest magnitude is below 1e-15 gets scale 0; ggml then leaves its codes unspecified
/// (whatever an earlier block left in its scratch), here they are index 8 (the level nearest 0), so the block
/// dequantizes to zeros either way.
pub fn quantize_block_iq4_nl(x: &[f32; QK4_NL]) -> BlockIq4Nl {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    let mut l = [8u8; QK4_NL];
    let mut d = 0.0f32;
    if amax >= GROUP_MAX_EPS {
        let d0 = max / f32::from(KVALUES_IQ4NL[0]);
        let id = 1.0 / d0;
        let mut sumqx = 0.0f32;
        let mut sumq2 = 0.0f32;
        for (j, &xj) in x.iter().enumerate() {
            let idx = best_index_iq4nl(id * xj);
            l[j] = idx as u8;
            let q = f32::from(KVALUES_IQ4NL[idx]);
            let w = xj * xj;
            sumqx += w * q * xj;
            sumq2 += w * q * q;
        }
        d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
    }
    let mut qs = [0u8; QK4_NL / 2];
    for (j, q) in qs.iter_mut().enumerate() {
        *q = l[j] | (l[j + QK4_NL / 2] << 4);
    }
    BlockIq4Nl { d: f16::from_f32(d), qs }
}

/// Dequantizes one block exactly like ggml's `dequantize_row_iq4_nl`: `y = d * kvalues[code]` in f32.
pub fn dequantize_block_iq4_nl(b: &BlockIq4Nl, y: &mut [f32; QK4_NL]) {
    let d = b.d.to_f32();
    for (j, &q) in b.qs.iter().enumerate() {
        y[j] = d * f32::from(KVALUES_IQ4NL[usize::from(q & 0x0F)]);
        y[j + QK4_NL / 2] = d * f32::from(KVALUES_IQ4NL[usize::from(q >> 4)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_index_matches_ggml_ties_and_ends() {
        assert_eq!(best_index_iq4nl(-1000.0), 0);
        assert_eq!(best_index_iq4nl(1000.0), 15);
        // Between -10 (7) and 1 (8): 0 is nearer 1; the midpoint -4.5 goes up (ggml's `<` picks mu on a tie).
        assert_eq!(best_index_iq4nl(0.0), 8);
        assert_eq!(best_index_iq4nl(-4.5), 8);
        assert_eq!(best_index_iq4nl(-4.6), 7);
        for (i, &v) in KVALUES_IQ4NL.iter().enumerate() {
            assert_eq!(best_index_iq4nl(f32::from(v)), i);
        }
    }

    #[test]
    fn round_trip_keeps_levels_and_zero_blocks() {
        let x: [f32; QK4_NL] = std::array::from_fn(|i| f32::from(KVALUES_IQ4NL[i % 16]) * 0.5);
        let b = quantize_block_iq4_nl(&x);
        let mut y = [0f32; QK4_NL];
        dequantize_block_iq4_nl(&b, &mut y);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() <= 0.5 * 127.0 * 1e-3, "{a} vs {b}");
        }
        let z = quantize_block_iq4_nl(&[0.0; QK4_NL]);
        assert_eq!(z.d.to_bits(), 0);
        dequantize_block_iq4_nl(&z, &mut y);
        assert!(y.iter().all(|&v| v == 0.0));
    }
}
