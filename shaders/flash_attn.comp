#version 450
// ggml_flash_attn_ext: out = softmax(scale * Q K^T (+ softcap) + slope * mask) V, per query row and head, with
// an online softmax (running max M and sum L per row, in f32) over K/V tiles staged in shared memory.
//
// One workgroup per (block of BR rows, KV head, sequence [, KV split]). The rows of a block are the query rows
// of every Q head that shares this KV head (GQA): row = iq1 * ratio + g, Q head iq2 = kv_head * ratio + g, so
// one K/V tile serves all of them (a single decoded token with GQA still fills several rows).
// Per tile of BC keys: K rows dequantized into shared f32, scores for BR x BC pairs (a pair's dot product
// split over WG / (BR * BC) threads when there are fewer pairs than threads), online-softmax update per row,
// V rows into the same shared array, then each thread updates its own output elements (o = tid + i * WG).
//
// K and V are read as 16-bit words of any of F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL (every K/V
// cache type llama.cpp offers; types chosen by push constant).
// Split mode (FLAG_SPLIT): the workgroup covers kv [split * chunk, +chunk) and writes M, L and the
// unnormalised output row to the partials buffer (binding 5); flash_attn_reduce.comp combines the splits.
#include "common.glsl"
#include "half_bits.glsl"
#include "q8_grid.glsl"

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint BR = 8;
layout(constant_id = 2) const uint BC = 32;
layout(constant_id = 3) const uint DK = 128;
layout(constant_id = 4) const uint DV = 128;

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { uint16_t kw[]; };
layout(binding = 2) readonly buffer V { uint16_t vw[]; };
layout(binding = 3) readonly buffer M { uint16_t mask[]; };
layout(binding = 4) readonly buffer S { float sinks[]; };
layout(binding = 5) buffer D { float d[]; };

#include "fa_push.glsl"

// bits 4..7: K type, 8..11: V type, 12..13: Q rounding, 16..31: n_head_log2
#define ROUND_NONE 0u
#define ROUND_F16 1u
#define ROUND_Q8_0 2u
#define ROUND_BF16 3u


const uint KVD = DK > DV ? DK : DV;
const uint KST = KVD + 1u; // padded shared row: threads reading one column of different rows hit different banks
const uint PAIRS = BR * BC;
const uint TPP = PAIRS >= WG ? 1u : WG / PAIRS; // threads per score
const uint OPT = (BR * DV + WG - 1u) / WG;      // output elements per thread

shared float Qs[BR * DK];
// K types with a minimum (Q4_1, Q5_1): the CPU's dot product with Q on the q8_1 grid is per block
// d_k d_q sum(c_k c_q) + m_k s_q with s_q = f16(d_q * sum(c_q)) from the unrounded d_q, so the minimum's share is
// m_k * s_q here too: K tiles hold c_k d_k, KM the tile's minimums, QS the s_q of each Q block.
const uint NQB = (DK + QK - 1u) / QK;
shared float QS[BR * NQB];
shared float KM[BC * NQB];
shared float KVs[BC * KST];
shared float Ps[PAIRS];
shared float red[WG];
shared float rowM[BR];
shared float rowL[BR];
shared float rowA[BR];
shared float rowSlope[BR];
shared uint rowMask[BR];
shared uint anyLive;

#include "kv_row.glsl"
ROW_AT(k_at, kw)
ROW_AT(v_at, vw)

float mask_at(uint i) {
    return unpackHalf2x16(uint(mask[i])).x;
}

// The minimums' share of row r's score with key c of the tile (K types with a minimum; else 0).
float min_share(uint r, uint c, bool k_min) {
    float s = 0.0;
    if (k_min) {
        for (uint b = 0u; b < NQB; ++b) { s += KM[c * NQB + b] * QS[r * NQB + b]; }
    }
    return s;
}

// tanh without exp overflow for large |x|.
float tanh_safe(float x) {
    const float e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
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
    const uint k_type = (pc.flags >> 4) & 15u;
    const uint v_type = (pc.flags >> 8) & 15u;
    const uint q_round = (pc.flags >> 12) & 3u;
    const bool k_min = k_type == T_Q4_1 || k_type == T_Q5_1;
    const uint k_bwords = k_type == T_Q4_1 ? 10u : 12u; // block words of the K types with a minimum
    const uint kv0 = split * pc.chunk;
    const uint kv1 = min(kv0 + pc.chunk, pc.n_kv);
    const uint k_base = pc.k_off + ih * pc.k_s2 + iq3 * pc.k_s3;
    const uint v_base = pc.v_off + ih * pc.v_s2 + iq3 * pc.v_s3;

    // Q rows of the block (rows past the end are zero and fully masked).
    for (uint e = tid; e < BR * DK; e += WG) {
        const uint r = e / DK;
        const uint row = rb * BR + r;
        float x = 0.0;
        if (row < rows) {
            const uint iq1 = row / pc.ratio;
            const uint iq2 = ih * pc.ratio + row % pc.ratio;
            x = q[pc.q_off + e % DK + iq1 * pc.q_s1 + iq2 * pc.q_s2 + iq3 * pc.q_s3];
            if (q_round == ROUND_F16) {
                x = uintBitsToFloat(half_to_float_bits(float_bits_to_half(floatBitsToUint(x))));
            } else if (q_round == ROUND_BF16) {
                x = round_to_bf16(x);
            }
        }
        Qs[e] = x;
    }
    if (tid < BR) {
        const uint row = rb * BR + tid;
        rowM[tid] = NEG_INF;
        rowL[tid] = 0.0;
        rowA[tid] = 1.0;
        float slope = 1.0;
        uint mb = 0u;
        if (row < rows) {
            const uint iq1 = row / pc.ratio;
            const uint iq2 = ih * pc.ratio + row % pc.ratio;
            if ((pc.flags & FLAG_ALIBI) != 0u) {
                const uint nhl2 = pc.flags >> 16;
                slope = iq2 < nhl2 ? exp2(pc.e0 * float(iq2 + 1u)) : exp2(pc.e1 * float(2u * (iq2 - nhl2) + 1u));
            }
            const uint m_ne2 = pc.m_ne23 & 0xFFFFu;
            const uint m_ne3 = pc.m_ne23 >> 16;
            mb = pc.m_off + iq1 * pc.m_s1 + (iq2 % m_ne2) * pc.m_s2 + (iq3 % m_ne3) * pc.m_s3;
        }
        rowSlope[tid] = slope;
        rowMask[tid] = mb;
    }
    barrier();
    if (q_round == ROUND_Q8_0) {
        // As ggml's CPU backend quantizes Q for Q4_0/Q8_0 K (quantize_row_q8_0, x86): per 32 values,
        // codes round(x * 127 / max|x|) to nearest even, scale max|x| / 127 kept as f16.
        for (uint blk = tid; blk < BR * DK / QK; blk += WG) {
            const uint b0 = blk * QK;
            float amax = 0.0;
            for (uint i = 0u; i < QK; ++i) { amax = max(amax, abs(Qs[b0 + i])); }
            const float id = q8_inv_scale(amax);
            const float d32 = q8_scale(amax);
            const float dq = q8_scale_f16(d32);
            int csum = 0;
            for (uint i = 0u; i < QK; ++i) {
                const int c = q8_code(Qs[b0 + i], id);
                csum += c;
                Qs[b0 + i] = dq * float(c);
            }
            if (k_min) {
                precise const float sq = d32 * float(csum);
                QS[blk] = q8_scale_f16(sq);
            }
        }
        barrier();
    }

    float acc[OPT];
    [[unroll]] for (uint i = 0u; i < OPT; ++i) { acc[i] = 0.0; }

    for (uint c0 = kv0; c0 < kv1; c0 += BC) {
        const uint nc = min(BC, kv1 - c0);
        // A tile whose mask is -inf for every row of the block contributes nothing: skip it.
        if (has_mask) {
            if (tid == 0u) { anyLive = 0u; }
            barrier();
            bool live = false;
            for (uint p = tid; p < PAIRS; p += WG) {
                const uint r = p / BC;
                const uint c = p % BC;
                if (c < nc && rb * BR + r < rows && mask_at(rowMask[r] + c0 + c) != NEG_INF) { live = true; }
            }
            if (live) { anyLive = 1u; }
            barrier();
            const bool skip = anyLive == 0u;
            barrier();
            if (skip) { continue; }
        }
        for (uint e = tid; e < BC * DK; e += WG) {
            const uint c = e / DK;
            const uint k = e % DK;
            KVs[c * KST + k] = c < nc ? k_at(k_type, k_base + (c0 + c) * pc.k_s1, k, k_min) : 0.0;
        }
        if (k_min) {
            for (uint e = tid; e < BC * NQB; e += WG) {
                const uint c = e / NQB;
                const uint b = e % NQB;
                KM[e] = c < nc ? f16_bits_to_float(kw[k_base + (c0 + c) * pc.k_s1 + b * k_bwords + 1u]) : 0.0;
            }
        }
        barrier();

        // Scores.
        for (uint p = tid / TPP; p < PAIRS; p += WG / TPP) {
            const uint r = p / BC;
            const uint c = p % BC;
            float s = 0.0;
            for (uint k = tid % TPP; k < DK; k += TPP) { s += Qs[r * DK + k] * KVs[c * KST + k]; }
            if (TPP == 1u) {
                Ps[p] = s + min_share(r, c, k_min);
            } else {
                red[tid] = s;
            }
        }
        if (TPP > 1u) {
            barrier();
            if (tid < PAIRS) {
                float s = 0.0;
                for (uint t = 0u; t < TPP; ++t) { s += red[tid * TPP + t]; }
                Ps[tid] = s + min_share(tid / BC, tid % BC, k_min);
            }
        }
        barrier();
        for (uint p = tid; p < PAIRS; p += WG) {
            const uint r = p / BC;
            const uint c = p % BC;
            float s = NEG_INF;
            if (c < nc && rb * BR + r < rows) {
                s = Ps[p] * pc.scale;
                if (pc.softcap != 0.0) { s = pc.softcap * tanh_safe(s); }
                if (has_mask) {
                    const float mv = rowSlope[r] * mask_at(rowMask[r] + c0 + c);
                    s = mv == NEG_INF ? NEG_INF : s + mv;
                }
            }
            Ps[p] = s;
        }
        barrier();

        // Online softmax, one thread per row: new max, rescale factor, probabilities.
        if (tid < BR) {
            const uint r = tid;
            const float mold = rowM[r];
            float tmax = NEG_INF;
            for (uint c = 0u; c < BC; ++c) { tmax = max(tmax, Ps[r * BC + c]); }
            const float mnew = max(mold, tmax);
            float alpha = 1.0;
            float sum = 0.0;
            if (mnew != NEG_INF) {
                alpha = mold == NEG_INF ? 0.0 : exp(mold - mnew);
                for (uint c = 0u; c < BC; ++c) {
                    const float s = Ps[r * BC + c];
                    const float p = s == NEG_INF ? 0.0 : exp(s - mnew);
                    Ps[r * BC + c] = p;
                    sum += p;
                }
            } else {
                for (uint c = 0u; c < BC; ++c) { Ps[r * BC + c] = 0.0; }
            }
            rowM[r] = mnew;
            rowL[r] = rowL[r] * alpha + sum;
            rowA[r] = alpha;
        }
        // V rows into the shared tile (the scores no longer need K).
        for (uint e = tid; e < BC * DV; e += WG) {
            const uint c = e / DV;
            const uint k = e % DV;
            KVs[c * KST + k] = c < nc ? v_at(v_type, v_base + (c0 + c) * pc.v_s1, k, false) : 0.0;
        }
        barrier();
        [[unroll]] for (uint i = 0u; i < OPT; ++i) {
            const uint o = tid + i * WG;
            if (o < BR * DV) {
                const uint r = o / DV;
                const uint k = o % DV;
                float a = acc[i] * rowA[r];
                for (uint c = 0u; c < BC; ++c) { a += Ps[r * BC + c] * KVs[c * KST + k]; }
                acc[i] = a;
            }
        }
        barrier();
    }

    if ((pc.flags & FLAG_SPLIT) != 0u) {
        // Partials: per (split, iq3, iq1, iq2) a record [M, L, out[DV]].
        const uint total = pc.n_q * n_head * ne3;
        [[unroll]] for (uint i = 0u; i < OPT; ++i) {
            const uint o = tid + i * WG;
            const uint r = o / DV;
            const uint row = rb * BR + r;
            if (o < BR * DV && row < rows) {
                const uint iq2 = ih * pc.ratio + row % pc.ratio;
                const uint pr = (iq3 * pc.n_q + row / pc.ratio) * n_head + iq2;
                d[pc.d_off + (split * total + pr) * (DV + 2u) + 2u + o % DV] = acc[i];
            }
        }
        if (tid < BR && rb * BR + tid < rows) {
            const uint row = rb * BR + tid;
            const uint iq2 = ih * pc.ratio + row % pc.ratio;
            const uint pr = (iq3 * pc.n_q + row / pc.ratio) * n_head + iq2;
            d[pc.d_off + (split * total + pr) * (DV + 2u)] = rowM[tid];
            d[pc.d_off + (split * total + pr) * (DV + 2u) + 1u] = rowL[tid];
        }
        return;
    }

    // The sink logit joins the normalisation (no value row of its own).
    if (tid < BR) {
        const uint row = rb * BR + tid;
        float a = 1.0;
        if ((pc.flags & FLAG_SINKS) != 0u && row < rows) {
            const float s = sinks[pc.s_off + ih * pc.ratio + row % pc.ratio];
            const float m = rowM[tid];
            float vs = 1.0;
            if (s > m) {
                a = exp(m - s);
            } else {
                vs = exp(s - m);
            }
            rowL[tid] = rowL[tid] * a + vs;
        }
        rowA[tid] = a;
    }
    barrier();
    [[unroll]] for (uint i = 0u; i < OPT; ++i) {
        const uint o = tid + i * WG;
        const uint r = o / DV;
        const uint row = rb * BR + r;
        if (o < BR * DV && row < rows) {
            const float l = rowL[r];
            const float inv = l == 0.0 ? 0.0 : 1.0 / l;
            const uint iq1 = row / pc.ratio;
            const uint iq2 = ih * pc.ratio + row % pc.ratio;
            d[pc.d_off + o % DV + iq2 * pc.d_s1 + iq1 * pc.d_s2 + iq3 * pc.d_s3] = acc[i] * rowA[r] * inv;
        }
    }
}
