//! SCALE (`dst = x * s + b`, ggml_scale / ggml_scale_bias) on F32, and the SILU activation (`x * sigmoid(x)`,
//! ggml_unary with GGML_UNARY_OP_SILU) on F32 or F16. dst has src0's shape and type; both may have any strides
//! (ggml itself asks for packed rows, so this is a superset) and dst may be src0 itself (in place).

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, spirv};
use crate::error::{Error, Result};
use crate::graph::{Node, Op, UnaryOp};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `unary.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct UnaryPush {
    ne: [u32; 4],
    s_a: [u32; 4],
    s_d: [u32; 4],
    a_off: u32,
    d_off: u32,
    n: u32,
    pad0: u32,
    a_mode: u32,
    d_mode: u32,
    a_rs: u32,
    d_rs: u32,
    scale: f32,
    bias: f32,
    pad1: [f32; 2],
}

const PUSH: u32 = std::mem::size_of::<UnaryPush>() as u32;
const _: () = assert!(PUSH == 96);

/// Spec constant OP of `unary.comp`.
const OP_SCALE: u32 = 0;
const OP_SILU: u32 = 1;

fn shader(ty: GgmlType) -> Shader {
    match ty {
        GgmlType::F16 => Shader { name: "unary_f16", spirv: spirv::UNARY_F16, bindings: 2, push_size: PUSH },
        _ => Shader { name: "unary_f32", spirv: spirv::UNARY_F32, bindings: 2, push_size: PUSH },
    }
}

/// (kernel op, scale, bias) of a node.
fn params(op: &Op) -> Result<(u32, f32, f32)> {
    match op {
        Op::Scale { s, b } => Ok((OP_SCALE, *s, *b)),
        Op::Unary(UnaryOp::Silu) => Ok((OP_SILU, 0.0, 0.0)),
        other => Err(Error::Internal(format!("unary::check called for {}", other.name()))),
    }
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let name = node.op.name();
    let (op, _, _) = params(&node.op)?;
    let (a, d) = (node.src(0)?, &node.dst);
    if d.ne != a.ne {
        return Err(Error::invalid(format!("{name}: dst shape {:?} differs from src0 {:?}", d.ne, a.ne)));
    }
    let types_ok = match op {
        // ggml's CPU SCALE takes F32 (and BF16, which ggvk does not have).
        OP_SCALE => a.ty == GgmlType::F32 && d.ty == GgmlType::F32,
        _ => a.ty == d.ty && matches!(a.ty, GgmlType::F32 | GgmlType::F16),
    };
    if !types_ok {
        let what = if op == OP_SCALE { "SCALE supports f32 -> f32" } else { "SILU supports f32 -> f32 and f16 -> f16" };
        return Err(Error::unsupported(format!("{name} with {} -> {} ({what})", a.ty.name(), d.ty.name())));
    }
    check_layout(name, "src0", a)?;
    check_layout(name, "dst", d)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (op, scale, bias) = params(&node.op)?;
    let (a, d) = (node.src(0)?, &node.dst);
    let device = rec.device().clone();
    let sa = strided(&device, a, false, "src0")?;
    let sd = strided(&device, d, true, "dst")?;
    let (a_mode, a_rs) = sa.mode();
    let (d_mode, d_rs) = sd.mode();
    let n = dim_u32("elements", d.nelements())?;
    let push = UnaryPush {
        ne: sa.ne,
        s_a: sa.s,
        s_d: sd.s,
        a_off: sa.off,
        d_off: sd.off,
        n,
        a_mode,
        d_mode,
        a_rs,
        d_rs,
        scale,
        bias,
        ..Default::default()
    };
    let pipeline = pipeline(&device, &shader(a.ty), &[op])?;
    let label = if op == OP_SCALE { "scale" } else { "silu" };
    dispatch(rec, label, &pipeline, &[sa.binding, sd.binding], bytemuck::bytes_of(&push), n)
}
