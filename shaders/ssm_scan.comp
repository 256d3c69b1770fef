#version 450
// SSM_SCAN (mamba-1 / mamba-2 selective scan), one thread per state row: channel i1 of head h of sequence i3
// (d_state values, kept in dst's state part). Per token, in order:
//   dt' = softplus(dt[h]) (dt itself above 20), x_dt = x[i1, h] * dt'
//   state[i0] = state[i0] * exp(dt' * A) + B[i0, g] * x_dt   (A per head, or per head and i0 for mamba-1)
//   y[i1, h] = sum over i0 of state[i0] * C[i0, g]           (g = h / (n_head / n_group))
// The first token starts from src0's state of sequence ids[i3] (zeros if that id is out of range). dst holds
// y [head_dim, n_head, n_tokens, n_seqs] then the final states, then (K > 1) the states K-1 .. 1 tokens before
// the end, each [d_state, head_dim, n_head, n_seqs]. F32; strides in elements. Tokens [t0, t1) per dispatch
// (the host splits long sequences: lavapipe stops a loop after 65535 iterations).
#include "elementwise.glsl"

layout(binding = 0) readonly buffer S0 { float s0[]; };
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) readonly buffer DT { float dt[]; };
layout(binding = 3) readonly buffer A { float a[]; };
layout(binding = 4) readonly buffer B { float b[]; };
layout(binding = 5) readonly buffer C { float c[]; };
layout(binding = 6) readonly buffer IDS { int ids[]; };
layout(binding = 7) buffer D { float d[]; };

// Mirrors ops::recurrent::SsmScanPush.
layout(push_constant) uniform Push {
    uint nc; uint nr; uint nh; uint ng;
    uint nt; uint ns; uint k_snap; uint s0_ne3;
    uint a_ne0; uint y_n; uint s0_off; uint x_off;
    uint dt_off; uint a_off; uint b_off; uint c_off;
    uint ids_off; uint d_off; uint x_s1; uint x_s2;
    uint x_s3; uint b_s1; uint b_s2; uint b_s3;
    uint c_s1; uint c_s2; uint c_s3; uint t0;
    uint t1;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.nr * pc.nh * pc.ns) {
        return;
    }
    const uint i1 = id % pc.nr;
    const uint h = (id / pc.nr) % pc.nh;
    const uint i3 = id / (pc.nr * pc.nh);
    const uint g = h / (pc.nh / pc.ng);
    const uint ii = i1 + h * pc.nr;
    const uint state_n = pc.nc * pc.nr * pc.nh;
    const uint row = ii * pc.nc;
    const uint st = pc.d_off + pc.y_n + i3 * state_n + row;
    const int src_seq = ids[pc.ids_off + i3];
    const bool have_src = src_seq >= 0 && uint(src_seq) < pc.s0_ne3;
    const uint src = pc.s0_off + (have_src ? uint(src_seq) : 0u) * state_n + row;
    for (uint i2 = pc.t0; i2 < pc.t1; ++i2) {
        const float dtv = dt[pc.dt_off + h + (i2 + i3 * pc.nt) * pc.nh];
        const float dsp = dtv > 20.0 ? dtv : log(1.0 + exp(dtv));
        const float x_dt = x[pc.x_off + i1 + h * pc.x_s1 + i2 * pc.x_s2 + i3 * pc.x_s3] * dsp;
        const float da_head = exp(dsp * a[pc.a_off + h * pc.a_ne0]);
        const uint bb = pc.b_off + g * pc.b_s1 + i2 * pc.b_s2 + i3 * pc.b_s3;
        const uint cb = pc.c_off + g * pc.c_s1 + i2 * pc.c_s2 + i3 * pc.c_s3;
        float sum = 0.0;
        for (uint i0 = 0u; i0 < pc.nc; ++i0) {
            const float prev = i2 == 0u ? (have_src ? s0[src + i0] : 0.0) : d[st + i0];
            const float da = pc.a_ne0 == 1u ? da_head : exp(dsp * a[pc.a_off + h * pc.a_ne0 + i0]);
            const float state = prev * da + b[bb + i0] * x_dt;
            sum += state * c[cb + i0];
            d[st + i0] = state;
        }
        d[pc.d_off + ii + (i2 + i3 * pc.nt) * pc.nr * pc.nh] = sum;
        const uint slot = pc.nt - 1u - i2;
        if (pc.k_snap > 1u && slot > 0u && slot < pc.k_snap) {
            const uint snap = pc.d_off + pc.y_n + (slot * pc.ns + i3) * state_n + row;
            for (uint i0 = 0u; i0 < pc.nc; ++i0) {
                d[snap + i0] = d[st + i0];
            }
        }
    }
}
