//! The ops of recurrent models, F32 throughout, each kernel a thread per state row or column that walks the
//! tokens in order (sums in f32 in ggml's CPU order; ggml's SIMD paths may fuse or regroup them, so results
//! differ by rounding):
//! - SSM_CONV (ggml_ssm_conv, mamba's depthwise causal convolution; `shaders/ssm_conv.comp`): src0 `sx`
//!   `[d_conv - 1 + n_t, d_inner, n_s]`, src1 `c` `[d_conv, d_inner]`, dst `[d_inner, n_t, n_s]`.
//! - SSM_SCAN (ggml_ssm_scan, mamba-1 and mamba-2 with the K rollback snapshots; `shaders/ssm_scan.comp`).
//! - RWKV_WKV6 and GATED_LINEAR_ATTN (`shaders/wkv.comp`), RWKV_WKV7 (`shaders/wkv7.comp`): every source
//!   contiguous, as ggml requires; dst `[S * H, T + S * n_seqs]` (outputs, then the new states).
//! - GATED_DELTA_NET (ggml_gated_delta_net, scalar or per-channel (KDA) gate, K snapshots;
//!   `shaders/gated_delta_net.comp`): q, k, v rows packed with any other strides, the rest contiguous.

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided, Strided};
use super::{dim_u32, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Device, Recorder, Shader};

/// Push constants of `ssm_conv.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct SsmConvPush {
    /// d_inner, n_t, n_s, d_conv.
    dims: [u32; 4],
    sx_off: u32,
    sx_s1: u32,
    sx_s2: u32,
    c_off: u32,
    c_s1: u32,
    d_off: u32,
    d_s1: u32,
    d_s2: u32,
    n: u32,
    pad: [u32; 3],
}

/// Push constants of `ssm_scan.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct SsmScanPush {
    /// d_state, head_dim, n_head, n_group.
    dims: [u32; 4],
    nt: u32,
    ns: u32,
    k_snap: u32,
    s0_ne3: u32,
    a_ne0: u32,
    y_n: u32,
    s0_off: u32,
    x_off: u32,
    dt_off: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    ids_off: u32,
    d_off: u32,
    x_s: [u32; 3],
    b_s: [u32; 3],
    c_s: [u32; 3],
    /// Tokens [t0, t1) of this dispatch.
    t: [u32; 2],
}

/// Push constants of `wkv.comp` (RWKV_WKV6, GATED_LINEAR_ATTN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct WkvPush {
    /// S, H, T, n_seqs.
    dims: [u32; 4],
    /// k, v, r (or q), u (or g), w, state.
    offs: [u32; 6],
    d_off: u32,
    scale: f32,
    /// Tokens [t0, t1) of each sequence in this dispatch.
    t: [u32; 2],
}

/// Push constants of `wkv7.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Wkv7Push {
    /// S, H, T, n_seqs.
    dims: [u32; 4],
    /// r, w, k, v, a, b, state.
    offs: [u32; 7],
    d_off: u32,
    /// Tokens [t0, t1) of each sequence in this dispatch.
    t: [u32; 2],
}

/// Push constants of `gated_delta_net.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct DeltaNetPush {
    /// S, H, n_tokens, n_seqs.
    dims: [u32; 4],
    /// q heads, q sequences, k heads, k sequences.
    qk: [u32; 4],
    q_s: [u32; 3],
    k_s: [u32; 3],
    v_s: [u32; 3],
    g_ne0: u32,
    k_snap: u32,
    s0_s3: u32,
    /// q, k, v, g, beta, state.
    offs: [u32; 6],
    d_off: u32,
    scale: f32,
    /// Tokens [t0, t1) of this dispatch.
    t: [u32; 2],
}

const _: () = assert!(std::mem::size_of::<SsmConvPush>() == 64);
const _: () = assert!(std::mem::size_of::<SsmScanPush>() == 116);
const _: () = assert!(std::mem::size_of::<WkvPush>() == 56);
const _: () = assert!(std::mem::size_of::<Wkv7Push>() == 56);
const _: () = assert!(std::mem::size_of::<DeltaNetPush>() == 120);

/// Loop iterations one thread may run in one dispatch (lavapipe ends a shader's loops after 65535 in all; this
/// keeps well clear of it, and keeps each dispatch short on GPUs with a watchdog).
const ITERS_PER_DISPATCH: u64 = 16384;

/// The token ranges `[t0, t1)` of `tokens` split so that each costs at most [`ITERS_PER_DISPATCH`] at
/// `per_token` loop iterations a token.
fn token_chunks(tokens: u32, per_token: u64) -> impl Iterator<Item = [u32; 2]> {
    let step = (ITERS_PER_DISPATCH / per_token.max(1)).clamp(1, u64::from(u32::MAX)) as u32;
    (0..tokens.div_ceil(step)).map(move |c| [c * step, tokens.min((c + 1) * step)])
}

fn f32_only(op: &str, ts: &[&Tensor]) -> Result<()> {
    for t in ts {
        if t.ty != GgmlType::F32 {
            return Err(Error::unsupported(format!("{op} with a {} tensor (f32 only)", t.ty.name())));
        }
    }
    Ok(())
}

/// The largest state row a thread walks per token: one token's loops must fit [`ITERS_PER_DISPATCH`] comfortably.
const MAX_ROW: i64 = 4096;

fn row_limit(op: &str, what: &str, n: i64) -> Result<()> {
    if n > MAX_ROW {
        return Err(Error::unsupported(format!("{op}: {what} = {n} (at most {MAX_ROW})")));
    }
    Ok(())
}

fn contiguous(op: &str, what: &str, t: &Tensor) -> Result<()> {
    if !t.is_contiguous() {
        return Err(Error::unsupported(format!("{op}: {what} is not contiguous")));
    }
    check_layout(op, what, t)
}

fn shape_err(op: &str, node: &Node) -> Error {
    let shapes: Vec<_> = node.src.iter().map(|s| s.as_ref().map(|t| t.ne)).collect();
    Error::invalid(format!("{op}: sources {shapes:?} and dst {:?} do not fit together", node.dst.ne))
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let op = node.op.name();
    let d = &node.dst;
    match node.op {
        Op::SsmConv => {
            let (sx, c) = (node.src(0)?, node.src(1)?);
            f32_only(op, &[sx, c, d])?;
            let (nc, ni, nt, ns) = (c.ne[0], c.ne[1], d.ne[1], sx.ne[2]);
            if c.ne[2] != 1 || c.ne[3] != 1 || sx.ne[3] != 1 || nc < 1 || sx.ne[1] != ni || sx.ne[0] != nc - 1 + nt {
                return Err(shape_err(op, node));
            }
            if d.ne != [ni, nt, ns, 1] {
                return Err(shape_err(op, node));
            }
            row_limit(op, "d_conv", nc)?;
            // ggml's CPU backend steps through sx and c rows by their lengths.
            if sx.nb[1] != 4 * sx.ne[0] as u64 || c.nb[1] != 4 * nc as u64 {
                return Err(Error::unsupported(format!("{op}: sx or c rows are not packed")));
            }
            for (what, t) in [("src0", sx), ("src1", c), ("dst", d)] {
                if !t.is_row_packed() {
                    return Err(Error::unsupported(format!("{op}: {what} rows are not packed")));
                }
                check_layout(op, what, t)?;
            }
            Ok(())
        }
        Op::SsmScan { k } => {
            let s = node.src(0)?;
            let (x, dt, a, b, c, ids) =
                (node.src(1)?, node.src(2)?, node.src(3)?, node.src(4)?, node.src(5)?, node.src(6)?);
            f32_only(op, &[s, x, dt, a, b, c, d])?;
            if ids.ty != GgmlType::I32 {
                return Err(Error::invalid(format!("{op}: ids must be I32")));
            }
            let (nc, nr, nh, nt, ns) = (s.ne[0], x.ne[0], x.ne[1], x.ne[2], x.ne[3]);
            let ng = b.ne[1];
            let snap = i64::from(k);
            let ok = k >= 1
                && s.ne[1] == nr
                && s.ne[2] == nh
                && dt.ne == [nh, nt, ns, 1]
                && a.ne[1] == nh
                && a.ne[2] == 1
                && a.ne[3] == 1
                && (a.ne[0] == 1 || (a.ne[0] == nc && k == 1))
                && b.ne == [nc, ng, nt, ns]
                && c.ne == b.ne
                && ng >= 1
                && nh % ng == 0
                && ids.ne == [ns, 1, 1, 1]
                && s.ne[3] >= 1
                && d.ne[1..] == [1, 1, 1]
                && Some(d.ne[0]) == x.nelements().checked_add(snap.saturating_mul(nc * nr * nh * ns));
            if !ok {
                return Err(shape_err(op, node));
            }
            row_limit(op, "d_state", nc)?;
            // ggml steps through a token's heads (x) and groups (B, C) by the row length.
            if x.nb[1] != 4 * nr as u64 || b.nb[1] != 4 * nc as u64 || c.nb[1] != 4 * nc as u64 {
                return Err(Error::unsupported(format!("{op}: x, B or C rows are not packed along dim 1")));
            }
            for (what, t) in [("s", s), ("dt", dt), ("A", a), ("ids", ids), ("dst", d)] {
                contiguous(op, what, t)?;
            }
            for (what, t) in [("x", x), ("B", b), ("C", c)] {
                if !t.is_row_packed() {
                    return Err(Error::unsupported(format!("{op}: {what} rows are not packed")));
                }
                check_layout(op, what, t)?;
            }
            if u32::try_from(d.nelements()).is_err() {
                return Err(Error::unsupported(format!("{op}: dst too large for 32-bit indexing")));
            }
            Ok(())
        }
        Op::RwkvWkv6 | Op::GatedLinearAttn { .. } | Op::RwkvWkv7 => {
            let n_in = match node.op {
                Op::RwkvWkv6 => 5,
                Op::GatedLinearAttn { .. } => 4,
                _ => 6,
            };
            let ins: Vec<&Tensor> = (0..n_in).map(|i| node.src(i)).collect::<Result<_>>()?;
            let state = node.src(n_in)?;
            let mut all = ins.clone();
            all.extend([state, d]);
            f32_only(op, &all)?;
            // WKV7's v is src3; WKV6 and GLA have k, v as src0, src1.
            let k = if matches!(node.op, Op::RwkvWkv7) { ins[2] } else { ins[0] };
            let (sz, h, t) = (k.ne[0], k.ne[1], k.ne[2]);
            let n_seqs = state.ne[1];
            let per_token = [sz, h, t, 1];
            let ok = ins.iter().enumerate().all(|(i, x)| {
                // WKV6's time_faaaa (src3) is [S, H].
                if matches!(node.op, Op::RwkvWkv6) && i == 3 {
                    x.ne == [sz, h, 1, 1]
                } else {
                    x.ne == per_token
                }
            }) && sz >= 1
                && n_seqs >= 1
                && t % n_seqs == 0
                && state.nelements() == sz * sz * h * n_seqs
                && d.ne == [sz * h, t + sz * n_seqs, 1, 1];
            if !ok {
                return Err(shape_err(op, node));
            }
            row_limit(op, "head size", sz)?;
            for (i, x) in all.iter().enumerate() {
                contiguous(op, &format!("tensor {i}"), x)?;
            }
            Ok(())
        }
        Op::GatedDeltaNet { k: snaps } => {
            let (q, k, v, g, beta, s0) =
                (node.src(0)?, node.src(1)?, node.src(2)?, node.src(3)?, node.src(4)?, node.src(5)?);
            f32_only(op, &[q, k, v, g, beta, s0, d])?;
            let (sv, h, nt, ns) = (v.ne[0], v.ne[1], v.ne[2], v.ne[3]);
            let qk_ok =
                |t: &Tensor| t.ne[0] == sv && t.ne[2] == nt && t.ne[1] >= 1 && t.ne[3] >= 1 && ns % t.ne[3] == 0;
            let ok = snaps >= 1
                && qk_ok(q)
                && qk_ok(k)
                && (g.ne[0] == 1 || g.ne[0] == sv)
                && g.ne[1..] == [h, nt, ns]
                && beta.ne == [1, h, nt, ns]
                && s0.ne == [sv, sv, h, ns]
                && d.ne == [sv * h, (nt * ns).saturating_add(i64::from(snaps).saturating_mul(sv * ns)), 1, 1];
            if !ok {
                return Err(shape_err(op, node));
            }
            row_limit(op, "head size", sv)?;
            for (what, t) in [("q", q), ("k", k), ("v", v)] {
                if !t.is_row_packed() {
                    return Err(Error::unsupported(format!("{op}: {what} rows are not packed")));
                }
                check_layout(op, what, t)?;
            }
            for (what, t) in [("g", g), ("beta", beta), ("dst", d)] {
                contiguous(op, what, t)?;
            }
            // The state's sequences may be spaced apart (nb[3]); its matrices are packed.
            if s0.nb[0] != 4 || s0.nb[1] != 4 * s0.ne[0] as u64 || s0.nb[2] != s0.nb[1] * s0.ne[1] as u64 {
                return Err(Error::unsupported(format!("{op}: state matrices are not packed")));
            }
            check_layout(op, "state", s0)
        }
        _ => Err(Error::Internal(format!("recurrent::check called for {op}"))),
    }
}

fn bind_all(device: &Device, node: &Node, n: usize) -> Result<(Vec<Strided>, Strided)> {
    let srcs = (0..n).map(|i| strided(device, node.src(i)?, false, &format!("src{i}"))).collect::<Result<Vec<_>>>()?;
    let d = strided(device, &node.dst, true, "dst")?;
    Ok((srcs, d))
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let device = rec.device().clone();
    let d = &node.dst;
    match node.op {
        Op::SsmConv => {
            let (s, sd) = bind_all(&device, node, 2)?;
            let n = dim_u32("elements", d.nelements())?;
            let push = SsmConvPush {
                dims: [sd.ne[0], sd.ne[1], sd.ne[2], s[1].ne[0]],
                sx_off: s[0].off,
                sx_s1: s[0].s[1],
                sx_s2: s[0].s[2],
                c_off: s[1].off,
                c_s1: s[1].s[1],
                d_off: sd.off,
                d_s1: sd.s[1],
                d_s2: sd.s[2],
                n,
                pad: [0; 3],
            };
            let shader = Shader { name: "ssm_conv", spirv: spirv::SSM_CONV, bindings: 3, push_size: 64 };
            let p = pipeline(&device, &shader, &[])?;
            let b = [s[0].binding.clone(), s[1].binding.clone(), sd.binding];
            dispatch(rec, "ssm_conv", &p, &b, bytemuck::bytes_of(&push), n)
        }
        Op::SsmScan { k } => {
            let (s, sd) = bind_all(&device, node, 7)?;
            let (st, x, a, b) = (node.src(0)?, node.src(1)?, node.src(3)?, node.src(4)?);
            let (nr, nh, ns) = (x.ne[0], x.ne[1], x.ne[3]);
            let threads = dim_u32("threads", nr * nh * ns)?;
            let push = SsmScanPush {
                dims: [s[0].ne[0], s[0].ne[1], s[0].ne[2], dim_u32("n_group", b.ne[1])?],
                nt: s[1].ne[2],
                ns: s[1].ne[3],
                k_snap: k as u32,
                s0_ne3: dim_u32("state sequences", st.ne[3])?,
                a_ne0: dim_u32("A ne0", a.ne[0])?,
                y_n: dim_u32("x elements", x.nelements())?,
                s0_off: s[0].off,
                x_off: s[1].off,
                dt_off: s[2].off,
                a_off: s[3].off,
                b_off: s[4].off,
                c_off: s[5].off,
                ids_off: s[6].off,
                d_off: sd.off,
                x_s: [s[1].s[1], s[1].s[2], s[1].s[3]],
                b_s: [s[4].s[1], s[4].s[2], s[4].s[3]],
                c_s: [s[5].s[1], s[5].s[2], s[5].s[3]],
                t: [0, 0],
            };
            let shader = Shader { name: "ssm_scan", spirv: spirv::SSM_SCAN, bindings: 8, push_size: 116 };
            let p = pipeline(&device, &shader, &[])?;
            let mut bs: Vec<_> = s.into_iter().map(|t| t.binding).collect();
            bs.push(sd.binding);
            for t in token_chunks(push.nt, u64::from(push.dims[0]) * 2 + 4) {
                let push = SsmScanPush { t, ..push };
                dispatch(rec, "ssm_scan", &p, &bs, bytemuck::bytes_of(&push), threads)?;
            }
            Ok(())
        }
        Op::RwkvWkv6 | Op::GatedLinearAttn { .. } => {
            let gla = matches!(node.op, Op::GatedLinearAttn { .. });
            let n_src = if gla { 5 } else { 6 };
            let (s, sd) = bind_all(&device, node, n_src)?;
            let k = node.src(0)?;
            let n_seqs = node.src(n_src - 1)?.ne[1];
            let mut offs = [0u32; 6];
            if gla {
                // k, v, q, g; no time_decay; state.
                offs[..4].copy_from_slice(&[s[0].off, s[1].off, s[2].off, s[3].off]);
                offs[5] = s[4].off;
            } else {
                for (o, t) in offs.iter_mut().zip(&s) {
                    *o = t.off;
                }
            }
            let scale = if let Op::GatedLinearAttn { scale } = node.op { scale } else { 1.0 };
            let push = WkvPush {
                dims: [s[0].ne[0], s[0].ne[1], dim_u32("tokens", k.ne[2])?, dim_u32("sequences", n_seqs)?],
                offs,
                d_off: sd.off,
                scale,
                t: [0, 0],
            };
            let threads = dim_u32("threads", k.ne[0] * k.ne[1] * n_seqs)?;
            let shader = if gla {
                Shader { name: "gated_linear_attn", spirv: spirv::GATED_LINEAR_ATTN, bindings: 6, push_size: 56 }
            } else {
                Shader { name: "rwkv_wkv6", spirv: spirv::RWKV_WKV6, bindings: 7, push_size: 56 }
            };
            let p = pipeline(&device, &shader, &[])?;
            let mut bs: Vec<_> = s.into_iter().map(|t| t.binding).collect();
            bs.push(sd.binding);
            for t in token_chunks(push.dims[2] / push.dims[3], u64::from(push.dims[0]) + 2) {
                let push = WkvPush { t, ..push };
                dispatch(rec, shader.name, &p, &bs, bytemuck::bytes_of(&push), threads)?;
            }
            Ok(())
        }
        Op::RwkvWkv7 => {
            let (s, sd) = bind_all(&device, node, 7)?;
            let k = node.src(2)?;
            let n_seqs = node.src(6)?.ne[1];
            let mut offs = [0u32; 7];
            for (o, t) in offs.iter_mut().zip(&s) {
                *o = t.off;
            }
            let push = Wkv7Push {
                dims: [s[2].ne[0], s[2].ne[1], dim_u32("tokens", k.ne[2])?, dim_u32("sequences", n_seqs)?],
                offs,
                d_off: sd.off,
                t: [0, 0],
            };
            let threads = dim_u32("threads", k.ne[0] * k.ne[1] * n_seqs)?;
            let shader = Shader { name: "rwkv_wkv7", spirv: spirv::RWKV_WKV7, bindings: 8, push_size: 56 };
            let p = pipeline(&device, &shader, &[])?;
            let mut bs: Vec<_> = s.into_iter().map(|t| t.binding).collect();
            bs.push(sd.binding);
            for t in token_chunks(push.dims[2] / push.dims[3], u64::from(push.dims[0]) * 2 + 2) {
                let push = Wkv7Push { t, ..push };
                dispatch(rec, "rwkv_wkv7", &p, &bs, bytemuck::bytes_of(&push), threads)?;
            }
            Ok(())
        }
        Op::GatedDeltaNet { k: snaps } => {
            let (s, sd) = bind_all(&device, node, 6)?;
            let (v, g) = (node.src(2)?, node.src(3)?);
            let mut offs = [0u32; 6];
            for (o, t) in offs.iter_mut().zip(&s) {
                *o = t.off;
            }
            let push = DeltaNetPush {
                dims: [s[2].ne[0], s[2].ne[1], s[2].ne[2], s[2].ne[3]],
                qk: [s[0].ne[1], s[0].ne[3], s[1].ne[1], s[1].ne[3]],
                q_s: [s[0].s[1], s[0].s[2], s[0].s[3]],
                k_s: [s[1].s[1], s[1].s[2], s[1].s[3]],
                v_s: [s[2].s[1], s[2].s[2], s[2].s[3]],
                g_ne0: dim_u32("g ne0", g.ne[0])?,
                k_snap: snaps as u32,
                s0_s3: s[5].s[3],
                offs,
                d_off: sd.off,
                scale: 1.0 / (v.ne[0] as f32).sqrt(),
                t: [0, 0],
            };
            let threads = dim_u32("threads", v.ne[0] * v.ne[1] * v.ne[3])?;
            let shader = Shader { name: "gated_delta_net", spirv: spirv::GATED_DELTA_NET, bindings: 7, push_size: 120 };
            let p = pipeline(&device, &shader, &[])?;
            let mut bs: Vec<_> = s.into_iter().map(|t| t.binding).collect();
            bs.push(sd.binding);
            // The first chunk also copies the input state (S iterations); at most 3 S a token after that.
            for t in token_chunks(push.dims[2].max(1), u64::from(push.dims[0]) * 3 + 4) {
                let push = DeltaNetPush { t: [t[0], t[1].min(push.dims[2])], ..push };
                dispatch(rec, "gated_delta_net", &p, &bs, bytemuck::bytes_of(&push), threads)?;
            }
            Ok(())
        }
        _ => Err(Error::Internal(format!("recurrent::record called for {}", node.op.name()))),
    }
}
