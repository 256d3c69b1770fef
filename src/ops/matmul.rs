//! MUL_MAT: `dst[M, N, b2, b3] = A[K, M, a2, a3] x B[K, N, b2, b3]^T` with ggml's batch broadcast
//! (`b2 % a2 == 0`, A batch `i2 / (b2 / a2)`). A: F32, F16, Q4_0 or Q8_0 (specialised kernels), or any type with a
//! dequantization include `shaders/dequant/<type>.glsl` (generic kernels: Q4_1, Q5_0, Q5_1, BF16, ...; the mat-vec
//! of the K-quants, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS and MXFP4 runs on integer dot products where the device has
//! them, see [`block32_int_dot`] and [`kquant_int_dot`]); dst F32; B
//! F32, or F16 widened to an F32 copy first (exact; every path is then the F32 one). Up to [`MATVEC_MAX_COLS`] columns run the mat-vec kernel (token generation); more run the tiled kernel: on
//! cooperative matrices where the device has them ([`super::coopmat`]), else the scalar one.

use bytemuck::{Pod, Zeroable};

use super::q8_emit::Q8Layout;
use super::{bind, coopmat, cpy, dim_u32, spirv, split_groups, stride_units, window_limit};
use crate::error::{Error, Result};
use crate::ir::fused::{MatVecAdd, MatVecRope};
use crate::ir::Tensor;
use crate::quant::{act_rounding, ActRounding, GgmlType};
use crate::vk::{Binding, Buffer, Capabilities, Derived, Device, KeptKey, Recorder, Shader};

/// Push constants of `mul_mat_vec.comp` and `mul_mat.comp` (`MATMUL_PUSH` in `shaders/common.glsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MatMulPush {
    /// Rows of A (= dst ne0).
    pub m: u32,
    /// Columns of B (= dst ne1).
    pub n: u32,
    /// Shared dimension.
    pub k: u32,
    /// A: first element, row stride, batch strides (A's units).
    pub a_off: u32,
    /// A row stride.
    pub a_row: u32,
    /// A dim-2 stride.
    pub a_s2: u32,
    /// A dim-3 stride.
    pub a_s3: u32,
    /// B: first element, column stride, batch strides (floats).
    pub b_off: u32,
    /// B column stride.
    pub b_col: u32,
    /// B dim-2 stride.
    pub b_s2: u32,
    /// B dim-3 stride.
    pub b_s3: u32,
    /// dst: first element, column stride, batch strides (floats).
    pub d_off: u32,
    /// dst column stride.
    pub d_col: u32,
    /// dst dim-2 stride.
    pub d_s2: u32,
    /// dst dim-3 stride.
    pub d_s3: u32,
    /// B/dst batches along dim 2.
    pub ne12: u32,
    /// Broadcast ratio along dim 2 (`b2 / a2`).
    pub r2: u32,
    /// Broadcast ratio along dim 3.
    pub r3: u32,
    /// Padding to 16 bytes.
    pub pad: [u32; 2],
}

const PUSH: u32 = std::mem::size_of::<MatMulPush>() as u32;
const _: () = assert!(PUSH == 80);

const fn shader(name: &'static str, spirv: &'static [u8]) -> Shader {
    Shader { name, spirv, bindings: 3, push_size: PUSH }
}

/// The generic dequantizing kernel `kernel` (see build.rs) for weights of type `ty`, if `ty` has a dequantization
/// include. Q4_0, Q8_0, F16 and F32 have none: they take their specialised kernels.
fn dq_shader(kernel: &str, ty: GgmlType) -> Option<Shader> {
    spirv::dq_module(kernel, ty.name()).map(|(name, spirv)| shader(name, spirv))
}

/// Values per chunk of the generic kernels' rows: a row of a type with a dequantization include must hold whole
/// chunks (`dq_get4` reads 4 values; blocks are multiples of 4, BF16 "blocks" are 4 values). MXFP4's unit is a pair
/// of its 17-byte blocks (64 values on 17 16-bit words, `shaders/dequant/mxfp4.glsl`).
pub(crate) fn dq_row_multiple(ty: GgmlType) -> i64 {
    match ty {
        GgmlType::MXFP4 => 64,
        _ => ty.block_size().max(4) as i64,
    }
}

/// BF16 weights whose rows are not a multiple of 4 values: the generic kernels read 4-value chunks, so these take
/// the float kernels' `A_BF16` variants instead (one value per thread per step, like F16), which take any length.
pub(crate) fn bf16_scalar(a: &Tensor) -> bool {
    a.ty == GgmlType::BF16 && a.ne[0] % 4 != 0
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
fn matvec_shaders_for(a: &Tensor) -> Option<(Shader, Shader)> {
    if bf16_scalar(a) {
        return Some((
            shader("mul_mat_vec_bf16", spirv::MUL_MAT_VEC_BF16),
            shader("mul_mat_vec_bf16_shmem", spirv::MUL_MAT_VEC_BF16_SHMEM),
        ));
    }
    matvec_shaders(a.ty)
}

/// Mat-vec shaders: (subgroup reduction, shared-memory reduction) per weight type.
fn matvec_shaders(ty: GgmlType) -> Option<(Shader, Shader)> {
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
fn kquant_matvec_shaders(ty: GgmlType, p: &MatMulPush) -> Option<(Shader, Shader)> {
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

/// Quantize b onto the Q8_K grid into this submission's scratch (`quantize_q8_k.comp`, one workgroup per 256
/// values); returns the read-only binding of the copy and the push constants redirected to it (76 words per block).
pub(crate) fn quantize_b_q8k(
    rec: &mut Recorder<'_>,
    b: &Tensor,
    b_bind: &Binding,
    p: MatMulPush,
) -> Result<(Binding, MatMulPush)> {
    if p.k % 256 != 0 {
        return Err(Error::Internal(format!("MUL_MAT: k = {} is not a multiple of 256 for Q8_K", p.k)));
    }
    let nblocks = p.k / 256;
    let col_words = dim_u32("quantized column", i64::from(nblocks) * Q8K_WORDS as i64)?;
    derive_b(rec, b, b_bind, p, (&QUANTIZE_Q8K, QUANTIZE_Q8K.name, 0), (nblocks, 64), col_words)
}

/// The integer-dot K-quant mat-vec kernels (`mul_mat_vec_k.comp` with `INT_DOT`: b quantized onto the CPU
/// backend's Q8_K grid by `quantize_q8_k.comp`, sub-block products exact in int32) when they apply: Q4_K, Q5_K or
/// Q6_K weights whose dedicated kernel applies (Q4_K/Q5_K blocks on 32-bit words), up to [`MATVEC_MAX_COLS`]
/// columns, a device with integer dot products, `GGVK_INT_DOT` not 0 and `GGVK_KQUANT_MATVEC` not 0.
fn kquant_int_dot_shaders(device: &Device, a: &Tensor, b: &Tensor) -> Option<(Shader, Shader)> {
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
fn kquant_wide_unit(ty: GgmlType) -> u32 {
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

fn matmul_shader(ty: GgmlType) -> Option<Shader> {
    Some(match ty {
        GgmlType::F32 => shader("mul_mat_f32", spirv::MUL_MAT_F32),
        GgmlType::F16 => shader("mul_mat_f16", spirv::MUL_MAT_F16),
        GgmlType::Q4_0 => shader("mul_mat_q4_0", spirv::MUL_MAT_Q4_0),
        GgmlType::Q8_0 => shader("mul_mat_q8_0", spirv::MUL_MAT_Q8_0),
        _ => return dq_shader("mul_mat_dq", ty),
    })
}

/// Mat-vec workgroup size (a power of two, at least 4), rows of A per workgroup, blocks per loop trip, for
/// weights of type `ty`.
///
/// Defaults per weight type come from sweeps (NOTES.md): Q4_0 128 threads (14.98 us against 18.27 us at 256 threads
/// for m=4096 k=14336 on an H100) x 4 rows (a 7B Q4_0 model generating on an H200, weights streaming from memory:
/// 241.6 t/s against 226.0 with 2 rows), the others 256 x 2. `GGVK_MATVEC_WG`, `GGVK_MATVEC_ROWS` and
/// `GGVK_MATVEC_UNROLL` override them for every type (read once per process; invalid values are ignored).
pub fn matvec_config(ty: GgmlType) -> MatVecConfig {
    let knobs = matvec_knobs();
    let (wg, rows) = if ty == GgmlType::Q4_0 { (128, 4) } else { (MATVEC_WG, MATVEC_ROWS) };
    MatVecConfig {
        wg: knobs[0].unwrap_or(wg),
        rows: knobs[1].unwrap_or(rows),
        unroll: knobs[2].unwrap_or(MATVEC_UNROLL),
    }
}

/// Mat-vec shape of the integer-dot K-quant kernels: 256 threads x 4 rows, one unit per thread per trip (an H200
/// sweep of m=4096 k=14336: q4_K 24.9 us against 28.6 us with the default 256 x 2 x 2, q5_K 30.0 against 42.0,
/// q6_K level; NOTES.md). The `GGVK_MATVEC_*` knobs override it as they do [`matvec_config`].
pub(crate) fn kquant_idot_config() -> MatVecConfig {
    let knobs = matvec_knobs();
    MatVecConfig { wg: knobs[0].unwrap_or(256), rows: knobs[1].unwrap_or(4), unroll: knobs[2].unwrap_or(1) }
}

/// `GGVK_MATVEC_WG`, `GGVK_MATVEC_ROWS`, `GGVK_MATVEC_UNROLL` (read once per process; [`crate::knobs`]).
fn matvec_knobs() -> &'static [Option<u32>; 3] {
    static KNOBS: std::sync::OnceLock<[Option<u32>; 3]> = std::sync::OnceLock::new();
    KNOBS.get_or_init(|| {
        // Ranges checked by knobs (a power of two 4..=1024, 1..=8, 1..=8).
        let env = |name: &'static str| crate::knobs::number(name).and_then(|v| u32::try_from(v).ok());
        [env("GGVK_MATVEC_WG"), env("GGVK_MATVEC_ROWS"), env("GGVK_MATVEC_UNROLL")]
    })
}

/// The workgroup size of a mat-vec over rows of `k` values of `ty` with `cols` columns, from `cfg` and the device:
/// short rows need fewer threads (a thread takes 1 value per trip for float weights, 4 x unroll for bf16, 8 x unroll
/// for blocks; idle invocations cost real time on CPU-like devices such as lavapipe); threads 0..rows*cols write
/// the results, and shared memory holds rows * cols * wg partial sums.
pub(crate) fn matvec_workgroup(caps: &Capabilities, ty: GgmlType, cfg: MatVecConfig, k: u32, cols: u32) -> u32 {
    let MatVecConfig { wg, rows, unroll } = cfg;
    let per_thread = match ty {
        GgmlType::F32 | GgmlType::F16 => 1,
        GgmlType::BF16 => 4 * unroll,
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

/// Shared memory the dequantization include of `ty` takes for its grid table (`shaders/iq_grids/`), or the
/// integer-dot mat-vec kernels for its 16-entry level table (IQ4_NL, IQ4_XS, MXFP4).
pub(crate) fn dq_table_bytes(ty: GgmlType) -> u32 {
    match ty {
        GgmlType::IQ4_NL | GgmlType::IQ4_XS | GgmlType::MXFP4 => 64,
        GgmlType::IQ1_S | GgmlType::IQ1_M => 4096,
        GgmlType::IQ2_S | GgmlType::IQ3_S => 2048,
        GgmlType::IQ2_XS | GgmlType::IQ3_XXS => 1024,
        GgmlType::IQ2_XXS => 512,
        _ => 0,
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
/// Output tile of the tiled kernel.
const TILE: u32 = 64;

/// Whether ggvk supports this multiplication (independent of device limits).
pub fn check(a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<()> {
    if matvec_shaders(a.ty).is_none() || matmul_shader(a.ty).is_none() {
        return Err(Error::unsupported(format!("MUL_MAT with {} weights", a.ty.name())));
    }
    let generic = !matches!(a.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::Q4_0 | GgmlType::Q8_0);
    if generic && !bf16_scalar(a) && a.ne[0] % dq_row_multiple(a.ty) != 0 {
        return Err(Error::unsupported(format!(
            "MUL_MAT with {} weights needs rows of a multiple of {} values, got {}",
            a.ty.name(),
            dq_row_multiple(a.ty),
            a.ne[0]
        )));
    }
    if !matches!(b.ty, GgmlType::F32 | GgmlType::F16) || dst.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!(
            "MUL_MAT needs F32 or F16 src1 and F32 dst, got {} and {}",
            b.ty.name(),
            dst.ty.name()
        )));
    }
    if !a.is_row_packed() || !b.is_row_packed() || !dst.is_row_packed() {
        return Err(Error::unsupported("MUL_MAT with non-contiguous rows (nb[0] != element size)"));
    }
    if a.ne[0] != b.ne[0] {
        return Err(Error::invalid(format!("MUL_MAT: src0 ne[0] = {} but src1 ne[0] = {}", a.ne[0], b.ne[0])));
    }
    let want = [a.ne[1], b.ne[1], b.ne[2], b.ne[3]];
    if dst.ne != want {
        return Err(Error::invalid(format!("MUL_MAT: dst shape {:?}, expected {want:?}", dst.ne)));
    }
    for d in 2..4 {
        if a.ne[d] == 0 || b.ne[d] % a.ne[d] != 0 {
            return Err(Error::invalid(format!(
                "MUL_MAT: src1 ne[{d}] = {} is not a multiple of src0 ne[{d}] = {}",
                b.ne[d], a.ne[d]
            )));
        }
    }
    Ok(())
}

/// How a product too large for one storage window per tensor is cut: rows of A (= rows of dst) per piece and
/// columns of B (= columns of dst) per piece. `None` when every tensor fits as it is.
fn split_plan(device: &Device, a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<Option<(i64, i64)>> {
    let limit = window_limit(device);
    if [a, b, dst].iter().all(|t| t.nbytes() <= limit) {
        return Ok(None);
    }
    let too_big = || {
        Error::unsupported(format!(
            "MUL_MAT: tensors larger than this device's maxStorageBufferRange ({} bytes) can only be split for \
             2-D products with rows that fit (src0 {a:?}, src1 {b:?})",
            device.caps().max_storage_buffer_range
        ))
    };
    if a.ne[2] != 1 || a.ne[3] != 1 || b.ne[2] != 1 || b.ne[3] != 1 {
        return Err(too_big());
    }
    let (m, n) = (a.ne[1], b.ne[1]);
    let a_row = a.nbytes() / m.max(1) as u64;
    // Rows of A per piece: as many as fit, a multiple of the tile when there are that many.
    let mut rows = (limit / a.nb[1].max(a_row)) as i64;
    if rows >= i64::from(TILE) {
        rows -= rows % i64::from(TILE);
    }
    let rows = rows.min(m);
    // Columns per piece: B's columns and dst's columns (of `rows` floats) must fit too.
    let fit = |stride: u64, first: u64| if first > limit { 0 } else { ((limit - first) / stride.max(1)) as i64 + 1 };
    let cols = fit(b.nb[1], b.ne[0] as u64 * 4).min(fit(dst.nb[1], rows as u64 * 4)).min(n);
    if rows < 1 || cols < 1 {
        return Err(too_big());
    }
    Ok(Some((rows, cols)))
}

/// Whether the multiplication runs on `device`: [`check`] plus the storage-window limits (products whose
/// tensors exceed one window are cut into pieces that fit, see [`split_plan`]).
pub fn check_on(device: &Device, a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<()> {
    check(a, b, dst)?;
    cpy::check_f32_operand(device, "MUL_MAT", b)?;
    split_plan(device, a, &cpy::widened_view(b), dst).map(|_| ())
}

/// Record the multiplication (in pieces, when a tensor is larger than one storage window). An F16 src1 is first
/// widened to an F32 copy ([`cpy::f32_operand`]; the kernels read f32 activations), so the weight types' paths and
/// numerics are those of F32 src1 (its values are exact in f32).
pub fn record(rec: &mut Recorder<'_>, a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<()> {
    check(a, b, dst)?;
    let b = &cpy::f32_operand(rec, b)?;
    let device = rec.device().clone();
    let Some((rows, cols)) = split_plan(&device, a, b, dst)? else {
        return record_piece(rec, a, b, dst, Epilogue::None).map(|_| ());
    };
    let (m, n) = (a.ne[1], b.ne[1]);
    for r0 in (0..m).step_by(rows as usize) {
        let nr = rows.min(m - r0);
        let a_piece = Tensor::new(a.buffer.clone(), a.offset + r0 as u64 * a.nb[1], a.ty, [a.ne[0], nr, 1, 1], a.nb)?;
        for c0 in (0..n).step_by(cols as usize) {
            let nc = cols.min(n - c0);
            let b_piece =
                Tensor::new(b.buffer.clone(), b.offset + c0 as u64 * b.nb[1], b.ty, [b.ne[0], nc, 1, 1], b.nb)?;
            let d_off = dst.offset + r0 as u64 * dst.nb[0] + c0 as u64 * dst.nb[1];
            let d_piece = Tensor::new(dst.buffer.clone(), d_off, dst.ty, [nr, nc, 1, 1], dst.nb)?;
            record_piece(rec, &a_piece, &b_piece, &d_piece, Epilogue::None)?;
        }
    }
    Ok(())
}

/// Record the product of `f` and, where a fused kernel takes it (one column, one batch, the integer-dot mat-vec
/// kernels with subgroup reductions, every tensor in one storage window), the ADD that follows it in the same
/// dispatch. Returns whether the ADD was recorded; if not, the caller records it as its own node.
pub fn record_with_add(rec: &mut Recorder<'_>, f: &MatVecAdd<'_>) -> Result<bool> {
    record_fused(rec, f.mm, Epilogue::Add(f), &[f.addend, f.out])
}

/// Record the product of `mm` and, where a mat-vec kernel takes `epi` in the same dispatch (every tensor, the
/// product's and the epilogue's `outside` ones, in one storage window), `epi` with it. Returns whether it did; if
/// not, the product alone is recorded and the caller records the rest.
fn record_fused(rec: &mut Recorder<'_>, mm: &crate::ir::Node, epi: Epilogue<'_>, outside: &[&Tensor]) -> Result<bool> {
    let (a, b) = (mm.src(0)?, mm.src(1)?);
    let dst = &mm.dst;
    check(a, b, dst)?;
    let b = &cpy::f32_operand(rec, b)?;
    let device = rec.device().clone();
    if split_plan(&device, a, b, dst)?.is_some() || outside.iter().any(|t| t.nbytes() > window_limit(&device)) {
        return record(rec, a, b, dst).map(|_| false);
    }
    record_piece(rec, a, b, dst, epi)
}

/// The mat-vec kernel that also writes the following ADD (`FUSE_ADD`), for weights of type `ty` on the
/// integer-dot paths.
fn fused_add_shader(ty: GgmlType, wide: bool) -> Option<Shader> {
    let (name, spirv) = match ty {
        GgmlType::Q4_K if wide => ("mul_mat_vec_q4_k_idot_wide_add", spirv::MUL_MAT_VEC_Q4_K_IDOT_WIDE_ADD),
        GgmlType::Q5_K if wide => ("mul_mat_vec_q5_k_idot_wide_add", spirv::MUL_MAT_VEC_Q5_K_IDOT_WIDE_ADD),
        GgmlType::Q4_0 => ("mul_mat_vec_q4_0_idot_add", spirv::MUL_MAT_VEC_Q4_0_IDOT_ADD),
        GgmlType::Q8_0 => ("mul_mat_vec_q8_0_idot_add", spirv::MUL_MAT_VEC_Q8_0_IDOT_ADD),
        GgmlType::Q4_K => ("mul_mat_vec_q4_k_idot_add", spirv::MUL_MAT_VEC_Q4_K_IDOT_ADD),
        GgmlType::Q5_K => ("mul_mat_vec_q5_k_idot_add", spirv::MUL_MAT_VEC_Q5_K_IDOT_ADD),
        GgmlType::Q6_K => ("mul_mat_vec_q6_k_idot_add", spirv::MUL_MAT_VEC_Q6_K_IDOT_ADD),
        _ => return None,
    };
    Some(Shader { name, spirv, bindings: 5, push_size: PUSH })
}

/// What a one-column mat-vec kernel also does with its rows in the same dispatch.
#[derive(Clone, Copy)]
pub(crate) enum Epilogue<'a> {
    /// Nothing: the product only.
    None,
    /// The ADD that follows ([`fused_add_shader`]).
    Add(&'a MatVecAdd<'a>),
    /// The rope and cache writes that follow ([`super::matvec_rope`]).
    Rope(&'a MatVecRope<'a>),
}

/// A mat-vec kernel with an epilogue: its shader, the bindings after the product's three, its push constants.
pub(crate) struct FusedKernel {
    pub shader: Shader,
    pub extra: Vec<Binding>,
    pub push: Vec<u8>,
}

/// The shader, the extra bindings and the push constants of a mat-vec kernel (weights of type `ty`, the 16-byte
/// K-quant kernel if `wide`, `rows` rows per workgroup) that also does `epi`, when `fuse` holds (one column of
/// one batch, subgroup reductions) and a fused kernel exists for it.
fn fused_epilogue(
    device: &Device,
    epi: Epilogue<'_>,
    fuse: bool,
    (ty, wide, rows): (GgmlType, bool, u32),
    mut p: MatMulPush,
) -> Result<Option<FusedKernel>> {
    if !fuse {
        return Ok(None);
    }
    match epi {
        Epilogue::None => Ok(None),
        Epilogue::Add(add) => {
            let Some(shader) = fused_add_shader(ty, wide) else { return Ok(None) };
            // The addend's and the sum's first elements go in `pad`.
            let (r_bind, r_off) = bind(device, add.addend, 4, false)?;
            let (o_bind, o_off) = bind(device, add.out, 4, true)?;
            p.pad = [r_off, o_off];
            Ok(Some(FusedKernel { shader, extra: vec![r_bind, o_bind], push: bytemuck::bytes_of(&p).to_vec() }))
        }
        Epilogue::Rope(f) => super::matvec_rope::prepare(device, f, (ty, wide, rows), p),
    }
}

/// Record the product of `f` and, where the mat-vec kernel takes them (see [`super::matvec_rope`]), its rope and
/// cache writes in the same dispatch. Returns whether it did; if not, only the product is recorded and the caller
/// records the rest.
pub fn record_with_rope(rec: &mut Recorder<'_>, f: &MatVecRope<'_>) -> Result<bool> {
    let rope_out = f.rope.map(|r| &r.dst);
    let cache = f.cache.map(|c| c.cache);
    let outside: Vec<&Tensor> = rope_out.into_iter().chain(cache).collect();
    record_fused(rec, f.mm, Epilogue::Rope(f), &outside)
}

/// Record a multiplication whose tensors each fit one storage window, and the ADD of `add` with it where a fused
/// kernel applies (returns whether it did).
fn record_piece(rec: &mut Recorder<'_>, a: &Tensor, b: &Tensor, dst: &Tensor, epi: Epilogue<'_>) -> Result<bool> {
    let device = rec.device().clone();
    let caps = device.caps();
    let a_unit = if a.ty == GgmlType::F32 { 4 } else { 2 };
    let (a_bind, a_off) = bind(&device, a, a_unit, false)?;
    let (b_bind, b_off) = bind(&device, b, 4, false)?;
    let (d_bind, d_off) = bind(&device, dst, 4, true)?;
    let p = MatMulPush {
        m: dim_u32("M", a.ne[1])?,
        n: dim_u32("N", b.ne[1])?,
        k: dim_u32("K", a.ne[0])?,
        a_off,
        a_row: stride_units("src0 row", a.nb[1], a_unit)?,
        a_s2: stride_units("src0 dim-2", a.nb[2], a_unit)?,
        a_s3: stride_units("src0 dim-3", a.nb[3], a_unit)?,
        b_off,
        b_col: stride_units("src1 column", b.nb[1], 4)?,
        b_s2: stride_units("src1 dim-2", b.nb[2], 4)?,
        b_s3: stride_units("src1 dim-3", b.nb[3], 4)?,
        d_off,
        d_col: stride_units("dst column", dst.nb[1], 4)?,
        d_s2: stride_units("dst dim-2", dst.nb[2], 4)?,
        d_s3: stride_units("dst dim-3", dst.nb[3], 4)?,
        ne12: dim_u32("src1 ne[2]", b.ne[2])?,
        r2: dim_u32("broadcast", b.ne[2] / a.ne[2])?,
        r3: dim_u32("broadcast", b.ne[3] / a.ne[3])?,
        pad: [0; 2],
    };
    let batches = dim_u32("batches", b.ne[2] * b.ne[3])?;
    let use_sg = caps.subgroup_arithmetic && !device_forces_shared_reduction();
    let fuse = use_sg && p.n == 1 && batches == 1;
    // K-quant mat-vec on integer dot products: b quantized onto the CPU backend's Q8_K grid.
    if p.n <= MATVEC_MAX_COLS {
        if let Some((sg, shmem)) = kquant_int_dot_shaders(&device, a, b) {
            let cfg = kquant_idot_config();
            let wg = matvec_workgroup(caps, a.ty, cfg, p.k, p.n);
            let (gx, gy) = split_groups(u64::from(p.m.div_ceil(cfg.rows)), caps.max_workgroup_count[0])?;
            let (q_read, p) = quantize_b_q8k(rec, b, &b_bind, p)?;
            let wide_sg = kquant_wide_shader(a.ty, &p).filter(|_| use_sg);
            let wide = wide_sg.is_some();
            let sg = wide_sg.unwrap_or(sg);
            // The wide kernel's thread takes 32 (Q2_K: 64) values per trip: short rows take fewer threads.
            let wg = match wide {
                true => wg
                    .min((p.k / kquant_wide_unit(a.ty)).next_power_of_two().max(caps.subgroup_size.max(16)))
                    .max((cfg.rows * p.n).next_power_of_two()),
                false => wg,
            };
            let spec = [wg, 1, 1, cfg.rows, 0, cfg.unroll, p.n];
            let mut bindings = vec![a_bind, q_read, d_bind];
            let (shader, push, fused) = match fused_epilogue(&device, epi, fuse, (a.ty, wide, cfg.rows), p)? {
                Some(FusedKernel { shader, extra, push }) => {
                    bindings.extend(extra);
                    (shader, push, true)
                }
                None => (if use_sg { sg } else { shmem }, bytemuck::bytes_of(&p).to_vec(), false),
            };
            let pipeline = device.pipelines().get(&device, &shader, &spec)?;
            rec.dispatch("mul_mat_vec_idot", &pipeline, &bindings, &push, [gx, gy, batches])?;
            return Ok(fused);
        }
    }
    let int_dot = if p.n <= MATVEC_MAX_COLS { int_dot_shaders(&device, a, b) } else { None };
    let int_dot = int_dot.map(|pair| words32_idot_shaders(a.ty, &p).unwrap_or(pair));
    // F16 / BF16 rows on 16-byte boundaries: eight values per thread per step (a thread took one before).
    let wide = p.n <= MATVEC_MAX_COLS && wide16(a, &p);
    // Generic weight types read b through a copy rounded onto the CPU backend's grid for them (the integer-dot
    // kernels quantize it onto that grid themselves, the wide BF16 kernel rounds it as it reads it).
    let (bindings, p) = match rounds_activations(a).filter(|_| int_dot.is_none() && !wide) {
        Some(r) => {
            let (rounded, p) = round_b(rec, b, &b_bind, p, r)?;
            ([a_bind, rounded, d_bind], p)
        }
        None => ([a_bind, b_bind, d_bind], p),
    };
    let push = bytemuck::bytes_of(&p);
    if p.n <= MATVEC_MAX_COLS {
        let cfg = if int_dot.is_some() && block32_int_dot(a) { block32_idot_config() } else { matvec_config(a.ty) };
        let (rows, unroll) = (cfg.rows, cfg.unroll);
        let wg = matvec_workgroup(caps, matvec_kernel_type(a), cfg, p.k, p.n);
        let (gx, gy) = split_groups(u64::from(p.m.div_ceil(rows)), caps.max_workgroup_count[0])?;
        if let Some((sg, shmem)) = int_dot {
            return record_int_dot(
                rec,
                b,
                &bindings,
                p,
                [wg, 1, 1, rows, 1, unroll, p.n],
                if use_sg { sg } else { shmem },
                [gx, gy, batches],
                (if fuse { epi } else { Epilogue::None }, a.ty),
            );
        }
        let vec4 = (p.b_off % 4 == 0 && p.b_col % 4 == 0 && p.b_s2 % 4 == 0 && p.b_s3 % 4 == 0) as u32;
        let wg = match wide {
            true => wg
                .min((p.k / 8).next_power_of_two().max(caps.subgroup_size.max(16)))
                .max((rows * p.n).next_power_of_two()),
            false => wg,
        };
        // F16 / F32 weights take the rope epilogue too (`mul_mat_vec.comp`'s float path), unless the rope writes over
        // the activations, which this kernel reads as they are while its rows are rotated (the integer-dot kernels
        // read an 8-bit copy made before them).
        let rope_over_b = match epi {
            Epilogue::Rope(f) => f.rope.is_some_and(|r| crate::ir::fused::overlaps(&r.dst, b)),
            _ => true,
        };
        if matches!(a.ty, GgmlType::F16 | GgmlType::F32) && !rope_over_b {
            if let Some(FusedKernel { shader, extra, push }) =
                fused_epilogue(&device, epi, fuse, (a.ty, wide, rows), p)?
            {
                let pipeline = device.pipelines().get(&device, &shader, &[wg, 1, 1, rows, vec4, unroll, p.n])?;
                let all: Vec<Binding> = bindings.iter().cloned().chain(extra).collect();
                rec.dispatch("mul_mat_vec", &pipeline, &all, &push, [gx, gy, batches])?;
                return Ok(true);
            }
        }
        let (sg, shmem) = match (wide, a.ty) {
            (true, GgmlType::BF16) => (
                shader("mul_mat_vec_bf16_wide", spirv::MUL_MAT_VEC_BF16_WIDE),
                shader("mul_mat_vec_bf16_wide_shmem", spirv::MUL_MAT_VEC_BF16_WIDE_SHMEM),
            ),
            (true, _) => (
                shader("mul_mat_vec_f16_wide", spirv::MUL_MAT_VEC_F16_WIDE),
                shader("mul_mat_vec_f16_wide_shmem", spirv::MUL_MAT_VEC_F16_WIDE_SHMEM),
            ),
            (false, _) => kquant_matvec_shaders(a.ty, &p).or_else(|| matvec_shaders_for(a)).expect("checked"),
        };
        let mut spec = vec![wg, 1, 1, rows, vec4, unroll, p.n];
        if wide {
            // The wide BF16 kernel rounds the activations itself where they are rounded (F16's always are).
            spec.push(u32::from(a.ty == GgmlType::F16 || rounds_activations(a).is_some()));
        }
        let pipeline = device.pipelines().get(&device, if use_sg { &sg } else { &shmem }, &spec)?;
        rec.dispatch("mul_mat_vec", &pipeline, &bindings, push, [gx, gy, batches]).map(|_| false)
    } else {
        // Weights dequantized to f16 first where the f16 kernel more than pays for the copy.
        if let Some(bytes) = dequant_first_bytes(&device, a, p.n) {
            let a16 = match kept_f16(rec, a, &bindings[0], &p, bytes)? {
                Some(kept) => kept,
                None => dequant_f16(rec, a, &bindings[0], &p, bytes)?,
            };
            return record_piece(rec, &a16, b, dst, epi);
        }
        let q8_b = quantizes_activations(a);
        // The cooperative-matrix kernels read whole 4-value chunks: not for [`bf16_scalar`] weights.
        let plan = if bf16_scalar(a) { None } else { coopmat::plan_on(&device, a.ty, q8_b, p.n) };
        if let Some(plan) = plan {
            // Activations as the kernel reads them: 8-bit blocks (Q4_0 / Q8_0), else f16 (made once per submission).
            let (b_read, p) = if plan.1.b_q8 {
                quantize_b(rec, b, &bindings[1], p)?
            } else {
                narrow_b(rec, b, &bindings[1], p, rounds_activations(a))?
            };
            let bindings = [bindings[0].clone(), b_read, bindings[2].clone()];
            return coopmat::record(rec, plan, &bindings, &p, (batches, a.ty)).map(|_| false);
        }
        let groups = [p.m.div_ceil(TILE), p.n.div_ceil(TILE), batches];
        if q8_b {
            let shader = match a.ty {
                GgmlType::Q4_0 => shader("mul_mat_q4_0_bq8", spirv::MUL_MAT_Q4_0_BQ8),
                _ => shader("mul_mat_q8_0_bq8", spirv::MUL_MAT_Q8_0_BQ8),
            };
            let (q_read, p) = quantize_b(rec, b, &bindings[1], p)?;
            let pipeline = device.pipelines().get(&device, &shader, &[])?;
            let bindings = [bindings[0].clone(), q_read, bindings[2].clone()];
            return rec.dispatch("mul_mat_bq8", &pipeline, &bindings, bytemuck::bytes_of(&p), groups).map(|_| false);
        }
        let shader = if bf16_scalar(a) {
            shader("mul_mat_bf16", spirv::MUL_MAT_BF16)
        } else {
            matmul_shader(a.ty).expect("checked")
        };
        let pipeline = device.pipelines().get(&device, &shader, &[])?;
        rec.dispatch("mul_mat", &pipeline, &bindings, push, groups).map(|_| false)
    }
}

/// Words of one quantized 32-value block of x: d, sum(q), 8 words of packed q.
pub(crate) const QX_WORDS: u64 = 10;

/// Push constants of `quantize_q8_1.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct QuantizePush {
    nblocks: u32,
    ncols: u32,
    ne11: u32,
    ne12: u32,
    b_off: u32,
    b_col: u32,
    b_s2: u32,
    b_s3: u32,
    q_off: u32,
    pad: [u32; 3],
}

const QUANTIZE: Shader = Shader {
    name: "quantize_q8_1",
    spirv: spirv::QUANTIZE_Q8_1,
    bindings: 2,
    push_size: std::mem::size_of::<QuantizePush>() as u32,
};

/// Words of one Q8_K block of x (`quantize_q8_k.comp`): d, eight sub-block code sums, 3 words of padding, 64 words
/// of codes.
pub(crate) const Q8K_WORDS: u64 = 76;

const QUANTIZE_Q8K: Shader = Shader {
    name: "quantize_q8_k",
    spirv: spirv::QUANTIZE_Q8_K,
    bindings: 2,
    push_size: std::mem::size_of::<QuantizePush>() as u32,
};

/// `GGVK_INT_DOT=0` keeps activations in f32 for every weight type (read once per process).
fn int_dot_on() -> bool {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KNOB.get_or_init(|| crate::knobs::switch("GGVK_INT_DOT", true))
}

/// Whether `a x b` rounds b to 8 bits per 32-value block first, as ggml's CPU backend does for Q4_0 and Q8_0
/// weights (its `vec_dot_type` is Q8_0): on by default for those weight types so results track the CPU
/// backend's; `GGVK_INT_DOT=0` keeps b in f32 (read once per process).
pub fn quantizes_activations(a: &Tensor) -> bool {
    int_dot_on() && matches!(a.ty, GgmlType::Q4_0 | GgmlType::Q8_0)
}

/// The integer-dot mat-vec kernels (subgroup, shared-memory reduction) when they apply: activations quantized
/// (see [`quantizes_activations`]), up to [`MATVEC_MAX_COLS`] columns, a device with integer dot products.
fn int_dot_shaders(device: &Device, a: &Tensor, b: &Tensor) -> Option<(Shader, Shader)> {
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
fn words32_idot_shaders(ty: GgmlType, p: &MatMulPush) -> Option<(Shader, Shader)> {
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
/// bytes), overridden by the `GGVK_MATVEC_*` knobs as [`matvec_config`] is.
pub(crate) fn block32_idot_config() -> MatVecConfig {
    matvec_config(GgmlType::Q4_0)
}

/// Whether `a x b` on `device` rounds b (x) to 8 bits per block first (on the integer-dot mat-vec path, or
/// in the tiled kernel when [`quantizes_activations`]).
pub fn uses_int_dot(device: &Device, a: &Tensor, b: &Tensor) -> bool {
    int_dot_shaders(device, a, b).is_some()
        || kquant_int_dot_shaders(device, a, b).is_some()
        || tiled_reads_q8(device, a, b)
}

/// Whether the product of more than [`MATVEC_MAX_COLS`] columns reads b as 8-bit blocks: the Q4_0 / Q8_0 tiled
/// kernels and the 8-bit cooperative-matrix kernel do; weights dequantized to f16 first ([`dequant_first_bytes`])
/// and the f16 cooperative-matrix kernels read f16 activations.
fn tiled_reads_q8(device: &Device, a: &Tensor, b: &Tensor) -> bool {
    let n = u32::try_from(b.ne[1]).unwrap_or(u32::MAX);
    if !quantizes_activations(a) || n <= MATVEC_MAX_COLS || dequant_first_bytes(device, a, n).is_some() {
        return false;
    }
    let plan = if bf16_scalar(a) { None } else { coopmat::plan_on(device, a.ty, true, n) };
    plan.is_none_or(|(_, tile)| tile.b_q8)
}

/// The quantized copy of b that recording `a x b` on `device` looks up (as derived data) before quantizing b
/// itself, when it quantizes b at all: the Q8_K blocks of the integer-dot K-quant mat-vec, or the 32-value
/// blocks of the Q4_0 / Q8_0 products. None where the product is cut into pieces (each piece quantizes its own
/// columns) or reads b in f32. A producer of b may write the copy instead ([`super::q8_emit`]).
pub fn quantized_b_layout(device: &Device, a: &Tensor, b: &Tensor, dst: &Tensor) -> Option<Q8Layout> {
    if check(a, b, dst).is_err() || !matches!(split_plan(device, a, b, dst), Ok(None)) {
        return None;
    }
    if kquant_int_dot_shaders(device, a, b).is_some() {
        return Some(Q8Layout::Q8k);
    }
    (tiled_reads_q8(device, a, b) || int_dot_shaders(device, a, b).is_some()).then_some(Q8Layout::Qx)
}

/// The grid b's values are on when `a x b` multiplies them on `device`: the CPU backend's Q8_K for the integer-dot
/// K-quant mat-vec, Q8_0's for the integer-dot mat-vec of the other 32-value block types ([`block32_int_dot`]),
/// [`rounds_activations`] otherwise (None: f32 as given; Q4_0/Q8_0's 8-bit blocks are not a grid of this kind, see
/// [`quantizes_activations`]).
pub fn activation_grid(device: &Device, a: &Tensor, b: &Tensor) -> Option<ActRounding> {
    if kquant_int_dot_shaders(device, a, b).is_some() {
        Some(ActRounding::Q8K)
    } else if block32_int_dot(a) && int_dot_shaders(device, a, b).is_some() {
        Some(ActRounding::Q8_0)
    } else {
        rounds_activations(a)
    }
}

/// Bytes of one column of b's derived copy for weights `a`: quantized to 8-bit blocks (`quantized`), rounded onto
/// the CPU's grid as f32, or none (0).
pub(crate) fn derived_column_bytes(a: &Tensor, b: &Tensor, quantized: bool) -> u64 {
    let k = b.ne[0].max(0) as u64;
    use GgmlType::{IQ4_XS, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K};
    if quantized && matches!(a.ty, Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | IQ4_XS) {
        (k / 256) * Q8K_WORDS * 4
    } else if quantized {
        (k / 32) * QX_WORDS * 4
    } else if rounds_activations(a).is_some() {
        k * 4
    } else {
        0
    }
}

/// Scratch bytes a multiplication needs on `device` (b quantized to 8 bits per block, or b rounded onto the CPU's
/// grid as f32; the f16 copy of the weights where [`dequant_first_bytes`] takes them).
pub fn scratch_bytes(device: &Device, a: &Tensor, b: &Tensor, dst: &Tensor) -> u64 {
    // An F16 b is widened to F32 first; the rest sizes what is derived from that copy.
    let widened = cpy::widened_bytes(device, b);
    let b = &cpy::widened_view(b);
    let n = u32::try_from(b.ne[1]).unwrap_or(u32::MAX);
    let align = device.caps().min_storage_offset_alignment.max(256);
    let col_pieces = match split_plan(device, a, b, dst) {
        Ok(Some((_, piece_cols))) => (b.ne[1] as u64).div_ceil(piece_cols as u64),
        _ => 1,
    };
    // Every piece of columns dequantizes its rows again (pieces of rows together: the whole of A).
    let dequant = dequant_first_bytes(device, a, n);
    let dequant_bytes = dequant.map_or(0, |d| (d.div_ceil(align) + 1) * align * col_pieces);
    let derived = derived_column_bytes(a, b, uses_int_dot(device, a, b));
    // The cooperative-matrix kernels read f16 activations (unless they read 8-bit blocks): a packed f16 copy.
    let reads_f16 = match dequant {
        Some(_) => coopmat::plan_on(device, GgmlType::F16, false, n).is_some(),
        None => coopmat::reads_f16_b(device, a, b),
    };
    let narrowed = if reads_f16 { (b.ne[0].max(0) as u64).div_ceil(2) * 4 } else { 0 };
    let regions = u64::from(derived > 0) + u64::from(narrowed > 0);
    if regions == 0 {
        return widened + dequant_bytes;
    }
    let cols = (b.ne[1] * b.ne[2] * b.ne[3]).max(0) as u64;
    // Cut into pieces: each piece of columns takes its own aligned regions (pieces of rows reuse them).
    widened + dequant_bytes + (derived + narrowed) * cols + col_pieces * align * regions
}

/// Push constants of `dequant_f16.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct DequantPush {
    m: u32,
    k: u32,
    a_off: u32,
    a_row: u32,
    d_off: u32,
    chunks: u32,
    pad: [u32; 2],
}

/// Prompt products of at least this many columns dequantize their weights to f16 first (by default; see
/// [`dequant_first_bytes`]).
pub(crate) const DEQUANT_MIN_COLS: u32 = 256;

/// The largest f16 copy of weights a product makes (a 7B model's largest weight takes 90 MB).
const DEQUANT_MAX_BYTES: u64 = 256 << 20;

/// The kernel that dequantizes weights of type `ty` to packed f16 rows (`dequant_f16.comp`).
fn dequant_shader(ty: GgmlType) -> Option<Shader> {
    let (name, spirv): (&'static str, &'static [u8]) = match ty {
        GgmlType::Q4_0 => ("dequant_f16_q4_0", spirv::DEQUANT_F16_Q4_0),
        GgmlType::Q8_0 => ("dequant_f16_q8_0", spirv::DEQUANT_F16_Q8_0),
        // BF16's range is f32's: it keeps its own kernels.
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => return None,
        ty => spirv::dq_module("dequant_f16_dq", ty.name())?,
    };
    Some(Shader { name, spirv, bindings: 2, push_size: std::mem::size_of::<DequantPush>() as u32 })
}

/// Bytes of the f16 copy of the weights `a` that a product with `n` columns makes first, multiplying that copy on
/// the f16 kernel: where the device has an f16 cooperative-matrix kernel (`GGVK_DEQUANT_F16=1`: on every device,
/// `=0`: never), from `GGVK_DEQUANT_F16_MIN_N` columns ([`DEQUANT_MIN_COLS`] by default), for quantized weights of
/// one batch whose activations are not rounded onto another grid ([`rounds_activations`], the 8-bit cooperative
/// kernel's blocks) and whose copy fits in [`DEQUANT_MAX_BYTES`] and one storage window. Decoding blocks
/// inside the tile loop cost the NV_cooperative_matrix2 kernel 28-45% over F16 weights on the H200 (NOTES.md);
/// the copy costs one read of the weights and one write of twice the values per product.
pub fn dequant_first_bytes(device: &Device, a: &Tensor, n: u32) -> Option<u64> {
    static MODE: std::sync::OnceLock<(Option<bool>, u32)> = std::sync::OnceLock::new();
    let (mode, min_cols) = *MODE.get_or_init(|| {
        let min = crate::knobs::number("GGVK_DEQUANT_F16_MIN_N").map_or(DEQUANT_MIN_COLS, |v| v.min(1 << 30) as u32);
        (crate::knobs::either("GGVK_DEQUANT_F16"), min)
    });
    if n <= MATVEC_MAX_COLS || n < min_cols || mode == Some(false) || dequant_shader(a.ty).is_none() {
        return None;
    }
    let bytes = (a.ne[0].max(0) as u64) * (a.ne[1].max(0) as u64) * 2;
    let fits = bytes > 0 && bytes <= DEQUANT_MAX_BYTES.min(device.caps().max_storage_buffer_range);
    let shape = a.ne[2] == 1 && a.ne[3] == 1 && a.ne[0] % 8 == 0 && a.nb[1] % 2 == 0;
    // Activations stay as the f16 kernel takes them: not rounded onto a CPU grid, not the 8-bit kernel's blocks.
    let int8 = coopmat::plan_on(device, a.ty, quantizes_activations(a), n).is_some_and(|(_, t)| t.b_q8);
    let grid = rounds_activations(a).is_none() && !int8;
    let device_ok = mode == Some(true) || coopmat::plan_on(device, GgmlType::F16, false, n).is_some();
    (fits && shape && grid && device_ok).then_some(bytes)
}

/// Bytes of f16 weight copies that prompt products keep between submissions ([`kept_f16`]): `GGVK_KEEP_F16_WEIGHTS`
/// (0: none), by default a quarter of a discrete GPU's device-local memory and none elsewhere (integrated and CPU
/// devices share the host's memory). Read once per process; a malformed value keeps none.
pub fn keep_f16_budget(device: &Device) -> u64 {
    static KNOB: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let knob = *KNOB.get_or_init(|| crate::knobs::size_opt("GGVK_KEEP_F16_WEIGHTS").unwrap_or(Some(0)));
    let caps = device.caps();
    knob.unwrap_or(if caps.device_type == ash::vk::PhysicalDeviceType::DISCRETE_GPU {
        caps.device_local_bytes() / 4
    } else {
        0
    })
}

/// Whether `bytes` more of device memory leave the application room: the driver's budget for device-local memory
/// keeps a sixteenth of it (at least 1 GiB) free, and a memory budget set for ggvk (`GGVK_MEMORY_BUDGET`) an eighth.
fn leaves_room(device: &Device, bytes: u64) -> bool {
    let (usage, budget) = device.memory_budget();
    let margin = (device.caps().device_local_bytes() / 16).max(1 << 30);
    let limit = device.memory_budget_limit();
    budget.saturating_sub(usage) >= bytes.saturating_add(margin)
        && (limit == 0 || device.allocated_bytes().saturating_add(bytes).saturating_add(limit / 8) <= limit)
}

/// The f16 copy of weights `a` that prompt products read instead of dequantizing them per submission: made once
/// into a buffer of its own and kept (`vk::kept`: dropped as soon as anything writes `a`'s buffer), within
/// [`keep_f16_budget`] and while device memory [`leaves_room`], from buffers no kernel writes and whose copies were
/// not dropped twice already. None: not kept (the caller dequantizes into scratch).
fn kept_f16(
    rec: &mut Recorder<'_>,
    a: &Tensor,
    a_bind: &Binding,
    p: &MatMulPush,
    bytes: u64,
) -> Result<Option<Tensor>> {
    let device = rec.device().clone();
    let budget = keep_f16_budget(&device);
    if budget == 0 {
        return Ok(None);
    }
    // Not from buffers that kernels write (results, or weights copied in per batch) or whose copies keep being
    // dropped (weights rewritten by the host): those would allocate and decode a copy per batch.
    if a.buffer.kernel_written() || rec.kept_drops(a.buffer.id()) >= 2 {
        return Ok(None);
    }
    let shape = [a.ne[0], a.ne[1], 1, 1];
    let key =
        KeptKey { kind: "f16_weights", source: a.buffer.id(), range: a.byte_range(), layout: (a.ty.raw(), a.ne, a.nb) };
    if let Some(buffer) = rec.kept(&key) {
        return Tensor::contiguous(buffer, 0, GgmlType::F16, shape).map(Some);
    }
    if rec.kept_bytes().saturating_add(bytes) > budget || !leaves_room(&device, bytes) {
        return Ok(None);
    }
    let buffer = match Buffer::new(&device, bytes, "ggvk kept f16 weights") {
        Ok(b) => b,
        Err(Error::OutOfDeviceMemory(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let a16 = Tensor::contiguous(buffer.clone(), 0, GgmlType::F16, shape)?;
    dequant_into(rec, a, a_bind, p, &a16)?;
    rec.keep_after_submit(key, buffer);
    Ok(Some(a16))
}

/// Dequantize `a` (bound as `a_bind`, addressed as in `p`) into `bytes` of this submission's scratch as packed f16
/// rows; returns the F16 tensor there.
fn dequant_f16(rec: &mut Recorder<'_>, a: &Tensor, a_bind: &Binding, p: &MatMulPush, bytes: u64) -> Result<Tensor> {
    let (scratch, offset) = rec.scratch(bytes)?;
    let a16 = Tensor::contiguous(scratch, offset, GgmlType::F16, [a.ne[0], a.ne[1], 1, 1])?;
    dequant_into(rec, a, a_bind, p, &a16)?;
    Ok(a16)
}

/// Dequantize `a` (bound as `a_bind`, addressed as in `p`) into `a16`, packed f16 rows of `a`'s shape.
fn dequant_into(rec: &mut Recorder<'_>, a: &Tensor, a_bind: &Binding, p: &MatMulPush, a16: &Tensor) -> Result<()> {
    let device = rec.device().clone();
    // Q4_K blocks read as 16-byte vectors where offset and rows allow.
    let shader = if a.ty == GgmlType::Q4_K && p.a_off % 8 == 0 && p.a_row % 8 == 0 {
        let push_size = std::mem::size_of::<DequantPush>() as u32;
        Shader { name: "dequant_f16_q4_k", spirv: spirv::DEQUANT_F16_Q4_K, bindings: 2, push_size }
    } else {
        dequant_shader(a.ty).ok_or_else(|| Error::Internal("no dequantizing kernel".into()))?
    };
    let (write, d_off) = bind(&device, a16, 16, true)?;
    let chunks = dim_u32("dequantized chunks", a.ne[0] / 8 * a.ne[1])?;
    let push = DequantPush { m: p.m, k: p.k, a_off: p.a_off, a_row: p.a_row, d_off, chunks, pad: [0; 2] };
    let pipeline = device.pipelines().get(&device, &shader, &[])?;
    let (gx, gy) = split_groups(u64::from(chunks.div_ceil(256)), device.caps().max_workgroup_count[0])?;
    rec.dispatch(shader.name, &pipeline, &[a_bind.clone(), write], bytemuck::bytes_of(&push), [gx, gy, 1])
}

/// Quantize b into this submission's scratch; returns the binding of the quantized copy (read-only) and the
/// push constants with b's offset and strides redirected to it (in words; 10 per 32-value block).
pub(crate) fn quantize_b(
    rec: &mut Recorder<'_>,
    b: &Tensor,
    b_bind: &Binding,
    p: MatMulPush,
) -> Result<(Binding, MatMulPush)> {
    let nblocks = p.k / 32;
    // Columns are laid out one after another: column i11 of batch (i12, i13) starts at
    // ((i13 * ne12 + i12) * n + i11) * nblocks blocks.
    let col_words = dim_u32("quantized column", i64::from(nblocks) * QX_WORDS as i64)?;
    // quantize_q8_1.comp: eight threads per 32-value block.
    derive_b(rec, b, b_bind, p, (&QUANTIZE, QUANTIZE.name, 0), (nblocks, 8), col_words)
}

const NARROW_F16_VEC: Shader = Shader {
    name: "narrow_f16_vec",
    spirv: spirv::NARROW_F16_VEC,
    bindings: 2,
    push_size: std::mem::size_of::<QuantizePush>() as u32,
};

const NARROW_F16: Shader = Shader {
    name: "narrow_f16",
    spirv: spirv::NARROW_F16,
    bindings: 2,
    push_size: std::mem::size_of::<QuantizePush>() as u32,
};

/// Write b as packed f16 (rounded to nearest even) into this submission's scratch for the cooperative-matrix
/// kernels; returns the read-only binding and the push constants with b's offset and strides redirected to it, in
/// halves (columns of `2 ceil(k / 2)` halves one after another). `rounded`: b was already rounded onto this grid
/// (the copy is then cached apart from a copy of the unrounded values).
pub(crate) fn narrow_b(
    rec: &mut Recorder<'_>,
    b: &Tensor,
    b_bind: &Binding,
    p: MatMulPush,
    rounded: Option<ActRounding>,
) -> Result<(Binding, MatMulPush)> {
    let col_words = p.k.div_ceil(2);
    let cols = i64::from(p.n) * b.ne[2] * b.ne[3];
    dim_u32("f16 activations (halves)", i64::from(col_words) * 2 * cols)?;
    let kind = match rounded {
        None => "narrow_f16",
        Some(ActRounding::Q8_0) => "narrow_f16_q8_0",
        Some(ActRounding::Q8K) => "narrow_f16_q8k",
        Some(ActRounding::Bf16) => "narrow_f16_bf16",
    };
    // Eight values per invocation where k and b's offset and strides allow 16-byte loads and stores (the copy is
    // the same: one kind of derived data).
    let vec8 = p.k % 8 == 0 && [p.b_off, p.b_col, p.b_s2, p.b_s3].iter().all(|v| v % 4 == 0);
    let (shader, groups) = if vec8 { (&NARROW_F16_VEC, col_words / 4) } else { (&NARROW_F16, col_words) };
    let (read, mut p) = derive_b(rec, b, b_bind, p, (shader, kind, p.k), (groups, 1), col_words)?;
    p.b_off *= 2;
    p.b_col *= 2;
    p.b_s2 *= 2;
    p.b_s3 *= 2;
    Ok((read, p))
}

/// Write a per-column transform of b (`shader`: 8-bit quantization or rounding onto a grid; `nblocks` blocks of
/// `block_threads` threads each per column (`blocks` = (nblocks, block_threads); 64-thread workgroups),
/// `col_words` 32-bit words per output column,
/// columns one after another) into this
/// submission's scratch; returns the read-only binding of the copy and the push constants with b's offset and
/// strides redirected to it. The same activation feeding several products (Q, K and V; gate and up) is
/// transformed once per submission (until its bytes are written again).
fn derive_b(
    rec: &mut Recorder<'_>,
    b: &Tensor,
    b_bind: &Binding,
    p: MatMulPush,
    (shader, kind, pad0): (&Shader, &'static str, u32),
    (nblocks, block_threads): (u32, u32),
    col_words: u32,
) -> Result<(Binding, MatMulPush)> {
    let device = rec.device().clone();
    let cols = u64::from(p.n) * (b.ne[2] * b.ne[3]) as u64;
    // Overflow of the redirected strides is caught here rather than wrapping in the kernel.
    dim_u32("derived activations", i64::from(col_words) * cols as i64)?;
    let redirect = |mut p: MatMulPush, off: u32| {
        p.b_off = off;
        p.b_col = col_words;
        p.b_s2 = col_words * p.n;
        p.b_s3 = col_words * p.n * p.ne12;
        p
    };
    let (start, end) = b.byte_range();
    let source = (b.buffer.id(), start, end);
    let layout = (b.ty.raw(), b.ne, b.nb);
    if let Some((read, off)) = rec.find_derived(kind, source, layout) {
        return Ok((read, redirect(p, off)));
    }
    let bytes = u64::from(col_words) * 4 * cols;
    let (scratch, offset) = rec.scratch(bytes)?;
    let region = Tensor::contiguous(scratch, offset, GgmlType::I32, [(bytes / 4) as i64, 1, 1, 1])?;
    let (write, off) = bind(&device, &region, 4, true)?;
    let push = QuantizePush {
        nblocks,
        ncols: dim_u32("columns", cols as i64)?,
        ne11: p.n,
        ne12: p.ne12,
        b_off: p.b_off,
        b_col: p.b_col,
        b_s2: p.b_s2,
        b_s3: p.b_s3,
        q_off: off,
        pad: [pad0, 0, 0],
    };
    let pipeline = device.pipelines().get(&device, shader, &[])?;
    let (gy, gz) = split_groups(cols, device.caps().max_workgroup_count[1])?;
    rec.dispatch(
        shader.name,
        &pipeline,
        &[b_bind.clone(), write.clone()],
        bytemuck::bytes_of(&push),
        [(u64::from(nblocks) * u64::from(block_threads)).div_ceil(64) as u32, gy, gz],
    )?;
    let read = Binding { write: false, ..write };
    rec.add_derived(Derived { kind, source, layout, result: (read.clone(), off) });
    Ok((read, redirect(p, off)))
}

/// Whether `a x b` runs the generic f32-activation kernels on a copy of b rounded onto the grid ggml's CPU backend
/// puts activations on for `a`'s type (its `vec_dot_type`: Q8_0/Q8_1 for Q4_1/Q5_0/Q5_1, Q8_K for the K-quants,
/// BF16 for BF16, Q8_0 for IQ4_NL, MXFP4, NVFP4, Q1_0 and Q2_0, Q8_K for the other IQ types and TQ1_0/TQ2_0; see
/// [`crate::quant::act`]), and which grid. `GGVK_ROUND_ACTIVATIONS=1` turns it on for every generic type, `=0` off
/// for all (read once per process); by default IQ4_NL rounds (a K cache in IQ4_NL meets the attention's Q there: with
/// f32 Q, greedy decoding of a tiny model left the CPU's tokens at step 9), and so do the IQ types added after it,
/// TQ1_0/TQ2_0, MXFP4, NVFP4, Q1_0 and Q2_0 (their products then agree with the CPU backend's to f32 noise, as llama.cpp's
/// test-backend-ops checks them). It brings single products to the CPU backend's result within f32 noise, but on Gemma 3
/// 270M (Q4_K_M) the end-to-end KL divergence against the CPU was worse with it (NOTES.md), hence off by default for
/// the older types. Q4_0, Q8_0 and F16 weights have their own paths ([`quantizes_activations`], the F16 kernels'
/// f16 rounding); F32 weights take b as it is.
pub fn rounds_activations(a: &Tensor) -> Option<ActRounding> {
    static KNOB: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    let knob = *KNOB.get_or_init(|| crate::knobs::either("GGVK_ROUND_ACTIVATIONS"));
    let generic = !matches!(a.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::Q4_0 | GgmlType::Q8_0);
    if generic && knob.unwrap_or(rounds_by_default(a.ty)) {
        act_rounding(a.ty)
    } else {
        None
    }
}

/// The weight types whose activations [`rounds_activations`] rounds without `GGVK_ROUND_ACTIVATIONS`.
fn rounds_by_default(ty: GgmlType) -> bool {
    use GgmlType as T;
    matches!(
        ty,
        T::IQ4_NL
            | T::IQ4_XS
            | T::IQ3_S
            | T::IQ3_XXS
            | T::IQ2_XXS
            | T::IQ2_XS
            | T::IQ2_S
            | T::IQ1_S
            | T::IQ1_M
            | T::TQ1_0
            | T::TQ2_0
            | T::MXFP4
            | T::NVFP4
            | T::Q1_0
            | T::Q2_0
    )
}

/// Push constants of `round_act.comp` (same layout as [`QuantizePush`], offsets in floats).
type RoundPush = QuantizePush;

fn round_shader(r: ActRounding) -> Shader {
    let (name, spirv) = match r {
        ActRounding::Q8_0 => ("round_act_q8_0", spirv::ROUND_ACT_Q8_0),
        ActRounding::Q8K => ("round_act_q8_k", spirv::ROUND_ACT_Q8_K),
        ActRounding::Bf16 => ("round_act_bf16", spirv::ROUND_ACT_BF16),
    };
    Shader { name, spirv, bindings: 2, push_size: std::mem::size_of::<RoundPush>() as u32 }
}

/// Round b onto `r`'s grid into this submission's scratch (f32, columns one after another, k floats each);
/// returns the read-only binding of the copy and the push constants with b's offset and strides redirected to it.
pub(crate) fn round_b(
    rec: &mut Recorder<'_>,
    b: &Tensor,
    b_bind: &Binding,
    p: MatMulPush,
    r: ActRounding,
) -> Result<(Binding, MatMulPush)> {
    let block = r.block() as u32;
    if p.k % block != 0 {
        return Err(Error::Internal(format!("MUL_MAT: k = {} is not a multiple of {block} for rounding", p.k)));
    }
    let shader = round_shader(r);
    derive_b(rec, b, b_bind, p, (&shader, shader.name, 0), (p.k / block, 1), p.k)
}

/// Quantize b into scratch, then run the integer-dot mat-vec over it (with the ADD of `add` where a fused kernel
/// exists; returns whether it took it).
#[allow(clippy::too_many_arguments)]
fn record_int_dot(
    rec: &mut Recorder<'_>,
    b: &Tensor,
    bindings: &[Binding; 3],
    p: MatMulPush,
    spec: [u32; 7],
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
