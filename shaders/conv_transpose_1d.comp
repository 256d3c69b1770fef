#version 450
// CONV_TRANSPOSE_1D, one thread per dst element (x, o): the input positions l whose kernel window covers x
// (0 <= x - l * s0 < K), ascending; for each, the dot product over the input channels c of input[l, c] and
// kernel[x - l * s0, o, c], added to the running sum (ggml's CPU order). F32, strides in elements.
#include "elementwise.glsl"

layout(binding = 0) readonly buffer K { float kern[]; };
layout(binding = 1) readonly buffer X { float inp[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

// Mirrors ops::conv::ConvT1dPush.
layout(push_constant) uniform Push {
    uvec4 dims; // K, C_out, C_in, L
    uvec4 s_k;  // kernel strides: position, output channel, input channel; then s0
    uvec4 s_io; // input strides: position, channel; dst strides: position, channel
    uvec4 tail; // output length, dst elements, kernel offset, input offset
    uint d_off; uint pad0; uint pad1; uint pad2;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.tail.y) {
        return;
    }
    const uint x = id % pc.tail.x;
    const uint o = id / pc.tail.x;
    const uint s0 = pc.s_k.w;
    // l from the first position whose window reaches x to the last one that starts at or before it.
    const uint l_first = x + 1u > pc.dims.x ? (x + 1u - pc.dims.x + s0 - 1u) / s0 : 0u;
    const uint l_last = min(x / s0, pc.dims.w - 1u);
    float acc = 0.0;
    for (uint l = l_first; l <= l_last; ++l) {
        const uint kx = x - l * s0;
        const uint kb = pc.tail.z + kx * pc.s_k.x + o * pc.s_k.y;
        const uint xb = pc.tail.w + l * pc.s_io.x;
        float v = 0.0;
        for (uint c = 0u; c < pc.dims.z; ++c) {
            v += inp[xb + c * pc.s_io.y] * kern[kb + c * pc.s_k.z];
        }
        acc += v;
    }
    d[pc.d_off + x * pc.s_io.z + o * pc.s_io.w] = acc;
}
