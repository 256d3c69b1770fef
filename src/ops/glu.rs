//! Gated linear units `dst = act(gate) * up`, F32 or F16 (src0, src1 and dst of one type): SWIGLU (silu),
//! REGLU (relu), GEGLU (GELU-tanh through ggml's f16 table: 0 for gate <= -10, gate * up for gate >= 10),
//! GEGLU_ERF, GEGLU_QUICK (through the f16 table). F16 results are rounded once, from f32, as ggml's CPU does.
//!
//! Fused form (src1 `None`, ggml_glu): src0 holds both halves along dim 0; with `nc = src0.ne0 / 2` (rounded
//! down, as ggml does) the gate is columns `0..nc` and up is `nc..2nc`, or the other way round when `swapped`;
//! dst is `[nc, ne1, ne2, ne3]`.
//! Split form (src1 `Some`, ggml_glu_split): gate = src0, up = src1 (same shape and type), dst of that shape.
//! `swapped` has no effect in the split form: ggml_glu_split never sets it and ggml's backends (CPU, CUDA,
//! Vulkan) apply it only to the fused form, so ggvk does the same.
//! Any strides (ggml asks for ggml_is_contiguous_1, a subset).

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided, Strided};
use super::q8_emit::{self, Q8Layout};
use super::{dim_u32, opt_src, spirv, split_groups};
use crate::error::{Error, Result};
use crate::ir::{GluOp, Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Binding, Recorder, Shader};

/// Push constants of `glu.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct GluPush {
    ne: [u32; 4],
    s_g: [u32; 4],
    s_u: [u32; 4],
    s_d: [u32; 4],
    g_off: u32,
    u_off: u32,
    d_off: u32,
    n: u32,
    g_mode: u32,
    u_mode: u32,
    d_mode: u32,
    /// SWIGLU_OAI's alpha (0 otherwise).
    alpha: f32,
    g_rs: u32,
    u_rs: u32,
    d_rs: u32,
    /// SWIGLU_OAI's limit (0 otherwise).
    limit: f32,
}

const PUSH: u32 = std::mem::size_of::<GluPush>() as u32;
const _: () = assert!(PUSH == 112);

fn shader(ty: GgmlType) -> Shader {
    match ty {
        GgmlType::F16 => Shader { name: "glu_f16", spirv: spirv::GLU_F16, bindings: 3, push_size: PUSH },
        _ => Shader { name: "glu_f32", spirv: spirv::GLU_F32, bindings: 3, push_size: PUSH },
    }
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let name = node.op.name();
    let oai = match &node.op {
        Op::Glu { .. } => false,
        Op::SwigluOai { .. } => true,
        Op::SwigluClamp { .. } => false,
        Op::SiluBack => {
            if opt_src(node, 1).is_none() {
                return Err(Error::invalid(format!("{name} needs source 1")));
            }
            false
        }
        _ => return Err(Error::Internal(format!("glu::check called for {name}"))),
    };
    let (a, d) = (node.src(0)?, &node.dst);
    let want = match opt_src(node, 1) {
        Some(b) => {
            if b.ne != a.ne {
                return Err(Error::invalid(format!("{name}: src1 shape {:?} differs from src0 {:?}", b.ne, a.ne)));
            }
            if b.ty != a.ty {
                return Err(Error::invalid(format!(
                    "{name}: src1 type {} differs from src0 {}",
                    b.ty.name(),
                    a.ty.name()
                )));
            }
            check_layout(name, "src1", b)?;
            a.ne
        }
        None => [a.ne[0] / 2, a.ne[1], a.ne[2], a.ne[3]],
    };
    if d.ne != want {
        return Err(Error::invalid(format!("{name}: dst shape {:?}, expected {want:?}", d.ne)));
    }
    if oai && a.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!("{name} of {} (f32 only, as ggml's CPU backend)", a.ty.name())));
    }
    if !matches!(a.ty, GgmlType::F32 | GgmlType::F16) || d.ty != a.ty {
        return Err(Error::unsupported(format!(
            "{name} with {} -> {} (supported: f32 -> f32 and f16 -> f16)",
            a.ty.name(),
            d.ty.name()
        )));
    }
    check_layout(name, "src0", a)?;
    check_layout(name, "dst", d)
}

/// The push constants, bindings (gate, up, dst), label and kernel op code of a checked node.
type Prepared = (GluPush, [Binding; 3], &'static str, u32);

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    let (push, bindings, label, code) = prepare(rec.device(), node)?;
    let n = push.n;
    let pipeline = pipeline(rec.device(), &shader(node.src(0)?.ty), &[code])?;
    dispatch(rec, label, &pipeline, &bindings, bytemuck::bytes_of(&push), n)
}

/// Whether the node can also write its output quantized ([`record_emitting`]): a supported F32 GLU.
pub fn can_emit(node: &Node) -> bool {
    matches!(node.op, Op::Glu { .. }) && node.dst.ty == GgmlType::F32 && check(node).is_ok()
}

/// Push constants of the emitting kernels: `glu.comp`'s and the quantized copy's first word.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct GluEmitPush {
    glu: GluPush,
    q_off: u32,
    pad: [u32; 3],
}

const EMIT_PUSH: u32 = std::mem::size_of::<GluEmitPush>() as u32;
const _: () = assert!(EMIT_PUSH == 128);

/// Workgroup of the emitting kernels (a multiple of 64 invocations, a Q8_K block's).
const EMIT_WG: u32 = 256;

/// Record the node and write its output quantized in `layout` too, for the integer-dot products that read it
/// ([`super::q8_emit`]); recorded plainly where the output does not fit the layout.
pub fn record_emitting(rec: &mut Recorder<'_>, node: &Node, layout: Q8Layout) -> Result<()> {
    let device = rec.device().clone();
    let shader = match layout {
        Q8Layout::Qx => Shader { name: "glu_f32_qx", spirv: spirv::GLU_F32_QX, bindings: 4, push_size: EMIT_PUSH },
        Q8Layout::Q8k => Shader { name: "glu_f32_q8k", spirv: spirv::GLU_F32_Q8K, bindings: 4, push_size: EMIT_PUSH },
        // The f16 copy is the fused norm's alone (`graph::fusion::plan_quantize` plans it for no other producer).
        Q8Layout::F16 => return record(rec, node),
    };
    if !can_emit(node) || !layout.fits(&node.dst) || device.caps().max_workgroup_invocations < EMIT_WG {
        return record(rec, node);
    }
    let (glu, [g, u, d], label, code) = prepare(&device, node)?;
    let e = q8_emit::reserve(rec, &node.dst, layout)?;
    let push = GluEmitPush { glu, q_off: e.word, pad: [0; 3] };
    let pipeline = device.pipelines().get(&device, &shader, &[EMIT_WG, code])?;
    // Four elements per invocation.
    let groups = u64::from(glu.n.div_ceil(4)).div_ceil(u64::from(EMIT_WG));
    let (gx, gy) = split_groups(groups, device.caps().max_workgroup_count[0])?;
    rec.dispatch(label, &pipeline, &[g, u, d, e.write.clone()], bytemuck::bytes_of(&push), [gx, gy, 1])?;
    q8_emit::publish(rec, &node.dst, e);
    Ok(())
}

/// The kernels' code of a GLU (`glu_plain` in shaders/activations.glsl) and its label.
pub(crate) fn op_code(op: GluOp) -> (u32, &'static str) {
    match op {
        GluOp::SwiGlu => (0, "swiglu"),
        GluOp::ReGlu => (1, "reglu"),
        GluOp::GeGlu => (2, "geglu"),
        GluOp::GeGluErf => (3, "geglu_erf"),
        GluOp::GeGluQuick => (4, "geglu_quick"),
    }
}

fn prepare(device: &std::sync::Arc<crate::vk::Device>, node: &Node) -> Result<Prepared> {
    check(node)?;
    let (code, label, swapped, alpha, limit) = match node.op {
        Op::Glu { op, swapped } => {
            let (code, label) = op_code(op);
            (code, label, swapped, 0.0, 0.0)
        }
        Op::SwigluOai { swapped, alpha, limit } => (5, "swiglu_oai", swapped, alpha, limit),
        Op::SiluBack => (6, "silu_back", false, 0.0, 0.0),
        Op::SwigluClamp { swapped, limit } => (7, "swiglu_clamp", swapped, 0.0, limit),
        _ => return Err(Error::Internal("glu::record".into())),
    };
    let (a, d) = (node.src(0)?, &node.dst);
    let sd = strided(device, d, true, "dst")?;
    let n = dim_u32("elements", d.nelements())?;
    // Gate and up views with dst's shape.
    let (g, u): (Strided, Strided) = match opt_src(node, 1) {
        Some(b) => (strided(device, a, false, "src0")?, strided(device, b, false, "src1")?),
        None => {
            let half = |second: bool| -> Result<Strided> {
                let mut v = strided(device, a, false, "src0")?;
                // Columns nc.. start nc elements along dim 0 (nc * nb0 bytes, inside src0's window).
                if second {
                    let shift = u64::from(sd.ne[0]) * u64::from(v.s[0]);
                    v.off = u32::try_from(u64::from(v.off) + shift)
                        .map_err(|_| Error::unsupported("GLU: src0 offset does not fit 32 bits"))?;
                }
                v.ne = sd.ne;
                Ok(v)
            };
            (half(swapped)?, half(!swapped)?)
        }
    };
    let (g_mode, g_rs) = g.mode();
    let (u_mode, u_rs) = u.mode();
    let (d_mode, d_rs) = sd.mode();
    let push = GluPush {
        ne: sd.ne,
        s_g: g.s,
        s_u: u.s,
        s_d: sd.s,
        g_off: g.off,
        u_off: u.off,
        d_off: sd.off,
        n,
        g_mode,
        u_mode,
        d_mode,
        g_rs,
        u_rs,
        d_rs,
        alpha,
        limit,
    };
    Ok((push, [g.binding, u.binding, sd.binding], label, code))
}
