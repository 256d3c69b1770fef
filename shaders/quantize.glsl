// Quantize 32 floats into one ggml block written as 16-bit words at d[w..], exactly like ggml's CPU backend
// (the from_float its SET_ROWS and CPY use):
//   Q8_0 (17 words): quantize_row_q8_0 of ggml's x86 (AVX/AVX2) build: d = amax / 127, codes
//                    round-half-to-even(x * (127 / amax)), saturated to int8. (The scalar
//                    quantize_row_q8_0_ref, mirrored by src/quant, uses 1 / d and roundf: codes differ at ties,
//                    frequent with F16 sources, and test-backend-ops compares against the x86 path.)
//   Q4_0 (9 words):  quantize_row_q4_0_ref (ggml's CPU calls it on every architecture): d = max / -8 with max
//                    the first value of largest magnitude (sign kept), codes min(15, (int8)(x * (1 / d) + 8.5));
//                    byte j holds element j (low nibble) and j + 16.
// The scale is computed in f32 and stored rounded to f16 (nearest, ties to even); `precise` keeps the driver
// from fusing x * id + 8.5 into one fma (the reference rounds the product first).
// Needs elementwise.glsl (float_to_half) and a `uint16_t d[]` buffer.

// C's (int8_t) of a float in int range (what the reference's casts see): truncation, then the low byte.
uint cast_i8_bits(float v) {
    return uint(int(v)) & 0xFFu;
}

#ifdef DST_Q8_0
#define BLOCK_WORDS 17u
void quantize_block(float x[32], uint w) {
    float amax = 0.0;
    for (uint i = 0u; i < 32u; ++i) {
        const float a = abs(x[i]);
        amax = amax > a ? amax : a;
    }
    precise const float dd = amax / 127.0;
    precise const float id = amax != 0.0 ? 127.0 / amax : 0.0;
    d[w] = uint16_t(float_to_half(dd));
    for (uint j = 0u; j < 16u; ++j) {
        precise const float v0 = x[2u * j] * id;
        precise const float v1 = x[2u * j + 1u] * id;
        const uint c0 = uint(clamp(int(roundEven(v0)), -128, 127)) & 0xFFu;
        const uint c1 = uint(clamp(int(roundEven(v1)), -128, 127)) & 0xFFu;
        d[w + 1u + j] = uint16_t(c0 | (c1 << 8));
    }
}
#endif

#ifdef DST_Q4_0
#define BLOCK_WORDS 9u
uint q4_code(float v, float id) {
    precise const float t = v * id + 8.5;
    return min(15u, cast_i8_bits(t));
}

void quantize_block(float x[32], uint w) {
    float amax = 0.0;
    float mx = 0.0;
    for (uint i = 0u; i < 32u; ++i) {
        if (amax < abs(x[i])) {
            amax = abs(x[i]);
            mx = x[i];
        }
    }
    precise const float dd = mx / -8.0;
    precise const float id = dd != 0.0 ? 1.0 / dd : 0.0;
    d[w] = uint16_t(float_to_half(dd));
    for (uint k = 0u; k < 8u; ++k) {
        const uint j = 2u * k;
        const uint b0 = q4_code(x[j], id) | (q4_code(x[j + 16u], id) << 4);
        const uint b1 = q4_code(x[j + 1u], id) | (q4_code(x[j + 17u], id) << 4);
        d[w + 1u + k] = uint16_t(b0 | (b1 << 8));
    }
}
#endif
