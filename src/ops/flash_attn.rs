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
/// An entry of [`CM2`] / [`CM2S`].
const fn cm2(kv: CmKv, d: u32, name: &'static str, spirv: &'static [u8]) -> (CmKv, u32, Shader) {
    (kv, d, Shader { name, spirv, bindings: 7, push_size: PUSH })
}
/// `flash_attn_cm2.comp` per K/V type and head size (F16: every head size of the KHR kernel; Q8_0 / Q4_0: those
/// that are multiples of 32).
const CM2: [(CmKv, u32, Shader); 11] = [
    cm2(CmKv::F16, 64, "flash_attn_cm2_d64", spirv::FLASH_ATTN_CM2_D64),
    cm2(CmKv::F16, 80, "flash_attn_cm2_d80", spirv::FLASH_ATTN_CM2_D80),
    cm2(CmKv::F16, 96, "flash_attn_cm2_d96", spirv::FLASH_ATTN_CM2_D96),
    cm2(CmKv::F16, 112, "flash_attn_cm2_d112", spirv::FLASH_ATTN_CM2_D112),
    cm2(CmKv::F16, 128, "flash_attn_cm2_d128", spirv::FLASH_ATTN_CM2_D128),
    cm2(CmKv::Q8_0, 64, "flash_attn_cm2_q8_0_d64", spirv::FLASH_ATTN_CM2_Q8_0_D64),
    cm2(CmKv::Q8_0, 96, "flash_attn_cm2_q8_0_d96", spirv::FLASH_ATTN_CM2_Q8_0_D96),
    cm2(CmKv::Q8_0, 128, "flash_attn_cm2_q8_0_d128", spirv::FLASH_ATTN_CM2_Q8_0_D128),
    cm2(CmKv::Q4_0, 64, "flash_attn_cm2_q4_0_d64", spirv::FLASH_ATTN_CM2_Q4_0_D64),
    cm2(CmKv::Q4_0, 96, "flash_attn_cm2_q4_0_d96", spirv::FLASH_ATTN_CM2_Q4_0_D96),
    cm2(CmKv::Q4_0, 128, "flash_attn_cm2_q4_0_d128", spirv::FLASH_ATTN_CM2_Q4_0_D128),
];
/// `flash_attn_cm2.comp` built with `SPLIT` (token generation and small batches, keys split), as [`CM2`].
const CM2S: [(CmKv, u32, Shader); 11] = [
    cm2(CmKv::F16, 64, "flash_attn_cm2s_d64", spirv::FLASH_ATTN_CM2S_D64),
    cm2(CmKv::F16, 80, "flash_attn_cm2s_d80", spirv::FLASH_ATTN_CM2S_D80),
    cm2(CmKv::F16, 96, "flash_attn_cm2s_d96", spirv::FLASH_ATTN_CM2S_D96),
    cm2(CmKv::F16, 112, "flash_attn_cm2s_d112", spirv::FLASH_ATTN_CM2S_D112),
    cm2(CmKv::F16, 128, "flash_attn_cm2s_d128", spirv::FLASH_ATTN_CM2S_D128),
    cm2(CmKv::Q8_0, 64, "flash_attn_cm2s_q8_0_d64", spirv::FLASH_ATTN_CM2S_Q8_0_D64),
    cm2(CmKv::Q8_0, 96, "flash_attn_cm2s_q8_0_d96", spirv::FLASH_ATTN_CM2S_Q8_0_D96),
    cm2(CmKv::Q8_0, 128, "flash_attn_cm2s_q8_0_d128", spirv::FLASH_ATTN_CM2S_Q8_0_D128),
    cm2(CmKv::Q4_0, 64, "flash_attn_cm2s_q4_0_d64", spirv::FLASH_ATTN_CM2S_Q4_0_D64),
    cm2(CmKv::Q4_0, 96, "flash_attn_cm2s_q4_0_d96", spirv::FLASH_ATTN_CM2S_Q4_0_D96),
    cm2(CmKv::Q4_0, 128, "flash_attn_cm2s_q4_0_d128", spirv::FLASH_ATTN_CM2S_Q4_0_D128),
];

/// The kernel of `table` for K/V type `kv` and head size `d`.
fn cm2_shader(table: &[(CmKv, u32, Shader)], kv: CmKv, d: i64) -> Option<Shader> {
    table.iter().find(|(t, hd, _)| *t == kv && i64::from(*hd) == d).map(|(_, _, s)| *s)
}

/// Rows per block the split variant of `flash_attn_cm2.comp` may take (its `BR`), smallest first.
pub(crate) const CM2S_ROWS: [u32; 3] = [16, 32, 64];
/// Keys per tile the split variant may take (its `BC`).
pub(crate) const CM2S_KEYS: [u32; 3] = [32, 64, 128];

/// [`super::coopmat::CoopmatDevice::cm2_split`] from whether the device has the softmax's matrix operations and
/// which (M, N, K) products it offers (`allows`, f16 x f16 -> f32 at [`CM2_WG`] invocations).
pub(crate) fn cm2_split_shapes(softmax_ops: bool, allows: impl Fn((u32, u32, u32)) -> bool) -> u16 {
    let mut bits = 0;
    for (i, &br) in CM2S_ROWS.iter().enumerate() {
        for (j, &bc) in CM2S_KEYS.iter().enumerate() {
            if softmax_ops && CM2_HEADS.iter().all(|&d| allows((br, bc, d)) && allows((br, d, bc))) {
                bits |= 1 << (i * 3 + j);
            }
        }
    }
    bits
}

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
/// or more query rows per KV head (GQA) and more than 4,096 keys: about 512 workgroups of at least 256 keys; with
/// fewer rows and more than 8,192 keys: about 512 of at least 128; else about 1,024 of at least 128. Measured on an
/// H200 (NOTES.md, 2026-12-05): with 4 rows per KV head (hs 128, 8 KV heads, F16) the first took 34.2 / 59.0 / 93.2
/// us at 8k / 16k / 32k keys against 39.5 / 67.4 / 113.8 with the last, with 8 rows (hs 64, 7,680 keys) 31.3 against
/// 43.1; but at 4k keys 24.7 against 18.6, and a 7B model without GQA generated 278.5 / 194.9 t/s (depth 0 / 8192)
/// against 297.2 / 201.4. With one row per KV head (H100, same shape) 512 workgroups took 35.0 / 62.4 us at 16k /
/// 32k keys against 45.6 / 87.3, and 16.1 against 16.0 at 8k. `GGVK_FA_DECODE_GROUPS` and
/// `GGVK_FA_DECODE_MIN_KEYS` override both (read once per process).
fn decode_split_shape(rows: u32, n_kv: u32) -> (u64, u32) {
    static KNOBS: std::sync::OnceLock<(Option<u64>, Option<u32>)> = std::sync::OnceLock::new();
    let (target, min_keys) = *KNOBS.get_or_init(|| {
        (
            crate::knobs::number("GGVK_FA_DECODE_GROUPS"),
            crate::knobs::number("GGVK_FA_DECODE_MIN_KEYS").map(|v| v as u32),
        )
    });
    let (t, k) = if rows >= 4 && n_kv > 4096 {
        (512, 256)
    } else if n_kv > 8192 {
        (512, WG)
    } else {
        (1024, WG)
    };
    (target.unwrap_or(t), min_keys.unwrap_or(k).max(WG))
}

/// Whether the decode kernel reads V rows as 16-byte vectors (`VEC_V`): head size `dv` a multiple of 8 up to the
/// workgroup size, V's offset and strides (16-bit words) multiples of 8.
fn vector_v(dv: i64, v_words: &[u32]) -> bool {
    dv % 8 == 0 && dv <= i64::from(WG) && v_words.iter().all(|w| w % 8 == 0)
}

/// K and V's element type as the cooperative-matrix attention kernels see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmKv {
    /// Both F16 (every kernel).
    F16,
    /// Both Q8_0 (`flash_attn_cm2.comp`, decoding in its loads).
    Q8_0,
    /// Both Q4_0 (likewise).
    Q4_0,
    /// Anything else (the general kernels).
    Other,
}

impl CmKv {
    /// 16-bit words per block of a quantized type (1 for F16).
    fn words(self) -> u32 {
        match self {
            CmKv::Q8_0 => 17,
            CmKv::Q4_0 => 9,
            _ => 1,
        }
    }
}

/// What the cooperative-matrix prompt kernel needs to know about a node, apart from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmShape {
    /// K and V's (common) element type.
    pub kv: CmKv,
    /// Head sizes of K and V.
    pub dk: i64,
    /// Head size of V.
    pub dv: i64,
    /// Rows per KV head (query rows x Q heads sharing it).
    pub rows: i64,
    /// K and V offsets (of the bound ranges) and strides fall on 16-byte boundaries (F16) or whole blocks.
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
    (shape.rows >= i64::from(CM_ROWS) && cm_fits(dev, shape)).then_some(*shader)
}

/// What the KHR kernel needs, whatever the row count: F16 K and V, and what [`cm2_fits`] asks.
fn cm_fits(dev: &super::coopmat::CoopmatDevice, shape: CmShape) -> bool {
    shape.kv == CmKv::F16 && cm2_fits(dev, shape)
}

/// What every cooperative-matrix attention kernel needs, whatever the row count: K and V of one type (F16; Q8_0 or
/// Q4_0 only on `flash_attn_cm2.comp`, decoded in its loads where the device has NV_cooperative_matrix2's block
/// loads) and one head size among the compiled ones, aligned ([`CmShape::aligned`]), and a device with f16 16x16x16
/// fragments, subgroups of 32 and room for the KHR kernel's shared memory.
fn cm2_fits(dev: &super::coopmat::CoopmatDevice, shape: CmShape) -> bool {
    let kv_ok = match shape.kv {
        CmKv::F16 => true,
        CmKv::Q8_0 | CmKv::Q4_0 => dev.cm2_decode && cm2_shader(&CM2, shape.kv, shape.dk).is_some(),
        CmKv::Other => false,
    };
    kv_ok
        && shape.dk == shape.dv
        && CM.iter().any(|(d, _)| i64::from(*d) == shape.dk)
        && shape.aligned
        && dev.f16_16x16x16
        && dev.fp16
        && dev.memory_model
        && dev.subgroup_size == 32
        && dev.max_shared_memory >= cm_shared_bytes(shape.dk as u32)
        && dev.max_workgroup_invocations >= 128
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
    let shader = cm2_shader(&CM2, shape.kv, shape.dk)?;
    let rows = match (shape.ratio, gqa) {
        (1, _) => CmRows::PerHead,
        (r, 1) if shape.rows / r >= i64::from(CM_ROWS) => CmRows::PerHead,
        (r, 2) if i64::from(CM_ROWS) % r == 0 => CmRows::Packed,
        _ => return None,
    };
    let fits = dev.cm2_attention && shape.mask_heads && shape.rows >= i64::from(CM_ROWS) && cm2_fits(dev, shape);
    fits.then_some((shader, rows))
}

/// How `flash_attn_cm2.comp`'s split variant runs a node: row layout, rows per block (`BR`), keys per tile (`BC`),
/// splits of the keys and keys per split (a multiple of `bc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cm2Split {
    /// K and V's type (which build of the variant runs).
    pub kv: CmKv,
    /// How a KV head's rows lie over the blocks.
    pub rows: CmRows,
    /// Rows per block.
    pub br: u32,
    /// Keys per tile.
    pub bc: u32,
    /// Splits of the keys (at least 2: each writes records that the reduction combines).
    pub splits: u32,
    /// Keys per split.
    pub chunk: u32,
}

/// The split variant's settings (read once per process): `GGVK_FA_CM2_SPLIT` 0 never, 1 where several query rows
/// share a KV head (GQA tokens, small batches; the default), 2 also one row per KV head; `GGVK_FA_CM2_SPLIT_KEYS`
/// keys per tile (32, 64 (default) or 128); `GGVK_FA_CM2_SPLIT_GROUPS` workgroups aimed at (default 256, about two
/// per SM of an H100 or H200).
fn cm2_split_knobs() -> (u32, u32, u32) {
    static KNOBS: std::sync::OnceLock<(u32, u32, u32)> = std::sync::OnceLock::new();
    *KNOBS.get_or_init(|| {
        let or = |v: Option<u64>, default: u32| v.map_or(default, |v| v as u32);
        (
            or(crate::knobs::number("GGVK_FA_CM2_SPLIT"), 1),
            or(crate::knobs::number("GGVK_FA_CM2_SPLIT_KEYS"), 64),
            or(crate::knobs::number("GGVK_FA_CM2_SPLIT_GROUPS"), 256),
        )
    })
}

/// The split variant of `flash_attn_cm2.comp` for a node the prompt kernels do not take (fewer than [`CM_ROWS`]
/// rows per KV head): what [`cm2_fits`] asks, a mask shared by the heads or one per head, a block shape the device
/// offers ([`super::coopmat::CoopmatDevice::cm2_split`]) and at least two splits of at least two tiles each (shorter
/// caches stay on the decode kernel). `mode`, `bc` and `target` are [`cm2_split_knobs`]'s values; `kv_heads` and
/// `seqs` count the KV heads and sequences. Where the Q heads of a KV head divide a block's rows, a block holds
/// them all (K and V tiles serve the group, [`CmRows::Packed`]); else a block holds one Q head. The block is the
/// smallest offered that holds a KV head's rows. Pure, so its choices are unit-tested without a GPU.
#[allow(clippy::too_many_arguments)]
pub fn cm2_split_plan(
    dev: &super::coopmat::CoopmatDevice,
    shape: CmShape,
    n_kv: u32,
    kv_heads: u32,
    seqs: u32,
    mode: u32,
    bc: u32,
    target: u32,
) -> Option<Cm2Split> {
    let wanted = match mode {
        1 => shape.rows >= 2,
        2 => shape.rows >= 1,
        _ => false,
    };
    let j = CM2S_KEYS.iter().position(|&k| k == bc)?;
    if !wanted || shape.rows >= i64::from(CM_ROWS) || !shape.mask_heads || !cm2_fits(dev, shape) {
        return None;
    }
    let offered: Vec<u32> = CM2S_ROWS
        .iter()
        .enumerate()
        .filter(|(i, _)| dev.cm2_split & (1 << (i * 3 + j)) != 0)
        .map(|(_, &r)| r)
        .collect();
    let ratio = u32::try_from(shape.ratio).ok()?.max(1);
    let n_q = u32::try_from(shape.rows).ok()? / ratio;
    let packed: Vec<u32> = offered.iter().copied().filter(|br| br % ratio == 0).collect();
    let (rows, blocks_of, need) =
        if packed.is_empty() { (CmRows::PerHead, &offered, n_q) } else { (CmRows::Packed, &packed, n_q * ratio) };
    let br = blocks_of.iter().copied().find(|&br| br >= need).or_else(|| blocks_of.last().copied())?;
    let heads = if rows == CmRows::Packed { kv_heads } else { kv_heads * ratio };
    let groups = u64::from(need.div_ceil(br)) * u64::from(heads) * u64::from(seqs);
    let most = n_kv / (2 * bc);
    let splits = u32::try_from(u64::from(target) / groups.max(1)).unwrap_or(u32::MAX).min(most);
    if splits < 2 {
        return None;
    }
    let chunk = n_kv.div_ceil(splits).div_ceil(bc) * bc;
    let splits = n_kv.div_ceil(chunk);
    (splits >= 2).then_some(Cm2Split { kv: shape.kv, rows, br, bc, splits, chunk })
}

/// `GGVK_FA_COOPMAT` and `GGVK_FA_COOPMAT2` (read once per process): whether the cooperative-matrix attention
/// kernels run at all, and the NV_cooperative_matrix2 ones among them.
fn cm_switches() -> (bool, bool) {
    static KNOBS: std::sync::OnceLock<(bool, bool)> = std::sync::OnceLock::new();
    *KNOBS.get_or_init(|| {
        (crate::knobs::switch("GGVK_FA_COOPMAT", CM_DEFAULT), crate::knobs::switch("GGVK_FA_COOPMAT2", true))
    })
}

/// The cooperative-matrix kernels' view of `node` with its bound K/V offsets (16-bit words).
fn cm_shape(node: &Node, k_off: u32, v_off: u32) -> Option<CmShape> {
    let (q, k, v) = (node.src(0).ok()?, node.src(1).ok()?, node.src(2).ok()?);
    let ratio = q.ne[2] / k.ne[2].max(1);
    let kv = match (k.ty, v.ty) {
        (GgmlType::F16, GgmlType::F16) => CmKv::F16,
        (GgmlType::Q8_0, GgmlType::Q8_0) => CmKv::Q8_0,
        (GgmlType::Q4_0, GgmlType::Q4_0) => CmKv::Q4_0,
        _ => CmKv::Other,
    };
    // F16: 16-byte rows; quantized: offsets and strides in whole blocks.
    let (unit, bytes) = if kv == CmKv::F16 { (8, 16) } else { (kv.words(), 2 * u64::from(kv.words())) };
    Some(CmShape {
        kv,
        dk: k.ne[0],
        dv: v.ne[0],
        rows: q.ne[1] * ratio,
        aligned: k_off % unit == 0 && v_off % unit == 0 && k.nb[1..].iter().chain(&v.nb[1..]).all(|s| s % bytes == 0),
        ratio,
        mask_heads: opt_src(node, 3).is_none_or(|m| m.ne[2] == 1 || m.ne[2] == q.ne[2]),
    })
}

/// [`cm2_split_plan`] for `node` on `device` with its bound K/V offsets, where NV_cooperative_matrix2 is enabled
/// and `GGVK_FA_COOPMAT` / `GGVK_FA_COOPMAT2` are not 0.
fn cm2_split_on(device: &Device, node: &Node, k_off: u32, v_off: u32) -> Option<Cm2Split> {
    if !device.coopmat2_enabled() || cm_switches() != (true, true) {
        return None;
    }
    let (k, q) = (node.src(1).ok()?, node.src(0).ok()?);
    let shape = cm_shape(node, k_off, v_off)?;
    let dev = super::coopmat::CoopmatDevice::from_caps(device.caps());
    let (mode, bc, target) = cm2_split_knobs();
    let (kv_heads, seqs) = (u32::try_from(k.ne[2]).ok()?, u32::try_from(q.ne[3]).ok()?);
    cm2_split_plan(&dev, shape, u32::try_from(k.ne[1]).ok()?, kv_heads, seqs, mode, bc, target)
}

/// The prompt kernel for `node` on `device` with its bound K/V offsets (16-bit words) and its row layout:
/// [`cm2_plan`] where the device has NV_cooperative_matrix2 enabled (`GGVK_FA_COOPMAT2=0` turns it off), else
/// [`cm_plan`] (`GGVK_FA_COOPMAT=0` turns that off; both read once per process).
fn cm_plan_on(device: &Device, node: &Node, k_off: u32, v_off: u32) -> Option<(Shader, CmRows)> {
    let (cm, cm2) = cm_switches();
    if !cm {
        return None;
    }
    let shape = cm_shape(node, k_off, v_off)?;
    let dev = super::coopmat::CoopmatDevice::from_caps(device.caps());
    if device.coopmat2_enabled() && cm2 {
        if let Some(plan) = cm2_plan(&dev, shape, cm2_gqa_mode()) {
            return Some(plan);
        }
    }
    cm_plan(&dev, shape).map(|s| (s, CmRows::Packed))
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
    let prompt = prompt_kernel(device, node).filter(|(s, _)| CM2.iter().any(|(_, _, c)| c.name == s.name));
    let prompt = prompt.map_or(0, |(_, rows)| cm2_flag_bytes(node, rows));
    // The split cm2 kernel's records, judged as if K and V were aligned (the bound offsets decide when recording).
    let split = cm2_split_on(device, node, 0, 0).map_or(0, |p| records(p.splits));
    general.max(decode_plan(device, node).map_or(0, bytes)).max(prompt).max(split)
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
/// `emit` plans (registered for the product that reads it). Elsewhere the product quantizes for itself.
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
        // A copy: the split kernels below keep the node's own heads if the grid does not fit.
        let cm = laid_out(FlashAttnPush { chunk: push.n_kv, ..push }, layout);
        let groups = [(cm.n_q * cm.ratio).div_ceil(CM_ROWS), cm.n_head_kv, q.ne[3] as u32];
        if groups.iter().zip(max).all(|(&g, m)| g <= m) {
            if CM2.iter().any(|(_, _, c)| c.name == shader.name) {
                return record_cm2(rec, node, &shader, cm, groups, [qb, kb, vb, mb, sb, db], layout);
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

/// The push constants a prompt kernel sees for row layout `layout`: with a Q head per block, one Q head per "KV
/// head" (n_head of them; the kernel finds the real KV head). A copy, so that a fallback keeps the node's own heads.
fn laid_out(push: FlashAttnPush, layout: CmRows) -> FlashAttnPush {
    match layout {
        CmRows::PerHead => FlashAttnPush { ratio: 1, n_head_kv: push.ratio * push.n_head_kv, ..push },
        CmRows::Packed => push,
    }
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
    let emit = emit.filter(|e| {
        e.layout.fits(&e.view)
            && d.is_contiguous()
            && reduce.dv % 4 == 0
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
    let (gx, gy) = split_groups(u64::from(reduce.total), max[0])?;
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
    fn decode_splits_are_wider_for_gqa_past_4096_keys_and_past_8192_keys() {
        // (No GGVK_FA_DECODE_* knobs in the unit tests' environment.)
        assert_eq!(decode_split_shape(1, 8192), (1024, 128));
        assert_eq!(decode_split_shape(4, 4096), (1024, 128));
        assert_eq!(decode_split_shape(3, 8192), (1024, 128));
        assert_eq!(decode_split_shape(1, 8193), (512, 128));
        assert_eq!(decode_split_shape(3, 32768), (512, 128));
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
        cm2_split: 0,
    };
    const PROMPT: CmShape =
        CmShape { kv: CmKv::F16, dk: 128, dv: 128, rows: 512, aligned: true, ratio: 1, mask_heads: true };

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
            CmShape { kv: CmKv::Other, ..PROMPT },
            CmShape { dk: 256, dv: 256, ..PROMPT },
            CmShape { dk: 128, dv: 64, ..PROMPT },
            CmShape { aligned: false, ..PROMPT },
            CmShape { mask_heads: false, ..PROMPT },
        ] {
            assert!(cm2_plan(&NVIDIA_CM2, shape, 1).is_none(), "{shape:?}");
            assert!(cm2_plan(&NVIDIA_CM2, CmShape { ratio: 4, rows: shape.rows * 4, ..shape }, 1).is_none());
        }
        // Q8_0 / Q4_0 caches on it (not on the KHR kernel), where the driver decodes in its loads.
        for (kv, name) in [(CmKv::Q8_0, "flash_attn_cm2_q8_0_d128"), (CmKv::Q4_0, "flash_attn_cm2_q4_0_d128")] {
            let shape = CmShape { kv, ..PROMPT };
            assert_eq!(cm2_plan(&NVIDIA_CM2, shape, 1).map(|(s, r)| (s.name, r)), Some((name, CmRows::PerHead)));
            assert!(cm_plan(&NVIDIA_CM2, shape).is_none());
            assert!(cm2_plan(&CoopmatDevice { cm2_decode: false, ..NVIDIA_CM2 }, shape, 1).is_none());
        }
        // Devices without its operations or shapes.
        assert!(cm2_plan(&NVIDIA, PROMPT, 1).is_none());
        assert!(cm2_plan(&CoopmatDevice { cm2_attention: false, ..NVIDIA_CM2 }, PROMPT, 1).is_none());
    }

    #[test]
    fn a_q_head_per_block_makes_every_q_head_a_kv_head_of_its_own() {
        let push = FlashAttnPush { n_q: 7, ratio: 4, n_head_kv: 8, chunk: 9, ..Default::default() };
        let per_head = laid_out(push, CmRows::PerHead);
        assert_eq!((per_head.ratio, per_head.n_head_kv, per_head.n_q, per_head.chunk), (1, 32, 7, 9));
        let packed = laid_out(push, CmRows::Packed);
        assert_eq!((packed.ratio, packed.n_head_kv), (4, 8));
    }

    #[test]
    fn split_shapes_need_every_head_size_and_the_softmax_operations() {
        // A driver offering multiples of 16 in every dimension: all nine blocks.
        assert_eq!(cm2_split_shapes(true, |(m, n, k)| m % 16 == 0 && n % 16 == 0 && k % 16 == 0), 0x1FF);
        assert_eq!(cm2_split_shapes(false, |_| true), 0);
        // Rows in multiples of 32 only: the 32- and 64-row blocks (bits 3..8).
        assert_eq!(cm2_split_shapes(true, |(m, n, _)| m % 32 == 0 && n % 16 == 0), 0x1F8);
        // A head size of 80 is not a multiple of 32: keys in multiples of 32 leave no block.
        assert_eq!(cm2_split_shapes(true, |(_, n, k)| n % 32 == 0 && k % 32 == 0), 0);
    }

    #[test]
    fn token_generation_with_gqa_splits_its_keys_on_the_coopmat2_kernel() {
        let dev = CoopmatDevice { cm2_split: 0x1FF, ..NVIDIA_CM2 };
        // A Llama-3-8B token: 4 Q heads per KV head, 8 KV heads. One 16-row block per KV head, ~256 workgroups,
        // at least two tiles a split.
        let token = CmShape { rows: 4, ratio: 4, ..PROMPT };
        let plan = |shape, n_kv, mode, bc| cm2_split_plan(&dev, shape, n_kv, 8, 1, mode, bc, 256);
        let p = plan(token, 8192, 1, 64).expect("split plan");
        assert_eq!(p, Cm2Split { kv: CmKv::F16, rows: CmRows::Packed, br: 16, bc: 64, splits: 32, chunk: 256 });
        assert_eq!(plan(token, 32768, 1, 64).map(|p| (p.splits, p.chunk)), Some((32, 1024)));
        // Short caches (fewer than two splits of two tiles) stay on the decode kernel.
        assert_eq!(plan(token, 4096, 1, 64).map(|p| (p.splits, p.chunk)), Some((32, 128)));
        assert!(plan(token, 255, 1, 64).is_none());
        assert_eq!(plan(token, 256, 1, 64).map(|p| (p.splits, p.chunk)), Some((2, 128)));
        // Uneven caches: chunks in whole tiles (at least two a split), the last split shorter.
        assert_eq!(plan(token, 8000, 1, 64).map(|p| (p.splits, p.chunk)), Some((32, 256)));
        assert_eq!(plan(token, 8000, 1, 128).map(|p| (p.bc, p.splits, p.chunk)), Some((128, 21, 384)));
        // Eight Q heads per KV head, four queries (32 rows): one 32-row block.
        let batch = CmShape { rows: 32, ratio: 8, ..PROMPT };
        assert_eq!(plan(batch, 8192, 1, 64).map(|p| (p.rows, p.br)), Some((CmRows::Packed, 32)));
        // Ratios that divide no block: one Q head per block (K/V rows found through KV_GROUP).
        let odd = CmShape { rows: 7, ratio: 7, ..PROMPT };
        let p = plan(odd, 8192, 1, 64).expect("per-head plan");
        assert_eq!((p.rows, p.br, p.splits), (CmRows::PerHead, 16, 4));
        // A block too small for the rows: several blocks of the largest offered.
        let only16 = CoopmatDevice { cm2_split: 0b010, ..dev };
        let p = cm2_split_plan(&only16, batch, 8192, 8, 1, 1, 64, 256).expect("two blocks");
        assert_eq!((p.br, p.splits), (16, 16));
        // One row per KV head only with mode 2; mode 0 never; prompts (64+ rows) never.
        let mha = CmShape { rows: 1, ..PROMPT };
        assert!(plan(mha, 8192, 1, 64).is_none());
        assert_eq!(plan(mha, 8192, 2, 64).map(|p| (p.rows, p.br)), Some((CmRows::Packed, 16)));
        assert!(plan(token, 8192, 0, 64).is_none());
        assert!(plan(CmShape { rows: 64, ..token }, 8192, 1, 64).is_none());
        // What the prompt kernels refuse, or a device without the block shape, keeps the decode kernel.
        for shape in [
            CmShape { kv: CmKv::Other, ..token },
            CmShape { dk: 256, dv: 256, ..token },
            CmShape { aligned: false, ..token },
            CmShape { mask_heads: false, ..token },
        ] {
            assert!(plan(shape, 8192, 1, 64).is_none(), "{shape:?}");
        }
        assert!(cm2_split_plan(&NVIDIA_CM2, token, 8192, 8, 1, 1, 64, 256).is_none(), "no split shapes");
        // Q8_0 / Q4_0 caches (decoded in the loads) at head sizes that are multiples of 32, with block loads.
        for kv in [CmKv::Q8_0, CmKv::Q4_0] {
            for d in [64, 96, 128] {
                let shape = CmShape { kv, dk: d, dv: d, ..token };
                assert!(plan(shape, 8192, 1, 64).is_some(), "{kv:?} d {d}");
                assert!(cm2_shader(&CM2S, kv, d).is_some() && cm2_shader(&CM2, kv, d).is_some());
            }
            assert!(plan(CmShape { kv, dk: 80, dv: 80, ..token }, 8192, 1, 64).is_none(), "{kv:?} d 80");
            let no_loads = CoopmatDevice { cm2_decode: false, ..dev };
            assert!(cm2_split_plan(&no_loads, CmShape { kv, ..token }, 8192, 8, 1, 1, 64, 256).is_none());
        }
        assert!(plan(token, 8192, 1, 48).is_none(), "a tile the kernel is not built for");
        let no_64 = CoopmatDevice { cm2_split: 0x1FF & !0b010_010_010, ..dev };
        assert!(cm2_split_plan(&no_64, token, 8192, 8, 1, 1, 64, 256).is_none());
        for (_, _, shader) in CM2S.iter().chain(&CM2) {
            assert!(!shader.spirv.is_empty() || cfg!(not(feature = "shaders")), "{} compiled", shader.name);
        }
    }

    #[test]
    fn other_shapes_types_and_devices_keep_the_general_kernels() {
        assert!(cm_plan(&NVIDIA, CmShape { rows: 63, ..PROMPT }).is_none(), "token generation and short blocks");
        assert!(cm_plan(&NVIDIA, CmShape { kv: CmKv::Other, ..PROMPT }).is_none(), "quantized caches");
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
