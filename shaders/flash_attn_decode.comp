#version 450
// ggml_flash_attn_ext for a few query rows (token generation) over F16 K and V: same inputs, push constants,
// semantics and split partials as flash_attn.comp, another division of the work. flash_attn.comp stages K and V
// tiles in shared memory for blocks of query rows; with one to eight rows per KV head that staging, its barriers
// and its one-thread-per-row softmax dominate. Here:
//   - the workgroup's R rows (query row x Q head sharing this KV head) sit in shared memory (Q rounded as
//     flash_attn.comp rounds it);
//   - tiles of WG keys: thread t scores key c0 + t against all R rows, reading its K row straight from memory
//     as 16-byte vectors (8 halves);
//   - per row, the tile's maximum and sum come from subgroup reductions combined through shared memory; every
//     thread keeps the running max M and sum L of each row in registers (the same values in every thread);
//   - the probabilities go to shared memory and thread t accumulates output dimensions t, t + WG, ... of every
//     row over the tile's keys (V rows read as consecutive 16-bit words across threads).
// VEC_V (V's offset and strides multiples of 8 halves, DV a multiple of 8 up to 8 WG): instead, DV / 8 threads share
// a V row, 8 dimensions each read as one 16-byte vector, and the workgroup's WG / (DV / 8) key groups take every
// key group-th key of the tile; each thread keeps its 8 dimensions' partial sums over all tiles (rescaled with the
// rows' maxima like the others) and the key groups' partials are added through shared memory once, at the end.
// Rows past R (more query rows per KV head, large heads): workgroup x takes rows x R .. x R + R - 1, the host
// balancing them over ceil(rows / 8) workgroups.
// Split mode (FLAG_SPLIT) writes [M, L, out] records for flash_attn_reduce.comp exactly as flash_attn.comp does.
// Needs subgroup arithmetic; K's offset and strides multiples of 8 halves (16 bytes); DK a multiple of 8.
// Q8_0 / Q4_0 K or V (KT / VT, kv_row.glsl's type codes; DK / DV multiples of 32): a key's score reads its row's
// blocks in 16-bit words, four codes a step, one scale a block, against Q rounded onto the 8-bit grid the CPU's
// dot products quantize it to (flash_attn.comp's ROUND_Q8_0); V values are dequantized as ggml does (d * code),
// one per thread and key as for F16 V (no VEC_V).
#include "common.glsl"
#include "half_bits.glsl"
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint R = 1;
layout(constant_id = 3) const uint DK = 128;
layout(constant_id = 4) const uint DV = 128;
layout(constant_id = 5) const bool VEC_V = false;
// K and V types: kv_types.glsl's codes (this kernel takes F16, Q4_0 and Q8_0).
#include "kv_types.glsl"
layout(constant_id = 6) const uint KT = T_F16;
layout(constant_id = 7) const uint VT = T_F16;

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K4 { uvec4 k4[]; };
layout(binding = 1) readonly buffer K16 { uint16_t k16[]; };
layout(binding = 2) readonly buffer V { uint16_t vw[]; };
layout(binding = 2) readonly buffer V4 { uvec4 v4[]; };
layout(binding = 3) readonly buffer M { uint16_t mask[]; };
layout(binding = 4) readonly buffer S { float sinks[]; };
layout(binding = 5) buffer D { float d[]; };

#include "fa_push.glsl"
#include "q8_grid.glsl"

#define ROUND_F16 1u
#define ROUND_Q8_0 2u

const uint OPT = (DV + WG - 1u) / WG; // output dimensions per thread and row

shared vec4 Qs[R * DK / 4u];
shared float Ps[R * WG];
shared float redM[R * WG]; // per row, one slot per subgroup
shared float redL[R * WG];
// VEC_V: threads per V row, key groups, and the key groups' partial outputs of one row at the end.
const uint VL = DV / 8u;
const uint KG = WG / VL;
shared float Os[WG * 8u];

// tanh without exp overflow for large |x| (as flash_attn.comp).
float tanh_safe(float x) {
    const float e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}

vec4 halves_lo(uvec4 w) { return vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)); }
vec4 halves_hi(uvec4 w) { return vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w)); }

// Byte lanes of a packed word: shifting uvec4(w) by this puts byte j in the low bits of component j.
const uvec4 LANES = uvec4(0u, 8u, 16u, 24u);
uint k_word32(uint i) { return uint(k16[i]) | (uint(k16[i + 1u]) << 16); }

// Value k of a quantized V row starting at 16-bit word `row` (ggml's dequantization: d * code).
float v_quant(uint row, uint k) {
    if (VT == T_Q8_0) {
        const uint bw = row + (k >> 5) * 17u;
        const uint w = uint(vw[bw + 1u + ((k & 31u) >> 1)]);
        return f16_bits_to_float(vw[bw]) * float((k & 1u) != 0u ? hi_i8(w) : lo_i8(w));
    }
    const uint bw = row + (k >> 5) * 9u;
    const uint w = uint(vw[bw + 1u + ((k & 15u) >> 1)]);
    const uint nib = (w >> (8u * (k & 1u) + ((k & 16u) != 0u ? 4u : 0u))) & 15u;
    return f16_bits_to_float(vw[bw]) * float(int(nib) - 8);
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint rb = gl_WorkGroupID.x;
    const uint ih = gl_WorkGroupID.y;
    const uint splits = (pc.n_kv + pc.chunk - 1u) / pc.chunk;
    const uint iq3 = gl_WorkGroupID.z / splits;
    const uint split = gl_WorkGroupID.z % splits;
    const uint ne3 = gl_NumWorkGroups.z / splits;
    const uint rows = pc.n_q * pc.ratio;
    const uint n_head = pc.ratio * pc.n_head_kv;
    const bool has_mask = (pc.flags & FLAG_MASK) != 0u;
    const bool q_f16 = ((pc.flags >> 12) & 3u) == ROUND_F16;
    const bool q_q8 = ((pc.flags >> 12) & 3u) == ROUND_Q8_0;
    const uint kv0 = split * pc.chunk;
    const uint kv1 = min(kv0 + pc.chunk, pc.n_kv);
    const uint k_base = pc.k_off + ih * pc.k_s2 + iq3 * pc.k_s3;
    const uint v_base = pc.v_off + ih * pc.v_s2 + iq3 * pc.v_s3;

    for (uint e = tid; e < R * DK; e += WG) {
        const uint r = e / DK;
        const uint row = rb * R + r;
        float x = 0.0;
        if (row < rows) {
            const uint iq1 = row / pc.ratio;
            const uint iq2 = ih * pc.ratio + row % pc.ratio;
            x = q[pc.q_off + e % DK + iq1 * pc.q_s1 + iq2 * pc.q_s2 + iq3 * pc.q_s3];
            if (q_f16) { x = uintBitsToFloat(half_to_float_bits(float_bits_to_half(floatBitsToUint(x)))); }
        }
        Qs[e / 4u][e % 4u] = x;
    }
    // Per row: ALiBi slope and the mask row (rows past the end: masked out entirely below).
    float slope[R];
    uint mrow[R];
    [[unroll]] for (uint r = 0u; r < R; ++r) {
        const uint row = min(rb * R + r, rows - 1u);
        const uint iq1 = row / pc.ratio;
        const uint iq2 = ih * pc.ratio + row % pc.ratio;
        slope[r] = 1.0;
        if ((pc.flags & FLAG_ALIBI) != 0u) {
            const uint nhl2 = pc.flags >> 16;
            slope[r] = iq2 < nhl2 ? exp2(pc.e0 * float(iq2 + 1u)) : exp2(pc.e1 * float(2u * (iq2 - nhl2) + 1u));
        }
        const uint m_ne2 = pc.m_ne23 & 0xFFFFu;
        const uint m_ne3 = pc.m_ne23 >> 16;
        mrow[r] = pc.m_off + iq1 * pc.m_s1 + (iq2 % m_ne2) * pc.m_s2 + (iq3 % m_ne3) * pc.m_s3;
    }
    barrier();
    if (q_q8) {
        // As ggml's CPU backend quantizes Q for Q4_0/Q8_0 K (quantize_row_q8_0, x86; flash_attn.comp's ROUND_Q8_0):
        // per 32 values codes round(x * 127 / max|x|) to nearest even, the scale max|x| / 127 kept as f16.
        for (uint blk = tid; blk < R * DK / 32u; blk += WG) {
            const uint b0 = blk * 8u; // first vec4 of the block
            float amax = 0.0;
            for (uint i = 0u; i < 8u; ++i) {
                const vec4 x = abs(Qs[b0 + i]);
                amax = max(amax, max(max(x.x, x.y), max(x.z, x.w)));
            }
            const float id = q8_inv_scale(amax);
            const float dq = q8_scale_f16(q8_scale(amax));
            for (uint i = 0u; i < 8u; ++i) {
                const vec4 x = Qs[b0 + i];
                vec4 c;
                [[unroll]] for (uint j = 0u; j < 4u; ++j) { c[j] = float(q8_code(x[j], id)); }
                Qs[b0 + i] = dq * c;
            }
        }
        barrier();
    }

    float rowM[R];
    float rowL[R];
    float acc[R * OPT];
    // VEC_V: dimensions 8 vg .. 8 vg + 7 of every row over keys kg, kg + KG, ... of each tile.
    vec4 av[R * 2u];
    const uint vg = tid % VL;
    const uint kg = tid / VL;
    [[unroll]] for (uint r = 0u; r < R; ++r) {
        rowM[r] = NEG_INF;
        rowL[r] = 0.0;
        [[unroll]] for (uint i = 0u; i < OPT; ++i) { acc[r * OPT + i] = 0.0; }
        av[2u * r] = vec4(0.0);
        av[2u * r + 1u] = vec4(0.0);
    }

    for (uint c0 = kv0; c0 < kv1; c0 += WG) {
        const uint nc = min(WG, kv1 - c0);
        // Scores of key c0 + tid.
        float s[R];
        [[unroll]] for (uint r = 0u; r < R; ++r) { s[r] = 0.0; }
        const bool live = tid < nc;
        if (live && KT == T_F16) {
            const uint kr = (k_base + (c0 + tid) * pc.k_s1) / 8u;
            for (uint j = 0u; j < DK / 8u; ++j) {
                const uvec4 w = k4[kr + j];
                const vec4 k_lo = halves_lo(w);
                const vec4 k_hi = halves_hi(w);
                [[unroll]] for (uint r = 0u; r < R; ++r) {
                    s[r] += dot(Qs[r * (DK / 4u) + 2u * j], k_lo) + dot(Qs[r * (DK / 4u) + 2u * j + 1u], k_hi);
                }
            }
        } else if (live) {
            // Q8_0 / Q4_0 K: per block the codes' dot products with Q, then the block's scale.
            const uint kr = k_base + (c0 + tid) * pc.k_s1;
            for (uint b = 0u; b < DK / 32u; ++b) {
                const uint bw = kr + b * (KT == T_Q8_0 ? 17u : 9u);
                float sb[R];
                [[unroll]] for (uint r = 0u; r < R; ++r) { sb[r] = 0.0; }
                if (KT == T_Q8_0) {
                    [[unroll]] for (uint j = 0u; j < 8u; ++j) {
                        const vec4 kc = bytes_to_signed(uvec4(k_word32(bw + 1u + 2u * j)) >> LANES);
                        [[unroll]] for (uint r = 0u; r < R; ++r) { sb[r] += dot(Qs[r * (DK / 4u) + 8u * b + j], kc); }
                    }
                } else {
                    [[unroll]] for (uint j = 0u; j < 4u; ++j) {
                        const uint w = k_word32(bw + 1u + 2u * j);
                        const vec4 lo = nibbles_minus_8((uvec4(w) >> LANES) & 15u);
                        const vec4 hi = nibbles_minus_8((uvec4(w) >> (LANES + 4u)) & 15u);
                        [[unroll]] for (uint r = 0u; r < R; ++r) {
                            sb[r] += dot(Qs[r * (DK / 4u) + 8u * b + j], lo) + dot(Qs[r * (DK / 4u) + 8u * b + 4u + j], hi);
                        }
                    }
                }
                const float dk = f16_bits_to_float(k16[bw]);
                [[unroll]] for (uint r = 0u; r < R; ++r) { s[r] += dk * sb[r]; }
            }
        }
        [[unroll]] for (uint r = 0u; r < R; ++r) {
            float v = NEG_INF;
            if (live && rb * R + r < rows) {
                v = s[r] * pc.scale;
                if (pc.softcap != 0.0) { v = pc.softcap * tanh_safe(v); }
                if (has_mask) {
                    const float mv = slope[r] * unpackHalf2x16(uint(mask[mrow[r] + c0 + tid])).x;
                    v = mv == NEG_INF ? NEG_INF : v + mv;
                }
            }
            s[r] = v;
            const float m = subgroupMax(v);
            if (subgroupElect()) { redM[r * WG + gl_SubgroupID] = m; }
        }
        barrier();
        // New running max per row (identical in every thread), then probabilities and their sums.
        float alpha[R];
        [[unroll]] for (uint r = 0u; r < R; ++r) {
            float tmax = NEG_INF;
            for (uint g = 0u; g < gl_NumSubgroups; ++g) { tmax = max(tmax, redM[r * WG + g]); }
            const float mnew = max(rowM[r], tmax);
            alpha[r] = 1.0;
            float p = 0.0;
            if (mnew != NEG_INF) {
                alpha[r] = rowM[r] == NEG_INF ? 0.0 : exp(rowM[r] - mnew);
                p = s[r] == NEG_INF ? 0.0 : exp(s[r] - mnew);
            }
            rowM[r] = mnew;
            Ps[r * WG + tid] = p;
            const float l = subgroupAdd(p);
            if (subgroupElect()) { redL[r * WG + gl_SubgroupID] = l; }
        }
        barrier();
        [[unroll]] for (uint r = 0u; r < R; ++r) {
            float l = 0.0;
            for (uint g = 0u; g < gl_NumSubgroups; ++g) { l += redL[r * WG + g]; }
            rowL[r] = rowL[r] * alpha[r] + l;
        }
        if (VEC_V) {
            [[unroll]] for (uint r = 0u; r < R; ++r) {
                av[2u * r] *= alpha[r];
                av[2u * r + 1u] *= alpha[r];
            }
            if (kg < KG) {
                for (uint c = kg; c < nc; c += KG) {
                    const uvec4 w = v4[(v_base + (c0 + c) * pc.v_s1) / 8u + vg];
                    const vec4 lo = halves_lo(w);
                    const vec4 hi = halves_hi(w);
                    [[unroll]] for (uint r = 0u; r < R; ++r) {
                        const float pr = Ps[r * WG + c];
                        av[2u * r] += pr * lo;
                        av[2u * r + 1u] += pr * hi;
                    }
                }
            }
        }
        // Output dimensions of this thread over the tile's keys.
        [[unroll]] for (uint i = 0u; i < OPT && !VEC_V; ++i) {
            const uint k = tid + i * WG;
            if (k < DV) {
                float a[R];
                [[unroll]] for (uint r = 0u; r < R; ++r) { a[r] = acc[r * OPT + i] * alpha[r]; }
                if (VT == T_F16) {
                    uint vo = v_base + c0 * pc.v_s1 + k;
                    for (uint c = 0u; c < nc; ++c) {
                        const float v = unpackHalf2x16(uint(vw[vo])).x;
                        [[unroll]] for (uint r = 0u; r < R; ++r) { a[r] += Ps[r * WG + c] * v; }
                        vo += pc.v_s1;
                    }
                } else {
                    uint vo = v_base + c0 * pc.v_s1;
                    for (uint c = 0u; c < nc; ++c) {
                        const float v = v_quant(vo, k);
                        [[unroll]] for (uint r = 0u; r < R; ++r) { a[r] += Ps[r * WG + c] * v; }
                        vo += pc.v_s1;
                    }
                }
                [[unroll]] for (uint r = 0u; r < R; ++r) { acc[r * OPT + i] = a[r]; }
            }
        }
        // Ps, redM and redL are rewritten by the next tile.
        barrier();
    }

    if (VEC_V) {
        // The key groups' partials, one row at a time: thread t ends with dimensions t, t + WG, ... (KG DV <= 8 WG).
        [[unroll]] for (uint r = 0u; r < R; ++r) {
            if (kg < KG) {
                [[unroll]] for (uint j = 0u; j < 4u; ++j) {
                    Os[kg * DV + 8u * vg + j] = av[2u * r][j];
                    Os[kg * DV + 8u * vg + 4u + j] = av[2u * r + 1u][j];
                }
            }
            barrier();
            [[unroll]] for (uint i = 0u; i < OPT; ++i) {
                const uint k = tid + i * WG;
                if (k < DV) {
                    float t = 0.0;
                    for (uint g = 0u; g < KG; ++g) { t += Os[g * DV + k]; }
                    acc[r * OPT + i] = t;
                }
            }
            barrier();
        }
    }

    if ((pc.flags & FLAG_SPLIT) != 0u) {
        // Partials: per (split, iq3, iq1, iq2) a record [M, L, out[DV]] (flash_attn_reduce.comp).
        const uint total = pc.n_q * n_head * ne3;
        [[unroll]] for (uint r = 0u; r < R; ++r) {
            const uint row = rb * R + r;
            if (row < rows) {
                const uint iq2 = ih * pc.ratio + row % pc.ratio;
                const uint pr = (iq3 * pc.n_q + row / pc.ratio) * n_head + iq2;
                const uint rec = pc.d_off + (split * total + pr) * (DV + 2u);
                [[unroll]] for (uint i = 0u; i < OPT; ++i) {
                    const uint k = tid + i * WG;
                    if (k < DV) { d[rec + 2u + k] = acc[r * OPT + i]; }
                }
                if (tid == 0u) {
                    d[rec] = rowM[r];
                    d[rec + 1u] = rowL[r];
                }
            }
        }
        return;
    }

    // The sink logit joins the normalisation (no value row of its own).
    [[unroll]] for (uint r = 0u; r < R; ++r) {
        const uint row = rb * R + r;
        if (row < rows) {
            const uint iq1 = row / pc.ratio;
            const uint iq2 = ih * pc.ratio + row % pc.ratio;
            float a = 1.0;
            float l = rowL[r];
            if ((pc.flags & FLAG_SINKS) != 0u) {
                const float sk = sinks[pc.s_off + iq2];
                const float m = rowM[r];
                float vs = 1.0;
                if (sk > m) {
                    a = exp(m - sk);
                } else {
                    vs = exp(sk - m);
                }
                l = l * a + vs;
            }
            const float inv = l == 0.0 ? 0.0 : 1.0 / l;
            [[unroll]] for (uint i = 0u; i < OPT; ++i) {
                const uint k = tid + i * WG;
                if (k < DV) { d[pc.d_off + k + iq2 * pc.d_s1 + iq1 * pc.d_s2 + iq3 * pc.d_s3] = acc[r * OPT + i] * a * inv; }
            }
        }
    }
}
