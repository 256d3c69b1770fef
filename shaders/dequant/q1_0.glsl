// Q1_0 (ggml block_q1_0, 18 bytes = 9 words): d (f16), qs (16 bytes, bit j % 8 of byte j / 8 the sign of value j).
// Value = d where the bit is set, -d where it is clear, as ggml's dequantize_row_q1_0 (a select: exact).
#define DQ_QK 128u
#define DQ_WORDS 9u
#include "dq_k_common.glsl"

vec4 dq_get4(uint blk, uint i) {
    // Values 4i .. 4i+3: bits 4 (i % 4) .. 4 (i % 4) + 3 of qs word i / 4 (two bytes, low byte first).
    const uint bits = dq_u16(blk + 1u + (i >> 2)) >> (4u * (i & 3u));
    const float d = dq_k_half(dq_u16(blk));
    const bvec4 set = notEqual(uvec4(bits) & uvec4(1u, 2u, 4u, 8u), uvec4(0u));
    return mix(vec4(-d), vec4(d), set);
}
