#version 450
// FILL, TRI and DIAG_MASK_INF, one thread per dst element (i0, i1, i2, i3), any strides:
//   mode 0 FILL:          dst = value
//   mode 1 TRI:           dst = src0 where the predicate of (i0, i1) holds (tri type: 0 i0 >= i1, 1 i0 > i1,
//                         2 i0 <= i1, 3 i0 < i1: ggml_tri_type), else 0
//   mode 2 DIAG_MASK_INF: dst = -inf where i0 > n_past + i1, else src0
// Defines: X_F16 (F16 src0 and dst; FILL rounds its value to nearest even). dst may alias src0.
#include "elementwise.glsl"

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

// Mirrors ops::fill::MaskPush.
layout(push_constant) uniform Push {
    uvec4 ne;
    uvec4 s_a;
    uvec4 s_d;
    uint a_off; uint d_off; uint n; uint mode;
    int param; float value; uint pad0; uint pad1;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint i0 = id % pc.ne.x;
    const uint i1 = (id / pc.ne.x) % pc.ne.y;
    const uint di = pc.d_off + strided_offset(id, pc.ne, pc.s_d);
    if (pc.mode == 0u) {
        STORE_D(di, pc.value);
        return;
    }
    const float v = LOAD_A(pc.a_off + strided_offset(id, pc.ne, pc.s_a));
    if (pc.mode == 1u) {
        bool keep;
        if (pc.param == 0) {
            keep = i0 >= i1;
        } else if (pc.param == 1) {
            keep = i0 > i1;
        } else if (pc.param == 2) {
            keep = i0 <= i1;
        } else {
            keep = i0 < i1;
        }
        STORE_D(di, keep ? v : 0.0);
    } else {
        STORE_D(di, int(i0) > pc.param + int(i1) ? uintBitsToFloat(0xFF800000u) : v);
    }
}
