#version 450
// Second pass of split-KV flash attention: combines the per-split partials [M, L, out[DV]] that flash_attn.comp
// (or flash_attn_decode.comp) wrote for one output row (iq1, iq2, iq3), adds the sink logit, normalises, and
// writes dst[:, iq2, iq1, iq3].
//   M = max over splits (and the sink), L = sum L_s exp(M_s - M) (+ exp(sink - M)),
//   out = sum out_s exp(M_s - M) / L (0 where L = 0, i.e. every key was masked and there is no sink).
// One workgroup per output row (x + y * numGroups.x), threads over DV.
// EMIT_QX / EMIT_Q8K: dst is contiguous and the output is also written quantized for the integer-dot product that
// reads it next (the attention output projection; emit_q8.glsl), block j of dst's flat order at word
// q_off + j * EQ_WORDS. Then a workgroup takes WG * 4 consecutive values of dst's flat order (rows pr = flat / DV,
// heads of one query next to each other), four per invocation, the same arithmetic per value.
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 64;

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

// The combined maximum of row pr and the reciprocal of its normaliser (0 where nothing was attended).
void row_stats(uint pr, out float m, out float inv) {
    const uint rec = pc.dv + 2u;
    m = NEG_INF;
    for (uint s = 0u; s < pc.splits; ++s) { m = max(m, part[pc.p_off + (s * pc.total + pr) * rec]); }
    float sink = NEG_INF;
    if (pc.has_sinks != 0u) {
        sink = sinks[pc.s_off + pr % pc.n_head];
        m = max(m, sink);
    }
    float l = 0.0;
    for (uint s = 0u; s < pc.splits; ++s) {
        const uint b = pc.p_off + (s * pc.total + pr) * rec;
        const float ms = part[b];
        l += ms == NEG_INF ? 0.0 : part[b + 1u] * exp(ms - m);
    }
    if (pc.has_sinks != 0u) { l += exp(sink - m); }
    inv = l == 0.0 ? 0.0 : 1.0 / l;
}

// Output value k of row pr.
float value(uint pr, uint k, float m, float inv) {
    const uint rec = pc.dv + 2u;
    float o = 0.0;
    for (uint s = 0u; s < pc.splits; ++s) {
        const uint b = pc.p_off + (s * pc.total + pr) * rec;
        const float ms = part[b];
        if (ms != NEG_INF) { o += part[b + 2u + k] * exp(ms - m); }
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
        const uint k0 = flat0 % pc.dv;
        [[unroll]] for (uint j = 0u; j < 4u; ++j) {
            y[j] = value(pr, k0 + j, m, inv);
            d[pc.d_off + flat0 + j] = y[j];
        }
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
        d[db + k] = value(pr, k, m, inv);
    }
#endif
}
