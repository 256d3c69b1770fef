//! SCALE (`dst = x * s + b`, ggml_scale / ggml_scale_bias) on F32, and on F32 or F16: every ggml unary op but
//! XIELU (SILU, GELU, GELU_QUICK, GELU_ERF, TANH, RELU, SIGMOID, NEG, EXP, EXPM1, SOFTPLUS, ABS, SGN, STEP,
//! HARDSIGMOID, HARDSWISH, ELU, FLOOR, CEIL, ROUND, TRUNC), the plain ops SQR, SQRT, SIN, COS, LOG, and CLAMP
//! and LEAKY_RELU. Formulas are ggml's CPU ones; GELU and GELU_QUICK go through f16 as ggml's CPU tables do
//! (input rounded to f16, result rounded to f16, also for F32 tensors; GELU is 0 for x <= -10 and x for
//! x >= 10). dst has src0's shape and type; both may have any strides (ggml itself asks for packed rows, so
//! this is a superset) and dst may be src0 itself (in place).

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, UnaryOp};
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

/// Spec constant OP of `unary.comp` (its `UOP_*` codes).
const OP_SCALE: u32 = 0;

/// The kernel's op code of an activation.
fn unary_code(u: UnaryOp) -> u32 {
    match u {
        UnaryOp::Silu => 1,
        UnaryOp::Abs => 2,
        UnaryOp::Sgn => 3,
        UnaryOp::Neg => 4,
        UnaryOp::Step => 5,
        UnaryOp::Tanh => 6,
        UnaryOp::Elu => 7,
        UnaryOp::Relu => 8,
        UnaryOp::Sigmoid => 9,
        UnaryOp::Gelu => 10,
        UnaryOp::GeluQuick => 11,
        UnaryOp::HardSwish => 12,
        UnaryOp::HardSigmoid => 13,
        UnaryOp::Exp => 14,
        UnaryOp::Expm1 => 15,
        UnaryOp::Softplus => 16,
        UnaryOp::GeluErf => 17,
        UnaryOp::Floor => 18,
        UnaryOp::Ceil => 19,
        UnaryOp::Round => 20,
        UnaryOp::Trunc => 21,
        UnaryOp::Sqr => 22,
        UnaryOp::Sqrt => 23,
        UnaryOp::Sin => 24,
        UnaryOp::Cos => 25,
        UnaryOp::Log => 26,
    }
}
const OP_CLAMP: u32 = 27;
const OP_LEAKY_RELU: u32 = 28;
const OP_XIELU: u32 = 29;

fn shader(ty: GgmlType) -> Shader {
    match ty {
        GgmlType::F16 => Shader { name: "unary_f16", spirv: spirv::UNARY_F16, bindings: 2, push_size: PUSH },
        _ => Shader { name: "unary_f32", spirv: spirv::UNARY_F32, bindings: 2, push_size: PUSH },
    }
}

/// (kernel op, scale, bias) of a node: the push constants' two parameters.
fn params(op: &Op) -> Result<(u32, f32, f32)> {
    match op {
        Op::Scale { s, b } => Ok((OP_SCALE, *s, *b)),
        Op::Unary(u) => Ok((unary_code(*u), 0.0, 0.0)),
        Op::Clamp { min, max } => Ok((OP_CLAMP, *min, *max)),
        Op::LeakyRelu { slope } => Ok((OP_LEAKY_RELU, *slope, 0.0)),
        Op::Xielu { alpha_n, alpha_p, .. } => Ok((OP_XIELU, *alpha_n, *alpha_p)),
        other => Err(Error::Internal(format!("unary::check called for {}", other.name()))),
    }
}

/// The push constants' third and fourth parameters (XIELU's beta and eps; 0 otherwise).
fn params2(op: &Op) -> [f32; 2] {
    match op {
        Op::Xielu { beta, eps, .. } => [*beta, *eps],
        _ => [0.0; 2],
    }
}

/// Labels for logs and timings, by kernel op code.
const LABELS: [&str; 30] = [
    "scale",
    "silu",
    "abs",
    "sgn",
    "neg",
    "step",
    "tanh",
    "elu",
    "relu",
    "sigmoid",
    "gelu",
    "gelu_quick",
    "hardswish",
    "hardsigmoid",
    "exp",
    "expm1",
    "softplus",
    "gelu_erf",
    "floor",
    "ceil",
    "round",
    "trunc",
    "sqr",
    "sqrt",
    "sin",
    "cos",
    "log",
    "clamp",
    "leaky_relu",
    "xielu",
];

/// A label for logs and timings.
fn label(op: u32) -> &'static str {
    LABELS.get(op as usize).copied().unwrap_or("unary")
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
        let what = if op == OP_SCALE { "supports f32 -> f32" } else { "supports f32 -> f32 and f16 -> f16" };
        return Err(Error::unsupported(format!("{} with {} -> {} ({what})", label(op), a.ty.name(), d.ty.name())));
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
        pad1: params2(&node.op),
        ..Default::default()
    };
    let pipeline = pipeline(&device, &shader(a.ty), &[op])?;
    dispatch(rec, label(op), &pipeline, &[sa.binding, sd.binding], bytemuck::bytes_of(&push), n)
}
