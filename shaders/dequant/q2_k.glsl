// Q2_K (ggml block_q2_K, 84 bytes = 42 words): 16 bytes of scales (low nibble scale, high nibble min),
// 64 bytes qs of 2-bit codes, d (f16, word 40), dmin (f16, word 41). Half h (0..2), j (0..4), l < 32: value
// 128h + 32j + l is bits 2j..2j+1 of qs[32h + l], sub-block s = 8h + 2j + l / 16.
// Value = (d * (sc & 15)) * q - (dmin * (sc >> 4)), as ggml's dequantize_row_q2_K.
#define DQ_QK 256
#define DQ_WORDS 42
#include "dq_k_common.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint e = 4u * i;
    const uint h = e >> 7;
    const uint j = (e >> 5) & 3u;
    const uint l = e & 31u;
    const uint w = dq_k_bytes4(blk, 16u + 32u * h + l);
    const uvec4 q = (uvec4(w) >> (DQ_K_LANES + 2u * j)) & 3u;
    const uint sc = dq_k_byte(blk, 8u * h + 2u * j + (l >> 4));
    precise const float dl = dq_k_half(dq_u16(blk + 40u)) * float(sc & 0xFu);
    precise const float ml = dq_k_half(dq_u16(blk + 41u)) * float(sc >> 4);
    precise const vec4 r = dl * vec4(q) - ml;
    return r;
}
