// IQ2_XS (ggml block_iq2_xs, 74 bytes = 37 words): d (f16), qs (32 u16, per 8 values a 9-bit grid index and 7 sign
// bits), scales (8 bytes, per 32 values the 4-bit scales of its two halves, low nibble first).
// Value = (d * (0.5 + s)) * 0.25 * grid byte, negated by its sign, as ggml's dequantize_row_iq2_xs.
#define DQ_QK 256u
#define DQ_WORDS 37u
#include "dq_iq_common.glsl"
#include "iq_grids/iq2xs.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint ib = i >> 3;
    const uint l = (i >> 1) & 3u;
    const uint h = i & 1u;
    const uint q = dq_u16(blk + 1u + 4u * ib + l);
    const uint s = (dq_k_byte(blk, 66u + ib) >> (4u * (l >> 1))) & 0xFu;
    const float db = dq_k_half(dq_u16(blk)) * (0.5 + float(s)) * 0.25;
    const uint codes = DQ_IQ_ENTRY16(IQ2XS_GRID_CODES, q & 511u) >> (8u * h);
    const uint signs = dq_iq_ksigns(q >> 9) >> (4u * h);
    return dq_iq_signed(db * dq_iq2_levels(codes), signs);
}
