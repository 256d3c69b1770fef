// TQ2_0 (ggml block_tq2_0, 66 bytes = 33 words): qs (64 bytes, 2-bit codes: byte m of each 32-byte group holds
// values m, m + 32, m + 64, m + 96 of the group's 128), d (f16). Value = (q - 1) * d, as ggml's
// dequantize_row_tq2_0.
#define DQ_QK 256u
#define DQ_WORDS 33u
#include "dq_iq_common.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint e = 4u * i;
    const uint w = dq_k_bytes4(blk, 32u * (e >> 7) + (e & 31u));
    const uvec4 q = (uvec4(w) >> (DQ_K_LANES + 2u * ((e >> 5) & 3u))) & 3u;
    return (vec4(q) - 1.0) * dq_k_half(dq_u16(blk + 32u));
}
