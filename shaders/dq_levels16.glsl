// The 16 levels a 4-bit code indexes (ggml's kvalues_iq4nl for IQ4_NL / IQ4_XS, kvalues_mxfp4 for MXFP4 and
// NVFP4), for the generic dequantizing kernels, kept in shared memory as the IQ grids are: a constant array indexed
// by a per-invocation code is read per element through constant or local memory by some compilers. The includer
// defines DQ_LEVELS_IQ4NL or DQ_LEVELS_FP4 (which table); DQ_INIT() (every invocation, at the start of main) writes
// it and waits at a barrier.
#ifndef DQ_LEVELS16_GLSL
#define DQ_LEVELS16_GLSL

#include "levels16.glsl"
#if defined(DQ_LEVELS_IQ4NL)
#define DQ_LEVELS LEVELS16_IQ4NL
#elif defined(DQ_LEVELS_FP4)
#define DQ_LEVELS LEVELS16_FP4
#else
#error "define DQ_LEVELS_IQ4NL or DQ_LEVELS_FP4"
#endif

shared float dq_levels16[16];

void dq_levels16_init() {
    for (uint t = gl_LocalInvocationIndex; t < 16u; t += LEVELS16_WG) { dq_levels16[t] = float(DQ_LEVELS[t]); }
    barrier();
}
#define DQ_INIT dq_levels16_init

// The levels of four codes.
vec4 dq_levels4(uvec4 q) { return vec4(dq_levels16[q.x], dq_levels16[q.y], dq_levels16[q.z], dq_levels16[q.w]); }

#endif // DQ_LEVELS16_GLSL
