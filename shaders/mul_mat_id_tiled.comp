#version 450
// MUL_MAT_ID, many tokens: the tiled product of mul_mat.comp (64x64 output tiles, 32-deep k steps through shared
// memory, 256 threads each owning a 4x4 sub-tile; the same loaders, so the same numerics) per expert: workgroup z
// is expert e of the range bound at a_off (all experts, unless they exceed one storage window together), its
// columns are the (slot, token) pairs routed to e, listed by mul_mat_id_map.comp (binding 3), so
// each expert's weights are read once per 64 of its pairs rather than once per pair. Workgroup y takes column tiles
// y, y + gridY, ... up to the expert's count (the host sizes gridY for the common case of at most one slot per
// token and expert; more are still covered). Pair p = slot + n_used * token reads b column (slot stride b_s2 (0 when
// src1 is broadcast), token stride b_s3) and writes dst column (slot stride d_s2, token stride d_s3).
// A_DQ: any weight type with a dequantization include ("dq_type.glsl", chosen by build.rs).
#include "common.glsl"

#define BM 64u
#define BN 64u
#define BK 32u

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;

#if defined(A_F32)
layout(binding = 0) readonly buffer A { float a[]; };
#else
layout(binding = 0) readonly buffer A { uint16_t a[]; };
#endif
#ifdef B_Q8
// b quantized by quantize_q8_1.comp: 10 words per 32 values ([d] [sum q] [8 words of q]); offsets in words.
layout(binding = 1) readonly buffer BQ { uint bq[]; };
#else
layout(binding = 1) readonly buffer B { float b[]; };
#endif
layout(binding = 2) writeonly buffer D { float d[]; };
layout(binding = 3) readonly buffer M { uint map[]; };

// MATMUL_PUSH's layout (mirrors ops::matmul::MatMulPush); here n = pairs, ne12 = n_used, r2 = n_as, r3 = the map's
// first element, a_s2 the expert stride, b_s2/b_s3 and d_s2/d_s3 slot/token strides.
MATMUL_PUSH

#ifdef A_DQ
uint dq_u16(uint i) { return uint(a[i]); }
#include "dq_type.glsl"
#endif

shared float As[BK][BM];
shared float Bs[BK][BN];
shared uint cols_b[BN];
shared uint cols_d[BN];

void main() {
#ifdef DQ_INIT
    // Grid or level tables into shared memory (IQ, MXFP4 and NVFP4 types; every invocation, before any return).
    DQ_INIT();
#endif
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * BM;
    const uint e = gl_WorkGroupID.z;
    const uint count = map[pc.r3 + e];
    const uint a_base = pc.a_off + e * pc.a_s2;
    const uint list = pc.r3 + pc.r2 + e * pc.n;

    // Loader role: one row (or column) of the tile, one quarter (8 values) of its 32 k-values.
    const uint lr = tid >> 2;
    const uint part = tid & 3u;
    const bool a_ok = row0 + lr < pc.m;
    const uint a_row = a_base + min(row0 + lr, pc.m - 1) * pc.a_row;
    // Compute role: rows tx + 16 i, columns ty + 16 j of the tile.
    const uint tx = tid & 15u;
    const uint ty = tid >> 4;

    for (uint col0 = gl_WorkGroupID.y * BN; col0 < count; col0 += gl_NumWorkGroups.y * BN) {
        if (tid < BN) {
            const uint p = map[list + min(col0 + tid, count - 1u)];
            const uint slot = p % pc.ne12;
            const uint tok = p / pc.ne12;
            cols_b[tid] = pc.b_off + slot * pc.b_s2 + tok * pc.b_s3;
            cols_d[tid] = pc.d_off + slot * pc.d_s2 + tok * pc.d_s3;
        }
        barrier();
        const bool b_ok = col0 + lr < count;
        const uint b_col = cols_b[lr];

        float acc[4][4];
        [[unroll]] for (uint i = 0; i < 4; ++i) { [[unroll]] for (uint j = 0; j < 4; ++j) { acc[i][j] = 0.0; } }

        for (uint k0 = 0; k0 < pc.k; k0 += BK) {
#if defined(A_Q4_0)
            {
                const uint base = a_row + (k0 / QK) * Q4_0_WORDS;
                const float dd = a_ok ? f16_bits_to_float(a[base]) : 0.0;
                [[unroll]] for (uint h = 0; h < 2; ++h) {
                    const uint w = uint(a[base + 1 + 2 * part + h]);
                    const uint el = 4 * part + 2 * h;
                    As[el][lr] = (float(w & 15u) - 8.0) * dd;
                    As[el + 1][lr] = (float((w >> 8) & 15u) - 8.0) * dd;
                    As[el + 16][lr] = (float((w >> 4) & 15u) - 8.0) * dd;
                    As[el + 17][lr] = (float(w >> 12) - 8.0) * dd;
                }
            }
#elif defined(A_Q8_0)
            {
                const uint base = a_row + (k0 / QK) * Q8_0_WORDS;
                const float dd = a_ok ? f16_bits_to_float(a[base]) : 0.0;
                [[unroll]] for (uint h = 0; h < 4; ++h) {
                    const uint w = uint(a[base + 1 + 4 * part + h]);
                    const uint el = 8 * part + 2 * h;
                    As[el][lr] = float(lo_i8(w)) * dd;
                    As[el + 1][lr] = float(hi_i8(w)) * dd;
                }
            }
#elif defined(A_DQ)
            [[unroll]] for (uint h = 0; h < 2; ++h) {
                const uint el = k0 + 8 * part + 4 * h;
                const bool ok = a_ok && el < pc.k;
                const vec4 v = ok ? dq_get4(a_row + (el / DQ_QK) * DQ_WORDS, (el % DQ_QK) / 4u) : vec4(0.0);
                [[unroll]] for (uint t = 0; t < 4; ++t) { As[8 * part + 4 * h + t][lr] = v[t]; }
            }
#else
            [[unroll]] for (uint h = 0; h < 8; ++h) {
                const uint kk = k0 + 8 * part + h;
                const bool ok = a_ok && kk < pc.k;
#if defined(A_F32)
                As[8 * part + h][lr] = ok ? a[a_row + kk] : 0.0;
#elif defined(A_BF16)
                As[8 * part + h][lr] = ok ? uintBitsToFloat(uint(a[a_row + kk]) << 16) : 0.0;
#else
                As[8 * part + h][lr] = ok ? f16_bits_to_float(a[a_row + kk]) : 0.0;
#endif
            }
#endif
#ifdef B_Q8
            {
                const uint base = b_col + (k0 / QK) * 10u;
                const float dx = b_ok ? uintBitsToFloat(bq[base]) : 0.0;
                [[unroll]] for (uint h = 0; h < 2; ++h) {
                    const uint w = bq[base + 2u + 2u * part + h];
                    [[unroll]] for (uint j = 0; j < 4; ++j) {
                        Bs[8 * part + 4 * h + j][lr] = float(int(w << (24u - 8u * j)) >> 24) * dx;
                    }
                }
            }
#else
            [[unroll]] for (uint h = 0; h < 8; ++h) {
                const uint kk = k0 + 8 * part + h;
#if defined(A_F16)
                Bs[8 * part + h][lr] = (b_ok && kk < pc.k) ? round_to_f16(b[b_col + kk]) : 0.0;
#else
                Bs[8 * part + h][lr] = (b_ok && kk < pc.k) ? b[b_col + kk] : 0.0;
#endif
            }
#endif
            barrier();
            [[unroll]] for (uint kk = 0; kk < BK; ++kk) {
                float av[4];
                float bv[4];
                [[unroll]] for (uint i = 0; i < 4; ++i) { av[i] = As[kk][tx + 16 * i]; }
                [[unroll]] for (uint j = 0; j < 4; ++j) { bv[j] = Bs[kk][ty + 16 * j]; }
                [[unroll]] for (uint i = 0; i < 4; ++i) {
                    [[unroll]] for (uint j = 0; j < 4; ++j) { acc[i][j] += av[i] * bv[j]; }
                }
            }
            barrier();
        }

        [[unroll]] for (uint j = 0; j < 4; ++j) {
            const uint c = ty + 16 * j;
            [[unroll]] for (uint i = 0; i < 4; ++i) {
                const uint row = row0 + tx + 16 * i;
                if (row < pc.m && col0 + c < count) { d[cols_d[c] + row] = acc[i][j]; }
            }
        }
        barrier();
    }
}
