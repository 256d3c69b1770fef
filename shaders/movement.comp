#version 450
// Data movement, one thread per dst element (its linear id in dst's logical order, dim 0 innermost):
//   REPEAT:        dst[i] = a[i % ne_a]
//   CONCAT:        dst[i] = a[i] while i[dim] < ne_a[dim], else b[i with i[dim] - ne_a[dim]] (dim = lp.x)
//   PAD:           dst[i] = a[i - lp] inside src0, else 0
//   PAD_CIRCULAR:  dst[i] = a[(i - lp + ne_a) % ne_a] (the host checks lp <= ne_a; also ROLL, lp the shift)
//   PAD_REFLECT:   dim 0: j = i0 - lp.x, read at |j| before the row, at 2 (ne_a.x - 1) - j after it
//   ARANGE:        dst[i] = start + step * i (32-bit variant only; `precise` keeps ggml's separate rounding of the
//                  product and the sum)
// Elements are moved as bits. Defines: E16 (16-bit elements, else 32-bit). Spec constant 1: OP (the MV_* codes,
// mirrored by ops::movement). Offsets and strides in elements.
#include "elementwise.glsl"

layout(constant_id = 1) const uint OP = 0;

#define MV_REPEAT 0u
#define MV_CONCAT 1u
#define MV_PAD 2u
#define MV_PAD_CIRCULAR 3u
#define MV_ARANGE 4u
#define MV_PAD_REFLECT 5u

#ifdef E16
layout(binding = 0) readonly buffer A { uint16_t a[]; };
layout(binding = 1) readonly buffer B { uint16_t b[]; };
layout(binding = 2) writeonly buffer D { uint16_t d[]; };
#define ELEM uint16_t
#else
layout(binding = 0) readonly buffer A { uint a[]; };
layout(binding = 1) readonly buffer B { uint b[]; };
layout(binding = 2) writeonly buffer D { uint d[]; };
#define ELEM uint
#endif

// Mirrors ops::movement::MovePush.
layout(push_constant) uniform Push {
    uvec4 ne;   // dst shape
    uvec4 s_d;  // dst strides
    uvec4 ne_a; // src0 shape
    uvec4 s_a;  // src0 strides
    uvec4 s_b;  // src1 strides (CONCAT)
    uvec4 lp;   // PAD: left padding per dim; CONCAT: x is the dim
    uint d_off; uint a_off; uint b_off; uint n;
    float start; float step; uint pad0; uint pad1;
} pc;

uint offs(uvec4 i, uvec4 s) {
    return i.x * s.x + i.y * s.y + i.z * s.z + i.w * s.w;
}

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    uvec4 i;
    i.x = id % pc.ne.x;
    uint r = id / pc.ne.x;
    i.y = r % pc.ne.y;
    r /= pc.ne.y;
    i.z = r % pc.ne.z;
    i.w = r / pc.ne.z;
    const uint od = pc.d_off + offs(i, pc.s_d);
    if (OP == MV_REPEAT) {
        d[od] = a[pc.a_off + offs(i % pc.ne_a, pc.s_a)];
    } else if (OP == MV_CONCAT) {
        const uint dim = pc.lp.x;
        if (i[dim] < pc.ne_a[dim]) {
            d[od] = a[pc.a_off + offs(i, pc.s_a)];
        } else {
            i[dim] -= pc.ne_a[dim];
            d[od] = b[pc.b_off + offs(i, pc.s_b)];
        }
    } else if (OP == MV_PAD) {
        const ivec4 j = ivec4(i) - ivec4(pc.lp);
        if (any(lessThan(j, ivec4(0))) || any(greaterThanEqual(uvec4(j), pc.ne_a))) {
            d[od] = ELEM(0);
        } else {
            d[od] = a[pc.a_off + offs(uvec4(j), pc.s_a)];
        }
    } else if (OP == MV_PAD_CIRCULAR) {
        const uvec4 j = (i + pc.ne_a - pc.lp) % pc.ne_a;
        d[od] = a[pc.a_off + offs(j, pc.s_a)];
    } else if (OP == MV_PAD_REFLECT) {
        const int j = int(i.x) - int(pc.lp.x);
        const int last = int(pc.ne_a.x) - 1;
        i.x = uint(j < 0 ? -j : (j > last ? 2 * last - j : j));
        d[od] = a[pc.a_off + offs(i, pc.s_a)];
    } else {
#ifndef E16
        precise float v = pc.start + pc.step * float(id);
        d[od] = floatBitsToUint(v);
#endif
    }
}
