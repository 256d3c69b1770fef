// Quantize 32 floats into one ggml block written as 16-bit words at d[w..], exactly like ggml's CPU backend
// (the from_float its SET_ROWS and CPY use):
//   Q8_0 (17 words):   quantize_row_q8_0 of ggml's x86 (AVX/AVX2) build: d = amax / 127, codes
//                      round-half-to-even(x * (127 / amax)), saturated to int8. (The scalar
//                      quantize_row_q8_0_ref, mirrored by src/quant, uses 1 / d and roundf: codes differ at ties,
//                      frequent with F16 sources, and test-backend-ops compares against the x86 path.)
//   Q4_0 (9 words):    quantize_row_q4_0_ref (ggml's CPU calls it on every architecture): d = max / -8 with max
//                      the first value of largest magnitude (sign kept), codes min(15, (int8)(x * (1 / d) + 8.5));
//                      byte j holds element j (low nibble) and j + 16.
//   Q4_1 (10 words):   quantize_row_q4_1_ref: d = (max - min) / 15, m = min, codes min(15, (int8)((x - min) / d
//                      + 0.5)) with 1 / d from the f32 d.
//   Q5_0 (11 words):   quantize_row_q5_0_ref: d = max / -16 (signed max as Q4_0), codes min(31, (int8)(x * (1 / d)
//                      + 16.5)); low nibbles as Q4_0, fifth bits in the 32-bit word qh (bit j = element j).
//   Q5_1 (12 words):   quantize_row_q5_1_ref: d = (max - min) / 31, m = min, codes (uint8)((x - min) * (1 / d)
//                      + 0.5), packed as Q5_0.
//   IQ4_NL (9 words):  quantize_row_iq4_nl_ref: the level of kvalues_iq4nl nearest x / (max / -127) per value, then
//                      d = sum(w q x) / sum(w q q) with w = x * x (one least-squares refit, no scale search).
// Scales are computed in f32 and stored rounded to f16 (nearest, ties to even). Divisions go through div_rn
// (correctly rounded, as the CPU's; Vulkan allows OpFDiv 2.5 ulp), and `precise` keeps the driver from fusing
// a product and a sum into one fma (the reference rounds the product first).
// Needs elementwise.glsl (float_to_half) and a `uint16_t d[]` buffer.
#include "div_rn.glsl"

// C's (int8_t) of a float in int range (what the reference's casts see): truncation, then the low byte.
uint cast_i8_bits(float v) {
    return uint(int(v)) & 0xFFu;
}

// The first value of largest magnitude, sign kept (ggml's `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`).
float signed_max(float x[32]) {
    float amax = 0.0;
    float mx = 0.0;
    for (uint i = 0u; i < 32u; ++i) {
        if (amax < abs(x[i])) {
            amax = abs(x[i]);
            mx = x[i];
        }
    }
    return mx;
}

#ifdef DST_Q8_0
#define BLOCK_WORDS 17u
void quantize_block(float x[32], uint w) {
    float amax = 0.0;
    for (uint i = 0u; i < 32u; ++i) {
        const float a = abs(x[i]);
        amax = amax > a ? amax : a;
    }
    const float dd = div_rn(amax, 127.0);
    const float id = amax != 0.0 ? div_rn(127.0, amax) : 0.0;
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
    const float mx = signed_max(x);
    const float dd = div_rn(mx, -8.0);
    const float id = dd != 0.0 ? div_rn(1.0, dd) : 0.0;
    d[w] = uint16_t(float_to_half(dd));
    for (uint k = 0u; k < 8u; ++k) {
        const uint j = 2u * k;
        const uint b0 = q4_code(x[j], id) | (q4_code(x[j + 16u], id) << 4);
        const uint b1 = q4_code(x[j + 1u], id) | (q4_code(x[j + 17u], id) << 4);
        d[w + 1u + k] = uint16_t(b0 | (b1 << 8));
    }
}
#endif

#if defined(DST_Q4_1) || defined(DST_Q5_1)
// The scale and minimum of a block with `levels` steps (ggml's Q4_1 / Q5_1: min and max from FLT_MAX / -FLT_MAX,
// d = (max - min) / levels, 1 / d from the f32 d), stored as f16 d and m at words w, w + 1; returns 1 / d and the
// f32 minimum.
void store_scale_min(float x[32], float levels, uint w, out float id, out float mn) {
    mn = uintBitsToFloat(0x7F7FFFFFu);
    float mx = -mn;
    for (uint i = 0u; i < 32u; ++i) {
        if (x[i] < mn) { mn = x[i]; }
        if (x[i] > mx) { mx = x[i]; }
    }
    precise const float range = mx - mn;
    const float dd = div_rn(range, levels);
    id = dd != 0.0 ? div_rn(1.0, dd) : 0.0;
    d[w] = uint16_t(float_to_half(dd));
    d[w + 1u] = uint16_t(float_to_half(mn));
}
#endif

#if defined(DST_Q5_0) || defined(DST_Q5_1)
// Low nibbles of codes c[0..31] into qs words at w (byte j = c[j] | c[j + 16] << 4) and their fifth bits into the
// 32-bit qh at words wh, wh + 1.
void store_q5(uint c[32], uint wh, uint w) {
    uint qh = 0u;
    for (uint j = 0u; j < 32u; ++j) {
        qh |= ((c[j] >> 4) & 1u) << j;
    }
    d[wh] = uint16_t(qh & 0xFFFFu);
    d[wh + 1u] = uint16_t(qh >> 16);
    for (uint k = 0u; k < 8u; ++k) {
        const uint j = 2u * k;
        const uint b0 = (c[j] & 15u) | ((c[j + 16u] & 15u) << 4);
        const uint b1 = (c[j + 1u] & 15u) | ((c[j + 17u] & 15u) << 4);
        d[w + k] = uint16_t(b0 | (b1 << 8));
    }
}
#endif

#ifdef DST_Q4_1
#define BLOCK_WORDS 10u
uint q4_1_code(float v, float mn, float id) {
    precise const float t = (v - mn) * id;
    precise const float u = t + 0.5;
    return min(15u, cast_i8_bits(u));
}

void quantize_block(float x[32], uint w) {
    float id, mn;
    store_scale_min(x, 15.0, w, id, mn);
    for (uint k = 0u; k < 8u; ++k) {
        const uint j = 2u * k;
        const uint b0 = q4_1_code(x[j], mn, id) | (q4_1_code(x[j + 16u], mn, id) << 4);
        const uint b1 = q4_1_code(x[j + 1u], mn, id) | (q4_1_code(x[j + 17u], mn, id) << 4);
        d[w + 2u + k] = uint16_t(b0 | (b1 << 8));
    }
}
#endif

#ifdef DST_Q5_0
#define BLOCK_WORDS 11u
void quantize_block(float x[32], uint w) {
    const float mx = signed_max(x);
    const float dd = div_rn(mx, -16.0);
    const float id = dd != 0.0 ? div_rn(1.0, dd) : 0.0;
    d[w] = uint16_t(float_to_half(dd));
    uint c[32];
    for (uint j = 0u; j < 32u; ++j) {
        precise const float t = x[j] * id + 16.5;
        c[j] = min(31u, cast_i8_bits(t));
    }
    store_q5(c, w + 1u, w + 3u);
}
#endif

#ifdef DST_Q5_1
#define BLOCK_WORDS 12u
void quantize_block(float x[32], uint w) {
    float id, mn;
    store_scale_min(x, 31.0, w, id, mn);
    uint c[32];
    for (uint j = 0u; j < 32u; ++j) {
        precise const float t = (x[j] - mn) * id;
        precise const float u = t + 0.5;
        c[j] = uint(u) & 0xFFu; // C's (uint8_t) of a value in [0.5, 31.5]
    }
    store_q5(c, w + 2u, w + 4u);
}
#endif

#ifdef DST_IQ4_NL
#define BLOCK_WORDS 9u
const float KVALUES_IQ4NL[16] = float[16](-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                          1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);

// ggml's best_index_int8 over the table: the nearest level (ties go to the upper one).
uint iq4nl_best_index(float x) {
    if (x <= KVALUES_IQ4NL[0]) { return 0u; }
    if (x >= KVALUES_IQ4NL[15]) { return 15u; }
    uint ml = 0u;
    uint mu = 15u;
    while (mu - ml > 1u) {
        const uint mav = (ml + mu) / 2u;
        if (x < KVALUES_IQ4NL[mav]) { mu = mav; } else { ml = mav; }
    }
    precise const float below = x - KVALUES_IQ4NL[mu - 1u];
    precise const float above = KVALUES_IQ4NL[mu] - x;
    return below < above ? mu - 1u : mu;
}

void quantize_block(float x[32], uint w) {
    const float mx = signed_max(x);
    const float amax = abs(mx);
    uint c[32];
    float dd = 0.0;
    if (amax >= 1e-15) {
        const float d0 = div_rn(mx, -127.0);
        const float id = div_rn(1.0, d0);
        precise float sumqx = 0.0;
        precise float sumq2 = 0.0;
        for (uint j = 0u; j < 32u; ++j) {
            precise const float al = id * x[j];
            c[j] = iq4nl_best_index(al);
            const float q = KVALUES_IQ4NL[c[j]];
            precise const float wq = (x[j] * x[j]) * q;
            sumqx = sumqx + wq * x[j];
            sumq2 = sumq2 + wq * q;
        }
        dd = sumq2 > 0.0 ? div_rn(sumqx, sumq2) : 0.0;
    } else {
        for (uint j = 0u; j < 32u; ++j) { c[j] = 8u; }
    }
    d[w] = uint16_t(float_to_half(dd));
    for (uint k = 0u; k < 8u; ++k) {
        const uint j = 2u * k;
        const uint b0 = c[j] | (c[j + 16u] << 4);
        const uint b1 = c[j + 1u] | (c[j + 17u] << 4);
        d[w + 1u + k] = uint16_t(b0 | (b1 << 8));
    }
}
#endif
