// Q6_K (ggml block_q6_K, 210 bytes = 105 words): 128 bytes ql (low 4 bits), 64 bytes qh (top 2 bits),
// 16 signed 8-bit scales, d (f16, word 104). Half h (0..2) of 128 values, quarter k (0..4), l < 32: value
// 128h + 32k + l takes nibble k / 2 of ql[64h + 32(k % 2) + l], bits 2k..2k+1 of qh[32h + l] on top, scale
// scales[8h + 2k + l / 16]. Value = (d * sc) * (q - 32), as ggml's dequantize_row_q6_K.
#define DQ_QK 256
#define DQ_WORDS 105
#include "dq_k_common.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint e = 4u * i;
    const uint h = e >> 7;
    const uint k = (e >> 5) & 3u;
    const uint l = e & 31u;
    const uint wl = dq_k_bytes4(blk, 64u * h + 32u * (k & 1u) + l);
    const uint wh = dq_k_bytes4(blk, 128u + 32u * h + l);
    const uvec4 lo = (uvec4(wl) >> (DQ_K_LANES + 4u * (k >> 1))) & 0xFu;
    const uvec4 hb = (uvec4(wh) >> (DQ_K_LANES + 2u * k)) & 3u;
    const ivec4 q = ivec4(lo | (hb << 4)) - 32;
    const int sc = int(dq_k_byte(blk, 192u + 8u * h + 2u * k + (l >> 4)) << 24) >> 24;
    precise const float ds = dq_k_half(dq_u16(blk + 104u)) * float(sc);
    precise const vec4 r = ds * vec4(q);
    return r;
}
