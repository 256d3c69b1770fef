#version 450
// Matrix x matrix on KHR cooperative matrices for f16 weights (a kept f16 copy or F16 tensors) and the f16 copy of
// the activations, for prompts of many columns: d[col][row] = sum_k A[row][k] * B[col][k], f16 x f16 -> f32
// fragments of 16x16x16 at subgroup scope.
//
// Where it differs from mul_mat_cm.comp (every weight type, loaders in 8-byte pieces, every result through
// staging): A and B move in 16-byte chunks from memory to registers to shared memory (the host checks offsets,
// strides and k are multiples of 8 halves), whole tiles (every row, column and k step in range) run a loop without
// clamps or selects, and whole tiles with 16-byte aligned columns store their fragments straight to d. On an H100
// this kernel ran f16 products of 16 to 2,048 columns 11-28% faster than the driver's NV_cooperative_matrix2
// kernel (NOTES.md, 2026-12-06); the host takes it from `GGVK_CM16_MIN_COLS` columns on (16 by default).
//
// Workgroup: 256 invocations = 8 subgroups of 32 (the host picks this kernel only for subgroup size 32) in a 2 x 4
// grid, each owning 4 x 2 fragments (64 x 32); tile 128 x 128, k steps of 64 through one shared buffer: per step
// the invocations store the chunks they loaded, then (after a barrier) issue the next step's loads and multiply the
// current step out of shared memory. Two shared buffers with 32-value steps (one barrier a step, 40 KiB) measured
// 20-30% slower: the work between barriers, not their number, is what this tile loop needs. Shared rows are 64 + 8
// halves (16-byte aligned for the fragment loads; consecutive rows start in different bank groups).
//
// FUSE_ADD: the ADD that follows the product (graph/fusion.rs, mul_mat_add): out = d + addend, both laid out as
// d (its column stride), from floats pc.pad0 (addend) and pc.pad1 (out), one batch; d is still written.
//
// FUSE_GLU: a prompt's gate and up products of the same activations and the GLU after them (graph/fusion.rs,
// mul_mat_pair_glu), one batch. The workgroup's 128 shared rows are 64 gate rows and the same 64 rows of the up
// weights, so a tile has 64 output rows and each subgroup holds the gate and up fragments of the same 32 x 32
// outputs: both products are stored as the separate kernels store them, then act(gate) * up per element in f32
// and as the packed f16 copy (columns of m halves) the down product reads.
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

#define WG 256u
layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
#define WARPS_M 2u
#define WARPS_N 4u
#define TM 4u
#define TN 2u
#define BK 64u
#define BM (WARPS_M * TM * 16u)
#ifdef FUSE_GLU
#if defined(FUSE_ADD)
#error "FUSE_GLU and FUSE_ADD are separate variants"
#endif
// Output rows per tile: half the shared rows are the gate weights', half the up weights'.
#define OUT_BM (BM / 2u)
#else
#define OUT_BM BM
#endif
#define BN (WARPS_N * TN * 16u)
// Shared row (BK + 8 halves) and a step's row in 16-byte chunks.
#define RU ((BK + 8u) / 8u)
#define CPR (BK / 8u)
// Rows of the tile one pass of the workgroup loads, and passes per step.
#define ROWS_PER_PASS (WG / CPR)
#define A_PASSES (BM / ROWS_PER_PASS)
#define B_PASSES (BN / ROWS_PER_PASS)

layout(binding = 0) readonly buffer A { uvec4 a[]; };
layout(binding = 1) readonly buffer B { uvec4 b[]; };
layout(binding = 2) writeonly buffer D { float d[]; };
#ifdef FUSE_ADD
layout(binding = 3) readonly buffer FA { float addend[]; };
layout(binding = 4) writeonly buffer FO { float fused_out[]; };
#endif
#ifdef FUSE_GLU
// The up weights (laid out as A, from half pc.a2_off), the up product (laid out as d, from float pc.d2_off), the
// GLU's output (laid out as d, from float pc.g_off) and its f16 copy (columns of m halves, from half pc.g16_off).
layout(binding = 3) readonly buffer A2 { uvec4 a2[]; };
layout(binding = 4) writeonly buffer D2 { float d2[]; };
layout(binding = 5) writeonly buffer GO { float glu_out[]; };
layout(binding = 6) writeonly buffer GH { float16_t glu_half[]; };
layout(push_constant) uniform Push { MATMUL_PUSH_FIELDS uint a2_off; uint d2_off; uint g_off; uint g16_off; } pc;
#include "half_bits.glsl"
#include "activations.glsl"
// The GLU (glu.comp's ops): SWIGLU (0), REGLU, GEGLU, GEGLU_ERF, GEGLU_QUICK.
layout(constant_id = 0) const uint GLU_OP = 0;
#else
MATMUL_PUSH
#endif

// Spec constant 1 (the host's default): the grid's x runs over column tiles and y over row tiles (workgroups
// launched together then share weight rows, which stream from memory once while the activations stay in L2),
// instead of x over rows.
layout(constant_id = 1) const uint COLS_FIRST = 0;

shared uvec4 sa[BM * RU];
shared uvec4 sb[BN * RU];
shared float cs[8u * 256u];

// The next step's global loads of this invocation, in flight.
uvec4 ra[A_PASSES];
uvec4 rb[B_PASSES];

#define FRAG_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define FRAG_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define FRAG_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = (COLS_FIRST != 0u ? gl_WorkGroupID.y : gl_WorkGroupID.x) * OUT_BM;
    const uint col0 = (COLS_FIRST != 0u ? gl_WorkGroupID.x : gl_WorkGroupID.y) * BN;
    const uint z = gl_WorkGroupID.z;
    const uint i12 = z % pc.ne12;
    const uint i13 = z / pc.ne12;
    // Offsets in 16-byte chunks (A, B) and floats (d).
    const uint a_base = (pc.a_off + (i12 / pc.r2) * pc.a_s2 + (i13 / pc.r3) * pc.a_s3) / 8u;
    const uint b_base = (pc.b_off + i12 * pc.b_s2 + i13 * pc.b_s3) / 8u;
    const uint d_base = pc.d_off + i12 * pc.d_s2 + i13 * pc.d_s3;
    const uint a_ru = pc.a_row / 8u;
    const uint b_ru = pc.b_col / 8u;
    const uint k_chunks = pc.k / 8u;

    // Loader role: chunk `part` of tile row `lrow` (+ ROWS_PER_PASS per pass); rows past m / n read row m - 1 /
    // n - 1 and are zeroed.
    const uint part = tid % CPR;
    const uint lrow = tid / CPR;
    uint a_src[A_PASSES];
    bool a_ok[A_PASSES];
    [[unroll]] for (uint i = 0; i < A_PASSES; ++i) {
#ifdef FUSE_GLU
        // The first half of the passes loads gate rows, the second the same rows of the up weights.
        const uint r = row0 + lrow + (i % (A_PASSES / 2u)) * ROWS_PER_PASS;
        const uint base = i < A_PASSES / 2u ? a_base : pc.a2_off / 8u;
#else
        const uint r = row0 + lrow + i * ROWS_PER_PASS;
        const uint base = a_base;
#endif
        a_ok[i] = r < pc.m;
        a_src[i] = base + min(r, pc.m - 1u) * a_ru;
    }
    uint b_src[B_PASSES];
    bool b_ok[B_PASSES];
    [[unroll]] for (uint i = 0; i < B_PASSES; ++i) {
        const uint c = col0 + lrow + i * ROWS_PER_PASS;
        b_ok[i] = c < pc.n;
        b_src[i] = b_base + min(c, pc.n - 1u) * b_ru;
    }

// A's chunk `idx` for load pass `i` (a constant once unrolled): FUSE_GLU's second half of the passes reads a2.
#ifdef FUSE_GLU
#define A_AT(i, idx) ((i) < A_PASSES / 2u ? a[idx] : a2[idx])
#else
#define A_AT(i, idx) a[idx]
#endif

// Edge tiles: rows past m / n read row m - 1 / n - 1 and chunks past k the row's last chunk, all zeroed, so every
// load stays inside its row. Whole tiles read without either.
#define LOAD_EDGE(step)                                                                                             \
    {                                                                                                               \
        const uint kc = (step) * CPR + part;                                                                        \
        const bool in_k = kc < k_chunks;                                                                            \
        const uint kcl = min(kc, k_chunks - 1u);                                                                    \
        [[unroll]] for (uint i = 0; i < A_PASSES; ++i) {                                                            \
            const uvec4 v = A_AT(i, a_src[i] + kcl);                                                                \
            ra[i] = (a_ok[i] && in_k) ? v : uvec4(0);                                                               \
        }                                                                                                           \
        [[unroll]] for (uint i = 0; i < B_PASSES; ++i) {                                                            \
            const uvec4 v = b[b_src[i] + kcl];                                                                      \
            rb[i] = (b_ok[i] && in_k) ? v : uvec4(0);                                                               \
        }                                                                                                           \
    }
#define LOAD_WHOLE(step)                                                                                            \
    {                                                                                                               \
        const uint kc = (step) * CPR + part;                                                                        \
        [[unroll]] for (uint i = 0; i < A_PASSES; ++i) { ra[i] = A_AT(i, a_src[i] + kc); }                          \
        [[unroll]] for (uint i = 0; i < B_PASSES; ++i) { rb[i] = b[b_src[i] + kc]; }                                \
    }
#define STORE()                                                                                                     \
    [[unroll]] for (uint i = 0; i < A_PASSES; ++i) { sa[(lrow + i * ROWS_PER_PASS) * RU + part] = ra[i]; }          \
    [[unroll]] for (uint i = 0; i < B_PASSES; ++i) { sb[(lrow + i * ROWS_PER_PASS) * RU + part] = rb[i]; }

    // Compute role: subgroup (wm, wn) of the grid.
    const uint sg = gl_SubgroupID;
    const uint wm = sg % WARPS_M;
    const uint wn = sg / WARPS_M;
    FRAG_C acc[TM * TN];
// Shared row of fragment row i: FUSE_GLU's first TM / 2 fragments are gate rows, the others the up rows OUT_BM on.
#ifdef FUSE_GLU
#define FRAG_ROW(i) (((i) / (TM / 2u)) * OUT_BM + wm * (TM / 2u) * 16u + 16u * ((i) % (TM / 2u)))
#else
#define FRAG_ROW(i) (wm * TM * 16u + 16u * (i))
#endif
    [[unroll]] for (uint i = 0; i < TM * TN; ++i) { acc[i] = FRAG_C(0.0); }
#define COMPUTE()                                                                                                   \
    [[unroll]] for (uint kk = 0; kk < BK / 16u; ++kk) {                                                             \
        FRAG_A fa[TM];                                                                                              \
        FRAG_B fb[TN];                                                                                              \
        [[unroll]] for (uint i = 0; i < TM; ++i) {                                                                  \
            coopMatLoad(fa[i], sa, FRAG_ROW(i) * RU + 2u * kk, RU,                                                \
                        gl_CooperativeMatrixLayoutRowMajor);                                                        \
        }                                                                                                           \
        [[unroll]] for (uint j = 0; j < TN; ++j) {                                                                  \
            coopMatLoad(fb[j], sb, (wn * TN * 16u + 16u * j) * RU + 2u * kk, RU,                                  \
                        gl_CooperativeMatrixLayoutColumnMajor);                                                     \
        }                                                                                                           \
        [[unroll]] for (uint i = 0; i < TM; ++i) {                                                                  \
            [[unroll]] for (uint j = 0; j < TN; ++j) {                                                              \
                acc[i * TN + j] = coopMatMulAdd(fa[i], fb[j], acc[i * TN + j]);                                     \
            }                                                                                                       \
        }                                                                                                           \
    }

    const uint steps = (pc.k + BK - 1u) / BK;
    const bool whole = row0 + OUT_BM <= pc.m && col0 + BN <= pc.n && pc.k % BK == 0u;
#define TILE_LOOP(LOAD)                                                                                             \
    LOAD(0u)                                                                                                        \
    for (uint s = 0; s < steps; ++s) {                                                                              \
        barrier();                                                                                                  \
        STORE()                                                                                                     \
        barrier();                                                                                                  \
        if (s + 1u < steps) { LOAD(s + 1u) }                                                                        \
        COMPUTE()                                                                                                   \
    }
    if (whole) {
        TILE_LOOP(LOAD_WHOLE)
    } else {
        TILE_LOOP(LOAD_EDGE)
    }

    // Results (the staging areas are apart from the tiles: no barrier before them).
    const uint lane = gl_SubgroupInvocationID;
    const uint stage = sg * 256u;
#ifdef FUSE_GLU
    // Whole tiles with 16-byte aligned columns (f32 and f16) store the fragments directly, the GLU applied per
    // element of the gate fragment (fragments of one type hold the same elements in the same invocations); edge
    // tiles go through the staging area, gate then up.
    const bool direct = row0 + OUT_BM <= pc.m && col0 + BN <= pc.n && (d_base % 4u) == 0u && (pc.d_col % 4u) == 0u
                        && (pc.d2_off % 4u) == 0u && (pc.g_off % 4u) == 0u && (pc.g16_off % 8u) == 0u
                        && (pc.m % 8u) == 0u;
    [[unroll]] for (uint i = 0; i < TM / 2u; ++i) {
        [[unroll]] for (uint j = 0; j < TN; ++j) {
            const uint r0 = row0 + wm * (TM / 2u) * 16u + 16u * i;
            const uint c0 = col0 + wn * TN * 16u + 16u * j;
            FRAG_C g = acc[i * TN + j];
            const FRAG_C u = acc[(i + TM / 2u) * TN + j];
            if (direct) {
                coopMatStore(g, d, d_base + c0 * pc.d_col + r0, pc.d_col, gl_CooperativeMatrixLayoutColumnMajor);
                coopMatStore(u, d2, pc.d2_off + c0 * pc.d_col + r0, pc.d_col, gl_CooperativeMatrixLayoutColumnMajor);
                [[unroll]] for (int e = 0; e < g.length(); ++e) { g[e] = glu_plain(GLU_OP, g[e], u[e]); }
                coopMatStore(g, glu_out, pc.g_off + c0 * pc.d_col + r0, pc.d_col,
                             gl_CooperativeMatrixLayoutColumnMajor);
                const coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator> h =
                    coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>(g);
                coopMatStore(h, glu_half, pc.g16_off + c0 * pc.m + r0, pc.m, gl_CooperativeMatrixLayoutColumnMajor);
            } else {
                // Column-major staging (cs[stage + n * 16 + m]); each invocation keeps its 8 gate values.
                coopMatStore(g, cs, stage, 16u, gl_CooperativeMatrixLayoutColumnMajor);
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                float gv[8];
                [[unroll]] for (uint t = 0; t < 8u; ++t) { gv[t] = cs[stage + lane + 32u * t]; }
                subgroupBarrier();
                coopMatStore(u, cs, stage, 16u, gl_CooperativeMatrixLayoutColumnMajor);
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                [[unroll]] for (uint t = 0; t < 8u; ++t) {
                    const uint e = lane + 32u * t;
                    const uint row = r0 + (e & 15u);
                    const uint col = c0 + (e >> 4);
                    if (row < pc.m && col < pc.n) {
                        const float uv = cs[stage + e];
                        const float y = glu_plain(GLU_OP, gv[t], uv);
                        d[d_base + col * pc.d_col + row] = gv[t];
                        d2[pc.d2_off + col * pc.d_col + row] = uv;
                        glu_out[pc.g_off + col * pc.d_col + row] = y;
                        glu_half[pc.g16_off + col * pc.m + row] = float16_t(y);
                    }
                }
                subgroupBarrier();
            }
        }
    }
#else
    // Whole tiles whose columns start 16-byte aligned store their fragments directly.
    const bool direct = row0 + BM <= pc.m && col0 + BN <= pc.n && (d_base % 4u) == 0u && (pc.d_col % 4u) == 0u
#ifdef FUSE_ADD
                        && (pc.pad0 % 4u) == 0u && (pc.pad1 % 4u) == 0u
#endif
        ;
    [[unroll]] for (uint i = 0; i < TM; ++i) {
        [[unroll]] for (uint j = 0; j < TN; ++j) {
            const uint r0 = row0 + wm * TM * 16u + 16u * i;
            const uint c0 = col0 + wn * TN * 16u + 16u * j;
            if (direct) {
                coopMatStore(acc[i * TN + j], d, d_base + c0 * pc.d_col + r0, pc.d_col,
                             gl_CooperativeMatrixLayoutColumnMajor);
#ifdef FUSE_ADD
                FRAG_C r;
                coopMatLoad(r, addend, pc.pad0 + c0 * pc.d_col + r0, pc.d_col, gl_CooperativeMatrixLayoutColumnMajor);
                coopMatStore(acc[i * TN + j] + r, fused_out, pc.pad1 + c0 * pc.d_col + r0, pc.d_col,
                             gl_CooperativeMatrixLayoutColumnMajor);
#endif
            } else {
                // Column-major staging: cs[stage + n * 16 + m].
                coopMatStore(acc[i * TN + j], cs, stage, 16u, gl_CooperativeMatrixLayoutColumnMajor);
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                [[unroll]] for (uint e = lane; e < 256u; e += 32u) {
                    const uint row = r0 + (e & 15u);
                    const uint col = c0 + (e >> 4);
                    if (row < pc.m && col < pc.n) {
                        const float v = cs[stage + e];
                        d[d_base + col * pc.d_col + row] = v;
#ifdef FUSE_ADD
                        fused_out[pc.pad1 + col * pc.d_col + row] = v + addend[pc.pad0 + col * pc.d_col + row];
#endif
                    }
                }
                subgroupBarrier();
            }
        }
    }
#endif
}
