#version 450
// A token's gate and up products and the GLU of them in one dispatch (src/graph/fusion.rs, mat_vec_glu):
// dg = A_gate x, du = A_up x, d = act(dg) * du (glu_fn.glsl: glu.comp's arithmetic), and with EMIT_QX d's 8-bit
// blocks for the product that reads it (emit_q8.glsl: quantize_q8_1.comp's blocks, 32 rows each). Q4_0 (A_Q4_0) or
// Q8_0 weights, x as quantize_q8_1.comp's blocks (integer dot products), one column.
// A workgroup takes ROWS = 32 rows (one 8-bit block of d) in four slices of SLICE invocations, RPS = 8 rows each
// (of both matrices). A slice runs mul_mat_vec.comp's integer-dot loop with SLICE as its workgroup size (four
// invocations per block, the same blocks per invocation in the same order, the same expressions) and sums its
// subgroups in the same order, so dg and du are bit-identical to the separate products of that workgroup size
// (the host passes the size those take).
#include "common.glsl"
#extension GL_EXT_integer_dot_product : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

#define ROWS 32u
#define RPS 8u
#define SLICES (ROWS / RPS)

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
// Workgroup size: SLICES slices of a multiple of the subgroup size.
layout(constant_id = 0) const uint WG = 512;
// glu.comp's OP code (0..4: the GLU ops of ggml_glu_split).
layout(constant_id = 1) const uint OP = 0;
// Blocks per invocation per loop trip (mul_mat_vec.comp's UNROLL).
layout(constant_id = 2) const uint UNROLL = 2;
const uint SLICE = WG / SLICES;

layout(binding = 0) readonly buffer AG { uint16_t ag[]; };
layout(binding = 1) readonly buffer AU { uint16_t au[]; };
// x quantized by quantize_q8_1.comp: 10 words per 32-value block ([d] [sum q] [8 words of q]).
layout(binding = 2) readonly buffer BQ { uint bq[]; };
layout(binding = 3) writeonly buffer DG { float dg[]; };
layout(binding = 4) writeonly buffer DU { float du[]; };
layout(binding = 5) writeonly buffer D { float d[]; };

layout(push_constant) uniform Push {
    uint m; uint k;
    uint g_off; uint g_row; uint u_off; uint u_row;
    uint b_off; uint dg_off; uint du_off; uint d_off;
    uint q_off; uint pad;
} pc;

#include "half_bits.glsl"
#ifdef EMIT_QX
layout(binding = 6) writeonly buffer Q8Out { uint q8out[]; };
#include "div_rn.glsl"
#include "emit_q8.glsl"
#endif
// The half conversions activations.glsl takes (elementwise.glsl's, for the kernels that include that).
float half_to_float(uint h) { return uintBitsToFloat(half_to_float_bits(h)); }
uint float_to_half(float f) { return float_bits_to_half(floatBitsToUint(f)); }
#include "glu_fn.glsl"

// Slice sums: [matrix * ROWS + row][subgroup of the workgroup].
shared float sums[2u * ROWS * (WG / 8u)];
shared float hv[ROWS];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint slice = tid / SLICE;
    const uint lt = tid % SLICE;
    const uint row0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * ROWS;
    const uint srow0 = row0 + slice * RPS;

    // acc[r]: gate row srow0 + r; acc[RPS + r]: up row srow0 + r. Rows past the end read row m-1.
    float acc[2u * RPS];
    [[unroll]] for (uint i = 0; i < 2u * RPS; ++i) { acc[i] = 0.0; }
    uint gbase[RPS];
    uint ubase[RPS];
    [[unroll]] for (uint r = 0; r < RPS; ++r) {
        const uint row = min(srow0 + r, pc.m - 1u);
        gbase[r] = pc.g_off + row * pc.g_row;
        ubase[r] = pc.u_off + row * pc.u_row;
    }

    const uint nblocks = pc.k / QK;
    const uint part = lt & 3u;
    for (uint blk0 = lt >> 2; blk0 < nblocks; blk0 += UNROLL * (SLICE / 4)) {
      [[unroll]] for (uint u = 0; u < UNROLL; ++u) {
        const uint bu = blk0 + u * (SLICE / 4);
        const float valid = bu < nblocks ? 1.0 : 0.0;
        const uint blk = min(bu, nblocks - 1);
        const uint xb = pc.b_off + blk * 10u;
        const float dx = uintBitsToFloat(bq[xb]) * valid;
#if defined(A_Q4_0)
        const int x_lo = int(bq[xb + 2u + part]);
        const int x_hi = int(bq[xb + 6u + part]);
        const float corr = part == 0u ? 8.0 * float(int(bq[xb + 1u])) : 0.0;
        [[unroll]] for (uint r = 0; r < RPS; ++r) {
            const uint base = gbase[r] + blk * Q4_0_WORDS;
            const uint w = uint(ag[base + 1 + 2 * part]) | (uint(ag[base + 2 + 2 * part]) << 16);
            const int s = dotPacked4x8EXT(int(w & 0x0F0F0F0Fu), x_lo) + dotPacked4x8EXT(int((w >> 4) & 0x0F0F0F0Fu), x_hi);
            acc[r] += f16_bits_to_float(ag[base]) * dx * (float(s) - corr);
        }
        [[unroll]] for (uint r = 0; r < RPS; ++r) {
            const uint base = ubase[r] + blk * Q4_0_WORDS;
            const uint w = uint(au[base + 1 + 2 * part]) | (uint(au[base + 2 + 2 * part]) << 16);
            const int s = dotPacked4x8EXT(int(w & 0x0F0F0F0Fu), x_lo) + dotPacked4x8EXT(int((w >> 4) & 0x0F0F0F0Fu), x_hi);
            acc[RPS + r] += f16_bits_to_float(au[base]) * dx * (float(s) - corr);
        }
#else
        const int x0 = int(bq[xb + 2u + 2u * part]);
        const int x1 = int(bq[xb + 3u + 2u * part]);
        [[unroll]] for (uint r = 0; r < RPS; ++r) {
            const uint blkbase = gbase[r] + blk * Q8_0_WORDS;
            const uint base = blkbase + 1 + 4 * part;
            const uint w0 = uint(ag[base]) | (uint(ag[base + 1]) << 16);
            const uint w1 = uint(ag[base + 2]) | (uint(ag[base + 3]) << 16);
            const int s = dotPacked4x8EXT(int(w0), x0) + dotPacked4x8EXT(int(w1), x1);
            acc[r] += f16_bits_to_float(ag[blkbase]) * dx * float(s);
        }
        [[unroll]] for (uint r = 0; r < RPS; ++r) {
            const uint blkbase = ubase[r] + blk * Q8_0_WORDS;
            const uint base = blkbase + 1 + 4 * part;
            const uint w0 = uint(au[base]) | (uint(au[base + 1]) << 16);
            const uint w1 = uint(au[base + 2]) | (uint(au[base + 3]) << 16);
            const int s = dotPacked4x8EXT(int(w0), x0) + dotPacked4x8EXT(int(w1), x1);
            acc[RPS + r] += f16_bits_to_float(au[blkbase]) * dx * float(s);
        }
#endif
      }
    }

    // Each slice's subgroups (consecutive, SLICE a multiple of the subgroup size), summed in order.
    const uint nsg = WG / 8u;
    [[unroll]] for (uint i = 0; i < 2u * RPS; ++i) {
        const float s = subgroupAdd(acc[i]);
        const uint row = slice * RPS + i % RPS;
        if (subgroupElect()) { sums[((i / RPS) * ROWS + row) * nsg + gl_SubgroupID] = s; }
    }
    barrier();
    if (tid < ROWS) {
        const uint per_slice = gl_NumSubgroups / SLICES;
        const uint first = (tid / RPS) * per_slice;
        float g = 0.0;
        float v = 0.0;
        for (uint i = 0; i < per_slice; ++i) {
            g += sums[tid * nsg + first + i];
            v += sums[(ROWS + tid) * nsg + first + i];
        }
        const float h = glu_apply(OP, g, v, 0.0, 0.0);
        hv[tid] = h;
        if (row0 + tid < pc.m) {
            dg[pc.dg_off + row0 + tid] = g;
            du[pc.du_off + row0 + tid] = v;
            d[pc.d_off + row0 + tid] = h;
        }
    }
#ifdef EMIT_QX
    barrier();
    // Invocation p < 8 holds rows 4p..4p+3 of the block; a block past the end (m a multiple of 32) writes nothing.
    const bool live = tid < 8u && row0 + ROWS <= pc.m;
    const vec4 y = tid < 8u ? vec4(hv[4u * tid], hv[4u * tid + 1u], hv[4u * tid + 2u], hv[4u * tid + 3u]) : vec4(0.0);
    emit_q8_block(y, live, pc.q_off + (row0 / ROWS) * 10u);
#endif
}
