//! Convolutions of vision, audio and diffusion encoders, and the timestep embedding of diffusion models:
//! - CONV_2D (ggml_conv_2d_direct: kernel `[KW, KH, IC, OC]`, input `[W, H, IC, N]`, dst `[OW, OH, OC, N]`),
//!   CONV_3D (ggml_conv_3d_direct: kernel `[KW, KH, KD, IC * OC]`, input `[W, H, D, IC * N]`, dst
//!   `[OW, OH, OD, OC * N]`) and CONV_2D_DW (ggml_conv_2d_dw_direct: kernel `[KW, KH, 1, C]`, input
//!   `[W, H, C, N]`, dst `[OW, OH, C, N]`) through one direct kernel (`shaders/conv_direct.comp`), a thread per dst
//!   element. Kernel F32 or F16, input and dst F32, any strides (CWHN layouts included). As ggml's CPU backend,
//!   CONV_2D and CONV_3D round the input to f16 for an F16 kernel; CONV_2D_DW does not. Sums in f32 (ggml's CPU
//!   backend goes through im2col and a matrix product: results differ by rounding).
//! - CONV_TRANSPOSE_2D (ggml_conv_transpose_2d_p0: kernel `[Kw, Kh, Cout, Cin]`, input `[Sw, Sh, Cin, N]`, dst
//!   `[(Sw - 1) s + Kw, (Sh - 1) s + Kh, Cout, N]`; `shaders/conv_transpose_2d.comp`).
//! - TIMESTEP_EMBEDDING (ggml_timestep_embedding: dst `[dim, n]` of cosines then sines of `t * freq_j`;
//!   `shaders/timestep_embedding.comp`).

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `conv_direct.comp` for CONV_2D and CONV_2D_DW.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Conv2dPush {
    /// OW, OH, OC, N.
    out_dims: [u32; 4],
    /// IW, IH, IC, depthwise.
    in_dims: [u32; 4],
    /// KW, KH, s0 | s1 << 16, d0 | d1 << 16.
    geo: [u32; 4],
    /// p0, p1, ic0, ic1.
    pad_ic: [i32; 4],
    /// Input strides: x, y, channel, n.
    src_s: [u32; 4],
    /// Kernel strides: x, y, ic, oc.
    k_s: [u32; 4],
    /// Dst strides: x, y, channel, n.
    d_s: [u32; 4],
    /// Input, kernel, dst offsets; unused.
    offs: [u32; 4],
}

/// Push constants of `conv_direct.comp` for CONV_3D (CONV3D defined).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Conv3dPush {
    /// OW, OH, OD, OC.
    out_dims: [u32; 4],
    /// IW, IH, ID, N.
    in_dims: [u32; 4],
    /// KW, KH, KD, IC.
    k_dims: [u32; 4],
    /// s0 | s1 << 16, s2 | d0 << 16, d1 | d2 << 16, ic0.
    spd: [u32; 4],
    /// p0, p1, p2, ic1.
    pad_ic: [i32; 4],
    /// Input strides: x, y, z, dim 3.
    src_s: [u32; 4],
    /// Dst strides: x, y, z, dim 3.
    d_s: [u32; 4],
    /// Input, kernel, dst offsets; unused.
    offs: [u32; 4],
}

/// Push constants of `conv_transpose_2d.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct ConvT2dPush {
    out_dims: [u32; 4],
    in_dims: [u32; 4],
    k_dims: [u32; 4],
    src_s: [u32; 4],
    k_s: [u32; 4],
    d_s: [u32; 4],
    d_off: u32,
    n: u32,
    pad: [u32; 2],
}

/// Push constants of `timestep_embedding.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct TimestepPush {
    dim: u32,
    rows: u32,
    t_off: u32,
    t_s: u32,
    d_off: u32,
    d_s: u32,
    n: u32,
    neg_log_period: f32,
}

const CONV_PUSH: u32 = std::mem::size_of::<Conv2dPush>() as u32;
const CONVT_PUSH: u32 = std::mem::size_of::<ConvT2dPush>() as u32;
const TS_PUSH: u32 = std::mem::size_of::<TimestepPush>() as u32;
const _: () = assert!(CONV_PUSH == 128 && std::mem::size_of::<Conv3dPush>() == 128);
const _: () = assert!(CONVT_PUSH == 112 && TS_PUSH == 32);

/// Loop iterations one thread may run in one dispatch (lavapipe ends a shader's loops after 65535 in all).
const ITERS_PER_DISPATCH: u64 = 16384;

/// ggml_calc_conv_output_size; `None` where it is not positive or the arithmetic overflows.
fn conv_out(ins: i64, ks: i64, s: i32, p: i32, d: i32) -> Option<i64> {
    // An empty kernel (ks = 0) is allowed, as in ggml: every output is the empty sum, 0.
    if s <= 0 || d <= 0 || ks < 0 {
        return None;
    }
    let span = i64::from(d).checked_mul(ks - 1)?;
    let v = (ins.checked_add(2 * i64::from(p))? - span - 1).checked_div(i64::from(s))? + 1;
    (v > 0).then_some(v)
}

/// The geometry one direct-convolution dispatch needs, in ggml's terms mapped to the kernel's roles.
struct Geometry {
    /// Output width, height, depth; output channels; batch.
    out: [i64; 5],
    /// Input width, height, depth; input channels (1 for depthwise).
    input: [i64; 4],
    /// Kernel width, height, depth.
    k: [i64; 3],
    s: [i32; 3],
    p: [i32; 3],
    d: [i32; 3],
}

fn geometry(node: &Node) -> Result<Geometry> {
    let (k, x, dst) = (node.src(0)?, node.src(1)?, &node.dst);
    let op = node.op.name();
    let g = match node.op {
        Op::Conv2d { s, p, d } | Op::Conv2dDw { s, p, d } => {
            let dw = matches!(node.op, Op::Conv2dDw { .. });
            let (ic, oc) = if dw { (1, x.ne[2]) } else { (x.ne[2], k.ne[3]) };
            if (dw && (k.ne[2] != 1 || k.ne[3] != x.ne[2])) || (!dw && k.ne[2] != x.ne[2]) {
                return Err(Error::invalid(format!("{op}: kernel {:?} for input {:?}", k.ne, x.ne)));
            }
            Geometry {
                out: [dst.ne[0], dst.ne[1], 1, oc, x.ne[3]],
                input: [x.ne[0], x.ne[1], 1, ic],
                k: [k.ne[0], k.ne[1], 1],
                s: [s[0], s[1], 1],
                p: [p[0], p[1], 0],
                d: [d[0], d[1], 1],
            }
        }
        Op::Conv3d { s, p, d, ic, n, oc } => {
            let (ic, n, oc) = (i64::from(ic), i64::from(n), i64::from(oc));
            if ic <= 0 || n <= 0 || oc <= 0 || k.ne[3] != ic * oc || x.ne[3] != ic * n {
                return Err(Error::invalid(format!(
                    "{op}: kernel {:?}, input {:?}, ic {ic} n {n} oc {oc}",
                    k.ne, x.ne
                )));
            }
            Geometry {
                out: [dst.ne[0], dst.ne[1], dst.ne[2], oc, n],
                input: [x.ne[0], x.ne[1], x.ne[2], ic],
                k: [k.ne[0], k.ne[1], k.ne[2]],
                s,
                p,
                d,
            }
        }
        _ => return Err(Error::Internal(format!("conv2d::geometry called for {op}"))),
    };
    Ok(g)
}

/// Loop iterations of one input channel in `conv_direct.comp`.
fn iters_per_channel(k: [i64; 3]) -> u64 {
    (k[2] as u64) * (1 + (k[1] as u64) * (1 + k[0] as u64)) + 1
}

fn check_types(op: &str, k: &Tensor, x: &Tensor, d: &Tensor) -> Result<()> {
    if !matches!(k.ty, GgmlType::F32 | GgmlType::F16) || x.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!(
            "{op} of {} kernel and {} input -> {} (kernel F32/F16, input and dst F32)",
            k.ty.name(),
            x.ty.name(),
            d.ty.name()
        )));
    }
    check_layout(op, "kernel", k)?;
    check_layout(op, "input", x)?;
    check_layout(op, "dst", d)
}

/// The layouts ggml's CPU backend gives CONV_2D_DW a meaning for: a contiguous input with a contiguous kernel
/// and dst (WHCN), or an input with the channels innermost and packed, its kernel and dst laid out alike (CWHN).
fn dw_layout(k: &Tensor, x: &Tensor, d: &Tensor) -> Result<()> {
    if x.is_contiguous() {
        if k.is_contiguous() && d.is_contiguous() {
            return Ok(());
        }
    } else {
        let cwhn = |t: &Tensor, c: i64| {
            let es = t.ty.type_size() as u64;
            let c = c as u64;
            let (w, h) = (t.ne[0] as u64, t.ne[1] as u64);
            t.nb[0] == c * es && t.nb[1] == w * c * es && t.nb[3] == w * h * c * es
        };
        let c = x.ne[2];
        let es = k.ty.type_size() as u64;
        let k_ok = k.nb[3] == es && k.nb[0] == c as u64 * es && k.nb[1] == (k.ne[0] * c) as u64 * es;
        if cwhn(x, c) && x.nb[2] == 4 && cwhn(d, c) && d.nb[2] == 4 && k_ok {
            return Ok(());
        }
    }
    Err(Error::unsupported("CONV_2D_DW with a layout other than WHCN or CWHN throughout"))
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let op = node.op.name();
    match node.op {
        Op::Conv2d { .. } | Op::Conv2dDw { .. } | Op::Conv3d { .. } => {
            let (k, x, d) = (node.src(0)?, node.src(1)?, &node.dst);
            check_types(op, k, x, d)?;
            let g = geometry(node)?;
            let mut want = [0i64; 3];
            for (i, w) in want.iter_mut().enumerate() {
                *w = conv_out(g.input[i], g.k[i], g.s[i], g.p[i], g.d[i]).ok_or_else(|| {
                    Error::invalid(format!("{op}: no output along dim {i} (input {:?}, kernel {:?})", g.input, g.k))
                })?;
            }
            let dne = match node.op {
                Op::Conv3d { .. } => [want[0], want[1], want[2], g.out[3] * g.out[4]],
                _ => [want[0], want[1], g.out[3], g.out[4]],
            };
            if d.ne != dne {
                return Err(Error::invalid(format!("{op}: dst {:?}, expected {dne:?}", d.ne)));
            }
            if matches!(node.op, Op::Conv3d { .. }) && !k.is_contiguous() {
                return Err(Error::unsupported(format!("{op} with a non-contiguous kernel")));
            }
            if matches!(node.op, Op::Conv2dDw { .. }) {
                dw_layout(k, x, d)?;
            }
            if g.p.iter().any(|p| p.unsigned_abs() > 1 << 24) || g.s.iter().chain(&g.d).any(|v| *v > 0xFFFF) {
                return Err(Error::unsupported(format!(
                    "{op}: strides {:?}, padding {:?}, dilation {:?}",
                    g.s, g.p, g.d
                )));
            }
            if iters_per_channel(g.k) > ITERS_PER_DISPATCH * 3 {
                return Err(Error::unsupported(format!("{op}: a {:?} kernel is too large for one dispatch", g.k)));
            }
            Ok(())
        }
        Op::ConvTranspose2d { stride } => {
            let (k, x, d) = (node.src(0)?, node.src(1)?, &node.dst);
            check_types(op, k, x, d)?;
            if stride <= 0 || stride > 1 << 16 {
                return Err(Error::unsupported(format!("{op} with stride {stride}")));
            }
            let s = i64::from(stride);
            let ok = k.ne[3] == x.ne[2]
                && x.ne[0] >= 1
                && x.ne[1] >= 1
                && d.ne == [(x.ne[0] - 1) * s + k.ne[0], (x.ne[1] - 1) * s + k.ne[1], k.ne[2], x.ne[3]];
            if !ok {
                return Err(Error::invalid(format!("{op}: kernel {:?}, input {:?}, dst {:?}", k.ne, x.ne, d.ne)));
            }
            // ggml's CPU backend reads kernel and dst rows as packed and the input's values as adjacent.
            let es = k.ty.type_size() as u64;
            if k.nb[0] != es
                || k.nb[1] != es * k.ne[0] as u64
                || x.nb[0] != 4
                || d.nb[0] != 4
                || d.nb[1] != 4 * d.ne[0] as u64
            {
                return Err(Error::unsupported(format!("{op} with kernel or dst rows that are not packed")));
            }
            // Taps per output: input channels times the positions whose window covers it.
            let taps =
                ((k.ne[0] as u64).div_ceil(s as u64) * (k.ne[1] as u64).div_ceil(s as u64)) * (x.ne[2] as u64 + 1);
            if taps > ITERS_PER_DISPATCH * 3 {
                return Err(Error::unsupported(format!("{op}: {taps} taps per output are too many for one dispatch")));
            }
            Ok(())
        }
        Op::TimestepEmbedding { dim, max_period } => {
            let (t, d) = (node.src(0)?, &node.dst);
            if t.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
                return Err(Error::unsupported(format!("{op} of {} -> {}", t.ty.name(), d.ty.name())));
            }
            if dim <= 0 || d.ne != [i64::from(dim), t.ne[0], 1, 1] {
                return Err(Error::invalid(format!("{op}: dim {dim}, timesteps {:?}, dst {:?}", t.ne, d.ne)));
            }
            if t.nb[0] != 4 || d.nb[0] != 4 {
                return Err(Error::unsupported(format!("{op} of values that are not adjacent")));
            }
            if max_period <= 0 {
                return Err(Error::invalid(format!("{op}: max_period {max_period}")));
            }
            check_layout(op, "timesteps", t)?;
            check_layout(op, "dst", d)
        }
        _ => Err(Error::Internal(format!("conv2d::check called for {op}"))),
    }
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let device = rec.device().clone();
    match node.op {
        Op::Conv2d { .. } | Op::Conv2dDw { .. } | Op::Conv3d { .. } => {
            let g = geometry(node)?;
            let k = node.src(0)?;
            let sk = strided(&device, k, false, "kernel")?;
            let sx = strided(&device, node.src(1)?, false, "input")?;
            let sd = strided(&device, &node.dst, true, "dst")?;
            let n = dim_u32("dst elements", node.dst.nelements())?;
            let ic = dim_u32("input channels", g.input[3])?;
            let d32 = |v: i64, w: &str| dim_u32(w, v);
            let pack = |lo: i32, hi: i32| (lo as u32 & 0xFFFF) | ((hi as u32 & 0xFFFF) << 16);
            let f16 = k.ty == GgmlType::F16;
            let conv3d = matches!(node.op, Op::Conv3d { .. });
            // The push constants of the dispatch over input channels [ic0, ic1).
            let make = |ic0: u32, ic1: u32| -> Result<Vec<u8>> {
                Ok(if conv3d {
                    let push = Conv3dPush {
                        out_dims: [sd.ne[0], sd.ne[1], sd.ne[2], d32(g.out[3], "OC")?],
                        in_dims: [sx.ne[0], sx.ne[1], sx.ne[2], d32(g.out[4], "N")?],
                        k_dims: [sk.ne[0], sk.ne[1], sk.ne[2], ic],
                        spd: [pack(g.s[0], g.s[1]), pack(g.s[2], g.d[0]), pack(g.d[1], g.d[2]), ic0],
                        pad_ic: [g.p[0], g.p[1], g.p[2], ic1 as i32],
                        src_s: sx.s,
                        d_s: sd.s,
                        offs: [sx.off, sk.off, sd.off, 0],
                    };
                    bytemuck::bytes_of(&push).to_vec()
                } else {
                    let push = Conv2dPush {
                        out_dims: sd.ne,
                        in_dims: [sx.ne[0], sx.ne[1], ic, u32::from(matches!(node.op, Op::Conv2dDw { .. }))],
                        geo: [sk.ne[0], sk.ne[1], pack(g.s[0], g.s[1]), pack(g.d[0], g.d[1])],
                        pad_ic: [g.p[0], g.p[1], ic0 as i32, ic1 as i32],
                        src_s: sx.s,
                        k_s: sk.s,
                        d_s: sd.s,
                        offs: [sx.off, sk.off, sd.off, 0],
                    };
                    bytemuck::bytes_of(&push).to_vec()
                })
            };
            let (name, spirv) = match (conv3d, f16) {
                (true, true) => ("conv_3d_f16", spirv::CONV_3D_F16),
                (true, false) => ("conv_3d_f32", spirv::CONV_3D_F32),
                (false, true) => ("conv_2d_f16", spirv::CONV_2D_F16),
                (false, false) => ("conv_2d_f32", spirv::CONV_2D_F32),
            };
            let shader = Shader { name, spirv, bindings: 3, push_size: CONV_PUSH };
            let p = pipeline(&device, &shader, &[])?;
            let b = [sx.binding, sk.binding, sd.binding];
            // Input channels in chunks that keep each dispatch's loops short; later chunks add to dst.
            let step = (ITERS_PER_DISPATCH / iters_per_channel(g.k)).max(1) as u32;
            let mut ic0 = 0u32;
            loop {
                let ic1 = ic.min(ic0.saturating_add(step));
                dispatch(rec, op_label(node), &p, &b, &make(ic0, ic1)?, n)?;
                if ic1 >= ic {
                    return Ok(());
                }
                ic0 = ic1;
            }
        }
        Op::ConvTranspose2d { stride } => {
            let k = node.src(0)?;
            let sk = strided(&device, k, false, "kernel")?;
            let sx = strided(&device, node.src(1)?, false, "input")?;
            let sd = strided(&device, &node.dst, true, "dst")?;
            let n = dim_u32("dst elements", node.dst.nelements())?;
            let push = ConvT2dPush {
                out_dims: sd.ne,
                in_dims: [sx.ne[0], sx.ne[1], sx.ne[2], stride as u32],
                k_dims: [sk.ne[0], sk.ne[1], sx.off, sk.off],
                src_s: sx.s,
                k_s: sk.s,
                d_s: sd.s,
                d_off: sd.off,
                n,
                pad: [0; 2],
            };
            let (name, spirv) = if k.ty == GgmlType::F16 {
                ("conv_transpose_2d_f16", spirv::CONV_TRANSPOSE_2D_F16)
            } else {
                ("conv_transpose_2d_f32", spirv::CONV_TRANSPOSE_2D_F32)
            };
            let shader = Shader { name, spirv, bindings: 3, push_size: CONVT_PUSH };
            let p = pipeline(&device, &shader, &[])?;
            dispatch(rec, "conv_transpose_2d", &p, &[sx.binding, sk.binding, sd.binding], bytemuck::bytes_of(&push), n)
        }
        Op::TimestepEmbedding { dim, max_period } => {
            let st = strided(&device, node.src(0)?, false, "timesteps")?;
            let sd = strided(&device, &node.dst, true, "dst")?;
            let n = dim_u32("dst elements", node.dst.nelements())?;
            let push = TimestepPush {
                dim: dim as u32,
                rows: sd.ne[1],
                t_off: st.off,
                t_s: st.s[0],
                d_off: sd.off,
                d_s: sd.s[1],
                n,
                neg_log_period: -(max_period as f32).ln(),
            };
            let shader = Shader {
                name: "timestep_embedding",
                spirv: spirv::TIMESTEP_EMBEDDING,
                bindings: 2,
                push_size: TS_PUSH,
            };
            let p = pipeline(&device, &shader, &[])?;
            dispatch(rec, "timestep_embedding", &p, &[st.binding, sd.binding], bytemuck::bytes_of(&push), n)
        }
        _ => Err(Error::Internal(format!("conv2d::record called for {}", node.op.name()))),
    }
}

fn op_label(node: &Node) -> &'static str {
    match node.op {
        Op::Conv2dDw { .. } => "conv_2d_dw",
        Op::Conv3d { .. } => "conv_3d",
        _ => "conv_2d",
    }
}
