#version 450
// Data movement, one thread per dst element (its linear id in dst's logical order, dim 0 innermost):
//   REPEAT:        dst[i] = a[i % ne_a]
//   CONCAT:        dst[i] = a[i] while i[dim] < ne_a[dim], else b[i with i[dim] - ne_a[dim]] (dim = lp.x)
//   PAD:           dst[i] = a[i - lp] inside src0, else 0
//   PAD_CIRCULAR:  dst[i] = a[(i - lp + ne_a) % ne_a] (the host checks lp <= ne_a; also ROLL, lp the shift)
//   PAD_REFLECT:   dim 0: j = i0 - lp.x, read at |j| before the row, at 2 (ne_a.x - 1) - j after it
//   ARANGE:        dst[i] = start + step * i (32-bit variant only; `precise` keeps ggml's separate rounding of the
//                  product and the sum)
//   DIAG:          dst[i] = a[i0, 0, i2, i3] where i0 == i1, else 0
//   REPEAT_BACK:   dst[i] = the f32 sum of a[i + r * ne] over every repeat r (ne_a = nr * ne), r3 outermost and r0
//                  innermost, as ggml's CPU backend adds them (32-bit variant only)
// An element is W consecutive words (spec constant 2): one value, or one block of a quantized type (dims in
// blocks along dim 0), moved as bits. Defines: E8 (8-bit words), E16 (16-bit words), else 32-bit. Spec constant 1:
// OP (the MV_* codes, mirrored by ops::movement). Offsets and strides in words.
#ifdef E8
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#endif
#include "elementwise.glsl"

layout(constant_id = 1) const uint OP = 0;
layout(constant_id = 2) const uint W = 1;

#define MV_REPEAT 0u
#define MV_CONCAT 1u
#define MV_PAD 2u
#define MV_PAD_CIRCULAR 3u
#define MV_ARANGE 4u
#define MV_PAD_REFLECT 5u
#define MV_DIAG 6u
#define MV_REPEAT_BACK 7u

#if defined(E8)
layout(binding = 0) readonly buffer A { uint8_t a[]; };
layout(binding = 1) readonly buffer B { uint8_t b[]; };
layout(binding = 2) writeonly buffer D { uint8_t d[]; };
#define ELEM uint8_t
#elif defined(E16)
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
    uvec4 ne;   // dst shape (elements)
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

// The W words of the element at od (dst) from oa (src0) or ob (src1).
void move_a(uint od, uint oa) {
    for (uint w = 0u; w < W; ++w) {
        d[od + w] = a[oa + w];
    }
}

void move_b(uint od, uint ob) {
    for (uint w = 0u; w < W; ++w) {
        d[od + w] = b[ob + w];
    }
}

void zero(uint od) {
    for (uint w = 0u; w < W; ++w) {
        d[od + w] = ELEM(0);
    }
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
        move_a(od, pc.a_off + offs(i % pc.ne_a, pc.s_a));
    } else if (OP == MV_CONCAT) {
        const uint dim = pc.lp.x;
        if (i[dim] < pc.ne_a[dim]) {
            move_a(od, pc.a_off + offs(i, pc.s_a));
        } else {
            i[dim] -= pc.ne_a[dim];
            move_b(od, pc.b_off + offs(i, pc.s_b));
        }
    } else if (OP == MV_PAD) {
        const ivec4 j = ivec4(i) - ivec4(pc.lp);
        if (any(lessThan(j, ivec4(0))) || any(greaterThanEqual(uvec4(j), pc.ne_a))) {
            zero(od);
        } else {
            move_a(od, pc.a_off + offs(uvec4(j), pc.s_a));
        }
    } else if (OP == MV_PAD_CIRCULAR) {
        const uvec4 j = (i + pc.ne_a - pc.lp) % pc.ne_a;
        move_a(od, pc.a_off + offs(j, pc.s_a));
    } else if (OP == MV_PAD_REFLECT) {
        const int j = int(i.x) - int(pc.lp.x);
        const int last = int(pc.ne_a.x) - 1;
        i.x = uint(j < 0 ? -j : (j > last ? 2 * last - j : j));
        move_a(od, pc.a_off + offs(i, pc.s_a));
    } else if (OP == MV_DIAG) {
        if (i.x == i.y) {
            move_a(od, pc.a_off + offs(uvec4(i.x, 0u, i.z, i.w), pc.s_a));
        } else {
            zero(od);
        }
    } else if (OP == MV_REPEAT_BACK) {
#if !defined(E8) && !defined(E16)
        const uvec4 nr = pc.ne_a / pc.ne;
        precise float sum = 0.0;
        for (uint r3 = 0u; r3 < nr.w; ++r3) {
            for (uint r2 = 0u; r2 < nr.z; ++r2) {
                for (uint r1 = 0u; r1 < nr.y; ++r1) {
                    for (uint r0 = 0u; r0 < nr.x; ++r0) {
                        const uvec4 j = i + uvec4(r0, r1, r2, r3) * pc.ne;
                        sum += uintBitsToFloat(a[pc.a_off + offs(j, pc.s_a)]);
                    }
                }
            }
        }
        d[od] = floatBitsToUint(sum);
#endif
    } else {
#if !defined(E8) && !defined(E16)
        precise float v = pc.start + pc.step * float(id);
        d[od] = floatBitsToUint(v);
#endif
    }
}
