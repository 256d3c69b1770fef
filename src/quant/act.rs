//! Activation rounding: the grid ggml's CPU backend puts MUL_MAT activations (src1, F32) on before a dot product
//! with quantized or half weights (its `vec_dot_type`), as f32 values.
//!
//! The reference build is x86-64 with AVX2/FMA/F16C, so the rounding mirrored is that of the x86 code paths:
//! - Q8_0 and Q8_1 (`quantize_row_q8_0` / `quantize_row_q8_1`, AVX2): blocks of 32; `amax = max |x|`,
//!   `d = amax / 127` stored as f16 (round to nearest even), `id = 127 / amax` (0 for an all-zero block),
//!   `q = round_to_nearest_even(x * id)` converted as `_mm256_cvtps_epi32` does (NaN or out of int32 range gives
//!   `i32::MIN`), saturated to `-128..=127` by the pack instructions. Value `f16(d) * q`. Q8_1's `s` field holds
//!   `d * sum(q)` and does not change the values.
//! - Q8_K (`quantize_row_q8_K` = `quantize_row_q8_K_ref` on x86): blocks of 256; `max` = the first element of
//!   largest magnitude (signed), `iscale = -127 / max`, `q = nearest_int(iscale * x)` (adding 1.5 * 2^23 and
//!   reading the low mantissa bits: round half to even; product and sum rounded separately, the reference
//!   library is built without FMA contraction there), `min(127, q)` stored as int8, `d = 1 / iscale` (f32).
//!   Value `d * q`. All-zero blocks stay zero.
//! - BF16 (`ggml_cpu_fp32_to_bf16` without AVX512-BF16): round to nearest even on the bits
//!   ([`super::f32_to_bf16_bits`]).
//!
//! ggml's repacked CPU path (Q4_K weights in 8x8 interleaved form, prompt-sized products) quantizes four rows at a
//! time with `ggml_quantize_mat_q8_K_4x8`, which resolves `+max` / `-max` ties towards the positive element;
//! everything else there is the same as here.

use half::f16;

use super::GgmlType;

/// A `vec_dot_type` grid for activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActRounding {
    /// 8-bit blocks of 32 with an f16 scale (ggml's Q8_0; Q8_1 rounds the same).
    Q8_0,
    /// 8-bit blocks of 256 with an f32 scale (ggml's Q8_K).
    Q8K,
    /// bfloat16.
    Bf16,
}

impl ActRounding {
    /// Values per block (a row of activations must hold whole blocks).
    pub fn block(self) -> usize {
        match self {
            ActRounding::Q8_0 => 32,
            ActRounding::Q8K => super::QK_K,
            ActRounding::Bf16 => 1,
        }
    }
}

/// The grid ggml's CPU backend rounds activations to for weights of type `ty` (its `vec_dot_type`), where that
/// grid is one of [`ActRounding`]: Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL/MXFP4/NVFP4/Q1_0/Q2_0, Q8_1 (same values) for Q4_1/Q5_1, Q8_K
/// for the K-quants, the other IQ types and TQ1_0/TQ2_0, BF16 for BF16. `None` for F32 (no rounding) and F16 (see [`super::f16`]).
pub fn act_rounding(ty: GgmlType) -> Option<ActRounding> {
    use GgmlType as T;
    match ty {
        T::Q4_0 | T::Q4_1 | T::Q5_0 | T::Q5_1 | T::Q8_0 | T::IQ4_NL | T::MXFP4 | T::NVFP4 | T::Q1_0 | T::Q2_0 => {
            Some(ActRounding::Q8_0)
        }
        T::Q2_K
        | T::Q3_K
        | T::Q4_K
        | T::Q5_K
        | T::Q6_K
        | T::IQ2_XXS
        | T::IQ2_XS
        | T::IQ2_S
        | T::IQ3_XXS
        | T::IQ3_S
        | T::IQ1_S
        | T::IQ1_M
        | T::IQ4_XS
        | T::TQ1_0
        | T::TQ2_0 => Some(ActRounding::Q8K),
        T::BF16 => Some(ActRounding::Bf16),
        _ => None,
    }
}

/// `_mm256_cvtps_epi32` of an already integral value, then the saturating packs to int8.
fn x86_to_i8_saturating(v: f32) -> i32 {
    if v.is_nan() || v.abs() >= 2_147_483_648.0 {
        return -128;
    }
    (v as i32).clamp(-128, 127)
}

/// One block of 32 on the Q8_0 grid.
fn round_block_q8_0(x: &[f32], y: &mut [f32]) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let d16 = f16::from_f32(d).to_f32();
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    for (o, &v) in y.iter_mut().zip(x) {
        let q = x86_to_i8_saturating((v * id).round_ties_even());
        *o = d16 * q as f32;
    }
}

/// One block of 256 on the Q8_K grid.
fn round_block_q8_k(x: &[f32], y: &mut [f32]) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        y.fill(0.0);
        return;
    }
    let iscale = -127.0 / max;
    let d = 1.0 / iscale;
    for (o, &v) in y.iter_mut().zip(x) {
        let t = iscale * v + 12_582_912.0;
        let i = (t.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000;
        // Stored into an int8: the low byte, as C's conversion does on the reference (two's complement) build.
        let q = i.min(127) as i8;
        *o = d * f32::from(q);
    }
}

/// `x` rounded onto `r`'s grid, written to `y` as f32 (ggml's `from_float` for the `vec_dot_type`, then
/// dequantized).
///
/// # Panics
/// If the lengths differ or are not a multiple of `r.block()`.
pub fn round_activations(r: ActRounding, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "round_activations: length mismatch");
    assert_eq!(x.len() % r.block(), 0, "round_activations: not whole blocks");
    match r {
        ActRounding::Q8_0 => x.chunks(32).zip(y.chunks_mut(32)).for_each(|(x, y)| round_block_q8_0(x, y)),
        ActRounding::Q8K => x.chunks(256).zip(y.chunks_mut(256)).for_each(|(x, y)| round_block_q8_k(x, y)),
        ActRounding::Bf16 => {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = super::bf16_bits_to_f32(super::f32_to_bf16_bits(v));
            }
        }
    }
}

/// [`round_activations`] into a new vector.
pub fn round_activations_to_vec(r: ActRounding, x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    round_activations(r, x, &mut y);
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_grid_ties_to_even_and_f16_scale() {
        // amax = 127: id = 1, d = 1; 2.5 -> 2, 3.5 -> 4, -2.5 -> -2.
        let mut x = vec![0.0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = 3.5;
        x[3] = -2.5;
        x[4] = 0.49;
        let y = round_activations_to_vec(ActRounding::Q8_0, &x);
        assert_eq!(&y[..5], &[127.0, 2.0, 4.0, -2.0, 0.0]);
        // The scale is kept as f16: amax = 1 gives d = f16(1/127).
        let mut x = vec![0.25f32; 32];
        x[7] = -1.0;
        let y = round_activations_to_vec(ActRounding::Q8_0, &x);
        let d16 = f16::from_f32(1.0 / 127.0).to_f32();
        assert_eq!(y[7], -127.0 * d16);
        assert_eq!(y[0], (0.25f32 * 127.0).round_ties_even() * d16);
        assert!(round_activations_to_vec(ActRounding::Q8_0, &[0.0; 32]).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn q8_k_grid_signed_max_and_f32_scale() {
        // Signed max -127: iscale = 1, d = 1; ties to even via the 1.5 * 2^23 trick.
        let mut x = vec![1.0f32; 256];
        x[0] = -127.0;
        x[1] = 2.5;
        x[2] = 3.5;
        x[3] = 127.0; // same magnitude later: the first one sets the sign
        let y = round_activations_to_vec(ActRounding::Q8K, &x);
        assert_eq!(&y[..4], &[-127.0, 2.0, 4.0, 127.0]);
        // Positive max: iscale = -127 / max, values d * q with d = 1 / iscale.
        let mut x = vec![0.3f32; 256];
        x[100] = 2.0;
        let y = round_activations_to_vec(ActRounding::Q8K, &x);
        let iscale = -127.0f32 / 2.0;
        let d = 1.0 / iscale;
        assert_eq!(y[100], d * -127.0);
        assert_eq!(y[0], d * (iscale * 0.3).round_ties_even());
    }

    #[test]
    fn bf16_grid_ties_to_even() {
        let x = [f32::from_bits(0x3f80_8000), f32::from_bits(0x3f81_8000), f32::from_bits(0x3f80_8001)];
        let y: Vec<u32> = round_activations_to_vec(ActRounding::Bf16, &x).iter().map(|v| v.to_bits()).collect();
        assert_eq!(y, [0x3f80_0000, 0x3f82_0000, 0x3f81_0000]);
    }
}
