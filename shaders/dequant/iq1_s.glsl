// IQ1_S (ggml block_iq1_s, 50 bytes = 25 words): d (f16), qs (32 bytes: low 8 bits of the 11-bit grid indices, one
// per 8 values), qh (8 u16, per 32 values: the indices' high 3 bits, a 3-bit scale s in bits 12..14, the sign of the
// shift in bit 15). Value = (d * (2 s + 1)) * (grid value + shift), grid values -1/0/1, shift ±1/8, as ggml's
// dequantize_row_iq1_s.
#define DQ_QK 256u
#define DQ_WORDS 25u
#include "dq_iq_common.glsl"
#include "iq_grids/iq1s.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint ib = i >> 3;
    const uint l = (i >> 1) & 3u;
    const uint h = i & 1u;
    const uint qh = dq_u16(blk + 17u + ib);
    const float dl = dq_k_half(dq_u16(blk)) * float(2u * ((qh >> 12) & 7u) + 1u);
    const float delta = (qh & 0x8000u) != 0u ? -0.125 : 0.125;
    const uint idx = dq_k_byte(blk, 2u + 4u * ib + l) | (((qh >> (3u * l)) & 7u) << 8);
    const uint codes = DQ_IQ_ENTRY16(IQ1S_GRID_CODES, idx) >> (8u * h);
    precise const vec4 r = dl * (dq_iq1_levels(codes) + delta);
    return r;
}
