// Helpers shared by the IQ, ternary and MXFP4 dequantization includes (shaders/dequant/iq*.glsl, tq*.glsl,
// mxfp4.glsl), on top of dq_k_common.glsl (bytes of a block, exact f16 conversion).
#ifndef DQ_IQ_COMMON_GLSL
#define DQ_IQ_COMMON_GLSL
#include "dq_k_common.glsl"

// ggml's ksigns_iq2xs[i]: the 7 stored sign bits `i` and an eighth that makes the number of set bits even.
uint dq_iq_ksigns(uint i) {
    i &= 127u;
    return i | ((uint(bitCount(i)) & 1u) << 7);
}

// Four 2-bit codes (bits 0..7 of `codes`, value k at bit 2k).
uvec4 dq_iq_codes(uint codes) {
    return (uvec4(codes) >> uvec4(0u, 2u, 4u, 6u)) & 3u;
}

// The IQ2 grids' levels 8, 25, 43 of codes 0, 1, 2 as 8 + 17 c + c / 2 (integers: exact).
vec4 dq_iq2_levels(uint codes) {
    const uvec4 c = dq_iq_codes(codes);
    return vec4(8u + 17u * c + (c >> 1));
}

// The IQ1 grid's levels -1, 0, 1 of codes 0, 1, 2.
vec4 dq_iq1_levels(uint codes) {
    return vec4(dq_iq_codes(codes)) - 1.0;
}

// `v` negated where bits 0..3 of `s` are set (a select: -v is exact, as ggml's multiplication by -1).
vec4 dq_iq_signed(vec4 v, uint s) {
    return mix(v, -v, notEqual(uvec4(s) & uvec4(1u, 2u, 4u, 8u), uvec4(0u)));
}

// 16-bit entry `e` of a grid packed two entries per uint (scripts/gen_iq_grids.py).
#define DQ_IQ_ENTRY16(table, e) ((table[(e) >> 1] >> (16u * ((e) & 1u))) & 0xFFFFu)

#endif
