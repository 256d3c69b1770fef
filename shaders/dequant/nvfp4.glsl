// NVFP4 (ggml block_nvfp4, 36 bytes = 18 words): d (4 UE4M3 bytes, one per 16 values), qs (32 bytes: byte 8s + j
// holds value 16s + j in its low nibble and value 16s + j + 8 in its high one). Value = kvalues_mxfp4[q] * scale,
// with the scale halved to go with the doubled E2M1 table, as ggml's dequantize_row_nvfp4 (ggml_ue4m3_to_fp32).
#define DQ_QK 64u
#define DQ_WORDS 18u
#include "dq_k_common.glsl"

#define DQ_LEVELS_FP4
#include "dq_levels16.glsl"

// ggml_ue4m3_to_fp32: 0 for bytes 0 and 0x7F; exponent field 0: m * 2^-10; else (1 + m/8) * 2^(e - 8) (bit 7 of
// the byte is not read). Built from bits: every result is a normal f32.
float dq_ue4m3_half(uint x) {
    const uint e = (x >> 3) & 0xFu;
    const uint m = x & 7u;
    const float v = e == 0u ? float(m) * 0.0009765625 : uintBitsToFloat(((e + 119u) << 23) | (m << 20));
    return (x == 0u || x == 0x7Fu) ? 0.0 : v;
}

vec4 dq_get4(uint blk, uint i) {
    const uint s = i >> 2;        // sub-block
    const uint j = 4u * (i & 3u); // first value within it, 0 .. 12
    const float d = dq_ue4m3_half(dq_k_byte(blk, s));
    const uint w = dq_k_bytes4(blk, 4u + 8u * s + (j & 7u));
    const uvec4 q = (uvec4(w) >> (DQ_K_LANES + (j >= 8u ? 4u : 0u))) & 0xFu;
    return dq_levels4(q) * d;
}
