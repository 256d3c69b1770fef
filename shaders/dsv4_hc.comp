#version 450
// DeepSeek-V4 hyper-connections (ggml_dsv4_hc_pre / _pre_gated / _post / _comb), F32, any strides (in elements).
// One variant per op (defines HC_PRE, HC_POST, HC_COMB); sums in ggml's CPU order, products added as fused
// multiply-adds (its build contracts them), divisions correctly rounded.
//   HC_PRE:  dst[i, t] = scale * sum_h x[i, h, t] * w, w = weights[h, t], or sigmoid(gate[i, h, t]) when gated;
//            a thread per (i, t). The host gives the weights' strides for (i, h, t) (0 for i when not gated).
//   HC_POST: dst[i, d, t] = x[i, t] * post[d, t] + sum_s residual[i, s, t] * comb[d, s, t], or
//            + residual[i, d, t] without comb; a thread per (i, d, t).
//   HC_COMB: per token, the 4 x 4 mixing matrix from mixes[8 + j, t] * scale[2] + base[8 + j]: a softmax over
//            dst for each src (plus eps), then column and row normalisations (Sinkhorn) for n_iter rounds; a
//            thread per token.
#extension GL_EXT_control_flow_attributes : require
#include "elementwise.glsl"
#include "div_rn.glsl"

#if defined(HC_PRE)
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { float w[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

// Mirrors ops::hyper_conn::PrePush.
layout(push_constant) uniform Push {
    uint n_embd; uint hc; uint nt; uint gated;
    uint x_off; uint x_s0; uint x_s1; uint x_s2;
    uint w_off; uint w_s0; uint w_s1; uint w_s2;
    uint d_off; uint d_s0; uint d_s1; float scale;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.n_embd * pc.nt) {
        return;
    }
    const uint i0 = id % pc.n_embd;
    const uint it = id / pc.n_embd;
    const uint xb = pc.x_off + i0 * pc.x_s0 + it * pc.x_s2;
    const uint wb = pc.w_off + i0 * pc.w_s0 + it * pc.w_s2;
    float sum = 0.0;
    for (uint h = 0u; h < pc.hc; ++h) {
        float wv = w[wb + h * pc.w_s1];
        if (pc.gated != 0u) {
            wv = div_rn(1.0, 1.0 + exp(-wv));
        }
        sum = fma(x[xb + h * pc.x_s1], wv, sum);
    }
    d[pc.d_off + i0 * pc.d_s0 + it * pc.d_s1] = pc.scale * sum;
}

#elif defined(HC_POST)
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer R { float r[]; };
layout(binding = 2) readonly buffer P { float p[]; };
layout(binding = 3) readonly buffer C { float c[]; };
layout(binding = 4) writeonly buffer D { float d[]; };

// Mirrors ops::hyper_conn::PostPush.
layout(push_constant) uniform Push {
    uint n_embd; uint hc; uint nt; uint has_comb;
    uint x_off; uint x_s0; uint x_s1; uint p_off;
    uint r_off; uint r_s0; uint r_s1; uint r_s2;
    uint c_off; uint c_s0; uint c_s1; uint c_s2;
    uint d_off; uint d_s0; uint d_s1; uint d_s2;
    uint p_s0; uint p_s1; uint pad0; uint pad1;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.n_embd * pc.hc * pc.nt) {
        return;
    }
    const uint i0 = id % pc.n_embd;
    const uint idst = (id / pc.n_embd) % pc.hc;
    const uint it = id / (pc.n_embd * pc.hc);
    const float xv = x[pc.x_off + i0 * pc.x_s0 + it * pc.x_s1];
    const float pv = p[pc.p_off + idst * pc.p_s0 + it * pc.p_s1];
    const uint rb = pc.r_off + i0 * pc.r_s0 + it * pc.r_s2;
    float sum;
    if (pc.has_comb != 0u) {
        sum = xv * pv;
        const uint cb = pc.c_off + idst * pc.c_s0 + it * pc.c_s2;
        for (uint s = 0u; s < pc.hc; ++s) {
            sum = fma(r[rb + s * pc.r_s1], c[cb + s * pc.c_s1], sum);
        }
    } else {
        sum = fma(xv, pv, r[rb + idst * pc.r_s1]);
    }
    d[pc.d_off + i0 * pc.d_s0 + idst * pc.d_s1 + it * pc.d_s2] = sum;
}

#elif defined(HC_COMB)
layout(binding = 0) readonly buffer M { float mixes[]; };
layout(binding = 1) readonly buffer S { float sc[]; };
layout(binding = 2) readonly buffer BS { float base[]; };
layout(binding = 3) writeonly buffer D { float d[]; };

// Mirrors ops::hyper_conn::CombPush.
layout(push_constant) uniform Push {
    uint nt; uint n_iter; float eps; uint m_off;
    uint m_s0; uint m_s1; uint s_off; uint s_s0;
    uint b_off; uint b_s0; uint d_off; uint d_s0;
    uint d_s1; uint d_s2; uint pad0; uint pad1;
} pc;

#define HC 4u

// Each dst (row of the matrix as comb[dst + 4 src]) divided by its sum over src plus eps.
void norm_dst(inout float m[16], float eps) {
    [[unroll]] for (uint i = 0u; i < HC; ++i) {
        float s = eps;
        [[unroll]] for (uint j = 0u; j < HC; ++j) { s += m[i + HC * j]; }
        const float inv = div_rn(1.0, s);
        [[unroll]] for (uint j = 0u; j < HC; ++j) { m[i + HC * j] *= inv; }
    }
}

// Each src divided by its sum over dst plus eps.
void norm_src(inout float m[16], float eps) {
    [[unroll]] for (uint j = 0u; j < HC; ++j) {
        float s = eps;
        [[unroll]] for (uint i = 0u; i < HC; ++i) { s += m[i + HC * j]; }
        const float inv = div_rn(1.0, s);
        [[unroll]] for (uint i = 0u; i < HC; ++i) { m[i + HC * j] *= inv; }
    }
}

void main() {
    const uint it = element_id();
    if (it >= pc.nt) {
        return;
    }
    const float scale = sc[pc.s_off + 2u * pc.s_s0];
    float m[16];
    [[unroll]] for (uint j = 0u; j < HC; ++j) {
        float mx = uintBitsToFloat(0xFF800000u);
        [[unroll]] for (uint i = 0u; i < HC; ++i) {
            const uint k = 2u * HC + i + HC * j;
            const float v = fma(mixes[pc.m_off + k * pc.m_s0 + it * pc.m_s1], scale, base[pc.b_off + k * pc.b_s0]);
            m[i + HC * j] = v;
            mx = max(mx, v);
        }
        float s = 0.0;
        [[unroll]] for (uint i = 0u; i < HC; ++i) {
            const float e = exp(m[i + HC * j] - mx);
            m[i + HC * j] = e;
            s += e;
        }
        const float inv = div_rn(1.0, s);
        [[unroll]] for (uint i = 0u; i < HC; ++i) { m[i + HC * j] = fma(m[i + HC * j], inv, pc.eps); }
    }
    norm_dst(m, pc.eps);
    for (uint r = 1u; r < pc.n_iter; ++r) {
        norm_src(m, pc.eps);
        norm_dst(m, pc.eps);
    }
    [[unroll]] for (uint j = 0u; j < HC; ++j) {
        [[unroll]] for (uint i = 0u; i < HC; ++i) {
            d[pc.d_off + i * pc.d_s0 + j * pc.d_s1 + it * pc.d_s2] = m[i + HC * j];
        }
    }
}
#endif
