#version 450
// ggml_rope_ext for f32: rotate pairs of each row by theta = pos * theta_scale^(i0/2) (optionally divided by a
// frequency factor), with YaRN interpolation/extrapolation mixing; dims past n_dims are copied.
// Normal mode rotates (x[i0], x[i0+1]); NeoX mode rotates (x[i0/2], x[i0/2 + n_dims/2]).
// One thread per pair; x = pair, y (+ z overflow) = row (i1 + ne1 * (i2 + ne2 * i3)).
#include "common.glsl"

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer P { int pos[]; };
layout(binding = 2) readonly buffer F { float ff[]; };
layout(binding = 3) writeonly buffer D { float d[]; };

layout(push_constant) uniform Push {
    uint ne0; uint ne1; uint ne2; uint ne3;
    uint n_dims; uint neox; uint has_ff; uint rows;
    uint x_off; uint x_s1; uint x_s2; uint x_s3;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    uint p_off; uint f_off; uint n_offs; uint pad1;
    float theta_scale; float freq_scale; float ext_factor; float attn_factor;
    float corr0; float corr1; float pad2; float pad3;
} pc;

void main() {
    const uint p = gl_GlobalInvocationID.x;
    const uint row = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    if (2 * p >= pc.ne0 || row >= pc.rows) { return; }
    const uint i1 = row % pc.ne1;
    const uint i2 = (row / pc.ne1) % pc.ne2;
    const uint i3 = row / (pc.ne1 * pc.ne2);
    const uint xb = pc.x_off + i1 * pc.x_s1 + i2 * pc.x_s2 + i3 * pc.x_s3;
    const uint db = pc.d_off + i1 * pc.d_s1 + i2 * pc.d_s2 + i3 * pc.d_s3;
    const uint i0 = 2 * p;
    // Channels [n_offs, n_offs + n_dims) are rotated (ggml_rope_set_offset); the rest are copied.
    if (i0 < pc.n_offs || i0 >= pc.n_offs + pc.n_dims) {
        const float v0 = x[xb + i0];
        const float v1 = x[xb + i0 + 1];
        d[db + i0] = v0;
        d[db + i0 + 1] = v1;
        return;
    }
    const uint q = p - pc.n_offs / 2;  // pair index within the rotated channels
    float theta_extrap = float(pos[pc.p_off + i2]) * pow(pc.theta_scale, float(q));
    if (pc.has_ff != 0) { theta_extrap /= ff[pc.f_off + q]; }
    const float theta_interp = pc.freq_scale * theta_extrap;
    float theta = theta_interp;
    float mscale = pc.attn_factor;
    if (pc.ext_factor != 0.0) {
        const float y = (float(q) - pc.corr0) / max(0.001, pc.corr1 - pc.corr0);
        const float ramp_mix = (1.0 - min(1.0, max(0.0, y))) * pc.ext_factor;
        theta = theta_interp * (1.0 - ramp_mix) + theta_extrap * ramp_mix;
        mscale *= 1.0 + 0.1 * log(1.0 / pc.freq_scale);
    }
    const float c = cos(theta) * mscale;
    const float s = sin(theta) * mscale;
    const uint ia = pc.neox != 0 ? pc.n_offs + q : i0;
    const uint ib = pc.neox != 0 ? pc.n_offs + q + pc.n_dims / 2 : i0 + 1;
    const float x0 = x[xb + ia];
    const float x1 = x[xb + ib];
    d[db + ia] = x0 * c - x1 * s;
    d[db + ib] = x0 * s + x1 * c;
}
