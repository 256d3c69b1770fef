#version 450
#extension GL_EXT_control_flow_attributes : enable
// Row norms on F32, per row of x (dim 0); spec constant 1 OP picks the ggml op:
//   0 RMS_NORM (ggml_rms_norm): d = x / sqrt(mean(x^2) + eps)
//   1 NORM     (ggml_norm):     d = (x - mean) / sqrt(mean((x - mean)^2) + eps)
//   2 L2_NORM  (ggml_l2_norm):  d = x / max(sqrt(sum(x^2)), eps)
// One workgroup per row (x + y * numGroups.x linearised); rows and elements may be anywhere (strides per dim).
// Reads x again for the output, so d may alias x (in-place): each element is read and written by the same
// invocation, and nothing is written before the last read of x.
// Spec constant 2 SLICES (FUSE_MUL kernels; the host sets it only where d and mo do not overlap x and ne0 is a
// multiple of SLICES times the quantized block): SLICES workgroups per row, each reducing the whole row and
// writing the outputs of its ne0 / SLICES elements (a short row's output spread over several SMs).
#ifndef NO_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint OP = 0;
layout(constant_id = 2) const uint SLICES = 1;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
layout(binding = 1) writeonly buffer D4 { vec4 d4[]; };
#ifdef FUSE_MUL
// RMS_NORM fused with the MUL by one row of weights that follows it (src/graph/fusion.rs): the norm's output is
// still written to d, and its product with w to mo (laid out as d; may be d itself).
layout(binding = 2) readonly buffer W { float w[]; };
layout(binding = 2) readonly buffer W4 { vec4 w4[]; };
layout(binding = 3) writeonly buffer MO { float mo[]; };
layout(binding = 3) writeonly buffer MO4 { vec4 mo4[]; };
#endif
#ifdef FUSE_ADD
// The ADD of the product and another tensor that follows (src/graph/fusion.rs, rms_norm_mul_add; gemma's post-norms
// and their residuals): so[i] = product + a[i], both laid out as d, from floats pc.q_off (a) and pc.pad2 (so).
#if !defined(FUSE_MUL) || defined(EMIT_QX) || defined(EMIT_Q8K)
#error "FUSE_ADD is a variant of the FUSE_MUL kernels without a quantized copy"
#endif
layout(binding = 4) readonly buffer A { float a[]; };
layout(binding = 5) writeonly buffer SO { float so[]; };
#endif
#ifdef EMIT_F16
// The product also written as packed f16 for the prompt products on cooperative matrices (narrow_f16.comp's copy,
// rounded to nearest even as it rounds): row r's values from word pc.q_off + r * ne0 / 2, two a word. Needs
// FUSE_MUL, ne0 even and slices of whole pairs (the host checks).
#if !defined(FUSE_MUL) || defined(FUSE_ADD) || defined(EMIT_QX) || defined(EMIT_Q8K)
#error "EMIT_F16 is a variant of the FUSE_MUL kernel"
#endif
layout(binding = 4) writeonly buffer H16 { uint h16[]; };
layout(binding = 4) writeonly buffer H16x2 { uvec2 h16x2[]; };
#include "half_bits.glsl"
uint half_pair(float lo, float hi) { return float_to_half(lo) | (float_to_half(hi) << 16); }
#endif
#if defined(EMIT_QX) || defined(EMIT_Q8K)
// The product also written quantized for the integer-dot products that read it (emit_q8.glsl): row r's blocks
// from word pc.q_off + r * (ne0 / EQ_BLOCK) * EQ_WORDS. Needs FUSE_MUL and ne0 a multiple of the block.
layout(binding = 4) writeonly buffer Q8Out { uint q8out[]; };
#define EMIT_Q8
#endif

// Mirrors ops::norm::NormPush. Offsets and strides in floats.
layout(push_constant) uniform Push {
    uint ne0; uint ne1; uint ne2; uint rows;
    uint x_off; uint x_s1; uint x_s2; uint x_s3;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    float eps; uint x_s0; uint d_s0; uint pad0;
#ifdef FUSE_MUL
    uint w_off; uint m_off; uint q_off; uint pad2;
#endif
} pc;

shared float red[WG];

#include "row_reduce.glsl"
#ifdef EMIT_Q8
#ifndef NO_SUBGROUPS
#define EQ_SUBGROUPS
#endif
#include "half_bits.glsl"
#include "div_rn.glsl"
#include "emit_q8.glsl"
#endif

void main() {
    const uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    const uint row = wg / SLICES;
    // The elements [first, first + span) of the row whose outputs this workgroup writes.
    const uint span = pc.ne0 / SLICES;
    const uint first = (wg % SLICES) * span;
    // Uniform per workgroup: the barriers of the reductions below stay in uniform control flow.
    if (row >= pc.rows) { return; }
    const uint tid = gl_LocalInvocationID.x;
    const uint i1 = row % pc.ne1;
    const uint i2 = (row / pc.ne1) % pc.ne2;
    const uint i3 = row / (pc.ne1 * pc.ne2);
    const uint xb = pc.x_off + i1 * pc.x_s1 + i2 * pc.x_s2 + i3 * pc.x_s3;
    const uint db = pc.d_off + i1 * pc.d_s1 + i2 * pc.d_s2 + i3 * pc.d_s3;

    // Packed rows on 16-byte boundaries are read four values a load (uniform per dispatch row); the outputs too
    // where d (and mo, w) are packed and aligned the same way and the slice starts and ends on such a boundary.
    // The sums depend on the row's layout only, never on SLICES: a sliced fused norm sums in the same order as
    // the plain one, so both write the same bytes.
    const bool x_vec = pc.x_s0 == 1u && (xb & 3u) == 0u && (pc.ne0 & 3u) == 0u;
    const bool slice_vec = x_vec && ((first | span) & 3u) == 0u;
#ifdef FUSE_MUL
    const uint mb = pc.m_off + i1 * pc.d_s1 + i2 * pc.d_s2 + i3 * pc.d_s3;
    const bool out_vec = slice_vec && pc.d_s0 == 1u && ((db | mb | pc.w_off) & 3u) == 0u;
#else
    const bool out_vec = slice_vec && pc.d_s0 == 1u && (db & 3u) == 0u;
#endif

    float mean = 0.0;
    if (OP == 1u) {
        float s = 0.0;
        if (x_vec) {
            for (uint i = tid; i < pc.ne0 / 4u; i += WG) {
                const vec4 v = x4[xb / 4u + i];
                s += (v.x + v.y) + (v.z + v.w);
            }
        } else {
            for (uint i = tid; i < pc.ne0; i += WG) {
                s += x[xb + i * pc.x_s0];
            }
        }
        mean = wg_sum(s) / float(pc.ne0);
    }
    float acc = 0.0;
    if (x_vec) {
        for (uint i = tid; i < pc.ne0 / 4u; i += WG) {
            const vec4 v = x4[xb / 4u + i] - mean;
            acc += dot(v, v);
        }
    } else {
        for (uint i = tid; i < pc.ne0; i += WG) {
            const float v = x[xb + i * pc.x_s0] - mean;
            acc += v * v;
        }
    }
    const float sum = wg_sum(acc);
    float scale;
    if (OP == 2u) {
        scale = 1.0 / max(sqrt(sum), pc.eps);
    } else {
        scale = 1.0 / sqrt(sum / float(pc.ne0) + pc.eps);
    }
#ifdef EMIT_Q8
    // Four consecutive elements per invocation, EQ_TPB invocations per block, WG / EQ_TPB blocks per trip (the
    // trip count is uniform: the barriers in emit_q8_block stay in uniform control flow).
    const uint nblk = span / EQ_BLOCK;
    const uint qrow = pc.q_off + (row * (pc.ne0 / EQ_BLOCK) + first / EQ_BLOCK) * EQ_WORDS;
    for (uint b0 = 0u; b0 < nblk; b0 += WG / EQ_TPB) {
        const uint blk = b0 + tid / EQ_TPB;
        const bool live = blk < nblk;
        vec4 y = vec4(0.0);
        if (live && out_vec) {
            const uint i = first + blk * EQ_BLOCK + (tid % EQ_TPB) * 4u;
            const vec4 v = (x4[(xb + i) / 4u] - mean) * scale;
            d4[(db + i) / 4u] = v;
            y = v * w4[(pc.w_off + i) / 4u];
            mo4[(mb + i) / 4u] = y;
        } else if (live) {
            [[unroll]] for (uint j = 0u; j < 4u; ++j) {
                const uint i = first + blk * EQ_BLOCK + (tid % EQ_TPB) * 4u + j;
                const float v = (x[xb + i * pc.x_s0] - mean) * scale;
                d[db + i * pc.d_s0] = v;
                y[j] = v * w[pc.w_off + i];
                mo[mb + i * pc.d_s0] = y[j];
            }
        }
        emit_q8_block(y, live, qrow + blk * EQ_WORDS);
    }
#else
#ifdef EMIT_F16
    // The f16 copy's words of this row (ne0 / 2 a row; a multiple of 2 where out_vec holds: ne0 % 4 == 0).
    const uint hrow = pc.q_off + row * (pc.ne0 / 2u);
#endif
#ifndef FUSE_ADD
    if (out_vec) {
        for (uint i = first / 4u + tid; i < (first + span) / 4u; i += WG) {
            const vec4 v = (x4[xb / 4u + i] - mean) * scale;
            d4[db / 4u + i] = v;
#ifdef FUSE_MUL
            const vec4 y = v * w4[pc.w_off / 4u + i];
            mo4[mb / 4u + i] = y;
#ifdef EMIT_F16
            h16x2[hrow / 2u + i] = uvec2(half_pair(y.x, y.y), half_pair(y.z, y.w));
#endif
#endif
        }
        return;
    }
#endif
#ifdef EMIT_F16
    // Other layouts: a pair of values per invocation and trip (first and span are even).
    for (uint i = first + 2u * tid; i < first + span; i += 2u * WG) {
        float y[2];
        [[unroll]] for (uint j = 0u; j < 2u; ++j) {
            const float v = (x[xb + (i + j) * pc.x_s0] - mean) * scale;
            d[db + (i + j) * pc.d_s0] = v;
            y[j] = v * w[pc.w_off + i + j];
            mo[mb + (i + j) * pc.d_s0] = y[j];
        }
        h16[hrow + i / 2u] = half_pair(y[0], y[1]);
    }
    return;
#endif
    for (uint i = first + tid; i < first + span; i += WG) {
        const float v = (x[xb + i * pc.x_s0] - mean) * scale;
        d[db + i * pc.d_s0] = v;
#ifdef FUSE_MUL
        const float m = v * w[pc.w_off + i];
        mo[mb + i * pc.d_s0] = m;
#endif
#ifdef FUSE_ADD
        const uint k = i1 * pc.d_s1 + i2 * pc.d_s2 + i3 * pc.d_s3 + i * pc.d_s0;
        so[pc.pad2 + k] = m + a[pc.q_off + k];
#endif
    }
#endif
}
