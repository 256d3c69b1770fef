// K/V cache rows of the types llama.cpp offers for its cache (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// IQ4_NL), read through 16-bit words; the type is a runtime code (T_*). Shared by the kernels that read K or V
// rows element by element (flash_attn.comp, lightning_indexer.comp). The includer includes common.glsl first and
// instantiates ROW_AT(name, buffer) for each 16-bit-word buffer it reads.
#include "kv_types.glsl"

const float IQ4NL_LEVELS[16] = float[16](-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                         1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);

// Element i of the row starting at 16-bit word `base`, dequantized as ggml's dequantize_row_<type> (f32
// products in its order; `precise` keeps code * d + m from fusing). `drop_m` leaves out the block minimum of
// Q4_1 / Q5_1 (flash attention adds the minimums' share per block instead). The T_* codes mirror
// ops::flash_attn::kv_type_code.
#define ROW_AT(NAME, BUF)                                                                 \
    float NAME(uint ty, uint base, uint i, bool drop_m) {                                 \
        if (ty == T_F16) { return f16_bits_to_float(BUF[base + i]); }                     \
        if (ty == T_BF16) { return uintBitsToFloat(uint(BUF[base + i]) << 16); }          \
        if (ty == T_F32) {                                                                \
            return uintBitsToFloat(uint(BUF[base + 2u * i]) | (uint(BUF[base + 2u * i + 1u]) << 16)); \
        }                                                                                 \
        const uint b = i / QK;                                                            \
        const uint j = i % QK;                                                            \
        if (ty == T_Q8_0) {                                                               \
            const uint bw = base + b * Q8_0_WORDS;                                        \
            const uint w = uint(BUF[bw + 1u + j / 2u]);                                   \
            return f16_bits_to_float(BUF[bw]) * float((j & 1u) != 0u ? hi_i8(w) : lo_i8(w)); \
        }                                                                                 \
        const uint jj = j & 15u;                                                          \
        const uint sh = 8u * (jj & 1u) + (j < 16u ? 0u : 4u);                             \
        if (ty == T_Q4_0 || ty == T_IQ4_NL) {                                             \
            const uint bw = base + b * Q4_0_WORDS;                                        \
            const uint nib = (uint(BUF[bw + 1u + jj / 2u]) >> sh) & 15u;                  \
            const float dd = f16_bits_to_float(BUF[bw]);                                  \
            return ty == T_Q4_0 ? dd * (float(nib) - 8.0) : dd * IQ4NL_LEVELS[nib];       \
        }                                                                                 \
        if (ty == T_Q4_1) {                                                               \
            const uint bw = base + b * 10u;                                               \
            const uint nib = (uint(BUF[bw + 2u + jj / 2u]) >> sh) & 15u;                  \
            precise const float v = float(nib) * f16_bits_to_float(BUF[bw]) + (drop_m ? 0.0 : f16_bits_to_float(BUF[bw + 1u])); \
            return v;                                                                     \
        }                                                                                 \
        const bool has_m = ty == T_Q5_1;                                                  \
        const uint bw = base + b * (has_m ? 12u : 11u);                                   \
        const uint hw = bw + (has_m ? 2u : 1u);                                           \
        const uint qh = uint(BUF[hw]) | (uint(BUF[hw + 1u]) << 16);                       \
        const uint code = ((uint(BUF[hw + 2u + jj / 2u]) >> sh) & 15u) | (((qh >> j) & 1u) << 4); \
        const float dd = f16_bits_to_float(BUF[bw]);                                      \
        if (has_m) {                                                                      \
            precise const float v = float(code) * dd + (drop_m ? 0.0 : f16_bits_to_float(BUF[bw + 1u])); \
            return v;                                                                     \
        }                                                                                 \
        return float(int(code) - 16) * dd;                                                \
    }
