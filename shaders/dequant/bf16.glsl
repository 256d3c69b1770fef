// BF16 "dequantization" (the bits shifted up by 16, exact), for the generic kernels; the includer defines
// `uint dq_u16(uint i)`, the i-th 16-bit word of the weights. A "block" is 4 values (4 words), so rows of bf16
// weights need a multiple of 4 elements.
#define DQ_QK 4u
#define DQ_WORDS 4u

vec4 dq_get4(uint blk, uint i) {
    return uintBitsToFloat(uvec4(dq_u16(blk), dq_u16(blk + 1u), dq_u16(blk + 2u), dq_u16(blk + 3u)) << 16);
}
