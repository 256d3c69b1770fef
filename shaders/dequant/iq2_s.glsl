// IQ2_S (ggml block_iq2_s, 82 bytes = 41 words): d (f16), qs (64 bytes: low 8 bits of the 32 grid indices, then
// the 8 sign bits of each group of 8 values), qh (8 bytes: bits 8..9 of the indices, two per group), scales (8
// bytes, as IQ2_XS). Value = (d * (0.5 + s)) * 0.25 * grid byte, negated by its sign, as ggml's
// dequantize_row_iq2_s.
#define DQ_QK 256u
#define DQ_WORDS 41u
#include "dq_iq_common.glsl"
#include "iq_grids/iq2s.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint ib = i >> 3;
    const uint l = (i >> 1) & 3u;
    const uint h = i & 1u;
    const uint g = 4u * ib + l;
    const uint qh = dq_k_byte(blk, 66u + ib);
    const uint idx = dq_k_byte(blk, 2u + g) | ((qh << (8u - 2u * l)) & 0x300u);
    const uint s = (dq_k_byte(blk, 74u + ib) >> (4u * (l >> 1))) & 0xFu;
    const float db = dq_k_half(dq_u16(blk)) * (0.5 + float(s)) * 0.25;
    const uint codes = DQ_IQ_ENTRY16(IQ2S_GRID_CODES, idx) >> (8u * h);
    const uint signs = dq_k_byte(blk, 34u + g) >> (4u * h);
    return dq_iq_signed(db * dq_iq2_levels(codes), signs);
}
