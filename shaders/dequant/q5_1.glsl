// Q5_1 dequantization (ggml's dequantize_row_q5_1), for the generic kernels; the includer defines
// `uint dq_u16(uint i)`, the i-th 16-bit word of the weights.
// Block: 24 bytes = 12 words: [d (f16)] [m (f16)] [qh: 2 words, a little-endian u32] [qs: 16 bytes as 8 words].
// Codes packed as in Q5_0. Value = code * d + m.
#define DQ_QK 32u
#define DQ_WORDS 12u

vec4 dq_get4(uint blk, uint i) {
    const float d = unpackHalf2x16(dq_u16(blk)).x;
    const float m = unpackHalf2x16(dq_u16(blk + 1u)).x;
    const uint qh = dq_u16(blk + 2u) | (dq_u16(blk + 3u) << 16);
    const uint j = (4u * i) & 15u;
    const uint qs = dq_u16(blk + 4u + j / 2u) | (dq_u16(blk + 5u + j / 2u) << 16);
    const uint lo = (qs >> (i < 4u ? 0u : 4u)) & 0x0F0F0F0Fu;
    const uint hi = (qh >> (4u * i)) & 15u;
    const uvec4 code = (uvec4(lo, lo >> 8, lo >> 16, lo >> 24) & 15u) | (((uvec4(hi) >> uvec4(0u, 1u, 2u, 3u)) & 1u) << 4);
    // precise: no fused multiply-add, so the value is ggml's `x*d + m` rounded twice, bit for bit.
    precise const vec4 v = vec4(code) * d + m;
    return v;
}
