#version 450
// RMS_NORM_BACK and SOFT_MAX_BACK, one workgroup per row (x + y overflow), two row sums reduced in shared memory:
//   mode 0 RMS_NORM_BACK (src0 dz, src1 x): sxx = sum x^2, sxdz = sum x dz;
//          dst = (dz + x * (-sxdz / (sxx + eps n))) / sqrt(sxx / n + eps)
//   mode 1 SOFT_MAX_BACK (src0 dy, src1 y): d = sum y dy; dst = (dy - d) * y * scale
// F32, rows packed (element stride 1), other strides in elements.
#include "elementwise.glsl"

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

// Mirrors ops::row_back::RowBackPush.
layout(push_constant) uniform Push {
    uvec4 ne;
    uvec4 s_a;
    uvec4 s_b;
    uvec4 s_d;
    uint a_off; uint b_off; uint d_off; uint rows;
    uint mode; float param; uint pad0; uint pad1;
} pc;

shared float red0[WG];
shared float red1[WG];

void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.rows) {
        return;
    }
    const uint t = gl_LocalInvocationID.x;
    const uint i1 = row % pc.ne.y;
    const uint i2 = (row / pc.ne.y) % pc.ne.z;
    const uint i3 = row / (pc.ne.y * pc.ne.z);
    const uint ia = pc.a_off + i1 * pc.s_a.y + i2 * pc.s_a.z + i3 * pc.s_a.w;
    const uint ib = pc.b_off + i1 * pc.s_b.y + i2 * pc.s_b.z + i3 * pc.s_b.w;
    const uint id = pc.d_off + i1 * pc.s_d.y + i2 * pc.s_d.z + i3 * pc.s_d.w;
    const uint n = pc.ne.x;
    float s0 = 0.0;
    float s1 = 0.0;
    for (uint i = t; i < n; i += WG) {
        const float va = a[ia + i];
        const float vb = b[ib + i];
        s0 += vb * vb;
        s1 += vb * va;
    }
    red0[t] = s0;
    red1[t] = s1;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            red0[t] += red0[t + s];
            red1[t] += red1[t + s];
        }
        barrier();
    }
    const float sum_bb = red0[0];
    const float sum_ba = red1[0];
    if (pc.mode == 0u) {
        const float eps = pc.param;
        const float rrms = 1.0 / sqrt(sum_bb / float(n) + eps);
        const float scale_x = -sum_ba / (sum_bb + eps * float(n));
        for (uint i = t; i < n; i += WG) {
            d[id + i] = (a[ia + i] + b[ib + i] * scale_x) * rrms;
        }
    } else {
        for (uint i = t; i < n; i += WG) {
            d[id + i] = (a[ia + i] - sum_ba) * b[ib + i] * pc.param;
        }
    }
}
