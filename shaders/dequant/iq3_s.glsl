// IQ3_S (ggml block_iq3_s, 110 bytes = 55 words): d (f16), qs (64 bytes: low 8 bits of the grid indices, a byte
// per 4 values), qh (8 bytes: bit 8 of the eight indices of each 32 values), signs (32 bytes, one per 8 values),
// scales (4 bytes: per 32 values a 4-bit s, low nibble first). Value = (d * (1 + 2 s)) * grid byte, negated by its
// sign, as ggml's dequantize_row_iq3_s.
#define DQ_QK 256u
#define DQ_WORDS 55u
#include "dq_iq_common.glsl"
#include "iq_grids/iq3s.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint ib = i >> 3;
    const uint l = (i >> 1) & 3u;
    const uint h = i & 1u;
    const uint qh = dq_k_byte(blk, 66u + ib);
    const uint idx = dq_k_byte(blk, 2u + 8u * ib + 2u * l + h) | ((qh << (8u - 2u * l - h)) & 256u);
    const uint s = (dq_k_byte(blk, 106u + ib / 2u) >> (4u * (ib & 1u))) & 0xFu;
    const float db = dq_k_half(dq_u16(blk)) * float(1u + 2u * s);
    const uint grid = IQ3S_GRID[idx];
    const uint signs = dq_k_byte(blk, 74u + 4u * ib + l) >> (4u * h);
    return dq_iq_signed(db * vec4((uvec4(grid) >> DQ_K_LANES) & 0xFFu), signs);
}
