// Q4_1 dequantization (ggml's dequantize_row_q4_1), for the generic kernels; the includer defines
// `uint dq_u16(uint i)`, the i-th 16-bit word of the weights.
// Block: 20 bytes = 10 words: [d (f16)] [m (f16)] [qs: 16 bytes as 8 words]; element j < 16 is the low nibble of
// qs[j], element j + 16 the high nibble. Value = code * d + m.
#define DQ_QK 32u
#define DQ_WORDS 10u

vec4 dq_get4(uint blk, uint i) {
    const float d = unpackHalf2x16(dq_u16(blk)).x;
    const float m = unpackHalf2x16(dq_u16(blk + 1u)).x;
    const uint j = (4u * i) & 15u;
    const uint qs = dq_u16(blk + 2u + j / 2u) | (dq_u16(blk + 3u + j / 2u) << 16);
    const uint q = (qs >> (i < 4u ? 0u : 4u)) & 0x0F0F0F0Fu;
    // precise: no fused multiply-add, so the value is ggml's `x*d + m` rounded twice, bit for bit.
    precise const vec4 v = vec4(uvec4(q, q >> 8, q >> 16, q >> 24) & 15u) * d + m;
    return v;
}
