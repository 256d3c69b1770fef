#version 450
// The tensor cores' rate through KHR cooperative matrices, for `ggvk peak` (src/bin/ggvk.rs): each subgroup runs
// `iters` rounds of NA x NB fragment products (16x16x16 f16 -> f32, or 16x16x32 s8 -> s32 with INT8) on
// accumulators it keeps, with the operand fragments either loaded once into registers or (SMEM) reloaded every
// round from shared-memory tiles laid out as a prompt product's (rows of 4 k steps + 16 elements of padding), so the
// second figure is the ceiling of a kernel that feeds the tensor cores from shared memory. The accumulators are
// stored at the end so that no work is dropped. 256 invocations, 8 subgroups of 32 (the tool checks).
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int32 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
#if INT8
#define ET int8_t
#define AT int32_t
#define KK 32u
#else
#define ET float16_t
#define AT float
#define KK 16u
#endif
#define NA 4u
#define NB 2u
// Subgroups in a 2 x 4 grid over a 128 x 128 tile (SMEM), k steps of 4 fragments.
#define WM 2u
#define KSTEPS 4u
#define BM (WM * NA * 16u)
#define BN ((8u / WM) * NB * 16u)
#define STRIDE (KSTEPS * KK + 16u)
layout(binding = 0) readonly buffer In { ET inp[]; };
layout(binding = 1) writeonly buffer Out { AT outp[]; };
layout(push_constant) uniform Push { uint iters; } pc;
#define ACC coopmat<AT, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>
#define ROW_MAJOR gl_CooperativeMatrixLayoutRowMajor
#define COL_MAJOR gl_CooperativeMatrixLayoutColumnMajor
#if SMEM
shared ET sa[BM * STRIDE];
shared ET sb[BN * STRIDE];
#endif

void main() {
    const uint sg = gl_SubgroupID;
    ACC acc[NA][NB];
    [[unroll]] for (uint i = 0; i < NA; ++i) {
        [[unroll]] for (uint j = 0; j < NB; ++j) { acc[i][j] = ACC(AT(0)); }
    }
    coopmat<ET, gl_ScopeSubgroup, 16, KK, gl_MatrixUseA> a[NA];
    coopmat<ET, gl_ScopeSubgroup, KK, 16, gl_MatrixUseB> b[NB];
#if SMEM
    const uint wm = sg % WM;
    const uint wn = sg / WM;
    for (uint i = gl_LocalInvocationID.x; i < BM * STRIDE; i += 256u) { sa[i] = inp[i % 4096u]; }
    for (uint i = gl_LocalInvocationID.x; i < BN * STRIDE; i += 256u) { sb[i] = inp[(i + 77u) % 4096u]; }
    barrier();
    for (uint it = 0; it < pc.iters; ++it) {
        [[unroll]] for (uint kk = 0; kk < KSTEPS; ++kk) {
            // The k step rotates with the round, so no load repeats the previous round's.
            const uint k = ((kk + it) % KSTEPS) * KK;
            [[unroll]] for (uint i = 0; i < NA; ++i) {
                coopMatLoad(a[i], sa, (wm * NA * 16u + i * 16u) * STRIDE + k, STRIDE, ROW_MAJOR);
            }
            [[unroll]] for (uint j = 0; j < NB; ++j) {
                coopMatLoad(b[j], sb, (wn * NB * 16u + j * 16u) * STRIDE + k, STRIDE, COL_MAJOR);
            }
            [[unroll]] for (uint i = 0; i < NA; ++i) {
                [[unroll]] for (uint j = 0; j < NB; ++j) { acc[i][j] = coopMatMulAdd(a[i], b[j], acc[i][j]); }
            }
        }
    }
#else
    [[unroll]] for (uint i = 0; i < NA; ++i) { coopMatLoad(a[i], inp, i * 16u * KK, KK, ROW_MAJOR); }
    [[unroll]] for (uint j = 0; j < NB; ++j) {
        coopMatLoad(b[j], inp, 2048u + j * 16u * KK, KK, COL_MAJOR);
    }
    for (uint it = 0; it < pc.iters; ++it) {
        [[unroll]] for (uint i = 0; i < NA; ++i) {
            [[unroll]] for (uint j = 0; j < NB; ++j) { acc[i][j] = coopMatMulAdd(a[i], b[j], acc[i][j]); }
        }
    }
#endif
    const uint base = (gl_WorkGroupID.x * 8u + sg) * NA * NB * 256u;
    [[unroll]] for (uint i = 0; i < NA; ++i) {
        [[unroll]] for (uint j = 0; j < NB; ++j) {
            coopMatStore(acc[i][j], outp, base + (i * NB + j) * 256u, 16, ROW_MAJOR);
        }
    }
}
