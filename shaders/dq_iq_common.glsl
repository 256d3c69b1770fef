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

// Four 2-bit codes (bits 0..7 of `codes`, value k at bit 2k) as the levels they index.
vec4 dq_iq_levels(uint codes, vec3 lv) {
    const uvec4 c = (uvec4(codes) >> uvec4(0u, 2u, 4u, 6u)) & 3u;
    return vec4(lv[c.x], lv[c.y], lv[c.z], lv[c.w]);
}

// `v` negated where bits 0..3 of `s` are set (a select: -v is exact, as ggml's multiplication by -1).
vec4 dq_iq_signed(vec4 v, uint s) {
    return mix(v, -v, notEqual(uvec4(s) & uvec4(1u, 2u, 4u, 8u), uvec4(0u)));
}

// 16-bit entry `e` of a grid packed two entries per uint (scripts/gen_iq_grids.py).
#define DQ_IQ_ENTRY16(table, e) ((table[(e) >> 1] >> (16u * ((e) & 1u))) & 0xFFFFu)

// The IQ2 grids' levels (codes 0, 1, 2) and the IQ1 grid's.
const vec3 DQ_IQ2_LEVELS = vec3(8.0, 25.0, 43.0);
const vec3 DQ_IQ1_LEVELS = vec3(-1.0, 0.0, 1.0);

#endif
