//! The rope / K-V cache epilogue of the one-column mat-vec kernels (integer-dot ones, and F16 / F32 weights; `FUSE_ROPE`,
//! `shaders/matvec_rope.glsl`): a token's Q product also rotates its rows (ROPE), K's also stores the rotated rows
//! into the K cache (ROPE then SET_ROWS), V's stores its rows into the V cache (SET_ROWS), as
//! the engine's `graph::fusion::plan_groups` groups them. The rotation is `rope.comp`'s arithmetic (the shared
//! `rope_theta.glsl`), the f16 rounding SET_ROWS's, so the bytes are those of the separate nodes.

use bytemuck::{Pod, Zeroable};

use super::matmul::{FusedKernel, MatMulPush};
use super::{bind, dim_u32, opt_src, spirv, stride_units};
use crate::error::{Error, Result};
use crate::ir::fused::MatVecRope;
use crate::ir::Op;
use crate::quant::GgmlType;
use crate::vk::{Device, Shader};

/// Push constants of the `FUSE_ROPE` kernels (`matvec_rope.glsl`): the product's words that one column of one
/// batch needs (the kernel fixes the rest of [`MatMulPush`]), then the epilogue's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct MatVecRopePush {
    m: u32,
    k: u32,
    a_off: u32,
    a_row: u32,
    b_off: u32,
    d_off: u32,
    /// Channels per head (the rope's ne0).
    hd: u32,
    n_dims: u32,
    /// Bit 0 frequency factors, 1 I64 indices, 2 rope, 3 cache.
    flags: u32,
    p_off: u32,
    f_off: u32,
    r_off: u32,
    c_off: u32,
    c_s1: u32,
    c_rows: u32,
    i_off: u32,
    /// Values per cache row written.
    set_len: u32,
    theta_scale: f32,
    freq_scale: f32,
    ext_factor: f32,
    attn_factor: f32,
    corr: [f32; 2],
}

const PUSH: u32 = std::mem::size_of::<MatVecRopePush>() as u32;
// Within the 128 bytes every Vulkan device offers.
const _: () = assert!(PUSH == 92);

/// The `FUSE_ROPE` kernel for weights of type `ty` (the 16-byte K-quant or F16 kernel if `wide`).
fn shader(ty: GgmlType, wide: bool) -> Option<Shader> {
    let (name, spirv) = match ty {
        GgmlType::Q4_K if wide => ("mul_mat_vec_q4_k_idot_wide_rope", spirv::MUL_MAT_VEC_Q4_K_IDOT_WIDE_ROPE),
        GgmlType::Q5_K if wide => ("mul_mat_vec_q5_k_idot_wide_rope", spirv::MUL_MAT_VEC_Q5_K_IDOT_WIDE_ROPE),
        GgmlType::Q4_0 => ("mul_mat_vec_q4_0_idot_rope", spirv::MUL_MAT_VEC_Q4_0_IDOT_ROPE),
        GgmlType::Q8_0 => ("mul_mat_vec_q8_0_idot_rope", spirv::MUL_MAT_VEC_Q8_0_IDOT_ROPE),
        GgmlType::Q4_K => ("mul_mat_vec_q4_k_idot_rope", spirv::MUL_MAT_VEC_Q4_K_IDOT_ROPE),
        GgmlType::Q5_K => ("mul_mat_vec_q5_k_idot_rope", spirv::MUL_MAT_VEC_Q5_K_IDOT_ROPE),
        GgmlType::Q6_K => ("mul_mat_vec_q6_k_idot_rope", spirv::MUL_MAT_VEC_Q6_K_IDOT_ROPE),
        GgmlType::F16 if wide => ("mul_mat_vec_f16_wide_rope", spirv::MUL_MAT_VEC_F16_WIDE_ROPE),
        GgmlType::F16 => ("mul_mat_vec_f16_rope", spirv::MUL_MAT_VEC_F16_ROPE),
        GgmlType::F32 => ("mul_mat_vec_f32_rope", spirv::MUL_MAT_VEC_F32_ROPE),
        _ => return None,
    };
    Some(Shader { name, spirv, bindings: 8, push_size: PUSH })
}

/// The shader, the five extra bindings (positions, frequency factors, rope output, indices, cache; the product's
/// output stands in for those the group lacks, never written) and the push constants of the product `p` with the
/// epilogue of `f`, for weights of type `ty` in `rows`-row workgroups. `None` where the epilogue cannot run: no
/// kernel for the type, an odd number of rows per workgroup (a pair's two rows must share one), or push
/// constants beyond the device's. `base` must be a product of one column of one batch.
pub(crate) fn prepare(
    device: &Device,
    f: &MatVecRope<'_>,
    (ty, wide, rows): (GgmlType, bool, u32),
    base: MatMulPush,
) -> Result<Option<FusedKernel>> {
    let Some(shader) = shader(ty, wide) else { return Ok(None) };
    if rows % 2 != 0 || device.caps().max_push_constants < PUSH {
        return Ok(None);
    }
    if base.n != 1 || base.ne12 != 1 || base.r2 != 1 || base.r3 != 1 {
        return Err(Error::Internal("the mat-vec rope epilogue on more than one column".into()));
    }
    let t = &f.mm.dst;
    let mut push = MatVecRopePush {
        m: base.m,
        k: base.k,
        a_off: base.a_off,
        a_row: base.a_row,
        b_off: base.b_off,
        d_off: base.d_off,
        ..Default::default()
    };
    let (dummy, _) = bind(device, t, 4, false)?;
    let mut bindings = vec![dummy.clone(), dummy.clone(), dummy.clone(), dummy.clone()];
    let (cache_dummy, _) = bind(device, t, 2, false)?;
    bindings.push(cache_dummy);
    if let Some(rope) = f.rope {
        let Op::Rope(params) = &rope.op else {
            return Err(Error::Internal("a mat-vec rope group without a ROPE".into()));
        };
        let (pb, p_off) = bind(device, rope.src(1)?, 4, false)?;
        let (rb, r_off) = bind(device, &rope.dst, 4, true)?;
        bindings[0] = pb;
        bindings[2] = rb;
        if let Some(ff) = opt_src(rope, 2) {
            let (fb, f_off) = bind(device, ff, 4, false)?;
            bindings[1] = fb;
            push.f_off = f_off;
            push.flags |= 1;
        }
        push.flags |= 4;
        push.hd = dim_u32("rope ne0", rope.src(0)?.ne[0])?;
        push.n_dims = dim_u32("rope n_dims", i64::from(params.n_dims))?;
        push.p_off = p_off;
        push.r_off = r_off;
        push.theta_scale = params.theta_scale();
        push.freq_scale = params.freq_scale;
        push.ext_factor = params.ext_factor;
        push.attn_factor = params.attn_factor;
        push.corr = params.corr_dims();
    }
    if let Some(c) = &f.cache {
        let (ib, i_off) = bind(device, c.index, 4, false)?;
        let (cb, c_off) = bind(device, c.cache, 2, true)?;
        bindings[3] = ib;
        bindings[4] = cb;
        push.flags |= 8 | if c.index.ty == GgmlType::I64 { 2 } else { 0 };
        push.c_off = c_off;
        push.c_s1 = stride_units("cache row", c.cache.nb[1], 2)?;
        push.c_rows = dim_u32("cache rows", c.cache.ne[1])?;
        push.i_off = i_off;
        push.set_len = dim_u32("cache row length", c.row_len)?;
    }
    Ok(Some(FusedKernel { shader, extra: bindings, push: bytemuck::bytes_of(&push).to_vec() }))
}
