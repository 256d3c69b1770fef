//! ROPE (ggml_rope_ext, ggml_rope_multi) and ROPE_BACK on F32 or F16 (src0 and dst of one type): normal and
//! NeoX modes, the multi-section modes (MROPE of qwen2-vl, interleaved IMROPE of qwen3-vl, VISION of their
//! encoders), frequency base/scale, optional frequency factors, YaRN (extrapolation mix with correction dims,
//! attention-factor scaling) and the offset window of ggml_rope_set_offset. ROPE_BACK rotates by -theta.
//! Theta is `pos * theta_scale^q` with `pow` (ggml's CPU backend multiplies a running theta: results differ by
//! rounding). One thread per pair of channels (`shaders/rope.comp`).

use bytemuck::{Pod, Zeroable};

use super::{bind, dim_u32, spirv, split_groups, stride_units};
use crate::error::{Error, Result};
use crate::ir::fused::{RopeScale, RopeSetRows};
use crate::ir::{Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Binding, Recorder, Shader};

pub use crate::ir::rope::{
    RopeParams, ROPE_MODE_IMROPE, ROPE_MODE_MROPE, ROPE_MODE_NEOX, ROPE_MODE_NORMAL, ROPE_MODE_VISION,
};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct RopePush {
    ne: [u32; 4],
    n_dims: u32,
    mode: u32,
    /// Bit 0: frequency factors given; bit 1 (the cache variants): I64 cache indices.
    has_ff: u32,
    rows: u32,
    x_off: u32,
    x_s: [u32; 3],
    d_off: u32,
    d_s: [u32; 3],
    p_off: u32,
    f_off: u32,
    n_offs: u32,
    sin_sign: f32,
    theta_scale: f32,
    freq_scale: f32,
    ext_factor: f32,
    attn_factor: f32,
    corr: [f32; 2],
    /// Sections 0 and 1 (low and high 16 bits), then 2 and 3.
    sect: [u32; 2],
}

const PUSH: u32 = std::mem::size_of::<RopePush>() as u32;
const _: () = assert!(PUSH == 112);

/// Push constants of the rope variants that also write a cache (`rope.comp` with CACHE).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct CachePush {
    rope: RopePush,
    c_off: u32,
    c_s1: u32,
    c_rows: u32,
    i_off: u32,
}

const CACHE_PUSH: u32 = std::mem::size_of::<CachePush>() as u32;
// Within the 128 bytes every Vulkan device offers.
const _: () = assert!(CACHE_PUSH == 128);

/// Push constants of the rope variant that also writes the scaled values of a SCALE (`rope.comp` with SCALED).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct ScalePush {
    rope: RopePush,
    s_mul: f32,
    s_bias: f32,
    e_off: u32,
    /// 1: dst keeps the unscaled values and e gets the scaled ones; 0: dst gets the scaled ones.
    e_apart: u32,
}

const _: () = assert!(std::mem::size_of::<ScalePush>() == 128);

const SHADER_F32_SCALED: Shader = Shader {
    name: "rope_f32_scaled",
    spirv: spirv::ROPE_F32_SCALED,
    bindings: 5,
    push_size: std::mem::size_of::<ScalePush>() as u32,
};

const fn cache_shader(name: &'static str, spirv: &'static [u8]) -> Shader {
    Shader { name, spirv, bindings: 6, push_size: CACHE_PUSH }
}

const SHADER_F32: Shader = Shader { name: "rope_f32", spirv: spirv::ROPE_F32, bindings: 4, push_size: PUSH };
const SHADER_F16: Shader = Shader { name: "rope_f16", spirv: spirv::ROPE_F16, bindings: 4, push_size: PUSH };
const SHADER_F32_CACHE_F16: Shader = cache_shader("rope_f32_cache_f16", spirv::ROPE_F32_CACHE_F16);
const SHADER_F32_CACHE_F32: Shader = cache_shader("rope_f32_cache_f32", spirv::ROPE_F32_CACHE_F32);
const SHADER_F16_CACHE_F16: Shader = cache_shader("rope_f16_cache_f16", spirv::ROPE_F16_CACHE_F16);

/// Whether `mode` is one of the multi-section modes.
fn multi(mode: i32) -> bool {
    matches!(mode, ROPE_MODE_MROPE | ROPE_MODE_VISION | ROPE_MODE_IMROPE)
}

/// Whether ggvk supports this rope.
pub fn check(x: &Tensor, pos: &Tensor, ff: Option<&Tensor>, dst: &Tensor, p: &RopeParams) -> Result<()> {
    let op = if p.back { "ROPE_BACK" } else { "ROPE" };
    if !matches!((x.ty, dst.ty), (GgmlType::F32, GgmlType::F32) | (GgmlType::F16, GgmlType::F16)) {
        return Err(Error::unsupported(format!("{op} on {} -> {}", x.ty.name(), dst.ty.name())));
    }
    if !x.is_row_packed() || !dst.is_row_packed() {
        return Err(Error::unsupported(format!("{op} with non-contiguous rows (nb[0] != element size)")));
    }
    if !matches!(p.mode, ROPE_MODE_NORMAL | ROPE_MODE_NEOX) && !multi(p.mode) {
        return Err(Error::unsupported(format!("{op} mode {} (0, 2, 8, 24 and 40 run)", p.mode)));
    }
    if !x.same_shape(dst) {
        return Err(Error::invalid(format!("{op}: dst shape {:?} differs from src {:?}", dst.ne, x.ne)));
    }
    if x.ne[0] % 2 != 0 || p.n_dims <= 0 || p.n_dims % 2 != 0 || p.n_offs < 0 || p.n_offs % 2 != 0 {
        return Err(Error::invalid(format!("{op}: n_dims = {} and n_offs = {} must be even", p.n_dims, p.n_offs)));
    }
    if p.mode == ROPE_MODE_VISION {
        if i64::from(p.n_dims) * 2 != x.ne[0] || p.n_offs != 0 {
            return Err(Error::invalid(format!(
                "{op}: vision mode needs n_dims = ne0/2 (n_dims {}, ne0 {}) and no offset",
                p.n_dims, x.ne[0]
            )));
        }
    } else if i64::from(p.n_dims) + i64::from(p.n_offs) > x.ne[0] {
        return Err(Error::invalid(format!(
            "{op}: n_offs + n_dims = {} exceeds ne0 = {}",
            p.n_offs + p.n_dims,
            x.ne[0]
        )));
    }
    let n_pos = if multi(p.mode) { x.ne[2] * 4 } else { x.ne[2] };
    if pos.ty != GgmlType::I32 || pos.ne != [n_pos, 1, 1, 1] {
        return Err(Error::invalid(format!(
            "{op}: positions must be an I32 vector of {n_pos} entries, got {} {:?}",
            pos.ty.name(),
            pos.ne
        )));
    }
    if multi(p.mode) {
        let s = p.sections;
        if s.iter().any(|&v| !(0..=0xFFFF).contains(&v)) || (s[0] <= 0 && s[1] <= 0 && s[2] <= 0) {
            return Err(Error::invalid(format!("{op}: sections {s:?} (each 0..65535, one of the first three > 0)")));
        }
    }
    if let Some(f) = ff {
        // A factor per rotated pair: n_dims/2 of them, n_dims in vision mode (every channel rotated).
        let need = if p.mode == ROPE_MODE_VISION { p.n_dims } else { p.n_dims / 2 };
        if f.ty != GgmlType::F32 || f.ne[0] < i64::from(need) {
            return Err(Error::invalid(format!(
                "{op}: frequency factors must be F32 with at least {need} entries (one per rotated pair)"
            )));
        }
    }
    if p.freq_base.is_nan() || p.freq_base <= 0.0 || p.freq_scale.is_nan() || p.freq_scale <= 0.0 {
        return Err(Error::invalid(format!("{op}: freq_base and freq_scale must be > 0")));
    }
    Ok(())
}

/// The push constants and bindings of the rope of `x` into `dst` (checked).
fn prepare(
    device: &crate::vk::Device,
    x: &Tensor,
    pos: &Tensor,
    ff: Option<&Tensor>,
    dst: &Tensor,
    p: &RopeParams,
) -> Result<(RopePush, [Binding; 4])> {
    check(x, pos, ff, dst, p)?;
    let unit = if x.ty == GgmlType::F16 { 2 } else { 4 };
    let (xb, x_off) = bind(device, x, unit, false)?;
    let (pb, p_off) = bind(device, pos, 4, false)?;
    let (fb, f_off) = bind(device, ff.unwrap_or(x), 4, false)?;
    let (db, d_off) = bind(device, dst, unit, true)?;
    let rows = x.nrows();
    let push = RopePush {
        ne: [dim_u32("ne0", x.ne[0])?, dim_u32("ne1", x.ne[1])?, dim_u32("ne2", x.ne[2])?, dim_u32("ne3", x.ne[3])?],
        n_dims: p.n_dims as u32,
        mode: p.mode as u32,
        has_ff: u32::from(ff.is_some()),
        rows: dim_u32("rows", rows)?,
        x_off,
        x_s: [
            stride_units("src row", x.nb[1], unit)?,
            stride_units("src dim-2", x.nb[2], unit)?,
            stride_units("src dim-3", x.nb[3], unit)?,
        ],
        d_off,
        d_s: [
            stride_units("dst row", dst.nb[1], unit)?,
            stride_units("dst dim-2", dst.nb[2], unit)?,
            stride_units("dst dim-3", dst.nb[3], unit)?,
        ],
        p_off,
        f_off,
        n_offs: p.n_offs as u32,
        sin_sign: if p.back { -1.0 } else { 1.0 },
        theta_scale: p.theta_scale(),
        freq_scale: p.freq_scale,
        ext_factor: p.ext_factor,
        attn_factor: p.attn_factor,
        corr: p.corr_dims(),
        sect: [
            (p.sections[0] as u32 & 0xFFFF) | ((p.sections[1] as u32 & 0xFFFF) << 16),
            (p.sections[2] as u32 & 0xFFFF) | ((p.sections[3] as u32 & 0xFFFF) << 16),
        ],
    };
    Ok((push, [xb, pb, fb, db]))
}

/// Workgroups over (row, pair) of `x`, 256 invocations each: a workgroup per 64-pair row took 84 us on a
/// 2048-token prompt's rope on the H200, ggml-vulkan 53 (NOTES.md). None when there is nothing to rotate.
fn groups(device: &crate::vk::Device, x: &Tensor) -> Result<Option<[u32; 3]>> {
    let pairs = dim_u32("rope pairs", (x.ne[0] / 2).saturating_mul(x.nrows()))?;
    if pairs == 0 {
        return Ok(None);
    }
    let (gx, gy) = split_groups(u64::from(pairs.div_ceil(256)), device.caps().max_workgroup_count[0])?;
    Ok(Some([gx, gy, 1]))
}

/// Record the rope.
pub fn record(
    rec: &mut Recorder<'_>,
    x: &Tensor,
    pos: &Tensor,
    ff: Option<&Tensor>,
    dst: &Tensor,
    p: &RopeParams,
) -> Result<()> {
    let device = rec.device().clone();
    let (push, bindings) = prepare(&device, x, pos, ff, dst, p)?;
    let Some(groups) = groups(&device, x)? else { return Ok(()) };
    let shader = if x.ty == GgmlType::F16 { &SHADER_F16 } else { &SHADER_F32 };
    let pipeline = device.pipelines().get(&device, shader, &[])?;
    rec.dispatch("rope", &pipeline, &bindings, bytemuck::bytes_of(&push), groups)
}

/// Record a rope that also writes its output into the cache rows of the SET_ROWS that follows it
/// (the engine's `graph::fusion::rope_set_rows`).
pub fn record_with_cache(rec: &mut Recorder<'_>, f: &RopeSetRows<'_>) -> Result<()> {
    let node = f.rope;
    let Op::Rope(p) = &node.op else {
        return Err(Error::Internal("rope_set_rows without a ROPE".into()));
    };
    let (x, pos, ff, dst) = (node.src(0)?, node.src(1)?, super::opt_src(node, 2), &node.dst);
    let device = rec.device().clone();
    let (mut rope, [xb, pb, fb, db]) = prepare(&device, x, pos, ff, dst, p)?;
    if f.index.ty == GgmlType::I64 {
        rope.has_ff |= 2;
    }
    let shader = match (x.ty, f.cache.ty) {
        (GgmlType::F32, GgmlType::F16) => &SHADER_F32_CACHE_F16,
        (GgmlType::F32, GgmlType::F32) => &SHADER_F32_CACHE_F32,
        (GgmlType::F16, GgmlType::F16) => &SHADER_F16_CACHE_F16,
        (a, c) => return Err(Error::Internal(format!("rope_set_rows from {} into {}", a.name(), c.name()))),
    };
    let c_unit = if f.cache.ty == GgmlType::F16 { 2 } else { 4 };
    let (ib, i_off) = bind(&device, f.index, 4, false)?;
    let (cb, c_off) = bind(&device, f.cache, c_unit, true)?;
    let push = CachePush {
        rope,
        c_off,
        c_s1: stride_units("cache row", f.cache.nb[1], c_unit)?,
        c_rows: dim_u32("cache rows", f.cache.ne[1])?,
        i_off,
    };
    let Some(groups) = groups(&device, x)? else { return Ok(()) };
    let pipeline = device.pipelines().get(&device, shader, &[])?;
    rec.dispatch("rope_set_rows", &pipeline, &[xb, pb, fb, db, ib, cb], bytemuck::bytes_of(&push), groups)
}

/// Record a rope that also writes the scaled values of the SCALE that follows it (the engine's
/// `graph::fusion::rope_scale`).
pub fn record_with_scale(rec: &mut Recorder<'_>, f: &RopeScale<'_>) -> Result<()> {
    let node = f.rope;
    let Op::Rope(p) = &node.op else {
        return Err(Error::Internal("rope_scale without a ROPE".into()));
    };
    let (x, pos, ff, dst) = (node.src(0)?, node.src(1)?, super::opt_src(node, 2), &node.dst);
    if x.ty != GgmlType::F32 || f.out.ty != GgmlType::F32 || f.out.ne != dst.ne || f.out.nb != dst.nb {
        return Err(Error::Internal("rope_scale needs F32 and the scaled output laid out as the rope's".into()));
    }
    let device = rec.device().clone();
    let (rope, [xb, pb, fb, db]) = prepare(&device, x, pos, ff, dst, p)?;
    // The SCALE over the rope's own output: the rope writes the scaled values there (e bound but not written).
    let apart = f.out.buffer.id() != dst.buffer.id() || f.out.offset != dst.offset;
    let (eb, e_off) = if apart { bind(&device, f.out, 4, true)? } else { (db.clone(), rope.d_off) };
    let push = ScalePush { rope, s_mul: f.s, s_bias: f.b, e_off, e_apart: u32::from(apart) };
    let Some(groups) = groups(&device, x)? else { return Ok(()) };
    let pipeline = device.pipelines().get(&device, &SHADER_F32_SCALED, &[])?;
    rec.dispatch("rope_scale", &pipeline, &[xb, pb, fb, db, eb], bytemuck::bytes_of(&push), groups)
}
