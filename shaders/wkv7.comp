#version 450
// RWKV_WKV7: one thread per state row i (the value index) of head h of sequence `seq` (S values state[i][j],
// kept in dst's state part). Per token, with every vector read at the token and head:
//   sa = sum over j of a[j] state[i][j]
//   state[i][j] = state[i][j] * w[j] + v[i] k[j] + sa * b[j];  y[i] = sum over j of state[i][j] r[j]
// summed in order in f32. The first token of each sequence starts from the state input. dst is
// [S * H, T + S * n_seqs]: y per token, then the final states. Every tensor contiguous; F32. Tokens [t0, t1) of
// each sequence per dispatch (the host splits long sequences: lavapipe stops a loop after 65535 iterations).
#include "elementwise.glsl"

layout(binding = 0) readonly buffer R { float r[]; };
layout(binding = 1) readonly buffer W { float w[]; };
layout(binding = 2) readonly buffer K { float k[]; };
layout(binding = 3) readonly buffer V { float v[]; };
layout(binding = 4) readonly buffer A { float a[]; };
layout(binding = 5) readonly buffer B { float b[]; };
layout(binding = 6) readonly buffer S0 { float s0[]; };
layout(binding = 7) buffer D { float d[]; };

// Mirrors ops::recurrent::Wkv7Push.
layout(push_constant) uniform Push {
    uint S; uint H; uint T; uint n_seqs;
    uint r_off; uint w_off; uint k_off; uint v_off;
    uint a_off; uint b_off; uint s0_off; uint d_off;
    uint t0; uint t1;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.S * pc.H * pc.n_seqs) {
        return;
    }
    const uint i = id % pc.S;
    const uint h = (id / pc.S) % pc.H;
    const uint seq = id / (pc.S * pc.H);
    const uint C = pc.S * pc.H;
    const uint per_seq = pc.T / pc.n_seqs;
    const uint row = seq * pc.S * C + h * pc.S * pc.S + i * pc.S;
    const uint st = pc.d_off + C * pc.T + row;
    const uint src = pc.s0_off + row;
    for (uint tt = pc.t0; tt < min(pc.t1, per_seq); ++tt) {
        const uint t = seq * per_seq + tt;
        const uint th = t * C + h * pc.S;
        float sa = 0.0;
        for (uint j = 0u; j < pc.S; ++j) {
            sa += a[pc.a_off + th + j] * (tt == 0u ? s0[src + j] : d[st + j]);
        }
        const float v_i = v[pc.v_off + th + i];
        float y = 0.0;
        for (uint j = 0u; j < pc.S; ++j) {
            const float prev = tt == 0u ? s0[src + j] : d[st + j];
            const float s = prev * w[pc.w_off + th + j] + v_i * k[pc.k_off + th + j] + sa * b[pc.b_off + th + j];
            d[st + j] = s;
            y += s * r[pc.r_off + th + j];
        }
        d[pc.d_off + th + i] = y;
    }
}
