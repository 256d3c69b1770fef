// Quantize QUANT_QK floats (32; 128 for Q1_0, 64 for Q2_0 and NVFP4) into one ggml block written as 16-bit words
// at d[w..], exactly like ggml's CPU backend (the from_float its SET_ROWS and CPY use):
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
//   Q1_0 (9 words):    quantize_row_q1_0_ref: d = sum |x| / 128 (summed in element order), bit j % 8 of byte j / 8
//                      set where x >= 0 (-0 included, NaN not).
//   Q2_0 (9 words):    quantize_row_q2_0_ref: d = max |x|, codes (int)roundf(x * (1 / d)) + 1 clamped to 0..3
//                      (roundf: half away from zero; x86's (int) of NaN or of |v| >= 2^31 is INT_MIN: code 0);
//                      bits 2 (j % 4) of byte j / 4.
//   NVFP4 (18 words):  quantize_row_nvfp4_ref: per 16 values a UE4M3 scale byte ggml_fp32_to_ue4m3(max |x| / 6),
//                      then per value the first of the nearest levels kvalues_mxfp4[i] * scale (best_index_mxfp4);
//                      byte 8 s + j holds values 16 s + j (low nibble) and 16 s + j + 8.
// Scales are computed in f32 and stored rounded to f16 (nearest, ties to even). Divisions go through div_rn
// (correctly rounded, as the CPU's; Vulkan allows OpFDiv 2.5 ulp), and `precise` keeps the driver from fusing
// a product and a sum into one fma (the reference rounds the product first).
// Needs elementwise.glsl (float_to_half) and a `uint16_t d[]` buffer.
#include "q8_grid.glsl"

#if defined(DST_Q1_0)
#define QUANT_QK 128u
#elif defined(DST_Q2_0) || defined(DST_NVFP4)
#define QUANT_QK 64u
#else
#define QUANT_QK 32u
#endif

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
    const float id = q8_inv_scale(amax);
    d[w] = uint16_t(float_to_half(q8_scale(amax)));
    for (uint j = 0u; j < 16u; ++j) {
        const uint c0 = uint(q8_code(x[2u * j], id)) & 0xFFu;
        const uint c1 = uint(q8_code(x[2u * j + 1u], id)) & 0xFFu;
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

#ifdef DST_Q1_0
#define BLOCK_WORDS 9u
void quantize_block(float x[QUANT_QK], uint w) {
    precise float sum_abs = 0.0;
    for (uint i = 0u; i < 128u; ++i) {
        sum_abs = sum_abs + abs(x[i]);
    }
    d[w] = uint16_t(float_to_half(div_rn(sum_abs, 128.0)));
    // qs word k: values 16 k .. 16 k + 15 at bits 0..15.
    for (uint k = 0u; k < 8u; ++k) {
        uint bits = 0u;
        for (uint b = 0u; b < 16u; ++b) {
            // x >= 0 on the bits: +0 .. +inf and -0 (a NaN compares false in ggml's test).
            const uint u = floatBitsToUint(x[16u * k + b]);
            if (u <= 0x7F800000u || u == 0x80000000u) {
                bits |= 1u << b;
            }
        }
        d[w + 1u + k] = uint16_t(bits);
    }
}
#endif

#ifdef DST_Q2_0
#define BLOCK_WORDS 9u
// (int)roundf(v) + 1 clamped to 0..3, with x86's conversion: NaN, infinities and |v| >= 2^31 give INT_MIN (code 0).
uint q2_code(float v) {
    if ((floatBitsToUint(v) & 0x7FFFFFFFu) >= 0x4F000000u) {
        return 0u;
    }
    // roundf: half away from zero (GLSL's round may go either way on halves); v - trunc(v) is exact.
    const float t = trunc(v);
    const float r = abs(v - t) >= 0.5 ? t + sign(v) : t;
    return uint(clamp(int(r) + 1, 0, 3));
}

void quantize_block(float x[QUANT_QK], uint w) {
    float amax = 0.0;
    for (uint i = 0u; i < 64u; ++i) {
        const float a = abs(x[i]);
        if (a > amax) {
            amax = a;
        }
    }
    const float id = amax > 0.0 ? div_rn(1.0, amax) : 0.0;
    d[w] = uint16_t(float_to_half(amax));
    // qs word k: values 8 k .. 8 k + 7, two bits each.
    for (uint k = 0u; k < 8u; ++k) {
        uint bits = 0u;
        for (uint b = 0u; b < 8u; ++b) {
            precise const float v = x[8u * k + b] * id;
            bits |= q2_code(v) << (2u * b);
        }
        d[w + 1u + k] = uint16_t(bits);
    }
}
#endif

#ifdef DST_NVFP4
#define BLOCK_WORDS 18u
const float FP4_LEVELS[16] = float[16](0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0,
                                       0.0, -1.0, -2.0, -3.0, -4.0, -6.0, -8.0, -12.0);

// ggml_fp32_to_ue4m3 on the bits: 0 unless x > 0; x clamped to 448; below 2^-6 the subnormal (int)(x * 512 + 0.5)
// clamped to 1..7 (0 below 1); else the exponent rebiased to 7 and 3 mantissa bits rounded on the first dropped
// one (half up; a carry bumps the exponent), 0x7E from exponent 15 on.
uint ue4m3_from(float x) {
    const uint u = floatBitsToUint(x);
    if (u == 0u || u > 0x7F800000u) {
        return 0u; // +0, NaN, negatives
    }
    const uint b = min(u, 0x43E00000u); // positive floats order as their bits: min(x, 448)
    const int e = int(b >> 23) - 120;
    if (e <= 0) {
        precise const float t = uintBitsToFloat(b) * 512.0 + 0.5;
        const uint m = uint(t);
        return m < 1u ? 0u : min(m, 7u);
    }
    if (e >= 15) {
        return 0x7Eu;
    }
    uint m = ((b >> 20) & 7u) + ((b >> 19) & 1u);
    uint ex = uint(e);
    if (m > 7u) {
        m = 0u;
        ex += 1u;
        if (ex >= 15u) {
            return 0x7Eu;
        }
    }
    return (ex << 3) | m;
}

// ggml_ue4m3_to_fp32 (half the scale, for the doubled table); as shaders/dequant/nvfp4.glsl.
float ue4m3_half(uint x) {
    const uint e = (x >> 3) & 0xFu;
    const uint m = x & 7u;
    const float v = e == 0u ? float(m) * 0.0009765625 : uintBitsToFloat(((e + 119u) << 23) | (m << 20));
    return (x == 0u || x == 0x7Fu) ? 0.0 : v;
}

// best_index_mxfp4: the first code of least |level * e - x| (level * e is exact; NaN keeps code 0).
uint fp4_best(float x, float e) {
    uint best = 0u;
    precise float best_err = abs(FP4_LEVELS[0] * e - x);
    for (uint i = 1u; i < 16u; ++i) {
        precise const float err = abs(FP4_LEVELS[i] * e - x);
        if (err < best_err) {
            best = i;
            best_err = err;
        }
    }
    return best;
}

void quantize_block(float x[QUANT_QK], uint w) {
    uint scales[4];
    for (uint s = 0u; s < 4u; ++s) {
        float amax = 0.0;
        for (uint j = 0u; j < 16u; ++j) {
            const float a = abs(x[16u * s + j]);
            if (amax < a) {
                amax = a;
            }
        }
        scales[s] = ue4m3_from(div_rn(amax, 6.0));
        const float e = ue4m3_half(scales[s]);
        // qs bytes 8 s .. 8 s + 7 = words 2 + 4 s .. 2 + 4 s + 3; byte 8 s + j: values 16 s + j, 16 s + j + 8.
        for (uint k = 0u; k < 4u; ++k) {
            const uint j = 16u * s + 2u * k;
            const uint b0 = fp4_best(x[j], e) | (fp4_best(x[j + 8u], e) << 4);
            const uint b1 = fp4_best(x[j + 1u], e) | (fp4_best(x[j + 9u], e) << 4);
            d[w + 2u + 4u * s + k] = uint16_t(b0 | (b1 << 8));
        }
    }
    d[w] = uint16_t(scales[0] | (scales[1] << 8));
    d[w + 1u] = uint16_t(scales[2] | (scales[3] << 8));
}
#endif
