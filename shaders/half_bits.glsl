// Exact conversions between f32 and the 16-bit float types (f16, bf16) on bit patterns, in integer arithmetic, so
// no driver rounding mode or denormal flushing can change a result (GLSL leaves packHalf2x16's rounding to the
// implementation). Every kernel that must round as ggml's CPU backend does takes them from here.
#ifndef HALF_BITS_GLSL
#define HALF_BITS_GLSL

// f16 bits (low 16 bits of h) -> f32 bits. Exact for every input: subnormal halves become normal floats,
// infinities stay infinite; a NaN keeps its payload (shifted into the top of the f32 mantissa) and comes out
// quiet, as x86's F16C conversion (ggml's CPU path) and `half::f16::to_f32` do.
uint half_to_float_bits(uint h) {
    const uint sign = (h & 0x8000u) << 16;
    const uint e = (h >> 10) & 0x1Fu;
    const uint m = h & 0x3FFu;
    if (e == 0x1Fu) { return sign | 0x7F800000u | (m != 0u ? 0x400000u | (m << 13) : 0u); }
    if (e != 0u) { return sign | ((e + 112u) << 23) | (m << 13); }
    if (m == 0u) { return sign; }
    // Subnormal: m * 2^-24 with the leading one at bit p, i.e. 1.f * 2^(p - 24).
    const uint p = uint(findMSB(m));
    return sign | ((p + 103u) << 23) | ((m << (23u - p)) & 0x7FFFFFu);
}

// f32 bits -> f16 bits, rounding to nearest with ties to even; overflow gives infinity, values below half the
// smallest subnormal give a signed zero, NaN stays NaN (quiet bit set, top payload bits kept).
uint float_bits_to_half(uint f) {
    const uint sign = (f >> 16) & 0x8000u;
    const uint a = f & 0x7FFFFFFFu;
    if (a >= 0x7F800000u) {
        return sign | 0x7C00u | (a > 0x7F800000u ? 0x200u | ((a >> 13) & 0x3FFu) : 0u);
    }
    const int e = int(a >> 23) - 112; // the f16 biased exponent this value would have
    if (e >= 31) { return sign | 0x7C00u; }
    uint mant;
    uint shift;
    if (e > 0) {
        // Normal f16 candidate: keep exponent and the top 10 mantissa bits; the 13 dropped bits round.
        mant = (uint(e) << 10) | ((a >> 13) & 0x3FFu);
        shift = 13u;
        const uint rest = a & 0x1FFFu;
        // Round up above the halfway point, or at it when the kept result is odd. A carry out of the mantissa
        // moves into the exponent, which is right (up to 0x7C00 = infinity).
        if (rest > 0x1000u || (rest == 0x1000u && (mant & 1u) != 0u)) { mant += 1u; }
        return sign | mant;
    }
    // Subnormal f16 (or zero): the significand with its implicit one, shifted right by 14 - e (>= 14).
    shift = uint(14 - e);
    if (shift > 24u) { return sign; }
    const uint sig = (a & 0x7FFFFFu) | 0x800000u;
    mant = sig >> shift;
    const uint rest = sig & ((1u << shift) - 1u);
    const uint half_point = 1u << (shift - 1u);
    if (rest > half_point || (rest == half_point && (mant & 1u) != 0u)) { mant += 1u; }
    return sign | mant;
}

// f32 bits -> bf16 bits as ggml's GGML_FP32_TO_BF16: NaN keeps its top half with the quiet bit set, everything
// else rounds to nearest even (a carry runs into the exponent, overflowing to infinity).
uint float_bits_to_bf16(uint f) {
    if ((f & 0x7FFFFFFFu) > 0x7F800000u) { return (f >> 16) | 64u; }
    return (f + 0x7FFFu + ((f >> 16) & 1u)) >> 16;
}

// x rounded to bf16 as above and widened back (exact).
float round_to_bf16(float x) {
    return uintBitsToFloat(float_bits_to_bf16(floatBitsToUint(x)) << 16);
}

// The same conversions on values: an f16 bit pattern (low 16 bits) to f32, f32 to its f16 bit pattern.
float half_to_float(uint h) {
    return uintBitsToFloat(half_to_float_bits(h));
}

uint float_to_half(float f) {
    return float_bits_to_half(floatBitsToUint(f));
}
#endif // HALF_BITS_GLSL
