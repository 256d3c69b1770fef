// IQ4_NL dequantization (ggml's dequantize_row_iq4_nl), for the generic kernels; the includer defines
// `uint dq_u16(uint i)`, the i-th 16-bit word of the weights.
// Block: 18 bytes = 9 words: [d (f16)] [qs: 16 bytes as 8 words]. Byte j holds the index of element j (low
// nibble) and of element j + 16 (high nibble) into ggml's 16-level table kvalues_iq4nl. Value = d * level.
#define DQ_QK 32u
#define DQ_WORDS 9u

#define DQ_LEVELS_IQ4NL
#include "dq_levels16.glsl"

vec4 dq_get4(uint blk, uint i) {
    const float d = unpackHalf2x16(dq_u16(blk)).x;
    const uint j = (4u * i) & 15u;
    const uint qs = dq_u16(blk + 1u + j / 2u) | (dq_u16(blk + 2u + j / 2u) << 16);
    const uint lo = (qs >> (i < 4u ? 0u : 4u)) & 0x0F0F0F0Fu;
    return d * dq_levels4(uvec4(lo, lo >> 8, lo >> 16, lo >> 24) & 15u);
}
