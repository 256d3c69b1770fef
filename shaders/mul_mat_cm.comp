#version 450
// Tiled matrix x matrix on KHR cooperative matrices (tensor cores): d[col, row] = sum_k A[row, k] * B[col, k]
// (ggml's mul_mat with many columns: prompt processing). f16 x f16 -> f32 fragments of 16x16x16.
//
// Workgroup: 256 invocations = 8 subgroups of 32 (the host picks this kernel only for subgroup size 32), output
// tile BM x BN = 128 x 128, k steps of BK = 64 through shared memory (f16). Subgroups form a 2 x 4 grid; each owns
// a 64 x 32 block of the tile: 4 x 2 accumulator fragments, 32 multiply-adds per k step between two barriers.
// Every k step: each invocation converts 32 values of A (dequantized to f16) and 32 values of B (the f16 copy of b
// from narrow_f16.comp) into registers for the *next* step while the subgroups multiply the
// current one out of shared memory (the global reads overlap the math), then stores them as f16vec4 chunks.
// Consecutive invocations load consecutive pieces of one row (coalesced; see the loaders). Wide loads (VEC_A,
// VEC_B) where offsets, strides and k allow.
// Results leave through a per-subgroup 16 x 16 staging area with bounds checks (any M, N and dst stride).
//
// Variants (build.rs): A_F16, A_Q4_0, A_Q8_0, A_Q4_K and A_Q6_K (own loaders: scales unpacked
// once per 16 or 4 values), A_DQ (any type with a dequantization include); each also as MUL_MAT_ID (below), in
// 128- and 64-column tiles (ID_BN64).
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"

#define BM 128u
#define WG 256
#ifdef ID_BN64
// MUL_MAT_ID with few pairs per expert: 64 columns per tile, subgroups in a 4 x 2 grid of 32 x 32 blocks.
#define BN 64u
#define WARPS_M 4u
#define WARPS_N 2u
#define TM 2u
#define TN 2u
#else
#define BN 128u
#define WARPS_M 2u
#define WARPS_N 4u
#define TM 4u
#define TN 2u
#endif
#define NWARPS (WARPS_M * WARPS_N)
#define BK 64u
// Shared rows in f16vec4 units: BK halves + 8 of padding (144 bytes: 16-byte aligned for the cooperative loads,
// and 8 consecutive rows start in 8 different 16-byte bank groups).
#define SST4 ((BK + 8u) / 4u)

// Loader roles: two invocations per row of A and column of B (WG = 2 BM = 2 BN).
layout(local_size_x = WG, local_size_y = 1, local_size_z = 1) in;
// B's offset and strides are multiples of 8 halves and k of BK: B is read 8 halves at a time.
layout(constant_id = 0) const bool VEC_B = false;
// A_F16 only: A's offset and strides are multiples of 8 halves and k of BK: A is read 8 halves at a time.
layout(constant_id = 1) const bool VEC_A = false;

layout(binding = 0) readonly buffer A { uint16_t a[]; };
layout(binding = 0) readonly buffer A8 { uvec4 a8[]; };
// b as packed f16 (narrow_f16.comp: offsets and strides in halves).
layout(binding = 1) readonly buffer B { uint16_t b[]; };
layout(binding = 1) readonly buffer B8 { uvec4 b8[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

#ifdef MUL_MAT_ID
// MUL_MAT_ID (ops/matmul_id.rs), many tokens: workgroup z is expert z of the range bound at a_off (a_s2 apart), its
// columns the (slot, token) pairs routed to it as mul_mat_id_map.comp lists them: map[r3 + z] = count,
// map[r3 + r2 + z * n + i] = pair i (n = pairs, r2 = experts bound). Pair p = slot + ne12 * token (ne12 = n_used)
// reads the f16 copy of b from slot * b_s2 + token * b_s3 (b_s2 = 0 where b is broadcast) and writes dst at
// slot * d_s2 + token * d_s3. Workgroup y takes column tiles y, y + gridY, ... up to the expert's count.
layout(binding = 3) readonly buffer M { uint map[]; };
#endif

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
#ifdef MUL_MAT_ID
// The tile's columns: where each starts in b (halves) and in dst (floats).
shared uint cols_b[BN];
shared uint cols_d[BN];
#endif

#define FRAG_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define FRAG_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define FRAG_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>

// Loaders. Each operand's step is 128 rows (of A) or columns (of B) x 64 k values = 32 values per invocation, in
// tasks of a fixed part of a row: task `it` of invocation `tid` is part `tid % TPR` of row `it * (WG / TPR) + tid / TPR`.
// Consecutive invocations thus read consecutive bytes of one row, and a subgroup's load touches a few rows
// (coalesced), not 16 rows of 64 scattered bytes each. A task's values land in shared memory as f16vec4 chunks
// (16 per row of the step), chunk index given by A_CHUNK / B_CHUNK (part, v).
#if defined(A_F16)
// 8 halves (one 16-byte load) per task.
#define A_TPR 8u
#define A_VPT 2u
#define A_CHUNK(p, v) (2u * (p) + (v))
#elif defined(A_DQ)
// 4 values (one dq_get4) per task.
#define A_TPR 16u
#define A_VPT 1u
#define A_CHUNK(p, v) (p)
#elif defined(A_Q4_0)
// Bytes 4j..4j+3 of block p / 4 (j = p % 4): values 4j.. (low nibbles) and 16 + 4j.. (high nibbles).
#define A_TPR 8u
#define A_VPT 2u
#define A_CHUNK(p, v) (8u * ((p) >> 2) + 4u * (v) + ((p) & 3u))
#elif defined(A_Q8_0)
// Values 8j..8j+7 of block p / 4 (j = p % 4).
#define A_TPR 8u
#define A_VPT 2u
#define A_CHUNK(p, v) (8u * ((p) >> 2) + 2u * ((p) & 3u) + (v))
#elif defined(A_Q4_K) && defined(A_Q4_K_VEC)
// As below, in 16-byte loads (A's offset and row stride multiples of 8 words): part p takes code bytes
// 32c + 16p .. + 15, values 16p.. of both sub-blocks; the block's first 16 bytes (d, dmin, scales) in one load.
#define A_TPR 2u
#define A_VPT 8u
#define A_CHUNK(p, v) (4u * (p) + (v) + 4u * ((v) >> 2))
#elif defined(A_Q4_K)
// The step is a quarter c of a 256-value block: sub-blocks 2c (low nibbles of code bytes 32c..32c+31) and 2c + 1
// (high nibbles). Part p takes code bytes 32c + 8p .. + 7: values 8p.. of each sub-block.
#define A_TPR 4u
#define A_VPT 4u
#define A_CHUNK(p, v) (8u * ((v) >> 1) + 2u * (p) + ((v) & 1u))
#elif defined(A_Q6_K)
// The step is values 64c .. 64c + 63 of a block: quarters g0 = 2 (c & 1) and g0 + 1 of half n = c >> 1
// (ggml's dequantize_row_q6_K: value 128n + 32g + l). Part p takes l = 4p .. 4p + 3 of both quarters.
#define A_TPR 8u
#define A_VPT 2u
#define A_CHUNK(p, v) (8u * (v) + (p))
#endif
#define A_NT (BM * A_TPR / WG)

// 8 halves (one 16-byte load) per task.
#define B_TPR 8u
#define B_VPT 2u
#define B_CHUNK(p, v) (2u * (p) + (v))
#define B_NT (BN * B_TPR / WG)

// This invocation's values of the next step, in task order.
f16vec4 ra[A_NT * A_VPT];
f16vec4 rb[B_NT * B_VPT];

// Task `it` of A for the step at k0: row (of the tile) `r`, in range `ok`, starting at element / word `a_row`.
void load_a(uint it, uint a_row, bool ok, uint k0, uint p) {
    const uint o = it * A_VPT;
#if defined(A_Q4_0)
    const uint kb = k0 + 32u * (p >> 2);
    const bool in_k = ok && kb < pc.k;
    const uint blk = a_row + (min(kb, pc.k - 32u) / QK) * Q4_0_WORDS;
    const float dd = in_k ? f16_bits_to_float(a[blk]) : 0.0;
    const uint j = p & 3u;
    const uint lo = uint(a[blk + 1u + 2u * j]);
    const uint hi = uint(a[blk + 2u + 2u * j]);
    const uvec4 q = uvec4(lo, lo >> 8, hi, hi >> 8);
    ra[o] = f16vec4(nibbles_minus_8(q & 0xFu) * dd);
    ra[o + 1u] = f16vec4(nibbles_minus_8((q >> 4) & 0xFu) * dd);
#elif defined(A_Q8_0)
    const uint kb = k0 + 32u * (p >> 2);
    const bool in_k = ok && kb < pc.k;
    const uint blk = a_row + (min(kb, pc.k - 32u) / QK) * Q8_0_WORDS;
    const float dd = in_k ? f16_bits_to_float(a[blk]) : 0.0;
    const uint w0 = blk + 1u + 4u * (p & 3u);
    [[unroll]] for (uint v = 0; v < 2u; ++v) {
        const uint lo = uint(a[w0 + 2u * v]);
        const uint hi = uint(a[w0 + 2u * v + 1u]);
        ra[o + v] = f16vec4(vec4(lo_i8(lo), hi_i8(lo), lo_i8(hi), hi_i8(hi)) * dd);
    }
#elif defined(A_Q4_K) && defined(A_Q4_K_VEC)
    // Q4_K as below; scale and min j of the 12 scale bytes as ggml's get_scale_min_k4.
    const uint blk = a_row + (k0 / 256u) * 72u;
    const uint c = (k0 % 256u) / 64u;
    const uvec4 hd = a8[blk / 8u];
    const uvec4 q = a8[blk / 8u + 1u + 2u * c + p];
    const float d0 = dq_k_half(hd.x & 0xFFFFu);
    const float m0 = dq_k_half(hd.x >> 16);
    [[unroll]] for (uint h = 0; h < 2u; ++h) {
        const uint j = 2u * c + h;
        uint sc;
        uint mn;
        if (j < 4u) {
            sc = (hd[1] >> (8u * j)) & 63u;
            mn = (hd[2] >> (8u * j)) & 63u;
        } else {
            const uint hi = (hd[3] >> (8u * (j % 4u))) & 0xFFu;
            sc = (hi & 0xFu) | ((((hd[1] >> (8u * (j % 4u))) & 0xFFu) >> 6) << 4);
            mn = (hi >> 4) | ((((hd[2] >> (8u * (j % 4u))) & 0xFFu) >> 6) << 4);
        }
        precise const float dl = d0 * float(sc);
        precise const float ml = m0 * float(mn);
        [[unroll]] for (uint w = 0; w < 4u; ++w) {
            const uint x = q[w] >> (4u * h);
            const vec4 qv = vec4(uvec4(x, x >> 8, x >> 16, x >> 24) & 0xFu);
            precise const vec4 v = dl * qv - ml;
            ra[o + 4u * h + w] = ok ? f16vec4(v) : f16vec4(0.0);
        }
    }
#elif defined(A_Q4_K)
    // Q4_K (72 words: d, dmin, 12 scale bytes, 128 code bytes; k is a multiple of 256): d sc q - dmin m, as ggml's
    // dequantize_row_q4_K.
    const uint blk = a_row + (k0 / 256u) * 72u;
    const uint c = (k0 % 256u) / 64u;
    const float d0 = dq_k_half(uint(a[blk]));
    const float m0 = dq_k_half(uint(a[blk + 1u]));
    const uint qo = blk + 8u + 16u * c + 4u * p;
    [[unroll]] for (uint h = 0; h < 2u; ++h) {
        const uvec2 sm = dq_k_scale_min(blk, 4u, 2u * c + h);
        precise const float dl = d0 * float(sm.x);
        precise const float ml = m0 * float(sm.y);
        [[unroll]] for (uint w = 0; w < 2u; ++w) {
            const uint lo = uint(a[qo + 2u * w]);
            const uint hi = uint(a[qo + 2u * w + 1u]);
            const vec4 q = vec4((uvec4(lo, lo >> 8, hi, hi >> 8) >> (4u * h)) & 0xFu);
            precise const vec4 v = dl * q - ml;
            ra[o + 2u * h + w] = ok ? f16vec4(v) : f16vec4(0.0);
        }
    }
#elif defined(A_Q6_K)
    // Q6_K (105 words: 128 bytes ql, 64 bytes qh, 16 signed scales, d; k is a multiple of 256).
    const uint blk = a_row + (k0 / 256u) * 105u;
    const uint c = (k0 % 256u) / 64u;
    const uint n = c >> 1;
    const uint lsh = 4u * (c & 1u);
    const float dd = dq_k_half(uint(a[blk + 104u]));
    const uint h0 = uint(a[blk + 64u + 16u * n + 2u * p]);
    const uint h1 = uint(a[blk + 64u + 16u * n + 2u * p + 1u]);
    const uvec4 qh = uvec4(h0, h0 >> 8, h1, h1 >> 8);
    [[unroll]] for (uint v = 0; v < 2u; ++v) {
        const uint g = 2u * (c & 1u) + v;
        const uint sw = uint(a[blk + 96u + 4u * n + g]); // scales 8n + 2g (l < 16), 8n + 2g + 1 (l >= 16)
        const float s = dd * float(int(p >= 4u ? sw : sw << 8) << 16 >> 24);
        const uint lw = blk + 32u * n + 16u * v + 2u * p; // ql bytes 64n + 32 (g & 1) + l
        const uint l0 = uint(a[lw]);
        const uint l1 = uint(a[lw + 1u]);
        const uvec4 ql = (uvec4(l0, l0 >> 8, l1, l1 >> 8) >> lsh) & 0xFu;
        const vec4 q = vec4(ivec4(ql | (((qh >> (2u * g)) & 3u) << 4)) - 32);
        precise const vec4 val = s * q;
        ra[o + v] = ok ? f16vec4(val) : f16vec4(0.0);
    }
#elif defined(A_DQ)
    // k is a multiple of DQ_QK (and of 4): chunks past k read as zero.
    const uint e = k0 + 4u * p;
    const bool in_k = ok && e < pc.k;
    const uint ec = min(e, pc.k - 4u);
    const vec4 v = dq_get4(a_row + (ec / DQ_QK) * DQ_WORDS, (ec % DQ_QK) / 4u);
    ra[o] = in_k ? f16vec4(v) : f16vec4(0.0);
#else
    if (VEC_A) {
        const uvec4 v = a8[(a_row + k0) / 8u + p];
        ra[o] = ok ? f16vec4(unpackFloat2x16(v.x), unpackFloat2x16(v.y)) : f16vec4(0.0);
        ra[o + 1u] = ok ? f16vec4(unpackFloat2x16(v.z), unpackFloat2x16(v.w)) : f16vec4(0.0);
    } else {
        [[unroll]] for (uint v = 0; v < 2u; ++v) {
            [[unroll]] for (uint t = 0; t < 4; ++t) {
                const uint kk = k0 + 8u * p + 4u * v + t;
                ra[o + v][t] = (ok && kk < pc.k) ? uint16BitsToHalf(a[a_row + kk]) : float16_t(0.0);
            }
        }
    }
#endif
}

void load_b(uint it, uint b_col, bool ok, uint k0, uint p) {
    const uint o = it * B_VPT;
    if (VEC_B) {
        const uvec4 v = b8[(b_col + k0) / 8u + p];
        rb[o] = ok ? f16vec4(unpackFloat2x16(v.x), unpackFloat2x16(v.y)) : f16vec4(0.0);
        rb[o + 1u] = ok ? f16vec4(unpackFloat2x16(v.z), unpackFloat2x16(v.w)) : f16vec4(0.0);
    } else {
        [[unroll]] for (uint v = 0; v < 2u; ++v) {
            [[unroll]] for (uint t = 0; t < 4; ++t) {
                const uint kk = k0 + 8u * p + 4u * v + t;
                rb[o + v][t] = (ok && kk < pc.k) ? uint16BitsToHalf(b[b_col + kk]) : float16_t(0.0);
            }
        }
    }
}

void main() {
#ifdef DQ_INIT
    // Grid or level tables into shared memory (IQ, MXFP4 and NVFP4 types; every invocation, before any return).
    DQ_INIT();
#endif
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * BM;
#ifdef MUL_MAT_ID
    const uint expert = gl_WorkGroupID.z;
    const uint count = map[pc.r3 + expert];
    const uint list = pc.r3 + pc.r2 + expert * pc.n;
    const uint a_base = pc.a_off + expert * pc.a_s2;
#define N_COLS count
// Column c of the output (lc within the tile): where it starts in b, and where row r of it lies in dst.
#define B_START(c, lc) cols_b[lc]
#define D_AT(c, lc, r) (cols_d[lc] + (r))
#else
    const uint z = gl_WorkGroupID.z;
    const uint i12 = z % pc.ne12;
    const uint i13 = z / pc.ne12;
    const uint a_base = pc.a_off + (i12 / pc.r2) * pc.a_s2 + (i13 / pc.r3) * pc.a_s3;
    const uint b_base = pc.b_off + i12 * pc.b_s2 + i13 * pc.b_s3;
    const uint d_base = pc.d_off + i12 * pc.d_s2 + i13 * pc.d_s3;
#define N_COLS pc.n
#define B_START(c, lc) (b_base + min(c, pc.n - 1u) * pc.b_col)
#define D_AT(c, lc, r) (d_base + (c) * pc.d_col + (r))
#endif

    // Loader roles (see above): this invocation's part of a row of A and of a column of B.
    const uint pa = tid % A_TPR;
    const uint pb = tid % B_TPR;

    // Compute role: subgroup (wm, wn) of the WARPS_M x WARPS_N grid.
    const uint sg = gl_SubgroupID;
    const uint wm = sg % WARPS_M;
    const uint wn = sg / WARPS_M;

    // Rows of A and columns of B (index, in range, start) of each task.
#define A_ROW(it) ((it) * (WG / A_TPR) + tid / A_TPR)
#define B_COL(it) ((it) * (WG / B_TPR) + tid / B_TPR)
#define LOAD_STEP(k0)                                                                                               \
    [[unroll]] for (uint it = 0; it < A_NT; ++it) {                                                                 \
        const uint r = row0 + A_ROW(it);                                                                            \
        load_a(it, a_base + min(r, pc.m - 1u) * pc.a_row, r < pc.m, k0, pa);                                         \
    }                                                                                                               \
    [[unroll]] for (uint it = 0; it < B_NT; ++it) {                                                                 \
        const uint c = col0 + B_COL(it);                                                                            \
        load_b(it, B_START(c, B_COL(it)), c < N_COLS, k0, pb);                                                      \
    }

#ifdef MUL_MAT_ID
    for (uint col0 = gl_WorkGroupID.y * BN; col0 < count; col0 += gl_NumWorkGroups.y * BN) {
    // The previous tile's readers of the column table are done; then this tile's table (columns past the count
    // repeat the last pair and are neither used nor stored).
    barrier();
    if (tid < BN) {
        const uint pr = map[list + min(col0 + tid, count - 1u)];
        const uint slot = pr % pc.ne12;
        const uint tok = pr / pc.ne12;
        cols_b[tid] = pc.b_off + slot * pc.b_s2 + tok * pc.b_s3;
        cols_d[tid] = pc.d_off + slot * pc.d_s2 + tok * pc.d_s3;
    }
    barrier();
#else
    {
    const uint col0 = gl_WorkGroupID.y * BN;
#endif
    FRAG_C acc[TM * TN];
    [[unroll]] for (uint i = 0; i < TM; ++i) {
        [[unroll]] for (uint j = 0; j < TN; ++j) { acc[i * TN + j] = FRAG_C(0.0); }
    }

    LOAD_STEP(0u)
    for (uint k0 = 0; k0 < pc.k; k0 += BK) {
        barrier();
        [[unroll]] for (uint it = 0; it < A_NT; ++it) {
            [[unroll]] for (uint v = 0; v < A_VPT; ++v) { As[A_ROW(it) * SST4 + A_CHUNK(pa, v)] = ra[it * A_VPT + v]; }
        }
        [[unroll]] for (uint it = 0; it < B_NT; ++it) {
            [[unroll]] for (uint v = 0; v < B_VPT; ++v) { Bs[B_COL(it) * SST4 + B_CHUNK(pb, v)] = rb[it * B_VPT + v]; }
        }
        barrier();
        if (k0 + BK < pc.k) {
            LOAD_STEP(k0 + BK)
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
                if (row < pc.m && col < N_COLS) { d[D_AT(col, col - col0, row)] = Cs[stage + e]; }
            }
            subgroupBarrier();
        }
    }
    }
}
