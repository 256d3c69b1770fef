// Correctly rounded f32 division (Vulkan allows OpFDiv 2.5 ulp of error; the CPU backend's divisions are exact).
// a / b rounded to nearest even; overflow gives infinity, subnormal results are exact-rounded too. Special
// operands follow IEEE 754 (tested on the bit patterns, which no fast-math assumption can remove): a NaN
// operand, inf / inf and 0 / 0 give NaN, x / 0 and inf / x give a signed infinity, 0 / x and x / inf a signed
// zero.
#ifndef DIV_RN_GLSL
#define DIV_RN_GLSL
float div_rn(float a, float b) {
    uint ua = floatBitsToUint(a);
    uint ub = floatBitsToUint(b);
    const uint sign = (ua ^ ub) & 0x80000000u;
    ua &= 0x7FFFFFFFu;
    ub &= 0x7FFFFFFFu;
    const uint qnan = 0x7FC00000u;
    if (ua > 0x7F800000u || ub > 0x7F800000u) { return uintBitsToFloat(qnan); }
    if (ua == 0x7F800000u) { return uintBitsToFloat(ub == 0x7F800000u ? qnan : sign | 0x7F800000u); }
    if (ub == 0u) { return uintBitsToFloat(ua == 0u ? qnan : sign | 0x7F800000u); }
    if (ua == 0u || ub == 0x7F800000u) { return uintBitsToFloat(sign); }
    int ea = int(ua >> 23);
    int eb = int(ub >> 23);
    uint ma = ua & 0x7FFFFFu;
    uint mb = ub & 0x7FFFFFu;
    // Significands with the leading one at bit 23 (subnormals normalised), exponents adjusted to match.
    if (ea == 0) { const int s = 23 - findMSB(ma); ma <<= uint(s); ea = 1 - s; } else { ma |= 0x800000u; }
    if (eb == 0) { const int s = 23 - findMSB(mb); mb <<= uint(s); eb = 1 - s; } else { mb |= 0x800000u; }
    int e = ea - eb + 127; // biased exponent of the quotient when ma >= mb
    if (ma < mb) { ma <<= 1u; e -= 1; }
    // 26 quotient bits (1 integer, 25 fraction) plus a sticky remainder.
    uint q = 0u;
    uint r = ma;
    for (int i = 0; i < 26; ++i) {
        q <<= 1u;
        if (r >= mb) { r -= mb; q |= 1u; }
        r <<= 1u;
    }
    if (e >= 255) { return uintBitsToFloat(sign | 0x7F800000u); }
    const int shift = e >= 1 ? 2 : 3 - e;
    if (shift > 27) { return uintBitsToFloat(sign); }
    uint kept = q >> uint(shift);
    const uint rest = q & ((1u << uint(shift)) - 1u);
    const uint halfway = 1u << uint(shift - 1);
    if (rest > halfway || (rest == halfway && (r != 0u || (kept & 1u) != 0u))) { kept += 1u; }
    if (e < 1) { return uintBitsToFloat(sign | kept); } // subnormal (a carry makes it the smallest normal)
    const uint bits = (uint(e - 1) << 23) + kept;       // kept carries the leading one into the exponent
    return uintBitsToFloat(sign | min(bits, 0x7F800000u));
}
#endif // DIV_RN_GLSL
