//! Training steps: OPT_STEP_ADAMW (ggml_opt_step_adamw: src0 the weights, src1 the gradient, src2 and src3 the
//! first and second moments, src4 the 7 AdamW parameters) and OPT_STEP_SGD (ggml_opt_step_sgd: src0 the weights,
//! src1 the gradient, src2 alpha and weight decay). The weights (and moments) are updated in place, as in ggml,
//! whose dst is a view of src0; one thread per weight (`shaders/optim.comp`). F32, every tensor contiguous.

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `optim.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct OptPush {
    w_off: u32,
    g_off: u32,
    m_off: u32,
    v_off: u32,
    p_off: u32,
    n: u32,
    adamw: u32,
    pad: u32,
}

const PUSH: u32 = std::mem::size_of::<OptPush>() as u32;
const _: () = assert!(PUSH == 32);

fn tensors(node: &Node) -> Result<(Vec<&Tensor>, &Tensor)> {
    match node.op {
        Op::OptStepAdamw => Ok((vec![node.src(0)?, node.src(1)?, node.src(2)?, node.src(3)?], node.src(4)?)),
        Op::OptStepSgd => Ok((vec![node.src(0)?, node.src(1)?], node.src(2)?)),
        _ => Err(Error::Internal(format!("optim called for {}", node.op.name()))),
    }
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let op = node.op.name();
    let (ts, p) = tensors(node)?;
    let want_p = if matches!(node.op, Op::OptStepAdamw) { 7 } else { 2 };
    for t in ts.iter().chain([&p, &&node.dst]) {
        if t.ty != GgmlType::F32 {
            return Err(Error::unsupported(format!("{op} with a {} tensor (f32 only)", t.ty.name())));
        }
        if !t.is_contiguous() {
            return Err(Error::unsupported(format!("{op} of non-contiguous tensors")));
        }
    }
    if ts.iter().any(|t| t.ne != ts[0].ne) || node.dst.ne != ts[0].ne || p.nelements() != want_p {
        return Err(Error::invalid(format!(
            "{op}: shapes do not fit (parameters: {} values, {want_p} wanted)",
            p.nelements()
        )));
    }
    for (i, t) in ts.iter().enumerate() {
        check_layout(op, &format!("src{i}"), t)?;
    }
    check_layout(op, "parameters", p)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (ts, p) = tensors(node)?;
    let adamw = ts.len() == 4;
    let device = rec.device().clone();
    let sw = strided(&device, ts[0], true, "weights")?;
    let sg = strided(&device, ts[1], false, "gradient")?;
    // SGD has no moments: the gradient stands in for both (unused, read-only) bindings.
    let sm = strided(&device, ts[if adamw { 2 } else { 1 }], adamw, "m")?;
    let sv = strided(&device, ts[if adamw { 3 } else { 1 }], adamw, "v")?;
    let sp = strided(&device, p, false, "parameters")?;
    let n = dim_u32("elements", ts[0].nelements())?;
    let push = OptPush {
        w_off: sw.off,
        g_off: sg.off,
        m_off: sm.off,
        v_off: sv.off,
        p_off: sp.off,
        n,
        adamw: u32::from(adamw),
        pad: 0,
    };
    let shader = Shader { name: "opt_step", spirv: spirv::OPTIM, bindings: 5, push_size: PUSH };
    let pl = pipeline(&device, &shader, &[])?;
    let label = if adamw { "opt_step_adamw" } else { "opt_step_sgd" };
    dispatch(
        rec,
        label,
        &pl,
        &[sw.binding, sg.binding, sm.binding, sv.binding, sp.binding],
        bytemuck::bytes_of(&push),
        n,
    )
}
