// Shared by the elementwise kernels (binary.comp, unary.comp, glu.comp, cpy.comp).
//
// Threads: one per element of the output, numbered by a linear id in the output's logical (row-major, dim 0
// innermost) order. The host splits ceil(n / WG) workgroups over x and y (x * y * WG fits 32 bits).
//
// Half <-> float conversions are done in integer arithmetic so they are bit-exact on every driver: f32 -> f16
// rounds to nearest, ties to even, overflows to infinity and produces subnormals (ggml's CPU conversion, and
// half::f16::from_f32); NaNs keep their sign and top payload bits and become quiet (as F16C and `half` do).
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 256;

uint element_id() {
    return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG + gl_LocalInvocationID.x;
}

// Offset (in elements) of the element with linear id `id` of a tensor of shape `ne`, strides `s` (elements).
uint strided_offset(uint id, uvec4 ne, uvec4 s) {
    const uint i0 = id % ne.x;
    uint r = id / ne.x;
    const uint i1 = r % ne.y;
    r /= ne.y;
    const uint i2 = r % ne.z;
    const uint i3 = r / ne.z;
    return i0 * s.x + i1 * s.y + i2 * s.z + i3 * s.w;
}

// Layout modes chosen by the host per tensor: 1 packed (offset = id); 2 flat rows, packed along dim 0 with row
// r = i1 + ne1 * (i2 + ne2 * i3) at r * rs; anything else: general strides.
#define MODE_STRIDED 0u
#define MODE_PACKED 1u
#define MODE_ROWS 2u
uint element_offset(uint id, uint mode, uvec4 ne, uvec4 s, uint rs) {
    if (mode == MODE_PACKED) {
        return id;
    }
    if (mode == MODE_ROWS) {
        const uint row = id / ne.x;
        return (id - row * ne.x) + row * rs;
    }
    return strided_offset(id, ne, s);
}

// f16 / bf16 conversions: half_bits.glsl's (exact, in integer arithmetic).
#include "half_bits.glsl"

// i32 (as bits) -> f32 bits, rounded to nearest even as C's (float) conversion: exact below 2^24, else the 24
// leading bits kept and the rest rounded (a mantissa carry bumps the exponent).
uint i32_to_float_bits(uint v) {
    if (v == 0u) {
        return 0u;
    }
    const uint sign = v & 0x80000000u;
    const uint m = sign != 0u ? ~v + 1u : v; // magnitude (2^31 for INT_MIN)
    const int p = findMSB(m);
    uint mant;
    if (p <= 23) {
        mant = m << uint(23 - p);
    } else {
        const uint sh = uint(p - 23);
        mant = m >> sh;
        const uint rem = m & ((1u << sh) - 1u);
        const uint half_ulp = 1u << (sh - 1u);
        if (rem > half_ulp || (rem == half_ulp && (mant & 1u) != 0u)) {
            mant += 1u;
        }
    }
    return sign | ((uint(p + 127) << 23) + (mant - 0x800000u));
}

// f32 bits -> i32 bits truncated toward zero as C's (int32_t) conversion; NaN and values outside the i32 range
// give INT_MIN (x86's cvttss2si, what ggml's CPU backend produces there).
uint float_bits_to_i32(uint x) {
    const uint e = (x >> 23) & 0xFFu;
    if (e < 127u) {
        return 0u;
    }
    if (e >= 158u) {
        return 0x80000000u;
    }
    const uint m = (x & 0x7FFFFFu) | 0x800000u;
    const uint sh = e - 127u;
    const uint mag = sh >= 23u ? m << (sh - 23u) : m >> (23u - sh);
    return (x & 0x80000000u) != 0u ? ~mag + 1u : mag;
}
