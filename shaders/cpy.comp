#version 450
// CPY / CONT / DUP: element k of src0 in its logical order (dim 0 innermost) goes to element k of dst in
// dst's logical order; shapes may differ, element counts match. Any strides on both sides.
// Defines, source: S_F16 / S_BF16 (16-bit floats), S_I32 (an i32 value), S_RAW16 (16 bits moved untouched), else
// 32 bits (f32, or any 32-bit type moved untouched). Dst: D_F16 / D_BF16 / D_I32 / D_RAW16 likewise. Conversions
// go through f32 bits in integer arithmetic, bit-exact on every driver (elementwise.glsl): f16 -> f32 and bf16 ->
// f32 exact, f32 -> f16 and i32 -> f32 round to nearest even, f32 -> bf16 as ggml (nearest even, NaN made quiet),
// f32 -> i32 truncates (NaN and overflow give INT_MIN).
#include "elementwise.glsl"

#if defined(S_F16) || defined(S_BF16) || defined(S_RAW16)
layout(binding = 0) readonly buffer S { uint16_t s[]; };
#define LOAD_S(i) uint(s[i])
#else
layout(binding = 0) readonly buffer S { uint s[]; };
#define LOAD_S(i) s[i]
#endif
#if defined(D_F16) || defined(D_BF16) || defined(D_RAW16)
layout(binding = 1) writeonly buffer D { uint16_t d[]; };
#define STORE_D(i, v) d[i] = uint16_t(v)
#else
layout(binding = 1) writeonly buffer D { uint d[]; };
#define STORE_D(i, v) d[i] = (v)
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
    uint v = LOAD_S(is);
#if defined(S_F16)
    v = half_to_float_bits(v);
#elif defined(S_BF16)
    v <<= 16;
#elif defined(S_I32)
    v = i32_to_float_bits(v);
#endif
#if defined(D_F16)
    v = float_bits_to_half(v);
#elif defined(D_BF16)
    v = float_bits_to_bf16(v);
#elif defined(D_I32)
    v = float_bits_to_i32(v);
#endif
    STORE_D(idst, v);
}
