//! DeepSeek-V4 hyper-connections, the residual streams' mixing ops (all F32, any strides; `shaders/dsv4_hc.comp`,
//! one variant each):
//! - DSV4_HC_PRE (ggml_dsv4_hc_pre, ggml_dsv4_hc_pre_gated): src0 `x` `[n_embd, hc, n_tokens]`, src1 the weights
//!   `[hc, n_tokens]` (or the gate `[n_embd, hc, n_tokens]`, weights `sigmoid(gate)`); dst `[n_embd, n_tokens]` =
//!   `scale * sum_h x * w` (op params: scale, gated). A thread per output.
//! - DSV4_HC_POST (ggml_dsv4_hc_post): src0 `x` `[n_embd, n_tokens]`, src1 `residual` `[n_embd, hc, n_tokens]`,
//!   src2 `post` `[hc, n_tokens]`, src3 `comb` `[hc, hc, n_tokens]` or none (identity); dst `[n_embd, hc,
//!   n_tokens]` = `x * post[d] + sum_s residual[s] * comb[d, s]`. A thread per output.
//! - DSV4_HC_COMB (ggml_dsv4_hc_comb): src0 `mixes` `[24, n_tokens]`, src1 `scale` `[>= 3]`, src2 `base` `[24]`;
//!   dst `[4, 4, n_tokens]`: a softmax per source stream then `n_iter` rounds of Sinkhorn normalisation (op
//!   params: eps, n_iter). A thread per token.
//!
//! Any number of streams for PRE and POST (ggml fixes 4 only for COMB). Sums in ggml's CPU order with fused
//! multiply-adds and correctly rounded divisions; `exp` is the GPU's, so gated PRE and COMB differ from the CPU
//! by rounding.

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, opt_src, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `dsv4_hc.comp` (HC_PRE).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct PrePush {
    n_embd: u32,
    hc: u32,
    nt: u32,
    gated: u32,
    x: [u32; 4],
    w: [u32; 4],
    d: [u32; 3],
    scale: f32,
}

/// Push constants of `dsv4_hc.comp` (HC_POST).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct PostPush {
    n_embd: u32,
    hc: u32,
    nt: u32,
    has_comb: u32,
    x: [u32; 3],
    p_off: u32,
    r: [u32; 4],
    c: [u32; 4],
    d: [u32; 4],
    p_s: [u32; 2],
    pad: [u32; 2],
}

/// Push constants of `dsv4_hc.comp` (HC_COMB).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct CombPush {
    nt: u32,
    n_iter: u32,
    eps: f32,
    m: [u32; 3],
    s: [u32; 2],
    b: [u32; 2],
    d: [u32; 4],
    pad: [u32; 2],
}

const _: () = assert!(std::mem::size_of::<PrePush>() == 64);
const _: () = assert!(std::mem::size_of::<PostPush>() == 96);
const _: () = assert!(std::mem::size_of::<CombPush>() == 64);

/// Streams of DSV4_HC_COMB (ggml asserts 4).
const COMB_HC: i64 = 4;
/// Largest stream count of PRE/POST and round count of COMB: each is one loop a thread walks (lavapipe ends a
/// shader's loops after 65535 iterations in all).
const MAX_LOOP: i64 = 4096;

fn shape_err(node: &Node) -> Error {
    let shapes: Vec<_> = node.src.iter().map(|s| s.as_ref().map(|t| t.ne)).collect();
    Error::invalid(format!("{}: sources {shapes:?} and dst {:?} do not fit together", node.op.name(), node.dst.ne))
}

fn f32_tensors(op: &str, ts: &[(&str, &Tensor)]) -> Result<()> {
    for (what, t) in ts {
        if t.ty != GgmlType::F32 {
            return Err(Error::unsupported(format!("{op} with {what} of type {} (f32 only)", t.ty.name())));
        }
        check_layout(op, what, t)?;
    }
    Ok(())
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let op = node.op.name();
    let d = &node.dst;
    match node.op {
        Op::Dsv4HcPre { gated, .. } => {
            let (x, w) = (node.src(0)?, node.src(1)?);
            f32_tensors(op, &[("x", x), ("weights", w), ("dst", d)])?;
            let (n_embd, hc, nt) = (x.ne[0], x.ne[1], x.ne[2]);
            let w_ne = if gated { [n_embd, hc, nt, 1] } else { [hc, nt, 1, 1] };
            if x.ne[3] != 1 || w.ne != w_ne || d.ne != [n_embd, nt, 1, 1] {
                return Err(shape_err(node));
            }
            if hc > MAX_LOOP {
                return Err(Error::unsupported(format!("{op} with {hc} streams (at most {MAX_LOOP})")));
            }
            Ok(())
        }
        Op::Dsv4HcPost => {
            let (x, r, p) = (node.src(0)?, node.src(1)?, node.src(2)?);
            f32_tensors(op, &[("x", x), ("residual", r), ("post", p), ("dst", d)])?;
            let (n_embd, nt, hc) = (x.ne[0], x.ne[1], r.ne[1]);
            if x.ne[2] != 1
                || x.ne[3] != 1
                || r.ne != [n_embd, hc, nt, 1]
                || p.ne != [hc, nt, 1, 1]
                || d.ne != [n_embd, hc, nt, 1]
            {
                return Err(shape_err(node));
            }
            if let Some(c) = opt_src(node, 3) {
                f32_tensors(op, &[("comb", c)])?;
                if c.ne != [hc, hc, nt, 1] {
                    return Err(shape_err(node));
                }
            }
            if hc > MAX_LOOP {
                return Err(Error::unsupported(format!("{op} with {hc} streams (at most {MAX_LOOP})")));
            }
            Ok(())
        }
        Op::Dsv4HcComb { n_iter, .. } => {
            let (m, s, b) = (node.src(0)?, node.src(1)?, node.src(2)?);
            f32_tensors(op, &[("mixes", m), ("scale", s), ("base", b), ("dst", d)])?;
            let mix = (2 + COMB_HC) * COMB_HC;
            let nt = m.ne[1];
            if m.ne != [mix, nt, 1, 1]
                || s.ne[0] < 3
                || s.ne[1..] != [1, 1, 1]
                || b.ne != [mix, 1, 1, 1]
                || d.ne != [COMB_HC, COMB_HC, nt, 1]
            {
                return Err(shape_err(node));
            }
            if n_iter < 1 {
                return Err(Error::invalid(format!("{op}: n_iter {n_iter}")));
            }
            if i64::from(n_iter) > MAX_LOOP {
                return Err(Error::unsupported(format!("{op} with {n_iter} rounds (at most {MAX_LOOP})")));
            }
            Ok(())
        }
        _ => Err(Error::Internal(format!("hyper_conn::check called for {op}"))),
    }
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let device = rec.device().clone();
    let d = &node.dst;
    match node.op {
        Op::Dsv4HcPre { scale, gated } => {
            let sx = strided(&device, node.src(0)?, false, "x")?;
            let sw = strided(&device, node.src(1)?, false, "weights")?;
            let sd = strided(&device, d, true, "dst")?;
            // The weights' strides for (i, h, t): the gate is indexed like x, the weights by (h, t) alone.
            let w = if gated { [sw.off, sw.s[0], sw.s[1], sw.s[2]] } else { [sw.off, 0, sw.s[0], sw.s[1]] };
            let push = PrePush {
                n_embd: sx.ne[0],
                hc: sx.ne[1],
                nt: sx.ne[2],
                gated: u32::from(gated),
                x: [sx.off, sx.s[0], sx.s[1], sx.s[2]],
                w,
                d: [sd.off, sd.s[0], sd.s[1]],
                scale,
            };
            let n = dim_u32("outputs", d.nelements())?;
            let shader = Shader { name: "dsv4_hc_pre", spirv: spirv::DSV4_HC_PRE, bindings: 3, push_size: 64 };
            let p = pipeline(&device, &shader, &[])?;
            dispatch(rec, "dsv4_hc_pre", &p, &[sx.binding, sw.binding, sd.binding], bytemuck::bytes_of(&push), n)
        }
        Op::Dsv4HcPost => {
            let sx = strided(&device, node.src(0)?, false, "x")?;
            let sr = strided(&device, node.src(1)?, false, "residual")?;
            let sp = strided(&device, node.src(2)?, false, "post")?;
            let comb = opt_src(node, 3);
            // Without comb the kernel never reads binding 3: residual stands in.
            let sc = strided(&device, comb.unwrap_or(node.src(1)?), false, "comb")?;
            let sd = strided(&device, d, true, "dst")?;
            let push = PostPush {
                n_embd: sd.ne[0],
                hc: sd.ne[1],
                nt: sd.ne[2],
                has_comb: u32::from(comb.is_some()),
                x: [sx.off, sx.s[0], sx.s[1]],
                p_off: sp.off,
                r: [sr.off, sr.s[0], sr.s[1], sr.s[2]],
                c: [sc.off, sc.s[0], sc.s[1], sc.s[2]],
                d: [sd.off, sd.s[0], sd.s[1], sd.s[2]],
                p_s: [sp.s[0], sp.s[1]],
                pad: [0; 2],
            };
            let n = dim_u32("outputs", d.nelements())?;
            let shader = Shader { name: "dsv4_hc_post", spirv: spirv::DSV4_HC_POST, bindings: 5, push_size: 96 };
            let p = pipeline(&device, &shader, &[])?;
            let b = [sx.binding, sr.binding, sp.binding, sc.binding, sd.binding];
            dispatch(rec, "dsv4_hc_post", &p, &b, bytemuck::bytes_of(&push), n)
        }
        Op::Dsv4HcComb { eps, n_iter } => {
            let sm = strided(&device, node.src(0)?, false, "mixes")?;
            let ss = strided(&device, node.src(1)?, false, "scale")?;
            let sb = strided(&device, node.src(2)?, false, "base")?;
            let sd = strided(&device, d, true, "dst")?;
            let push = CombPush {
                nt: sm.ne[1],
                n_iter: n_iter as u32,
                eps,
                m: [sm.off, sm.s[0], sm.s[1]],
                s: [ss.off, ss.s[0]],
                b: [sb.off, sb.s[0]],
                d: [sd.off, sd.s[0], sd.s[1], sd.s[2]],
                pad: [0; 2],
            };
            let shader = Shader { name: "dsv4_hc_comb", spirv: spirv::DSV4_HC_COMB, bindings: 4, push_size: 64 };
            let p = pipeline(&device, &shader, &[])?;
            let b = [sm.binding, ss.binding, sb.binding, sd.binding];
            dispatch(rec, "dsv4_hc_comb", &p, &b, bytemuck::bytes_of(&push), push.nt)
        }
        _ => Err(Error::Internal(format!("hyper_conn::record called for {}", node.op.name()))),
    }
}
