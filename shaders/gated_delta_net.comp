#version 450
// GATED_DELTA_NET (qwen3-next / kimi-linear delta rule): one thread per state column j of head h of sequence s
// (S values S[i][j], kept in dst's state part; ggml stores column j as row j). Per token, in order:
//   S[i][j] *= exp(g)            (g per head, or per i: the KDA vector gate)
//   delta = (v[j] - sum over i of S[i][j] k[i]) * beta
//   S[i][j] += k[i] * delta;     out[j] = (sum over i of S[i][j] q[i]) / sqrt(S)
// q and k are shared by heads h % their head count and sequences s / (n_seqs / theirs). dst is
// [S * H, n_tokens * n_seqs + K * S * n_seqs]: out per token, then K states: slot 0 the final one, slot m the
// state m tokens before the end (written when the sequence has that many tokens). F32; strides in elements.
// Tokens [t0, t1) per dispatch (the host splits long sequences: lavapipe stops a loop after 65535 iterations).
#include "elementwise.glsl"

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { float k[]; };
layout(binding = 2) readonly buffer V { float v[]; };
layout(binding = 3) readonly buffer G { float g[]; };
layout(binding = 4) readonly buffer BETA { float beta[]; };
layout(binding = 5) readonly buffer S0 { float s0[]; };
layout(binding = 6) buffer D { float d[]; };

// Mirrors ops::recurrent::DeltaNetPush.
layout(push_constant) uniform Push {
    uint S; uint H; uint nt; uint ns;
    uint q_h; uint q_ns; uint k_h; uint k_ns;
    uint q_s1; uint q_s2; uint q_s3; uint k_s1;
    uint k_s2; uint k_s3; uint v_s1; uint v_s2;
    uint v_s3; uint g_ne0; uint k_snap; uint s0_s3;
    uint q_off; uint k_off; uint v_off; uint g_off;
    uint beta_off; uint s0_off; uint d_off; float scale;
    uint t0; uint t1;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.S * pc.H * pc.ns) {
        return;
    }
    const uint j = id % pc.S;
    const uint h = (id / pc.S) % pc.H;
    const uint s = id / (pc.S * pc.H);
    const uint qh = h % pc.q_h;
    const uint kh = h % pc.k_h;
    const uint qs = s / (pc.ns / pc.q_ns);
    const uint ks = s / (pc.ns / pc.k_ns);
    const uint ss = pc.S * pc.S;
    const uint attn_n = pc.S * pc.H * pc.nt * pc.ns;
    const uint col = (s * pc.H + h) * ss + j * pc.S;
    const uint st = pc.d_off + attn_n + col;
    const uint src = pc.s0_off + s * pc.s0_s3 + h * ss + j * pc.S;
    if (pc.t0 == 0u) {
        for (uint i = 0u; i < pc.S; ++i) {
            d[st + i] = s0[src + i];
        }
    }
    for (uint t = pc.t0; t < pc.t1; ++t) {
        const uint qb = pc.q_off + qs * pc.q_s3 + t * pc.q_s2 + qh * pc.q_s1;
        const uint kb = pc.k_off + ks * pc.k_s3 + t * pc.k_s2 + kh * pc.k_s1;
        const uint vb = pc.v_off + s * pc.v_s3 + t * pc.v_s2 + h * pc.v_s1;
        // g and beta are contiguous: [g_ne0, H, nt, ns] and [1, H, nt, ns].
        const uint gi = (s * pc.nt + t) * pc.H + h;
        const float b = beta[pc.beta_off + gi];
        const uint gb = pc.g_off + gi * pc.g_ne0;
        float sum = 0.0;
        for (uint i = 0u; i < pc.S; ++i) {
            const float decay = exp(g[gb + (pc.g_ne0 == 1u ? 0u : i)]);
            const float v_si = d[st + i] * decay;
            d[st + i] = v_si;
            sum += v_si * k[kb + i];
        }
        const float delta = (v[vb + j] - sum) * b;
        float out_j = 0.0;
        for (uint i = 0u; i < pc.S; ++i) {
            const float v_si = d[st + i] + k[kb + i] * delta;
            d[st + i] = v_si;
            out_j += v_si * q[qb + i];
        }
        d[pc.d_off + ((s * pc.nt + t) * pc.H + h) * pc.S + j] = out_j * pc.scale;
        const uint slot = pc.nt - 1u - t;
        if (pc.k_snap > 1u && slot > 0u && slot < pc.k_snap) {
            const uint snap = pc.d_off + attn_n + slot * ss * pc.H * pc.ns + col;
            for (uint i = 0u; i < pc.S; ++i) {
                d[snap + i] = d[st + i];
            }
        }
    }
}
