#version 450
// TIMESTEP_EMBEDDING, one thread per dst element (j, i): with half = dim / 2 and
// freq = exp(-log(max_period) * j' / half) for j' = j mod half, dst[j, i] = cos(t_i * freq) for j < half,
// sin(t_i * freq) for half <= j < 2 half, and 0 for the last column of an odd dim. F32.
#include "elementwise.glsl"

layout(binding = 0) readonly buffer T { float ts[]; };
layout(binding = 1) writeonly buffer D { float d[]; };

// Mirrors ops::conv2d::TimestepPush.
layout(push_constant) uniform Push {
    uint dim; uint rows; uint t_off; uint t_s;
    uint d_off; uint d_s; uint n; float neg_log_period;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint j = id % pc.dim;
    const uint i = id / pc.dim;
    const uint half_dim = pc.dim / 2u;
    float v = 0.0;
    if (j < 2u * half_dim) {
        const uint jj = j < half_dim ? j : j - half_dim;
        const float freq = exp(pc.neg_log_period * float(jj) / float(half_dim));
        const float arg = ts[pc.t_off + i * pc.t_s] * freq;
        v = j < half_dim ? cos(arg) : sin(arg);
    }
    d[pc.d_off + j + i * pc.d_s] = v;
}
