//! COL2IM_1D (ggml_col2im_1d): src0 the columns of a GEMM `[K * oc, T_in]` scatter-added back into a signal dst
//! `[T_out, oc]`, `T_out = (T_in - 1) * s0 + K - 2 * p0` (the uncropped signal with `p0` values cut from each end):
//! `dst[t, c] = sum over t_in with 0 <= t + p0 - t_in * s0 < K of src0[c * K + (t + p0 - t_in * s0), t_in]`.
//! F32, F16 or BF16 (both tensors the same type), both contiguous, as ggml requires. Gathered as ggml's CPU backend
//! does: positions ascending, added in f32 from 0, then rounded to the type (nearest even; BF16 as
//! GGML_FP32_TO_BF16). One thread per dst value (`shaders/col2im_1d.comp`).

use bytemuck::{Pod, Zeroable};

use super::binary::{dispatch, pipeline};
use super::{bind, dim_u32, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `col2im_1d.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Col2ImPush {
    k: u32,
    oc: u32,
    t_in: u32,
    t_out: u32,
    s0: u32,
    p0: u32,
    a_off: u32,
    d_off: u32,
    n: u32,
    pad: [u32; 3],
}

const PUSH: u32 = std::mem::size_of::<Col2ImPush>() as u32;
const _: () = assert!(PUSH == 48);

fn shader(ty: GgmlType) -> Option<Shader> {
    let sh = |name, spirv| Shader { name, spirv, bindings: 2, push_size: PUSH };
    Some(match ty {
        GgmlType::F32 => sh("col2im_1d_f32", spirv::COL2IM_1D_F32),
        GgmlType::F16 => sh("col2im_1d_f16", spirv::COL2IM_1D_F16),
        GgmlType::BF16 => sh("col2im_1d_bf16", spirv::COL2IM_1D_BF16),
        _ => return None,
    })
}

/// The kernel size `K` and the lengths `T_in`, `T_out` of a checked node.
fn dims(node: &Node) -> Result<(i64, i64, i64)> {
    let Op::Col2Im1d { s0, oc, p0 } = node.op else {
        return Err(Error::Internal(format!("col2im::check called for {}", node.op.name())));
    };
    let (a, d) = (node.src(0)?, &node.dst);
    if s0 <= 0 || oc <= 0 || p0 < 0 {
        return Err(Error::invalid(format!("COL2IM_1D with s0 {s0}, oc {oc}, p0 {p0}")));
    }
    let (s0, oc, p0) = (i64::from(s0), i64::from(oc), i64::from(p0));
    let (k_oc, t_in) = (a.ne[0], a.ne[1]);
    let k = k_oc / oc;
    if a.ne[2] != 1 || a.ne[3] != 1 || k == 0 || k * oc != k_oc || t_in == 0 {
        return Err(Error::invalid(format!("COL2IM_1D of columns {:?} into {oc} channels", a.ne)));
    }
    let t_out = (t_in - 1).checked_mul(s0).and_then(|v| v.checked_add(k - 2 * p0));
    match t_out {
        Some(t_out) if t_out > 0 && d.ne == [t_out, oc, 1, 1] => {}
        _ => {
            return Err(Error::invalid(format!(
                "COL2IM_1D: dst {:?} for columns {:?}, s0 {s0}, oc {oc}, p0 {p0}",
                d.ne, a.ne
            )))
        }
    }
    // Positions (up to T_out + p0, and T_in * s0) are signed 32-bit in the kernel.
    let t_out = d.ne[0];
    if t_out.saturating_add(p0) > i64::from(i32::MAX) || t_in.saturating_mul(s0) > i64::from(i32::MAX) {
        return Err(Error::unsupported(format!("COL2IM_1D of {t_in} columns at stride {s0} (32-bit positions)")));
    }
    Ok((k, t_in, t_out))
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    dims(node)?;
    let (a, d) = (node.src(0)?, &node.dst);
    if a.ty != d.ty || shader(a.ty).is_none() {
        return Err(Error::unsupported(format!("COL2IM_1D of {} -> {} (f32, f16, bf16)", a.ty.name(), d.ty.name())));
    }
    if !a.is_contiguous() || !d.is_contiguous() {
        return Err(Error::unsupported("COL2IM_1D of non-contiguous tensors"));
    }
    let unit = a.ty.type_size() as u64;
    for (what, t) in [("src0", a), ("dst", d)] {
        dim_u32(&format!("COL2IM_1D: {what} elements"), t.nelements())?;
        if t.offset % unit != 0 {
            return Err(Error::unsupported(format!(
                "COL2IM_1D: {what} offset {} is not a multiple of {unit}",
                t.offset
            )));
        }
    }
    Ok(())
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (k, t_in, t_out) = dims(node)?;
    let Op::Col2Im1d { s0, oc, p0 } = node.op else {
        return Err(Error::Internal("col2im::record".into()));
    };
    let (a, d) = (node.src(0)?, &node.dst);
    let device = rec.device().clone();
    let unit = a.ty.type_size() as u64;
    let (ab, a_off) = bind(&device, a, unit, false)?;
    let (db, d_off) = bind(&device, d, unit, true)?;
    let n = dim_u32("elements", d.nelements())?;
    let push = Col2ImPush {
        k: dim_u32("K", k)?,
        oc: oc as u32,
        t_in: dim_u32("T_in", t_in)?,
        t_out: dim_u32("T_out", t_out)?,
        s0: s0 as u32,
        p0: p0 as u32,
        a_off,
        d_off,
        n,
        pad: [0; 3],
    };
    let shader = shader(a.ty).ok_or_else(|| Error::Internal("col2im type".into()))?;
    let pipeline = pipeline(&device, &shader, &[])?;
    dispatch(rec, "col2im_1d", &pipeline, &[ab, db], bytemuck::bytes_of(&push), n)
}
