#version 450
// ggml_flash_attn_ext for many query rows (prompt processing) on KHR cooperative matrices: F16 K and V, head
// sizes DK = D (K) and DV = D (V) a multiple of 16 up to 128, the same online softmax (running max M and sum L per
// row, in f32) as flash_attn.comp.
//
// One workgroup of 4 subgroups of 32 per (block of BR = 64 rows, KV head, sequence); rows are the query rows of
// every Q head sharing the KV head (row = iq1 * ratio + g), as in flash_attn.comp. Subgroup s owns rows
// 16 s .. 16 s + 15: its Q rows live in registers as f16 fragments, its output rows as f32 accumulator fragments.
// Per tile of BC = 64 keys:
//   1. each invocation reads the mask entries it needs for the softmax (row 16 s + lane / 2, 32 keys); a tile
//      that no row of the block sees (causal masks) is skipped as a whole;
//   2. the K tile (f16) into shared memory; S = Q K^T on f16 16x16x16 fragments (f32 accumulators) into shared f32;
//   3. softmax, two invocations per row: scale, softcap, ALiBi slope x mask, new max, rescale factor alpha,
//      probabilities written as f16 into shared memory;
//   4. the V tile into the same shared memory; O = alpha O + P V.
// Rescaling O by a per-row factor x[r] (the softmax's alpha, the final a / L) multiplies it component-wise by the
// accumulator X[r][c] = x[r], made by one f16 product: a matrix whose columns 0 and 1 hold x's f16 head and tail
// (x = hi + lo to 22 bits) times one whose rows 0 and 1 are ones. Nothing depends on how an implementation
// spreads fragment elements over invocations.
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
#define BC 64u
#define ND (D / 16u)
// Shared K/V rows: D halves + 8 (16-byte aligned rows in distinct bank groups), in f16vec4 units.
#define KVST (D + 8u)
#define KVST4 (KVST / 4u)
// P rows: BC halves + 8. Score rows: BC floats + 4 (16-byte aligned; rows r and r + 1 in different banks).
#define PST (BC + 8u)
#define SST (BC + 4u)

layout(local_size_x = 128, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { uvec4 k4[]; };
layout(binding = 2) readonly buffer V { uvec4 v4[]; };
layout(binding = 3) readonly buffer M { uint16_t mask[]; };
layout(binding = 4) readonly buffer S { float sinks[]; };
layout(binding = 5) writeonly buffer Dst { float d[]; };

// Mirrors ops::flash_attn::FlashAttnPush (k, v offsets and strides in 16-bit words, multiples of 8 here).
layout(push_constant) uniform Push {
    uint n_q; uint n_kv; uint ratio; uint n_head_kv;
    uint q_off; uint q_s1; uint q_s2; uint q_s3;
    uint k_off; uint k_s1; uint k_s2; uint k_s3;
    uint v_off; uint v_s1; uint v_s2; uint v_s3;
    uint m_off; uint m_s1; uint m_s2; uint m_s3;
    uint m_ne23; uint flags; uint s_off; uint chunk;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    float scale; float softcap; float e0; float e1;
} pc;

#define FLAG_MASK 1u
#define FLAG_SINKS 2u
#define FLAG_ALIBI 4u
#define NEG_INF uintBitsToFloat(0xFF800000u)

shared f16vec4 KV[BC * KVST4];
shared float Ss[4u * 16u * SST];
shared float16_t Ps[4u * 16u * PST];
// Per subgroup a 16 x 16 f16 matrix with the row factors in columns 0 and 1 (zeros elsewhere), and the shared
// 16 x 16 matrix whose rows 0 and 1 are ones.
shared float16_t Rf[4u * 256u];
shared float16_t Ones[256];
shared uint anyLive;

#define FRAG_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define FRAG_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define FRAG_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>

float tanh_safe(float x) {
    const float e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
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

    // Softmax role: row r of this subgroup's 16, keys 2 i + hh (i < 32) of a tile.
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

    // Q rows of the block as f16 through the K/V tile area (rows past the end are zero), four values at a time.
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
        KV[(rr * KVST + col) / 4u] = x;
    }
    for (uint e = tid; e < 4u * 256u; e += WG) { Rf[e] = float16_t(0.0); }
    for (uint e = tid; e < 256u; e += WG) { Ones[e] = float16_t(e < 32u ? 1.0 : 0.0); }
    barrier();
    FRAG_A qf[ND];
    [[unroll]] for (uint t = 0; t < ND; ++t) {
        coopMatLoad(qf[t], KV, (sg * 16u * KVST + 16u * t) / 4u, KVST4, gl_CooperativeMatrixLayoutRowMajor);
    }
    FRAG_B ones;
    coopMatLoad(ones, Ones, 0u, 16u, gl_CooperativeMatrixLayoutRowMajor);

    FRAG_C o[ND];
    [[unroll]] for (uint t = 0; t < ND; ++t) { o[t] = FRAG_C(0.0); }
    float row_m = NEG_INF;
    float row_l = 0.0;
    const uint s_base = sg * 16u * SST;
    const uint p_base = sg * 16u * PST;

    for (uint c0 = 0u; c0 < pc.n_kv; c0 += BC) {
        // 1. This invocation's mask entries; skip the tile if no row of the block sees any of its keys.
        float mv[32];
        bool live = false;
        [[unroll]] for (uint i = 0u; i < 32u; ++i) {
            const uint c = c0 + 2u * i + hh;
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
        barrier(); // the previous tile's V is no longer read
        if (tid == 0u) { anyLive = 0u; }
        barrier();
        if (live) { anyLive = 1u; }
        // 2. K tile.
        for (uint e = tid; e < BC * (D / 8u); e += WG) {
            const uint c = e / (D / 8u);
            const uint part = e % (D / 8u);
            uvec4 x = uvec4(0u);
            if (c0 + c < pc.n_kv) { x = k4[(k_base + (c0 + c) * pc.k_s1) / 8u + part]; }
            KV[c * KVST4 + 2u * part] = f16vec4(unpackFloat2x16(x.x), unpackFloat2x16(x.y));
            KV[c * KVST4 + 2u * part + 1u] = f16vec4(unpackFloat2x16(x.z), unpackFloat2x16(x.w));
        }
        barrier();
        if (anyLive == 0u) { continue; }
        [[unroll]] for (uint n = 0u; n < BC / 16u; ++n) {
            FRAG_C sacc = FRAG_C(0.0);
            [[unroll]] for (uint t = 0; t < ND; ++t) {
                FRAG_B kb;
                coopMatLoad(kb, KV, (16u * n * KVST + 16u * t) / 4u, KVST4, gl_CooperativeMatrixLayoutColumnMajor);
                sacc = coopMatMulAdd(qf[t], kb, sacc);
            }
            coopMatStore(sacc, Ss, s_base + 16u * n, SST, gl_CooperativeMatrixLayoutRowMajor);
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();

        // 3. Online softmax (the two invocations of a row agree through one shuffle per reduction).
        float tmax = NEG_INF;
        [[unroll]] for (uint i = 0u; i < 32u; ++i) {
            float s = Ss[s_base + r * SST + 2u * i + hh] * pc.scale;
            if (pc.softcap != 0.0) { s = pc.softcap * tanh_safe(s); }
            s = mv[i] == NEG_INF ? NEG_INF : s + mv[i];
            mv[i] = s;
            tmax = max(tmax, s);
        }
        tmax = max(tmax, subgroupShuffleXor(tmax, 1u));
        const float mnew = max(row_m, tmax);
        float alpha = 1.0;
        float sum = 0.0;
        if (mnew != NEG_INF) {
            alpha = row_m == NEG_INF ? 0.0 : exp(row_m - mnew);
            [[unroll]] for (uint i = 0u; i < 32u; ++i) {
                const float p = mv[i] == NEG_INF ? 0.0 : exp(mv[i] - mnew);
                sum += p;
                Ps[p_base + r * PST + 2u * i + hh] = float16_t(p);
            }
        } else {
            [[unroll]] for (uint i = 0u; i < 32u; ++i) { Ps[p_base + r * PST + 2u * i + hh] = float16_t(0.0); }
        }
        sum += subgroupShuffleXor(sum, 1u);
        row_m = mnew;
        row_l = row_l * alpha + sum;
        if (hh == 0u) {
            const float16_t hi = float16_t(alpha);
            Rf[sg * 256u + 16u * r] = hi;
            Rf[sg * 256u + 16u * r + 1u] = float16_t(alpha - float(hi));
        }
        barrier(); // every subgroup is done with K; P and alpha are visible

        // 4. V tile, then O = alpha O + P V.
        for (uint e = tid; e < BC * (D / 8u); e += WG) {
            const uint c = e / (D / 8u);
            const uint part = e % (D / 8u);
            uvec4 x = uvec4(0u);
            if (c0 + c < pc.n_kv) { x = v4[(v_base + (c0 + c) * pc.v_s1) / 8u + part]; }
            KV[c * KVST4 + 2u * part] = f16vec4(unpackFloat2x16(x.x), unpackFloat2x16(x.y));
            KV[c * KVST4 + 2u * part + 1u] = f16vec4(unpackFloat2x16(x.z), unpackFloat2x16(x.w));
        }
        barrier();
        {
            FRAG_A fa;
            coopMatLoad(fa, Rf, sg * 256u, 16u, gl_CooperativeMatrixLayoutRowMajor);
            FRAG_C f = coopMatMulAdd(fa, ones, FRAG_C(0.0));
            [[unroll]] for (uint t = 0; t < ND; ++t) { o[t] = o[t] * f; }
        }
        [[unroll]] for (uint kk = 0u; kk < BC / 16u; ++kk) {
            FRAG_A pa;
            coopMatLoad(pa, Ps, p_base + 16u * kk, PST, gl_CooperativeMatrixLayoutRowMajor);
            [[unroll]] for (uint t = 0; t < ND; ++t) {
                FRAG_B vb;
                coopMatLoad(vb, KV, (16u * kk * KVST + 16u * t) / 4u, KVST4, gl_CooperativeMatrixLayoutRowMajor);
                o[t] = coopMatMulAdd(pa, vb, o[t]);
            }
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
    barrier();
    if (hh == 0u) {
        const float x = row_l == 0.0 ? 0.0 : a / row_l;
        const float16_t hi = float16_t(x);
        Rf[sg * 256u + 16u * r] = hi;
        Rf[sg * 256u + 16u * r + 1u] = float16_t(x - float(hi));
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    {
        FRAG_A fa;
        coopMatLoad(fa, Rf, sg * 256u, 16u, gl_CooperativeMatrixLayoutRowMajor);
        FRAG_C f = coopMatMulAdd(fa, ones, FRAG_C(0.0));
        [[unroll]] for (uint t = 0; t < ND; ++t) { o[t] = o[t] * f; }
    }
    // Out through this subgroup's score area, one 16 x 16 fragment at a time.
    [[unroll]] for (uint t = 0; t < ND; ++t) {
        coopMatStore(o[t], Ss, s_base, 16u, gl_CooperativeMatrixLayoutRowMajor);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        [[unroll]] for (uint e = lane; e < 256u; e += 32u) {
            const uint br = rb * BR + sg * 16u + e / 16u;
            if (br < rows) {
                const uint a1 = br / pc.ratio;
                const uint a2 = ih * pc.ratio + br % pc.ratio;
                d[pc.d_off + 16u * t + e % 16u + a2 * pc.d_s1 + a1 * pc.d_s2 + iq3 * pc.d_s3] = Ss[s_base + e];
            }
        }
        subgroupBarrier();
    }
}
