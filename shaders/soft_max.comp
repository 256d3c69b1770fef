#version 450
// ggml_soft_max_ext on F32: per row, d = softmax(x * scale + slope * mask), optionally with a per-head "sink"
// logit that joins the normalisation but gets no output. One workgroup per row (x + y * numGroups.x).
//   mask (optional, F32 or F16 with MASK_F16): row i1 of mask batch (i2 % m_ne2, i3 % m_ne3).
//   slope (ALiBi, max_bias > 0): head h = i2; 2^(e0 * (h + 1)) for h < n_head_log2, else 2^(e1 * (2(h - n) + 1)),
//     where e0 = log2(m0), e1 = log2(m1) come from the host (m0, m1 as ggml computes them).
//   sinks (optional, F32): sink[i2].
// Three passes: max; exp(v - max) stored in d and summed; d scaled by 1/sum. A logit of -inf gives exactly 0.
// Each element is read and written by the same invocation, so d may alias x (in-place).
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#ifndef NO_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 256;

layout(binding = 0) readonly buffer X { float x[]; };
#ifdef MASK_F16
layout(binding = 1) readonly buffer M { uint16_t mask[]; };
#else
layout(binding = 1) readonly buffer M { float mask[]; };
#endif
layout(binding = 2) readonly buffer S { float sinks[]; };
layout(binding = 3) buffer D { float d[]; };

// Mirrors ops::softmax::SoftMaxPush. Offsets and strides in elements of each binding.
layout(push_constant) uniform Push {
    uint ne0; uint ne1; uint ne2; uint rows;
    uint x_off; uint x_s1; uint x_s2; uint x_s3;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    uint m_off; uint m_s1; uint m_s2; uint m_s3;
    uint m_ne2; uint m_ne3; uint has_mask; uint has_sinks;
    uint s_off; uint s_s0; uint n_head_log2; uint alibi;
    float scale; float e0; float e1; float pad0;
} pc;

shared float red[WG];

#include "row_reduce.glsl"
#include "half_bits.glsl"

#define NEG_INF uintBitsToFloat(0xFF800000u)

float mask_at(uint i) {
#ifdef MASK_F16
    return uintBitsToFloat(half_to_float_bits(uint(mask[i])));
#else
    return mask[i];
#endif
}

void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    // Uniform per workgroup: the barriers of the reductions below stay in uniform control flow.
    if (row >= pc.rows) { return; }
    const uint tid = gl_LocalInvocationID.x;
    const uint i1 = row % pc.ne1;
    const uint i2 = (row / pc.ne1) % pc.ne2;
    const uint i3 = row / (pc.ne1 * pc.ne2);
    const uint xb = pc.x_off + i1 * pc.x_s1 + i2 * pc.x_s2 + i3 * pc.x_s3;
    const uint db = pc.d_off + i1 * pc.d_s1 + i2 * pc.d_s2 + i3 * pc.d_s3;
    const uint mb = pc.m_off + i1 * pc.m_s1 + (i2 % pc.m_ne2) * pc.m_s2 + (i3 % pc.m_ne3) * pc.m_s3;
    float slope = 1.0;
    if (pc.alibi != 0) {
        slope = i2 < pc.n_head_log2 ? exp2(pc.e0 * float(i2 + 1)) : exp2(pc.e1 * float(2 * (i2 - pc.n_head_log2) + 1));
    }
    const bool has_mask = pc.has_mask != 0;

    float mx = NEG_INF;
    for (uint i = tid; i < pc.ne0; i += WG) {
        float v = x[xb + i] * pc.scale;
        if (has_mask) { v += slope * mask_at(mb + i); }
        mx = max(mx, v);
    }
    mx = wg_max(mx);
    float sink = 0.0;
    if (pc.has_sinks != 0) {
        sink = sinks[pc.s_off + i2 * pc.s_s0];
        mx = max(mx, sink);
    }

    float acc = 0.0;
    for (uint i = tid; i < pc.ne0; i += WG) {
        float v = x[xb + i] * pc.scale;
        if (has_mask) { v += slope * mask_at(mb + i); }
        const float e = v == NEG_INF ? 0.0 : exp(v - mx);
        d[db + i] = e;
        acc += e;
    }
    float sum = wg_sum(acc);
    if (pc.has_sinks != 0) { sum += exp(sink - mx); }
    const float inv = 1.0 / sum;
    for (uint i = tid; i < pc.ne0; i += WG) {
        d[db + i] *= inv;
    }
}
