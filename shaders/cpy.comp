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

// Source bits -> dst bits (the conversions described above).
uint convert(uint v) {
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
    return v;
}

#ifdef TILED
// Transposed source (TILED): src and dst have the same shape, dst rows are packed (dim-0 stride 1) and the source is
// packed along dim T = pc.pad0 (1..3) instead. A workgroup of 256 invocations (WG = 256) moves a 32 x 32 tile of
// the (dim 0, dim T) plane through shared memory, so that both the reads (consecutive invocations along dim T) and
// the writes (along dim 0) touch consecutive addresses; the other two dims come from the workgroup's z.
// Workgroups: x = tiles along dim 0, y = tiles along dim T, z = product of the other two extents.
shared uint tile[32 * 33];

void main() {
    const uint tx = gl_LocalInvocationID.x & 31u;
    const uint ty = gl_LocalInvocationID.x >> 5;
    const uint t = pc.pad0;
    const uint oa = t == 1u ? 2u : 1u;
    const uint ob = t == 3u ? 2u : 3u;
    const uint ia = gl_WorkGroupID.z % pc.ne_s[oa];
    const uint ib = gl_WorkGroupID.z / pc.ne_s[oa];
    const uint n0 = pc.ne_s.x;
    const uint nt = pc.ne_s[t];
    const uint i0_base = gl_WorkGroupID.x * 32u;
    const uint it_base = gl_WorkGroupID.y * 32u;
    const uint s_base = pc.s_off + ia * pc.st_s[oa] + ib * pc.st_s[ob];
    const uint d_base = pc.d_off + ia * pc.st_d[oa] + ib * pc.st_d[ob];
    for (uint j = ty; j < 32u; j += WG / 32u) {
        const uint i0 = i0_base + j;
        const uint it = it_base + tx;
        if (i0 < n0 && it < nt) {
            tile[j * 33u + tx] = LOAD_S(s_base + i0 * pc.st_s.x + it);
        }
    }
    barrier();
    for (uint j = ty; j < 32u; j += WG / 32u) {
        const uint it = it_base + j;
        const uint i0 = i0_base + tx;
        if (i0 < n0 && it < nt) {
            STORE_D(d_base + it * pc.st_d[t] + i0, convert(tile[tx * 33u + j]));
        }
    }
}
#else
void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint is = pc.s_off + element_offset(id, pc.s_mode, pc.ne_s, pc.st_s, pc.s_rs);
    const uint idst = pc.d_off + element_offset(id, pc.d_mode, pc.ne_d, pc.st_d, pc.d_rs);
    STORE_D(idst, convert(LOAD_S(is)));
}
#endif
