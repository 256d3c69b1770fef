#version 450
// ACC and SET, after dst holds src0 (the host copies it first unless dst is src0): one thread per src1 element
// (i0, i1, i2, i3) writes dst at the view `offset + i0 + i1*v1 + i2*v2 + i3*v3` (elements of dst and src0): ACC
// src0 + src1 there, SET src1 (its 32 bits: F32 or I32). The view does not overlap itself (checked by the host).
#include "elementwise.glsl"

layout(binding = 0) readonly buffer A { uint a[]; };
layout(binding = 1) readonly buffer B { uint b[]; };
layout(binding = 2) writeonly buffer D { uint d[]; };

// Mirrors ops::acc::AccPush.
layout(push_constant) uniform Push {
    uvec4 ne_b;  // src1 shape
    uvec4 s_b;   // src1 strides
    uvec4 view;  // offset, v1, v2, v3
    uint a_off; uint b_off; uint d_off; uint n;
    uint acc; uint pad0; uint pad1; uint pad2;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint i0 = id % pc.ne_b.x;
    uint r = id / pc.ne_b.x;
    const uint i1 = r % pc.ne_b.y;
    r /= pc.ne_b.y;
    const uint i2 = r % pc.ne_b.z;
    const uint i3 = r / pc.ne_b.z;
    const uint vo = pc.view.x + i0 + i1 * pc.view.y + i2 * pc.view.z + i3 * pc.view.w;
    const uint bv = b[pc.b_off + strided_offset(id, pc.ne_b, pc.s_b)];
    if (pc.acc != 0u) {
        d[pc.d_off + vo] = floatBitsToUint(uintBitsToFloat(a[pc.a_off + vo]) + uintBitsToFloat(bv));
    } else {
        d[pc.d_off + vo] = bv;
    }
}
