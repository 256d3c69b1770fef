#version 450
// ggml_soft_max_ext on F32: per row, d = softmax(x * scale + slope * mask), optionally with a per-head "sink"
// logit that joins the normalisation but gets no output. One workgroup per row (x + y * numGroups.x).
//   mask (optional, F32 or F16 with MASK_F16): row i1 of mask batch (i2 % m_ne2, i3 % m_ne3).
//   slope (ALiBi, max_bias > 0): head h = i2; 2^(e0 * (h + 1)) for h < n_head_log2, else 2^(e1 * (2(h - n) + 1)),
//     where e0 = log2(m0), e1 = log2(m1) come from the host (m0, m1 as ggml computes them).
//   sinks (optional, F32): sink[i2].
// Three passes: max; exp(v - max) summed; the values scaled by 1/sum. A logit of -inf gives exactly 0. Rows of at
// most WG x CACHE values keep each invocation's values in registers between the passes (x read once, d written
// once); longer rows keep exp(v - max) in d between the second and third pass. Either way invocation t takes
// elements t, t + WG, ... in that order, so both give the same bytes. Each element is read and written by the
// same invocation, so d may alias x (in-place).
// EMIT (constant 1): the row's probabilities also as f16 (rounded to nearest even, as narrow_f16.comp rounds) into
// binding 4 at half h_word * 2 + row * ne0: the packed copy the product after this node reads (d contiguous).
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_control_flow_attributes : require
#ifndef NO_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint EMIT = 0;
// Values per invocation kept in registers (rows of at most WG x CACHE values).
layout(constant_id = 2) const uint CACHE = 16;
// VEC4 (constant 3, rows of at most WG x CACHE x 4 values): invocation t takes the groups of four values t, t + WG,
// ... (16-byte loads and stores; ne0 a multiple of 4, x's and d's offsets and strides multiples of 4 floats,
// h_word even). Another assignment of values to invocations than the scalar kernel's, so other roundings of the
// sums; rows longer than that take the scalar loop through memory.
layout(constant_id = 3) const uint VEC4 = 0;

layout(binding = 0) readonly buffer X { float x[]; };
#ifdef MASK_F16
layout(binding = 1) readonly buffer M { uint16_t mask[]; };
#else
layout(binding = 1) readonly buffer M { float mask[]; };
#endif
layout(binding = 2) readonly buffer S { float sinks[]; };
layout(binding = 3) buffer D { float d[]; };
layout(binding = 4) writeonly buffer H { uint16_t h16[]; };
layout(binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(binding = 3) writeonly buffer D4 { vec4 d4[]; };
layout(binding = 4) writeonly buffer H2 { uvec2 h2[]; };

// Mirrors ops::softmax::SoftMaxPush. Offsets and strides in elements of each binding.
layout(push_constant) uniform Push {
    uint ne0; uint ne1; uint ne2; uint rows;
    uint x_off; uint x_s1; uint x_s2; uint x_s3;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    uint m_off; uint m_s1; uint m_s2; uint m_s3;
    uint m_ne2; uint m_ne3; uint has_mask; uint has_sinks;
    uint s_off; uint s_s0; uint n_head_log2; uint alibi;
    float scale; float e0; float e1; uint h_word;
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

// exp(v - mx), exactly 0 for a logit of -inf.
float expd(const float v, const float mx) { return v == NEG_INF ? 0.0 : exp(v - mx); }

// The row's maximum over the workgroup's partial maxima `mx`, the head's sink logit joining it where there are sinks.
float row_max(const float mx, const float sink) {
    const float m = wg_max(mx);
    return pc.has_sinks != 0 ? max(m, sink) : m;
}

// 1 / the row's sum over the workgroup's partial sums `acc`, the sink's share joining it where there are sinks.
float row_inv(const float acc, const float mx, const float sink) {
    float sum = wg_sum(acc);
    if (pc.has_sinks != 0) { sum += exp(sink - mx); }
    return 1.0 / sum;
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
    const float sink = pc.has_sinks != 0 ? sinks[pc.s_off + i2 * pc.s_s0] : 0.0;

    const uint hb = pc.h_word * 2u + row * pc.ne0;
    float mx = NEG_INF;
    if (VEC4 != 0 && pc.ne0 <= WG * CACHE * 4u) {
        vec4 vals[CACHE];
        [[unroll]] for (uint k = 0; k < CACHE; ++k) {
            const uint c = tid + k * WG;
            vec4 v = vec4(NEG_INF);
            if (4u * c < pc.ne0) {
                v = x4[(xb >> 2) + c] * pc.scale;
                if (has_mask) {
                    const uint m = mb + 4u * c;
                    v += slope * vec4(mask_at(m), mask_at(m + 1u), mask_at(m + 2u), mask_at(m + 3u));
                }
                mx = max(mx, max(max(v.x, v.y), max(v.z, v.w)));
            }
            vals[k] = v;
        }
        mx = row_max(mx, sink);
        float acc = 0.0;
        [[unroll]] for (uint k = 0; k < CACHE; ++k) {
            if (4u * (tid + k * WG) < pc.ne0) {
                const vec4 v = vals[k];
                const vec4 e = vec4(expd(v.x, mx), expd(v.y, mx), expd(v.z, mx), expd(v.w, mx));
                vals[k] = e;
                acc += (e.x + e.y) + (e.z + e.w);
            }
        }
        const float inv = row_inv(acc, mx, sink);
        [[unroll]] for (uint k = 0; k < CACHE; ++k) {
            const uint c = tid + k * WG;
            if (4u * c < pc.ne0) {
                const vec4 p = vals[k] * inv;
                d4[(db >> 2) + c] = p;
                if (EMIT != 0) {
                    h2[(hb >> 2) + c] = uvec2(float_to_half(p.x) | (float_to_half(p.y) << 16),
                                              float_to_half(p.z) | (float_to_half(p.w) << 16));
                }
            }
        }
        return;
    }
    if (pc.ne0 <= WG * CACHE) {
        float vals[CACHE];
        [[unroll]] for (uint k = 0; k < CACHE; ++k) {
            const uint i = tid + k * WG;
            float v = NEG_INF;
            if (i < pc.ne0) {
                v = x[xb + i] * pc.scale;
                if (has_mask) { v += slope * mask_at(mb + i); }
                mx = max(mx, v);
            }
            vals[k] = v;
        }
        mx = row_max(mx, sink);
        float acc = 0.0;
        [[unroll]] for (uint k = 0; k < CACHE; ++k) {
            if (tid + k * WG < pc.ne0) {
                const float e = expd(vals[k], mx);
                vals[k] = e;
                acc += e;
            }
        }
        const float inv = row_inv(acc, mx, sink);
        [[unroll]] for (uint k = 0; k < CACHE; ++k) {
            const uint i = tid + k * WG;
            if (i < pc.ne0) {
                const float p = vals[k] * inv;
                d[db + i] = p;
                if (EMIT != 0) { h16[hb + i] = uint16_t(float_to_half(p)); }
            }
        }
        return;
    }
    for (uint i = tid; i < pc.ne0; i += WG) {
        float v = x[xb + i] * pc.scale;
        if (has_mask) { v += slope * mask_at(mb + i); }
        mx = max(mx, v);
    }
    mx = row_max(mx, sink);

    float acc = 0.0;
    for (uint i = tid; i < pc.ne0; i += WG) {
        float v = x[xb + i] * pc.scale;
        if (has_mask) { v += slope * mask_at(mb + i); }
        const float e = expd(v, mx);
        d[db + i] = e;
        acc += e;
    }
    const float inv = row_inv(acc, mx, sink);
    for (uint i = tid; i < pc.ne0; i += WG) {
        const float p = d[db + i] * inv;
        d[db + i] = p;
        if (EMIT != 0) { h16[hb + i] = uint16_t(float_to_half(p)); }
    }
}
