#version 450
// Second pass of split-KV flash attention: combines the per-split partials [M, L, out[DV]] that flash_attn.comp
// wrote for one output row (iq1, iq2, iq3), adds the sink logit, normalises, and writes dst[:, iq2, iq1, iq3].
//   M = max over splits (and the sink), L = sum L_s exp(M_s - M) (+ exp(sink - M)),
//   out = sum out_s exp(M_s - M) / L (0 where L = 0, i.e. every key was masked and there is no sink).
// One workgroup per output row (x + y * numGroups.x), threads over DV.
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 64;

layout(binding = 0) readonly buffer P { float part[]; };
layout(binding = 1) readonly buffer S { float sinks[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

// Mirrors ops::flash_attn::ReducePush.
layout(push_constant) uniform Push {
    uint n_q; uint n_head; uint total; uint splits;
    uint dv; uint has_sinks; uint s_off; uint p_off;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
} pc;

#define NEG_INF uintBitsToFloat(0xFF800000u)

void main() {
    const uint pr = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (pr >= pc.total) { return; }
    const uint iq2 = pr % pc.n_head;
    const uint iq1 = (pr / pc.n_head) % pc.n_q;
    const uint iq3 = pr / (pc.n_head * pc.n_q);
    const uint rec = pc.dv + 2u;

    float m = NEG_INF;
    for (uint s = 0u; s < pc.splits; ++s) { m = max(m, part[pc.p_off + (s * pc.total + pr) * rec]); }
    float sink = NEG_INF;
    if (pc.has_sinks != 0u) {
        sink = sinks[pc.s_off + iq2];
        m = max(m, sink);
    }
    float l = 0.0;
    for (uint s = 0u; s < pc.splits; ++s) {
        const uint b = pc.p_off + (s * pc.total + pr) * rec;
        const float ms = part[b];
        l += ms == NEG_INF ? 0.0 : part[b + 1u] * exp(ms - m);
    }
    if (pc.has_sinks != 0u) { l += exp(sink - m); }
    const float inv = l == 0.0 ? 0.0 : 1.0 / l;
    const uint db = pc.d_off + iq2 * pc.d_s1 + iq1 * pc.d_s2 + iq3 * pc.d_s3;
    for (uint k = gl_LocalInvocationID.x; k < pc.dv; k += WG) {
        float o = 0.0;
        for (uint s = 0u; s < pc.splits; ++s) {
            const uint b = pc.p_off + (s * pc.total + pr) * rec;
            const float ms = part[b];
            if (ms != NEG_INF) { o += part[b + 2u + k] * exp(ms - m); }
        }
        d[db + k] = o * inv;
    }
}
