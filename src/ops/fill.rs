//! FILL (ggml_fill: every value `c`, F32 or F16), TRI (ggml_tri: the lower or upper triangle of each matrix, with
//! or without the diagonal, zeros elsewhere; F32) and DIAG_MASK_INF (ggml_diag_mask_inf: -inf where
//! `i0 > n_past + i1`; F32), one thread per element (`shaders/mask.comp`). TRI and DIAG_MASK_INF take contiguous
//! tensors, as ggml's CPU backend reads them; FILL writes any strides.

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `mask.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct MaskPush {
    ne: [u32; 4],
    s_a: [u32; 4],
    s_d: [u32; 4],
    a_off: u32,
    d_off: u32,
    n: u32,
    mode: u32,
    param: i32,
    value: f32,
    pad: [u32; 2],
}

const PUSH: u32 = std::mem::size_of::<MaskPush>() as u32;
const _: () = assert!(PUSH == 80);

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let op = node.op.name();
    let (a, d) = (node.src(0)?, &node.dst);
    if a.ne != d.ne || a.ty != d.ty {
        return Err(Error::invalid(format!(
            "{op}: dst {} {:?} differs from src0 {} {:?}",
            d.ty.name(),
            d.ne,
            a.ty.name(),
            a.ne
        )));
    }
    let f16_ok = matches!(node.op, Op::Fill { .. });
    if !(a.ty == GgmlType::F32 || (f16_ok && a.ty == GgmlType::F16)) {
        return Err(Error::unsupported(format!("{op} of {}", a.ty.name())));
    }
    match node.op {
        Op::Fill { .. } => {
            if !d.is_row_packed() {
                return Err(Error::unsupported(format!("{op} of rows that are not packed")));
            }
        }
        Op::Tri { ty } => {
            if !(0..=3).contains(&ty) {
                return Err(Error::invalid(format!("{op}: tri type {ty}")));
            }
            if !a.is_contiguous() || !d.is_contiguous() {
                return Err(Error::unsupported(format!("{op} of non-contiguous tensors")));
            }
        }
        Op::DiagMaskInf { n_past } => {
            if n_past < 0 {
                return Err(Error::invalid(format!("{op}: n_past {n_past}")));
            }
            if !a.is_contiguous() || !d.is_contiguous() {
                return Err(Error::unsupported(format!("{op} of non-contiguous tensors")));
            }
        }
        _ => return Err(Error::Internal(format!("fill::check called for {op}"))),
    }
    check_layout(op, "src0", a)?;
    check_layout(op, "dst", d)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let device = rec.device().clone();
    let (a, d) = (node.src(0)?, &node.dst);
    let sa = strided(&device, a, false, "src0")?;
    let sd = strided(&device, d, true, "dst")?;
    let n = dim_u32("elements", d.nelements())?;
    let (mode, param, value) = match node.op {
        Op::Fill { c } => (0, 0, c),
        Op::Tri { ty } => (1, ty, 0.0),
        Op::DiagMaskInf { n_past } => (2, n_past, 0.0),
        _ => return Err(Error::Internal("fill::record".into())),
    };
    let push =
        MaskPush { ne: sd.ne, s_a: sa.s, s_d: sd.s, a_off: sa.off, d_off: sd.off, n, mode, param, value, pad: [0; 2] };
    let (name, spirv) =
        if d.ty == GgmlType::F16 { ("mask_f16", spirv::MASK_F16) } else { ("mask_f32", spirv::MASK_F32) };
    let shader = Shader { name, spirv, bindings: 2, push_size: PUSH };
    let p = pipeline(&device, &shader, &[])?;
    dispatch(rec, "mask", &p, &[sa.binding, sd.binding], bytemuck::bytes_of(&push), n)
}
