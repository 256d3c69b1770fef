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

use bytemuck::{Pod, Zeroable};

use super::q8_emit::{self, Q8Layout};
use super::{bind, dim_u32, opt_src, spirv, split_groups, stride_units};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Binding, Device, Recorder, Shader};

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
/// `flash_attn_cm.comp` per head size.
const CM: [(u32, Shader); 5] = [
    (64, Shader { name: "flash_attn_cm_d64", spirv: spirv::FLASH_ATTN_CM_D64, bindings: 6, push_size: PUSH }),
    (80, Shader { name: "flash_attn_cm_d80", spirv: spirv::FLASH_ATTN_CM_D80, bindings: 6, push_size: PUSH }),
    (96, Shader { name: "flash_attn_cm_d96", spirv: spirv::FLASH_ATTN_CM_D96, bindings: 6, push_size: PUSH }),
    (112, Shader { name: "flash_attn_cm_d112", spirv: spirv::FLASH_ATTN_CM_D112, bindings: 6, push_size: PUSH }),
    (128, Shader { name: "flash_attn_cm_d128", spirv: spirv::FLASH_ATTN_CM_D128, bindings: 6, push_size: PUSH }),
];
/// `flash_attn_cm2.comp` per head size.
const CM2: [(u32, Shader); 5] = [
    (64, Shader { name: "flash_attn_cm2_d64", spirv: spirv::FLASH_ATTN_CM2_D64, bindings: 7, push_size: PUSH }),
    (80, Shader { name: "flash_attn_cm2_d80", spirv: spirv::FLASH_ATTN_CM2_D80, bindings: 7, push_size: PUSH }),
    (96, Shader { name: "flash_attn_cm2_d96", spirv: spirv::FLASH_ATTN_CM2_D96, bindings: 7, push_size: PUSH }),
    (112, Shader { name: "flash_attn_cm2_d112", spirv: spirv::FLASH_ATTN_CM2_D112, bindings: 7, push_size: PUSH }),
    (128, Shader { name: "flash_attn_cm2_d128", spirv: spirv::FLASH_ATTN_CM2_D128, bindings: 7, push_size: PUSH }),
];
/// Head sizes `flash_attn_cm2.comp` is compiled for (the device check asks the driver for each one's shapes).
pub(crate) const CM2_HEADS: [u32; 5] = [64, 80, 96, 112, 128];
/// Keys per tile of `flash_attn_cm2.comp` (its `BC`).
pub(crate) const CM2_KEYS: u32 = 64;
/// Invocations per workgroup of `flash_attn_cm2.comp`.
pub(crate) const CM2_WG: u32 = 128;
/// Whether `flash_attn_cm.comp` runs where it applies (`GGVK_FA_COOPMAT=0` turns it off).
const CM_DEFAULT: bool = true;
/// Rows per workgroup of `flash_attn_cm.comp` and `flash_attn_cm2.comp`.
pub(crate) const CM_ROWS: u32 = 64;
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
/// Rows (query rows x Q heads of one KV head) the decode kernel takes per workgroup at most.
const DECODE_MAX_ROWS: u32 = 8;
/// Largest head size of the decode kernel (Q rows in shared memory, outputs in registers).
const DECODE_MAX_HEAD: i64 = 256;
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

/// The decode kernel's plan (`flash_attn_decode.comp`: one tile of WG keys per step, every row of a KV head in
/// one workgroup) when it applies: K and V each F16, Q8_0 or Q4_0 (the quantized ones with head sizes a multiple
/// of 32), at most [`DECODE_MAX_ROWS`] rows per KV head, head sizes up to [`DECODE_MAX_HEAD`] with DK a multiple of
/// 8, F16 K rows on 16-byte boundaries, a device with subgroup arithmetic;
/// `GGVK_FA_DECODE=0` keeps the general kernel (read once per process). Keys are split over workgroups as the
/// general plan does, in whole tiles.
fn decode_plan(device: &Device, node: &Node) -> Option<Plan> {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*KNOB.get_or_init(|| crate::knobs::switch("GGVK_FA_DECODE", true)) {
        return None;
    }
    let (q, k, v) = (node.src(0).ok()?, node.src(1).ok()?, node.src(2).ok()?);
    let caps = device.caps();
    let rows = q.ne[1] * (q.ne[2] / k.ne[2]);
    // F16 K rows are read as 16-byte vectors; Q8_0 / Q4_0 rows (K or V) block by block in 16-bit words.
    let kv_ok = |t: &Tensor, dim: i64| match t.ty {
        GgmlType::F16 => true,
        GgmlType::Q8_0 | GgmlType::Q4_0 => dim % 32 == 0,
        _ => false,
    };
    let k_rows_ok = k.ty != GgmlType::F16 || (k.offset % 16 == 0 && k.nb[1..].iter().all(|s| s % 16 == 0));
    let fits = caps.subgroup_arithmetic
        && kv_ok(k, q.ne[0])
        && kv_ok(v, v.ne[0])
        && (1..=i64::from(DECODE_MAX_ROWS)).contains(&rows)
        && q.ne[0] % 8 == 0
        && q.ne[0] <= DECODE_MAX_HEAD
        && v.ne[0] <= DECODE_MAX_HEAD
        && k_rows_ok;
    let rows = rows as u32;
    // Q rows as vec4, then probabilities and two reduction slots per row and thread, and the vector V path's
    // partial outputs (8 per thread).
    let shared = 4 * (rows * q.ne[0] as u32 + 3 * rows * WG + 8 * WG);
    if !fits || shared > caps.max_shared_memory {
        return None;
    }
    let n_kv = k.ne[1] as u32;
    let groups = (k.ne[2] * q.ne[3]) as u64;
    let (target, min_keys) = decode_split_shape(rows, n_kv);
    let mut splits = 1;
    if n_kv >= 2 * WG && groups < 512 {
        splits = (target.div_ceil(groups) as u32).min(n_kv / min_keys).max(1);
    }
    let chunk = n_kv.div_ceil(splits).div_ceil(WG) * WG;
    let splits = n_kv.div_ceil(chunk);
    Some(Plan { br: rows, bc: WG, splits, chunk: if splits == 1 { n_kv } else { chunk } })
}

/// How the decode kernel splits the keys: (workgroups aimed at over all KV heads, fewest keys per split). With four
/// or more query rows per KV head (GQA) and more than 4,096 keys: about 512 workgroups of at least 256 keys; else
/// about 1,024 of at least 128. Measured on an H200 (NOTES.md, 2026-12-05): with 4 rows per KV head (hs 128, 8 KV
/// heads, F16) the first took 34.2 / 59.0 / 93.2 us at 8k / 16k / 32k keys against 39.5 / 67.4 / 113.8 with the
/// second, with 8 rows (hs 64, 7,680 keys) 31.3 against 43.1; but at 4k keys 24.7 against 18.6, and a 7B model
/// without GQA generated 278.5 / 194.9 t/s (depth 0 / 8192) against 297.2 / 201.4. `GGVK_FA_DECODE_GROUPS` and
/// `GGVK_FA_DECODE_MIN_KEYS` override both (read once per process).
fn decode_split_shape(rows: u32, n_kv: u32) -> (u64, u32) {
    static KNOBS: std::sync::OnceLock<(Option<u64>, Option<u32>)> = std::sync::OnceLock::new();
    let (target, min_keys) = *KNOBS.get_or_init(|| {
        (
            crate::knobs::number("GGVK_FA_DECODE_GROUPS"),
            crate::knobs::number("GGVK_FA_DECODE_MIN_KEYS").map(|v| v as u32),
        )
    });
    let (t, k) = if rows >= 4 && n_kv > 4096 { (512, 256) } else { (1024, WG) };
    (target.unwrap_or(t), min_keys.unwrap_or(k).max(WG))
}

/// Whether the decode kernel reads V rows as 16-byte vectors (`VEC_V`): head size `dv` a multiple of 8 up to the
/// workgroup size, V's offset and strides (16-bit words) multiples of 8.
fn vector_v(dv: i64, v_words: &[u32]) -> bool {
    dv % 8 == 0 && dv <= i64::from(WG) && v_words.iter().all(|w| w % 8 == 0)
}

/// What the cooperative-matrix prompt kernel needs to know about a node, apart from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmShape {
    /// K and V are both F16.
    pub f16_kv: bool,
    /// Head sizes of K and V.
    pub dk: i64,
    /// Head size of V.
    pub dv: i64,
    /// Rows per KV head (query rows x Q heads sharing it).
    pub rows: i64,
    /// K and V offsets (of the bound ranges) and strides fall on 16-byte boundaries.
    pub aligned: bool,
    /// Q heads per KV head.
    pub ratio: i64,
    /// No mask, or one mask row per query row shared by every head (mask dim 2 of 1) or one per head: the mask is
    /// a three-dimensional tensor over a block's rows (`flash_attn_cm2.comp`).
    pub mask_heads: bool,
}

/// Shared memory `flash_attn_cm.comp` declares for head size `d`: Q block, K/V tile, scores, probabilities, row
/// factors, a flag.
pub const fn cm_shared_bytes(d: u32) -> u32 {
    64 * (d + 8) * 2 + 32 * (d + 8) * 2 + 4 * 32 * 16 * 4 + 4 * 16 * 40 * 2 + 4 * 16 * 4 + 16
}

/// The cooperative-matrix flash attention for prompts (`flash_attn_cm.comp`) when it applies: a device with f16
/// 16x16x16 fragments and subgroups of 32, F16 K and V of equal head size 64, 80, 96, 112 or 128 on 16-byte
/// boundaries, and at least [`CM_ROWS`] rows per KV head (prompts; token generation keeps the decode and general
/// kernels). Pure, so its choices are unit-tested without a GPU.
pub fn cm_plan(dev: &super::coopmat::CoopmatDevice, shape: CmShape) -> Option<Shader> {
    let (_, shader) = CM.iter().find(|(d, _)| i64::from(*d) == shape.dk)?;
    let fits = shape.f16_kv
        && shape.dk == shape.dv
        && shape.aligned
        && shape.rows >= i64::from(CM_ROWS)
        && dev.f16_16x16x16
        && dev.fp16
        && dev.memory_model
        && dev.subgroup_size == 32
        && dev.max_shared_memory >= cm_shared_bytes(shape.dk as u32)
        && dev.max_workgroup_invocations >= 128;
    fits.then_some(*shader)
}

/// How a prompt kernel lays a KV head's rows over its workgroups' 64-row blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmRows {
    /// The rows of every Q head sharing the KV head, interleaved (row = iq1 * ratio + g): K and V tiles serve the
    /// whole group. The KHR kernel always; `flash_attn_cm2.comp` with its `RATIO` constant.
    Packed,
    /// One Q head per block, its KV head the Q head / ratio (`flash_attn_cm2.comp`'s `KV_GROUP`): the kernel sees a
    /// model without GQA whose K/V heads repeat. One Q head per KV head is this layout too.
    PerHead,
}

/// How GQA prompts (several Q heads per KV head) run where `flash_attn_cm2.comp` could take them
/// (`GGVK_FA_CM2_GQA`, read once per process): 1 `flash_attn_cm2.comp` a Q head per block ([`CmRows::PerHead`],
/// the default), 0 the KHR kernel, 2 `flash_attn_cm2.comp` with the group's rows interleaved ([`CmRows::Packed`]).
/// Measured on an H100 (NOTES.md, 2026-12-05): with 4 and 8 Q heads per KV head the first is the fastest of the
/// three, the last the slowest.
fn cm2_gqa_mode() -> u32 {
    static KNOB: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *KNOB.get_or_init(|| crate::knobs::number("GGVK_FA_CM2_GQA").map_or(1, |v| v as u32))
}

/// The NV_cooperative_matrix2 flash attention for prompts (`flash_attn_cm2.comp`) and its row layout when it
/// applies: a device that runs it ([`super::coopmat::CoopmatDevice::cm2_attention`]), a node [`cm_plan`] would give
/// the KHR kernel and a mask shared by the heads or one per head. With several Q heads per KV head, `gqa` picks the
/// layout ([`cm2_gqa_mode`]'s values): a Q head per block needs a block of query rows (64) per head, the interleaved
/// layout a ratio dividing 64. Pure, so its choices are unit-tested without a GPU.
pub fn cm2_plan(dev: &super::coopmat::CoopmatDevice, shape: CmShape, gqa: u32) -> Option<(Shader, CmRows)> {
    let (_, shader) = CM2.iter().find(|(d, _)| i64::from(*d) == shape.dk)?;
    let rows = match (shape.ratio, gqa) {
        (1, _) => CmRows::PerHead,
        (r, 1) if shape.rows / r >= i64::from(CM_ROWS) => CmRows::PerHead,
        (r, 2) if i64::from(CM_ROWS) % r == 0 => CmRows::Packed,
        _ => return None,
    };
    let fits = dev.cm2_attention && shape.mask_heads;
    (fits && cm_plan(dev, shape).is_some()).then_some((*shader, rows))
}

/// The prompt kernel for `node` on `device` with its bound K/V offsets (16-bit words) and its row layout:
/// [`cm2_plan`] where the device has NV_cooperative_matrix2 enabled (`GGVK_FA_COOPMAT2=0` turns it off), else
/// [`cm_plan`] (`GGVK_FA_COOPMAT=0` turns that off; both read once per process).
fn cm_plan_on(device: &Device, node: &Node, k_off: u32, v_off: u32) -> Option<(Shader, CmRows)> {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    static KNOB2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*KNOB.get_or_init(|| crate::knobs::switch("GGVK_FA_COOPMAT", CM_DEFAULT)) {
        return None;
    }
    let (q, k, v) = (node.src(0).ok()?, node.src(1).ok()?, node.src(2).ok()?);
    let ratio = q.ne[2] / k.ne[2].max(1);
    let shape = CmShape {
        f16_kv: k.ty == GgmlType::F16 && v.ty == GgmlType::F16,
        dk: k.ne[0],
        dv: v.ne[0],
        rows: q.ne[1] * ratio,
        aligned: k_off % 8 == 0 && v_off % 8 == 0 && k.nb[1..].iter().chain(&v.nb[1..]).all(|s| s % 16 == 0),
        ratio,
        mask_heads: opt_src(node, 3).is_none_or(|m| m.ne[2] == 1 || m.ne[2] == q.ne[2]),
    };
    let dev = super::coopmat::CoopmatDevice::from_caps(device.caps());
    if device.coopmat2_enabled() && *KNOB2.get_or_init(|| crate::knobs::switch("GGVK_FA_COOPMAT2", true)) {
        if let Some(plan) = cm2_plan(&dev, shape, cm2_gqa_mode()) {
            return Some(plan);
        }
    }
    cm_plan(&dev, shape).map(|s| (s, CmRows::Packed))
}

/// Whether `node` on `device` runs on `flash_attn_cm.comp` or `flash_attn_cm2.comp` (Q and P enter their products as
/// f16: tests widen their error bound). Judges K/V alignment by the tensors' own offsets.
pub fn uses_coopmat(device: &Device, node: &Node) -> bool {
    prompt_kernel(device, node).is_some()
}

/// The cooperative-matrix prompt kernel `node` runs on `device` and its row layout, judging K/V alignment by the
/// tensors' own offsets.
fn prompt_kernel(device: &Device, node: &Node) -> Option<(Shader, CmRows)> {
    let (Ok(k), Ok(v)) = (node.src(1), node.src(2)) else { return None };
    let words = |t: &Tensor| u32::try_from(t.offset / 2).unwrap_or(1);
    check(node).ok().and_then(|()| cm_plan_on(device, node, words(k), words(v)))
}

/// Scratch bytes the node takes on `device` (the split partials of whichever kernel records it).
pub fn scratch_bytes(device: &Device, node: &Node) -> u64 {
    if check(node).is_err() {
        return 0;
    }
    let d = &node.dst;
    let total = (d.ne[1] * d.ne[2] * d.ne[3]) as u64;
    let bytes = |p: Plan| if p.splits > 1 { u64::from(p.splits) * total * (d.ne[0] as u64 + 2) * 4 } else { 0 };
    let general = plan(device, node).map_or(0, bytes);
    // The prompt kernels do not split; the NV_cooperative_matrix2 one takes its mask flags.
    let prompt = prompt_kernel(device, node).filter(|(s, _)| CM2.iter().any(|(_, c)| c.name == s.name));
    let prompt = prompt.map_or(0, |(_, rows)| cm2_flag_bytes(node, rows));
    general.max(decode_plan(device, node).map_or(0, bytes)).max(prompt)
}

/// Whether `node`'s output comes out of the split reduction on `device` (token generation: the decode or general
/// kernel with its keys split), which can also write it quantized for the product that reads it next
/// ([`record_emitting`]); its output must be contiguous, rows a multiple of 4.
pub fn reduce_emits(device: &Device, node: &Node) -> bool {
    let (Ok(k), Ok(v)) = (node.src(1), node.src(2)) else { return false };
    if check(node).is_err() || !node.dst.is_contiguous() || node.dst.ne[0] % 4 != 0 {
        return false;
    }
    let (Ok((_, k_off)), Ok((_, v_off))) = (bind(device, k, 2, false), bind(device, v, 2, false)) else {
        return false;
    };
    if cm_plan_on(device, node, k_off, v_off).is_some() {
        return false;
    }
    split_kernel(device, node, k_off).is_ok_and(|(p, _)| p.splits > 1)
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
/// `emit` plans (registered for the product that reads it). Elsewhere the product quantizes for itself.
pub fn record_emitting(rec: &mut Recorder<'_>, node: &Node, emit: Option<&q8_emit::Planned>) -> Result<()> {
    check(node)?;
    let Op::FlashAttnExt { scale, max_bias, softcap, .. } = node.op else { unreachable!("checked") };
    let (q, k, v, d) = (node.src(0)?, node.src(1)?, node.src(2)?, &node.dst);
    let mask = opt_src(node, 3);
    let sinks = opt_src(node, 4);
    let device = rec.device().clone();

    let (qb, q_off) = bind(&device, q, 4, false)?;
    let (kb, k_off) = bind(&device, k, 2, false)?;
    let (vb, v_off) = bind(&device, v, 2, false)?;
    // Absent optional inputs bind q in their place (never read).
    let (mb, m_off) = bind(&device, mask.unwrap_or(q), 2, false)?;
    let (sb, s_off) = bind(&device, sinks.unwrap_or(q), 4, false)?;
    let (db, d_off) = bind(&device, d, 4, true)?;

    let n_head = q.ne[2] as u32;
    let n_head_kv = k.ne[2] as u32;
    let n_head_log2 = 1u32 << (31 - n_head.leading_zeros());
    let alibi = max_bias > 0.0;
    let (e0, e1) = if alibi {
        let m0 = 2f32.powf(-max_bias / n_head_log2 as f32);
        let m1 = 2f32.powf(-(max_bias / 2.0) / n_head_log2 as f32);
        (f64::from(m0).log2() as f32, f64::from(m1).log2() as f32)
    } else {
        (0.0, 0.0)
    };
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
        // A Q head per block: the kernel sees one Q head per "KV head" (n_head of them) and finds the real one. A
        // copy, so that the split kernels below still get the node's own heads if the grid does not fit.
        let mut cm = FlashAttnPush { chunk: push.n_kv, ..push };
        if layout == CmRows::PerHead {
            (cm.ratio, cm.n_head_kv) = (1, n_head);
        }
        let groups = [(cm.n_q * cm.ratio).div_ceil(CM_ROWS), cm.n_head_kv, q.ne[3] as u32];
        if groups.iter().zip(max).all(|(&g, m)| g <= m) {
            if CM2.iter().any(|(_, c)| c.name == shader.name) {
                return record_cm2(rec, node, &shader, cm, groups, [qb, kb, vb, mb, sb, db], layout);
            }
            let pipeline = device.pipelines().get(&device, &shader, &[])?;
            return rec.dispatch(shader.name, &pipeline, &[qb, kb, vb, mb, sb, db], bytemuck::bytes_of(&cm), groups);
        }
    }
    let (p, shader) = split_kernel(&device, node, k_off)?;
    push.chunk = p.chunk;
    let rows = push.n_q * push.ratio;
    let ne3 = q.ne[3] as u32;
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
    let total = push.n_q * n_head * ne3;
    let bytes = u64::from(p.splits) * u64::from(total) * (v.ne[0] as u64 + 2) * 4;
    let (scratch, offset) = rec.scratch(bytes)?;
    let region = Tensor::contiguous(scratch, offset, GgmlType::F32, [(bytes / 4) as i64, 1, 1, 1])?;
    let (pw, p_off) = bind(&device, &region, 4, true)?;
    push.flags |= FLAG_SPLIT;
    push.d = [p_off, 0, 0, 0];
    rec.dispatch(
        if decode { "flash_attn_decode_split" } else { "flash_attn_split" },
        &pipeline,
        &[qb, kb, vb, mb, sb.clone(), pw.clone()],
        bytemuck::bytes_of(&push),
        groups,
    )?;
    let reduce = ReducePush {
        n_q: push.n_q,
        n_head,
        total,
        splits: p.splits,
        dv: v.ne[0] as u32,
        has_sinks: u32::from(sinks.is_some()),
        s_off,
        p_off,
        d: with_off(d_off, strides("dst", d, 4)?),
    };
    let pr = Binding { write: false, ..pw };
    let values = u64::from(total) * v.ne[0] as u64;
    let emit = emit.filter(|e| {
        e.layout.fits(&e.view)
            && d.is_contiguous()
            && v.ne[0] % 4 == 0
            && values % e.layout.block() as u64 == 0
            && e.view.nelements() as u64 == values
    });
    if let Some(planned) = emit {
        let e = q8_emit::reserve(rec, &planned.view, planned.layout)?;
        let push = ReduceEmitPush { reduce, q_off: e.word, pad: [0; 3] };
        let shader = match planned.layout {
            Q8Layout::Qx => &REDUCE_QX,
            Q8Layout::Q8k => &REDUCE_Q8K,
        };
        let pipeline = device.pipelines().get(&device, shader, &[REDUCE_WG, reduce_unroll()])?;
        let (gx, gy) = split_groups((values / 4).div_ceil(u64::from(REDUCE_WG)), max[0])?;
        rec.dispatch(shader.name, &pipeline, &[pr, sb, db, e.write.clone()], bytemuck::bytes_of(&push), [gx, gy, 1])?;
        q8_emit::publish(rec, &planned.view, e);
        return Ok(());
    }
    let pipeline = device.pipelines().get(&device, &REDUCE, &[REDUCE_WG, reduce_unroll()])?;
    let (gx, gy) = split_groups(u64::from(total), max[0])?;
    rec.dispatch("flash_attn_reduce", &pipeline, &[pr, sb, db], bytemuck::bytes_of(&reduce), [gx, gy, 1])
}

/// Bytes of `fa_mask_flags.comp`'s flags for `node` with row layout `layout` (one word per block of rows and tile
/// of keys; none without a mask).
fn cm2_flag_bytes(node: &Node, layout: CmRows) -> u64 {
    let (Ok(q), Ok(k)) = (node.src(0), node.src(1)) else { return 0 };
    if opt_src(node, 3).is_none() {
        return 0;
    }
    let ratio = if layout == CmRows::Packed { q.ne[2] / k.ne[2].max(1) } else { 1 };
    let rows = (q.ne[1] * ratio) as u64;
    rows.div_ceil(u64::from(CM_ROWS)) * (k.ne[1] as u64).div_ceil(u64::from(CM2_KEYS)) * 4
}

/// Record `flash_attn_cm2.comp` for `node` with row layout `layout` (the KHR kernel's push constants and bindings,
/// with `push.ratio` and `push.n_head_kv` as the kernel sees them: Q heads per block and heads of blocks), after
/// `fa_mask_flags.comp` where there is a mask.
fn record_cm2(
    rec: &mut Recorder<'_>,
    node: &Node,
    shader: &Shader,
    mut push: FlashAttnPush,
    groups: [u32; 3],
    bindings: [Binding; 6],
    layout: CmRows,
) -> Result<()> {
    let device = rec.device().clone();
    // A Q head per block: that many consecutive blocks' heads read the same K and V rows (`KV_GROUP`).
    let kv_group = match (layout, node.src(0), node.src(1)) {
        (CmRows::PerHead, Ok(q), Ok(k)) => (q.ne[2] / k.ne[2].max(1)) as u32,
        _ => 1,
    };
    let bc = CM2_KEYS;
    let flags = match opt_src(node, 3) {
        Some(m) => {
            let bytes = cm2_flag_bytes(node, layout);
            let (scratch, offset) = rec.scratch(bytes)?;
            let region = Tensor::contiguous(scratch, offset, GgmlType::F32, [(bytes / 4) as i64, 1, 1, 1])?;
            let (fw, f_off) = bind(&device, &region, 4, true)?;
            let n_tiles = push.n_kv.div_ceil(bc);
            let fp = MaskFlagsPush {
                n_q: push.n_q,
                n_kv: push.n_kv,
                rows_per_block: CM_ROWS / push.ratio,
                bc,
                m: push.m,
                m_ne2: m.ne[2] as u32,
                m_ne3: m.ne[3] as u32,
                n_tiles,
                f_off,
            };
            let fgroups = [n_tiles, groups[0], 1];
            let max = device.caps().max_workgroup_count;
            if fgroups.iter().zip(max).any(|(&g, m)| g > m) {
                return Err(Error::unsupported(format!("FLASH_ATTN_EXT mask flags need {fgroups:?} workgroups")));
            }
            let pipeline = device.pipelines().get(&device, &MASK_FLAGS, &[])?;
            rec.dispatch(
                MASK_FLAGS.name,
                &pipeline,
                &[bindings[3].clone(), fw.clone()],
                bytemuck::bytes_of(&fp),
                fgroups,
            )?;
            push.chunk = f_off;
            Binding { write: false, ..fw }
        }
        None => bindings[0].clone(),
    };
    let [qb, kb, vb, mb, sb, db] = bindings;
    static KNOB: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let cap = *KNOB.get_or_init(|| crate::knobs::number("GGVK_FA_CM2_MASK").map_or(1, |v| v as u32));
    let [ratio, whole, mode] = cm2_specs(&push, opt_src(node, 3).is_some(), cap);
    let pipeline = device.pipelines().get(&device, shader, &[ratio, whole, mode, kv_group])?;
    rec.dispatch(shader.name, &pipeline, &[qb, kb, vb, mb, sb, db, flags], bytemuck::bytes_of(&push), groups)
}

/// Specialization constants of `flash_attn_cm2.comp` for a dispatch: the Q heads per KV head, whether every tile of
/// keys is whole (K/V loads without clamping), and how mask tiles are read (`MASK_MODE`: 1 directly for every block
/// where one Q head per KV head, whole tiles and 16-byte aligned mask rows allow it and the query rows fill whole
/// blocks, 2 directly for all but a partial last block, 0 clamped). `cap` limits the mode (`GGVK_FA_CM2_MASK`, for
/// measurements: 2 keeps the per-block choice, 0 the clamped loads). Pure: unit-tested.
fn cm2_specs(push: &FlashAttnPush, has_mask: bool, cap: u32) -> [u32; 3] {
    let whole = push.n_kv % CM2_KEYS == 0;
    let aligned = push.m.iter().all(|w| w % 8 == 0);
    let mode = if !(has_mask && whole && push.ratio == 1 && aligned) {
        0
    } else if push.n_q % CM_ROWS == 0 && cap == 1 {
        1
    } else {
        2
    };
    [push.ratio, u32::from(whole), if cap == 0 { 0 } else { mode }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::coopmat::CoopmatDevice;

    #[test]
    fn decode_splits_are_wider_only_for_gqa_past_4096_keys() {
        // (No GGVK_FA_DECODE_* knobs in the unit tests' environment.)
        assert_eq!(decode_split_shape(1, 8192), (1024, 128));
        assert_eq!(decode_split_shape(4, 4096), (1024, 128));
        assert_eq!(decode_split_shape(3, 32768), (1024, 128));
        assert_eq!(decode_split_shape(4, 4097), (512, 256));
        assert_eq!(decode_split_shape(8, 7680), (512, 256));
    }

    #[test]
    fn decode_reads_v_as_vectors_only_where_rows_sit_on_16_bytes() {
        assert!(vector_v(128, &[0, 128, 128 * 256, 0]));
        assert!(vector_v(64, &[8, 64, 64 * 512, 64 * 512 * 32]));
        assert!(!vector_v(128, &[4, 128, 128 * 256, 0]), "offset");
        assert!(!vector_v(128, &[0, 132, 132 * 256, 0]), "row stride");
        assert!(!vector_v(68, &[0, 72, 72 * 256, 0]), "head size not a multiple of 8");
        assert!(!vector_v(256, &[0, 256, 256 * 256, 0]), "more dimensions than threads");
    }

    const NVIDIA: CoopmatDevice = CoopmatDevice {
        f16_16x16x16: true,
        s8_16x16x32: true,
        fp16: true,
        memory_model: true,
        subgroup_size: 32,
        max_shared_memory: 48 * 1024,
        max_workgroup_invocations: 1024,
        cm2: false,
        cm2_decode: false,
        cm2_attention: false,
    };
    const PROMPT: CmShape =
        CmShape { f16_kv: true, dk: 128, dv: 128, rows: 512, aligned: true, ratio: 1, mask_heads: true };

    #[test]
    fn prompts_with_f16_caches_take_the_cooperative_kernel() {
        for d in [64, 80, 96, 112, 128] {
            let shader = cm_plan(&NVIDIA, CmShape { dk: d, dv: d, ..PROMPT }).expect("cooperative kernel");
            assert_eq!(shader.name, format!("flash_attn_cm_d{d}"));
            assert!(!shader.spirv.is_empty() || cfg!(not(feature = "shaders")), "{} compiled", shader.name);
            const { assert!(cm_shared_bytes(128) <= 48 * 1024) };
        }
        // GQA: 16 query rows x 4 Q heads per KV head fill a block.
        assert!(cm_plan(&NVIDIA, CmShape { rows: 64, ..PROMPT }).is_some());
    }

    const NVIDIA_CM2: CoopmatDevice = CoopmatDevice { cm2: true, cm2_decode: true, cm2_attention: true, ..NVIDIA };

    #[test]
    fn prompts_take_the_coopmat2_kernel_where_the_device_runs_it() {
        for d in CM2_HEADS {
            let d = i64::from(d);
            let (shader, rows) = cm2_plan(&NVIDIA_CM2, CmShape { dk: d, dv: d, ..PROMPT }, 1).expect("coopmat2");
            assert_eq!(rows, CmRows::PerHead);
            assert_eq!(shader.name, format!("flash_attn_cm2_d{d}"));
            assert!(!shader.spirv.is_empty() || cfg!(not(feature = "shaders")), "{} compiled", shader.name);
        }
    }

    #[test]
    fn the_coopmat2_kernel_reads_whole_tiles_and_aligned_masks_without_clamping() {
        let prompt = FlashAttnPush { n_q: 2048, n_kv: 2304, ratio: 1, m: [4096, 2304, 0, 0], ..Default::default() };
        assert_eq!(cm2_specs(&prompt, true, 1), [1, 1, 1]);
        // A partial last block of rows: direct loads for the others.
        assert_eq!(cm2_specs(&FlashAttnPush { n_q: 1000, ..prompt }, true, 1), [1, 1, 2]);
        // Measurement caps.
        assert_eq!(cm2_specs(&prompt, true, 2), [1, 1, 2]);
        assert_eq!(cm2_specs(&prompt, true, 0), [1, 1, 0]);
        // Keys past the last whole tile, mask rows off 16 bytes, several Q heads per KV head: clamped.
        assert_eq!(cm2_specs(&FlashAttnPush { n_kv: 113, m: [0, 113, 0, 0], ..prompt }, true, 1), [1, 0, 0]);
        assert_eq!(cm2_specs(&FlashAttnPush { m: [4096, 2300, 0, 0], ..prompt }, true, 1), [1, 1, 0]);
        assert_eq!(cm2_specs(&FlashAttnPush { m: [4092, 2304, 0, 0], ..prompt }, true, 1), [1, 1, 0]);
        assert_eq!(cm2_specs(&FlashAttnPush { ratio: 4, ..prompt }, true, 1), [4, 1, 0]);
        // No mask: nothing to read.
        assert_eq!(cm2_specs(&prompt, false, 1), [1, 1, 0]);
    }

    #[test]
    fn the_coopmat2_kernel_keeps_to_its_shapes_and_devices() {
        // GQA: a Q head per block wherever each head has a block of query rows (any ratio); else, and with the
        // knob at 0, the KHR kernel; the interleaved rows (knob 2) where the ratio divides the block.
        for ratio in [2, 3, 4, 8, 12] {
            let shape = CmShape { ratio, rows: 64 * ratio, ..PROMPT };
            assert_eq!(cm2_plan(&NVIDIA_CM2, shape, 1).map(|p| p.1), Some(CmRows::PerHead), "ratio {ratio}");
            let short = CmShape { rows: 64 * ratio - ratio, ..shape };
            assert!(cm2_plan(&NVIDIA_CM2, short, 1).is_none(), "ratio {ratio}: 63 query rows");
            assert!(cm_plan(&NVIDIA_CM2, short).is_some(), "ratio {ratio}: 63 query rows on the KHR kernel");
            assert!(cm2_plan(&NVIDIA_CM2, shape, 0).is_none(), "ratio {ratio}, knob 0");
            let packed = cm2_plan(&NVIDIA_CM2, shape, 2).map(|p| p.1);
            assert_eq!(packed, (64 % ratio == 0).then_some(CmRows::Packed), "ratio {ratio}, knob 2");
        }
        // One Q head per KV head whatever the knob.
        for gqa in 0..3 {
            assert_eq!(cm2_plan(&NVIDIA_CM2, PROMPT, gqa).map(|p| p.1), Some(CmRows::PerHead));
        }
        // Whatever the KHR kernel refuses, so does this one.
        for shape in [
            CmShape { rows: 63, ..PROMPT },
            CmShape { f16_kv: false, ..PROMPT },
            CmShape { dk: 256, dv: 256, ..PROMPT },
            CmShape { dk: 128, dv: 64, ..PROMPT },
            CmShape { aligned: false, ..PROMPT },
            CmShape { mask_heads: false, ..PROMPT },
        ] {
            assert!(cm2_plan(&NVIDIA_CM2, shape, 1).is_none(), "{shape:?}");
            assert!(cm2_plan(&NVIDIA_CM2, CmShape { ratio: 4, rows: shape.rows * 4, ..shape }, 1).is_none());
        }
        // Devices without its operations or shapes.
        assert!(cm2_plan(&NVIDIA, PROMPT, 1).is_none());
        assert!(cm2_plan(&CoopmatDevice { cm2_attention: false, ..NVIDIA_CM2 }, PROMPT, 1).is_none());
    }

    #[test]
    fn other_shapes_types_and_devices_keep_the_general_kernels() {
        assert!(cm_plan(&NVIDIA, CmShape { rows: 63, ..PROMPT }).is_none(), "token generation and short blocks");
        assert!(cm_plan(&NVIDIA, CmShape { f16_kv: false, ..PROMPT }).is_none(), "quantized caches");
        assert!(cm_plan(&NVIDIA, CmShape { dk: 256, dv: 256, ..PROMPT }).is_none(), "large heads");
        assert!(cm_plan(&NVIDIA, CmShape { dk: 192, dv: 128, ..PROMPT }).is_none(), "unequal heads");
        assert!(cm_plan(&NVIDIA, CmShape { dk: 72, dv: 72, ..PROMPT }).is_none(), "head size not a multiple of 16");
        assert!(cm_plan(&NVIDIA, CmShape { aligned: false, ..PROMPT }).is_none(), "unaligned K/V");
        let lavapipe = CoopmatDevice { f16_16x16x16: false, subgroup_size: 8, max_shared_memory: 32 * 1024, ..NVIDIA };
        assert!(cm_plan(&lavapipe, PROMPT).is_none());
        assert!(cm_plan(&CoopmatDevice { subgroup_size: 64, ..NVIDIA }, PROMPT).is_none());
        assert!(cm_plan(&CoopmatDevice { max_shared_memory: 32 * 1024, ..NVIDIA }, PROMPT).is_none());
    }
}
