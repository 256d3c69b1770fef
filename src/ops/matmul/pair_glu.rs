//! A prompt's gate and up products and the GLU that follows them ([`PairGlu`]) as one dispatch on the kernel their
//! F16 products take (`mul_mat_cm16.comp` or `mul_mat_cm2.comp`, FUSE_GLU; [`coopmat::glu_plan`]): both weights
//! multiplied by each tile of the activations' f16 copy, both
//! products stored as the separate kernels store them, then `act(gate) * up` in f32 (the GLU's output) and as the
//! packed f16 copy the down product reads, registered as that copy ([`NARROW_F16_KIND`]) so the down product
//! makes none.
//!
//! Quantized weights take their f16 copies first (kept between prompts or decoded into scratch), as a separate
//! product does; where anything the kernel needs is missing (another device, unaligned views, a split product)
//! nothing is recorded here and the executor records the three nodes apart.

use super::operands::NARROW_F16_KIND;
use super::weights_f16::{f16_copy, has_kept_f16};
use super::{check, dequant_first_bytes, narrow_b, narrowed_column_bytes, operands_of, split_plan};
use crate::error::Result;
use crate::ir::fused::PairGlu;
use crate::ir::{GluOp, Tensor};
use crate::ops::coopmat::{self, GluKernel, PairGluPush};
use crate::ops::{bind, dim_u32};
use crate::quant::GgmlType;
use crate::vk::{Binding, Derived, Device, Recorder};

/// Whether gate and up products with weights like `a` over activations `b`, and their GLU `op`, take the fused
/// kernel on `device` where their views allow it (the device, the kernel's tile, the weights' type or f16 copy,
/// `GGVK_CM2_GLU`).
pub fn takes_pair_glu(device: &Device, op: GluOp, a: &Tensor, b: &Tensor) -> bool {
    pair_glu_kernel(device, op, a, b).is_some()
}

/// Whether the fused kernel takes GLU `op` (`GGVK_CM2_GLU`: 0 none, 1 SWIGLU, the default and the one checked on a
/// GPU so far, 2 every GLU the engine's fusion pass matches).
pub fn pair_glu_kind(op: GluOp) -> bool {
    static MODE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let mode = *MODE.get_or_init(|| crate::knobs::number("GGVK_CM2_GLU").unwrap_or(1));
    mode >= 2 || (mode == 1 && op == GluOp::SwiGlu)
}

/// The fused kernel where [`takes_pair_glu`] holds.
fn pair_glu_kernel(device: &Device, op: GluOp, a: &Tensor, b: &Tensor) -> Option<GluKernel> {
    let n = u32::try_from(b.ne[1]).unwrap_or(u32::MAX);
    let fits = pair_glu_kind(op)
        && (a.ty == GgmlType::F16 || dequant_first_bytes(device, a, n).is_some())
        && b.ty == GgmlType::F32
        && a.ne[0] % 8 == 0
        && a.ne[1] % 8 == 0;
    coopmat::glu_plan(device, n).filter(|_| fits)
}

/// Record `f` as one kernel where it applies; returns whether it did. If not, nothing was recorded, or (a driver
/// that cannot build the kernel, views `mul_mat_cm16.comp` cannot read in 16-byte chunks) only the weights' and
/// activations' f16 copies, which the separate products make anyway.
pub fn record_pair_glu(rec: &mut Recorder<'_>, f: &PairGlu<'_>) -> Result<bool> {
    let device = rec.device().clone();
    let (ga, b, ua) = (f.gate.src(0)?, f.gate.src(1)?, f.up.src(0)?);
    let (gd, ud) = (&f.gate.dst, &f.up.dst);
    check(ga, b, gd)?;
    check(ua, b, ud)?;
    let n = dim_u32("N", b.ne[1])?;
    let k = ga.ne[0];
    let dequant = dequant_first_bytes(&device, ga, n);
    // F16 weights or weights decoded to f16 first; f32 activations; rows of m and k values on 16-byte boundaries.
    let Some(kernel) = pair_glu_kernel(&device, f.op, ga, b) else { return Ok(false) };
    if [(ga, b, gd), (ua, b, ud)].into_iter().any(|(a, b, d)| !matches!(split_plan(&device, a, b, d), Ok(None))) {
        return Ok(false);
    }
    let (binds, p) = operands_of(&device, ga, b, gd)?;
    let (up_binds, up_p) = operands_of(&device, ua, b, ud)?;
    let (out_bind, g_off) = bind(&device, f.out, 4, true)?;
    // dst views (floats) on 16-byte boundaries, with one column stride; F16 weights likewise (halves).
    let floats = [p.d_off, up_p.d_off, g_off, p.d_col].iter().all(|v| v % 4 == 0) && up_p.d_col == p.d_col;
    let halves = ga.ty != GgmlType::F16 || [p.a_off, up_p.a_off, p.a_row].iter().all(|v| v % 8 == 0);
    let f16_col = f.out.ne[0] as u64 * 2;
    let copy_bytes = f16_col * u64::from(n);
    // Scratch for the weights' f16 copies not kept, the activations' copy and the GLU's copy, in one
    // reservation so that none of them wraps onto another.
    let align = device.caps().min_storage_offset_alignment.max(256);
    let narrow_bytes = narrowed_column_bytes(k) * u64::from(n);
    let decoded = match dequant {
        Some(bytes) => [ga, ua].into_iter().filter(|a| !has_kept_f16(rec, a)).count() as u64 * bytes,
        None => 0,
    };
    let total = decoded + narrow_bytes + copy_bytes + 4 * align;
    if !floats || !halves || up_p.a_row != p.a_row || total > rec.scratch_limit() {
        return Ok(false);
    }
    rec.reserve_scratch(total)?;
    // Copies of quantized weights start on scratch's or a kept buffer's alignment, rows of k halves.
    let (a16, a16_up) = match dequant {
        Some(bytes) => (f16_copy(rec, ga, &binds[0], &p, bytes)?, f16_copy(rec, ua, &up_binds[0], &up_p, bytes)?),
        None => (ga.clone(), ua.clone()),
    };
    let ([a_bind, b_bind, d_bind], p) = operands_of(&device, &a16, b, gd)?;
    let (a2_bind, a2_off) = bind(&device, &a16_up, 2, false)?;
    let (b_read, p) = narrow_b(rec, b, &b_bind, p, None)?;
    // The GLU's f16 copy, laid out as the down product's copy of its activations: columns of m halves.
    let (scratch, offset) = rec.scratch(copy_bytes)?;
    let region = Tensor::contiguous(scratch, offset, GgmlType::I32, [(copy_bytes / 4) as i64, 1, 1, 1])?;
    let (copy_bind, copy_word) = bind(&device, &region, 4, true)?;
    let push = PairGluPush { mm: p, a2_off, d2_off: up_p.d_off, g_off, g16_off: copy_word * 2 };
    let bindings = [a_bind, b_read, d_bind, a2_bind, up_binds[2].clone(), out_bind, copy_bind.clone()];
    if !coopmat::record_pair_glu(rec, (kernel, crate::ops::glu::op_code(f.op).0), &bindings, &push)? {
        return Ok(false);
    }
    let (start, end) = f.out.byte_range();
    rec.add_derived(Derived {
        kind: NARROW_F16_KIND,
        source: (f.out.buffer.id(), start, end),
        layout: (f.out.ty.raw(), f.out.ne, f.out.nb),
        result: (Binding { write: false, ..copy_bind }, copy_word),
    });
    Ok(true)
}
