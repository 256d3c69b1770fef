#version 450
// Direct convolution, one thread per dst element: over input channels ic in [ic0, ic1), then kz, ky, kx
// ascending, the taps inside the input, src[x*s0 + kx*d0 - p0, y*s1 + ky*d1 - p1, z*s2 + kz*d2 - p2, ic, n] times
// kernel[kx, ky, kz, ic, oc], summed in f32. Defines:
//   CONV3D: CONV_3D (input channel ic of batch n is src dim-3 index n*IC + ic, output channel oc of batch n is
//           dst dim-3 index n*OC + oc, the kernel contiguous [KW, KH, KD, OC*IC] with oc*IC + ic); otherwise
//           CONV_2D or, with `dw` set, CONV_2D_DW (one input channel per output channel: src channel oc).
//   K_F16:  F16 kernel; CONV_2D and CONV_3D then round the input to f16, as ggml's CPU backend does.
// Strides in elements. The host may split the input channels over dispatches (lavapipe ends a shader's loops
// after 65535 iterations): a dispatch with ic0 > 0 adds to dst.
#include "elementwise.glsl"

layout(binding = 0) readonly buffer S { float src[]; };
#ifdef K_F16
layout(binding = 1) readonly buffer K { uint16_t ker[]; };
#define LOAD_K(i) half_to_float(uint(ker[i]))
#else
layout(binding = 1) readonly buffer K { float ker[]; };
#define LOAD_K(i) ker[i]
#endif
layout(binding = 2) buffer D { float d[]; };

// Mirrors ops::conv2d::Conv2dPush / Conv3dPush.
#ifdef CONV3D
layout(push_constant) uniform Push {
    uvec4 out_dims; // OW, OH, OD, OC
    uvec4 in_dims;  // IW, IH, ID, N
    uvec4 k_dims;   // KW, KH, KD, IC
    uvec4 spd;      // s0 | s1 << 16, s2 | d0 << 16, d1 | d2 << 16, ic0
    ivec4 pad_ic;   // p0, p1, p2, ic1
    uvec4 src_s;    // x, y, z, channel
    uvec4 d_s;      // x, y, z, channel
    uvec4 offs;     // src, kernel, dst, unused
} pc;
#else
layout(push_constant) uniform Push {
    uvec4 out_dims; // OW, OH, OC, N
    uvec4 in_dims;  // IW, IH, IC, depthwise
    uvec4 geo;      // KW, KH, s0 | s1 << 16, d0 | d1 << 16
    ivec4 pad_ic;   // p0, p1, ic0, ic1
    uvec4 src_s;    // x, y, channel, n
    uvec4 k_s;      // x, y, ic, oc
    uvec4 d_s;      // x, y, channel, n
    uvec4 offs;     // src, kernel, dst, unused
} pc;
#endif

void main() {
    const uint id = element_id();
    const uint ox = id % pc.out_dims.x;
    uint r = id / pc.out_dims.x;
    const uint oy = r % pc.out_dims.y;
    r /= pc.out_dims.y;
#ifdef CONV3D
    const uint oz = r % pc.out_dims.z;
    r /= pc.out_dims.z;
    const uint oc = r % pc.out_dims.w;
    const uint n = r / pc.out_dims.w;
    if (n >= pc.in_dims.w) {
        return;
    }
    const uvec3 s = uvec3(pc.spd.x & 0xFFFFu, pc.spd.x >> 16, pc.spd.y & 0xFFFFu);
    const uvec3 dl = uvec3(pc.spd.y >> 16, pc.spd.z & 0xFFFFu, pc.spd.z >> 16);
    const ivec3 base = ivec3(uvec3(ox, oy, oz) * s) - pc.pad_ic.xyz;
    const uvec3 kd = pc.k_dims.xyz;
    const uvec3 idim = pc.in_dims.xyz;
    const uint ic0 = pc.spd.w;
    const uint ic1 = uint(pc.pad_ic.w);
    const uint n_ic = pc.k_dims.w;
    const uint sb = pc.offs.x + n * n_ic * pc.src_s.w;
    const uint kb = pc.offs.y + oc * n_ic * kd.x * kd.y * kd.z;
    const uvec4 ks = uvec4(1u, kd.x, kd.x * kd.y, kd.x * kd.y * kd.z);
    const uint dst = pc.offs.z + ox * pc.d_s.x + oy * pc.d_s.y + oz * pc.d_s.z + (n * pc.out_dims.w + oc) * pc.d_s.w;
    const uint src_c = pc.src_s.w;
    const uvec3 ss = pc.src_s.xyz;
#ifdef K_F16
    const bool round_in = true;
#else
    const bool round_in = false;
#endif
#else
    const uint oc = r % pc.out_dims.z;
    const uint n = r / pc.out_dims.z;
    if (n >= pc.out_dims.w) {
        return;
    }
    const uvec3 s = uvec3(pc.geo.z & 0xFFFFu, pc.geo.z >> 16, 1u);
    const uvec3 dl = uvec3(pc.geo.w & 0xFFFFu, pc.geo.w >> 16, 1u);
    const ivec3 base = ivec3(int(ox * s.x) - pc.pad_ic.x, int(oy * s.y) - pc.pad_ic.y, 0);
    const uvec3 kd = uvec3(pc.geo.x, pc.geo.y, 1u);
    const uvec3 idim = uvec3(pc.in_dims.x, pc.in_dims.y, 1u);
    const uint ic0 = uint(pc.pad_ic.z);
    const uint ic1 = uint(pc.pad_ic.w);
    const bool dw = pc.in_dims.w != 0u;
    const uint sb = pc.offs.x + n * pc.src_s.w + (dw ? oc * pc.src_s.z : 0u);
    const uint kb = pc.offs.y + oc * pc.k_s.w;
    const uvec4 ks = uvec4(pc.k_s.x, pc.k_s.y, 0u, pc.k_s.z);
    const uint dst = pc.offs.z + ox * pc.d_s.x + oy * pc.d_s.y + oc * pc.d_s.z + n * pc.d_s.w;
    const uint src_c = dw ? 0u : pc.src_s.z;
    const uvec3 ss = uvec3(pc.src_s.x, pc.src_s.y, 0u);
#ifdef K_F16
    const bool round_in = !dw;
#else
    const bool round_in = false;
#endif
#endif
    float acc = ic0 > 0u ? d[dst] : 0.0;
    for (uint ic = ic0; ic < ic1; ++ic) {
        const uint sc = sb + ic * src_c;
        const uint kc = kb + ic * ks.w;
        for (uint kz = 0u; kz < kd.z; ++kz) {
            const int iz = base.z + int(kz * dl.z);
            if (iz < 0 || iz >= int(idim.z)) {
                continue;
            }
            for (uint ky = 0u; ky < kd.y; ++ky) {
                const int iy = base.y + int(ky * dl.y);
                if (iy < 0 || iy >= int(idim.y)) {
                    continue;
                }
                for (uint kx = 0u; kx < kd.x; ++kx) {
                    const int ix = base.x + int(kx * dl.x);
                    if (ix < 0 || ix >= int(idim.x)) {
                        continue;
                    }
                    float v = src[sc + uint(ix) * ss.x + uint(iy) * ss.y + uint(iz) * ss.z];
                    if (round_in) {
                        v = half_to_float(float_to_half(v));
                    }
                    acc += v * LOAD_K(kc + kx * ks.x + ky * ks.y + kz * ks.z);
                }
            }
        }
    }
    d[dst] = acc;
}
