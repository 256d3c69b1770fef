// The 16 levels a 4-bit code indexes (ggml's kvalues_iq4nl for IQ4_NL / IQ4_XS, kvalues_mxfp4 for MXFP4 and
// NVFP4), for the generic dequantizing kernels, kept in shared memory as the IQ grids are: a constant array indexed
// by a per-invocation code is read per element through constant or local memory by some compilers. The includer
// defines DQ_LV0 .. DQ_LV3, the levels as four vec4s; DQ_INIT() (every invocation, at the start of main) writes
// them and waits at a barrier.
#ifndef DQ_LEVELS16_GLSL
#define DQ_LEVELS16_GLSL

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
