#version 450
// RWKV_WKV6, or GATED_LINEAR_ATTN with GLA defined: one thread per state column j of head h of sequence `seq`
// (S values state[i][j], i the key index, kept in dst's state part). Per token t of the sequence, in order over i:
//   WKV6: kv = k[i] v[j]; y[j] += (kv * u[i] + state[i][j]) * r[i]; state[i][j] = state[i][j] * w_t[i] + kv
//   GLA:  state[i][j] = state[i][j] * g_t[i] + k[i] v[j];        y[j] += state[i][j] * (q[i] * scale)
// as ggml's CPU backend sums them. The first token of each sequence starts from the state input. dst is
// [S * H, T + S * n_seqs]: y per token, then the final states. Every tensor contiguous; F32. Tokens [t0, t1) of
// each sequence per dispatch (the host splits long sequences: lavapipe stops a loop after 65535 iterations).
#include "elementwise.glsl"

layout(binding = 0) readonly buffer K { float kk[]; };
layout(binding = 1) readonly buffer V { float vv[]; };
layout(binding = 2) readonly buffer R { float rq[]; };   // WKV6: r; GLA: q
layout(binding = 3) readonly buffer TF { float tf[]; };  // WKV6: time_faaaa u [S, H]; GLA: gate g [S, H, T]
#ifdef GLA
layout(binding = 4) readonly buffer S0 { float s0[]; };
layout(binding = 5) buffer D { float d[]; };
#else
layout(binding = 4) readonly buffer TD { float td[]; };  // time_decay w [S, H, T]
layout(binding = 5) readonly buffer S0 { float s0[]; };
layout(binding = 6) buffer D { float d[]; };
#endif

// Mirrors ops::recurrent::WkvPush.
layout(push_constant) uniform Push {
    uint S; uint H; uint T; uint n_seqs;
    uint k_off; uint v_off; uint r_off; uint tf_off;
    uint td_off; uint s0_off; uint d_off; float scale;
    uint t0; uint t1;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.S * pc.H * pc.n_seqs) {
        return;
    }
    const uint j = id % pc.S;
    const uint h = (id / pc.S) % pc.H;
    const uint seq = id / (pc.S * pc.H);
    const uint C = pc.S * pc.H;
    const uint per_seq = pc.T / pc.n_seqs;
    const uint st = pc.d_off + C * pc.T + seq * pc.S * C + h * pc.S * pc.S + j;
    const uint src = pc.s0_off + seq * pc.S * C + h * pc.S * pc.S + j;
    for (uint tt = pc.t0; tt < min(pc.t1, per_seq); ++tt) {
        const uint t = seq * per_seq + tt;
        const uint th = t * C + h * pc.S;
        const float v_j = vv[pc.v_off + th + j];
        float y = 0.0;
        for (uint i = 0u; i < pc.S; ++i) {
            const float prev = tt == 0u ? s0[src + i * pc.S] : d[st + i * pc.S];
            const float kv = v_j * kk[pc.k_off + th + i];
#ifdef GLA
            const float temp = prev * tf[pc.tf_off + th + i] + kv;
            y += temp * (rq[pc.r_off + th + i] * pc.scale);
            d[st + i * pc.S] = temp;
#else
            const float temp = kv * tf[pc.tf_off + h * pc.S + i] + prev;
            y += temp * rq[pc.r_off + th + i];
            d[st + i * pc.S] = prev * td[pc.td_off + th + i] + kv;
#endif
        }
        d[pc.d_off + th + j] = y;
    }
}
