// Q4_K (ggml block_q4_K, 144 bytes = 72 words): d (f16), dmin (f16), 12 bytes of packed 6-bit scales and mins,
// 128 bytes of 4-bit codes. Chunk c (0..4) of 64 values: value 64c + l (l < 32) is the low nibble of
// qs[32c + l] in sub-block 2c, value 64c + 32 + l its high nibble in sub-block 2c + 1.
// Value = (d * sc) * q - (dmin * m), as ggml's dequantize_row_q4_K.
#define DQ_QK 256
#define DQ_WORDS 72
#include "dq_k_common.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint e = 4u * i;
    const uint c = e >> 6;
    const uint hi = (e >> 5) & 1u;
    const uint l = e & 31u;
    const uvec2 sm = dq_k_scale_min(blk, 4u, 2u * c + hi);
    const uint w = dq_k_bytes4(blk, 16u + 32u * c + l);
    const uvec4 q = (uvec4(w) >> (DQ_K_LANES + 4u * hi)) & 0xFu;
    precise const float d1 = dq_k_half(dq_u16(blk)) * float(sm.x);
    precise const float m1 = dq_k_half(dq_u16(blk + 1u)) * float(sm.y);
    precise const vec4 r = d1 * vec4(q) - m1;
    return r;
}
