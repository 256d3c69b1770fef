#version 450
// ggml_flash_attn_ext for many query rows (prompt processing) on KHR cooperative matrices: F16 K and V, head
// sizes DK = DV = D a multiple of 16 up to 128, the same online softmax (running max M and sum L per row, in f32)
// as flash_attn.comp.
//
// One workgroup of 4 subgroups of 32 per (block of BR = 64 rows, KV head, sequence); rows are the query rows of
// every Q head sharing the KV head (row = iq1 * ratio + g), as in flash_attn.comp. Subgroup s owns rows
// 16 s .. 16 s + 15: its Q rows are f16 A fragments loaded once from a shared area of their own. Per tile of
// BC = 32 keys:
//   1. each invocation reads the mask entries it needs for the softmax (row 16 s + lane / 2, keys 16 (lane & 1)
//      .. + 15 of the tile); a tile that no row of the block sees (causal masks) is skipped as a whole;
//   2. the K tile (f16) into shared memory; S = Q K^T on f16 16x16x16 fragments (f32 accumulators), stored to
//      this subgroup's score area;
//   3. softmax, two invocations per row: scale, softcap, ALiBi slope x mask, new max, rescale factor alpha (to
//      shared memory), probabilities as f16 into shared memory;
//   4. the V tile into the K tile's place; per 16 output columns, P V into a fresh accumulator, stored to the score
//      area and added in f32 registers: O[r][c] = alpha[r] O[r][c] + (P V)[r][c].
// The output rows live in plain registers: invocation `lane` owns elements lane + 32 j (j < 8) of each 16 x 16
// block in row-major order (row lane / 16 + 2 j, column lane % 16). Fragments are only loaded, multiplied and
// stored through memory in a stated layout: nothing depends on how an implementation spreads fragment elements
// over invocations, and no arithmetic is done on fragments.
// Q and P enter the products as f16 (as in ggml-vulkan); K, V are F16 already; sums are f32.
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "common.glsl"
#include "half_bits.glsl"

#ifndef D
#error "flash_attn_cm.comp: define D (head size)"
#endif
#define WG 128u
#define BR 64u
#define BC 32u
// Keys of a tile per invocation in the softmax (two invocations per row).
#define KPI (BC / 2u)
#define ND (D / 16u)
// Shared K/V rows: D halves + 8 (16-byte aligned rows in distinct bank groups), in f16vec4 units.
#define KVST4 ((D + 8u) / 4u)
// P rows: BC halves + 8, in f16vec4 units.
#define PST4 ((BC + 8u) / 4u)
// Score area of one subgroup, vec4 units: BC / 16 row-major 16 x 16 f32 blocks (64 vec4 each, rows of 64 bytes;
// a padded row-major store of the whole 16 x BC block, rows of 144 or 272 bytes, gave wrong scores on NVIDIA's
// driver). Block 0 doubles as the staging block of P V.
#define SAREA (BC * 4u)

layout(local_size_x = 128, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { uvec4 k4[]; };
layout(binding = 2) readonly buffer V { uvec4 v4[]; };
layout(binding = 3) readonly buffer M { uint16_t mask[]; };
layout(binding = 4) readonly buffer S { float sinks[]; };
layout(binding = 5) writeonly buffer Dst { float d[]; };

// K and V offsets and strides are multiples of 8 16-bit words here.
#include "fa_push.glsl"


shared f16vec4 Qs[BR * KVST4];
shared f16vec4 KV[BC * KVST4];
shared vec4 Ss[4u * SAREA];
shared f16vec4 Ps[4u * 16u * PST4];
// Per subgroup, one factor per row (the softmax's alpha; at the end a / L).
shared float Al[4u * 16u];
// 16 bytes, like every shared variable here: NVIDIA's driver may place a smaller one before the others and leave the
// fragment areas off 16-byte boundaries, where cooperative-matrix loads return wrong values (a 4-byte flag did).
shared uvec4 anyLive;

#define FRAG_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define FRAG_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define FRAG_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>

float tanh_safe(float x) {
    const float e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}

// Element `e` (row-major 16 x 16, e < 256) of this subgroup's staging block.
float staged(uint area, uint e) { return Ss[area + e / 4u][e % 4u]; }

// Rows c0 .. c0 + BC - 1 of K or V (16-bit words from `base`, stride `s1`) into KV as f16; rows past n_kv as zeros.
#define LOAD_TILE(buf, base, s1)                                                                                    \
    for (uint e = tid; e < BC * (D / 8u); e += WG) {                                                                \
        const uint c = e / (D / 8u);                                                                                \
        const uint part = e % (D / 8u);                                                                             \
        uvec4 x = uvec4(0u);                                                                                        \
        if (c0 + c < pc.n_kv) { x = buf[((base) + (c0 + c) * (s1)) / 8u + part]; }                                  \
        KV[c * KVST4 + 2u * part] = f16vec4(unpackFloat2x16(x.x), unpackFloat2x16(x.y));                            \
        KV[c * KVST4 + 2u * part + 1u] = f16vec4(unpackFloat2x16(x.z), unpackFloat2x16(x.w));                       \
    }

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint sg = gl_SubgroupID;
    const uint lane = gl_SubgroupInvocationID;
    const uint rb = gl_WorkGroupID.x;
    const uint ih = gl_WorkGroupID.y;
    const uint iq3 = gl_WorkGroupID.z;
    const uint rows = pc.n_q * pc.ratio;
    const bool has_mask = (pc.flags & FLAG_MASK) != 0u;
    const uint k_base = pc.k_off + ih * pc.k_s2 + iq3 * pc.k_s3;
    const uint v_base = pc.v_off + ih * pc.v_s2 + iq3 * pc.v_s3;

    // Softmax role: row r of this subgroup's 16, keys KPI hh .. KPI hh + KPI - 1 of a tile.
    const uint r = lane >> 1;
    const uint hh = lane & 1u;
    const uint row = rb * BR + sg * 16u + r;
    const bool row_ok = row < rows;
    const uint iq1 = row / pc.ratio;
    const uint iq2 = ih * pc.ratio + row % pc.ratio;
    float slope = 1.0;
    uint mb = 0u;
    if (row_ok) {
        if ((pc.flags & FLAG_ALIBI) != 0u) {
            const uint nhl2 = pc.flags >> 16;
            slope = iq2 < nhl2 ? exp2(pc.e0 * float(iq2 + 1u)) : exp2(pc.e1 * float(2u * (iq2 - nhl2) + 1u));
        }
        const uint m_ne2 = pc.m_ne23 & 0xFFFFu;
        const uint m_ne3 = pc.m_ne23 >> 16;
        mb = pc.m_off + iq1 * pc.m_s1 + (iq2 % m_ne2) * pc.m_s2 + (iq3 % m_ne3) * pc.m_s3;
    }

    // Q rows of the block as f16 (rows past the end are zero), four values at a time.
    for (uint w = tid; w < BR * D / 4u; w += WG) {
        const uint rr = (4u * w) / D;
        const uint col = (4u * w) % D;
        const uint br = rb * BR + rr;
        f16vec4 x = f16vec4(0.0);
        if (br < rows) {
            const uint a1 = br / pc.ratio;
            const uint a2 = ih * pc.ratio + br % pc.ratio;
            const uint qi = pc.q_off + col + a1 * pc.q_s1 + a2 * pc.q_s2 + iq3 * pc.q_s3;
            [[unroll]] for (uint j = 0u; j < 4u; ++j) {
                x[j] = uint16BitsToHalf(uint16_t(float_bits_to_half(floatBitsToUint(q[qi + j]))));
            }
        }
        Qs[rr * KVST4 + col / 4u] = x;
    }
    barrier();
    FRAG_A qf[ND];
    [[unroll]] for (uint t = 0; t < ND; ++t) {
        coopMatLoad(qf[t], Qs, sg * 16u * KVST4 + 4u * t, KVST4, gl_CooperativeMatrixLayoutRowMajor);
    }

    // This invocation's output elements: o[8 t + j] is row lane / 16 + 2 j, column 16 t + lane % 16.
    float o[ND * 8u];
    [[unroll]] for (uint i = 0; i < ND * 8u; ++i) { o[i] = 0.0; }
    float row_m = NEG_INF;
    float row_l = 0.0;
    const uint s_area = sg * SAREA;
    const uint p_base = sg * 16u * PST4;

    for (uint c0 = 0u; c0 < pc.n_kv; c0 += BC) {
        // 1. This invocation's mask entries; skip the tile if no row of the block sees any of its keys.
        float mv[KPI];
        bool live = false;
        [[unroll]] for (uint i = 0u; i < KPI; ++i) {
            const uint c = c0 + KPI * hh + i;
            float m = 0.0;
            if (!row_ok || c >= pc.n_kv) {
                m = NEG_INF;
            } else if (has_mask) {
                const float raw = unpackHalf2x16(uint(mask[mb + c])).x;
                m = raw == NEG_INF ? NEG_INF : slope * raw;
            }
            mv[i] = m;
            live = live || m != NEG_INF;
        }
        barrier(); // every subgroup is done with the previous tile's V and with anyLive
        if (tid == 0u) { anyLive.x = 0u; }
        barrier();
        if (live) { anyLive.x = 1u; }
        // 2. K tile, then S = Q K^T into this subgroup's score area.
        LOAD_TILE(k4, k_base, pc.k_s1)
        barrier();
        if (anyLive.x == 0u) { continue; }
        [[unroll]] for (uint n = 0u; n < BC / 16u; ++n) {
            FRAG_C sacc = FRAG_C(0.0);
            [[unroll]] for (uint t = 0; t < ND; ++t) {
                FRAG_B kb;
                coopMatLoad(kb, KV, 16u * n * KVST4 + 4u * t, KVST4, gl_CooperativeMatrixLayoutColumnMajor);
                sacc = coopMatMulAdd(qf[t], kb, sacc);
            }
            coopMatStore(sacc, Ss, s_area + 64u * n, 4u, gl_CooperativeMatrixLayoutRowMajor);
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();

        // 3. Online softmax (the two invocations of a row agree through one shuffle per reduction).
        float tmax = NEG_INF;
        [[unroll]] for (uint i4 = 0u; i4 < KPI / 4u; ++i4) {
            const uint c4 = KPI * hh + 4u * i4;
            const vec4 sv = Ss[s_area + 64u * (c4 / 16u) + 4u * r + (c4 % 16u) / 4u];
            [[unroll]] for (uint u = 0u; u < 4u; ++u) {
                const uint i = 4u * i4 + u;
                float s = sv[u] * pc.scale;
                if (pc.softcap != 0.0) { s = pc.softcap * tanh_safe(s); }
                s = mv[i] == NEG_INF ? NEG_INF : s + mv[i];
                mv[i] = s;
                tmax = max(tmax, s);
            }
        }
        tmax = max(tmax, subgroupShuffleXor(tmax, 1u));
        const float mnew = max(row_m, tmax);
        float alpha = 1.0;
        float sum = 0.0;
        [[unroll]] for (uint i4 = 0u; i4 < KPI / 4u; ++i4) {
            vec4 p = vec4(0.0);
            if (mnew != NEG_INF) {
                [[unroll]] for (uint u = 0u; u < 4u; ++u) {
                    const float s = mv[4u * i4 + u];
                    p[u] = s == NEG_INF ? 0.0 : exp(s - mnew);
                }
            }
            sum += p.x + p.y + p.z + p.w;
            Ps[p_base + r * PST4 + (KPI / 4u) * hh + i4] = f16vec4(p);
        }
        if (mnew != NEG_INF) { alpha = row_m == NEG_INF ? 0.0 : exp(row_m - mnew); }
        sum += subgroupShuffleXor(sum, 1u);
        row_m = mnew;
        row_l = row_l * alpha + sum;
        if (hh == 0u) { Al[sg * 16u + r] = alpha; }
        barrier(); // every subgroup is done with K; P and alpha are visible

        // 4. V tile, then O = alpha O + P V, 16 output columns at a time through the staging block.
        LOAD_TILE(v4, v_base, pc.v_s1)
        barrier();
        FRAG_A pa[BC / 16u];
        [[unroll]] for (uint kk = 0u; kk < BC / 16u; ++kk) {
            coopMatLoad(pa[kk], Ps, p_base + 4u * kk, PST4, gl_CooperativeMatrixLayoutRowMajor);
        }
        float al[8];
        [[unroll]] for (uint j = 0u; j < 8u; ++j) { al[j] = Al[sg * 16u + lane / 16u + 2u * j]; }
        [[unroll]] for (uint t = 0; t < ND; ++t) {
            FRAG_C pv = FRAG_C(0.0);
            [[unroll]] for (uint kk = 0u; kk < BC / 16u; ++kk) {
                FRAG_B vb;
                coopMatLoad(vb, KV, 16u * kk * KVST4 + 4u * t, KVST4, gl_CooperativeMatrixLayoutRowMajor);
                pv = coopMatMulAdd(pa[kk], vb, pv);
            }
            coopMatStore(pv, Ss, s_area, 4u, gl_CooperativeMatrixLayoutRowMajor);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            [[unroll]] for (uint j = 0u; j < 8u; ++j) {
                o[8u * t + j] = o[8u * t + j] * al[j] + staged(s_area, lane + 32u * j);
            }
            subgroupBarrier();
        }
    }

    // The sink logit joins the normalisation (no value row of its own); then O / L per row.
    float a = 1.0;
    if ((pc.flags & FLAG_SINKS) != 0u && row_ok) {
        const float s = sinks[pc.s_off + iq2];
        float vs = 1.0;
        if (s > row_m) {
            a = exp(row_m - s);
        } else {
            vs = exp(s - row_m);
        }
        row_l = row_l * a + vs;
    }
    if (hh == 0u) { Al[sg * 16u + r] = row_l == 0.0 ? 0.0 : a / row_l; }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    [[unroll]] for (uint j = 0u; j < 8u; ++j) {
        const uint rr = lane / 16u + 2u * j;
        const uint br = rb * BR + sg * 16u + rr;
        if (br < rows) {
            const float f = Al[sg * 16u + rr];
            const uint a1 = br / pc.ratio;
            const uint a2 = ih * pc.ratio + br % pc.ratio;
            const uint base = pc.d_off + lane % 16u + a2 * pc.d_s1 + a1 * pc.d_s2 + iq3 * pc.d_s3;
            [[unroll]] for (uint t = 0; t < ND; ++t) { d[base + 16u * t] = o[8u * t + j] * f; }
        }
    }
}
