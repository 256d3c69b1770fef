#version 450
// ADD / MUL / SUB / DIV (ggml_add, ggml_mul, ggml_sub, ggml_div): dst = src0 op src1, src1 repeated over src0 as ggml broadcasts it (index
// i % ne1 per dim). Any strides on all three (dst may alias src0: each thread reads its own element before
// writing it). Arithmetic in f32; an F16 dst gets the result rounded to nearest even, as ggml's CPU does.
// Defines: A_F16, B_F16, D_F16 (else F32). Spec constant 1: OP (0 add, 1 mul, 2 sub, 3 div).
#include "elementwise.glsl"

layout(constant_id = 1) const uint OP = 0;

#ifdef A_F16
layout(binding = 0) readonly buffer A { uint16_t a[]; };
#define LOAD_A(i) half_to_float(uint(a[i]))
#else
layout(binding = 0) readonly buffer A { float a[]; };
#define LOAD_A(i) a[i]
#endif
#ifdef B_F16
layout(binding = 1) readonly buffer B { uint16_t b[]; };
#define LOAD_B(i) half_to_float(uint(b[i]))
#else
layout(binding = 1) readonly buffer B { float b[]; };
#define LOAD_B(i) b[i]
#endif
#ifdef D_F16
layout(binding = 2) writeonly buffer D { uint16_t d[]; };
#define STORE_D(i, v) d[i] = uint16_t(float_to_half(v))
#else
layout(binding = 2) writeonly buffer D { float d[]; };
#define STORE_D(i, v) d[i] = (v)
#endif

// Modes (host-chosen): 0 general strides; 1 src0, src1, dst all packed with one shape (index = offset + id);
// 2 src0 and dst packed, src1 one packed row (index = offset + id % ne_b0, as ne_b0 divides ne0).
layout(push_constant) uniform Push {
    uvec4 ne;   // src0 = dst shape
    uvec4 ne_b; // src1 shape (each divides ne)
    uvec4 s_a;  // strides in elements (0 for dims of size 1)
    uvec4 s_b;
    uvec4 s_d;
    uint a_off; uint b_off; uint d_off; uint n;
    uint mode; uint pad0; uint pad1; uint pad2;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    uint ia, ib, idst;
    if (pc.mode == 1u) {
        ia = pc.a_off + id;
        ib = pc.b_off + id;
        idst = pc.d_off + id;
    } else if (pc.mode == 2u) {
        ia = pc.a_off + id;
        ib = pc.b_off + id % pc.ne_b.x;
        idst = pc.d_off + id;
    } else {
        const uint i0 = id % pc.ne.x;
        uint r = id / pc.ne.x;
        const uint i1 = r % pc.ne.y;
        r /= pc.ne.y;
        const uint i2 = r % pc.ne.z;
        const uint i3 = r / pc.ne.z;
        ia = pc.a_off + i0 * pc.s_a.x + i1 * pc.s_a.y + i2 * pc.s_a.z + i3 * pc.s_a.w;
        idst = pc.d_off + i0 * pc.s_d.x + i1 * pc.s_d.y + i2 * pc.s_d.z + i3 * pc.s_d.w;
        ib = pc.b_off + (i0 % pc.ne_b.x) * pc.s_b.x + (i1 % pc.ne_b.y) * pc.s_b.y
            + (i2 % pc.ne_b.z) * pc.s_b.z + (i3 % pc.ne_b.w) * pc.s_b.w;
    }
    const float x = LOAD_A(ia);
    const float y = LOAD_B(ib);
    float v;
    switch (OP) {
    case 1u: v = x * y; break;
    case 2u: v = x - y; break;
    case 3u: v = x / y; break;
    default: v = x + y; break;
    }
    STORE_D(idst, v);
}
