#version 450
// CONV_TRANSPOSE_2D (ggml_conv_transpose_2d_p0), one thread per dst element (x, y, output channel co, batch n):
// over the input positions (i10, i11) whose kernel window covers (x, y) (0 <= x - i10*s < Kw, same for y), i11
// then i10 ascending (ggml's CPU order), the dot product over input channels ci of input[i10, i11, ci, n] and
// kernel[x - i10*s, y - i11*s, co, ci], added to the running sum. Defines: K_F16 (F16 kernel; the input is then
// rounded to f16 as ggml's CPU backend does). Strides in elements.
#include "elementwise.glsl"

layout(binding = 0) readonly buffer S { float src[]; };
#ifdef K_F16
layout(binding = 1) readonly buffer K { uint16_t ker[]; };
#define LOAD_K(i) half_to_float(uint(ker[i]))
#define ROUND_IN(v) half_to_float(float_to_half(v))
#else
layout(binding = 1) readonly buffer K { float ker[]; };
#define LOAD_K(i) ker[i]
#define ROUND_IN(v) (v)
#endif
layout(binding = 2) writeonly buffer D { float d[]; };

// Mirrors ops::conv2d::ConvT2dPush.
layout(push_constant) uniform Push {
    uvec4 out_dims; // OW, OH, Cout, N
    uvec4 in_dims;  // Sw, Sh, Cin, stride
    uvec4 k_dims;   // Kw, Kh, src offset, kernel offset
    uvec4 src_s;    // strides: x, y, ci, n
    uvec4 k_s;      // strides: x, y, co, ci
    uvec4 d_s;      // strides: x, y, co, n
    uint d_off; uint n; uint pad0; uint pad1;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint x = id % pc.out_dims.x;
    uint r = id / pc.out_dims.x;
    const uint y = r % pc.out_dims.y;
    r /= pc.out_dims.y;
    const uint co = r % pc.out_dims.z;
    const uint b = r / pc.out_dims.z;
    const uint s = pc.in_dims.w;
    const uint y_first = y + 1u > pc.k_dims.y ? (y + 1u - pc.k_dims.y + s - 1u) / s : 0u;
    const uint y_last = min(y / s, pc.in_dims.y - 1u);
    const uint x_first = x + 1u > pc.k_dims.x ? (x + 1u - pc.k_dims.x + s - 1u) / s : 0u;
    const uint x_last = min(x / s, pc.in_dims.x - 1u);
    float acc = 0.0;
    for (uint i11 = y_first; i11 <= y_last; ++i11) {
        for (uint i10 = x_first; i10 <= x_last; ++i10) {
            const uint sb = pc.k_dims.z + i10 * pc.src_s.x + i11 * pc.src_s.y + b * pc.src_s.w;
            const uint kb = pc.k_dims.w + (x - i10 * s) * pc.k_s.x + (y - i11 * s) * pc.k_s.y + co * pc.k_s.z;
            float v = 0.0;
            for (uint ci = 0u; ci < pc.in_dims.z; ++ci) {
                v += ROUND_IN(src[sb + ci * pc.src_s.z]) * LOAD_K(kb + ci * pc.k_s.w);
            }
            acc += v;
        }
    }
    d[pc.d_off + x * pc.d_s.x + y * pc.d_s.y + co * pc.d_s.z + b * pc.d_s.w] = acc;
}
