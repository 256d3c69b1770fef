#version 450
// Matrix x vector: d[row] = sum_k A[row, k] * b[k], for NROWS rows of A per workgroup and one b column,
// batched over z (b/dst batches i12 + i13*ne12; A batch i12/r2, i13/r3 as ggml broadcasts).
// Each thread walks blocks of 32 k-values strided by the workgroup size; the x values of a block are
// loaded once and reused for every row. Partial sums are reduced with subgroupAdd (or shared memory).
#include "common.glsl"
#ifndef NO_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 3) const uint NROWS = 2;
// b's offset and batch strides are multiples of 4 floats: read x as vec4.
layout(constant_id = 4) const bool B_VEC4 = false;

#if defined(A_F32)
layout(binding = 0) readonly buffer A { float a[]; };
#else
layout(binding = 0) readonly buffer A { uint16_t a[]; };
#endif
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 1) readonly buffer B4 { vec4 b4[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

MATMUL_PUSH

shared float red[NROWS * WG];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    const uint row0 = group * NROWS;
    const uint z = gl_WorkGroupID.z;
    const uint i12 = z % pc.ne12;
    const uint i13 = z / pc.ne12;
    const uint a_base = pc.a_off + (i12 / pc.r2) * pc.a_s2 + (i13 / pc.r3) * pc.a_s3;
    const uint b_base = pc.b_off + i12 * pc.b_s2 + i13 * pc.b_s3;

    float acc[NROWS];
    [[unroll]] for (uint r = 0; r < NROWS; ++r) { acc[r] = 0.0; }
    // Rows past the end read row m-1 (in bounds) and are not written.
    uint rbase[NROWS];
    [[unroll]] for (uint r = 0; r < NROWS; ++r) { rbase[r] = a_base + min(row0 + r, pc.m - 1) * pc.a_row; }

#if defined(A_Q4_0) || defined(A_Q8_0)
    const uint nblocks = pc.k / QK;
    for (uint blk = tid; blk < nblocks; blk += WG) {
        vec4 x[8];
        const uint kb = b_base + blk * QK;
        if (B_VEC4) {
            [[unroll]] for (uint i = 0; i < 8; ++i) { x[i] = b4[kb / 4 + i]; }
        } else {
            [[unroll]] for (uint i = 0; i < 8; ++i) {
                x[i] = vec4(b[kb + 4 * i], b[kb + 4 * i + 1], b[kb + 4 * i + 2], b[kb + 4 * i + 3]);
            }
        }
#if defined(A_Q4_0)
        // Word j of qs holds bytes 2j, 2j+1: elements 2j, 2j+1 (low nibbles) and 2j+16, 2j+17 (high).
        float sumx = 0.0;
        [[unroll]] for (uint i = 0; i < 8; ++i) { sumx += x[i].x + x[i].y + x[i].z + x[i].w; }
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
            const uint base = rbase[r] + blk * Q4_0_WORDS;
            float s = 0.0;
            [[unroll]] for (uint j = 0; j < 8; ++j) {
                const uint w = uint(a[base + 1 + j]);
                const vec2 lo = (j & 1) == 0 ? x[j >> 1].xy : x[j >> 1].zw;
                const vec2 hi = (j & 1) == 0 ? x[4 + (j >> 1)].xy : x[4 + (j >> 1)].zw;
                s += dot(vec4(float(w & 15u), float((w >> 8) & 15u), float((w >> 4) & 15u), float(w >> 12)),
                         vec4(lo, hi));
            }
            acc[r] += f16_bits_to_float(a[base]) * (s - 8.0 * sumx);
        }
#else
        // Word j of qs holds signed bytes 2j, 2j+1.
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
            const uint base = rbase[r] + blk * Q8_0_WORDS;
            float s = 0.0;
            [[unroll]] for (uint j = 0; j < 16; ++j) {
                const uint w = uint(a[base + 1 + j]);
                const vec2 xx = (j & 1) == 0 ? x[j >> 1].xy : x[j >> 1].zw;
                s += dot(vec2(float(lo_i8(w)), float(hi_i8(w))), xx);
            }
            acc[r] += f16_bits_to_float(a[base]) * s;
        }
#endif
    }
#else
    for (uint kk = tid; kk < pc.k; kk += WG) {
        const float xv = b[b_base + kk];
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
#if defined(A_F32)
            acc[r] += a[rbase[r] + kk] * xv;
#else
            acc[r] += f16_bits_to_float(a[rbase[r] + kk]) * xv;
#endif
        }
    }
#endif

    const uint d_base = pc.d_off + i12 * pc.d_s2 + i13 * pc.d_s3;
#ifndef NO_SUBGROUPS
    [[unroll]] for (uint r = 0; r < NROWS; ++r) {
        const float s = subgroupAdd(acc[r]);
        if (subgroupElect()) { red[r * WG + gl_SubgroupID] = s; }
    }
    barrier();
    if (tid < NROWS && row0 + tid < pc.m) {
        float t = 0.0;
        for (uint i = 0; i < gl_NumSubgroups; ++i) { t += red[tid * WG + i]; }
        d[d_base + row0 + tid] = t;
    }
#else
    [[unroll]] for (uint r = 0; r < NROWS; ++r) { red[r * WG + tid] = acc[r]; }
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) {
            [[unroll]] for (uint r = 0; r < NROWS; ++r) { red[r * WG + tid] += red[r * WG + tid + s]; }
        }
        barrier();
    }
    if (tid < NROWS && row0 + tid < pc.m) { d[d_base + row0 + tid] = red[tid * WG]; }
#endif
}
