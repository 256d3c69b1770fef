#version 450
// COL2IM_1D (ggml_col2im_1d): columns a [K * OC, T_in] scatter-added back into a signal dst [T_out, OC],
// T_out = (T_in - 1) * s0 + K - 2 * p0. One thread per dst value (t, c), gathering as ggml's CPU backend does:
// with ta = t + p0, the sum over t_in ascending (from max(0, ceil((ta - K + 1) / s0)) to min(ta / s0, T_in - 1))
// of a[c * K + (ta - t_in * s0), t_in], added in f32 from 0, then converted to dst's type.
// Defines: X_F16 / X_BF16 (both tensors; else F32). Both contiguous; offsets in elements.
#include "elementwise.glsl"

#if defined(X_F16) || defined(X_BF16)
layout(binding = 0) readonly buffer A { uint16_t a[]; };
layout(binding = 1) writeonly buffer D { uint16_t d[]; };
#else
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
#endif

// Mirrors ops::col2im::Col2ImPush.
layout(push_constant) uniform Push {
    uint k; uint oc; uint t_in; uint t_out;
    uint s0; uint p0; uint a_off; uint d_off;
    uint n; uint pad0; uint pad1; uint pad2;
} pc;

float load_a(uint i) {
#if defined(X_F16)
    return half_to_float(uint(a[i]));
#elif defined(X_BF16)
    return uintBitsToFloat(uint(a[i]) << 16);
#else
    return a[i];
#endif
}

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint t = id % pc.t_out;
    const uint c = id / pc.t_out;
    const int ta = int(t + pc.p0);
    const int kk = int(pc.k);
    const int s0 = int(pc.s0);
    const int lo = ta - kk + 1 <= 0 ? 0 : (ta - kk + s0) / s0;
    const int hi = min(ta / s0, int(pc.t_in) - 1);
    precise float sum = 0.0;
    for (int ti = lo; ti <= hi; ++ti) {
        const int k = ta - ti * s0;
        if (k >= 0 && k < kk) {
            sum += load_a(pc.a_off + c * pc.k + uint(k) + uint(ti) * pc.k * pc.oc);
        }
    }
#if defined(X_F16)
    d[pc.d_off + id] = uint16_t(float_bits_to_half(floatBitsToUint(sum)));
#elif defined(X_BF16)
    d[pc.d_off + id] = uint16_t(float_bits_to_bf16(floatBitsToUint(sum)));
#else
    d[pc.d_off + id] = sum;
#endif
}
