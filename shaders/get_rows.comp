#version 450
// ggml_get_rows: dst row (i10, i11, i12) = row idx[i10, i11, i12] of src0 batch (i11, i12), converted to f32
// (SRC_F32 also serves I32 -> I32: a bit copy). An index outside [0, ne01) gives a row of zeros (ggml asserts).
// x = column chunks of WG elements (looping when there are more than the dispatch holds), y + z * numGroups.y =
// dst row (i10 + ne10 * (i11 + ne11 * i12)). dst is written as raw 32-bit words, so copies are bit-exact.
//   SRC_F32: src0 as 32-bit words. SRC_F16: 16-bit words, converted exactly.
//   SRC_Q4_0 / SRC_Q8_0: 16-bit words, blocks of 9 / 17 words (see common.glsl), value = q * d.
//   SRC_DQ: 16-bit words of any type with a dequantization include ("dq_type.glsl", chosen by build.rs); each
//   thread writes 4 consecutive values (one dq_get4 chunk; ne00 is a multiple of 4).
#include "common.glsl"
#include "half_bits.glsl"

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
const uint WG = 256;

#if defined(SRC_F32)
layout(binding = 0) readonly buffer A { uint a[]; };
#else
layout(binding = 0) readonly buffer A { uint16_t a[]; };
#endif
layout(binding = 1) readonly buffer I { int idx[]; };
layout(binding = 2) writeonly buffer D { uint d[]; };

// Mirrors ops::rows::GetRowsPush. Offsets and strides in units of each binding (src0: 32- or 16-bit words).
layout(push_constant) uniform Push {
    uint ne00; uint ne01; uint ne10; uint ne11;
    uint a_off; uint a_s1; uint a_s2; uint a_s3;
    uint i_off; uint i_s0; uint i_s1; uint i_s2;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    uint rows; uint pad0; uint pad1; uint pad2;
} pc;

#ifdef SRC_DQ
uint dq_u16(uint i) { return uint(a[i]); }
#include "dq_type.glsl"
#else
uint load_bits(uint base, uint c) {
#if defined(SRC_F32)
    return a[base + c];
#elif defined(SRC_F16)
    return half_to_float_bits(uint(a[base + c]));
#elif defined(SRC_Q4_0)
    const uint blk = base + (c / QK) * Q4_0_WORDS;
    const uint j = c % QK;
    const uint k = j & 15u; // byte k of qs: element k (low nibble) and element k + 16 (high nibble)
    const uint byte = (uint(a[blk + 1u + k / 2u]) >> (8u * (k & 1u))) & 0xFFu;
    const uint q = j < 16u ? (byte & 15u) : (byte >> 4);
    const float dscale = uintBitsToFloat(half_to_float_bits(uint(a[blk])));
    return floatBitsToUint(float(int(q) - 8) * dscale);
#elif defined(SRC_Q8_0)
    const uint blk = base + (c / QK) * Q8_0_WORDS;
    const uint j = c % QK;
    const uint w = uint(a[blk + 1u + j / 2u]);
    const int q = (j & 1u) != 0u ? hi_i8(w) : lo_i8(w);
    const float dscale = uintBitsToFloat(half_to_float_bits(uint(a[blk])));
    return floatBitsToUint(float(q) * dscale);
#endif
}
#endif

void main() {
#ifdef DQ_INIT
    // Grid or level tables into shared memory (IQ, MXFP4 and NVFP4 types; every invocation, before any return).
    DQ_INIT();
#endif
    const uint row = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    if (row >= pc.rows) { return; }
    const uint i10 = row % pc.ne10;
    const uint i11 = (row / pc.ne10) % pc.ne11;
    const uint i12 = row / (pc.ne10 * pc.ne11);
    const int r = idx[pc.i_off + i10 * pc.i_s0 + i11 * pc.i_s1 + i12 * pc.i_s2];
    const bool valid = r >= 0 && uint(r) < pc.ne01;
    const uint ab = pc.a_off + (valid ? uint(r) : 0u) * pc.a_s1 + i11 * pc.a_s2 + i12 * pc.a_s3;
    const uint db = pc.d_off + i10 * pc.d_s1 + i11 * pc.d_s2 + i12 * pc.d_s3;
#ifdef SRC_DQ
    for (uint c = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x; c < pc.ne00 / 4u; c += WG * gl_NumWorkGroups.x) {
        const uint e = 4u * c;
        const uvec4 v = valid ? floatBitsToUint(dq_get4(ab + (e / DQ_QK) * DQ_WORDS, (e % DQ_QK) / 4u)) : uvec4(0u);
        [[unroll]] for (uint t = 0; t < 4; ++t) { d[db + e + t] = v[t]; }
    }
#else
    for (uint c = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x; c < pc.ne00; c += WG * gl_NumWorkGroups.x) {
        d[db + c] = valid ? load_bits(ab, c) : 0u;
    }
#endif
}
