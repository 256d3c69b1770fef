// MXFP4 (ggml block_mxfp4, 17 bytes: e (E8M0), qs (16 bytes, byte j holding value j in its low nibble and value
// j + 16 in its high one)). A 17-byte block does not start on a 16-bit word, so the unit here is a pair of blocks:
// 64 values in 34 bytes = 17 words (rows of a multiple of 64 values; ggvk's support checks require it).
// Value = kvalues_mxfp4[q] * 2^(e - 128), as ggml's dequantize_row_mxfp4 (GGML_E8M0_TO_FP32_HALF).
#define DQ_QK 64u
#define DQ_WORDS 17u
#include "dq_iq_common.glsl"
#include "e8m0.glsl"

#define DQ_LEVELS_FP4
#include "dq_levels16.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint base = 17u * (i >> 3);
    const uint j = (4u * i) & 31u;
    const uint e = dq_k_byte(blk, base);
    const float d = e8m0_half(e);
    const uint off = base + 1u + (j & 15u);
    const uint sh = j >= 16u ? 4u : 0u;
    const uvec4 q = (uvec4(dq_k_byte(blk, off), dq_k_byte(blk, off + 1u), dq_k_byte(blk, off + 2u),
                           dq_k_byte(blk, off + 3u)) >> sh) & 0xFu;
    return dq_levels4(q) * d;
}
