// TQ1_0 (ggml block_tq1_0, 54 bytes = 27 words): qs (48 bytes, five base-3 digits each), qh (4 bytes, four digits
// each), d (f16). Digit n of byte b is ((b * 3^n mod 256) * 3) >> 8; values 0..160 are digit v / 32 of qs[v % 32],
// 160..240 digit (v - 160) / 16 of qs[32 + v % 16], 240..256 digit (v - 240) / 4 of qh[v % 4].
// Value = (digit - 1) * d, as ggml's dequantize_row_tq1_0.
#define DQ_QK 256u
#define DQ_WORDS 27u
#include "dq_iq_common.glsl"

vec4 dq_get4(uint blk, uint i) {
    const uint e = 4u * i;
    uint off;
    uint n;
    if (e < 160u) {
        off = e & 31u;
        n = e >> 5;
    } else if (e < 240u) {
        off = 32u + ((e - 160u) & 15u);
        n = (e - 160u) >> 4;
    } else {
        off = 48u;
        n = (e - 240u) >> 2;
    }
    const uint pow3 = n == 0u ? 1u : (n == 1u ? 3u : (n == 2u ? 9u : (n == 3u ? 27u : 81u)));
    const uint w = dq_k_bytes4(blk, off);
    const uvec4 q = (((uvec4(w) >> DQ_K_LANES) & 0xFFu) * pow3) & 0xFFu;
    return (vec4((q * 3u) >> 8) - 1.0) * dq_k_half(dq_u16(blk + 26u));
}
