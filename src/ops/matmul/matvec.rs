//! Which mat-vec kernel runs a product of up to [`MATVEC_MAX_COLS`] columns (token generation): the float and
//! generic dequantizing kernels, the integer-dot kernels over 8-bit activations (32-value blocks and K-quants),
//! their wide-load variants, workgroup shapes and knobs, and the integer-dot recording.

use super::{
    bf16_scalar, dq_table_bytes, fused_epilogue, quantize_b, quantizes_activations, shader, tiled_reads_q8, Epilogue,
    FusedKernel, MatMulPush,
};
use crate::error::Result;
use crate::ir::Tensor;
use crate::ops::spirv;
use crate::quant::GgmlType;
use crate::vk::{Binding, Capabilities, Device, Recorder, Shader};

/// The generic dequantizing kernel `kernel` (see build.rs) for weights of type `ty`, if `ty` has a dequantization
/// include. Q4_0, Q8_0, F16 and F32 have none: they take their specialised kernels.
pub(super) fn dq_shader(kernel: &str, ty: GgmlType) -> Option<Shader> {
    spirv::dq_module(kernel, ty.name()).map(|(name, spirv)| shader(name, spirv))
}

/// The type whose kernel shape (values per thread per trip, shared tables) the mat-vec kernels for `a` have: F16's
/// for [`bf16_scalar`] weights, else `a`'s own.
pub(crate) fn matvec_kernel_type(a: &Tensor) -> GgmlType {
    if bf16_scalar(a) {
        GgmlType::F16
    } else {
        a.ty
    }
}

/// The mat-vec shaders for the weights `a` ([`matvec_shaders`], the scalar BF16 ones for [`bf16_scalar`] rows).
pub(super) fn matvec_shaders_for(a: &Tensor) -> Option<(Shader, Shader)> {
    if bf16_scalar(a) {
        return Some((
            shader("mul_mat_vec_bf16", spirv::MUL_MAT_VEC_BF16),
            shader("mul_mat_vec_bf16_shmem", spirv::MUL_MAT_VEC_BF16_SHMEM),
        ));
    }
    matvec_shaders(a.ty)
}

/// Mat-vec shaders: (subgroup reduction, shared-memory reduction) per weight type.
pub(super) fn matvec_shaders(ty: GgmlType) -> Option<(Shader, Shader)> {
    Some(match ty {
        GgmlType::F32 => (
            shader("mul_mat_vec_f32", spirv::MUL_MAT_VEC_F32),
            shader("mul_mat_vec_f32_shmem", spirv::MUL_MAT_VEC_F32_SHMEM),
        ),
        GgmlType::F16 => (
            shader("mul_mat_vec_f16", spirv::MUL_MAT_VEC_F16),
            shader("mul_mat_vec_f16_shmem", spirv::MUL_MAT_VEC_F16_SHMEM),
        ),
        GgmlType::Q4_0 => (
            shader("mul_mat_vec_q4_0", spirv::MUL_MAT_VEC_Q4_0),
            shader("mul_mat_vec_q4_0_shmem", spirv::MUL_MAT_VEC_Q4_0_SHMEM),
        ),
        GgmlType::Q8_0 => (
            shader("mul_mat_vec_q8_0", spirv::MUL_MAT_VEC_Q8_0),
            shader("mul_mat_vec_q8_0_shmem", spirv::MUL_MAT_VEC_Q8_0_SHMEM),
        ),
        _ => (dq_shader("mul_mat_vec_dq", ty)?, dq_shader("mul_mat_vec_dq_shmem", ty)?),
    })
}

/// The dedicated K-quant mat-vec kernels (`mul_mat_vec_k.comp`: the scales unpacked once per 32 or 16 values
/// instead of once per 8 as in the generic dq kernel) where they apply: Q6_K always, Q4_K and Q5_K when their blocks
/// start on 32-bit words (offset and strides in even 16-bit words; the kernel reads 32 bits at a time).
/// `GGVK_KQUANT_MATVEC=0` keeps the generic kernel (read once per process).
pub(super) fn kquant_matvec_shaders(ty: GgmlType, p: &MatMulPush) -> Option<(Shader, Shader)> {
    if !kquant_matvec_on() {
        return None;
    }
    let words32 = [p.a_off, p.a_row, p.a_s2, p.a_s3].iter().all(|v| v % 2 == 0);
    match ty {
        GgmlType::Q4_K if words32 => Some((
            shader("mul_mat_vec_q4_k", spirv::MUL_MAT_VEC_Q4_K),
            shader("mul_mat_vec_q4_k_shmem", spirv::MUL_MAT_VEC_Q4_K_SHMEM),
        )),
        GgmlType::Q5_K if words32 => Some((
            shader("mul_mat_vec_q5_k", spirv::MUL_MAT_VEC_Q5_K),
            shader("mul_mat_vec_q5_k_shmem", spirv::MUL_MAT_VEC_Q5_K_SHMEM),
        )),
        GgmlType::Q6_K => Some((
            shader("mul_mat_vec_q6_k", spirv::MUL_MAT_VEC_Q6_K),
            shader("mul_mat_vec_q6_k_shmem", spirv::MUL_MAT_VEC_Q6_K_SHMEM),
        )),
        _ => None,
    }
}

fn kquant_matvec_on() -> bool {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KNOB.get_or_init(|| crate::knobs::switch("GGVK_KQUANT_MATVEC", true))
}

/// Whether products of K-quant weights `a` run on integer dot products over b quantized onto the Q8_K grid (in the
/// mat-vec kernels of MUL_MAT and MUL_MAT_ID, `mul_mat_vec_k.comp`): Q4_K, Q5_K (blocks on 32-bit words: offset
/// and strides multiples of 4 bytes, as for Q2_K) or Q6_K unless `GGVK_KQUANT_MATVEC=0`; Q2_K, Q3_K or IQ4_XS unless
/// `GGVK_INT_DOT_KQUANT_MORE=0`; on a device with integer dot products, `GGVK_INT_DOT` not 0 (knobs read once per
/// process).
pub(crate) fn kquant_int_dot(device: &Device, a: &Tensor) -> bool {
    static MORE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let words32 = a.offset % 4 == 0 && a.nb[1..].iter().all(|v| v % 4 == 0);
    let ty_ok = match a.ty {
        GgmlType::Q4_K | GgmlType::Q5_K => words32 && kquant_matvec_on(),
        GgmlType::Q6_K => kquant_matvec_on(),
        // Q2_K's kernel reads its 84-byte blocks as 32-bit words.
        GgmlType::Q2_K => words32 && *MORE.get_or_init(|| crate::knobs::switch("GGVK_INT_DOT_KQUANT_MORE", true)),
        GgmlType::Q3_K | GgmlType::IQ4_XS => {
            *MORE.get_or_init(|| crate::knobs::switch("GGVK_INT_DOT_KQUANT_MORE", true))
        }
        _ => false,
    };
    ty_ok && int_dot_on() && device.caps().integer_dot_product
}

/// The integer-dot K-quant mat-vec kernels (`mul_mat_vec_k.comp` with `INT_DOT`: b quantized onto the CPU
/// backend's Q8_K grid by `quantize_q8_k.comp`, sub-block products exact in int32) when they apply: Q4_K, Q5_K or
/// Q6_K weights whose dedicated kernel applies (Q4_K/Q5_K blocks on 32-bit words), up to [`MATVEC_MAX_COLS`]
/// columns, a device with integer dot products, `GGVK_INT_DOT` not 0 and `GGVK_KQUANT_MATVEC` not 0.
pub(super) fn kquant_int_dot_shaders(device: &Device, a: &Tensor, b: &Tensor) -> Option<(Shader, Shader)> {
    if !kquant_int_dot(device, a) || b.ne[1] > i64::from(MATVEC_MAX_COLS) {
        return None;
    }
    Some(match a.ty {
        GgmlType::Q2_K => (
            shader("mul_mat_vec_q2_k_idot", spirv::MUL_MAT_VEC_Q2_K_IDOT),
            shader("mul_mat_vec_q2_k_idot_shmem", spirv::MUL_MAT_VEC_Q2_K_IDOT_SHMEM),
        ),
        GgmlType::Q3_K => (
            shader("mul_mat_vec_q3_k_idot", spirv::MUL_MAT_VEC_Q3_K_IDOT),
            shader("mul_mat_vec_q3_k_idot_shmem", spirv::MUL_MAT_VEC_Q3_K_IDOT_SHMEM),
        ),
        GgmlType::IQ4_XS => (
            shader("mul_mat_vec_iq4_xs_idot", spirv::MUL_MAT_VEC_IQ4_XS_IDOT),
            shader("mul_mat_vec_iq4_xs_idot_shmem", spirv::MUL_MAT_VEC_IQ4_XS_IDOT_SHMEM),
        ),
        GgmlType::Q4_K => (
            shader("mul_mat_vec_q4_k_idot", spirv::MUL_MAT_VEC_Q4_K_IDOT),
            shader("mul_mat_vec_q4_k_idot_shmem", spirv::MUL_MAT_VEC_Q4_K_IDOT_SHMEM),
        ),
        GgmlType::Q5_K => (
            shader("mul_mat_vec_q5_k_idot", spirv::MUL_MAT_VEC_Q5_K_IDOT),
            shader("mul_mat_vec_q5_k_idot_shmem", spirv::MUL_MAT_VEC_Q5_K_IDOT_SHMEM),
        ),
        GgmlType::Q6_K => (
            shader("mul_mat_vec_q6_k_idot", spirv::MUL_MAT_VEC_Q6_K_IDOT),
            shader("mul_mat_vec_q6_k_idot_shmem", spirv::MUL_MAT_VEC_Q6_K_IDOT_SHMEM),
        ),
        _ => return None,
    })
}

/// The integer-dot Q4_K / Q5_K / Q2_K mat-vec kernel that reads 16 bytes at a time (`mul_mat_vec_k.comp` with
/// `WIDE`), where it applies: every Q8_K activation block of the product starts on a 16-byte boundary (b's offset
/// and strides in 32-bit words multiples of 4), for Q4_K / Q5_K every weight block too (A's offset and strides in
/// 16-bit words multiples of 8; Q2_K's 84-byte blocks are read in 32-bit words, as its other kernel reads them),
/// and `GGVK_MATVEC_WIDE_K` is not 0 (read once per process).
pub(crate) fn kquant_wide_shader(ty: GgmlType, p: &MatMulPush) -> Option<Shader> {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*KNOB.get_or_init(|| crate::knobs::switch("GGVK_MATVEC_WIDE_K", true)) || !b_aligned_16(p) {
        return None;
    }
    match ty {
        GgmlType::Q4_K if a_aligned_16(p) => {
            Some(shader("mul_mat_vec_q4_k_idot_wide", spirv::MUL_MAT_VEC_Q4_K_IDOT_WIDE))
        }
        GgmlType::Q5_K if a_aligned_16(p) => {
            Some(shader("mul_mat_vec_q5_k_idot_wide", spirv::MUL_MAT_VEC_Q5_K_IDOT_WIDE))
        }
        GgmlType::Q2_K => Some(shader("mul_mat_vec_q2_k_idot_wide", spirv::MUL_MAT_VEC_Q2_K_IDOT_WIDE)),
        _ => None,
    }
}

/// Values of one unit (one thread, one trip) of the wide K-quant mat-vec kernel for `ty`.
pub(super) fn kquant_wide_unit(ty: GgmlType) -> u32 {
    if ty == GgmlType::Q2_K {
        64
    } else {
        32
    }
}

/// Whether the F16 / BF16 mat-vec reads `a`'s rows 16 bytes at a time (`mul_mat_vec.comp` with `WIDE16`): F16 or
/// BF16 weights, offset and strides multiples of 8 values, rows of a multiple of 8 values; `GGVK_MATVEC_WIDE_F16=0`
/// keeps F16's one value per thread per step and BF16's generic kernel after a rounding pre-pass (read once per
/// process).
pub(crate) fn wide16(a: &Tensor, p: &MatMulPush) -> bool {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    matches!(a.ty, GgmlType::F16 | GgmlType::BF16)
        && p.k % 8 == 0
        && [p.a_off, p.a_row, p.a_s2, p.a_s3].iter().all(|v| v % 8 == 0)
        && *KNOB.get_or_init(|| crate::knobs::switch("GGVK_MATVEC_WIDE_F16", true))
}

/// The weight half of [`kquant_wide_shader`]'s alignment: A's blocks on 16-byte boundaries.
fn a_aligned_16(p: &MatMulPush) -> bool {
    [p.a_off, p.a_row, p.a_s2, p.a_s3].iter().all(|v| v % 8 == 0)
}

/// The activation half of [`kquant_wide_shader`]'s alignment: Q8_K blocks on 16-byte boundaries.
fn b_aligned_16(p: &MatMulPush) -> bool {
    [p.b_off, p.b_col, p.b_s2, p.b_s3].iter().all(|v| v % 4 == 0)
}

/// Whether the generic dequantizing mat-vec (`mul_mat_vec_dq.comp`) gives a thread 16 consecutive values of a
/// 256-value block per unit (`SPAN16`: one 32-value sub-block's scale, sign and index words loaded once for 16
/// values, the shape of ggml-vulkan's IQ mat-vecs) instead of two 4-value chunks 128 values apart (sharing only the
/// block's d). `GGVK_MATVEC_DQ_SPAN16` (read once per process) where set; by default on GPUs (H100, m=4096 k=14336
/// one column: 8-19% faster for the IQ1-IQ3 and TQ types, e.g. IQ2_XXS 100.0 -> 91.3 us; NOTES.md 2026-12-07
/// 22:05 UTC), off on CPU devices, where it measured slower (lavapipe: IQ2_XXS 158 -> 167 ms, TQ2_0 76 -> 97 ms).
pub(crate) fn dq_span16(caps: &Capabilities) -> bool {
    static KNOB: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    span16_of(*KNOB.get_or_init(|| crate::knobs::either("GGVK_MATVEC_DQ_SPAN16")), caps.cpu_device())
}

fn span16_of(knob: Option<bool>, cpu_device: bool) -> bool {
    knob.unwrap_or(!cpu_device)
}

/// The 256-value block types whose mat-vecs only the generic dequantizing kernel runs (the K-quants and IQ4_XS
/// have kernels of their own).
fn generic_256(ty: GgmlType) -> bool {
    use GgmlType as T;
    matches!(ty, T::IQ2_XXS | T::IQ2_XS | T::IQ2_S | T::IQ3_XXS | T::IQ3_S | T::IQ1_S | T::IQ1_M | T::TQ1_0 | T::TQ2_0)
}

/// Mat-vec workgroup size (a power of two, at least 4), rows of A per workgroup, blocks per loop trip, for
/// weights of type `ty`.
///
/// Defaults per weight type come from sweeps (NOTES.md): Q4_0 128 threads (14.98 us against 18.27 us at 256 threads
/// for m=4096 k=14336 on an H100) x 4 rows (a 7B Q4_0 model generating on an H200, weights streaming from memory:
/// 241.6 t/s against 226.0 with 2 rows), the generic kernel's 256-value types ([`generic_256`]: IQ1-IQ3, TQ) 128 x 4
/// with one work unit per trip (H100, m=4096 k=14336, against 256 x 2 x 2: IQ2_XXS 62.7 / 75.9 us, IQ3_XXS 49.6 /
/// 60.7, IQ1_S 65.9 / 88.0, TQ2_0 31.4 / 38.3; ggml-vulkan's IQ kernels take 128 x 4 there too), the others
/// 256 x 2 x 2. `GGVK_MATVEC_WG`, `GGVK_MATVEC_ROWS` and `GGVK_MATVEC_UNROLL` override them for every type (read
/// once per process; invalid values are ignored).
pub fn matvec_config(ty: GgmlType) -> MatVecConfig {
    with_knobs(default_matvec_config(ty))
}

/// [`matvec_config`] without the knobs.
fn default_matvec_config(ty: GgmlType) -> MatVecConfig {
    match ty {
        GgmlType::Q4_0 => MatVecConfig { wg: 128, rows: 4, unroll: MATVEC_UNROLL },
        _ if generic_256(ty) => MatVecConfig { wg: 128, rows: 4, unroll: 1 },
        _ => MatVecConfig { wg: MATVEC_WG, rows: MATVEC_ROWS, unroll: MATVEC_UNROLL },
    }
}

/// Mat-vec shape of the integer-dot K-quant kernels: 256 threads x 4 rows, one unit per thread per trip (an H200
/// sweep of m=4096 k=14336: q4_K 24.9 us against 28.6 us with the default 256 x 2 x 2, q5_K 30.0 against 42.0,
/// q6_K level; NOTES.md). The `GGVK_MATVEC_*` knobs override it as they do [`matvec_config`].
pub(crate) fn kquant_idot_config() -> MatVecConfig {
    with_knobs(MatVecConfig { wg: 256, rows: 4, unroll: 1 })
}

/// `shape` with each of `GGVK_MATVEC_WG`, `GGVK_MATVEC_ROWS`, `GGVK_MATVEC_UNROLL` that is set in its place (read
/// once per process; [`crate::knobs`]).
fn with_knobs(shape: MatVecConfig) -> MatVecConfig {
    static KNOBS: std::sync::OnceLock<[Option<u32>; 3]> = std::sync::OnceLock::new();
    let knobs = KNOBS.get_or_init(|| {
        // Ranges checked by knobs (a power of two 4..=1024, 1..=8, 1..=8).
        let env = |name: &'static str| crate::knobs::number(name).and_then(|v| u32::try_from(v).ok());
        [env("GGVK_MATVEC_WG"), env("GGVK_MATVEC_ROWS"), env("GGVK_MATVEC_UNROLL")]
    });
    MatVecConfig {
        wg: knobs[0].unwrap_or(shape.wg),
        rows: knobs[1].unwrap_or(shape.rows),
        unroll: knobs[2].unwrap_or(shape.unroll),
    }
}

/// The workgroup size of a mat-vec over rows of `k` values of `ty` with `cols` columns, from `cfg` and the device:
/// short rows need fewer threads (a thread takes 1 value per trip for float weights, 4 x unroll for bf16, 8 x unroll
/// for blocks, 16 x unroll in the generic kernel's 16-value units ([`dq_span16`]) for the 256-value types only that
/// kernel runs; idle invocations cost real time on CPU-like devices such as lavapipe, and on a GPU their warps reread
/// a unit for nothing); threads 0..rows*cols write the results, and shared memory holds rows * cols * wg partial sums.
pub(crate) fn matvec_workgroup(caps: &Capabilities, ty: GgmlType, cfg: MatVecConfig, k: u32, cols: u32) -> u32 {
    let MatVecConfig { wg, rows, unroll } = cfg;
    let per_thread = match ty {
        GgmlType::F32 | GgmlType::F16 => 1,
        GgmlType::BF16 => 4 * unroll,
        _ if generic_256(ty) && dq_span16(caps) => 16 * unroll,
        _ => 8 * unroll,
    };
    let wg = wg.min(k.div_ceil(per_thread).next_power_of_two().max(caps.subgroup_size.max(16)));
    let max_pow2 = 1u32 << (31 - caps.max_workgroup_invocations.max(4).leading_zeros());
    let wg = wg.max((rows * cols).next_power_of_two()).min(max_pow2);
    let shared_limit = caps.max_shared_memory.saturating_sub(dq_table_bytes(ty)) / 4 / (rows * cols);
    if wg > shared_limit {
        1u32 << (31 - shared_limit.max(1).leading_zeros())
    } else {
        wg
    }
}

/// Mat-vec kernel shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatVecConfig {
    /// Threads per workgroup.
    pub wg: u32,
    /// Rows of A per workgroup.
    pub rows: u32,
    /// Quantized blocks per thread per loop trip.
    pub unroll: u32,
}

/// Up to this many columns of b take the mat-vec kernels (weights read once for all columns); more take the
/// tiled kernel.
pub(crate) const MATVEC_MAX_COLS: u32 = 8;

/// Default quantized blocks per thread per loop trip.
pub(crate) const MATVEC_UNROLL: u32 = 2;

/// Default mat-vec workgroup size.
pub(crate) const MATVEC_WG: u32 = 256;

/// Default rows of A per mat-vec workgroup.
pub(crate) const MATVEC_ROWS: u32 = 2;

/// `GGVK_INT_DOT=0` keeps activations in f32 for every weight type (read once per process).
pub(super) fn int_dot_on() -> bool {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KNOB.get_or_init(|| crate::knobs::switch("GGVK_INT_DOT", true))
}

/// The integer-dot mat-vec kernels (subgroup, shared-memory reduction) when they apply: activations quantized
/// (see [`quantizes_activations`]), up to [`MATVEC_MAX_COLS`] columns, a device with integer dot products.
pub(super) fn int_dot_shaders(device: &Device, a: &Tensor, b: &Tensor) -> Option<(Shader, Shader)> {
    if !(quantizes_activations(a) || block32_int_dot(a))
        || !device.caps().integer_dot_product
        || b.ne[1] > i64::from(MATVEC_MAX_COLS)
    {
        return None;
    }
    Some(match a.ty {
        GgmlType::Q4_1 => (
            shader("mul_mat_vec_q4_1_idot", spirv::MUL_MAT_VEC_Q4_1_IDOT),
            shader("mul_mat_vec_q4_1_idot_shmem", spirv::MUL_MAT_VEC_Q4_1_IDOT_SHMEM),
        ),
        GgmlType::Q5_0 => (
            shader("mul_mat_vec_q5_0_idot", spirv::MUL_MAT_VEC_Q5_0_IDOT),
            shader("mul_mat_vec_q5_0_idot_shmem", spirv::MUL_MAT_VEC_Q5_0_IDOT_SHMEM),
        ),
        GgmlType::Q5_1 => (
            shader("mul_mat_vec_q5_1_idot", spirv::MUL_MAT_VEC_Q5_1_IDOT),
            shader("mul_mat_vec_q5_1_idot_shmem", spirv::MUL_MAT_VEC_Q5_1_IDOT_SHMEM),
        ),
        GgmlType::IQ4_NL => (
            shader("mul_mat_vec_iq4_nl_idot", spirv::MUL_MAT_VEC_IQ4_NL_IDOT),
            shader("mul_mat_vec_iq4_nl_idot_shmem", spirv::MUL_MAT_VEC_IQ4_NL_IDOT_SHMEM),
        ),
        GgmlType::MXFP4 => (
            shader("mul_mat_vec_mxfp4_idot", spirv::MUL_MAT_VEC_MXFP4_IDOT),
            shader("mul_mat_vec_mxfp4_idot_shmem", spirv::MUL_MAT_VEC_MXFP4_IDOT_SHMEM),
        ),
        GgmlType::Q4_0 => (
            shader("mul_mat_vec_q4_0_idot", spirv::MUL_MAT_VEC_Q4_0_IDOT),
            shader("mul_mat_vec_q4_0_idot_shmem", spirv::MUL_MAT_VEC_Q4_0_IDOT_SHMEM),
        ),
        GgmlType::Q8_0 => (
            shader("mul_mat_vec_q8_0_idot", spirv::MUL_MAT_VEC_Q8_0_IDOT),
            shader("mul_mat_vec_q8_0_idot_shmem", spirv::MUL_MAT_VEC_Q8_0_IDOT_SHMEM),
        ),
        _ => return None,
    })
}

/// The integer-dot mat-vec kernels of Q4_1 and Q5_1 that read the weights' blocks 32 bits at a time
/// (`mul_mat_vec.comp` with `A_WORDS32`: one load for the scale pair, one for the fifth bits, one per quarter's
/// codes, where the 16-bit kernel takes two each), when the blocks start on 32-bit words (offset and strides even
/// in 16-bit words; 20- and 24-byte blocks keep that along a row). `GGVK_MATVEC_WORDS32=0` keeps the 16-bit loads
/// (read once per process).
pub(super) fn words32_idot_shaders(ty: GgmlType, p: &MatMulPush) -> Option<(Shader, Shader)> {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if ![p.a_off, p.a_row, p.a_s2, p.a_s3].iter().all(|v| v % 2 == 0)
        || !*KNOB.get_or_init(|| crate::knobs::switch("GGVK_MATVEC_WORDS32", true))
    {
        return None;
    }
    match ty {
        GgmlType::Q4_1 => Some((
            shader("mul_mat_vec_q4_1_idot_w32", spirv::MUL_MAT_VEC_Q4_1_IDOT_W32),
            shader("mul_mat_vec_q4_1_idot_w32_shmem", spirv::MUL_MAT_VEC_Q4_1_IDOT_W32_SHMEM),
        )),
        GgmlType::Q5_1 => Some((
            shader("mul_mat_vec_q5_1_idot_w32", spirv::MUL_MAT_VEC_Q5_1_IDOT_W32),
            shader("mul_mat_vec_q5_1_idot_w32_shmem", spirv::MUL_MAT_VEC_Q5_1_IDOT_W32_SHMEM),
        )),
        _ => None,
    }
}

/// Whether the mat-vec products of `a` (up to [`MATVEC_MAX_COLS`] columns, on a device with integer dot
/// products) take the integer-dot kernel for the other 32-value block types, as Q4_0 and Q8_0 do: Q4_1, Q5_0,
/// Q5_1, IQ4_NL and MXFP4 weights against b quantized to 8 bits per 32 values (the codes and f16 scale of ggml's
/// Q8_0 / Q8_1, which the CPU backend's dot products for these types read), exact integer sums per block. Their
/// wider products keep the generic kernels. `GGVK_INT_DOT_BLOCK32=0` (or `GGVK_INT_DOT=0`) keeps the generic
/// mat-vec (read once per process).
pub fn block32_int_dot(a: &Tensor) -> bool {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on = *KNOB.get_or_init(|| crate::knobs::switch("GGVK_INT_DOT_BLOCK32", true));
    on && int_dot_on()
        && matches!(a.ty, GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::IQ4_NL | GgmlType::MXFP4)
}

/// Mat-vec shape of [`block32_int_dot`]'s kernels: Q4_0's (the same four threads per block, blocks of 17-24
/// bytes), but 2 rows a workgroup for Q5_1 (H100, m=4096 k=14336, 128 threads x 4 / x 2 rows in three alternations:
/// 35.8 / 25.0, 28.8 / 25.5, 28.8 / 25.4 us; Q4_1, Q5_0 and IQ4_NL as fast or faster with 4; NOTES.md 2026-12-07
/// 22:15 UTC), overridden by the `GGVK_MATVEC_*` knobs as [`matvec_config`] is.
pub(crate) fn block32_idot_config(ty: GgmlType) -> MatVecConfig {
    let q4_0 = default_matvec_config(GgmlType::Q4_0);
    with_knobs(if ty == GgmlType::Q5_1 { MatVecConfig { rows: 2, ..q4_0 } } else { q4_0 })
}

/// Whether `a x b` on `device` rounds b (x) to 8 bits per block first (on the integer-dot mat-vec path, or
/// in the tiled kernel when [`quantizes_activations`]).
pub fn uses_int_dot(device: &Device, a: &Tensor, b: &Tensor) -> bool {
    int_dot_shaders(device, a, b).is_some()
        || kquant_int_dot_shaders(device, a, b).is_some()
        || tiled_reads_q8(device, a, b)
}

/// Whether the integer-dot mat-vec of `ty` weights (the 32-value block types but MXFP4, whose 17-byte blocks need 16
/// a trip) for `p` in a `(wg, rows, unroll)` workgroup stages each trip's blocks through shared memory by 16-byte
/// loads (`mul_mat_vec.comp` `STAGED`): `GGVK_MATVEC_STAGED=1` (read once per process; off by default until
/// measured on a GPU) where [`staged_fits`].
pub(super) fn staged_block32(caps: &Capabilities, ty: GgmlType, p: &MatMulPush, shape: (u32, u32, u32)) -> bool {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let staged_type = matches!(
        ty,
        GgmlType::Q4_0 | GgmlType::Q8_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::IQ4_NL
    );
    staged_type
        && *KNOB.get_or_init(|| crate::knobs::switch("GGVK_MATVEC_STAGED", false))
        && staged_fits(caps.max_shared_memory, ty.type_size() as u32, p, shape)
}

/// The staged kernel's conditions for blocks of `block_bytes` (even): rows on 16-byte boundaries (so each row's
/// trips start on 16-byte units), trips of a multiple of 8 blocks (whole 16-byte units), and the staged trip of
/// every row beside the reduction within `max_shared` bytes of shared memory.
fn staged_fits(max_shared: u32, block_bytes: u32, p: &MatMulPush, (wg, rows, unroll): (u32, u32, u32)) -> bool {
    let blocks = unroll * (wg / 4);
    a_aligned_16(p) && blocks % 8 == 0 && rows * blocks * block_bytes + p.n * rows * wg * 4 <= max_shared
}

/// Quantize b into scratch, then run the integer-dot mat-vec over it (with the ADD of `add` where a fused kernel
/// exists; returns whether it took it).
#[allow(clippy::too_many_arguments)]
pub(super) fn record_int_dot(
    rec: &mut Recorder<'_>,
    b: &Tensor,
    bindings: &[Binding; 3],
    p: MatMulPush,
    spec: [u32; 8],
    shader: Shader,
    groups: [u32; 3],
    (epi, a_ty): (Epilogue<'_>, GgmlType),
) -> Result<bool> {
    let device = rec.device().clone();
    let (q_read, p) = quantize_b(rec, b, &bindings[1], p)?;
    let mut all = vec![bindings[0].clone(), q_read, bindings[2].clone()];
    let (shader, push, fused) = match fused_epilogue(&device, epi, true, (a_ty, false, spec[3]), p)? {
        Some(FusedKernel { shader, extra, push }) => {
            all.extend(extra);
            (shader, push, true)
        }
        None => (shader, bytemuck::bytes_of(&p).to_vec(), false),
    };
    let pipeline = device.pipelines().get(&device, &shader, &spec)?;
    rec.dispatch("mul_mat_vec_idot", &pipeline, &all, &push, groups)?;
    Ok(fused)
}

/// `GGVK_SHARED_REDUCTION=1` makes mat-vec use the shared-memory reduction even where subgroups exist
/// (tests cover both paths on one device this way).
pub(crate) fn device_forces_shared_reduction() -> bool {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KNOB.get_or_init(|| crate::knobs::switch("GGVK_SHARED_REDUCTION", false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_value_units_on_gpus_pairs_on_cpu_devices_unless_the_knob_says() {
        assert!(span16_of(None, false));
        assert!(!span16_of(None, true));
        assert!(span16_of(Some(true), true));
        assert!(!span16_of(Some(false), false));
    }

    #[test]
    fn generic_256_value_types_are_the_ones_without_kernels_of_their_own() {
        for ty in [GgmlType::IQ2_XXS, GgmlType::IQ3_S, GgmlType::IQ1_M, GgmlType::TQ1_0, GgmlType::TQ2_0] {
            assert!(generic_256(ty) && ty.block_size() == 256, "{ty:?}");
            assert!(matvec_shaders(ty).is_some_and(|(s, _)| s.name.starts_with("mul_mat_vec_dq")), "{ty:?}");
        }
        for ty in [GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::IQ4_XS, GgmlType::Q4_0, GgmlType::MXFP4] {
            assert!(!generic_256(ty), "{ty:?}");
        }
    }

    #[test]
    fn generic_256_value_types_take_128_threads_by_4_rows_one_unit_a_trip() {
        for ty in [GgmlType::IQ2_XXS, GgmlType::IQ1_M, GgmlType::TQ1_0] {
            assert_eq!(default_matvec_config(ty), MatVecConfig { wg: 128, rows: 4, unroll: 1 }, "{ty:?}");
        }
        assert_eq!(default_matvec_config(GgmlType::Q4_0), MatVecConfig { wg: 128, rows: 4, unroll: MATVEC_UNROLL });
        for ty in [GgmlType::Q8_0, GgmlType::IQ4_XS, GgmlType::Q4_K] {
            let cfg = MatVecConfig { wg: MATVEC_WG, rows: MATVEC_ROWS, unroll: MATVEC_UNROLL };
            assert_eq!(default_matvec_config(ty), cfg, "{ty:?}");
        }
    }

    #[test]
    fn grid_table_bytes_are_the_shared_tables_the_includes_declare() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
        let read = |p: std::path::PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        let types = [
            GgmlType::IQ1_S,
            GgmlType::IQ1_M,
            GgmlType::IQ2_XXS,
            GgmlType::IQ2_XS,
            GgmlType::IQ2_S,
            GgmlType::IQ3_XXS,
            GgmlType::IQ3_S,
        ];
        for ty in types {
            let include = read(root.join("dequant").join(format!("{}.glsl", ty.name())));
            let grid = include.lines().find_map(|l| l.strip_prefix("#include \"iq_grids/")?.strip_suffix('"'));
            let grid = read(root.join("iq_grids").join(grid.unwrap_or_else(|| panic!("{ty:?}: no grid include"))));
            let words: u32 = grid
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("shared uint ")?.split_once('[')?.1.split_once(']')?.0.parse::<u32>().ok()
                })
                .sum();
            assert!(words > 0, "{ty:?}");
            assert_eq!(dq_table_bytes(ty), 4 * words, "{ty:?}");
        }
    }

    #[test]
    fn staged_block32_needs_16_byte_rows_whole_trips_and_the_shared_memory() {
        // A 4096 x 14336 Q4_0 weight: 448 blocks of 9 16-bit words a row (8,064 bytes, 16-byte aligned).
        let p = MatMulPush { n: 1, k: 14336, a_row: 9 * 448, a_s2: 9 * 448 * 4096, ..Default::default() };
        // 128 invocations x 4 rows x 2 blocks a trip: 64 blocks (1,152 bytes) a row, 4,608 staged + 2,048 reduced.
        assert!(staged_fits(48 * 1024, 18, &p, (128, 4, 2)));
        assert!(!staged_fits(6655, 18, &p, (128, 4, 2)), "staging and reduction exceed the shared memory");
        assert!(staged_fits(6656, 18, &p, (128, 4, 2)));
        // Q8_0's 34-byte blocks stage 8,704 bytes for the same shape.
        assert!(!staged_fits(10751, 34, &p, (128, 4, 2)) && staged_fits(10752, 34, &p, (128, 4, 2)));
        assert!(!staged_fits(48 * 1024, 18, &p, (16, 4, 1)), "a trip of 4 blocks is not whole 16-byte units");
        assert!(!staged_fits(48 * 1024, 18, &MatMulPush { a_off: 9, ..p }, (128, 4, 2)), "a view one block in");
        assert!(staged_fits(48 * 1024, 18, &MatMulPush { a_off: 9 * 8, ..p }, (128, 4, 2)), "eight blocks in");
        // Rows of 14 blocks (252 bytes) leave every other row off 16-byte boundaries.
        assert!(!staged_fits(48 * 1024, 18, &MatMulPush { k: 448, a_row: 9 * 14, ..p }, (128, 4, 2)));
    }

    #[test]
    fn kquant_wide_needs_16_byte_blocks_on_both_sides() {
        // A 4096 x 4096 Q4_K weight (16 blocks of 72 16-bit words per row), Q8_K columns of 16 x 76 words.
        let p = MatMulPush { k: 4096, a_row: 72 * 16, a_s2: 72 * 16 * 4096, b_col: 76 * 16, ..Default::default() };
        let aligned = |p: &MatMulPush| a_aligned_16(p) && b_aligned_16(p);
        assert!(aligned(&p));
        assert!(aligned(&MatMulPush { a_off: 72 * 5, b_off: 76 * 3, ..p }), "whole blocks in");
        assert!(!aligned(&MatMulPush { a_off: 4, ..p }), "A view on a 32-bit word only");
        assert!(!aligned(&MatMulPush { a_s3: 72 * 16 * 4096 + 2, ..p }), "A batch stride");
        assert!(!aligned(&MatMulPush { b_off: 2, ..p }), "Q8_K blocks off 16 bytes");
        assert!(!aligned(&MatMulPush { b_col: 76 * 16 + 1, ..p }), "b column stride");
        assert!(kquant_wide_shader(GgmlType::Q5_K, &p).is_some() && kquant_wide_shader(GgmlType::Q4_K, &p).is_some());
        assert!(kquant_wide_shader(GgmlType::Q6_K, &p).is_none(), "Q6_K keeps its own kernel");
        assert!(kquant_wide_shader(GgmlType::Q4_K, &MatMulPush { a_off: 4, ..p }).is_none(), "unaligned A");
        // Q2_K: 84-byte blocks (42 16-bit words) on 32-bit words are enough; the Q8_K side must sit on 16 bytes.
        let q2 = MatMulPush { a_row: 42 * 16, a_s2: 42 * 16 * 4096, a_off: 42 * 3, ..p };
        assert_eq!(kquant_wide_shader(GgmlType::Q2_K, &q2).map(|s| s.name), Some("mul_mat_vec_q2_k_idot_wide"));
        assert!(kquant_wide_shader(GgmlType::Q2_K, &MatMulPush { b_off: 76 + 2, ..q2 }).is_none(), "Q8_K off 16");
        assert_eq!((kquant_wide_unit(GgmlType::Q2_K), kquant_wide_unit(GgmlType::Q4_K)), (64, 32));
    }
}
