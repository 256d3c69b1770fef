#version 450
// POOL_1D and POOL_2D (1-D as height 1) on contiguous F32 tensors, one thread per dst element: the window of
// dst (ox, oy, plane) starts at (ox * s0 - p0, oy * s1 - p1) in the same plane of src0; values outside src0 are
// skipped. Max: from -FLT_MAX, `res = v < res ? res : v` (ggml's std::max(v, res)). Average: the sum in window
// order (rows, then columns) divided by the count of values read (div_count) or by k0 * k1, correctly rounded.
#include "elementwise.glsl"
#include "div_rn.glsl"

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };

// Mirrors ops::pool::PoolPush.
layout(push_constant) uniform Push {
    uvec4 dims; // IW, IH, OW, OH
    ivec2 k; ivec2 s; ivec2 p;
    uint op; uint div_count; uint n; uint a_off; uint d_off; uint pad0;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint ox = id % pc.dims.z;
    const uint oy = (id / pc.dims.z) % pc.dims.w;
    const uint plane = id / (pc.dims.z * pc.dims.w);
    const uint base = pc.a_off + plane * pc.dims.x * pc.dims.y;
    const int ix = int(ox) * pc.s.x - pc.p.x;
    const int iy = int(oy) * pc.s.y - pc.p.y;
    float res = pc.op == 0u ? uintBitsToFloat(0xFF7FFFFFu) : 0.0; // -FLT_MAX
    uint count = 0u;
    for (int ky = 0; ky < pc.k.y; ++ky) {
        const int y = iy + ky;
        if (y < 0 || y >= int(pc.dims.y)) {
            continue;
        }
        for (int kx = 0; kx < pc.k.x; ++kx) {
            const int x = ix + kx;
            if (x < 0 || x >= int(pc.dims.x)) {
                continue;
            }
            const float v = a[base + uint(y) * pc.dims.x + uint(x)];
            res = pc.op == 0u ? (v < res ? res : v) : res + v;
            count += 1u;
        }
    }
    if (pc.op != 0u) {
        if (pc.div_count != 0u) {
            res = count > 0u ? div_rn(res, float(count)) : 0.0;
        } else {
            res = div_rn(res, float(pc.k.x * pc.k.y));
        }
    }
    d[pc.d_off + id] = res;
}
