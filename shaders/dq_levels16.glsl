// The 16 levels a 4-bit code indexes (ggml's kvalues_iq4nl for IQ4_NL / IQ4_XS, kvalues_mxfp4 for MXFP4 and
// NVFP4), for the generic dequantizing kernels, kept in shared memory as the IQ grids are: a constant array indexed
// by a per-invocation code is read per element through constant or local memory by some compilers. The includer
// defines DQ_LEVELS_IQ4NL or DQ_LEVELS_FP4 (which table); DQ_INIT() (every invocation, at the start of main) writes
// it and waits at a barrier.
#ifndef DQ_LEVELS16_GLSL
#define DQ_LEVELS16_GLSL

#if defined(DQ_LEVELS_IQ4NL)
#define DQ_LV0 vec4(-127.0, -104.0, -83.0, -65.0)
#define DQ_LV1 vec4(-49.0, -35.0, -22.0, -10.0)
#define DQ_LV2 vec4(1.0, 13.0, 25.0, 38.0)
#define DQ_LV3 vec4(53.0, 69.0, 89.0, 113.0)
#elif defined(DQ_LEVELS_FP4)
#define DQ_LV0 vec4(0.0, 1.0, 2.0, 3.0)
#define DQ_LV1 vec4(4.0, 6.0, 8.0, 12.0)
#define DQ_LV2 vec4(0.0, -1.0, -2.0, -3.0)
#define DQ_LV3 vec4(-4.0, -6.0, -8.0, -12.0)
#else
#error "define DQ_LEVELS_IQ4NL or DQ_LEVELS_FP4"
#endif

shared float dq_levels16[16];

void dq_levels16_init() {
    const uint t = gl_LocalInvocationIndex;
    if (t < 4u) {
        const vec4 v = t == 0u ? DQ_LV0 : (t == 1u ? DQ_LV1 : (t == 2u ? DQ_LV2 : DQ_LV3));
        dq_levels16[4u * t] = v.x;
        dq_levels16[4u * t + 1u] = v.y;
        dq_levels16[4u * t + 2u] = v.z;
        dq_levels16[4u * t + 3u] = v.w;
    }
    barrier();
}
#define DQ_INIT dq_levels16_init

// The levels of four codes.
vec4 dq_levels4(uvec4 q) { return vec4(dq_levels16[q.x], dq_levels16[q.y], dq_levels16[q.z], dq_levels16[q.w]); }

#endif // DQ_LEVELS16_GLSL
