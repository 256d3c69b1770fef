//! CROSS_ENTROPY_LOSS (ggml_cross_entropy_loss: src0 logits, src1 labels, dst one F32 value) and
//! CROSS_ENTROPY_LOSS_BACK (ggml_cross_entropy_loss_back: src0 the loss gradient (one value), src1 the logits,
//! src2 the labels; dst shaped like the logits), F32 with rows packed (`shaders/cross_entropy.comp`). The loss is
//! one workgroup walking the rows (declined when that would take one thread past 32768 loop iterations, which
//! lavapipe does not allow); the gradient a workgroup per row.

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, strided};
use super::{dim_u32, spirv, split_groups};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Threads per workgroup (a power of two; the shader's shared array is sized by it).
const WG: u32 = 256;

/// Push constants of `cross_entropy.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct CrossEntropyPush {
    ne: [u32; 4],
    s_x: [u32; 4],
    s_p: [u32; 4],
    s_d: [u32; 4],
    x_off: u32,
    p_off: u32,
    g_off: u32,
    d_off: u32,
    rows: u32,
    mode: u32,
    pad: [u32; 2],
}

const PUSH: u32 = std::mem::size_of::<CrossEntropyPush>() as u32;
const _: () = assert!(PUSH == 96);

/// (logits, labels, loss gradient) of the node.
fn parts(node: &Node) -> Result<(&Tensor, &Tensor, Option<&Tensor>)> {
    match node.op {
        Op::CrossEntropyLoss => Ok((node.src(0)?, node.src(1)?, None)),
        Op::CrossEntropyLossBack => Ok((node.src(1)?, node.src(2)?, Some(node.src(0)?))),
        _ => Err(Error::Internal(format!("cross_entropy called for {}", node.op.name()))),
    }
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let op = node.op.name();
    let (x, p, g) = parts(node)?;
    let d = &node.dst;
    if x.ty != GgmlType::F32
        || p.ty != GgmlType::F32
        || d.ty != GgmlType::F32
        || g.is_some_and(|g| g.ty != GgmlType::F32)
    {
        return Err(Error::unsupported(format!(
            "{op} of {} and {} -> {} (f32 only)",
            x.ty.name(),
            p.ty.name(),
            d.ty.name()
        )));
    }
    let d_ok = if g.is_some() { d.ne == x.ne && d.is_row_packed() } else { d.ne == [1, 1, 1, 1] };
    if x.ne != p.ne || !d_ok || g.is_some_and(|g| g.nelements() != 1) {
        return Err(Error::invalid(format!("{op}: logits {:?}, labels {:?}, dst {:?}", x.ne, p.ne, d.ne)));
    }
    if !x.is_row_packed() || !p.is_row_packed() {
        return Err(Error::unsupported(format!("{op} of rows that are not packed")));
    }
    if g.is_none() {
        // One workgroup walks every row: three passes and three reductions a row.
        let per_row = 3 * (x.ne[0] as u64).div_ceil(u64::from(WG)) + 3 * 9 + 4;
        if per_row.saturating_mul(x.nrows() as u64) > 32768 {
            return Err(Error::unsupported(format!("{op} of {} rows of {} in one workgroup", x.nrows(), x.ne[0])));
        }
    }
    check_layout(op, "logits", x)?;
    check_layout(op, "labels", p)?;
    if let Some(g) = g {
        check_layout(op, "gradient", g)?;
    }
    check_layout(op, "dst", d)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (x, p, g) = parts(node)?;
    let device = rec.device().clone();
    let sx = strided(&device, x, false, "logits")?;
    let sp = strided(&device, p, false, "labels")?;
    let sg = strided(&device, g.unwrap_or(x), false, "gradient")?;
    let sd = strided(&device, &node.dst, true, "dst")?;
    let rows = dim_u32("rows", x.nrows())?;
    let push = CrossEntropyPush {
        ne: sx.ne,
        s_x: sx.s,
        s_p: sp.s,
        s_d: sd.s,
        x_off: sx.off,
        p_off: sp.off,
        g_off: sg.off,
        d_off: sd.off,
        rows,
        mode: u32::from(g.is_some()),
        pad: [0; 2],
    };
    let shader = Shader { name: "cross_entropy", spirv: spirv::CROSS_ENTROPY, bindings: 4, push_size: PUSH };
    let wg = WG.min(device.caps().max_workgroup_invocations);
    let pl = device.pipelines().get(&device, &shader, &[wg])?;
    let (groups, label) = if g.is_some() {
        (split_groups(u64::from(rows), device.caps().max_workgroup_count[0])?, "cross_entropy_loss_back")
    } else {
        ((1, 1), "cross_entropy_loss")
    };
    let b = [sx.binding, sp.binding, sg.binding, sd.binding];
    rec.dispatch(label, &pl, &b, bytemuck::bytes_of(&push), [groups.0, groups.1, 1])
}
