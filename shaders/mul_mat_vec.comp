#version 450
// Matrix x vector(s): d[c, row] = sum_k A[row, k] * b[c, k], for NROWS rows of A per workgroup and NCOLS columns
// of b (a few tokens at once read the weights once),
// batched over z (b/dst batches i12 + i13*ne12; A batch i12/r2, i13/r3 as ggml broadcasts).
// Quantized weights: four threads per 32-value block, blocks strided by WG/4; a thread's x values are loaded
// once and reused for every row. Float weights (F32, F16, and BF16 rows whose length is not a multiple of 4,
// which the generic kernel's 4-value chunks cannot take): one k per thread, strided by WG. Partial sums are reduced with subgroupAdd (or shared memory).
// FUSE_ROPE (one column, integer-dot paths): the rows also go through the rope / K-V cache epilogue of
// matvec_rope.glsl (the rope and SET_ROWS that follow a token's Q, K and V products, in the same dispatch).
#include "common.glsl"
#ifdef INT_DOT
#extension GL_EXT_integer_dot_product : require
#endif
#ifndef NO_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 3) const uint NROWS = 2;
// b's offset and batch strides are multiples of 4 floats: read x as vec4.
layout(constant_id = 4) const bool B_VEC4 = false;
// Blocks per thread per loop trip (quantized weights): all of a trip's loads can be in flight at once.
layout(constant_id = 5) const uint UNROLL = 2;
// Columns of b (and dst) per dispatch; WG >= NROWS * NCOLS.
layout(constant_id = 6) const uint NCOLS = 1;

#if defined(A_F32)
layout(binding = 0) readonly buffer A { float a[]; };
#else
layout(binding = 0) readonly buffer A { uint16_t a[]; };
#endif
#ifdef INT_DOT
// x quantized by quantize_q8_1.comp: 10 words per 32-value block ([d] [sum q] [8 words of q]).
layout(binding = 1) readonly buffer BQ { uint bq[]; };
#else
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 1) readonly buffer B4 { vec4 b4[]; };
#endif
layout(binding = 2) writeonly buffer D { float d[]; };
#ifdef FUSE_ADD
// The ADD that follows the product (graph/fusion.rs): out[row] = d[row] + addend[row] for one column, offsets in
// floats in pc.pad0 (addend) and pc.pad1 (out); d is still written.
layout(binding = 3) readonly buffer FA { float addend[]; };
layout(binding = 4) writeonly buffer FO { float fused_out[]; };
#endif

#ifdef FUSE_ROPE
#include "matvec_rope.glsl"
#else
MATMUL_PUSH
#endif
#ifdef MUL_MAT_ID
#include "mul_mat_id.glsl"
#endif

shared float red[NCOLS * NROWS * WG];

void main() {
#ifdef FUSE_ROPE
    matvec_rope_prologue();
#endif
    const uint tid = gl_LocalInvocationID.x;
    const uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    const uint row0 = group * NROWS;
    const uint z = gl_WorkGroupID.z;
    const uint i12 = z % pc.ne12;
    const uint i13 = z / pc.ne12;
#ifdef MUL_MAT_ID
    // A pair whose expert lies outside this dispatch's experts is another dispatch's (see mul_mat_id.glsl).
    const uint expert = expert_of(i12, i13);
    if (expert >= pc.pad1) { return; }
    const uint a_base = pc.a_off + expert * pc.a_s2;
#else
    const uint a_base = pc.a_off + (i12 / pc.r2) * pc.a_s2 + (i13 / pc.r3) * pc.a_s3;
#endif
    const uint b_base = pc.b_off + i12 * pc.b_s2 + i13 * pc.b_s3;

    // acc[c * NROWS + r]: column c, row r.
    float acc[NCOLS * NROWS];
    [[unroll]] for (uint i = 0; i < NCOLS * NROWS; ++i) { acc[i] = 0.0; }
    // Rows past the end read row m-1 (in bounds) and are not written.
    uint rbase[NROWS];
    [[unroll]] for (uint r = 0; r < NROWS; ++r) { rbase[r] = a_base + min(row0 + r, pc.m - 1) * pc.a_row; }

#if defined(A_Q4_0) || defined(A_Q8_0)
    // Four threads share a block, each taking a quarter of it, so a subgroup reads consecutive blocks
    // (coalesced 16-bit loads); the block's scale is a broadcast load.
    const uint nblocks = pc.k / QK;
    const uint part = tid & 3u;
    for (uint blk0 = tid >> 2; blk0 < nblocks; blk0 += UNROLL * (WG / 4)) {
      [[unroll]] for (uint u = 0; u < UNROLL; ++u) {
        // Past the end: reread the last block (in bounds) and weigh it 0, so the trip has no branch.
        const uint bu = blk0 + u * (WG / 4);
        const float valid = bu < nblocks ? 1.0 : 0.0;
        const uint blk = min(bu, nblocks - 1);
#if defined(INT_DOT)
        // Integer dot products of 4 packed 8-bit lanes; one float conversion per block quarter.
        [[unroll]] for (uint c = 0; c < NCOLS; ++c) {
        const uint xb = b_base + c * pc.b_col + blk * 10u;
        const float dx = uintBitsToFloat(bq[xb]) * valid;
#if defined(A_Q4_0)
        // Nibbles are 0..15; (n - 8) . x = n . x - 8 sum(x), the block's sum taken once (by quarter 0).
        const int x_lo = int(bq[xb + 2u + part]);
        const int x_hi = int(bq[xb + 6u + part]);
        const float corr = part == 0u ? 8.0 * float(int(bq[xb + 1u])) : 0.0;
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
            const uint base = rbase[r] + blk * Q4_0_WORDS;
            const uint w = uint(a[base + 1 + 2 * part]) | (uint(a[base + 2 + 2 * part]) << 16);
            const int s = dotPacked4x8EXT(int(w & 0x0F0F0F0Fu), x_lo) + dotPacked4x8EXT(int((w >> 4) & 0x0F0F0F0Fu), x_hi);
            acc[c * NROWS + r] += f16_bits_to_float(a[base]) * dx * (float(s) - corr);
        }
        }
#else
        const int x0 = int(bq[xb + 2u + 2u * part]);
        const int x1 = int(bq[xb + 3u + 2u * part]);
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
            const uint blkbase = rbase[r] + blk * Q8_0_WORDS;
            const uint base = blkbase + 1 + 4 * part;
            const uint w0 = uint(a[base]) | (uint(a[base + 1]) << 16);
            const uint w1 = uint(a[base + 2]) | (uint(a[base + 3]) << 16);
            const int s = dotPacked4x8EXT(int(w0), x0) + dotPacked4x8EXT(int(w1), x1);
            acc[c * NROWS + r] += f16_bits_to_float(a[blkbase]) * dx * float(s);
        }
        }
#endif
#else
        [[unroll]] for (uint c = 0; c < NCOLS; ++c) {
        const uint kb = b_base + c * pc.b_col + blk * QK;
#if defined(A_Q4_0)
        // Quarter p holds qs bytes 4p..4p+3: elements 4p..4p+3 (low nibbles) and 16+4p..16+4p+3 (high).
        vec4 xl;
        vec4 xh;
        if (B_VEC4) {
            xl = b4[kb / 4 + part];
            xh = b4[kb / 4 + 4 + part];
        } else {
            const uint e = kb + 4 * part;
            xl = vec4(b[e], b[e + 1], b[e + 2], b[e + 3]);
            xh = vec4(b[e + 16], b[e + 17], b[e + 18], b[e + 19]);
        }
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
            const uint base = rbase[r] + blk * Q4_0_WORDS;
            const uint w = uint(a[base + 1 + 2 * part]) | (uint(a[base + 2 + 2 * part]) << 16);
            const uvec4 sh = uvec4(0u, 8u, 16u, 24u);
            acc[c * NROWS + r] += valid * f16_bits_to_float(a[base]) *
                      (dot(nibbles_minus_8((uvec4(w) >> sh) & 15u), xl) +
                       dot(nibbles_minus_8((uvec4(w) >> (sh + 4u)) & 15u), xh));
        }
#else
        // Quarter p holds signed bytes 8p..8p+7: elements 8p..8p+7.
        vec4 x0;
        vec4 x1;
        if (B_VEC4) {
            x0 = b4[kb / 4 + 2 * part];
            x1 = b4[kb / 4 + 2 * part + 1];
        } else {
            const uint e = kb + 8 * part;
            x0 = vec4(b[e], b[e + 1], b[e + 2], b[e + 3]);
            x1 = vec4(b[e + 4], b[e + 5], b[e + 6], b[e + 7]);
        }
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
            const uint base = rbase[r] + blk * Q8_0_WORDS + 1 + 4 * part;
            const uint w0 = uint(a[base]);
            const uint w1 = uint(a[base + 1]);
            const uint w2 = uint(a[base + 2]);
            const uint w3 = uint(a[base + 3]);
            const vec4 q0 = bytes_to_signed(uvec4(w0, w0 >> 8, w1, w1 >> 8));
            const vec4 q1 = bytes_to_signed(uvec4(w2, w2 >> 8, w3, w3 >> 8));
            acc[c * NROWS + r] += valid * f16_bits_to_float(a[rbase[r] + blk * Q8_0_WORDS]) * (dot(q0, x0) + dot(q1, x1));
        }
#endif
        }
#endif
      }
    }
#else
    for (uint kk = tid; kk < pc.k; kk += WG) {
        float av[NROWS];
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
#if defined(A_F32)
            av[r] = a[rbase[r] + kk];
#elif defined(A_BF16)
            av[r] = uintBitsToFloat(uint(a[rbase[r] + kk]) << 16);
#else
            av[r] = f16_bits_to_float(a[rbase[r] + kk]);
#endif
        }
        [[unroll]] for (uint c = 0; c < NCOLS; ++c) {
#if defined(A_F16)
            const float xv = round_to_f16(b[b_base + c * pc.b_col + kk]);
#else
            const float xv = b[b_base + c * pc.b_col + kk];
#endif
            [[unroll]] for (uint r = 0; r < NROWS; ++r) { acc[c * NROWS + r] += av[r] * xv; }
        }
    }
#endif

    const uint d_base = pc.d_off + i12 * pc.d_s2 + i13 * pc.d_s3;
#ifndef NO_SUBGROUPS
    [[unroll]] for (uint i = 0; i < NCOLS * NROWS; ++i) {
        const float s = subgroupAdd(acc[i]);
        if (subgroupElect()) { red[i * WG + gl_SubgroupID] = s; }
    }
    barrier();
    // Thread i < NCOLS * NROWS writes column i / NROWS, row i % NROWS.
#ifdef FUSE_ROPE
    // One column: thread tid < NROWS holds row row0 + tid (see matvec_rope.glsl).
    float t = 0.0;
    if (tid < NROWS) {
        for (uint i = 0; i < gl_NumSubgroups; ++i) { t += red[tid * WG + i]; }
        if (row0 + tid < pc.m) { d[d_base + row0 + tid] = t; }
    }
    matvec_rope_epilogue(row0, t);
#else
    if (tid < NCOLS * NROWS && row0 + tid % NROWS < pc.m) {
        float t = 0.0;
        for (uint i = 0; i < gl_NumSubgroups; ++i) { t += red[tid * WG + i]; }
        d[d_base + (tid / NROWS) * pc.d_col + row0 + tid % NROWS] = t;
#ifdef FUSE_ADD
        fused_out[pc.pad1 + row0 + tid] = t + addend[pc.pad0 + row0 + tid];
#endif
    }
#endif
#else
#if defined(FUSE_ADD) || defined(FUSE_ROPE)
#error "FUSE_ADD and FUSE_ROPE need the subgroup reduction"
#endif
    [[unroll]] for (uint i = 0; i < NCOLS * NROWS; ++i) { red[i * WG + tid] = acc[i]; }
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) {
            [[unroll]] for (uint i = 0; i < NCOLS * NROWS; ++i) { red[i * WG + tid] += red[i * WG + tid + s]; }
        }
        barrier();
    }
    if (tid < NCOLS * NROWS && row0 + tid % NROWS < pc.m) {
        d[d_base + (tid / NROWS) * pc.d_col + row0 + tid % NROWS] = red[tid * WG];
    }
#endif
}
