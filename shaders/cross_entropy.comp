#version 450
// CROSS_ENTROPY_LOSS (mode 0) and CROSS_ENTROPY_LOSS_BACK (mode 1) over rows of logits x and labels p (F32, rows
// packed, other strides in elements), with m the row's maximum and s = sum exp(x - m):
//   loss: dst[0] = -(1 / rows) * the sum over rows of sum_i (x_i - m - log s) p_i; one workgroup walks the rows
//   back: dst_i = (exp(x_i - m) * (1 / s) - p_i) * grad[0] / rows; one workgroup per row (x + y overflow)
// Shared-memory reductions in f32 (ggml's CPU backend sums the exponentials in double: results differ by
// rounding).
#include "elementwise.glsl"

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer P { float p[]; };
layout(binding = 2) readonly buffer G { float g[]; };
layout(binding = 3) writeonly buffer D { float d[]; };

// Mirrors ops::cross_entropy::CrossEntropyPush.
layout(push_constant) uniform Push {
    uvec4 ne;
    uvec4 s_x;
    uvec4 s_p;
    uvec4 s_d;
    uint x_off; uint p_off; uint g_off; uint d_off;
    uint rows; uint mode; uint pad0; uint pad1;
} pc;

shared float red[WG];

float reduce_max(float v) {
    const uint t = gl_LocalInvocationID.x;
    barrier();
    red[t] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] = max(red[t], red[t + s]);
        }
        barrier();
    }
    return red[0];
}

float reduce_sum(float v) {
    const uint t = gl_LocalInvocationID.x;
    barrier();
    red[t] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] += red[t + s];
        }
        barrier();
    }
    return red[0];
}

uint row_base(uint row, uvec4 s) {
    const uint i1 = row % pc.ne.y;
    const uint i2 = (row / pc.ne.y) % pc.ne.z;
    const uint i3 = row / (pc.ne.y * pc.ne.z);
    return i1 * s.y + i2 * s.z + i3 * s.w;
}

// The row's maximum and sum of exp(x - max).
void row_stats(uint xb, out float m, out float s) {
    const uint t = gl_LocalInvocationID.x;
    float vm = uintBitsToFloat(0xFF800000u);
    for (uint i = t; i < pc.ne.x; i += WG) {
        vm = max(vm, x[xb + i]);
    }
    m = reduce_max(vm);
    float vs = 0.0;
    for (uint i = t; i < pc.ne.x; i += WG) {
        vs += exp(x[xb + i] - m);
    }
    s = reduce_sum(vs);
}

void main() {
    const uint t = gl_LocalInvocationID.x;
    if (pc.mode == 0u) {
        float total = 0.0;
        for (uint row = 0u; row < pc.rows; ++row) {
            const uint xb = pc.x_off + row_base(row, pc.s_x);
            const uint pb = pc.p_off + row_base(row, pc.s_p);
            float m;
            float s;
            row_stats(xb, m, s);
            const float ls = log(s);
            float v = 0.0;
            for (uint i = t; i < pc.ne.x; i += WG) {
                v += (x[xb + i] - m - ls) * p[pb + i];
            }
            total += reduce_sum(v);
        }
        if (t == 0u) {
            d[pc.d_off] = total * (-1.0 / float(pc.rows));
        }
        return;
    }
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.rows) {
        return;
    }
    const uint xb = pc.x_off + row_base(row, pc.s_x);
    const uint pb = pc.p_off + row_base(row, pc.s_p);
    const uint db = pc.d_off + row_base(row, pc.s_d);
    float m;
    float s;
    row_stats(xb, m, s);
    const float inv = 1.0 / s;
    const float scale = g[pc.g_off] / float(pc.rows);
    for (uint i = t; i < pc.ne.x; i += WG) {
        d[db + i] = (exp(x[xb + i] - m) * inv - p[pb + i]) * scale;
    }
}
