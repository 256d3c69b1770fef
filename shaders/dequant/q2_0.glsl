// Q2_0 (ggml block_q2_0, 18 bytes = 9 words): d (f16), qs (16 bytes, bits 2 (j % 4) of byte j / 4 the code of
// value j). Value = (q - 1) * d (levels -d, 0, d, 2d), as ggml's dequantize_row_q2_0.
#define DQ_QK 64u
#define DQ_WORDS 9u
#include "dq_k_common.glsl"

vec4 dq_get4(uint blk, uint i) {
    // Values 4i .. 4i+3 are the four codes of qs byte i.
    const uint byte_v = (dq_u16(blk + 1u + (i >> 1)) >> (8u * (i & 1u))) & 0xFFu;
    const uvec4 q = (uvec4(byte_v) >> uvec4(0u, 2u, 4u, 6u)) & 3u;
    return (vec4(q) - 1.0) * dq_k_half(dq_u16(blk));
}
