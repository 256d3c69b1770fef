//! MUL_MAT_ID (ggml_mul_mat_id, mixture of experts): src0 `as` [K, M, n_as] (one weight matrix per expert), src1 `b`
//! [K, n_b1, n_tokens] F32 (n_b1 = 1: every slot reads the token's one column; n_b1 = n_used: slot s reads column
//! s), src2 `ids` I32 [n_used, n_tokens] (the experts chosen per token, computed on the device by the router), dst
//! F32 [M, n_used, n_tokens]: `dst[:, s, t] = as[:, :, ids[s, t]] x b[:, s % n_b1, t]`.
//!
//! Up to [`MATVEC_MAX_COLS`] tokens run the MUL_MAT mat-vec kernels compiled with `MUL_MAT_ID`
//! (`shaders/mul_mat_id.glsl`): one workgroup z per
//! (slot, token) pair, which reads its expert from `ids` on the device, so each selected expert's weights are
//! streamed once per pair (token generation: one token, n_used experts, each read once). Every weight type MUL_MAT
//! runs is covered, with the same numerics: b rounded to 8-bit blocks for Q4_0/Q8_0 weights (`quantize_q8_1.comp`,
//! shared with MUL_MAT on the same b), to f16 for F16 weights, onto the CPU's grid where MUL_MAT rounds it for the
//! generic types.
//!
//! More than [`MATVEC_MAX_COLS`] tokens (prompt processing) take a tiled path: `mul_mat_id_map.comp` lists, per
//! expert on the device, the pairs routed to it (scratch), then `mul_mat_id_tiled.comp` (mul_mat.comp's tiles and
//! loaders, one workgroup z per expert) multiplies each expert with the columns of its pairs, so an expert's weights
//! are read once per 64 of its pairs. Where the device runs the cooperative-matrix kernels (`GGVK_COOPMAT_ID=0`
//! keeps the scalar kernel), the products run instead on `mul_mat_cm.comp`'s MUL_MAT_ID variant over the f16 copy of
//! b (tiles of 128 rows by 64 columns; the same map).
//!
//! A node whose src1 must stay finer than those copies (ggml_prec_set_src, [`SrcPrec`]: llama.cpp keeps the input of
//! some MoE down projections F32, as it can exceed f16's range) takes the kernels over b as F32: no f16 copy, no
//! 8-bit blocks, no rounding onto their grid; F16 and BF16 experts, whose kernels round b to their type, are declined
//! there (ggml-vulkan declines every such node).
//!
//! Experts that do not fit one storage window together are bound a range at a time (one dispatch per range).

use bytemuck::{Pod, Zeroable};

use super::matmul::{
    bf16_scalar, block32_idot_config, block32_int_dot, derived_column_bytes, device_forces_shared_reduction,
    dq_row_multiple, dq_span16, kquant_idot_config, kquant_int_dot, matvec_config, matvec_kernel_type,
    matvec_workgroup, narrow_b, narrowed_column_bytes, quantize_b, quantize_b_q8k, quantizes_activations, round_b,
    rounds_activations, MatMulPush, MATVEC_MAX_COLS,
};
use super::{bind, dim_u32, spirv, split_groups, stride_units, window_limit};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, SrcPrec, Tensor};
use crate::quant::{ActRounding, GgmlType};
use crate::vk::{Binding, Derived, Device, Recorder, Shader};

const PUSH: u32 = std::mem::size_of::<MatMulPush>() as u32;

const fn shader(name: &'static str, spirv: &'static [u8]) -> Shader {
    Shader { name, spirv, bindings: 4, push_size: PUSH }
}

/// Whether the weights' type has a generic dequantizing kernel (rather than a specialised one).
fn generic(ty: GgmlType) -> bool {
    !matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::Q4_0 | GgmlType::Q8_0)
}

/// The MUL_MAT_ID mat-vec shaders (subgroup reduction, shared-memory reduction) for weights of type `ty`; with
/// `int_dot`, the integer-dot variants over b quantized to 8-bit blocks (Q4_0, Q8_0) or onto the Q8_K grid (Q4_K,
/// Q5_K, Q6_K). `words32`: the weights'
/// offset and strides are even 16-bit word counts (the dedicated Q4_K / Q5_K kernels read 32 bits at a time).
fn shaders(ty: GgmlType, int_dot: bool, words32: bool) -> Option<(Shader, Shader)> {
    let pair =
        |a: (&'static str, &'static [u8]), b: (&'static str, &'static [u8])| Some((shader(a.0, a.1), shader(b.0, b.1)));
    static KQUANT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let kquant = *KQUANT.get_or_init(|| crate::knobs::switch("GGVK_KQUANT_MATVEC", true));
    match ty {
        GgmlType::Q4_0 if int_dot => pair(
            ("mul_mat_vec_q4_0_idot_id", spirv::MUL_MAT_VEC_Q4_0_IDOT_ID),
            ("mul_mat_vec_q4_0_idot_id_shmem", spirv::MUL_MAT_VEC_Q4_0_IDOT_ID_SHMEM),
        ),
        GgmlType::Q8_0 if int_dot => pair(
            ("mul_mat_vec_q8_0_idot_id", spirv::MUL_MAT_VEC_Q8_0_IDOT_ID),
            ("mul_mat_vec_q8_0_idot_id_shmem", spirv::MUL_MAT_VEC_Q8_0_IDOT_ID_SHMEM),
        ),
        GgmlType::Q4_K if int_dot && kquant && words32 => pair(
            ("mul_mat_vec_q4_k_idot_id", spirv::MUL_MAT_VEC_Q4_K_IDOT_ID),
            ("mul_mat_vec_q4_k_idot_id_shmem", spirv::MUL_MAT_VEC_Q4_K_IDOT_ID_SHMEM),
        ),
        GgmlType::Q5_K if int_dot && kquant && words32 => pair(
            ("mul_mat_vec_q5_k_idot_id", spirv::MUL_MAT_VEC_Q5_K_IDOT_ID),
            ("mul_mat_vec_q5_k_idot_id_shmem", spirv::MUL_MAT_VEC_Q5_K_IDOT_ID_SHMEM),
        ),
        GgmlType::Q6_K if int_dot && kquant => pair(
            ("mul_mat_vec_q6_k_idot_id", spirv::MUL_MAT_VEC_Q6_K_IDOT_ID),
            ("mul_mat_vec_q6_k_idot_id_shmem", spirv::MUL_MAT_VEC_Q6_K_IDOT_ID_SHMEM),
        ),
        GgmlType::Q4_1 if int_dot => pair(
            ("mul_mat_vec_q4_1_idot_id", spirv::MUL_MAT_VEC_Q4_1_IDOT_ID),
            ("mul_mat_vec_q4_1_idot_id_shmem", spirv::MUL_MAT_VEC_Q4_1_IDOT_ID_SHMEM),
        ),
        GgmlType::Q5_0 if int_dot => pair(
            ("mul_mat_vec_q5_0_idot_id", spirv::MUL_MAT_VEC_Q5_0_IDOT_ID),
            ("mul_mat_vec_q5_0_idot_id_shmem", spirv::MUL_MAT_VEC_Q5_0_IDOT_ID_SHMEM),
        ),
        GgmlType::Q5_1 if int_dot => pair(
            ("mul_mat_vec_q5_1_idot_id", spirv::MUL_MAT_VEC_Q5_1_IDOT_ID),
            ("mul_mat_vec_q5_1_idot_id_shmem", spirv::MUL_MAT_VEC_Q5_1_IDOT_ID_SHMEM),
        ),
        GgmlType::IQ4_NL if int_dot => pair(
            ("mul_mat_vec_iq4_nl_idot_id", spirv::MUL_MAT_VEC_IQ4_NL_IDOT_ID),
            ("mul_mat_vec_iq4_nl_idot_id_shmem", spirv::MUL_MAT_VEC_IQ4_NL_IDOT_ID_SHMEM),
        ),
        GgmlType::MXFP4 if int_dot => pair(
            ("mul_mat_vec_mxfp4_idot_id", spirv::MUL_MAT_VEC_MXFP4_IDOT_ID),
            ("mul_mat_vec_mxfp4_idot_id_shmem", spirv::MUL_MAT_VEC_MXFP4_IDOT_ID_SHMEM),
        ),
        GgmlType::Q2_K if int_dot => pair(
            ("mul_mat_vec_q2_k_idot_id", spirv::MUL_MAT_VEC_Q2_K_IDOT_ID),
            ("mul_mat_vec_q2_k_idot_id_shmem", spirv::MUL_MAT_VEC_Q2_K_IDOT_ID_SHMEM),
        ),
        GgmlType::Q3_K if int_dot => pair(
            ("mul_mat_vec_q3_k_idot_id", spirv::MUL_MAT_VEC_Q3_K_IDOT_ID),
            ("mul_mat_vec_q3_k_idot_id_shmem", spirv::MUL_MAT_VEC_Q3_K_IDOT_ID_SHMEM),
        ),
        GgmlType::IQ4_XS if int_dot => pair(
            ("mul_mat_vec_iq4_xs_idot_id", spirv::MUL_MAT_VEC_IQ4_XS_IDOT_ID),
            ("mul_mat_vec_iq4_xs_idot_id_shmem", spirv::MUL_MAT_VEC_IQ4_XS_IDOT_ID_SHMEM),
        ),
        _ if int_dot => None,
        GgmlType::F32 => pair(
            ("mul_mat_vec_f32_id", spirv::MUL_MAT_VEC_F32_ID),
            ("mul_mat_vec_f32_id_shmem", spirv::MUL_MAT_VEC_F32_ID_SHMEM),
        ),
        GgmlType::F16 => pair(
            ("mul_mat_vec_f16_id", spirv::MUL_MAT_VEC_F16_ID),
            ("mul_mat_vec_f16_id_shmem", spirv::MUL_MAT_VEC_F16_ID_SHMEM),
        ),
        GgmlType::Q4_0 => pair(
            ("mul_mat_vec_q4_0_id", spirv::MUL_MAT_VEC_Q4_0_ID),
            ("mul_mat_vec_q4_0_id_shmem", spirv::MUL_MAT_VEC_Q4_0_ID_SHMEM),
        ),
        GgmlType::Q8_0 => pair(
            ("mul_mat_vec_q8_0_id", spirv::MUL_MAT_VEC_Q8_0_ID),
            ("mul_mat_vec_q8_0_id_shmem", spirv::MUL_MAT_VEC_Q8_0_ID_SHMEM),
        ),
        GgmlType::Q4_K if kquant && words32 => pair(
            ("mul_mat_vec_q4_k_id", spirv::MUL_MAT_VEC_Q4_K_ID),
            ("mul_mat_vec_q4_k_id_shmem", spirv::MUL_MAT_VEC_Q4_K_ID_SHMEM),
        ),
        GgmlType::Q5_K if kquant && words32 => pair(
            ("mul_mat_vec_q5_k_id", spirv::MUL_MAT_VEC_Q5_K_ID),
            ("mul_mat_vec_q5_k_id_shmem", spirv::MUL_MAT_VEC_Q5_K_ID_SHMEM),
        ),
        GgmlType::Q6_K if kquant => pair(
            ("mul_mat_vec_q6_k_id", spirv::MUL_MAT_VEC_Q6_K_ID),
            ("mul_mat_vec_q6_k_id_shmem", spirv::MUL_MAT_VEC_Q6_K_ID_SHMEM),
        ),
        _ => {
            let sg = spirv::dq_module("mul_mat_vec_dq_id", ty.name())?;
            let shmem = spirv::dq_module("mul_mat_vec_dq_id_shmem", ty.name())?;
            pair(sg, shmem)
        }
    }
}

/// Push constants of `mul_mat_id_map.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct MapPush {
    i_off: u32,
    i_s0: u32,
    i_s1: u32,
    n_used: u32,
    n_pairs: u32,
    n_as: u32,
    m_off: u32,
    e_first: u32,
}

const MAP: Shader = Shader {
    name: "mul_mat_id_map",
    spirv: spirv::MUL_MAT_ID_MAP,
    bindings: 2,
    push_size: std::mem::size_of::<MapPush>() as u32,
};

/// The tiled MUL_MAT_ID kernel for weights of type `ty`; `bq8`: over b quantized to 8-bit blocks (Q4_0, Q8_0).
fn tiled_shader(ty: GgmlType, bq8: bool) -> Option<Shader> {
    let (name, spirv) = match ty {
        GgmlType::Q4_0 if bq8 => ("mul_mat_id_q4_0_bq8", spirv::MUL_MAT_ID_Q4_0_BQ8),
        GgmlType::Q8_0 if bq8 => ("mul_mat_id_q8_0_bq8", spirv::MUL_MAT_ID_Q8_0_BQ8),
        _ if bq8 => return None,
        GgmlType::F32 => ("mul_mat_id_f32", spirv::MUL_MAT_ID_F32),
        GgmlType::F16 => ("mul_mat_id_f16", spirv::MUL_MAT_ID_F16),
        GgmlType::Q4_0 => ("mul_mat_id_q4_0", spirv::MUL_MAT_ID_Q4_0),
        GgmlType::Q8_0 => ("mul_mat_id_q8_0", spirv::MUL_MAT_ID_Q8_0),
        _ => spirv::dq_module("mul_mat_id_dq", ty.name())?,
    };
    Some(shader(name, spirv))
}

/// Whether the node takes the tiled path (more tokens than the mat-vec kernels take columns).
fn tiled(b: &Tensor) -> bool {
    b.ne[2] > i64::from(MATVEC_MAX_COLS)
}

/// Whether the product runs the integer-dot kernels on b quantized to 8-bit blocks (as MUL_MAT does: Q4_0/Q8_0
/// weights, and in the mat-vec path the other 32-value block types; `GGVK_INT_DOT` not 0, a device with integer
/// dot products).
fn int_dot(device: &Device, a: &Tensor, b: &Tensor, prec: SrcPrec) -> bool {
    (quantizes_activations(a) || block32_int_dot_b(a, b)) && device.caps().integer_dot_product && prec.allows_q8()
}

/// Whether the mat-vec path runs the integer-dot kernels of the other 32-value block types (Q4_1, Q5_0, Q5_1,
/// IQ4_NL, MXFP4) over b quantized to 8-bit blocks, as MUL_MAT's mat-vec does (the tiled path keeps the generic
/// kernels for them).
fn block32_int_dot_b(a: &Tensor, b: &Tensor) -> bool {
    !tiled(b) && block32_int_dot(a)
}

/// Whether the mat-vec path runs the integer-dot K-quant kernels over b on the Q8_K grid (as MUL_MAT's mat-vec:
/// Q4_K, Q5_K, Q6_K, and Q2_K, Q3_K, IQ4_XS).
fn kquant_int_dot_b(device: &Device, a: &Tensor, b: &Tensor, prec: SrcPrec) -> bool {
    !tiled(b) && kquant_int_dot(device, a) && prec.allows_q8()
}

/// How b's values are rounded onto the CPU backend's grid of 8-bit blocks ([`rounds_activations`]) where `prec` lets
/// them be.
fn rounding(a: &Tensor, prec: SrcPrec) -> Option<ActRounding> {
    rounds_activations(a).filter(|_| prec.allows_q8())
}

/// The grid b's values are on when this node multiplies them on `device` with src1 precision `prec`: Q8_K where
/// the integer-dot K-quant mat-vec runs, else as [`rounds_activations`] (None: as given; Q4_0/Q8_0's 8-bit blocks
/// are not a grid of this kind).
pub fn activation_grid(device: &Device, a: &Tensor, b: &Tensor, prec: SrcPrec) -> Option<ActRounding> {
    if kquant_int_dot_b(device, a, b, prec) {
        Some(ActRounding::Q8K)
    } else if block32_int_dot_b(a, b) && device.caps().integer_dot_product && prec.allows_q8() {
        Some(ActRounding::Q8_0)
    } else {
        rounding(a, prec)
    }
}

/// Whether b is quantized to 8-bit blocks for this node (the integer-dot mat-vec, or the tiled path's bq8 kernels,
/// as MUL_MAT's tiled kernel does for Q4_0/Q8_0 weights whatever the device).
fn quantizes_b(device: &Device, a: &Tensor, b: &Tensor, prec: SrcPrec) -> bool {
    int_dot(device, a, b, prec)
        || kquant_int_dot_b(device, a, b, prec)
        || (tiled(b) && quantizes_activations(a) && prec.allows_q8())
}

/// The cooperative-matrix kernel the tiled path takes instead of `mul_mat_id_tiled.comp` (`GGVK_COOPMAT_ID`).
fn coopmat_kernel(device: &Device, a: &Tensor, b: &Tensor, prec: SrcPrec) -> Option<(Shader, u32)> {
    let tokens = u32::try_from(b.ne[2]).unwrap_or(u32::MAX);
    (tiled(b) && prec.allows_f16()).then(|| crate::ops::coopmat::id_plan(device, a.ty, tokens)).flatten()
}

/// Whether the node's products run on the cooperative-matrix kernel over the f16 copy of b (tests widen their error
/// bound by f16's rounding).
pub fn uses_coopmat(device: &Device, a: &Tensor, b: &Tensor, prec: SrcPrec) -> bool {
    coopmat_kernel(device, a, b, prec).is_some()
}

/// Bytes of the tiled path's expert map: a count per expert, then a list of n_pairs entries per expert.
fn map_bytes(a: &Tensor, ids: &Tensor) -> u64 {
    let (n_as, pairs) = (a.ne[2].max(0) as u64, (ids.ne[0] * ids.ne[1]).max(0) as u64);
    4 * n_as * (1 + pairs)
}

/// The coarsest copy of src1 the node lets its kernels make.
fn b_prec(node: &Node) -> SrcPrec {
    match node.op {
        Op::MulMatId { b_prec } => b_prec,
        _ => SrcPrec::Any,
    }
}

/// Whether ggvk supports this MUL_MAT_ID node (independent of device limits).
pub fn check(node: &Node) -> Result<()> {
    let (a, b, ids, d) = (node.src(0)?, node.src(1)?, node.src(2)?, &node.dst);
    if shaders(a.ty, false, true).is_none() || tiled_shader(a.ty, false).is_none() {
        return Err(Error::unsupported(format!("MUL_MAT_ID with {} weights", a.ty.name())));
    }
    if generic(a.ty) && !bf16_scalar(a) && a.ne[0] % dq_row_multiple(a.ty) != 0 {
        return Err(Error::unsupported(format!(
            "MUL_MAT_ID with {} weights needs rows of a multiple of {} values, got {}",
            a.ty.name(),
            dq_row_multiple(a.ty),
            a.ne[0]
        )));
    }
    // F16 and BF16 experts take src1 rounded as the CPU backend's dot products do.
    let prec = b_prec(node);
    if (a.ty == GgmlType::F16 && !prec.allows_f16()) || (a.ty == GgmlType::BF16 && prec == SrcPrec::F32) {
        return Err(Error::unsupported(format!(
            "MUL_MAT_ID with {} weights rounds src1 to that type: src1 precision {prec:?} asks for more",
            a.ty.name()
        )));
    }
    if b.ty != GgmlType::F32 || d.ty != GgmlType::F32 || ids.ty != GgmlType::I32 {
        return Err(Error::unsupported(format!(
            "MUL_MAT_ID needs F32 src1 and dst and I32 ids, got {}, {} and {}",
            b.ty.name(),
            d.ty.name(),
            ids.ty.name()
        )));
    }
    if !a.is_row_packed() || !b.is_row_packed() || !d.is_row_packed() {
        return Err(Error::unsupported("MUL_MAT_ID with non-contiguous rows (nb[0] != element size)"));
    }
    if a.ne[3] != 1 || b.ne[3] != 1 || ids.ne[2] != 1 || ids.ne[3] != 1 {
        return Err(Error::invalid(format!(
            "MUL_MAT_ID: src0 {:?} and src1 {:?} must be 3-D, ids {:?} 2-D",
            a.ne, b.ne, ids.ne
        )));
    }
    if a.ne[0] != b.ne[0] || ids.ne[1] != b.ne[2] {
        return Err(Error::invalid(format!(
            "MUL_MAT_ID: src0 {:?}, src1 {:?}, ids {:?} do not match (K, tokens)",
            a.ne, b.ne, ids.ne
        )));
    }
    let (n_used, n_b1) = (ids.ne[0], b.ne[1]);
    if n_b1 != 1 && n_b1 != n_used {
        return Err(Error::unsupported(format!(
            "MUL_MAT_ID with src1 ne[1] = {n_b1}: only 1 (broadcast) or n_used = {n_used}"
        )));
    }
    let want = [a.ne[1], n_used, b.ne[2], 1];
    if d.ne != want {
        return Err(Error::invalid(format!("MUL_MAT_ID: dst shape {:?}, expected {want:?}", d.ne)));
    }
    if a.ne[2] < 1 {
        return Err(Error::invalid("MUL_MAT_ID without experts (src0 ne[2] = 0)"));
    }
    for (what, t) in [("ids", ids), ("dst", d)] {
        if t.nb.iter().any(|s| s % 4 != 0) {
            return Err(Error::unsupported(format!("MUL_MAT_ID: {what} strides {:?} are not multiples of 4", t.nb)));
        }
    }
    dim_u32("MUL_MAT_ID pairs", n_used * b.ne[2])?;
    dim_u32("MUL_MAT_ID expert map", (map_bytes(a, ids) / 4) as i64)?;
    Ok(())
}

/// Scratch bytes the node needs on `device` (b quantized to 8-bit blocks, or rounded onto the CPU's grid; the
/// tiled path's expert map), per piece of tokens when it is recorded in pieces ([`token_pieces`]).
pub fn scratch_bytes(device: &Device, node: &Node) -> u64 {
    let (Ok(a), Ok(b), Ok(ids)) = (node.src(0), node.src(1), node.src(2)) else { return 0 };
    let prec = b_prec(node);
    let Ok(Some(per)) = token_pieces(device, node) else { return piece_scratch_bytes(device, a, b, ids, prec) };
    let n_tok = b.ne[2];
    (0..n_tok)
        .step_by(per as usize)
        .map(|t0| {
            let nt = per.min(n_tok - t0);
            piece_scratch_bytes(device, a, &tokens_view(b, 2, nt), &tokens_view(ids, 1, nt), prec)
        })
        .sum()
}

/// [`scratch_bytes`] of a node recorded whole.
fn piece_scratch_bytes(device: &Device, a: &Tensor, b: &Tensor, ids: &Tensor, prec: SrcPrec) -> u64 {
    let col_bytes = b_copy_column_bytes(device, a, b, prec);
    // Each region is rounded up to the scratch alignment by the recorder.
    let align = device.caps().min_storage_offset_alignment.max(256);
    let b_bytes = (col_bytes * (b.ne[1] * b.ne[2]).max(0) as u64).div_ceil(align) * align;
    b_bytes + if tiled(b) { map_bytes(a, ids).div_ceil(align) * align } else { 0 }
}

/// Bytes per column of the copy of b the node makes in scratch: the cooperative kernel's f16 copy (rounded first
/// where the type rounds activations: the same size), 8-bit blocks, the rounded F32 copy, or none.
fn b_copy_column_bytes(device: &Device, a: &Tensor, b: &Tensor, prec: SrcPrec) -> u64 {
    match coopmat_kernel(device, a, b, prec) {
        Some(_) => narrowed_column_bytes(b.ne[0]),
        None => derived_column_bytes(a, b, quantizes_b(device, a, b, prec)),
    }
}

/// `t` with `nt` elements along its token dimension `dim` (a shape for sizing: same buffer, offset and strides).
fn tokens_view(t: &Tensor, dim: usize, nt: i64) -> Tensor {
    let mut ne = t.ne;
    ne[dim] = nt;
    Tensor { ne, ..t.clone() }
}

/// Tokens per piece when the node's tensors with all its tokens do not each fit one storage window (src1, ids,
/// dst, the copy of src1 its kernels read, the tiled path's expert map): each piece is then recorded as a node of
/// its own over views of those tokens. `None` when everything fits at once; an error when one token does not.
fn token_pieces(device: &Device, node: &Node) -> Result<Option<i64>> {
    let (a, b, ids, d) = (node.src(0)?, node.src(1)?, node.src(2)?, &node.dst);
    let prec = b_prec(node);
    let limit = window_limit(device);
    let fits = |nt: i64| {
        let (b, ids, d) = (tokens_view(b, 2, nt), tokens_view(ids, 1, nt), tokens_view(d, 2, nt));
        let derived = b_copy_column_bytes(device, a, &b, prec) * (b.ne[1] * nt).max(0) as u64;
        [b.nbytes(), ids.nbytes(), d.nbytes(), derived].iter().all(|&n| n <= limit)
            && (!tiled(&b) || map_bytes(a, &ids) <= limit)
    };
    let n_tok = b.ne[2];
    if fits(n_tok) {
        return Ok(None);
    }
    if !fits(1) {
        return Err(Error::unsupported(format!(
            "MUL_MAT_ID: one token's src1 {:?}, ids or dst {:?} exceeds this device's maxStorageBufferRange ({} bytes)",
            b.ne,
            d.ne,
            device.caps().max_storage_buffer_range
        )));
    }
    // The largest count that fits (fitting is monotone in the count).
    let (mut lo, mut hi) = (1, n_tok);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(Some(lo))
}

/// The node restricted to tokens `t0 .. t0 + nt` (views of src1, ids and dst).
fn token_piece(node: &Node, t0: i64, nt: i64) -> Result<Node> {
    let view = |t: &Tensor, dim: usize| {
        let mut ne = t.ne;
        ne[dim] = nt;
        Tensor::new(t.buffer.clone(), t.offset + t0 as u64 * t.nb[dim], t.ty, ne, t.nb)
    };
    let (b, ids) = (node.src(1)?, node.src(2)?);
    Ok(Node {
        op: node.op.clone(),
        src: vec![Some(node.src(0)?.clone()), Some(view(b, 2)?), Some(view(ids, 1)?)],
        dst: view(&node.dst, 2)?,
    })
}

/// Ranges of experts bound at once, (first, count): each range's bytes fit one storage window (and its experts
/// the device's workgroup count along z). All experts at once unless the tensor exceeds a window.
fn expert_pieces(device: &Device, a: &Tensor) -> Result<Vec<(i64, i64)>> {
    let limit = window_limit(device);
    let n_as = a.ne[2];
    let one = a.ty.row_size(a.ne[0])? as u64 + (a.ne[1].max(1) - 1) as u64 * a.nb[1];
    if one > limit {
        return Err(Error::unsupported(format!(
            "MUL_MAT_ID: one expert of {one} bytes exceeds this device's maxStorageBufferRange ({} bytes)",
            device.caps().max_storage_buffer_range
        )));
    }
    let fit = (limit - one).checked_div(a.nb[2]).map_or(n_as, |f| f as i64 + 1);
    let per = fit.min(n_as).min(i64::from(device.caps().max_workgroup_count[2])).max(1);
    Ok((0..n_as).step_by(per as usize).map(|e0| (e0, per.min(n_as - e0))).collect())
}

/// Whether the node runs on `device`: [`check`] plus the storage windows (the experts are bound a range at a time
/// when they do not fit one window together; src1, ids, dst and, with more than 8 tokens, the expert map must each
/// fit one).
pub fn check_on(device: &Device, node: &Node) -> Result<()> {
    check(node)?;
    expert_pieces(device, node.src(0)?)?;
    token_pieces(device, node).map(|_| ())
}

/// Record the node (in pieces of tokens when its tensors with all tokens exceed a storage window).
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let device = rec.device().clone();
    let Some(per) = token_pieces(&device, node)? else { return record_whole(rec, node) };
    let n_tok = node.src(1)?.ne[2];
    for t0 in (0..n_tok).step_by(per as usize) {
        record_whole(rec, &token_piece(node, t0, per.min(n_tok - t0))?)?;
    }
    Ok(())
}

/// Record a node whose src1, ids, dst (and what is derived from them) each fit one storage window.
fn record_whole(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    let (a, b, ids, d) = (node.src(0)?, node.src(1)?, node.src(2)?, &node.dst);
    let device = rec.device().clone();
    let a_unit = if a.ty == GgmlType::F32 { 4 } else { 2 };
    let pieces = expert_pieces(&device, a)?;
    let (b_bind, b_off) = bind(&device, b, 4, false)?;
    let (d_bind, d_off) = bind(&device, d, 4, true)?;
    let (i_bind, i_off) = bind(&device, ids, 4, false)?;
    let (n_used, n_b1, n_tok) = (dim_u32("n_used", ids.ne[0])?, dim_u32("src1 ne[1]", b.ne[1])?, b.ne[2]);
    // b described as MUL_MAT sees it ([K, n_b1, n_tokens]), so a copy of it rounded or quantized for a product with
    // the same b (MUL_MAT or another MUL_MAT_ID: gate and up) is made once.
    let plain = MatMulPush {
        m: dim_u32("M", a.ne[1])?,
        n: n_b1,
        k: dim_u32("K", a.ne[0])?,
        a_off: 0,
        a_row: stride_units("src0 row", a.nb[1], a_unit)?,
        a_s2: stride_units("src0 expert", a.nb[2], a_unit)?,
        a_s3: 0,
        b_off,
        b_col: stride_units("src1 column", b.nb[1], 4)?,
        b_s2: stride_units("src1 dim-2", b.nb[2], 4)?,
        b_s3: stride_units("src1 dim-3", b.nb[3], 4)?,
        d_off,
        d_col: stride_units("dst column", d.nb[1], 4)?,
        d_s2: 0,
        d_s3: 0,
        ne12: dim_u32("tokens", n_tok)?,
        r2: 1,
        r3: 1,
        pad: [0; 2],
    };
    let prec = b_prec(node);
    let kq = kquant_int_dot_b(&device, a, b, prec);
    let use_int_dot = int_dot(&device, a, b, prec) || kq;
    let cm = coopmat_kernel(&device, a, b, prec);
    let bq8 = quantizes_b(&device, a, b, prec) && !kq && cm.is_none();
    let (b_bind, p) = if cm.is_some() {
        narrow_b(rec, b, &b_bind, plain, rounding(a, prec))?
    } else if kq {
        quantize_b_q8k(rec, b, &b_bind, plain)?
    } else if bq8 {
        quantize_b(rec, b, &b_bind, plain)?
    } else if let Some(r) = rounding(a, prec) {
        round_b(rec, b, &b_bind, plain, r)?
    } else {
        (b_bind, plain)
    };
    // One pair per workgroup z (mat-vec): slot i12 = z % n_used, token i13 = z / n_used. a_off, a_s3 (the first
    // expert bound) and pad[1] (the experts bound) are set per range of experts.
    let token_stride = p.b_s2;
    let p = MatMulPush {
        n: 1,
        b_s2: if n_b1 == 1 { 0 } else { p.b_col },
        b_s3: token_stride,
        d_s2: stride_units("dst dim-1", d.nb[1], 4)?,
        d_s3: stride_units("dst dim-2", d.nb[2], 4)?,
        ne12: n_used,
        r2: i_off,
        r3: stride_units("ids dim-0", ids.nb[0], 4)?,
        pad: [stride_units("ids dim-1", ids.nb[1], 4)?, 0],
        ..p
    };
    let bind_experts = |(e0, cnt): (i64, i64)| -> Result<(Binding, MatMulPush)> {
        let view =
            Tensor::new(a.buffer.clone(), a.offset + e0 as u64 * a.nb[2], a.ty, [a.ne[0], a.ne[1], cnt, 1], a.nb)?;
        let (a_bind, a_off) = bind(&device, &view, a_unit, false)?;
        Ok((a_bind, MatMulPush { a_off, a_s3: e0 as u32, pad: [p.pad[0], cnt as u32], ..p }))
    };
    if tiled(b) {
        // With all experts bound at once, the map of the same ids is made once per submission (gate, up and down
        // of a layer share it); per range of experts it is remade in the one scratch region.
        let (start, end) = ids.byte_range();
        let source = (ids.buffer.id(), start, end);
        let layout = (ids.ty.raw(), [ids.ne[0], ids.ne[1], a.ne[2], 0], ids.nb);
        let shared = pieces.len() == 1;
        if let (true, Some((map_read, m_off))) = (shared, rec.find_derived(MAP.name, source, layout)) {
            let (a_bind, pp) = bind_experts(pieces[0])?;
            let bindings = [a_bind, b_bind, d_bind, i_bind, map_read];
            return record_tiled(rec, node, bindings, m_off, pp, (bq8, cm.as_ref()), false);
        }
        let bytes = map_bytes(a, ids);
        let (scratch, offset) = rec.scratch(bytes)?;
        let region = Tensor::contiguous(scratch, offset, GgmlType::I32, [(bytes / 4) as i64, 1, 1, 1])?;
        let (map_bind, m_off) = bind(&device, &region, 4, true)?;
        for piece in pieces {
            let (a_bind, pp) = bind_experts(piece)?;
            let bindings = [a_bind, b_bind.clone(), d_bind.clone(), i_bind.clone(), map_bind.clone()];
            record_tiled(rec, node, bindings, m_off, pp, (bq8, cm.as_ref()), true)?;
        }
        if shared {
            let result = (Binding { write: false, ..map_bind }, m_off);
            rec.add_derived(Derived { kind: MAP.name, source, layout, result });
        }
        return Ok(());
    }
    let caps = device.caps();
    let use_sg = caps.subgroup_arithmetic && !device_forces_shared_reduction();
    // MUL_MAT's shapes, so that a pair's result is MUL_MAT's bit for bit.
    let cfg = match (kq, block32_int_dot_b(a, b) && use_int_dot) {
        (true, _) => kquant_idot_config(),
        (false, true) => block32_idot_config(a.ty),
        _ => matvec_config(a.ty),
    };
    let (rows, unroll) = (cfg.rows, cfg.unroll);
    // As MUL_MAT's mat-vec sizes its workgroups for one column.
    let wg = matvec_workgroup(caps, matvec_kernel_type(a), cfg, p.k, 1);
    let (gx, gy) = split_groups(u64::from(p.m.div_ceil(rows)), caps.max_workgroup_count[0])?;
    let vec4 = (p.b_off % 4 == 0 && p.b_col % 4 == 0 && p.b_s2 % 4 == 0 && p.b_s3 % 4 == 0) as u32;
    // Constant 7: the generic dequantizing kernel's unit, as MUL_MAT's (other kernels have no constant 7).
    let spec = [wg, 1, 1, rows, vec4, unroll, 1, u32::from(dq_span16(caps))];
    // Pieces of tokens when the pairs exceed the device's workgroup count along z.
    let per_piece = (caps.max_workgroup_count[2] / n_used).max(1);
    let n_tok = dim_u32("tokens", n_tok)?;
    for piece in pieces {
        let (a_bind, pp) = bind_experts(piece)?;
        let words32 = [pp.a_off, pp.a_row, pp.a_s2].iter().all(|v| v % 2 == 0);
        let (sg, shmem) = if bf16_scalar(a) {
            (
                shader("mul_mat_vec_bf16_id", spirv::MUL_MAT_VEC_BF16_ID),
                shader("mul_mat_vec_bf16_id_shmem", spirv::MUL_MAT_VEC_BF16_ID_SHMEM),
            )
        } else {
            shaders(a.ty, use_int_dot, words32).expect("checked")
        };
        let pipeline = device.pipelines().get(&device, if use_sg { &sg } else { &shmem }, &spec)?;
        let bindings = [a_bind, b_bind.clone(), d_bind.clone(), i_bind.clone()];
        let mut t0 = 0;
        while t0 < n_tok {
            let nt = per_piece.min(n_tok - t0);
            let tp = MatMulPush {
                b_off: pp.b_off + t0 * pp.b_s3,
                d_off: pp.d_off + t0 * pp.d_s3,
                r2: pp.r2 + t0 * pp.pad[0],
                ..pp
            };
            rec.dispatch("mul_mat_vec_id", &pipeline, &bindings, bytemuck::bytes_of(&tp), [gx, gy, nt * n_used])?;
            t0 += nt;
        }
    }
    Ok(())
}

/// The tiled path for one range of experts: list the pairs of each of its experts on the device (unless `make_map`
/// is false: an identical map is already there), then one tiled product per expert over its pairs. `bindings`: the
/// range's weights, b (as the kernels read it), dst, ids, the map's scratch (first element `m_off`); `p`: the
/// mat-vec push constants of the range; `bq8`: b is in 8-bit blocks; `cm`: the cooperative-matrix kernel to take.
fn record_tiled(
    rec: &mut Recorder<'_>,
    node: &Node,
    bindings: [Binding; 5],
    m_off: u32,
    p: MatMulPush,
    (bq8, cm): (bool, Option<&(Shader, u32)>),
    make_map: bool,
) -> Result<()> {
    let (a, ids) = (node.src(0)?, node.src(2)?);
    let device = rec.device().clone();
    let caps = device.caps();
    let [a_bind, b_bind, d_bind, i_bind, map_write] = bindings;
    let n_pairs = dim_u32("pairs", ids.ne[0] * ids.ne[1])?;
    let (e0, cnt) = (p.a_s3, p.pad[1]);
    let push =
        MapPush { i_off: p.r2, i_s0: p.r3, i_s1: p.pad[0], n_used: p.ne12, n_pairs, n_as: cnt, m_off, e_first: e0 };
    if make_map {
        let pipeline = device.pipelines().get(&device, &MAP, &[])?;
        let (gx, gy) = split_groups(u64::from(cnt), caps.max_workgroup_count[0])?;
        let bindings = [i_bind, map_write.clone()];
        rec.dispatch("mul_mat_id_map", &pipeline, &bindings, bytemuck::bytes_of(&push), [gx, gy, 1])?;
    }
    let map_read = Binding { write: false, ..map_write };
    let tp = MatMulPush { n: n_pairs, r2: cnt, r3: m_off, pad: [0; 2], ..p };
    let n_tok = dim_u32("tokens", ids.ne[1])?;
    if let Some(kernel) = cm {
        return crate::ops::coopmat::record_id(rec, kernel, &[a_bind, b_bind, d_bind, map_read], &tp, n_tok);
    }
    let shader = if bf16_scalar(a) {
        shader("mul_mat_id_bf16", spirv::MUL_MAT_ID_BF16)
    } else {
        tiled_shader(a.ty, bq8).expect("checked")
    };
    let pipeline = device.pipelines().get(&device, &shader, &[])?;
    // Column tiles: enough for one slot per token and expert (what a router's top-k gives); an expert with more
    // pairs has its tiles looped over by the same workgroups.
    let groups = [p.m.div_ceil(64), n_tok.div_ceil(64).min(caps.max_workgroup_count[1]), cnt];
    if groups[0] > caps.max_workgroup_count[0] {
        return Err(Error::unsupported(format!("MUL_MAT_ID: {groups:?} workgroups exceed this device's limits")));
    }
    rec.dispatch("mul_mat_id", &pipeline, &[a_bind, b_bind, d_bind, map_read], bytemuck::bytes_of(&tp), groups)
}
