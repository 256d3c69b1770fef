#version 450
// Tiled matrix x matrix on KHR cooperative matrices (tensor cores): d[col, row] = sum_k A[row, k] * B[col, k]
// (ggml's mul_mat with many columns: prompt processing). f16 x f16 -> f32 fragments of 16x16x16.
//
// Workgroup: 256 invocations = 8 subgroups of 32 (the host picks this kernel only for subgroup size 32), output
// tile BM x BN = 128 x 128, k steps of BK = 64 through shared memory (f16). Subgroups form a 2 x 4 grid; each owns
// a 64 x 32 block of the tile: 4 x 2 accumulator fragments, 32 multiply-adds per k step between two barriers.
// Every k step: each invocation converts 32 values of A (one row, half of the step: dequantized to f16) and 32
// values of B (f32 -> f16, or the 8-bit copy of b for Q4_0/Q8_0 weights) into registers for the *next* step while
// the subgroups multiply the current one out of shared memory (the global reads overlap the math), then stores
// them as 8 16-byte vectors. Wide loads (VEC_A, VEC_B) where offsets, strides and k allow.
// Results leave through a per-subgroup 16 x 16 staging area with bounds checks (any M, N and dst stride).
//
// Variants (build.rs): A_F16, A_Q4_0, A_Q8_0 (each optionally B_Q8), A_Q4_K and A_Q6_K (a thread's 32 values share
// their scales, unpacked once), A_DQ (any type with a dequantization include).
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"

#define BM 128u
#define BN 128u
#define WG 256
#define WARPS_M 2u
#define WARPS_N 4u
#define TM 4u
#define TN 2u
#define NWARPS (WARPS_M * WARPS_N)
#define BK 64u
// Shared rows in f16vec4 units: BK halves + 8 of padding (144 bytes: 16-byte aligned for the cooperative loads,
// and 8 consecutive rows start in 8 different 16-byte bank groups).
#define SST4 ((BK + 8u) / 4u)

// Loader roles: two invocations per row of A and column of B (WG = 2 BM = 2 BN).
layout(local_size_x = WG, local_size_y = 1, local_size_z = 1) in;
// B's offset and strides are multiples of 4 floats and k of BK: B is read as vec4 without bounds checks.
layout(constant_id = 0) const bool VEC_B = false;
// A_F16 only: A's offset and strides are multiples of 8 halves and k of BK: A is read 8 halves at a time.
layout(constant_id = 1) const bool VEC_A = false;

layout(binding = 0) readonly buffer A { uint16_t a[]; };
layout(binding = 0) readonly buffer A8 { uvec4 a8[]; };
#ifdef B_Q8
// b quantized by quantize_q8_1.comp: 10 words per 32 values ([d] [sum q] [8 words of q]).
layout(binding = 1) readonly buffer BQ { uint bq[]; };
#else
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 1) readonly buffer B4 { vec4 b4[]; };
#endif
layout(binding = 2) writeonly buffer D { float d[]; };

MATMUL_PUSH

#ifdef A_DQ
uint dq_u16(uint i) { return uint(a[i]); }
#include "dq_type.glsl"
#endif
#if defined(A_Q4_K) || defined(A_Q6_K)
uint dq_u16(uint i) { return uint(a[i]); }
#include "dq_k_common.glsl"
#endif

shared f16vec4 As[BM * SST4];
shared f16vec4 Bs[BN * SST4];
shared float Cs[NWARPS * 256u];

#define FRAG_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define FRAG_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define FRAG_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>

// This invocation's share of one k step: 32 consecutive k values (kb .. kb + 31) of one row of A and one column
// of B, as 8 f16vec4 each.
f16vec4 ra[8];
f16vec4 rb[8];

void load_a(uint a_row, bool ok, uint kb) {
#if defined(A_Q4_0)
    // One whole block (k is a multiple of 32; a step past k reads zeros).
    const bool in_k = ok && kb < pc.k;
    const uint blk = a_row + (min(kb, pc.k - 32u) / QK) * Q4_0_WORDS;
    const float dd = in_k ? f16_bits_to_float(a[blk]) : 0.0;
    [[unroll]] for (uint w = 0; w < 4; ++w) {
        const uint lo = uint(a[blk + 1u + 2u * w]);
        const uint hi = uint(a[blk + 2u + 2u * w]);
        const uvec4 q = uvec4(lo, lo >> 8, hi, hi >> 8);
        ra[w] = f16vec4(nibbles_minus_8(q & 0xFu) * dd);
        ra[4u + w] = f16vec4(nibbles_minus_8((q >> 4) & 0xFu) * dd);
    }
#elif defined(A_Q8_0)
    const bool in_k = ok && kb < pc.k;
    const uint blk = a_row + (min(kb, pc.k - 32u) / QK) * Q8_0_WORDS;
    const float dd = in_k ? f16_bits_to_float(a[blk]) : 0.0;
    [[unroll]] for (uint w = 0; w < 8; ++w) {
        const uint lo = uint(a[blk + 1u + 2u * w]);
        const uint hi = uint(a[blk + 2u + 2u * w]);
        ra[w] = f16vec4(vec4(lo_i8(lo), hi_i8(lo), lo_i8(hi), hi_i8(hi)) * dd);
    }
#elif defined(A_Q4_K)
    // Q4_K (72 words: d, dmin, 12 scale bytes, 128 code bytes; k is a multiple of 256, so of BK): the 32 values are
    // sub-block j of their block, one (scale, min) pair: d sc q - dmin m, as ggml's dequantize_row_q4_K.
    const uint blk = a_row + (kb / 256u) * 72u;
    const uint j = (kb % 256u) / 32u;
    const uvec2 sm = dq_k_scale_min(blk, 4u, j);
    precise const float dl = dq_k_half(uint(a[blk])) * float(sm.x);
    precise const float ml = dq_k_half(uint(a[blk + 1u])) * float(sm.y);
    const uint qo = blk + 8u + 16u * (j >> 1);
    const uint sh = 4u * (j & 1u);
    [[unroll]] for (uint w = 0; w < 8; ++w) {
        const uint lo = uint(a[qo + 2u * w]);
        const uint hi = uint(a[qo + 2u * w + 1u]);
        const vec4 q = vec4((uvec4(lo, lo >> 8, hi, hi >> 8) >> sh) & 0xFu);
        precise const vec4 v = dl * q - ml;
        ra[w] = ok ? f16vec4(v) : f16vec4(0.0);
    }
#elif defined(A_Q6_K)
    // Q6_K (105 words: 128 bytes ql, 64 bytes qh, 16 signed scales, d; k is a multiple of 256): the 32 values are
    // quarter g of half n of the block (ggml's dequantize_row_q6_K: value 128n + 32g + l), two scales (l < 16, l >= 16).
    const uint blk = a_row + (kb / 256u) * 105u;
    const uint t = (kb % 256u) / 32u;
    const uint n = t >> 2;
    const uint g = t & 3u;
    const float dd = dq_k_half(uint(a[blk + 104u]));
    const uint sw = uint(a[blk + 96u + 4u * n + g]); // scales 8n + 2g, 8n + 2g + 1
    const float s0 = dd * float(int(sw << 24) >> 24);
    const float s1 = dd * float(int(sw << 16) >> 24);
    const uint lo_o = blk + 32u * n + 16u * (g & 1u); // ql bytes 64n + 32 (g & 1) + l
    const uint hi_o = blk + 64u + 16u * n;             // qh bytes 32n + l
    const uint lsh = 4u * (g >> 1);
    const uint hsh = 2u * g;
    [[unroll]] for (uint w = 0; w < 8; ++w) {
        const uint l0 = uint(a[lo_o + 2u * w]);
        const uint l1 = uint(a[lo_o + 2u * w + 1u]);
        const uint h0 = uint(a[hi_o + 2u * w]);
        const uint h1 = uint(a[hi_o + 2u * w + 1u]);
        const uvec4 ql = (uvec4(l0, l0 >> 8, l1, l1 >> 8) >> lsh) & 0xFu;
        const uvec4 qh = (uvec4(h0, h0 >> 8, h1, h1 >> 8) >> hsh) & 3u;
        const vec4 q = vec4(ivec4(ql | (qh << 4)) - 32);
        precise const vec4 v = (w < 4u ? s0 : s1) * q;
        ra[w] = ok ? f16vec4(v) : f16vec4(0.0);
    }
#elif defined(A_DQ)
    // k is a multiple of DQ_QK (and of 4): chunks past k read as zero.
    [[unroll]] for (uint w = 0; w < 8; ++w) {
        const uint e = kb + 4u * w;
        const bool in_k = ok && e < pc.k;
        const uint ec = min(e, pc.k - 4u);
        const vec4 v = dq_get4(a_row + (ec / DQ_QK) * DQ_WORDS, (ec % DQ_QK) / 4u);
        ra[w] = in_k ? f16vec4(v) : f16vec4(0.0);
    }
#else
    if (VEC_A) {
        [[unroll]] for (uint w = 0; w < 4; ++w) {
            const uvec4 v = a8[(a_row + kb) / 8u + w];
            ra[2u * w] = f16vec4(unpackFloat2x16(v.x), unpackFloat2x16(v.y));
            ra[2u * w + 1u] = f16vec4(unpackFloat2x16(v.z), unpackFloat2x16(v.w));
        }
        if (!ok) { [[unroll]] for (uint w = 0; w < 8; ++w) { ra[w] = f16vec4(0.0); } }
    } else {
        [[unroll]] for (uint w = 0; w < 8; ++w) {
            [[unroll]] for (uint t = 0; t < 4; ++t) {
                const uint kk = kb + 4u * w + t;
                ra[w][t] = (ok && kk < pc.k) ? uint16BitsToHalf(a[a_row + kk]) : float16_t(0.0);
            }
        }
    }
#endif
}

void load_b(uint b_col, bool ok, uint kb) {
#ifdef B_Q8
    // One whole 32-value block of the 8-bit copy.
    const bool in_k = ok && kb < pc.k;
    const uint blk = b_col + (min(kb, pc.k - 32u) / QK) * 10u;
    const float dx = in_k ? uintBitsToFloat(bq[blk]) : 0.0;
    [[unroll]] for (uint w = 0; w < 8; ++w) {
        const uint v = bq[blk + 2u + w];
        const ivec4 q = ivec4(v << 24, v << 16, v << 8, v) >> 24;
        rb[w] = f16vec4(vec4(q) * dx);
    }
#else
    if (VEC_B) {
        [[unroll]] for (uint w = 0; w < 8; ++w) { rb[w] = f16vec4(b4[(b_col + kb) / 4u + w]); }
        if (!ok) { [[unroll]] for (uint w = 0; w < 8; ++w) { rb[w] = f16vec4(0.0); } }
    } else {
        [[unroll]] for (uint w = 0; w < 8; ++w) {
            [[unroll]] for (uint t = 0; t < 4; ++t) {
                const uint kk = kb + 4u * w + t;
                rb[w][t] = (ok && kk < pc.k) ? float16_t(b[b_col + kk]) : float16_t(0.0);
            }
        }
    }
#endif
}

void main() {
#ifdef DQ_INIT
    // Grid tables into shared memory (IQ types; every invocation, before any return).
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

    // Loader role: row (and column) lr of the tile, half h of the k step (32 values).
    const uint lr = tid >> 1;
    const uint h = tid & 1u;
    const bool a_ok = row0 + lr < pc.m;
    const bool b_ok = col0 + lr < pc.n;
    const uint a_row = a_base + min(row0 + lr, pc.m - 1u) * pc.a_row;
    const uint b_col = b_base + min(col0 + lr, pc.n - 1u) * pc.b_col;
    const uint s_off = lr * SST4 + 8u * h;

    // Compute role: subgroup (wm, wn) of the WARPS_M x WARPS_N grid.
    const uint sg = gl_SubgroupID;
    const uint wm = sg % WARPS_M;
    const uint wn = sg / WARPS_M;

    FRAG_C acc[TM * TN];
    [[unroll]] for (uint i = 0; i < TM; ++i) {
        [[unroll]] for (uint j = 0; j < TN; ++j) { acc[i * TN + j] = FRAG_C(0.0); }
    }

    load_a(a_row, a_ok, 32u * h);
    load_b(b_col, b_ok, 32u * h);
    for (uint k0 = 0; k0 < pc.k; k0 += BK) {
        barrier();
        [[unroll]] for (uint w = 0; w < 8; ++w) {
            As[s_off + w] = ra[w];
            Bs[s_off + w] = rb[w];
        }
        barrier();
        if (k0 + BK < pc.k) {
            load_a(a_row, a_ok, k0 + BK + 32u * h);
            load_b(b_col, b_ok, k0 + BK + 32u * h);
        }
        [[unroll]] for (uint kk = 0; kk < BK; kk += 16u) {
            FRAG_A fa[TM];
            FRAG_B fb[TN];
            [[unroll]] for (uint i = 0; i < TM; ++i) {
                coopMatLoad(fa[i], As, (wm * (TM * 16u) + 16u * i) * SST4 + kk / 4u, SST4,
                            gl_CooperativeMatrixLayoutRowMajor);
            }
            [[unroll]] for (uint j = 0; j < TN; ++j) {
                coopMatLoad(fb[j], Bs, (wn * (TN * 16u) + 16u * j) * SST4 + kk / 4u, SST4,
                            gl_CooperativeMatrixLayoutColumnMajor);
            }
            [[unroll]] for (uint i = 0; i < TM; ++i) {
                [[unroll]] for (uint j = 0; j < TN; ++j) {
                    acc[i * TN + j] = coopMatMulAdd(fa[i], fb[j], acc[i * TN + j]);
                }
            }
        }
    }

    // Write out: each fragment through this subgroup's staging area (column-major: Cs[n * 16 + m]).
    const uint lane = gl_SubgroupInvocationID;
    const uint stage = sg * 256u;
    [[unroll]] for (uint i = 0; i < TM; ++i) {
        [[unroll]] for (uint j = 0; j < TN; ++j) {
            coopMatStore(acc[i * TN + j], Cs, stage, 16u, gl_CooperativeMatrixLayoutColumnMajor);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            const uint r0 = row0 + wm * (TM * 16u) + 16u * i;
            const uint c0 = col0 + wn * (TN * 16u) + 16u * j;
            [[unroll]] for (uint e = lane; e < 256u; e += 32u) {
                const uint row = r0 + (e & 15u);
                const uint col = c0 + (e >> 4);
                if (row < pc.m && col < pc.n) { d[d_base + col * pc.d_col + row] = Cs[stage + e]; }
            }
            subgroupBarrier();
        }
    }
}
