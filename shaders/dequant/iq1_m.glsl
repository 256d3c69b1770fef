// IQ1_M (ggml block_iq1_m, 56 bytes = 28 words): qs (32 bytes: low 8 bits of the grid indices, one per 8 values),
// qh (16 bytes: per 8 values a nibble, the index's high 3 bits and the shift's sign in bit 3), scales (4 u16: 3-bit
// scales of 16 values each in bits 0..11, and nibble k of the f16 super-block scale d in bits 12..15 of word k).
// Value = (d * (2 s + 1)) * (grid value + shift), as ggml's dequantize_row_iq1_m.
#define DQ_QK 256u
#define DQ_WORDS 28u
#include "dq_iq_common.glsl"
#include "iq_grids/iq1s.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint ib = i >> 3;
    const uint l = (i >> 1) & 3u;
    const uint h = i & 1u;
    const uint sc0 = dq_u16(blk + 24u);
    const uint sc1 = dq_u16(blk + 25u);
    const uint sc2 = dq_u16(blk + 26u);
    const uint sc3 = dq_u16(blk + 27u);
    const float d = dq_k_half((sc0 >> 12) | ((sc1 >> 8) & 0xF0u) | ((sc2 >> 4) & 0xF00u) | (sc3 & 0xF000u));
    const uint sc = dq_u16(blk + 24u + ib / 2u) >> (6u * (ib & 1u) + 3u * (l >> 1));
    const float dl = d * float(2u * (sc & 7u) + 1u);
    const uint nib = dq_k_byte(blk, 32u + 2u * ib + (l >> 1)) >> (4u * (l & 1u));
    const float delta = (nib & 8u) != 0u ? -0.125 : 0.125;
    const uint idx = dq_k_byte(blk, 4u * ib + l) | ((nib & 7u) << 8);
    const uint codes = DQ_IQ_ENTRY16(IQ1S_GRID_CODES, idx) >> (8u * h);
    precise const vec4 r = dl * (dq_iq1_levels(codes) + delta);
    return r;
}
