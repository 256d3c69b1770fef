#version 450
// COUNT_EQUAL: the number of positions where the I32 tensors src0 and src1 hold the same value, as one I64
// (two 32-bit words, the high one 0). One workgroup: each thread counts a strided share of the elements, then a
// shared-memory sum. Strides in elements.
#include "elementwise.glsl"

layout(binding = 0) readonly buffer A { int a[]; };
layout(binding = 1) readonly buffer B { int b[]; };
layout(binding = 2) writeonly buffer D { uint d[]; };

// Mirrors ops::count_equal::CountPush.
layout(push_constant) uniform Push {
    uvec4 ne;
    uvec4 s_a;
    uvec4 s_b;
    uint a_off; uint b_off; uint d_off; uint n;
} pc;

shared uint partial[WG];

void main() {
    const uint t = gl_LocalInvocationID.x;
    uint count = 0u;
    for (uint i = t; i < pc.n; i += WG) {
        const int va = a[pc.a_off + strided_offset(i, pc.ne, pc.s_a)];
        const int vb = b[pc.b_off + strided_offset(i, pc.ne, pc.s_b)];
        count += va == vb ? 1u : 0u;
    }
    partial[t] = count;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            partial[t] += partial[t + s];
        }
        barrier();
    }
    if (t == 0u) {
        d[pc.d_off] = partial[0];
        d[pc.d_off + 1u] = 0u;
    }
}
