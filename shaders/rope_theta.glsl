// The rotation of one rope pair, shared by rope.comp and the mat-vec kernels' rope epilogue (matvec_rope.glsl), so
// both compute the same bits: cos and sin of theta = p * theta_scale^e (divided by the pair's frequency factor
// when there is one), with YaRN's interpolation/extrapolation mix over the correction dims (q the pair's index
// among the rotated channels), both scaled by the attention factor (and its YaRN correction); the sine also by
// sin_sign (-1 for ROPE_BACK).
vec2 rope_cos_sin(float p, float e, float q, bool has_ff, float ffq, float theta_scale, float freq_scale,
                  float ext_factor, float attn_factor, float corr0, float corr1, float sin_sign) {
    float theta_extrap = p * pow(theta_scale, e);
    if (has_ff) { theta_extrap /= ffq; }
    const float theta_interp = freq_scale * theta_extrap;
    float theta = theta_interp;
    float mscale = attn_factor;
    if (ext_factor != 0.0) {
        const float y = (q - corr0) / max(0.001, corr1 - corr0);
        const float ramp_mix = (1.0 - min(1.0, max(0.0, y))) * ext_factor;
        theta = theta_interp * (1.0 - ramp_mix) + theta_extrap * ramp_mix;
        mscale *= 1.0 + 0.1 * log(1.0 / freq_scale);
    }
    return vec2(cos(theta) * mscale, sin(theta) * mscale * sin_sign);
}

// The pair (x0, x1) rotated by the (cos, sin) of rope_cos_sin.
vec2 rope_rotate(float x0, float x1, vec2 cs) {
    return vec2(x0 * cs.x - x1 * cs.y, x0 * cs.y + x1 * cs.x);
}
