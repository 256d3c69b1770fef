#version 450
// CUMSUM: inclusive prefix sums along dim 0, one workgroup per row (x + y overflow). The row goes in chunks of
// WG * 4 values: each thread sums its 4 consecutive values in order, a shared-memory scan (Hillis-Steele) gives
// every thread the total of the runs before its own, and the chunk's total carries into the next chunk.
// Rows packed (element stride 1) in src0 and dst; other strides in elements.
#include "elementwise.glsl"

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };

// Mirrors ops::cumsum::CumsumPush.
layout(push_constant) uniform Push {
    uvec4 ne;  // shape (src0 and dst)
    uvec4 s_a; // src0 strides
    uvec4 s_d; // dst strides
    uint a_off; uint d_off; uint rows; uint pad0;
} pc;

shared float runs[WG];

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
    const uint id = pc.d_off + i1 * pc.s_d.y + i2 * pc.s_d.z + i3 * pc.s_d.w;
    const uint n = pc.ne.x;
    float carry = 0.0;
    for (uint base = 0u; base < n; base += WG * 4u) {
        const uint j0 = base + t * 4u;
        float v[4];
        float run = 0.0;
        for (uint k = 0u; k < 4u; ++k) {
            run += j0 + k < n ? a[ia + j0 + k] : 0.0;
            v[k] = run;
        }
        runs[t] = run;
        barrier();
        for (uint off = 1u; off < WG; off <<= 1u) {
            const float add = t >= off ? runs[t - off] : 0.0;
            barrier();
            runs[t] += add;
            barrier();
        }
        const float before = carry + (t > 0u ? runs[t - 1u] : 0.0);
        for (uint k = 0u; k < 4u; ++k) {
            if (j0 + k < n) {
                d[id + j0 + k] = before + v[k];
            }
        }
        carry += runs[WG - 1u];
        barrier();
    }
}
