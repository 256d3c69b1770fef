#version 450
// Second pass of split-KV flash attention: combines the per-split partials [M, L, out[DV]] that flash_attn.comp
// (or flash_attn_decode.comp) wrote for one output row (iq1, iq2, iq3), adds the sink logit, normalises, and
// writes dst[:, iq2, iq1, iq3].
//   M = max over splits (and the sink), L = sum L_s exp(M_s - M) (+ exp(sink - M)),
//   out = sum out_s exp(M_s - M) / L (0 where L = 0, i.e. every key was masked and there is no sink).
// One workgroup per output row (x + y * numGroups.x), threads over DV.
// The splits are read SU at a time, every load of a step issued before any is used (a split whose keys were all
// masked, M_s = -inf, loads like the others and weighs 0): each step is one memory round trip, where a loop that
// uses each split's loads before the next split's would wait for one round trip per split.
// EMIT_QX / EMIT_Q8K: dst is contiguous and the output is also written quantized for the integer-dot product that
// reads it next (the attention output projection; emit_q8.glsl), block j of dst's flat order at word
// q_off + j * EQ_WORDS. Then a workgroup takes WG * 4 consecutive values of dst's flat order (rows pr = flat / DV,
// heads of one query next to each other), four per invocation, the same arithmetic per value.
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 64;
// Splits per step (ops::flash_attn::reduce_unroll).
layout(constant_id = 1) const uint SU = 8;

layout(binding = 0) readonly buffer P { float part[]; };
layout(binding = 1) readonly buffer S { float sinks[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

// Mirrors ops::flash_attn::ReducePush (and ReduceEmitPush).
layout(push_constant) uniform Push {
    uint n_q; uint n_head; uint total; uint splits;
    uint dv; uint has_sinks; uint s_off; uint p_off;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
#if defined(EMIT_QX) || defined(EMIT_Q8K)
    uint q_off; uint q_pad0; uint q_pad1; uint q_pad2;
#endif
} pc;

#if defined(EMIT_QX) || defined(EMIT_Q8K)
layout(binding = 3) writeonly buffer Q8Out { uint q8out[]; };
#define EMIT_Q8
#include "half_bits.glsl"
#include "div_rn.glsl"
#include "emit_q8.glsl"
#endif

#define NEG_INF uintBitsToFloat(0xFF800000u)

// Record of split s for row pr (first word: M_s).
uint rec_at(uint s, uint pr) { return pc.p_off + (s * pc.total + pr) * (pc.dv + 2u); }

// The combined maximum of row pr and the reciprocal of its normaliser (0 where nothing was attended).
void row_stats(uint pr, out float m, out float inv) {
    m = NEG_INF;
    for (uint s0 = 0u; s0 < pc.splits; s0 += SU) {
        float ms[SU];
        [[unroll]] for (uint j = 0u; j < SU; ++j) { ms[j] = part[rec_at(min(s0 + j, pc.splits - 1u), pr)]; }
        [[unroll]] for (uint j = 0u; j < SU; ++j) { m = max(m, ms[j]); }
    }
    float sink = NEG_INF;
    if (pc.has_sinks != 0u) {
        sink = sinks[pc.s_off + pr % pc.n_head];
        m = max(m, sink);
    }
    float l = 0.0;
    for (uint s0 = 0u; s0 < pc.splits; s0 += SU) {
        float ms[SU];
        float ls[SU];
        [[unroll]] for (uint j = 0u; j < SU; ++j) {
            const uint b = rec_at(min(s0 + j, pc.splits - 1u), pr);
            ms[j] = part[b];
            ls[j] = part[b + 1u];
        }
        [[unroll]] for (uint j = 0u; j < SU; ++j) {
            if (s0 + j < pc.splits && ms[j] != NEG_INF) { l += ls[j] * exp(ms[j] - m); }
        }
    }
    if (pc.has_sinks != 0u) { l += exp(sink - m); }
    inv = l == 0.0 ? 0.0 : 1.0 / l;
}

// Output values k0 .. k0 + N - 1 of row pr (N <= 4, the rest of the vector 0), each a sum over the splits in split
// order, as one value at a time would add them.
vec4 values(uint pr, uint k0, uint n, float m, float inv) {
    vec4 o = vec4(0.0);
    for (uint s0 = 0u; s0 < pc.splits; s0 += SU) {
        float ms[SU];
        vec4 x[SU];
        [[unroll]] for (uint j = 0u; j < SU; ++j) {
            const uint b = rec_at(min(s0 + j, pc.splits - 1u), pr);
            ms[j] = part[b];
            [[unroll]] for (uint i = 0u; i < 4u; ++i) { x[j][i] = i < n ? part[b + 2u + k0 + i] : 0.0; }
        }
        [[unroll]] for (uint j = 0u; j < SU; ++j) {
            if (s0 + j < pc.splits && ms[j] != NEG_INF) { o += x[j] * exp(ms[j] - m); }
        }
    }
    return o * inv;
}

void main() {
    const uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
#ifdef EMIT_Q8
    const uint flat0 = (wg * WG + gl_LocalInvocationID.x) * 4u;
    const uint pr = flat0 / pc.dv;
    // dv is a multiple of 4, so an invocation's four values share a row; total * dv a multiple of the block, so a
    // block is wholly live or not.
    const bool live = pr < pc.total;
    vec4 y = vec4(0.0);
    if (live) {
        float m;
        float inv;
        row_stats(pr, m, inv);
        y = values(pr, flat0 % pc.dv, 4u, m, inv);
        [[unroll]] for (uint j = 0u; j < 4u; ++j) { d[pc.d_off + flat0 + j] = y[j]; }
    }
    emit_q8_block(y, live, pc.q_off + (flat0 / EQ_BLOCK) * EQ_WORDS);
#else
    const uint pr = wg;
    if (pr >= pc.total) { return; }
    const uint iq2 = pr % pc.n_head;
    const uint iq1 = (pr / pc.n_head) % pc.n_q;
    const uint iq3 = pr / (pc.n_head * pc.n_q);
    float m;
    float inv;
    row_stats(pr, m, inv);
    const uint db = pc.d_off + iq2 * pc.d_s1 + iq1 * pc.d_s2 + iq3 * pc.d_s3;
    for (uint k = gl_LocalInvocationID.x; k < pc.dv; k += WG) {
        d[db + k] = values(pr, k, 1u, m, inv).x;
    }
#endif
}
