#version 450
// ADD_ID (ggml_add_id, the per-expert biases of gpt-oss): dst[i0, i1, i2, i3] = a[i0, i1, i2, i3] +
// b[i0, ids[i1, i2]]. One thread per element of dst, in dst's logical order; a, dst any strides (elements), b rows
// packed (nb[0] = 4, as ggml's CPU backend assumes), ids read on the device (the router's choice) and clamped
// to b's rows (ggml asserts they are in range), so no read leaves b.
#include "elementwise.glsl"

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) readonly buffer I { int ids[]; };
layout(binding = 3) writeonly buffer D { float d[]; };

// Mirrors ops::moe::AddIdPush. Offsets and strides in elements.
layout(push_constant) uniform Push {
    uvec4 ne;   // dst (= a) shape
    uvec4 sa;   // a strides
    uvec4 sd;   // dst strides
    uint a_off; uint b_off; uint i_off; uint d_off;
    uint b_row; // b's row stride
    uint b_rows; // b's rows (experts)
    uint i_s0; uint i_s1; // ids strides
    uint n; uint pad0; uint pad1; uint pad2;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.n) { return; }
    const uint i0 = id % pc.ne.x;
    uint r = id / pc.ne.x;
    const uint i1 = r % pc.ne.y;
    r /= pc.ne.y;
    const uint i2 = r % pc.ne.z;
    const uint i3 = r / pc.ne.z;
    const int e = clamp(ids[pc.i_off + i1 * pc.i_s0 + i2 * pc.i_s1], 0, int(pc.b_rows) - 1);
    const float x = a[pc.a_off + i0 * pc.sa.x + i1 * pc.sa.y + i2 * pc.sa.z + i3 * pc.sa.w];
    d[pc.d_off + i0 * pc.sd.x + i1 * pc.sd.y + i2 * pc.sd.z + i3 * pc.sd.w] = x + b[pc.b_off + uint(e) * pc.b_row + i0];
}
