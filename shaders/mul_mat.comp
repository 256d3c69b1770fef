#version 450
// Tiled matrix x matrix: d[col, row] = sum_k A[row, k] * B[col, k] (ggml's mul_mat with n > 1),
// 64x64 output tiles, 32-deep k steps through shared memory, 256 threads each owning a 4x4 sub-tile.
// A tiles are dequantized to f32 on load: every thread converts 8 values (a quarter of a 32-value block).
// A_DQ: any weight type with a dequantization include (shaders/dequant/<type>.glsl, "dq_type.glsl" here, chosen by
// build.rs); each thread takes its 8 values as two dq_get4 chunks.
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
// b quantized by quantize_q8_1.comp (as ggml's CPU backend quantizes activations for Q4_0/Q8_0 weights):
// 10 words per 32 values ([d] [sum q] [8 words of q]); offsets and strides in words.
layout(binding = 1) readonly buffer BQ { uint bq[]; };
#else
layout(binding = 1) readonly buffer B { float b[]; };
#endif
layout(binding = 2) writeonly buffer D { float d[]; };

MATMUL_PUSH

#ifdef A_DQ
uint dq_u16(uint i) { return uint(a[i]); }
#include "dq_type.glsl"
#endif

shared float As[BK][BM];
shared float Bs[BK][BN];

void main() {
#ifdef DQ_INIT
    // Grid or level tables into shared memory (IQ, MXFP4 and NVFP4 types; every invocation, before any return).
    DQ_INIT();
#endif
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * BM;
    const uint col0 = gl_WorkGroupID.y * BN;
    const uint z = gl_WorkGroupID.z;
    const uint i12 = z % pc.ne12;
    const uint i13 = z / pc.ne12;
    const uint a_base = pc.a_off + (i12 / pc.r2) * pc.a_s2 + (i13 / pc.r3) * pc.a_s3;
    const uint b_base = pc.b_off + i12 * pc.b_s2 + i13 * pc.b_s3;
    const uint d_base = pc.d_off + i12 * pc.d_s2 + i13 * pc.d_s3;

    // Loader role: one row (or column) of the tile, one quarter (8 values) of its 32 k-values.
    const uint lr = tid >> 2;
    const uint part = tid & 3u;
    const bool a_ok = row0 + lr < pc.m;
    const bool b_ok = col0 + lr < pc.n;
    const uint a_row = a_base + min(row0 + lr, pc.m - 1) * pc.a_row;
    const uint b_col = b_base + min(col0 + lr, pc.n - 1) * pc.b_col;

    // Compute role: rows tx + 16 i, columns ty + 16 j of the tile.
    const uint tx = tid & 15u;
    const uint ty = tid >> 4;
    float acc[4][4];
    [[unroll]] for (uint i = 0; i < 4; ++i) { [[unroll]] for (uint j = 0; j < 4; ++j) { acc[i][j] = 0.0; } }

    for (uint k0 = 0; k0 < pc.k; k0 += BK) {
#if defined(A_Q4_0)
        {
            const uint base = a_row + (k0 / QK) * Q4_0_WORDS;
            const float dd = a_ok ? f16_bits_to_float(a[base]) : 0.0;
            [[unroll]] for (uint h = 0; h < 2; ++h) {
                const uint w = uint(a[base + 1 + 2 * part + h]);
                const uint e = 4 * part + 2 * h;
                As[e][lr] = (float(w & 15u) - 8.0) * dd;
                As[e + 1][lr] = (float((w >> 8) & 15u) - 8.0) * dd;
                As[e + 16][lr] = (float((w >> 4) & 15u) - 8.0) * dd;
                As[e + 17][lr] = (float(w >> 12) - 8.0) * dd;
            }
        }
#elif defined(A_Q8_0)
        {
            const uint base = a_row + (k0 / QK) * Q8_0_WORDS;
            const float dd = a_ok ? f16_bits_to_float(a[base]) : 0.0;
            [[unroll]] for (uint h = 0; h < 4; ++h) {
                const uint w = uint(a[base + 1 + 4 * part + h]);
                const uint e = 8 * part + 2 * h;
                As[e][lr] = float(lo_i8(w)) * dd;
                As[e + 1][lr] = float(hi_i8(w)) * dd;
            }
        }
#elif defined(A_DQ)
        // k is a multiple of DQ_QK (and of 4); only a type with DQ_QK < 32 (bf16) can end inside a k step.
        [[unroll]] for (uint h = 0; h < 2; ++h) {
            const uint e = k0 + 8 * part + 4 * h;
            const bool ok = a_ok && e < pc.k;
            const vec4 v = ok ? dq_get4(a_row + (e / DQ_QK) * DQ_WORDS, (e % DQ_QK) / 4u) : vec4(0.0);
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
            // k is a multiple of 32 here: quarter `part` of the block is 8 signed bytes (2 words).
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
        const uint col = col0 + ty + 16 * j;
        [[unroll]] for (uint i = 0; i < 4; ++i) {
            const uint row = row0 + tx + 16 * i;
            if (row < pc.m && col < pc.n) { d[d_base + col * pc.d_col + row] = acc[i][j]; }
        }
    }
}
