//! ROPE (ggml_rope_ext) on F32: normal and NeoX modes, frequency base/scale, optional frequency factors,
//! and YaRN (extrapolation mix with correction dims, attention-factor scaling).

use bytemuck::{Pod, Zeroable};

use super::{bind, dim_u32, spirv, split_groups, stride_units};
use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::quant::GgmlType;
use crate::vk::Recorder;
use crate::vk::Shader;

/// ggml's GGML_ROPE_TYPE_NEOX bit.
pub const ROPE_MODE_NEOX: i32 = 2;
/// Normal (GPT-J style adjacent pairs) mode.
pub const ROPE_MODE_NORMAL: i32 = 0;

/// The parameters of ggml_rope_ext.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeParams {
    /// Number of leading dims of each row that are rotated (even, at most ne0).
    pub n_dims: i32,
    /// [`ROPE_MODE_NORMAL`] or [`ROPE_MODE_NEOX`].
    pub mode: i32,
    /// Training context length (YaRN correction dims).
    pub n_ctx_orig: i32,
    /// Base of the frequencies.
    pub freq_base: f32,
    /// Position interpolation factor.
    pub freq_scale: f32,
    /// YaRN extrapolation mix factor (0 disables YaRN).
    pub ext_factor: f32,
    /// Magnitude scale.
    pub attn_factor: f32,
    /// YaRN low correction dim parameter.
    pub beta_fast: f32,
    /// YaRN high correction dim parameter.
    pub beta_slow: f32,
    /// First rotated channel (ggml_rope_set_offset; even, `n_offs + n_dims <= ne0`).
    pub n_offs: i32,
}

impl Default for RopeParams {
    fn default() -> Self {
        RopeParams {
            n_dims: 0,
            mode: ROPE_MODE_NORMAL,
            n_ctx_orig: 0,
            freq_base: 10000.0,
            freq_scale: 1.0,
            ext_factor: 0.0,
            attn_factor: 1.0,
            beta_fast: 32.0,
            beta_slow: 1.0,
            n_offs: 0,
        }
    }
}

impl RopeParams {
    /// YaRN correction dims, as ggml_rope_yarn_corr_dims computes them.
    pub fn corr_dims(&self) -> [f32; 2] {
        let n_dims = self.n_dims as f32;
        let corr = |n_rot: f32| {
            n_dims * (self.n_ctx_orig as f32 / (n_rot * 2.0 * std::f32::consts::PI)).ln() / (2.0 * self.freq_base.ln())
        };
        let start = corr(self.beta_fast).floor();
        let end = corr(self.beta_slow).ceil();
        [start.max(0.0), end.min(n_dims - 1.0)]
    }

    /// `freq_base^(-2/n_dims)`.
    pub fn theta_scale(&self) -> f32 {
        self.freq_base.powf(-2.0 / self.n_dims as f32)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct RopePush {
    ne: [u32; 4],
    n_dims: u32,
    neox: u32,
    has_ff: u32,
    rows: u32,
    x_off: u32,
    x_s: [u32; 3],
    d_off: u32,
    d_s: [u32; 3],
    p_off: u32,
    f_off: u32,
    n_offs: u32,
    pad0: u32,
    theta_scale: f32,
    freq_scale: f32,
    ext_factor: f32,
    attn_factor: f32,
    corr: [f32; 2],
    pad1: [f32; 2],
}

const PUSH: u32 = std::mem::size_of::<RopePush>() as u32;
const _: () = assert!(PUSH == 112);

const SHADER: Shader = Shader { name: "rope_f32", spirv: spirv::ROPE_F32, bindings: 4, push_size: PUSH };

/// Whether ggvk supports this rope.
pub fn check(x: &Tensor, pos: &Tensor, ff: Option<&Tensor>, dst: &Tensor, p: &RopeParams) -> Result<()> {
    if x.ty != GgmlType::F32 || dst.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!("ROPE on {} -> {}", x.ty.name(), dst.ty.name())));
    }
    if !x.is_row_packed() || !dst.is_row_packed() {
        return Err(Error::unsupported("ROPE with non-contiguous rows (nb[0] != element size)"));
    }
    if p.mode != ROPE_MODE_NORMAL && p.mode != ROPE_MODE_NEOX {
        return Err(Error::unsupported(format!("ROPE mode {} (only normal 0 and neox 2)", p.mode)));
    }
    if !x.same_shape(dst) {
        return Err(Error::invalid(format!("ROPE: dst shape {:?} differs from src {:?}", dst.ne, x.ne)));
    }
    if x.ne[0] % 2 != 0 || p.n_dims <= 0 || p.n_dims % 2 != 0 || p.n_offs < 0 || p.n_offs % 2 != 0 {
        return Err(Error::invalid(format!("ROPE: n_dims = {} and n_offs = {} must be even", p.n_dims, p.n_offs)));
    }
    if i64::from(p.n_dims) + i64::from(p.n_offs) > x.ne[0] {
        return Err(Error::invalid(format!(
            "ROPE: n_offs + n_dims = {} exceeds ne0 = {}",
            p.n_offs + p.n_dims,
            x.ne[0]
        )));
    }
    if pos.ty != GgmlType::I32 || pos.ne != [x.ne[2], 1, 1, 1] {
        return Err(Error::invalid(format!(
            "ROPE: positions must be an I32 vector of ne[2] = {} entries, got {} {:?}",
            x.ne[2],
            pos.ty.name(),
            pos.ne
        )));
    }
    if let Some(f) = ff {
        if f.ty != GgmlType::F32 || f.ne[0] < i64::from(p.n_dims / 2) {
            return Err(Error::invalid(format!(
                "ROPE: frequency factors must be F32 with at least n_dims/2 = {} entries",
                p.n_dims / 2
            )));
        }
    }
    if p.freq_base.is_nan() || p.freq_base <= 0.0 || p.freq_scale.is_nan() || p.freq_scale <= 0.0 {
        return Err(Error::invalid("ROPE: freq_base and freq_scale must be > 0"));
    }
    Ok(())
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
    check(x, pos, ff, dst, p)?;
    let device = rec.device().clone();
    let (xb, x_off) = bind(&device, x, 4, false)?;
    let (pb, p_off) = bind(&device, pos, 4, false)?;
    let (fb, f_off) = bind(&device, ff.unwrap_or(x), 4, false)?;
    let (db, d_off) = bind(&device, dst, 4, true)?;
    let rows = x.nrows();
    let push = RopePush {
        ne: [dim_u32("ne0", x.ne[0])?, dim_u32("ne1", x.ne[1])?, dim_u32("ne2", x.ne[2])?, dim_u32("ne3", x.ne[3])?],
        n_dims: p.n_dims as u32,
        neox: u32::from(p.mode & ROPE_MODE_NEOX != 0),
        has_ff: u32::from(ff.is_some()),
        rows: dim_u32("rows", rows)?,
        x_off,
        x_s: [
            stride_units("src row", x.nb[1], 4)?,
            stride_units("src dim-2", x.nb[2], 4)?,
            stride_units("src dim-3", x.nb[3], 4)?,
        ],
        d_off,
        d_s: [
            stride_units("dst row", dst.nb[1], 4)?,
            stride_units("dst dim-2", dst.nb[2], 4)?,
            stride_units("dst dim-3", dst.nb[3], 4)?,
        ],
        p_off,
        f_off,
        n_offs: p.n_offs as u32,
        theta_scale: p.theta_scale(),
        freq_scale: p.freq_scale,
        ext_factor: p.ext_factor,
        attn_factor: p.attn_factor,
        corr: p.corr_dims(),
        ..Default::default()
    };
    let pipeline = device.pipelines().get(&device, &SHADER, &[])?;
    let pairs = (x.ne[0] as u32 / 2).div_ceil(64);
    let (gy, gz) = split_groups(rows as u64, device.caps().max_workgroup_count[1])?;
    rec.dispatch("rope", &pipeline, &[xb, pb, fb, db], bytemuck::bytes_of(&push), [pairs, gy, gz])
}
