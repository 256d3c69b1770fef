// Table-coded 4-bit weights on integer dot products: each code indexes a 16-entry table of signed 8-bit levels
// (ggml's kvalues_iq4nl for IQ4_NL / IQ4_XS with LUT_IQ4NL, kvalues_mxfp4 for MXFP4 with LUT_MXFP4), kept in
// shared memory as bytes. The includer calls lut_init() from every invocation before reading (it holds a barrier).
#ifndef LEVEL_LUT_GLSL
#define LEVEL_LUT_GLSL

#include "levels16.glsl"
#if defined(LUT_IQ4NL)
#define LUT_LEVELS LEVELS16_IQ4NL
#elif defined(LUT_MXFP4)
#define LUT_LEVELS LEVELS16_FP4
#else
#error "define LUT_IQ4NL or LUT_MXFP4"
#endif

shared uint lut[16];

void lut_init() {
    for (uint t = gl_LocalInvocationIndex; t < 16u; t += LEVELS16_WG) { lut[t] = uint(LUT_LEVELS[t]) & 0xFFu; }
    barrier();
}

// The levels of four codes (the low nibbles of bytes 0..3 of n) as four 8-bit lanes.
uint lut_bytes(uint n) {
    return lut[n & 15u] | (lut[(n >> 8) & 15u] << 8) | (lut[(n >> 16) & 15u] << 16) | (lut[n >> 24] << 24);
}

#endif // LEVEL_LUT_GLSL
