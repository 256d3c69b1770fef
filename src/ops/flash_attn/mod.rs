//! FLASH_ATTN_EXT (ggml_flash_attn_ext, with ggml_flash_attn_ext_add_sinks): fused attention
//! `out = softmax(scale * q k^T [softcapped] + slope * mask) v` per query row and head, as ggml's CPU backend
//! computes it.
//!
//! - src0 q: F32 `[DK, n_q, n_head, ne3]`; src1 k: `[DK, n_kv, n_head_kv, ne3]`; src2 v: `[DV, n_kv, n_head_kv,
//!   ne3]` (not transposed). K and V may be F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 or IQ4_NL (every K/V
//!   cache type llama.cpp offers, each side its own type); rows packed, any strides.
//!   GQA: `n_head % n_head_kv == 0`, Q head `h` reads KV head `h / (n_head / n_head_kv)`.
//! - src3 mask (optional): F16 `[>= n_kv, >= n_q, m2, m3]`, row `iq1` of batch `(h % m2, iq3 % m3)`; a -inf entry
//!   drops that key. ALiBi (`max_bias > 0`) scales the mask by the head's slope, as SOFT_MAX does.
//! - src4 sinks (optional): F32 `[n_head]`, a per-head logit that joins the normalisation with no value row.
//! - op params: scale, max_bias, logit_softcap (`s = softcap * tanh(s * scale / softcap)`), precision (DEFAULT
//!   and F32 both accumulate in f32 here, as on the CPU).
//! - dst: F32 `[DV, n_head, n_q, ne3]` (heads and rows swapped relative to q).
//!
//! Like the CPU backend, Q is rounded to K's dot-product type first: 8-bit blocks (q8_0/q8_1) for the 32-blocks,
//! bf16 for BF16 K, f16 for F16 K except where the CPU takes its f32 tiled path (n_q >= 64, K and V both F16).
//!
//! `flash_attn.comp` runs one workgroup per (block of rows, KV head, sequence); when that gives few workgroups
//! (token generation, >= 128 keys), the KV range is also split over workgroups that write partial
//! (max, sum, output) records to scratch, and `flash_attn_reduce.comp` combines them.
//!
//! Here: the node check, the general kernel's plan, the recording of every kernel but the NV_cooperative_matrix2
//! ones, the split records and their reduction. `decode`: the plan of `flash_attn_decode.comp` (tokens and small
//! batches). `coopmat`: which nodes take the cooperative-matrix kernels (`flash_attn_cm.comp`,
//! `flash_attn_cm2.comp` and its split variant), their shapes and constants, and the NV_cooperative_matrix2
//! recording.

use bytemuck::{Pod, Zeroable};

use super::q8_emit::{self, Q8Layout};
use super::{bind, dim_u32, opt_src, spirv, split_groups, stride_units};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Binding, Device, Recorder, Shader};

mod coopmat;
mod decode;

use coopmat::{cm2_flag_bytes, cm2_shader, cm2_split_on, cm_plan_on, laid_out, record_cm2, CM2, CM2S};
pub use coopmat::{cm2_plan, cm2_split_plan, cm_plan, cm_shared_bytes, Cm2Split, CmKv, CmRows, CmShape};
pub(crate) use coopmat::{cm2_split_shapes, CM2_HEADS, CM2_KEYS, CM2_WG, CM_ROWS};
// For `CoopmatDevice::cm2_split`'s documentation.
#[allow(unused_imports)]
pub(crate) use coopmat::{CM2S_KEYS, CM2S_ROWS};
use decode::{decode_plan, vector_v};

/// Push constants of `flash_attn.comp` (128 bytes, the guaranteed minimum).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct FlashAttnPush {
    n_q: u32,
    n_kv: u32,
    /// Q heads per KV head.
    ratio: u32,
    n_head_kv: u32,
    /// q first element and strides of dims 1..3 (floats).
    q: [u32; 4],
    /// k first element and strides (16-bit words).
    k: [u32; 4],
    /// v first element and strides (16-bit words).
    v: [u32; 4],
    /// mask first element and strides (16-bit words).
    m: [u32; 4],
    /// mask ne2 | ne3 << 16.
    m_ne23: u32,
    /// FLAG_* bits, K type << 4, V type << 8, Q rounding << 12, n_head_log2 << 16.
    flags: u32,
    /// sinks first element (floats).
    s_off: u32,
    /// Keys per split (n_kv when not split); `flash_attn_cm2.comp`: the first word of its mask flags.
    chunk: u32,
    /// dst (or partials) first element and strides of dims 1..3 (floats).
    d: [u32; 4],
    scale: f32,
    softcap: f32,
    /// log2 of ALiBi's m0 and m1.
    e0: f32,
    e1: f32,
}

const PUSH: u32 = std::mem::size_of::<FlashAttnPush>() as u32;
const _: () = assert!(PUSH == 128);

/// Push constants of `flash_attn_reduce.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct ReducePush {
    n_q: u32,
    n_head: u32,
    /// Output rows (n_q * n_head * ne3).
    total: u32,
    splits: u32,
    dv: u32,
    has_sinks: u32,
    s_off: u32,
    p_off: u32,
    d: [u32; 4],
}

const REDUCE_PUSH: u32 = std::mem::size_of::<ReducePush>() as u32;

/// Push constants of `flash_attn_reduce.comp` writing the quantized copy too (EMIT_QX / EMIT_Q8K).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct ReduceEmitPush {
    reduce: ReducePush,
    /// First word of the quantized copy.
    q_off: u32,
    pad: [u32; 3],
}

const REDUCE_EMIT_PUSH: u32 = std::mem::size_of::<ReduceEmitPush>() as u32;

/// Push constants of `fa_mask_flags.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct MaskFlagsPush {
    n_q: u32,
    n_kv: u32,
    /// Query rows per block of `flash_attn_cm2.comp` (its 64 rows over the Q heads of a KV head).
    rows_per_block: u32,
    /// Keys per tile.
    bc: u32,
    /// mask first element and strides (16-bit words).
    m: [u32; 4],
    m_ne2: u32,
    m_ne3: u32,
    n_tiles: u32,
    /// First flag word.
    f_off: u32,
}

const MASK_FLAGS: Shader = Shader {
    name: "fa_mask_flags",
    spirv: spirv::FA_MASK_FLAGS,
    bindings: 2,
    push_size: std::mem::size_of::<MaskFlagsPush>() as u32,
};

const SHADER: Shader = Shader { name: "flash_attn", spirv: spirv::FLASH_ATTN, bindings: 6, push_size: PUSH };
const DECODE: Shader =
    Shader { name: "flash_attn_decode", spirv: spirv::FLASH_ATTN_DECODE, bindings: 6, push_size: PUSH };
const REDUCE: Shader =
    Shader { name: "flash_attn_reduce", spirv: spirv::FLASH_ATTN_REDUCE, bindings: 3, push_size: REDUCE_PUSH };
const REDUCE_QX: Shader = Shader {
    name: "flash_attn_reduce_qx",
    spirv: spirv::FLASH_ATTN_REDUCE_QX,
    bindings: 4,
    push_size: REDUCE_EMIT_PUSH,
};
const REDUCE_Q8K: Shader = Shader {
    name: "flash_attn_reduce_q8k",
    spirv: spirv::FLASH_ATTN_REDUCE_Q8K,
    bindings: 4,
    push_size: REDUCE_EMIT_PUSH,
};
/// Invocations per workgroup of the reduction (four output values each in the emitting variants).
const REDUCE_WG: u32 = 64;

/// Splits the reduction reads per step, all loads of a step in flight together (`GGVK_FA_REDUCE_UNROLL`, 1-32,
/// read once per process; default 8). 1 reads them one split at a time: each split's loads wait for the previous
/// split's, one memory round trip per split. Single-token attention with 64-128 splits per row took 6-22 us less
/// with 8 on an H100 (NOTES.md, 2026-12-05).
fn reduce_unroll() -> u32 {
    static KNOB: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *KNOB.get_or_init(|| crate::knobs::number("GGVK_FA_REDUCE_UNROLL").map_or(8, |v| v as u32))
}

const FLAG_MASK: u32 = 1;
const FLAG_SINKS: u32 = 2;
const FLAG_ALIBI: u32 = 4;
const FLAG_SPLIT: u32 = 8;
const ROUND_NONE: u32 = 0;
const ROUND_F16: u32 = 1;
const ROUND_Q8_0: u32 = 2;
const ROUND_BF16: u32 = 3;

/// Largest head size accepted (DeepSeek's 576 for K).
const MAX_HEAD: i64 = 576;
/// Threads per workgroup.
const WG: u32 = 128;
/// At most this many output elements per thread (registers).
const MAX_OUT_PER_THREAD: u32 = 16;
/// Rows (query rows x Q heads of one KV head) the decode kernel takes per workgroup at most (registers).
const DECODE_MAX_ROWS: u32 = 8;
/// Rows per KV head the decode kernel takes at most, in workgroups of [`DECODE_MAX_ROWS`] (each reads the head's
/// keys and values): a token of Gemma 3 (8 or 16 Q heads per KV head) or of DeepSeek's MLA (16 heads, one KV head).
const DECODE_MAX_KV_ROWS: u32 = 16;
/// ggml's CPU tiled path (f32 Q) starts at this many query rows (GGML_FA_TILE_Q).
const CPU_TILE_Q: i64 = 64;

/// The code of a K/V cache type in `shaders/kv_row.glsl` (`T_*`), for the kernels that read K or V rows through it.
pub(crate) fn kv_type_code(ty: GgmlType) -> Option<u32> {
    Some(match ty {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q8_0 => 3,
        GgmlType::Q4_1 => 4,
        GgmlType::Q5_0 => 5,
        GgmlType::Q5_1 => 6,
        GgmlType::IQ4_NL => 7,
        GgmlType::BF16 => 8,
        _ => return None,
    })
}

fn type_code(what: &str, ty: GgmlType) -> Result<u32> {
    kv_type_code(ty).ok_or_else(|| Error::unsupported(format!("FLASH_ATTN_EXT with {what} of type {}", ty.name())))
}

/// Strides of dims 1..3 in `unit`-byte elements.
fn strides(what: &str, t: &Tensor, unit: u64) -> Result<[u32; 3]> {
    Ok([stride_units(what, t.nb[1], unit)?, stride_units(what, t.nb[2], unit)?, stride_units(what, t.nb[3], unit)?])
}

/// Whether ggvk supports this FLASH_ATTN_EXT node.
pub fn check(node: &Node) -> Result<()> {
    let Op::FlashAttnExt { max_bias, prec, .. } = node.op else {
        return Err(Error::Internal(format!("flash_attn::check called for {}", node.op.name())));
    };
    if node.src.len() > 5 {
        return Err(Error::invalid("FLASH_ATTN_EXT takes at most five sources (q, k, v, mask, sinks)"));
    }
    if prec != 0 && prec != 10 {
        return Err(Error::unsupported(format!("FLASH_ATTN_EXT with precision {prec} (only DEFAULT and F32)")));
    }
    let (q, k, v, d) = (node.src(0)?, node.src(1)?, node.src(2)?, &node.dst);
    if q.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
        return Err(Error::unsupported("FLASH_ATTN_EXT needs f32 q and dst"));
    }
    type_code("K", k.ty)?;
    type_code("V", v.ty)?;
    for (what, t) in [("q", q), ("k", k), ("v", v), ("dst", d)] {
        if !t.is_row_packed() {
            return Err(Error::unsupported(format!("FLASH_ATTN_EXT with non-contiguous {what} rows")));
        }
    }
    let (dk, dv, n_q, n_head, ne3) = (q.ne[0], v.ne[0], q.ne[1], q.ne[2], q.ne[3]);
    let n_kv = k.ne[1];
    if k.ne[0] != dk || v.ne[1] != n_kv || v.ne[2] != k.ne[2] || k.ne[3] != ne3 || v.ne[3] != ne3 {
        return Err(Error::invalid(format!(
            "FLASH_ATTN_EXT: shapes q {:?}, k {:?}, v {:?} do not fit",
            q.ne, k.ne, v.ne
        )));
    }
    if k.ne[2] == 0 || n_head % k.ne[2] != 0 {
        return Err(Error::invalid(format!("FLASH_ATTN_EXT: {n_head} Q heads over {} KV heads", k.ne[2])));
    }
    if d.ne != [dv, n_head, n_q, ne3] {
        return Err(Error::invalid(format!("FLASH_ATTN_EXT: dst shape {:?}, want {:?}", d.ne, [dv, n_head, n_q, ne3])));
    }
    if n_kv == 0 {
        return Err(Error::unsupported("FLASH_ATTN_EXT with no keys"));
    }
    if dk > MAX_HEAD || dv > MAX_HEAD {
        return Err(Error::unsupported(format!("FLASH_ATTN_EXT head sizes {dk}/{dv} (at most {MAX_HEAD})")));
    }
    if n_head >= 1 << 16 {
        return Err(Error::unsupported(format!("FLASH_ATTN_EXT with {n_head} heads")));
    }
    for (what, n) in [("n_q", n_q), ("n_kv", n_kv), ("ne3", ne3)] {
        dim_u32(what, n)?;
    }
    strides("FLASH_ATTN_EXT q", q, 4)?;
    strides("FLASH_ATTN_EXT k", k, 2)?;
    strides("FLASH_ATTN_EXT v", v, 2)?;
    strides("FLASH_ATTN_EXT dst", d, 4)?;
    if let Some(m) = opt_src(node, 3) {
        if m.ty != GgmlType::F16 || !m.is_row_packed() {
            return Err(Error::unsupported(format!("FLASH_ATTN_EXT mask of type {} (only packed f16)", m.ty.name())));
        }
        let ok = m.ne[0] >= n_kv
            && m.ne[1] >= n_q
            && (1..1 << 16).contains(&m.ne[2])
            && (1..1 << 16).contains(&m.ne[3])
            && n_head % m.ne[2] == 0
            && ne3 % m.ne[3] == 0;
        if !ok {
            return Err(Error::invalid(format!("FLASH_ATTN_EXT: mask shape {:?} does not fit q {:?}", m.ne, q.ne)));
        }
        strides("FLASH_ATTN_EXT mask", m, 2)?;
    } else if max_bias > 0.0 {
        return Err(Error::invalid("FLASH_ATTN_EXT: max_bias > 0 (ALiBi) needs a mask"));
    }
    if let Some(s) = opt_src(node, 4) {
        if s.ty != GgmlType::F32 || s.ne[0] < n_head || !s.is_row_packed() {
            return Err(Error::invalid(format!("FLASH_ATTN_EXT: sinks must be f32 [{n_head}], got {:?}", s)));
        }
    }
    Ok(())
}

/// Workgroup shape and KV split of one node on one device.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Rows (query row x Q head of one KV head) per workgroup.
    br: u32,
    /// Keys per shared tile.
    bc: u32,
    /// KV splits (1: single pass).
    splits: u32,
    /// Keys per split.
    chunk: u32,
}

fn shared_bytes(br: u32, bc: u32, dk: u32, dv: u32) -> u32 {
    // Qs, KVs, Ps, red, five per-row arrays and a flag, QS and KM (block terms of K types with a minimum).
    4 * (br * dk + bc * (dk.max(dv) + 1) + br * bc + WG + 5 * br + 1 + (br + bc) * dk.div_ceil(32))
}

fn plan(device: &Device, node: &Node) -> Result<Plan> {
    let (q, k) = (node.src(0)?, node.src(1)?);
    let dk = dim_u32("DK", q.ne[0])?;
    let dv = dim_u32("DV", node.src(2)?.ne[0])?;
    let n_kv = dim_u32("n_kv", k.ne[1])?;
    let rows = dim_u32("rows", q.ne[1] * (q.ne[2] / k.ne[2]))?;
    let groups_other = (k.ne[2] * q.ne[3]) as u64;
    let budget = device.caps().max_shared_memory;
    let mut br = rows.next_power_of_two().clamp(1, 16);
    while br > 1 && br * dv > WG * MAX_OUT_PER_THREAD {
        br /= 2;
    }
    loop {
        if let Some(bc) = [32, 16, 8, 4].into_iter().find(|&bc| shared_bytes(br, bc, dk, dv) <= budget) {
            let groups = u64::from(rows.div_ceil(br)) * groups_other;
            // Token generation: split the keys so that enough workgroups run (about 1024, at least 64 keys each: a
            // 7B model's 32 heads get 4 splits at 256 keys of context and 32 splits of 256 keys at 8k). One
            // workgroup per KV head alone leaves most of a large GPU idle even at short contexts.
            let mut splits = 1;
            if n_kv >= 128 && groups < 512 {
                splits = (1024u64.div_ceil(groups) as u32).min(n_kv / 64).max(1);
            }
            let chunk = n_kv.div_ceil(splits).div_ceil(bc) * bc;
            let splits = n_kv.div_ceil(chunk);
            return Ok(Plan { br, bc, splits, chunk: if splits == 1 { n_kv } else { chunk } });
        }
        if br == 1 {
            return Err(Error::unsupported(format!(
                "FLASH_ATTN_EXT head sizes {dk}/{dv} need more than this device's {budget} bytes of shared memory"
            )));
        }
        br /= 2;
    }
}

/// Whether `node` on `device` runs on `flash_attn_cm.comp` or `flash_attn_cm2.comp` (Q and P enter their products as
/// f16: tests widen their error bound). Judges K/V alignment by the tensors' own offsets.
pub fn uses_coopmat(device: &Device, node: &Node) -> bool {
    let (Ok(k), Ok(v)) = (node.src(1), node.src(2)) else { return false };
    prompt_kernel(device, node).is_some()
        || check(node).is_ok() && cm2_split_on(device, node, kv_words(k), kv_words(v)).is_some()
}

/// The cooperative-matrix prompt kernel `node` runs on `device` and its row layout, judging K/V alignment by the
/// tensors' own offsets.
fn prompt_kernel(device: &Device, node: &Node) -> Option<(Shader, CmRows)> {
    let (Ok(k), Ok(v)) = (node.src(1), node.src(2)) else { return None };
    check(node).ok().and_then(|()| cm_plan_on(device, node, kv_words(k), kv_words(v)))
}

/// Whether `node` runs on `device`'s NV_cooperative_matrix2 prompt kernel with a mask, which reads the flags
/// `fa_mask_flags.comp` computes (once per submission for attentions reading the same mask).
pub fn reads_mask_flags(device: &Device, node: &Node) -> bool {
    opt_src(node, 3).is_some() && prompt_kernel(device, node).is_some_and(|(s, _)| is_cm2(&s))
}

/// Whether `shader` is one of the NV_cooperative_matrix2 prompt kernels.
fn is_cm2(shader: &Shader) -> bool {
    CM2.iter().any(|(_, _, c)| c.name == shader.name)
}

/// Scratch bytes the node takes on `device` (the split partials of whichever kernel records it).
pub fn scratch_bytes(device: &Device, node: &Node) -> u64 {
    if check(node).is_err() {
        return 0;
    }
    let d = &node.dst;
    let total = (d.ne[1] * d.ne[2] * d.ne[3]) as u64;
    let records = |splits: u32| records_bytes(splits, total, d.ne[0]);
    let bytes = |p: Plan| if p.splits > 1 { records(p.splits) } else { 0 };
    let general = plan(device, node).map_or(0, bytes);
    // The prompt kernels do not split; the NV_cooperative_matrix2 one takes its mask flags.
    let prompt = prompt_kernel(device, node).filter(|(s, _)| is_cm2(s));
    let prompt = prompt.map_or(0, |(_, rows)| cm2_flag_bytes(node, rows));
    // The split cm2 kernel's records, judged as if K and V were aligned (the bound offsets decide when recording).
    let split = cm2_split_on(device, node, 0, 0).map_or(0, |p| records(p.splits));
    general.max(decode_plan(device, node).map_or(0, bytes)).max(prompt).max(split)
}

/// Whether `node` runs on `device`'s NV_cooperative_matrix2 prompt kernel, which can also write its output as the
/// packed f16 copy the product after it reads ([`record_emitting`] with an f16 plan; contiguous output, rows of an
/// even number of values).
pub fn prompt_emits_f16(device: &Device, node: &Node) -> bool {
    let d = &node.dst;
    d.is_contiguous() && d.ne[0] % 2 == 0 && prompt_kernel(device, node).is_some_and(|(s, _)| is_cm2(&s))
}

/// Whether `node`'s output comes out of the split reduction on `device` (token generation: the decode or general
/// kernel with its keys split), which can also write it quantized for the product that reads it next
/// ([`record_emitting`]); its output must be contiguous, rows a multiple of 4.
pub fn reduce_emits(device: &Device, node: &Node) -> bool {
    let (Ok(k), Ok(v)) = (node.src(1), node.src(2)) else { return false };
    if check(node).is_err() || !node.dst.is_contiguous() || node.dst.ne[0] % 4 != 0 {
        return false;
    }
    let (Ok((_, k_off)), Ok((_, v_off))) = (bind_kv(device, k), bind_kv(device, v)) else {
        return false;
    };
    if cm_plan_on(device, node, k_off, v_off).is_some() {
        return false;
    }
    cm2_split_on(device, node, k_off, v_off).is_some()
        || split_kernel(device, node, k_off).is_ok_and(|(p, _)| p.splits > 1)
}

/// The plan and kernel of a node the cooperative-matrix kernels do not take: the decode kernel where it applies
/// (it reads K as 16-byte vectors, so K's first element, `k_off` 16-bit words into its binding, must start one;
/// the bound range may start on a smaller alignment than the tensor's offset), else the general one.
fn split_kernel(device: &Device, node: &Node, k_off: u32) -> Result<(Plan, &'static Shader)> {
    match decode_plan(device, node) {
        Some(p) if k_off % 8 == 0 || node.src(1)?.ty != GgmlType::F16 => Ok((p, &DECODE)),
        _ => Ok((plan(device, node)?, &SHADER)),
    }
}

/// Record the attention.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    record_emitting(rec, node, None)
}

/// Record the attention; where its output comes out of the split reduction, that also writes the quantized copy
/// `emit` plans, and the NV_cooperative_matrix2 prompt kernel the f16 copy (registered for the product that reads
/// it). Elsewhere the product quantizes or narrows for itself.
pub fn record_emitting(rec: &mut Recorder<'_>, node: &Node, emit: Option<&q8_emit::Planned>) -> Result<()> {
    check(node)?;
    let Op::FlashAttnExt { scale, max_bias, softcap, .. } = node.op else { unreachable!("checked") };
    let (q, k, v, d) = (node.src(0)?, node.src(1)?, node.src(2)?, &node.dst);
    let mask = opt_src(node, 3);
    let sinks = opt_src(node, 4);
    let device = rec.device().clone();

    let (qb, q_off) = bind(&device, q, 4, false)?;
    let (kb, k_off) = bind_kv(&device, k)?;
    let (vb, v_off) = bind_kv(&device, v)?;
    // Absent optional inputs bind q in their place (never read).
    let (mb, m_off) = bind(&device, mask.unwrap_or(q), 2, false)?;
    let (sb, s_off) = bind(&device, sinks.unwrap_or(q), 4, false)?;
    let (db, d_off) = bind(&device, d, 4, true)?;

    let n_head = q.ne[2] as u32;
    let n_head_kv = k.ne[2] as u32;
    let (n_head_log2, e0, e1) = super::softmax::alibi_exponents(n_head, max_bias);
    let alibi = max_bias > 0.0;
    // Q as the CPU backend converts it for K's vec_dot_type: the 8-bit grid (Q8_0, or Q8_1, whose codes and f16
    // scale are the same) for the 32-blocks, bf16 for BF16, f16 for F16 on its one-chunk path.
    let q_round = match k.ty {
        GgmlType::Q4_0 | GgmlType::Q8_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::IQ4_NL => {
            ROUND_Q8_0
        }
        GgmlType::BF16 => ROUND_BF16,
        GgmlType::F16 if q.ne[1] >= CPU_TILE_Q && v.ty == GgmlType::F16 => ROUND_NONE,
        GgmlType::F16 => ROUND_F16,
        _ => ROUND_NONE,
    };
    let mut flags = (type_code("K", k.ty)? << 4) | (type_code("V", v.ty)? << 8) | (q_round << 12) | (n_head_log2 << 16);
    if mask.is_some() {
        flags |= FLAG_MASK;
    }
    if sinks.is_some() {
        flags |= FLAG_SINKS;
    }
    if alibi {
        flags |= FLAG_ALIBI;
    }
    let with_off = |off: u32, s: [u32; 3]| [off, s[0], s[1], s[2]];
    let mut push = FlashAttnPush {
        n_q: q.ne[1] as u32,
        n_kv: k.ne[1] as u32,
        ratio: n_head / n_head_kv,
        n_head_kv,
        q: with_off(q_off, strides("q", q, 4)?),
        k: with_off(k_off, strides("k", k, 2)?),
        v: with_off(v_off, strides("v", v, 2)?),
        m: match mask {
            Some(m) => with_off(m_off, strides("mask", m, 2)?),
            None => [m_off, 0, 0, 0],
        },
        m_ne23: mask.map_or(1 | 1 << 16, |m| m.ne[2] as u32 | (m.ne[3] as u32) << 16),
        flags,
        s_off,
        chunk: 0,
        d: with_off(d_off, strides("dst", d, 4)?),
        scale: if softcap != 0.0 { scale / softcap } else { scale },
        softcap,
        e0,
        e1,
    };
    let max = device.caps().max_workgroup_count;
    if let Some((shader, layout)) = cm_plan_on(&device, node, k_off, v_off) {
        // A copy: the split kernels below keep the node's own heads if the grid does not fit.
        let cm = laid_out(FlashAttnPush { chunk: push.n_kv, ..push }, layout);
        let groups = [(cm.n_q * cm.ratio).div_ceil(CM_ROWS), cm.n_head_kv, q.ne[3] as u32];
        if groups.iter().zip(max).all(|(&g, m)| g <= m) {
            if is_cm2(&shader) {
                return record_cm2(rec, node, &shader, cm, groups, [qb, kb, vb, mb, sb, db], layout, emit);
            }
            let pipeline = device.pipelines().get(&device, &shader, &[])?;
            return rec.dispatch(shader.name, &pipeline, &[qb, kb, vb, mb, sb, db], bytemuck::bytes_of(&cm), groups);
        }
    }
    let ne3 = q.ne[3] as u32;
    let total = push.n_q * n_head * ne3;
    let reduce = |splits: u32, p_off: u32| -> Result<ReducePush> {
        Ok(ReducePush {
            n_q: push.n_q,
            n_head,
            total,
            splits,
            dv: v.ne[0] as u32,
            has_sinks: u32::from(sinks.is_some()),
            s_off,
            p_off,
            d: with_off(d_off, strides("dst", d, 4)?),
        })
    };
    // Token generation and small batches on NV_cooperative_matrix2: the split variant of the prompt kernel (a
    // block's rows through tensor cores; with GQA every Q head of a KV head in one block), then the reduction.
    if let Some(sp) = cm2_split_on(&device, node, k_off, v_off) {
        let kv_group = if sp.rows == CmRows::PerHead { push.ratio } else { 1 };
        let mut cm = laid_out(FlashAttnPush { chunk: sp.chunk, flags: push.flags | FLAG_SPLIT, ..push }, sp.rows);
        let groups = [(cm.n_q * cm.ratio).div_ceil(sp.br), cm.n_head_kv, ne3 * sp.splits];
        let shader = cm2_shader(&CM2S, sp.kv, k.ne[0]);
        if let (Some(shader), true) = (shader, groups.iter().zip(max).all(|(&g, m)| g <= m)) {
            let whole = push.n_kv % sp.bc == 0;
            let spec = [cm.ratio, u32::from(whole), 0, kv_group, sp.br, sp.bc];
            let pipeline = device.pipelines().get(&device, &shader, &spec)?;
            let (pw, p_off) = split_records(rec, sp.splits, total, v.ne[0])?;
            cm.d = [p_off, 0, 0, 0];
            // Binding 6 (the prompt kernel's mask flags) is not read by this variant: Q stands in.
            let bindings = [qb.clone(), kb, vb, mb, sb.clone(), pw.clone(), qb];
            rec.dispatch("flash_attn_cm2_split", &pipeline, &bindings, bytemuck::bytes_of(&cm), groups)?;
            return reduce_splits(rec, node, emit, reduce(sp.splits, p_off)?, pw, sb, db);
        }
    }
    let (p, shader) = split_kernel(&device, node, k_off)?;
    push.chunk = p.chunk;
    let rows = push.n_q * push.ratio;
    let groups = [rows.div_ceil(p.br), n_head_kv, ne3 * p.splits];
    if groups.iter().zip(max).any(|(&g, m)| g > m) || u64::from(ne3) * u64::from(p.splits) > u64::from(max[2]) {
        return Err(Error::unsupported(format!("FLASH_ATTN_EXT needs {groups:?} workgroups (device max {max:?})")));
    }
    // The decode kernel takes three more constants: whether it reads V as 16-byte vectors (F16 V), K's and V's types.
    let decode = shader.name == DECODE.name;
    let vec_v = decode && v.ty == GgmlType::F16 && vector_v(v.ne[0], &push.v);
    let (kt, vt) = (type_code("K", k.ty)?, type_code("V", v.ty)?);
    let spec = [WG, p.br, p.bc, q.ne[0] as u32, v.ne[0] as u32, u32::from(vec_v), kt, vt];
    let pipeline = device.pipelines().get(&device, shader, &spec[..if decode { 8 } else { 5 }])?;
    if p.splits == 1 {
        return rec.dispatch(shader.name, &pipeline, &[qb, kb, vb, mb, sb, db], bytemuck::bytes_of(&push), groups);
    }

    // Split KV: partial records into scratch, then the reduction into dst.
    let (pw, p_off) = split_records(rec, p.splits, total, v.ne[0])?;
    push.flags |= FLAG_SPLIT;
    push.d = [p_off, 0, 0, 0];
    rec.dispatch(
        if decode { "flash_attn_decode_split" } else { "flash_attn_split" },
        &pipeline,
        &[qb, kb, vb, mb, sb.clone(), pw.clone()],
        bytemuck::bytes_of(&push),
        groups,
    )?;
    reduce_splits(rec, node, emit, reduce(p.splits, p_off)?, pw, sb, db)
}

/// K or V bound for the attention kernels: a Q8_0 / Q4_0 cache's binding starts a whole number of blocks before its
/// first element (`flash_attn_cm2.comp` addresses such caches in blocks; the other kernels take any start), anything
/// else as [`bind`].
fn bind_kv(device: &Device, t: &Tensor) -> Result<(Binding, u32)> {
    match t.ty {
        GgmlType::Q8_0 | GgmlType::Q4_0 => super::bind_blocks(device, t, 2, t.ty.type_size() as u64, false),
        _ => bind(device, t, 2, false),
    }
}

/// K/V offsets (16-bit words) as [`bind_kv`] would bind them, judged from the tensors alone (their buffers may not
/// exist yet): F16's from its offset; a Q8_0 / Q4_0 cache's are whole blocks by construction.
fn kv_words(t: &Tensor) -> u32 {
    match t.ty {
        GgmlType::Q8_0 | GgmlType::Q4_0 if t.offset % 2 == 0 => 0,
        _ => u32::try_from(t.offset / 2).unwrap_or(1),
    }
}

/// Bytes of the split records [M, L, out[dv]] of `splits` x `total` rows (floats).
fn records_bytes(splits: u32, total: u64, dv: i64) -> u64 {
    u64::from(splits) * total * (dv as u64 + 2) * 4
}

/// Scratch for the split records [M, L, out[dv]] of `splits` x `total` rows, bound for writing, with its first
/// float's index in the binding.
fn split_records(rec: &mut Recorder<'_>, splits: u32, total: u32, dv: i64) -> Result<(Binding, u32)> {
    let device = rec.device().clone();
    let bytes = records_bytes(splits, u64::from(total), dv);
    let (scratch, offset) = rec.scratch(bytes)?;
    let region = Tensor::contiguous(scratch, offset, GgmlType::F32, [(bytes / 4) as i64, 1, 1, 1])?;
    bind(&device, &region, 4, true)
}

/// The reduction of the split records `pw` into `node`'s output (bound as `db`; sinks as `sb`), also writing the
/// quantized copy `emit` plans where it fits.
fn reduce_splits(
    rec: &mut Recorder<'_>,
    node: &Node,
    emit: Option<&q8_emit::Planned>,
    reduce: ReducePush,
    pw: Binding,
    sb: Binding,
    db: Binding,
) -> Result<()> {
    let device = rec.device().clone();
    let max = device.caps().max_workgroup_count;
    let d = &node.dst;
    let pr = Binding { write: false, ..pw };
    let values = u64::from(reduce.total) * u64::from(reduce.dv);
    // The split reduction writes 8-bit blocks (the f16 copy is the fused norm's alone).
    let emit = emit.filter(|e| {
        e.layout != Q8Layout::F16
            && e.layout.fits(&e.view)
            && d.is_contiguous()
            && reduce.dv % 4 == 0
            && values % e.layout.block() as u64 == 0
            && e.view.nelements() as u64 == values
    });
    if let Some(planned) = emit {
        let e = q8_emit::reserve(rec, &planned.view, planned.layout)?;
        let push = ReduceEmitPush { reduce, q_off: e.word, pad: [0; 3] };
        let shader = if planned.layout == Q8Layout::Qx { &REDUCE_QX } else { &REDUCE_Q8K };
        let pipeline = device.pipelines().get(&device, shader, &[REDUCE_WG, reduce_unroll()])?;
        let (gx, gy) = split_groups((values / 4).div_ceil(u64::from(REDUCE_WG)), max[0])?;
        rec.dispatch(shader.name, &pipeline, &[pr, sb, db, e.write.clone()], bytemuck::bytes_of(&push), [gx, gy, 1])?;
        q8_emit::publish(rec, &planned.view, e);
        return Ok(());
    }
    let pipeline = device.pipelines().get(&device, &REDUCE, &[REDUCE_WG, reduce_unroll()])?;
    let (gx, gy) = split_groups(u64::from(reduce.total), max[0])?;
    rec.dispatch("flash_attn_reduce", &pipeline, &[pr, sb, db], bytemuck::bytes_of(&reduce), [gx, gy, 1])
}
