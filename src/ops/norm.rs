//! Row norms on F32, per row (dim 0): RMS_NORM (ggml_rms_norm, `dst = x / sqrt(mean(x^2) + eps)`), NORM
//! (ggml_norm, layer norm without affine: `dst = (x - mean) / sqrt(mean((x - mean)^2) + eps)`) and L2_NORM
//! (ggml_l2_norm, `dst = x / max(sqrt(sum(x^2)), eps)`).
//!
//! Any strides (`nb[0]` a multiple of 4: permuted views too), in place allowed.
//!
//! GROUP_NORM (ggml_group_norm) is NORM over each group of `ne2 / groups` channels: for contiguous src0 and dst
//! with `ne2` a multiple of `groups` (ggml's last group is smaller otherwise; declined), each group is one
//! packed row of `ne0 * ne1 * ne2 / groups` floats, so it runs as NORM over that reshaped view. One workgroup per row; the sum of squares is reduced with subgroup arithmetic where the device
//! has it, else (or with `GGVK_SHARED_REDUCTION=1`) through shared memory.
//!
//! Also holds the helpers the other row kernels (softmax, rows) share: strides in binding units, the
//! workgroup size of one-workgroup-per-row kernels, and the reduction choice.

use bytemuck::{Pod, Zeroable};

use super::q8_emit::{self, Q8Layout};
use super::{bind, dim_u32, spirv, split_groups, stride_units};
use crate::error::{Error, Result};
use crate::ir::fused::{overlaps, RmsNormMul};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Binding, Device, Recorder, Shader};

/// Push constants of `rms_norm.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct NormPush {
    /// ne0, ne1, ne2 of src0 (= dst).
    ne: [u32; 3],
    /// Rows (ne1 * ne2 * ne3).
    rows: u32,
    /// src0 first element (floats into its window).
    x_off: u32,
    /// src0 strides of dims 1..3 (floats).
    x_s: [u32; 3],
    /// dst first element.
    d_off: u32,
    /// dst strides of dims 1..3 (floats).
    d_s: [u32; 3],
    /// Added to the mean of squares (RMS_NORM, NORM); the lower bound of the norm (L2_NORM).
    eps: f32,
    /// src0 element stride (floats).
    x_s0: u32,
    /// dst element stride (floats).
    d_s0: u32,
    /// Padding to 16 bytes.
    pad: u32,
}

const PUSH: u32 = std::mem::size_of::<NormPush>() as u32;
const _: () = assert!(PUSH == 64);

const SHADER: Shader = Shader { name: "rms_norm_f32", spirv: spirv::RMS_NORM_F32, bindings: 2, push_size: PUSH };
const SHADER_SHMEM: Shader =
    Shader { name: "rms_norm_f32_shmem", spirv: spirv::RMS_NORM_F32_SHMEM, bindings: 2, push_size: PUSH };

/// Push constants of `rms_norm.comp` with FUSE_MUL: the norm's, then the weights' and the product's offsets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct NormMulPush {
    norm: NormPush,
    /// Weights' first element (floats into their window).
    w_off: u32,
    /// The product's first element (floats into its window; strides as the norm's output).
    m_off: u32,
    /// `[0]`: the quantized copy's first word (emitting kernels), or the addend's first element and `[1]` the
    /// sum's (the kernels that also add, strides as the norm's output); otherwise padding to 16 bytes.
    pad: [u32; 2],
}

const FUSED_PUSH: u32 = std::mem::size_of::<NormMulPush>() as u32;
const _: () = assert!(FUSED_PUSH == 80);
const FUSED: Shader =
    Shader { name: "rms_norm_mul_f32", spirv: spirv::RMS_NORM_MUL_F32, bindings: 4, push_size: FUSED_PUSH };
const FUSED_SHMEM: Shader =
    Shader { name: "rms_norm_mul_f32_shmem", spirv: spirv::RMS_NORM_MUL_F32_SHMEM, bindings: 4, push_size: FUSED_PUSH };
const FUSED_ADD: Shader =
    Shader { name: "rms_norm_mul_add_f32", spirv: spirv::RMS_NORM_MUL_ADD_F32, bindings: 6, push_size: FUSED_PUSH };
const FUSED_ADD_SHMEM: Shader = Shader {
    name: "rms_norm_mul_add_f32_shmem",
    spirv: spirv::RMS_NORM_MUL_ADD_F32_SHMEM,
    bindings: 6,
    push_size: FUSED_PUSH,
};

/// (kernel op, eps) of a norm node.
fn params(op: &Op) -> Result<(u32, f32)> {
    match op {
        Op::RmsNorm { eps } => Ok((0, *eps)),
        Op::Norm { eps } => Ok((1, *eps)),
        Op::L2Norm { eps } => Ok((2, *eps)),
        other => Err(Error::Internal(format!("norm::check called for {}", other.name()))),
    }
}

/// GROUP_NORM as the NORM node over groups as rows (see the module notes); other nodes unchanged.
fn as_row_norm(node: &Node) -> Result<std::borrow::Cow<'_, Node>> {
    let Op::GroupNorm { groups, eps } = node.op else {
        return Ok(std::borrow::Cow::Borrowed(node));
    };
    let x = node.src(0)?;
    let d = &node.dst;
    if x.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!("GROUP_NORM on {} -> {} (only f32)", x.ty.name(), d.ty.name())));
    }
    if !x.same_shape(d) {
        return Err(Error::invalid(format!("GROUP_NORM: dst shape {:?} differs from src {:?}", d.ne, x.ne)));
    }
    let g = i64::from(groups);
    if g <= 0 || x.ne[2] % g != 0 {
        return Err(Error::unsupported(format!("GROUP_NORM with {groups} groups over {} channels", x.ne[2])));
    }
    if !x.is_contiguous() || !d.is_contiguous() {
        return Err(Error::unsupported("GROUP_NORM on non-contiguous tensors"));
    }
    let shape = [x.ne[0] * x.ne[1] * (x.ne[2] / g), g * x.ne[3], 1, 1];
    let view = |t: &crate::ir::Tensor| crate::ir::Tensor::contiguous(t.buffer.clone(), t.offset, t.ty, shape);
    Ok(std::borrow::Cow::Owned(Node { op: Op::Norm { eps }, src: vec![Some(view(x)?)], dst: view(d)? }))
}

/// Whether ggvk supports this RMS_NORM, NORM, L2_NORM or GROUP_NORM node.
pub fn check(node: &Node) -> Result<()> {
    let node = &*as_row_norm(node)?;
    let (_, eps) = params(&node.op)?;
    let name = node.op.name();
    let x = node.src(0)?;
    let d = &node.dst;
    if node.src.iter().skip(1).any(Option::is_some) {
        return Err(Error::invalid(format!("{name} takes one source")));
    }
    if x.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!("{name} on {} -> {} (only f32 -> f32)", x.ty.name(), d.ty.name())));
    }
    if !x.same_shape(d) {
        return Err(Error::invalid(format!("{name}: dst shape {:?} differs from src {:?}", d.ne, x.ne)));
    }
    if eps.is_nan() || eps < 0.0 {
        return Err(Error::invalid(format!("{name}: eps = {eps} must be >= 0")));
    }
    row_dims(name, x)?;
    row_strides(name, x, 4)?;
    row_strides(name, d, 4)?;
    elem_stride(name, x, 4)?;
    elem_stride(name, d, 4)?;
    Ok(())
}

/// The norm's push constants and its source and destination bindings; `None` for an empty tensor.
fn prepare(device: &Device, node: &Node, eps: f32) -> Result<Option<(NormPush, Binding, Binding)>> {
    let x = node.src(0)?;
    let d = &node.dst;
    let (ne, rows) = row_dims("RMS_NORM", x)?;
    if rows == 0 || ne[0] == 0 {
        return Ok(None);
    }
    let (xb, x_off) = bind(device, x, 4, false)?;
    let (db, d_off) = bind(device, d, 4, true)?;
    let push = NormPush {
        ne,
        rows,
        x_off,
        x_s: row_strides("RMS_NORM src0", x, 4)?,
        d_off,
        d_s: row_strides("RMS_NORM dst", d, 4)?,
        eps,
        x_s0: elem_stride("src0", x, 4)?,
        d_s0: elem_stride("dst", d, 4)?,
        pad: 0,
    };
    Ok(Some((push, xb, db)))
}

/// The fused kernels that also write the product quantized (`EMIT_QX` / `EMIT_Q8K`) or as packed f16 (`EMIT_F16`),
/// see [`super::q8_emit`].
fn fused_emitting(layout: Q8Layout) -> Shader {
    match layout {
        Q8Layout::Qx => Shader {
            name: "rms_norm_mul_f32_qx",
            spirv: spirv::RMS_NORM_MUL_F32_QX,
            bindings: 5,
            push_size: FUSED_PUSH,
        },
        Q8Layout::Q8k => Shader {
            name: "rms_norm_mul_f32_q8k",
            spirv: spirv::RMS_NORM_MUL_F32_Q8K,
            bindings: 5,
            push_size: FUSED_PUSH,
        },
        Q8Layout::F16 => Shader {
            name: "rms_norm_mul_f32_f16",
            spirv: spirv::RMS_NORM_MUL_F32_F16,
            bindings: 5,
            push_size: FUSED_PUSH,
        },
    }
}

/// Record RMS_NORM fused with the MUL by one row of weights that follows it (see [`crate::ir::fusion`]); with
/// `emit`, the product is also written in that layout for the products that read it (quantized for the integer-dot
/// products, f16 for prompt products; where the kernel can: subgroup reductions, rows a multiple of the block).
pub fn record_rms_norm_mul(rec: &mut Recorder<'_>, f: &RmsNormMul<'_>, emit: Option<Q8Layout>) -> Result<()> {
    check(f.norm)?;
    let (_, eps) = params(&f.norm.op)?;
    let device = rec.device().clone();
    let Some((norm, xb, db)) = prepare(&device, f.norm, eps)? else { return Ok(()) };
    let (wb, w_off) = bind(&device, f.weight, 4, false)?;
    let (mb, m_off) = bind(&device, f.out, 4, true)?;
    let wg = row_workgroup(&device, f.norm.dst.ne[0]);
    let emit = emit.filter(|l| use_subgroups(&device) && l.fits(f.out) && wg % l.threads() == 0);
    let slices = row_slices(f, norm.rows, emit.map_or(1, |l| l.block() as u64));
    let (gx, gy) = split_groups(u64::from(norm.rows) * u64::from(slices), device.caps().max_workgroup_count[0])?;
    if let Some(layout) = emit {
        let e = q8_emit::reserve(rec, f.out, layout)?;
        let push = NormMulPush { norm, w_off, m_off, pad: [e.word, 0] };
        let pipeline = device.pipelines().get(&device, &fused_emitting(layout), &[wg, 0, slices])?;
        let bindings = [xb, db, wb, mb, e.write.clone()];
        rec.dispatch("rms_norm_mul_q8", &pipeline, &bindings, bytemuck::bytes_of(&push), [gx, gy, 1])?;
        q8_emit::publish(rec, f.out, e);
        return Ok(());
    }
    if let Some(add) = f.add {
        let (ab, a_off) = bind(&device, add.addend, 4, false)?;
        let (sb, s_off) = bind(&device, add.sum, 4, true)?;
        let push = NormMulPush { norm, w_off, m_off, pad: [a_off, s_off] };
        let shader = if use_subgroups(&device) { &FUSED_ADD } else { &FUSED_ADD_SHMEM };
        let pipeline = device.pipelines().get(&device, shader, &[wg, 0, slices])?;
        let bindings = [xb, db, wb, mb, ab, sb];
        return rec.dispatch("rms_norm_mul_add", &pipeline, &bindings, bytemuck::bytes_of(&push), [gx, gy, 1]);
    }
    let push = NormMulPush { norm, w_off, m_off, pad: [0; 2] };
    let shader = if use_subgroups(&device) { &FUSED } else { &FUSED_SHMEM };
    let pipeline = device.pipelines().get(&device, shader, &[wg, 0, slices])?;
    rec.dispatch("rms_norm_mul", &pipeline, &[xb, db, wb, mb], bytemuck::bytes_of(&push), [gx, gy, 1])
}

/// Workgroups per row of the fused norm (`SLICES` of `rms_norm.comp`): a few rows (token generation: one) spread
/// their outputs over several workgroups, each reducing the whole row again (cheap: the row sits in L2), where the
/// outputs do not overlap the input (a slice would overwrite what another still reads) and the row divides into
/// whole `unit`s (the quantized block) per slice. `GGVK_NORM_SLICES=N` sets the count for such rows (1: one
/// workgroup per row; read once per process).
fn row_slices(f: &RmsNormMul<'_>, rows: u32, unit: u64) -> u32 {
    static KNOB: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let want = KNOB.get_or_init(|| crate::knobs::number("GGVK_NORM_SLICES")).unwrap_or(DEFAULT_SLICES) as u32;
    let Ok(x) = f.norm.src(0) else { return 1 };
    let ne0 = f.norm.dst.ne[0].max(0) as u64;
    if rows > 8 || overlaps(x, &f.norm.dst) || overlaps(x, f.out) || f.add.is_some_and(|a| overlaps(x, a.sum)) {
        return 1;
    }
    let mut s = want.max(1);
    while s > 1 && ne0 % (u64::from(s) * unit) != 0 {
        s /= 2;
    }
    s
}

/// Default [`row_slices`] count: H200, a 7B token's 65 norms of one 4096-value row, 1 / 4 / 8 / 16 slices: tg128
/// Q4_0 fa off 275.9 / 286.9 / 291.1 / 280.7 t/s (NOTES.md).
const DEFAULT_SLICES: u64 = 8;

/// Record the norm node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    let node = &*as_row_norm(node)?;
    check(node)?;
    let (op, eps) = params(&node.op)?;
    let x = node.src(0)?;
    let device = rec.device().clone();
    let Some((push, xb, db)) = prepare(&device, node, eps)? else { return Ok(()) };
    let rows = push.rows;
    let shader = if use_subgroups(&device) { &SHADER } else { &SHADER_SHMEM };
    let pipeline = device.pipelines().get(&device, shader, &[row_workgroup(&device, x.ne[0]), op])?;
    let (gx, gy) = split_groups(u64::from(rows), device.caps().max_workgroup_count[0])?;
    let label = ["rms_norm", "norm", "l2_norm"][op as usize];
    rec.dispatch(label, &pipeline, &[xb, db], bytemuck::bytes_of(&push), [gx, gy, 1])
}

/// `[ne0, ne1, ne2]` and the row count of `t`, all as u32 (Unsupported when they do not fit).
pub(crate) fn row_dims(what: &str, t: &Tensor) -> Result<([u32; 3], u32)> {
    let ne = [dim_u32(what, t.ne[0])?, dim_u32(what, t.ne[1])?, dim_u32(what, t.ne[2])?];
    dim_u32(what, t.ne[3])?;
    Ok((ne, dim_u32(&format!("{what} rows"), t.nrows())?))
}

/// Strides of dims 1..3 of `t` in `unit`-byte elements. A dim of at most one element is never stepped along,
/// so its stride is 0 whatever `nb` says.
pub(crate) fn row_strides(what: &str, t: &Tensor, unit: u64) -> Result<[u32; 3]> {
    let mut s = [0u32; 3];
    for (d, out) in (1..4).zip(s.iter_mut()) {
        if t.ne[d] > 1 {
            *out = stride_units(&format!("{what} dim-{d}"), t.nb[d], unit)?;
        }
    }
    Ok(s)
}

/// The stride of dim 0 of `t` in `unit`-byte elements (0 for at most one element).
pub(crate) fn elem_stride(what: &str, t: &Tensor, unit: u64) -> Result<u32> {
    if t.ne[0] > 1 {
        stride_units(&format!("{what} dim-0"), t.nb[0], unit)
    } else {
        Ok(0)
    }
}

/// Workgroup size of a one-workgroup-per-row kernel for rows of `ne0` elements: the power of two covering
/// the row, between 32 and 512, within the device limit.
pub(crate) fn row_workgroup(device: &Device, ne0: i64) -> u32 {
    let max = device.caps().max_workgroup_invocations.clamp(1, 1024);
    let max_pow2 = 1u32 << (31 - max.leading_zeros());
    let want = u32::try_from(ne0.clamp(1, 512)).unwrap_or(512).next_power_of_two().max(32);
    want.min(max_pow2)
}

/// Whether row reductions use subgroup arithmetic: where the device has it, unless `GGVK_SHARED_REDUCTION=1`
/// asks for the shared-memory path (as it does for mat-vec; the tests run both).
pub(crate) fn use_subgroups(device: &Device) -> bool {
    device.caps().subgroup_arithmetic && !crate::knobs::switch("GGVK_SHARED_REDUCTION", false)
}
