// IQ3_XXS (ggml block_iq3_xxs, 98 bytes = 49 words): d (f16), 64 grid indices (a byte per 4 values), then per 32
// values a u32 of 4 x 7 sign bits and a 4-bit scale s (bits 28..31).
// Value = (d * (0.5 + s)) * 0.5 * grid byte, negated by its sign, as ggml's dequantize_row_iq3_xxs.
#define DQ_QK 256u
#define DQ_WORDS 49u
#include "dq_iq_common.glsl"
#include "iq_grids/iq3xxs.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint ib = i >> 3;
    const uint l = (i >> 1) & 3u;
    const uint h = i & 1u;
    const uint aux = dq_k_bytes4(blk, 66u + 4u * ib);
    const float db = dq_k_half(dq_u16(blk)) * (0.5 + float(aux >> 28)) * 0.5;
    const uint grid = IQ3XXS_GRID[dq_k_byte(blk, 2u + 8u * ib + 2u * l + h)];
    const uint signs = dq_iq_ksigns(aux >> (7u * l)) >> (4u * h);
    return dq_iq_signed(db * vec4((uvec4(grid) >> DQ_K_LANES) & 0xFFu), signs);
}
