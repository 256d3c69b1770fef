#version 450
// ggml_set_rows: row (i, i02, i03) of src0 is written, converted, into dst row (idx[i, i02 % ne11, i03 % ne12],
// i02, i03). Indices are I32, or I64 (IDX_64 in the push constants: low word, then high word). An index outside
// [0, ne1) writes nothing (ggml asserts). x = column chunks of WG elements (looping), y + z * numGroups.y =
// source row (i + ne01 * (i02 + ne02 * i03)). Everything moves as bit patterns, so copies are bit-exact and
// f32 -> f16 rounds to nearest even exactly like half::f16::from_f32 (ggml's F16C path).
//   SRC_F16: src0 is F16 (else F32). DST_F16: dst is F16 (else F32).
//   DST_Q8_0 / DST_Q4_0 (src0 F32): dst rows are blocks of 32 (16-bit words), one thread per block, quantized
//   as ggml's CPU backend does (its from_float for the type, x86 build):
//     Q8_0: d = max|x| / 127, codes round(x * (127 / max|x|)) to nearest even; d stored as f16.
//     Q4_0: max = first value of largest magnitude, d = max / -8, codes min(15, trunc(x * (1 / d) + 8.5)).
#include "common.glsl"
#include "half_bits.glsl"

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
const uint WG = 256;

#if defined(SRC_F16)
layout(binding = 0) readonly buffer A { uint16_t a[]; };
#else
layout(binding = 0) readonly buffer A { uint a[]; };
#endif
layout(binding = 1) readonly buffer I { uint idx[]; };
#if defined(DST_F16) || defined(DST_Q8_0) || defined(DST_Q4_0)
layout(binding = 2) writeonly buffer D { uint16_t d[]; };
#else
layout(binding = 2) writeonly buffer D { uint d[]; };
#endif

// Mirrors ops::rows::SetRowsPush. Offsets and strides in units of each binding (indices: 32-bit words).
layout(push_constant) uniform Push {
    uint ne00; uint ne01; uint ne02; uint ne1;
    uint a_off; uint a_s1; uint a_s2; uint a_s3;
    uint i_off; uint i_s0; uint i_s1; uint i_s2;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    uint rows; uint ne11; uint ne12; uint idx64;
} pc;

void main() {
    const uint row = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    if (row >= pc.rows) { return; }
    const uint i = row % pc.ne01;
    const uint i02 = (row / pc.ne01) % pc.ne02;
    const uint i03 = row / (pc.ne01 * pc.ne02);
    const uint p = pc.i_off + i * pc.i_s0 + (i02 % pc.ne11) * pc.i_s1 + (i03 % pc.ne12) * pc.i_s2;
    const uint lo = idx[p];
    // I64: in range only if the high word is 0 (non-negative, below 2^32) and the low word is below ne1.
    const bool valid = (pc.idx64 != 0u ? idx[p + 1u] == 0u : int(lo) >= 0) && lo < pc.ne1;
    if (!valid) { return; }
    const uint ab = pc.a_off + i * pc.a_s1 + i02 * pc.a_s2 + i03 * pc.a_s3;
    const uint db = pc.d_off + lo * pc.d_s1 + i02 * pc.d_s2 + i03 * pc.d_s3;
#if defined(DST_Q8_0) || defined(DST_Q4_0)
    for (uint blk = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x; blk < pc.ne00 / QK; blk += WG * gl_NumWorkGroups.x) {
        float x[32];
        float amax = 0.0;
        float mx = 0.0;
        [[unroll]] for (uint j = 0u; j < QK; ++j) {
            x[j] = uintBitsToFloat(a[ab + blk * QK + j]);
            if (amax < abs(x[j])) { amax = abs(x[j]); mx = x[j]; }
        }
#if defined(DST_Q8_0)
        const uint o = db + blk * Q8_0_WORDS;
        const float dd = amax / 127.0;
        const float id = amax != 0.0 ? 127.0 / amax : 0.0;
        d[o] = uint16_t(float_bits_to_half(floatBitsToUint(dd)));
        [[unroll]] for (uint j = 0u; j < QK; j += 2u) {
            precise float v0 = x[j] * id;
            precise float v1 = x[j + 1u] * id;
            const uint q0 = uint(int(roundEven(v0))) & 0xFFu;
            const uint q1 = uint(int(roundEven(v1))) & 0xFFu;
            d[o + 1u + j / 2u] = uint16_t(q0 | (q1 << 8));
        }
#else
        const uint o = db + blk * Q4_0_WORDS;
        const float dd = mx / -8.0;
        const float id = dd != 0.0 ? 1.0 / dd : 0.0;
        d[o] = uint16_t(float_bits_to_half(floatBitsToUint(dd)));
        uint codes[32];
        [[unroll]] for (uint j = 0u; j < QK; ++j) {
            precise float v = x[j] * id;
            precise float w = v + 8.5;
            codes[j] = uint(min(15, clamp(int(w), -128, 127)));
        }
        [[unroll]] for (uint j = 0u; j < 16u; j += 2u) {
            const uint b0 = codes[j] | (codes[j + 16u] << 4);
            const uint b1 = codes[j + 1u] | (codes[j + 17u] << 4);
            d[o + 1u + j / 2u] = uint16_t(b0 | (b1 << 8));
        }
#endif
    }
#else
    for (uint c = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x; c < pc.ne00; c += WG * gl_NumWorkGroups.x) {
#if defined(SRC_F16) && defined(DST_F16)
        d[db + c] = a[ab + c];
#elif defined(SRC_F16)
        d[db + c] = half_to_float_bits(uint(a[ab + c]));
#elif defined(DST_F16)
        d[db + c] = uint16_t(float_bits_to_half(a[ab + c]));
#else
        d[db + c] = a[ab + c];
#endif
    }
#endif
}
