// Q5_K (ggml block_q5_K, 176 bytes = 88 words): d (f16), dmin (f16), 12 bytes of packed 6-bit scales and mins,
// 32 bytes qh of fifth bits, 128 bytes qs of low 4 bits. Chunk c (0..4) of 64 values: value 64c + l (l < 32)
// is the low nibble of qs[32c + l] plus 16 * bit 2c of qh[l] (sub-block 2c); value 64c + 32 + l the high
// nibble plus 16 * bit 2c + 1 (sub-block 2c + 1). Value = (d * sc) * q - (dmin * m), as dequantize_row_q5_K.
#define DQ_QK 256
#define DQ_WORDS 88
#include "dq_k_common.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint e = 4u * i;
    const uint c = e >> 6;
    const uint hi = (e >> 5) & 1u;
    const uint l = e & 31u;
    const uvec2 sm = dq_k_scale_min(blk, 4u, 2u * c + hi);
    const uint wq = dq_k_bytes4(blk, 48u + 32u * c + l);
    const uint wh = dq_k_bytes4(blk, 16u + l);
    const uvec4 lo = (uvec4(wq) >> (DQ_K_LANES + 4u * hi)) & 0xFu;
    const uvec4 hb = (uvec4(wh) >> (DQ_K_LANES + 2u * c + hi)) & 1u;
    const uvec4 q = lo + (hb << 4);
    precise const float d1 = dq_k_half(dq_u16(blk)) * float(sm.x);
    precise const float m1 = dq_k_half(dq_u16(blk + 1u)) * float(sm.y);
    precise const vec4 r = d1 * vec4(q) - m1;
    return r;
}
