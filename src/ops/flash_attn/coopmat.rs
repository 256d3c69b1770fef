//! FLASH_ATTN_EXT on cooperative matrices: which nodes and devices take `flash_attn_cm.comp` (KHR, prompts) and
//! `flash_attn_cm2.comp` (NV_cooperative_matrix2: prompts, and with `SPLIT` tokens and small batches with GQA), the
//! kernels' shapes and specialization constants ([`cm_plan`], [`cm2_plan`], [`cm2_split_plan`]: pure and
//! unit-tested without a GPU), and the NV_cooperative_matrix2 recording.

use super::{FlashAttnPush, MaskFlagsPush, MASK_FLAGS, PUSH};
use crate::error::{Error, Result};
use crate::ir::{Node, Tensor};
use crate::ops::coopmat::CoopmatDevice;
use crate::ops::q8_emit::{self, Planned, Q8Layout};
use crate::ops::{bind, opt_src, spirv};
use crate::quant::GgmlType;
use crate::vk::{Binding, Derived, Device, Recorder, Shader};

/// `flash_attn_cm.comp` per head size.
const CM: [(u32, Shader); 5] = [
    (64, Shader { name: "flash_attn_cm_d64", spirv: spirv::FLASH_ATTN_CM_D64, bindings: 6, push_size: PUSH }),
    (80, Shader { name: "flash_attn_cm_d80", spirv: spirv::FLASH_ATTN_CM_D80, bindings: 6, push_size: PUSH }),
    (96, Shader { name: "flash_attn_cm_d96", spirv: spirv::FLASH_ATTN_CM_D96, bindings: 6, push_size: PUSH }),
    (112, Shader { name: "flash_attn_cm_d112", spirv: spirv::FLASH_ATTN_CM_D112, bindings: 6, push_size: PUSH }),
    (128, Shader { name: "flash_attn_cm_d128", spirv: spirv::FLASH_ATTN_CM_D128, bindings: 6, push_size: PUSH }),
];
/// An entry of [`CM2`] (binding 7: the output's f16 copy).
const fn cm2(kv: CmKv, d: u32, name: &'static str, spirv: &'static [u8]) -> (CmKv, u32, Shader) {
    (kv, d, Shader { name, spirv, bindings: 8, push_size: PUSH })
}
/// An entry of [`CM2S`].
const fn cm2s(kv: CmKv, d: u32, name: &'static str, spirv: &'static [u8]) -> (CmKv, u32, Shader) {
    (kv, d, Shader { name, spirv, bindings: 7, push_size: PUSH })
}
/// `flash_attn_cm2.comp` per K/V type and head size (F16: every head size of the KHR kernel; Q8_0 / Q4_0: those
/// that are multiples of 32).
pub(super) const CM2: [(CmKv, u32, Shader); 11] = [
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
pub(super) const CM2S: [(CmKv, u32, Shader); 11] = [
    cm2s(CmKv::F16, 64, "flash_attn_cm2s_d64", spirv::FLASH_ATTN_CM2S_D64),
    cm2s(CmKv::F16, 80, "flash_attn_cm2s_d80", spirv::FLASH_ATTN_CM2S_D80),
    cm2s(CmKv::F16, 96, "flash_attn_cm2s_d96", spirv::FLASH_ATTN_CM2S_D96),
    cm2s(CmKv::F16, 112, "flash_attn_cm2s_d112", spirv::FLASH_ATTN_CM2S_D112),
    cm2s(CmKv::F16, 128, "flash_attn_cm2s_d128", spirv::FLASH_ATTN_CM2S_D128),
    cm2s(CmKv::Q8_0, 64, "flash_attn_cm2s_q8_0_d64", spirv::FLASH_ATTN_CM2S_Q8_0_D64),
    cm2s(CmKv::Q8_0, 96, "flash_attn_cm2s_q8_0_d96", spirv::FLASH_ATTN_CM2S_Q8_0_D96),
    cm2s(CmKv::Q8_0, 128, "flash_attn_cm2s_q8_0_d128", spirv::FLASH_ATTN_CM2S_Q8_0_D128),
    cm2s(CmKv::Q4_0, 64, "flash_attn_cm2s_q4_0_d64", spirv::FLASH_ATTN_CM2S_Q4_0_D64),
    cm2s(CmKv::Q4_0, 96, "flash_attn_cm2s_q4_0_d96", spirv::FLASH_ATTN_CM2S_Q4_0_D96),
    cm2s(CmKv::Q4_0, 128, "flash_attn_cm2s_q4_0_d128", spirv::FLASH_ATTN_CM2S_Q4_0_D128),
];

/// The kernel of `table` for K/V type `kv` and head size `d`.
pub(super) fn cm2_shader(table: &[(CmKv, u32, Shader)], kv: CmKv, d: i64) -> Option<Shader> {
    table.iter().find(|(t, hd, _)| *t == kv && i64::from(*hd) == d).map(|(_, _, s)| *s)
}

/// Rows per block the split variant of `flash_attn_cm2.comp` may take (its `BR`), smallest first.
pub(crate) const CM2S_ROWS: [u32; 3] = [16, 32, 64];
/// Keys per tile the split variant may take (its `BC`).
pub(crate) const CM2S_KEYS: [u32; 3] = [32, 64, 128];

/// [`CoopmatDevice::cm2_split`] from whether the device has the softmax's matrix operations and
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
pub fn cm_plan(dev: &CoopmatDevice, shape: CmShape) -> Option<Shader> {
    let (_, shader) = CM.iter().find(|(d, _)| i64::from(*d) == shape.dk)?;
    (shape.rows >= i64::from(CM_ROWS) && cm_fits(dev, shape)).then_some(*shader)
}

/// What the KHR kernel needs, whatever the row count: F16 K and V, and what [`cm2_fits`] asks.
fn cm_fits(dev: &CoopmatDevice, shape: CmShape) -> bool {
    shape.kv == CmKv::F16 && cm2_fits(dev, shape)
}

/// What every cooperative-matrix attention kernel needs, whatever the row count: K and V of one type (F16; Q8_0 or
/// Q4_0 only on `flash_attn_cm2.comp`, decoded in its loads where the device has NV_cooperative_matrix2's block
/// loads) and one head size among the compiled ones, aligned ([`CmShape::aligned`]), and a device with f16 16x16x16
/// fragments, subgroups of 32 and room for the KHR kernel's shared memory.
fn cm2_fits(dev: &CoopmatDevice, shape: CmShape) -> bool {
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
/// applies: a device that runs it ([`CoopmatDevice::cm2_attention`]), a node [`cm_plan`] would give
/// the KHR kernel and a mask shared by the heads or one per head. With several Q heads per KV head, `gqa` picks the
/// layout ([`cm2_gqa_mode`]'s values): a Q head per block needs a block of query rows (64) per head, the interleaved
/// layout a ratio dividing 64. Pure, so its choices are unit-tested without a GPU.
pub fn cm2_plan(dev: &CoopmatDevice, shape: CmShape, gqa: u32) -> Option<(Shader, CmRows)> {
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
/// offers ([`CoopmatDevice::cm2_split`]) and at least two splits of at least two tiles each (shorter
/// caches stay on the decode kernel). `mode`, `bc` and `target` are [`cm2_split_knobs`]'s values; `kv_heads` and
/// `seqs` count the KV heads and sequences. Where the Q heads of a KV head divide a block's rows, a block holds
/// them all (K and V tiles serve the group, [`CmRows::Packed`]); else a block holds one Q head. The block is the
/// smallest offered that holds a KV head's rows. Pure, so its choices are unit-tested without a GPU.
#[allow(clippy::too_many_arguments)]
pub fn cm2_split_plan(
    dev: &CoopmatDevice,
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
pub(super) fn cm2_split_on(device: &Device, node: &Node, k_off: u32, v_off: u32) -> Option<Cm2Split> {
    if !device.coopmat2_enabled() || cm_switches() != (true, true) {
        return None;
    }
    let (k, q) = (node.src(1).ok()?, node.src(0).ok()?);
    let shape = cm_shape(node, k_off, v_off)?;
    let dev = CoopmatDevice::from_caps(device.caps());
    let (mode, bc, target) = cm2_split_knobs();
    let (kv_heads, seqs) = (u32::try_from(k.ne[2]).ok()?, u32::try_from(q.ne[3]).ok()?);
    cm2_split_plan(&dev, shape, u32::try_from(k.ne[1]).ok()?, kv_heads, seqs, mode, bc, target)
}

/// The prompt kernel for `node` on `device` with its bound K/V offsets (16-bit words) and its row layout:
/// [`cm2_plan`] where the device has NV_cooperative_matrix2 enabled (`GGVK_FA_COOPMAT2=0` turns it off), else
/// [`cm_plan`] (`GGVK_FA_COOPMAT=0` turns that off; both read once per process).
pub(super) fn cm_plan_on(device: &Device, node: &Node, k_off: u32, v_off: u32) -> Option<(Shader, CmRows)> {
    let (cm, cm2) = cm_switches();
    if !cm {
        return None;
    }
    let shape = cm_shape(node, k_off, v_off)?;
    let dev = CoopmatDevice::from_caps(device.caps());
    if device.coopmat2_enabled() && cm2 {
        if let Some(plan) = cm2_plan(&dev, shape, cm2_gqa_mode()) {
            return Some(plan);
        }
    }
    cm_plan(&dev, shape).map(|s| (s, CmRows::Packed))
}

/// The push constants a prompt kernel sees for row layout `layout`: with a Q head per block, one Q head per "KV
/// head" (n_head of them; the kernel finds the real KV head). A copy, so that a fallback keeps the node's own heads.
pub(super) fn laid_out(push: FlashAttnPush, layout: CmRows) -> FlashAttnPush {
    match layout {
        CmRows::PerHead => FlashAttnPush { ratio: 1, n_head_kv: push.ratio * push.n_head_kv, ..push },
        CmRows::Packed => push,
    }
}

/// Bytes of `fa_mask_flags.comp`'s flags for `node` with row layout `layout` (one word per block of rows and tile
/// of keys; none without a mask).
pub(super) fn cm2_flag_bytes(node: &Node, layout: CmRows) -> u64 {
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
/// `fa_mask_flags.comp` where there is a mask; writing the f16 copy of the output `emit` plans too where
/// [`q8_emit::f16_in_order`] allows (registered for the product that reads it).
#[allow(clippy::too_many_arguments)]
pub(super) fn record_cm2(
    rec: &mut Recorder<'_>,
    node: &Node,
    shader: &Shader,
    mut push: FlashAttnPush,
    groups: [u32; 3],
    bindings: [Binding; 6],
    layout: CmRows,
    emit: Option<&Planned>,
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
                f_off: 0,
            };
            let (fr, f_off) = mask_flags(rec, m, &bindings[3], fp, [n_tiles, groups[0], 1])?;
            push.chunk = f_off;
            fr
        }
        None => bindings[0].clone(),
    };
    let [qb, kb, vb, mb, sb, db] = bindings;
    static KNOB: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let cap = *KNOB.get_or_init(|| crate::knobs::number("GGVK_FA_CM2_MASK").map_or(1, |v| v as u32));
    let [ratio, whole, mode] = cm2_specs(&push, opt_src(node, 3).is_some(), cap);
    // Heaviest blocks first (`DESCEND`; `GGVK_FA_CM2_DESCEND=0` keeps the grid's order, for measurements).
    static DESCEND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let descend = u32::from(*DESCEND.get_or_init(|| crate::knobs::switch("GGVK_FA_CM2_DESCEND", true)));
    let emit = match emit.filter(|e| q8_emit::f16_in_order(&node.dst, e)) {
        Some(e) => Some((e, q8_emit::reserve(rec, &e.view, Q8Layout::F16)?)).filter(|(_, w)| w.word == 0),
        None => None,
    };
    // Constants 4 and 5 (the split kernel's block shape) are not in the prompt kernel: entries for them do nothing.
    let specs = [ratio, whole, mode, kv_group, 0, 0, descend, u32::from(emit.is_some())];
    let pipeline = device.pipelines().get(&device, shader, &specs)?;
    // Without the copy, binding 7 is never written: the output stands in.
    let copy = emit.as_ref().map_or_else(|| db.clone(), |(_, w)| w.write.clone());
    rec.dispatch(shader.name, &pipeline, &[qb, kb, vb, mb, sb, db, flags, copy], bytemuck::bytes_of(&push), groups)?;
    if let Some((planned, w)) = emit {
        q8_emit::publish(rec, &planned.view, w);
    }
    Ok(())
}

/// The flags `fa_mask_flags.comp` computes for mask `m` (bound as `mb`) with push constants `fp` (all but the
/// flags' offset) over `groups` = (tiles, blocks, 1): read-only binding and first word. The flags of the same mask
/// bytes, rows per block and shape are computed once per submission (derived data of the mask, like the
/// activations' copies): the attention of every layer of a prompt reads the same mask.
fn mask_flags(
    rec: &mut Recorder<'_>,
    m: &Tensor,
    mb: &Binding,
    mut fp: MaskFlagsPush,
    groups: [u32; 3],
) -> Result<(Binding, u32)> {
    let device = rec.device().clone();
    let (start, end) = m.byte_range();
    let source = (m.buffer.id(), start, end);
    // The key: the mask's strides and what the flags' values depend on besides its bytes.
    let pack = |lo: u32, hi: u32| i64::from(lo) | i64::from(hi) << 32;
    let shape =
        [pack(fp.n_q, fp.n_kv), pack(fp.rows_per_block, fp.bc), pack(fp.m_ne2, fp.m_ne3), pack(groups[0], groups[1])];
    let key = (m.ty.raw(), shape, m.nb);
    if let Some(found) = rec.find_derived(MASK_FLAGS.name, source, key) {
        return Ok(found);
    }
    let bytes = u64::from(groups[0]) * u64::from(groups[1]) * 4;
    let (scratch, offset) = rec.scratch(bytes)?;
    let region = Tensor::contiguous(scratch, offset, GgmlType::F32, [(bytes / 4) as i64, 1, 1, 1])?;
    let (fw, f_off) = bind(&device, &region, 4, true)?;
    fp.f_off = f_off;
    let max = device.caps().max_workgroup_count;
    if groups.iter().zip(max).any(|(&g, m)| g > m) {
        return Err(Error::unsupported(format!("FLASH_ATTN_EXT mask flags need {groups:?} workgroups")));
    }
    let pipeline = device.pipelines().get(&device, &MASK_FLAGS, &[])?;
    rec.dispatch(MASK_FLAGS.name, &pipeline, &[mb.clone(), fw.clone()], bytemuck::bytes_of(&fp), groups)?;
    let read = (Binding { write: false, ..fw }, f_off);
    rec.add_derived(Derived { kind: MASK_FLAGS.name, source, layout: key, result: read.clone() });
    Ok(read)
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

    const NVIDIA: CoopmatDevice = crate::ops::coopmat::NVIDIA_TEST;
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
