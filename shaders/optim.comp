#version 450
// OPT_STEP_ADAMW and OPT_STEP_SGD, one thread per weight, updating the weights (and AdamW's moments) in place
// as ggml's CPU backend does, its parameters read from the device (AdamW: alpha, beta1, beta2, eps, wd, beta1h,
// beta2h; SGD: alpha, wd):
//   AdamW: m = m beta1 + g (1 - beta1); v = v beta2 + g g (1 - beta2);
//          w = w (1 - alpha wd) - alpha (m beta1h) / (sqrt(v beta2h) + eps)
//   SGD:   w = w (1 - alpha wd) - alpha g
// Every tensor contiguous, F32. Without ADAMW the m and v bindings are unused placeholders.
#include "elementwise.glsl"

layout(binding = 0) buffer W { float w[]; };
layout(binding = 1) readonly buffer G { float g[]; };
layout(binding = 2) buffer M { float m[]; };
layout(binding = 3) buffer V { float v[]; };
layout(binding = 4) readonly buffer P { float prm[]; };

// Mirrors ops::optim::OptPush.
layout(push_constant) uniform Push {
    uint w_off; uint g_off; uint m_off; uint v_off;
    uint p_off; uint n; uint adamw; uint pad0;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const float alpha = prm[pc.p_off];
    const float gi = g[pc.g_off + id];
    if (pc.adamw != 0u) {
        const float beta1 = prm[pc.p_off + 1u];
        const float beta2 = prm[pc.p_off + 2u];
        const float eps = prm[pc.p_off + 3u];
        const float wd = prm[pc.p_off + 4u];
        const float beta1h = prm[pc.p_off + 5u];
        const float beta2h = prm[pc.p_off + 6u];
        const float keep = 1.0 - alpha * wd;
        const float mi = m[pc.m_off + id] * beta1 + gi * (1.0 - beta1);
        const float vi = v[pc.v_off + id] * beta2 + gi * gi * (1.0 - beta2);
        m[pc.m_off + id] = mi;
        v[pc.v_off + id] = vi;
        const float mh = mi * beta1h;
        const float vh = sqrt(vi * beta2h) + eps;
        w[pc.w_off + id] = w[pc.w_off + id] * keep - alpha * mh / vh;
    } else {
        const float keep = 1.0 - alpha * prm[pc.p_off + 1u];
        w[pc.w_off + id] = w[pc.w_off + id] * keep - alpha * gi;
    }
}
