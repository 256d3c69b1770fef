//! Quantized weights decoded to f16 for prompt products on the f16 cooperative-matrix kernels: into scratch per
//! batch, or kept between prompts in a buffer of their own (`GGVK_KEEP_F16_WEIGHTS`).

use bytemuck::{Pod, Zeroable};

use super::{quantizes_activations, rounds_activations, MatMulPush, MATVEC_MAX_COLS};
use crate::error::{Error, Result};
use crate::ir::Tensor;
use crate::ops::{bind, coopmat, dim_u32, spirv, split_groups};
use crate::quant::GgmlType;
use crate::vk::{Binding, Buffer, Device, KeptKey, Recorder, Shader};

/// Push constants of `dequant_f16.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct DequantPush {
    m: u32,
    k: u32,
    a_off: u32,
    a_row: u32,
    d_off: u32,
    chunks: u32,
    pad: [u32; 2],
}

/// Prompt products of at least this many columns dequantize their weights to f16 first (by default; see
/// [`dequant_first_bytes`]).
pub(crate) const DEQUANT_MIN_COLS: u32 = 256;

/// The largest f16 copy of weights a product makes (a 7B model's largest weight takes 90 MB).
const DEQUANT_MAX_BYTES: u64 = 256 << 20;

/// The kernel that dequantizes weights of type `ty` to packed f16 rows (`dequant_f16.comp`).
fn dequant_shader(ty: GgmlType) -> Option<Shader> {
    let (name, spirv): (&'static str, &'static [u8]) = match ty {
        GgmlType::Q4_0 => ("dequant_f16_q4_0", spirv::DEQUANT_F16_Q4_0),
        GgmlType::Q8_0 => ("dequant_f16_q8_0", spirv::DEQUANT_F16_Q8_0),
        // BF16's range is f32's: it keeps its own kernels.
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => return None,
        ty => spirv::dq_module("dequant_f16_dq", ty.name())?,
    };
    Some(Shader { name, spirv, bindings: 2, push_size: std::mem::size_of::<DequantPush>() as u32 })
}

/// Bytes of the f16 copy of the weights `a` that a product with `n` columns makes first, multiplying that copy on
/// the f16 kernel: where the device has an f16 cooperative-matrix kernel (`GGVK_DEQUANT_F16=1`: on every device,
/// `=0`: never), from `GGVK_DEQUANT_F16_MIN_N` columns ([`DEQUANT_MIN_COLS`] by default), for quantized weights of
/// one batch whose activations are not rounded onto another grid ([`rounds_activations`], the 8-bit cooperative
/// kernel's blocks) and whose copy fits in [`DEQUANT_MAX_BYTES`] and one storage window. Decoding blocks
/// inside the tile loop cost the NV_cooperative_matrix2 kernel 28-45% over F16 weights on the H200 (NOTES.md);
/// the copy costs one read of the weights and one write of twice the values per product.
pub fn dequant_first_bytes(device: &Device, a: &Tensor, n: u32) -> Option<u64> {
    static MODE: std::sync::OnceLock<(Option<bool>, u32)> = std::sync::OnceLock::new();
    let (mode, min_cols) = *MODE.get_or_init(|| {
        let min = crate::knobs::number("GGVK_DEQUANT_F16_MIN_N").map_or(DEQUANT_MIN_COLS, |v| v.min(1 << 30) as u32);
        (crate::knobs::either("GGVK_DEQUANT_F16"), min)
    });
    if n <= MATVEC_MAX_COLS || n < min_cols || mode == Some(false) || dequant_shader(a.ty).is_none() {
        return None;
    }
    let bytes = (a.ne[0].max(0) as u64) * (a.ne[1].max(0) as u64) * 2;
    let fits = bytes > 0 && bytes <= DEQUANT_MAX_BYTES.min(device.caps().max_storage_buffer_range);
    let shape = a.ne[2] == 1 && a.ne[3] == 1 && a.ne[0] % 8 == 0 && a.nb[1] % 2 == 0;
    // Activations stay as the f16 kernel takes them: not rounded onto a CPU grid, not the 8-bit kernel's blocks.
    let int8 = coopmat::plan_on(device, a.ty, quantizes_activations(a), n).is_some_and(|(_, t)| t.b_q8);
    let grid = rounds_activations(a).is_none() && !int8;
    let device_ok = mode == Some(true) || coopmat::plan_on(device, GgmlType::F16, false, n).is_some();
    (fits && shape && grid && device_ok).then_some(bytes)
}

/// Bytes of f16 weight copies that prompt products keep between submissions ([`kept_f16`]): `GGVK_KEEP_F16_WEIGHTS`
/// (0: none), by default a quarter of a discrete GPU's device-local memory and none elsewhere (integrated and CPU
/// devices share the host's memory). Read once per process; a malformed value keeps none.
pub fn keep_f16_budget(device: &Device) -> u64 {
    static KNOB: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let knob = *KNOB.get_or_init(|| crate::knobs::size_opt("GGVK_KEEP_F16_WEIGHTS").unwrap_or(Some(0)));
    let caps = device.caps();
    knob.unwrap_or(if caps.device_type == ash::vk::PhysicalDeviceType::DISCRETE_GPU {
        caps.device_local_bytes() / 4
    } else {
        0
    })
}

/// Whether `bytes` more of device memory leave the application room: the driver's budget for device-local memory
/// keeps a sixteenth of it (at least 1 GiB) free, and a memory budget set for ggvk (`GGVK_MEMORY_BUDGET`) an eighth.
fn leaves_room(device: &Device, bytes: u64) -> bool {
    let (usage, budget) = device.memory_budget();
    let margin = (device.caps().device_local_bytes() / 16).max(1 << 30);
    let limit = device.memory_budget_limit();
    budget.saturating_sub(usage) >= bytes.saturating_add(margin)
        && (limit == 0 || device.allocated_bytes().saturating_add(bytes).saturating_add(limit / 8) <= limit)
}

/// The f16 copy of weights `a` that prompt products read instead of dequantizing them per submission: made once
/// into a buffer of its own and kept (`vk::kept`: dropped as soon as anything writes `a`'s buffer), within
/// [`keep_f16_budget`] and while device memory [`leaves_room`], from buffers no kernel writes and whose copies were
/// not dropped twice already. None: not kept (the caller dequantizes into scratch).
fn kept_f16(
    rec: &mut Recorder<'_>,
    a: &Tensor,
    a_bind: &Binding,
    p: &MatMulPush,
    bytes: u64,
) -> Result<Option<Tensor>> {
    let device = rec.device().clone();
    if !keeps(rec, a) {
        return Ok(None);
    }
    let budget = keep_f16_budget(&device);
    let shape = [a.ne[0], a.ne[1], 1, 1];
    let key = kept_key(a);
    if let Some(buffer) = rec.kept(&key) {
        return Tensor::contiguous(buffer, 0, GgmlType::F16, shape).map(Some);
    }
    if rec.kept_bytes().saturating_add(bytes) > budget || !leaves_room(&device, bytes) {
        return Ok(None);
    }
    let buffer = match Buffer::new(&device, bytes, "ggvk kept f16 weights") {
        Ok(b) => b,
        Err(Error::OutOfDeviceMemory(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let a16 = Tensor::contiguous(buffer.clone(), 0, GgmlType::F16, shape)?;
    dequant_into(rec, a, a_bind, p, &a16)?;
    rec.keep_after_submit(key, buffer);
    Ok(Some(a16))
}

/// The key of weights `a`'s kept f16 copy.
fn kept_key(a: &Tensor) -> KeptKey {
    KeptKey { kind: "f16_weights", source: a.buffer.id(), range: a.byte_range(), layout: (a.ty.raw(), a.ne, a.nb) }
}

/// Whether kept f16 copies serve weights `a` ([`kept_f16`] takes or makes one): a budget for them, and not from
/// buffers that kernels write (results, or weights copied in per batch) or whose copies keep being dropped
/// (weights rewritten by the host), which would allocate and decode a copy per batch.
fn keeps(rec: &Recorder<'_>, a: &Tensor) -> bool {
    keep_f16_budget(rec.device()) > 0 && !a.buffer.kernel_written() && rec.kept_drops(a.buffer.id()) < 2
}

/// Whether weights `a` have a kept f16 copy now (taken from it by [`f16_copy`] without scratch).
pub(super) fn has_kept_f16(rec: &mut Recorder<'_>, a: &Tensor) -> bool {
    keeps(rec, a) && rec.kept(&kept_key(a)).is_some()
}

/// The f16 copy of quantized weights `a` (`bytes` of it) for a prompt product: kept between prompts where
/// [`kept_f16`] keeps it, else decoded into this submission's scratch.
pub(super) fn f16_copy(
    rec: &mut Recorder<'_>,
    a: &Tensor,
    a_bind: &Binding,
    p: &MatMulPush,
    bytes: u64,
) -> Result<Tensor> {
    match kept_f16(rec, a, a_bind, p, bytes)? {
        Some(kept) => Ok(kept),
        None => dequant_f16(rec, a, a_bind, p, bytes),
    }
}

/// Dequantize `a` (bound as `a_bind`, addressed as in `p`) into `bytes` of this submission's scratch as packed f16
/// rows; returns the F16 tensor there.
fn dequant_f16(rec: &mut Recorder<'_>, a: &Tensor, a_bind: &Binding, p: &MatMulPush, bytes: u64) -> Result<Tensor> {
    let (scratch, offset) = rec.scratch(bytes)?;
    let a16 = Tensor::contiguous(scratch, offset, GgmlType::F16, [a.ne[0], a.ne[1], 1, 1])?;
    dequant_into(rec, a, a_bind, p, &a16)?;
    Ok(a16)
}

/// Dequantize `a` (bound as `a_bind`, addressed as in `p`) into `a16`, packed f16 rows of `a`'s shape.
fn dequant_into(rec: &mut Recorder<'_>, a: &Tensor, a_bind: &Binding, p: &MatMulPush, a16: &Tensor) -> Result<()> {
    let device = rec.device().clone();
    // Q4_K blocks read as 16-byte vectors where offset and rows allow.
    let shader = if a.ty == GgmlType::Q4_K && p.a_off % 8 == 0 && p.a_row % 8 == 0 {
        let push_size = std::mem::size_of::<DequantPush>() as u32;
        Shader { name: "dequant_f16_q4_k", spirv: spirv::DEQUANT_F16_Q4_K, bindings: 2, push_size }
    } else {
        dequant_shader(a.ty).ok_or_else(|| Error::Internal("no dequantizing kernel".into()))?
    };
    let (write, d_off) = bind(&device, a16, 16, true)?;
    let chunks = dim_u32("dequantized chunks", a.ne[0] / 8 * a.ne[1])?;
    let push = DequantPush { m: p.m, k: p.k, a_off: p.a_off, a_row: p.a_row, d_off, chunks, pad: [0; 2] };
    let pipeline = device.pipelines().get(&device, &shader, &[])?;
    let (gx, gy) = split_groups(u64::from(chunks.div_ceil(256)), device.caps().max_workgroup_count[0])?;
    rec.dispatch(shader.name, &pipeline, &[a_bind.clone(), write], bytemuck::bytes_of(&push), [gx, gy, 1])
}
