#version 450
// Generic matrix x vector(s) for any weight type with a dequantization include (shaders/dequant/<type>.glsl,
// chosen by build.rs as "dq_type.glsl"): d[c, row] = sum_k A[row, k] * b[c, k] for NROWS rows of A per workgroup
// and NCOLS columns of b, batched over z like mul_mat_vec.comp (same push constants and ggml's batch broadcast).
// Work unit: SPAN 4-value chunks of one block (dq_get4) whose words overlap, so that the compiler loads what they
// share once: a pair, chunks j and j + CPB/2 (for the 32-value types they share every word read: scale, fifth
// bits, the qs byte holding both nibbles); with SPAN16, for 256-value blocks (IQ, TQ, K-quants off their own
// kernels), 4 consecutive chunks, 16 values of one 32-value sub-block, which share its scale, sign and index words
// (chunks j and j + 32 of such a block are in different sub-blocks and share only d). Consecutive threads take
// consecutive units of a row, so a subgroup reads neighbouring words of the same blocks (coalesced); the x values
// of a unit are loaded once and reused for every row. Partial sums are reduced with subgroupAdd (or shared memory
// with NO_SUBGROUPS).
#include "common.glsl"
#ifndef NO_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 3) const uint NROWS = 2;
// b's offset and strides are multiples of 4 floats: read x as vec4.
layout(constant_id = 4) const bool B_VEC4 = false;
// Chunks per thread per loop trip: all of a trip's loads can be in flight at once.
layout(constant_id = 5) const uint UNROLL = 2;
// Columns of b (and dst) per dispatch; WG >= NROWS * NCOLS.
layout(constant_id = 6) const uint NCOLS = 1;
// 256-value blocks: work units of 16 consecutive values instead of pairs of 4-value chunks 128 values apart.
layout(constant_id = 7) const bool SPAN16 = false;

layout(binding = 0) readonly buffer A { uint16_t a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 1) readonly buffer B4 { vec4 b4[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

MATMUL_PUSH
#ifdef MUL_MAT_ID
#include "mul_mat_id.glsl"
#endif

uint dq_u16(uint i) { return uint(a[i]); }
#include "dq_type.glsl"

// Chunks (of 4 values) per block; whether a work unit's chunks are consecutive (SPAN16, 256-value blocks) or
// spread (j + q * UPB); chunks per work unit (4 consecutive, else 2, or 1 for 4-value blocks); work units per block.
const uint CPB = DQ_QK / 4u;
const bool CONSEC = SPAN16 && DQ_QK >= 256u;
const uint SPAN = CONSEC ? 4u : (CPB >= 2u ? 2u : 1u);
const uint UPB = CPB / SPAN;

// Chunk q of work unit j of a block.
uint unit_chunk(uint j, uint q) { return CONSEC ? j * SPAN + q : j + q * UPB; }

vec4 load_x(uint e) {
    return B_VEC4 ? b4[e / 4u] : vec4(b[e], b[e + 1u], b[e + 2u], b[e + 3u]);
}

shared float red[NCOLS * NROWS * WG];

void main() {
#ifdef DQ_INIT
    // Grid or level tables into shared memory (IQ, MXFP4 and NVFP4 types; every invocation, before any return).
    DQ_INIT();
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

    float acc[NCOLS * NROWS];
    [[unroll]] for (uint i = 0; i < NCOLS * NROWS; ++i) { acc[i] = 0.0; }
    // Rows past the end read row m-1 (in bounds) and are not written.
    uint rbase[NROWS];
    [[unroll]] for (uint r = 0; r < NROWS; ++r) { rbase[r] = a_base + min(row0 + r, pc.m - 1) * pc.a_row; }

    // k is a multiple of DQ_QK (checked on the host).
    const uint nunits = (pc.k / DQ_QK) * UPB;
    for (uint c0 = tid; c0 < nunits; c0 += UNROLL * WG) {
        [[unroll]] for (uint u = 0; u < UNROLL; ++u) {
            // Past the end: reread the last unit (in bounds) and weigh it 0, so the trip has no branch.
            const uint cu = c0 + u * WG;
            const bool valid = cu < nunits;
            const uint c = min(cu, nunits - 1u);
            const uint blk = c / UPB;
            const uint j = c % UPB;
            vec4 w[NROWS * SPAN];
            [[unroll]] for (uint r = 0; r < NROWS; ++r) {
                const uint base = rbase[r] + blk * DQ_WORDS;
                [[unroll]] for (uint q = 0; q < SPAN; ++q) { w[r * SPAN + q] = dq_get4(base, unit_chunk(j, q)); }
            }
            [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                const uint e = b_base + col * pc.b_col + blk * DQ_QK;
                vec4 x[SPAN];
                [[unroll]] for (uint q = 0; q < SPAN; ++q) { x[q] = load_x(e + 4u * unit_chunk(j, q)); }
                [[unroll]] for (uint r = 0; r < NROWS; ++r) {
                    float s = dot(w[r * SPAN], x[0]);
                    [[unroll]] for (uint q = 1; q < SPAN; ++q) { s += dot(w[r * SPAN + q], x[q]); }
                    acc[col * NROWS + r] += valid ? s : 0.0;
                }
            }
        }
    }

    const uint d_base = pc.d_off + i12 * pc.d_s2 + i13 * pc.d_s3;
#ifndef NO_SUBGROUPS
    [[unroll]] for (uint i = 0; i < NCOLS * NROWS; ++i) {
        const float s = subgroupAdd(acc[i]);
        if (subgroupElect()) { red[i * WG + gl_SubgroupID] = s; }
    }
    barrier();
    // Thread i < NCOLS * NROWS writes column i / NROWS, row i % NROWS.
    if (tid < NCOLS * NROWS && row0 + tid % NROWS < pc.m) {
        float t = 0.0;
        for (uint i = 0; i < gl_NumSubgroups; ++i) { t += red[tid * WG + i]; }
        d[d_base + (tid / NROWS) * pc.d_col + row0 + tid % NROWS] = t;
    }
#else
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
