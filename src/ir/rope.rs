//! The parameters of ggml's rope ops (ggml_rope_ext, ggml_rope_multi and their backward forms).

/// ggml's GGML_ROPE_TYPE_NEOX bit.
pub const ROPE_MODE_NEOX: i32 = 2;
/// Normal (GPT-J style adjacent pairs) mode.
pub const ROPE_MODE_NORMAL: i32 = 0;
/// ggml's GGML_ROPE_TYPE_MROPE (multi-section, contiguous sections; NeoX pairs).
pub const ROPE_MODE_MROPE: i32 = 8;
/// ggml's GGML_ROPE_TYPE_VISION (multi-section, every channel rotated, sections counted independently).
pub const ROPE_MODE_VISION: i32 = 24;
/// ggml's GGML_ROPE_TYPE_IMROPE (multi-section, interleaved sections; NeoX pairs).
pub const ROPE_MODE_IMROPE: i32 = 40;

/// The parameters of ggml_rope_ext.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeParams {
    /// Number of leading dims of each row that are rotated (even, at most ne0).
    pub n_dims: i32,
    /// [`ROPE_MODE_NORMAL`], [`ROPE_MODE_NEOX`], [`ROPE_MODE_MROPE`], [`ROPE_MODE_VISION`] or
    /// [`ROPE_MODE_IMROPE`].
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
    /// Channels per position section (t, h, w, e) of the multi-section modes (ggml_rope_multi); unused otherwise.
    pub sections: [i32; 4],
    /// ROPE_BACK (ggml_rope_ext_back / ggml_rope_multi_back): rotate by -theta.
    pub back: bool,
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
            sections: [0; 4],
            back: false,
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
