#version 450
// CPY / CONT / DUP: element k of src0 in its logical order (dim 0 innermost) goes to element k of dst in
// dst's logical order; shapes may differ, element counts match. Any strides on both sides.
// Defines: S_F16 / D_F16 (else 32-bit). Same-width copies move bits untouched (F32, I32, F16); F32 -> F16
// rounds to nearest even and F16 -> F32 is exact, both in integer arithmetic (elementwise.glsl).
#include "elementwise.glsl"

#ifdef S_F16
layout(binding = 0) readonly buffer S { uint16_t s[]; };
#define LOAD_S(i) uint(s[i])
#else
layout(binding = 0) readonly buffer S { uint s[]; };
#define LOAD_S(i) s[i]
#endif
#ifdef D_F16
layout(binding = 1) writeonly buffer D { uint16_t d[]; };
#else
layout(binding = 1) writeonly buffer D { uint d[]; };
#endif

layout(push_constant) uniform Push {
    uvec4 ne_s; // src0 shape
    uvec4 ne_d; // dst shape
    uvec4 st_s; // strides in elements (0 for dims of size 1)
    uvec4 st_d;
    uint s_off; uint d_off; uint n; uint pad0;
    uint s_mode; uint d_mode; uint s_rs; uint d_rs; // layout modes and row strides (elementwise.glsl)
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint is = pc.s_off + element_offset(id, pc.s_mode, pc.ne_s, pc.st_s, pc.s_rs);
    const uint idst = pc.d_off + element_offset(id, pc.d_mode, pc.ne_d, pc.st_d, pc.d_rs);
    const uint v = LOAD_S(is);
#if defined(S_F16) && !defined(D_F16)
    d[idst] = half_bits_to_float_bits(v);
#elif !defined(S_F16) && defined(D_F16)
    d[idst] = uint16_t(float_bits_to_half_bits(v));
#elif defined(D_F16)
    d[idst] = uint16_t(v);
#else
    d[idst] = v;
#endif
}
