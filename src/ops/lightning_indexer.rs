//! LIGHTNING_INDEXER (ggml_lightning_indexer, the key scorer of DeepSeek's sparse attention):
//! `dst[kv, t, s] = sum_h relu(q[:, h, t, s] . k[:, 0, kv, s]) * w[h, t, s] + mask[kv, t, s % m_ne3]`.
//!
//! - src0 q: F32 `[D, n_head, n_tokens, n_stream]`; src1 k: `[D, 1, n_kv, n_stream]` of any K-cache type
//!   (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL: `shaders/kv_row.glsl`, as flash attention reads
//!   them), dequantized as ggml's `to_float` does; src2 weights: F32 `[n_head, n_tokens, 1, n_stream]`
//!   (pre-scaled); src3 mask: F16 `[n_kv, n_tokens, 1, m_ne3]`, `n_stream % m_ne3 == 0`; dst F32
//!   `[n_kv, n_tokens, 1, n_stream]`. Rows packed (as ggml's CPU backend asserts), any other strides.
//! - `shaders/lightning_indexer.comp` (prompts): 32 keys x 32 tokens per workgroup with the dequantized K tile in
//!   shared memory; dot products in f32 in element order (the CPU's SIMD dot regroups them), relu and weights
//!   in head order.
//! - `shaders/lightning_indexer_decode.comp` (at most 8 tokens, head sizes up to 512): 32 keys x 1, 2, 4 or 8
//!   tokens per workgroup, each key's row split over 8 threads that keep their slice in registers; the eight
//!   partial dot products are added in slice order.
//! - Heads are cut over several dispatches when there are many (partial sums kept in dst).

use bytemuck::{Pod, Zeroable};

use super::flash_attn::kv_type_code;
use super::{bind, dim_u32, spirv, stride_units};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Device, Recorder, Shader};

/// Push constants of `lightning_indexer.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct IndexerPush {
    n_embd: u32,
    n_kv: u32,
    n_tok: u32,
    k_type: u32,
    /// q first element and strides of dims 1..3 (floats).
    q: [u32; 4],
    /// k first element (16-bit words), strides of dims 2, 3 (words), flags.
    k: [u32; 3],
    flags: u32,
    /// weights first element and strides of dims 1 and 3 (floats), first head.
    w: [u32; 3],
    h0: u32,
    /// mask first element and strides of dims 1 and 3 (16-bit words), mask ne3.
    m: [u32; 4],
    /// dst first element and strides of dims 1 and 3 (floats), end head.
    o: [u32; 3],
    h1: u32,
}

const PUSH: u32 = std::mem::size_of::<IndexerPush>() as u32;
const _: () = assert!(PUSH == 96);

const SHADER: Shader =
    Shader { name: "lightning_indexer", spirv: spirv::LIGHTNING_INDEXER, bindings: 5, push_size: PUSH };
const DECODE: Shader =
    Shader { name: "lightning_indexer_decode", spirv: spirv::LIGHTNING_INDEXER_DECODE, bindings: 5, push_size: PUSH };

/// Keys and tokens per workgroup, head-size chunk and threads (the shader's TK, TT, DC and workgroup size).
const TK: u32 = 32;
const TT: u32 = 32;
const DC: u32 = 32;
const WG: u32 = 256;
const FLAG_FIRST: u32 = 1;
const FLAG_LAST: u32 = 2;
/// Loop iterations a thread may run in one dispatch (lavapipe ends a shader's loops after 65535 in all).
const ITERS_PER_DISPATCH: u64 = 16384;
/// Threads a K row is split over in the decode kernel (its NS).
const DECODE_SLICES: u32 = 8;
/// The decode kernel takes at most this many tokens, and K rows of at most this many values a thread.
const DECODE_MAX_TOKENS: i64 = 8;
const DECODE_MAX_SLICE: u32 = 64;

/// Which kernel runs a node, with its specialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// `lightning_indexer.comp` with head size `d` (rounded up to a multiple of [`DC`]).
    Tile { d: u32 },
    /// `lightning_indexer_decode.comp` with `sl` values a thread and `tt` tokens a workgroup.
    Decode { sl: u32, tt: u32 },
}

impl Plan {
    fn new(n_embd: i64, n_tok: i64) -> Plan {
        let n_embd = n_embd as u32;
        let sl = n_embd.div_ceil(DECODE_SLICES).max(1);
        if n_tok <= DECODE_MAX_TOKENS && sl <= DECODE_MAX_SLICE {
            Plan::Decode { sl, tt: (n_tok.max(1) as u32).next_power_of_two() }
        } else {
            Plan::Tile { d: n_embd.div_ceil(DC).max(1) * DC }
        }
    }

    /// Shared memory the kernel declares.
    fn shared_bytes(self) -> u64 {
        let words = match self {
            // The K tile and one Q chunk, rows padded by one.
            Plan::Tile { d } => TK * (d + 1) + TT * (DC + 1),
            // The Q rows (each slice padded by one) and the partial dot products.
            Plan::Decode { sl, tt } => tt * DECODE_SLICES * (sl + 1) + TK * DECODE_SLICES * tt,
        };
        4 * u64::from(words)
    }

    /// Heads per dispatch, so that a thread's loops stay within [`ITERS_PER_DISPATCH`] (loops with constant trip
    /// counts are counted as loops, should the unroll hints be dropped).
    fn heads_per_dispatch(self) -> u32 {
        let (per_head, once) = match self {
            // Per chunk of the head: the Q load loop and the products; once: the K tile load.
            Plan::Tile { d } => (u64::from(d / DC) * u64::from(TT * DC / WG + DC) + 8, u64::from(TK * d / WG) + 8),
            // The Q load loop, the products of every token, the sum of the partials; once: the K slice load.
            Plan::Decode { sl, tt } => (
                u64::from((tt * DECODE_SLICES * sl).div_ceil(WG) + tt * (sl + 1) + DECODE_SLICES) + 8,
                u64::from(sl) + 8,
            ),
        };
        (ITERS_PER_DISPATCH.saturating_sub(once) / per_head).max(1) as u32
    }

    /// Pipeline, specialisation constants and tokens per workgroup.
    fn shader(self) -> (&'static Shader, Vec<u32>, u32) {
        match self {
            Plan::Tile { d } => (&SHADER, vec![d], TT),
            Plan::Decode { sl, tt } => (&DECODE, vec![sl, tt], tt),
        }
    }
}

fn packed(what: &str, t: &Tensor) -> Result<()> {
    if !t.is_row_packed() {
        return Err(Error::unsupported(format!("LIGHTNING_INDEXER: {what} rows are not packed")));
    }
    Ok(())
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    if !matches!(node.op, Op::LightningIndexer) {
        return Err(Error::Internal(format!("lightning_indexer::check called for {}", node.op.name())));
    }
    let (q, k, w, m, d) = (node.src(0)?, node.src(1)?, node.src(2)?, node.src(3)?, &node.dst);
    if q.ty != GgmlType::F32 || w.ty != GgmlType::F32 || m.ty != GgmlType::F16 || d.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!(
            "LIGHTNING_INDEXER with q {}, weights {}, mask {}, dst {} (f32, f32, f16, f32 only)",
            q.ty.name(),
            w.ty.name(),
            m.ty.name(),
            d.ty.name()
        )));
    }
    if kv_type_code(k.ty).is_none() {
        return Err(Error::unsupported(format!("LIGHTNING_INDEXER with K of type {}", k.ty.name())));
    }
    let (n_embd, n_head, n_tok, ns, n_kv) = (q.ne[0], q.ne[1], q.ne[2], q.ne[3], k.ne[2]);
    let fits = k.ne[0] == n_embd
        && k.ne[1] == 1
        && k.ne[3] == ns
        && w.ne == [n_head, n_tok, 1, ns]
        && m.ne[0] == n_kv
        && m.ne[1] == n_tok
        && m.ne[2] == 1
        && m.ne[3] >= 1
        && ns % m.ne[3] == 0
        && d.ne == [n_kv, n_tok, 1, ns];
    if !fits {
        return Err(Error::invalid(format!(
            "LIGHTNING_INDEXER: q {:?}, k {:?}, weights {:?}, mask {:?} and dst {:?} do not fit together",
            q.ne, k.ne, w.ne, m.ne, d.ne
        )));
    }
    for (what, t) in [("q", q), ("k", k), ("weights", w), ("mask", m), ("dst", d)] {
        packed(what, t)?;
        for i in 0..4 {
            dim_u32(&format!("LIGHTNING_INDEXER {what} ne[{i}]"), t.ne[i])?;
        }
    }
    if n_embd > 4096 {
        return Err(Error::unsupported(format!("LIGHTNING_INDEXER with head size {n_embd}")));
    }
    strides(q, 4)?;
    strides(k, 2)?;
    strides(w, 4)?;
    strides(m, 2)?;
    strides(d, 4)?;
    Ok(())
}

/// Strides of dims 1..3 in `unit`-byte elements.
fn strides(t: &Tensor, unit: u64) -> Result<[u32; 3]> {
    let s = |i: usize| stride_units("LIGHTNING_INDEXER", t.nb[i], unit);
    Ok([s(1)?, s(2)?, s(3)?])
}

/// [`check`] against `device`: the kernel's shared memory must fit, 256 threads its workgroups.
pub fn check_on(device: &Device, node: &Node) -> Result<()> {
    let caps = device.caps();
    let q = node.src(0)?;
    let need = Plan::new(q.ne[0], q.ne[2]).shared_bytes();
    if need > u64::from(caps.max_shared_memory) {
        return Err(Error::unsupported(format!(
            "LIGHTNING_INDEXER: head size {} needs {need} bytes of shared memory, more than this device's {}",
            node.src(0)?.ne[0],
            caps.max_shared_memory
        )));
    }
    if caps.max_workgroup_invocations < WG {
        return Err(Error::unsupported(format!("LIGHTNING_INDEXER needs workgroups of {WG} threads")));
    }
    Ok(())
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let device = rec.device().clone();
    check_on(&device, node)?;
    let (q, k, w, m, d) = (node.src(0)?, node.src(1)?, node.src(2)?, node.src(3)?, &node.dst);
    let (bq, q_off) = bind(&device, q, 4, false)?;
    let (bk, k_off) = bind(&device, k, 2, false)?;
    let (bw, w_off) = bind(&device, w, 4, false)?;
    let (bm, m_off) = bind(&device, m, 2, false)?;
    let (bo, o_off) = bind(&device, d, 4, true)?;
    let (sq, sk, sw, sm, so) = (strides(q, 4)?, strides(k, 2)?, strides(w, 4)?, strides(m, 2)?, strides(d, 4)?);
    let k_type = kv_type_code(k.ty).ok_or_else(|| Error::Internal("lightning_indexer: K type".into()))?;
    let n_head = dim_u32("heads", q.ne[1])?;
    let plan = Plan::new(q.ne[0], q.ne[2]);
    let mut push = IndexerPush {
        n_embd: q.ne[0] as u32,
        n_kv: k.ne[2] as u32,
        n_tok: q.ne[2] as u32,
        k_type,
        q: [q_off, sq[0], sq[1], sq[2]],
        k: [k_off, sk[1], sk[2]],
        flags: 0,
        w: [w_off, sw[0], sw[2]],
        h0: 0,
        m: [m_off, sm[0], sm[2], m.ne[3] as u32],
        o: [o_off, so[0], so[2]],
        h1: 0,
    };
    let (shader, spec, tokens) = plan.shader();
    let p = device.pipelines().get(&device, shader, &spec)?;
    let caps = device.caps();
    let gx = push.n_kv.div_ceil(TK);
    let gy = push.n_tok.div_ceil(tokens);
    let gz = q.ne[3] as u32;
    if gx > caps.max_workgroup_count[0] || gy > caps.max_workgroup_count[1] || gz > caps.max_workgroup_count[2] {
        return Err(Error::unsupported(format!(
            "LIGHTNING_INDEXER: {gx} x {gy} x {gz} key tiles x token tiles x streams exceed the device's workgroup counts"
        )));
    }
    let step = plan.heads_per_dispatch();
    let bindings = [bq, bk, bw, bm, bo];
    let mut h0 = 0u32;
    loop {
        let h1 = n_head.min(h0.saturating_add(step));
        push.h0 = h0;
        push.h1 = h1;
        push.flags = if h0 == 0 { FLAG_FIRST } else { 0 } | if h1 == n_head { FLAG_LAST } else { 0 };
        rec.dispatch(shader.name, &p, &bindings, bytemuck::bytes_of(&push), [gx, gy, gz])?;
        if h1 == n_head {
            return Ok(());
        }
        h0 = h1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert_eq!(Plan::new(128, 512), Plan::Tile { d: 128 });
        assert_eq!(Plan::new(100, 9), Plan::Tile { d: 128 });
        assert_eq!(Plan::new(128, 1), Plan::Decode { sl: 16, tt: 1 });
        assert_eq!(Plan::new(40, 3), Plan::Decode { sl: 5, tt: 4 });
        assert_eq!(Plan::new(576, 1), Plan::Tile { d: 576 });
        assert_eq!(Plan::Tile { d: 128 }.shared_bytes(), 4 * (32 * 129 + 32 * 33));
        assert_eq!(Plan::Decode { sl: 16, tt: 8 }.shared_bytes(), 4 * (8 * 8 * 17 + 32 * 8 * 8));
        // The suite's 32 and 64 heads of 128 values go in one dispatch.
        assert_eq!(Plan::Tile { d: 128 }.heads_per_dispatch(), (16384 - 24) / 152);
        for tt in [1, 2, 4, 8] {
            assert!(Plan::Decode { sl: 16, tt }.heads_per_dispatch() >= 64);
        }
        assert!(Plan::Tile { d: 4096 }.heads_per_dispatch() >= 1);
        assert!(Plan::Decode { sl: 64, tt: 8 }.heads_per_dispatch() >= 1);
    }
}
