#version 450
// ggml_rms_norm on F32: per row of x (dim 0), d = x / sqrt(mean(x^2) + eps).
// One workgroup per row (x + y * numGroups.x linearised); rows may be anywhere (strides per dim), elements
// within a row are packed. Reads x twice (sum of squares, then scale), so d may alias x (in-place): each
// element is read and written by the same invocation.
#ifndef NO_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 256;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer D { float d[]; };

// Mirrors ops::norm::NormPush. Offsets and strides in floats.
layout(push_constant) uniform Push {
    uint ne0; uint ne1; uint ne2; uint rows;
    uint x_off; uint x_s1; uint x_s2; uint x_s3;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    float eps; uint pad0; uint pad1; uint pad2;
} pc;

shared float red[WG];

#include "row_reduce.glsl"

void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    // Uniform per workgroup: the barriers of the reduction below stay in uniform control flow.
    if (row >= pc.rows) { return; }
    const uint tid = gl_LocalInvocationID.x;
    const uint i1 = row % pc.ne1;
    const uint i2 = (row / pc.ne1) % pc.ne2;
    const uint i3 = row / (pc.ne1 * pc.ne2);
    const uint xb = pc.x_off + i1 * pc.x_s1 + i2 * pc.x_s2 + i3 * pc.x_s3;
    const uint db = pc.d_off + i1 * pc.d_s1 + i2 * pc.d_s2 + i3 * pc.d_s3;

    float acc = 0.0;
    for (uint i = tid; i < pc.ne0; i += WG) {
        const float v = x[xb + i];
        acc += v * v;
    }
    const float sum = wg_sum(acc);
    const float mean = sum / float(pc.ne0);
    const float scale = 1.0 / sqrt(mean + pc.eps);
    for (uint i = tid; i < pc.ne0; i += WG) {
        d[db + i] = x[xb + i] * scale;
    }
}
