#version 450
// Tiled matrix x matrix on 8-bit integer cooperative matrices: d[col, row] = sum_k A[row, k] * B[col, k] for Q4_0 /
// Q8_0 weights and activations already rounded to 8 bits per 32-value block (quantize_q8_1.comp), the way ggml's
// CPU backend multiplies them: per block an exact integer dot product of the codes, times the two block scales,
// summed in f32.
//
// Per 32-deep block and 16 x 16 output fragment: s8 x s8 -> s32 (16x16x32) gives the blocks' integer products;
// the scale matrix S[r][c] = dA[r] * dB[c] comes from a second, f16 16x16x16 product of a matrix whose first
// column is dA (zeros elsewhere) by one whose first row is dB (both scales are f16 values, so S is exact in f32);
// then acc += f32(products) * S component-wise. The integer products start from 0x4B400000 (the bits of
// 1.5 * 2^23), so each sum's bits read as a float are 1.5 * 2^23 + sum exactly (|sum| <= 32 * 128 * 128 < 2^22):
// one float subtraction instead of an int -> float conversion (a quarter-rate instruction on NVIDIA GPUs). That
// reads an s32 accumulator's elements as those of an f32 accumulator at the same index, which assumes the two
// types spread their elements over invocations the same way: true on NVIDIA's drivers, the only devices the
// host picks this kernel for (src/ops/coopmat.rs).
//
// Workgroup: 256 invocations = 8 subgroups of 32 (the host picks this kernel only for subgroup size 32), output
// tile BM x BN = 128 x 128, k steps of BK = 64 (two blocks) through shared memory. Subgroups form a 2 x 4 grid;
// each owns a 64 x 32 block of the tile: 4 x 2 fragments. Each invocation loads quarters of blocks of four rows
// of A and four columns of B per step (coalesced, see the loaders) into registers for the *next* step while the
// subgroups multiply the current one. Results leave through a per-subgroup 16 x 16 staging area with bounds checks.
//
// Variants (build.rs): A_Q4_0, A_Q8_0.
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int32 : require
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
// Shared rows of codes in uvec4 units: BK bytes + 16 of padding (80 bytes: 16-byte aligned for the cooperative
// loads; 8 consecutive rows start in 8 different 16-byte bank groups).
#define SST 5u
// Scale matrices: f16, stride SS halves. Entries [0, 2 * 128) hold this step's scales (block h of the step, row or
// column r at h * 128 + r); everything above stays zero, so a 16 x 16 load whose first column (row) is a run of
// scales reads zeros in its other 15 columns (rows).
#define SS 256u
#define SCALE_HALVES (16u * SS)

layout(local_size_x = WG, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) readonly buffer A { uint16_t a[]; };
// b quantized by quantize_q8_1.comp: 10 words per 32 values ([d] [sum q] [8 words of q]).
layout(binding = 1) readonly buffer BQ { uint bq[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

MATMUL_PUSH

shared uvec4 As[BM * SST];
shared uvec4 Bs[BN * SST];
shared float16_t Sa[SCALE_HALVES];
shared float16_t Sb[SCALE_HALVES];
shared float Cs[NWARPS * 256u];

#define FRAG_A coopmat<int8_t, gl_ScopeSubgroup, 16, 32, gl_MatrixUseA>
#define FRAG_B coopmat<int8_t, gl_ScopeSubgroup, 32, 16, gl_MatrixUseB>
#define FRAG_I coopmat<int32_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>
#define FRAG_SA coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define FRAG_SB coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define FRAG_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>

// Loaders. Each operand's step is 128 rows (of A) or columns (of B) x 2 blocks; invocation tid takes part
// p = tid % 8 (block p / 4, quarter j = p % 4) of rows it * 32 + tid / 8, it < 4: consecutive invocations read
// consecutive bytes of one row (coalesced). Per task two words of 4 signed codes (element e in byte e % 4 of word
// e / 4) and the block's scale: Q4_0 bytes 4j..4j+3 give words j (low nibbles) and 4 + j (high nibbles); Q8_0 and
// the 8-bit copy of b give words 2j, 2j + 1.
#define NT 4u
uint ra[2u * NT];
uint rb[2u * NT];
float da[NT];
float db[NT];

// Nibbles n (0..15) in each byte of x -> the signed bytes n - 8.
uint nibbles_to_s8(uint x) {
    return (((x & 0x0F0F0F0Fu) | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
}

void load_a(uint it, uint a_row, bool ok, uint k0, uint p) {
    // k is a multiple of 32; a block past k (the second half of a last step of 32) reads as zeros.
    const uint kb = k0 + 32u * (p >> 2);
    const bool in_k = ok && kb < pc.k;
    const uint kc = min(kb, pc.k - 32u) / QK;
    const uint j = p & 3u;
#if defined(A_Q4_0)
    const uint blk = a_row + kc * Q4_0_WORDS;
    da[it] = in_k ? f16_bits_to_float(a[blk]) : 0.0;
    const uint x = uint(a[blk + 1u + 2u * j]) | (uint(a[blk + 2u + 2u * j]) << 16);
    ra[2u * it] = in_k ? nibbles_to_s8(x) : 0u;
    ra[2u * it + 1u] = in_k ? nibbles_to_s8(x >> 4) : 0u;
#elif defined(A_Q8_0)
    const uint blk = a_row + kc * Q8_0_WORDS;
    da[it] = in_k ? f16_bits_to_float(a[blk]) : 0.0;
    [[unroll]] for (uint w = 0; w < 2u; ++w) {
        const uint x = uint(a[blk + 1u + 4u * j + 2u * w]) | (uint(a[blk + 2u + 4u * j + 2u * w]) << 16);
        ra[2u * it + w] = in_k ? x : 0u;
    }
#else
#error "mul_mat_cmq.comp: define A_Q4_0 or A_Q8_0"
#endif
}

void load_b(uint it, uint b_col, bool ok, uint k0, uint p) {
    const uint kb = k0 + 32u * (p >> 2);
    const bool in_k = ok && kb < pc.k;
    const uint blk = b_col + (min(kb, pc.k - 32u) / QK) * 10u;
    db[it] = in_k ? uintBitsToFloat(bq[blk]) : 0.0;
    [[unroll]] for (uint w = 0; w < 2u; ++w) { rb[2u * it + w] = in_k ? bq[blk + 2u + 2u * (p & 3u) + w] : 0u; }
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * BM;
    const uint col0 = gl_WorkGroupID.y * BN;
    const uint z = gl_WorkGroupID.z;
    const uint i12 = z % pc.ne12;
    const uint i13 = z / pc.ne12;
    const uint a_base = pc.a_off + (i12 / pc.r2) * pc.a_s2 + (i13 / pc.r3) * pc.a_s3;
    const uint b_base = pc.b_off + i12 * pc.b_s2 + i13 * pc.b_s3;
    const uint d_base = pc.d_off + i12 * pc.d_s2 + i13 * pc.d_s3;

    // Loader role (see above): part p of rows / columns it * 32 + tid / 8.
    const uint p = tid & 7u;
    const uint jb = p >> 2;
    const uint j = p & 3u;

    // Compute role: subgroup (wm, wn) of the WARPS_M x WARPS_N grid.
    const uint sg = gl_SubgroupID;
    const uint wm = sg % WARPS_M;
    const uint wn = sg / WARPS_M;

    // The zero part of the scale matrices, written once.
    for (uint i = 2u * 128u + tid; i < SCALE_HALVES; i += WG) {
        Sa[i] = float16_t(0.0);
        Sb[i] = float16_t(0.0);
    }

    FRAG_C acc[TM * TN];
    [[unroll]] for (uint i = 0; i < TM * TN; ++i) { acc[i] = FRAG_C(0.0); }
    FRAG_I bias = FRAG_I(0x4B400000);
    FRAG_C zero = FRAG_C(0.0);

#define LOAD_STEP(k0)                                                                                               \
    [[unroll]] for (uint it = 0; it < NT; ++it) {                                                                   \
        const uint r = row0 + it * 32u + (tid >> 3);                                                                \
        load_a(it, a_base + min(r, pc.m - 1u) * pc.a_row, r < pc.m, k0, p);                                          \
        const uint c = col0 + it * 32u + (tid >> 3);                                                                \
        load_b(it, b_base + min(c, pc.n - 1u) * pc.b_col, c < pc.n, k0, p);                                          \
    }

    LOAD_STEP(0u)
    for (uint k0 = 0; k0 < pc.k; k0 += BK) {
        barrier();
        [[unroll]] for (uint it = 0; it < NT; ++it) {
            const uint r = it * 32u + (tid >> 3);
#if defined(A_Q4_0)
            As[r * SST + 2u * jb][j] = ra[2u * it];
            As[r * SST + 2u * jb + 1u][j] = ra[2u * it + 1u];
#else
            As[r * SST + 2u * jb + (j >> 1)][2u * (j & 1u)] = ra[2u * it];
            As[r * SST + 2u * jb + (j >> 1)][2u * (j & 1u) + 1u] = ra[2u * it + 1u];
#endif
            Bs[r * SST + 2u * jb + (j >> 1)][2u * (j & 1u)] = rb[2u * it];
            Bs[r * SST + 2u * jb + (j >> 1)][2u * (j & 1u) + 1u] = rb[2u * it + 1u];
            if (j == 0u) {
                Sa[jb * 128u + r] = float16_t(da[it]);
                Sb[jb * 128u + r] = float16_t(db[it]);
            }
        }
        barrier();
        if (k0 + BK < pc.k) {
            LOAD_STEP(k0 + BK)
        }
        [[unroll]] for (uint kk = 0; kk < 2u; ++kk) {
            FRAG_A fa[TM];
            FRAG_B fb[TN];
            FRAG_SA sa[TM];
            FRAG_SB sb[TN];
            [[unroll]] for (uint i = 0; i < TM; ++i) {
                const uint r = wm * (TM * 16u) + 16u * i;
                coopMatLoad(fa[i], As, r * SST + 2u * kk, SST, gl_CooperativeMatrixLayoutRowMajor);
                coopMatLoad(sa[i], Sa, kk * 128u + r, SS, gl_CooperativeMatrixLayoutColumnMajor);
            }
            [[unroll]] for (uint j = 0; j < TN; ++j) {
                const uint c = wn * (TN * 16u) + 16u * j;
                coopMatLoad(fb[j], Bs, c * SST + 2u * kk, SST, gl_CooperativeMatrixLayoutColumnMajor);
                coopMatLoad(sb[j], Sb, kk * 128u + c, SS, gl_CooperativeMatrixLayoutRowMajor);
            }
            [[unroll]] for (uint i = 0; i < TM; ++i) {
                [[unroll]] for (uint j = 0; j < TN; ++j) {
                    FRAG_I prod = coopMatMulAdd(fa[i], fb[j], bias);
                    FRAG_C scale = coopMatMulAdd(sa[i], sb[j], zero);
                    for (int e = 0; e < prod.length(); ++e) {
                        acc[i * TN + j][e] = fma(intBitsToFloat(prod[e]) - 12582912.0, scale[e], acc[i * TN + j][e]);
                    }
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
