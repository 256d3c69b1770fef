//! SOFT_MAX (ggml_soft_max_ext, with ggml_soft_max_add_sinks) on F32:
//! `dst = softmax(x * scale + slope * mask)` per row, as ggml's CPU backend computes it.
//!
//! - src0 x and dst: F32, same shape, rows packed (`nb[0]` = 4), any row strides (in-place works).
//! - src1 mask (optional): F32 or F16, `[ne0, >= ne1, ne2 / k2, ne3 / k3]`, rows packed, any strides. Row `i1`
//!   of x uses mask row `i1`; x batch `(i2, i3)` uses mask batch `(i2 % mask.ne2, i3 % mask.ne3)`.
//! - ALiBi (`max_bias > 0`, needs the mask): head `h = i2` of `n_head = ne2` gets slope `m0^(h+1)` for
//!   `h < n_head_log2` (the largest power of two <= n_head), else `m1^(2(h - n_head_log2) + 1)`, with
//!   `m0 = 2^(-max_bias / n_head_log2)`, `m1 = 2^(-max_bias / 2 / n_head_log2)`.
//! - src2 sinks (optional): F32 `[ne2]`; head `i2`'s sink logit joins the max and the normalising sum but has no
//!   output of its own.
//!
//! A logit of -inf gives a probability of exactly 0. One workgroup per row; reductions as in RMS_NORM.

use bytemuck::{Pod, Zeroable};

use super::norm::{elem_stride, row_dims, row_strides, use_subgroups};
use super::q8_emit::{self, Planned, Q8Layout};
use super::{bind, dim_u32, opt_src, spirv, split_groups};
use crate::error::{Error, Result};
use crate::ir::{Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `soft_max.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct SoftMaxPush {
    /// ne0, ne1, ne2 of src0 (= dst).
    ne: [u32; 3],
    /// Rows (ne1 * ne2 * ne3).
    rows: u32,
    /// src0 first element and strides of dims 1..3 (floats).
    x_off: u32,
    x_s: [u32; 3],
    /// dst first element and strides (floats).
    d_off: u32,
    d_s: [u32; 3],
    /// mask first element and strides (mask elements).
    m_off: u32,
    m_s: [u32; 3],
    /// mask ne2 and ne3 (the batch broadcast moduli).
    m_ne2: u32,
    m_ne3: u32,
    has_mask: u32,
    has_sinks: u32,
    /// sinks first element and element stride (floats).
    s_off: u32,
    s_s0: u32,
    /// Largest power of two <= ne2.
    n_head_log2: u32,
    /// ALiBi on (max_bias > 0).
    alibi: u32,
    scale: f32,
    /// log2(m0), log2(m1): the shader's slope is 2^(e0 (h + 1)) or 2^(e1 (2 (h - n_head_log2) + 1)).
    e0: f32,
    e1: f32,
    /// First word of the f16 copy in binding 4 (`EMIT`).
    h_word: u32,
}

const PUSH: u32 = std::mem::size_of::<SoftMaxPush>() as u32;
const _: () = assert!(PUSH == 112);

const fn shader(name: &'static str, spirv: &'static [u8]) -> Shader {
    Shader { name, spirv, bindings: 5, push_size: PUSH }
}

const SHADER_F32: Shader = shader("soft_max_f32", spirv::SOFT_MAX_F32);
const SHADER_F32_SHMEM: Shader = shader("soft_max_f32_shmem", spirv::SOFT_MAX_F32_SHMEM);
const SHADER_F16: Shader = shader("soft_max_f32_mask_f16", spirv::SOFT_MAX_F32_MASK_F16);
const SHADER_F16_SHMEM: Shader = shader("soft_max_f32_mask_f16_shmem", spirv::SOFT_MAX_F32_MASK_F16_SHMEM);

/// Whether ggvk supports this SOFT_MAX node.
pub fn check(node: &Node) -> Result<()> {
    let Op::SoftMax { max_bias, .. } = node.op else {
        return Err(Error::Internal(format!("softmax::check called for {}", node.op.name())));
    };
    let x = node.src(0)?;
    let d = &node.dst;
    if x.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!("SOFT_MAX on {} -> {} (only f32 -> f32)", x.ty.name(), d.ty.name())));
    }
    if !x.same_shape(d) {
        return Err(Error::invalid(format!("SOFT_MAX: dst shape {:?} differs from src {:?}", d.ne, x.ne)));
    }
    if node.src.len() > 3 {
        return Err(Error::invalid("SOFT_MAX takes at most three sources (x, mask, sinks)"));
    }
    if !x.is_row_packed() || !d.is_row_packed() {
        return Err(Error::unsupported("SOFT_MAX with non-contiguous rows (nb[0] != 4)"));
    }
    row_dims("SOFT_MAX", x)?;
    row_strides("SOFT_MAX src0", x, 4)?;
    row_strides("SOFT_MAX dst", d, 4)?;
    if let Some(m) = opt_src(node, 1) {
        if m.ty != GgmlType::F32 && m.ty != GgmlType::F16 {
            return Err(Error::invalid(format!("SOFT_MAX: the mask must be f32 or f16, got {}", m.ty.name())));
        }
        let ok = m.ne[0] == x.ne[0]
            && m.ne[1] >= x.ne[1]
            && m.ne[2] > 0
            && m.ne[3] > 0
            && x.ne[2] % m.ne[2] == 0
            && x.ne[3] % m.ne[3] == 0;
        if !ok {
            return Err(Error::invalid(format!(
                "SOFT_MAX: mask shape {:?} does not fit src {:?} (need ne0 equal, ne1 >= and ne2, ne3 dividing)",
                m.ne, x.ne
            )));
        }
        if !m.is_row_packed() {
            return Err(Error::unsupported("SOFT_MAX with a mask whose rows are not contiguous"));
        }
        dim_u32("SOFT_MAX mask ne2", m.ne[2])?;
        dim_u32("SOFT_MAX mask ne3", m.ne[3])?;
        row_strides("SOFT_MAX mask", m, m.ty.type_size() as u64)?;
    } else if max_bias > 0.0 {
        return Err(Error::invalid("SOFT_MAX: max_bias > 0 (ALiBi) needs a mask"));
    }
    if let Some(s) = opt_src(node, 2) {
        if s.ty != GgmlType::F32 || s.ne != [x.ne[2], 1, 1, 1] {
            return Err(Error::invalid(format!(
                "SOFT_MAX: sinks must be an f32 vector of ne2 = {} entries, got {} {:?}",
                x.ne[2],
                s.ty.name(),
                s.ne
            )));
        }
        elem_stride("SOFT_MAX sinks", s, 4)?;
    }
    Ok(())
}

/// Record the SOFT_MAX node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    record_emitting(rec, node, None)
}

/// Whether SOFT_MAX `node` can also write the packed f16 copy of its output that a product on cooperative matrices
/// reads (`Q8Layout::F16`, registered for it): a contiguous output.
pub fn can_emit_f16(node: &Node) -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on = *ON.get_or_init(|| crate::knobs::switch("GGVK_SOFTMAX_EMIT", true));
    on && matches!(node.op, Op::SoftMax { .. }) && node.dst.is_contiguous() && Q8Layout::F16.fits(&node.dst)
}

/// The kernel's shape for rows of `ne0` values: (workgroup, four values a load (`VEC4`), values or groups of four
/// each invocation keeps in registers (`CACHE`)). `aligned`: rows and offsets allow 16-byte loads; `max_wg`: the
/// device's largest power-of-two workgroup; `forced`: `GGVK_SOFTMAX_WG`. A row's values are spread so that each
/// invocation holds about 16 (four groups of four) or 8 (one at a time), in workgroups of 64 to 512 invocations
/// (H100, 2,048-value rows with the f16 copy: 627 us a call with 128 invocations and groups of four, 696 with 256
/// and one value at a time, 782 with 512; 1,165 with 64 and rows past the registers). Rows longer than 16 values
/// or groups per invocation take the kernel's loop through memory.
fn shape(ne0: u32, aligned: bool, max_wg: u32, forced: Option<u32>) -> (u32, bool, u32) {
    let per = if aligned { 16 } else { 8 };
    let wg = forced.unwrap_or_else(|| ne0.div_ceil(per).next_power_of_two().clamp(64, 512)).min(max_wg).max(1);
    let vec4 = aligned && u64::from(ne0) <= u64::from(wg) * 16 * 4;
    let units = if vec4 { ne0.div_ceil(4) } else { ne0 };
    (wg, vec4, units.div_ceil(wg).next_power_of_two().clamp(1, 16))
}

/// [`shape`] for the push constants `p` on `device`: 16-byte loads where `GGVK_SOFTMAX_VEC4` (default on) allows and
/// rows have a multiple of 4 values, x and d offsets and strides multiples of 4 floats, the f16 copy (if any) on an
/// 8-byte boundary.
fn kernel_shape(device: &crate::vk::Device, p: &SoftMaxPush) -> (u32, bool, u32) {
    static KNOBS: std::sync::OnceLock<(bool, Option<u64>)> = std::sync::OnceLock::new();
    let (vec4, forced) = *KNOBS
        .get_or_init(|| (crate::knobs::switch("GGVK_SOFTMAX_VEC4", true), crate::knobs::number("GGVK_SOFTMAX_WG")));
    let by4 = |v: u32| v % 4 == 0;
    let aligned =
        vec4 && by4(p.ne[0]) && [p.x_off, p.d_off].into_iter().chain(p.x_s).chain(p.d_s).all(by4) && p.h_word % 2 == 0;
    let max = device.caps().max_workgroup_invocations.clamp(1, 1024);
    shape(p.ne[0], aligned, 1u32 << (31 - max.leading_zeros()), forced.map(|v| v as u32))
}

/// Record the SOFT_MAX node, writing the f16 copy of its output `emit` plans too where [`q8_emit::f16_in_order`]
/// allows (the copy then registered for the product that reads it).
pub fn record_emitting(rec: &mut Recorder<'_>, node: &Node, emit: Option<&Planned>) -> Result<()> {
    check(node)?;
    let Op::SoftMax { scale, max_bias } = node.op else { unreachable!("checked") };
    let x = node.src(0)?;
    let d = &node.dst;
    let mask = opt_src(node, 1);
    let sinks = opt_src(node, 2);
    let (ne, rows) = row_dims("SOFT_MAX", x)?;
    if rows == 0 || ne[0] == 0 {
        return Ok(());
    }
    let device = rec.device().clone();
    let (xb, x_off) = bind(&device, x, 4, false)?;
    let (db, d_off) = bind(&device, d, 4, true)?;
    // Absent optional inputs bind src0 in their place (never read).
    let m_unit = mask.map_or(4, |m| m.ty.type_size() as u64);
    let (mb, m_off) = bind(&device, mask.unwrap_or(x), m_unit, false)?;
    let (sb, s_off) = bind(&device, sinks.unwrap_or(x), 4, false)?;

    let (n_head_log2, e0, e1) = alibi_exponents(ne[2], max_bias);
    let alibi = max_bias > 0.0;
    let push = SoftMaxPush {
        ne,
        rows,
        x_off,
        x_s: row_strides("SOFT_MAX src0", x, 4)?,
        d_off,
        d_s: row_strides("SOFT_MAX dst", d, 4)?,
        m_off,
        m_s: match mask {
            Some(m) => row_strides("SOFT_MAX mask", m, m_unit)?,
            None => [0; 3],
        },
        m_ne2: mask.map_or(Ok(1), |m| dim_u32("SOFT_MAX mask ne2", m.ne[2]))?,
        m_ne3: mask.map_or(Ok(1), |m| dim_u32("SOFT_MAX mask ne3", m.ne[3]))?,
        has_mask: u32::from(mask.is_some()),
        has_sinks: u32::from(sinks.is_some()),
        s_off,
        s_s0: match sinks {
            Some(s) => elem_stride("SOFT_MAX sinks", s, 4)?,
            None => 0,
        },
        n_head_log2,
        alibi: u32::from(alibi),
        scale,
        e0,
        e1,
        h_word: 0,
    };
    let f16_mask = mask.is_some_and(|m| m.ty == GgmlType::F16);
    let shader = match (f16_mask, use_subgroups(&device)) {
        (false, true) => &SHADER_F32,
        (false, false) => &SHADER_F32_SHMEM,
        (true, true) => &SHADER_F16,
        (true, false) => &SHADER_F16_SHMEM,
    };
    let emit = match emit.filter(|e| can_emit_f16(node) && q8_emit::f16_in_order(d, e)) {
        Some(e) => Some((e, q8_emit::reserve(rec, &e.view, Q8Layout::F16)?)),
        None => None,
    };
    let push = SoftMaxPush { h_word: emit.as_ref().map_or(0, |(_, w)| w.word), ..push };
    let (wg, vec4, cache) = kernel_shape(&device, &push);
    let specs = [wg, u32::from(emit.is_some()), cache, u32::from(vec4)];
    let pipeline = device.pipelines().get(&device, shader, &specs)?;
    let (gx, gy) = split_groups(u64::from(rows), device.caps().max_workgroup_count[0])?;
    // Without the copy, binding 4 is never written: the output stands in.
    let copy = emit.as_ref().map_or_else(|| db.clone(), |(_, w)| w.write.clone());
    rec.dispatch("soft_max", &pipeline, &[xb, mb, sb, db, copy], bytemuck::bytes_of(&push), [gx, gy, 1])?;
    if let Some((planned, w)) = emit {
        q8_emit::publish(rec, &planned.view, w);
    }
    Ok(())
}

/// ggml's ALiBi constants for `n_head` heads, in f32 as its CPU code computes them: (n_head_log2, log2(m0),
/// log2(m1)); the exponents are 0 without ALiBi (`max_bias <= 0`). SOFT_MAX and FLASH_ATTN_EXT share them.
pub(crate) fn alibi_exponents(n_head: u32, max_bias: f32) -> (u32, f32, f32) {
    let n_head_log2 = if n_head == 0 { 0 } else { 1u32 << (31 - n_head.leading_zeros()) };
    if max_bias > 0.0 {
        let m0 = 2f32.powf(-max_bias / n_head_log2 as f32);
        let m1 = 2f32.powf(-(max_bias / 2.0) / n_head_log2 as f32);
        (n_head_log2, f64::from(m0).log2() as f32, f64::from(m1).log2() as f32)
    } else {
        (n_head_log2, 0.0, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::shape;

    #[test]
    fn rows_spread_over_registers_as_measured() {
        // A 2,048-key prompt's rows: 128 invocations, four groups of four each; unaligned: 256, eight values.
        assert_eq!(shape(2048, true, 1024, None), (128, true, 4));
        assert_eq!(shape(2048, false, 1024, None), (256, false, 8));
        // Short rows keep 64 invocations; long ones 512, then the loop through memory past 16 per invocation.
        assert_eq!(shape(16, true, 1024, None), (64, true, 1));
        assert_eq!(shape(32768, true, 1024, None), (512, true, 16));
        assert_eq!(shape(32772, true, 1024, None), (512, false, 16));
        assert_eq!(shape(200_000, false, 1024, None), (512, false, 16));
        // The device's limit and the knob.
        assert_eq!(shape(2048, true, 32, None), (32, true, 16));
        assert_eq!(shape(2048, true, 1024, Some(64)), (64, true, 8));
        assert_eq!(shape(2048, false, 1024, Some(64)), (64, false, 16));
    }
}
