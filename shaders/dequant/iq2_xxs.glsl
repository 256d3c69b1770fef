// IQ2_XXS (ggml block_iq2_xxs, 66 bytes = 33 words): d (f16), then per 32 values 4 words: two of grid indices (one
// byte per 8 values) and two holding 4 x 7 sign bits and a 4-bit scale s (bits 28..31).
// Value = (d * (0.5 + s)) * 0.25 * grid byte, negated by its sign, as ggml's dequantize_row_iq2_xxs.
#define DQ_QK 256u
#define DQ_WORDS 33u
#include "dq_iq_common.glsl"
#include "iq_grids/iq2xxs.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint ib = i >> 3;
    const uint l = (i >> 1) & 3u;
    const uint h = i & 1u;
    const uint w = blk + 1u + 4u * ib;
    const uint idx = (dq_u16(w + (l >> 1)) >> (8u * (l & 1u))) & 0xFFu;
    const uint aux = dq_u16(w + 2u) | (dq_u16(w + 3u) << 16);
    const float db = dq_k_half(dq_u16(blk)) * (0.5 + float(aux >> 28)) * 0.25;
    const uint codes = DQ_IQ_ENTRY16(IQ2XXS_GRID_CODES, idx) >> (8u * h);
    const uint signs = dq_iq_ksigns(aux >> (7u * l)) >> (4u * h);
    return dq_iq_signed(db * dq_iq2_levels(codes), signs);
}
