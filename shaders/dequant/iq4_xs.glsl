// IQ4_XS (ggml block_iq4_xs, 136 bytes = 68 words): d (f16), scales_h (u16: bits 4..5 of the eight 6-bit
// sub-block scales), scales_l (4 bytes: their bits 0..3, low nibble first), qs (128 bytes: 16 per 32 values, byte j
// holding value j in its low nibble and value j + 16 in its high one). Value = (d * (ls - 32)) * kvalues_iq4nl[q],
// as ggml's dequantize_row_iq4_xs.
#define DQ_QK 256u
#define DQ_WORDS 68u
#include "dq_iq_common.glsl"

#define DQ_LEVELS_IQ4NL
#include "dq_levels16.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint ib = i >> 3;
    const uint j = (4u * i) & 31u;
    const uint lo = (dq_k_byte(blk, 4u + ib / 2u) >> (4u * (ib & 1u))) & 0xFu;
    const uint hi = (dq_u16(blk + 1u) >> (2u * ib)) & 3u;
    const float dl = dq_k_half(dq_u16(blk)) * float(int(lo | (hi << 4)) - 32);
    const uint w = dq_k_bytes4(blk, 8u + 16u * ib + (j & 15u));
    const uvec4 q = (uvec4(w) >> (DQ_K_LANES + (j >= 16u ? 4u : 0u))) & 0xFu;
    return dl * dq_levels4(q);
}
