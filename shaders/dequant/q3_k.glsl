// Q3_K (ggml block_q3_K, 110 bytes = 55 words): 32 bytes hmask (high bits), 64 bytes qs (low 2 bits),
// 12 bytes of 16 packed 6-bit scales, d (f16, word 54). Half h (0..2), j (0..4), l < 32: value 128h + 32j + l
// has low bits 2j..2j+1 of qs[32h + l], high bit 4h + j of hmask[l], scale s = 8h + 2j + l / 16 whose low
// nibble is nibble s / 8 of scales[s % 8] and top 2 bits are bits 2(s / 4).. of scales[8 + s % 4].
// Value = (d * (scale - 32)) * (low - (high ? 0 : 4)), as ggml's dequantize_row_q3_K.
#define DQ_QK 256
#define DQ_WORDS 55
#include "dq_k_common.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint e = 4u * i;
    const uint h = e >> 7;
    const uint j = (e >> 5) & 3u;
    const uint l = e & 31u;
    const uint wq = dq_k_bytes4(blk, 32u + 32u * h + l);
    const uint wm = dq_k_bytes4(blk, l);
    const uvec4 low = (uvec4(wq) >> (DQ_K_LANES + 2u * j)) & 3u;
    const uvec4 high = (uvec4(wm) >> (DQ_K_LANES + 4u * h + j)) & 1u;
    const ivec4 q = ivec4(low) - ivec4((1u - high) << 2);
    const uint s = 8u * h + 2u * j + (l >> 4);
    const uint s_lo = (dq_k_byte(blk, 96u + (s & 7u)) >> (4u * (s >> 3))) & 0xFu;
    const uint s_hi = (dq_k_byte(blk, 104u + (s & 3u)) >> (2u * (s >> 2))) & 3u;
    const int sc = int(s_lo | (s_hi << 4)) - 32;
    precise const float dl = dq_k_half(dq_u16(blk + 54u)) * float(sc);
    precise const vec4 r = dl * vec4(q);
    return r;
}
