// Word 1 of the 10-word 8-bit activation blocks (quantize_q8_1.comp, emit_q8.glsl's EMIT_QX): the block's sum of
// codes as a signed 16-bit value in the low half (|sum| <= 32 * 127), and ggml Q8_1's s = f16(d * sum) in the high
// half, d being max|x| / 127 before its f16 rounding, as the CPU's quantize_row_q8_1 stores it for the Q4_1 / Q5_1
// dot products (m * s; a reader takes d * sum in f32 where s overflowed f16, and the CPU's term would be inf or
// NaN). Writers include half_bits.glsl first.
#ifndef QX_BLOCK_GLSL
#define QX_BLOCK_GLSL

#ifdef QX_WRITE
uint qx_sum_word(int sum, float d) {
    precise const float s = float(sum) * d;
    return (uint(sum) & 0xFFFFu) | (float_bits_to_half(floatBitsToUint(s)) << 16);
}
#endif

int qx_sum(uint w) { return int(w << 16) >> 16; }
#endif // QX_BLOCK_GLSL
