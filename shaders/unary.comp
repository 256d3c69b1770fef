#version 450
// SCALE (dst = x * s + b, ggml_scale / ggml_scale_bias) and SILU (x * sigmoid(x), ggml_silu) on any strides;
// dst has src0's shape and may alias it. Defines: X_F16 (F16 src0 and dst, else F32).
// Spec constant 1: OP (0 scale, 1 silu).
#include "elementwise.glsl"

layout(constant_id = 1) const uint OP = 0;

#ifdef X_F16
layout(binding = 0) readonly buffer A { uint16_t a[]; };
layout(binding = 1) writeonly buffer D { uint16_t d[]; };
#define LOAD_A(i) half_to_float(uint(a[i]))
#define STORE_D(i, v) d[i] = uint16_t(float_to_half(v))
#else
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
#define LOAD_A(i) a[i]
#define STORE_D(i, v) d[i] = (v)
#endif

layout(push_constant) uniform Push {
    uvec4 ne;  // shape of src0 and dst
    uvec4 s_a; // strides in elements (0 for dims of size 1)
    uvec4 s_d;
    uint a_off; uint d_off; uint n; uint pad0;
    uint a_mode; uint d_mode; uint a_rs; uint d_rs; // layout modes and row strides (elementwise.glsl)
    float scale; float bias; float pad1; float pad2;
} pc;

// x * sigmoid(x) from exp(-|x|) <= 1, so nothing overflows: large positive x gives x, large negative x gives -0
// (or a tiny negative), never NaN.
float silu(float x) {
    const float e = exp(-abs(x));
    const float sig = (x >= 0.0 ? 1.0 : e) / (1.0 + e);
    return x * sig;
}

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint ia = pc.a_off + element_offset(id, pc.a_mode, pc.ne, pc.s_a, pc.a_rs);
    const uint idst = pc.d_off + element_offset(id, pc.d_mode, pc.ne, pc.s_d, pc.d_rs);
    const float x = LOAD_A(ia);
    float v;
    if (OP == 0u) {
        // ggml: x * s when b == 0, else a fused multiply-add (its vector path).
        v = pc.bias == 0.0 ? x * pc.scale : fma(x, pc.scale, pc.bias);
    } else {
        v = silu(x);
    }
    STORE_D(idst, v);
}
