#version 450
// SSM_CONV (mamba's causal depthwise convolution), one thread per dst element (channel i1, token i2, sequence i3):
// dst[i1, i2, i3] = sum over i0 < d_conv of sx[i2 + i0, i1, i3] * c[i0, i1], summed in order in f32 as ggml's CPU
// backend does. F32; strides in elements (dim 0 packed everywhere).
#include "elementwise.glsl"

layout(binding = 0) readonly buffer S { float sx[]; };
layout(binding = 1) readonly buffer C { float cw[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

// Mirrors ops::recurrent::SsmConvPush.
layout(push_constant) uniform Push {
    uvec4 dims; // d_inner, n_t, n_s, d_conv
    uint sx_off; uint sx_s1; uint sx_s2; uint c_off;
    uint c_s1; uint d_off; uint d_s1; uint d_s2;
    uint n; uint pad0; uint pad1; uint pad2;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint i1 = id % pc.dims.x;
    const uint i2 = (id / pc.dims.x) % pc.dims.y;
    const uint i3 = id / (pc.dims.x * pc.dims.y);
    const uint sb = pc.sx_off + i3 * pc.sx_s2 + i1 * pc.sx_s1 + i2;
    const uint cb = pc.c_off + i1 * pc.c_s1;
    float sum = 0.0;
    for (uint i0 = 0u; i0 < pc.dims.w; ++i0) {
        sum += sx[sb + i0] * cw[cb + i0];
    }
    d[pc.d_off + i1 + i2 * pc.d_s1 + i3 * pc.d_s2] = sum;
}
