#version 450
// ggml_set_rows: row (i, i02, i03) of src0 is written, converted, into dst row (idx[i, i02 % ne11, i03 % ne12],
// i02, i03). Indices are I32, or I64 (IDX_64 in the push constants: low word, then high word). An index outside
// [0, ne1) writes nothing (ggml asserts). x = column chunks of WG elements (looping), y + z * numGroups.y =
// source row (i + ne01 * (i02 + ne02 * i03)). Everything moves as bit patterns, so copies are bit-exact and
// f32 -> f16 rounds to nearest even exactly like half::f16::from_f32 (ggml's F16C path).
//   SRC_F16: src0 is F16 (else F32). DST_F16: dst is F16; DST_BF16: dst is BF16, rounded as ggml's
//   GGML_FP32_TO_BF16 (nearest even; NaN kept quiet); else F32.
//   VEC4 (with DST_F16, F32 source): four values per invocation, one 16-byte load and one 8-byte store (ne00,
//   src0's offset and strides multiples of 4 floats, dst's multiples of 4 halves); x = column chunks of 4 WG values.
//   TILE (rows of one value, push `period` > 0): the ne01 rows of a batch taken as a matrix of `period` columns
//   (a transposed V cache: row i is channel i % period of token i / period, and a channel's tokens go to
//   neighbouring cells) and moved in tiles of TC columns x TT tokens through shared memory: read along the
//   columns (src0 and the indices in order), written along the tokens, so that the neighbouring cells of a
//   column are written by neighbouring invocations. Any period gives the same result; only the speed depends on
//   it. Workgroups along y (+ z overflow): batch-major, then token tiles, then column tiles.
#include "common.glsl"
#include "half_bits.glsl"
#include "row_index.glsl"

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
const uint WG = 256;

#if defined(SRC_F16)
layout(binding = 0) readonly buffer A { uint16_t a[]; };
#else
layout(binding = 0) readonly buffer A { uint a[]; };
#endif
layout(binding = 1) readonly buffer I { uint idx[]; };
#ifdef VEC4
layout(binding = 0) readonly buffer A4 { uvec4 a4[]; };
layout(binding = 2) writeonly buffer D2 { uvec2 d2[]; };
#endif
#if defined(DST_F16) || defined(DST_BF16)
layout(binding = 2) writeonly buffer D { uint16_t d[]; };
#else
layout(binding = 2) writeonly buffer D { uint d[]; };
#endif

// Mirrors ops::rows::SetRowsPush. Offsets and strides in units of each binding (indices: 32-bit words).
layout(push_constant) uniform Push {
    uint ne00; uint ne01; uint ne02; uint ne1;
    uint a_off; uint a_s1; uint a_s2; uint a_s3;
    uint i_off; uint i_s0; uint i_s1; uint i_s2;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    uint rows; uint ne11; uint ne12; uint idx64;
    uint period; uint pad0; uint pad1; uint pad2;
} pc;

#if defined(SRC_F16)
#define SRC_BITS(k) uint(a[k])
#else
#define SRC_BITS(k) a[k]
#endif

// One value, given as its source bits (an f32's, or an f16's in the low half), converted into dst element k.
void put(uint k, uint s) {
#if defined(DST_BF16) && defined(SRC_F16)
    d[k] = uint16_t(float_bits_to_bf16(half_to_float_bits(s)));
#elif defined(DST_BF16)
    d[k] = uint16_t(float_bits_to_bf16(s));
#elif defined(SRC_F16) && defined(DST_F16)
    d[k] = uint16_t(s);
#elif defined(SRC_F16)
    d[k] = half_to_float_bits(s);
#elif defined(DST_F16)
    d[k] = uint16_t(float_bits_to_half(s));
#else
    d[k] = s;
#endif
}

#ifdef TILE
const uint TC = 64u, TT = 32u, TS = TC + 1u;
// Token-major tile, one spare column so that both passes run free of bank conflicts. s_dst: the value's dst
// element, or NONE where nothing is written (outside the rows, an index out of range). A binding holds fewer
// than 2^32 - 1 elements of 16 or 32 bits, so NONE names no element.
const uint NONE = 0xffffffffu;
shared uint s_val[TT * TS];
shared uint s_dst[TT * TS];

void tile_main() {
    const uint C = pc.period;
    const uint tiles_c = (C + TC - 1u) / TC;
    const uint tiles_t = ((pc.ne01 + C - 1u) / C + TT - 1u) / TT;
    const uint wg = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    const uint b = wg / (tiles_c * tiles_t);
    if (b >= pc.rows / pc.ne01) { return; }
    const uint t0 = (wg % (tiles_c * tiles_t)) / tiles_c * TT;
    const uint c0 = (wg % tiles_c) * TC;
    const uint i02 = b % pc.ne02, i03 = b / pc.ne02;
    const bool idx64 = (pc.idx64 & 1u) != 0u;
    const uint pb = pc.i_off + (i02 % pc.ne11) * pc.i_s1 + (i03 % pc.ne12) * pc.i_s2;
    for (uint e = gl_LocalInvocationID.x; e < TT * TC; e += WG) {
        const uint tt = e / TC, tc = e % TC;
        const uint i = (t0 + tt) * C + c0 + tc;
        uint at = NONE, v = 0u;
        if (c0 + tc < C && i < pc.ne01) {
            const uint p = pb + i * pc.i_s0;
            const uint lo = idx[p];
            if (row_index_in_range(idx64, lo, idx64 ? idx[p + 1u] : 0u, pc.ne1)) {
                at = pc.d_off + lo * pc.d_s1 + i02 * pc.d_s2 + i03 * pc.d_s3;
                v = SRC_BITS(pc.a_off + i * pc.a_s1 + i02 * pc.a_s2 + i03 * pc.a_s3);
            }
        }
        s_val[tt * TS + tc] = v;
        s_dst[tt * TS + tc] = at;
    }
    barrier();
    for (uint e = gl_LocalInvocationID.x; e < TT * TC; e += WG) {
        const uint tt = e % TT, tc = e / TT;
        const uint at = s_dst[tt * TS + tc];
        if (at != NONE) { put(at, s_val[tt * TS + tc]); }
    }
}
#endif

void main() {
#ifdef TILE
    tile_main();
    return;
#endif
    // Bit 1 of idx64 (short rows, e.g. the one-value rows of a transposed V cache): one thread per (row, column),
    // WG of them per workgroup, workgroups along y (+ z overflow). Else a workgroup per row along y (+ z), its
    // columns over x.
    const bool packed = (pc.idx64 & 2u) != 0u;
    const uint gid = (gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y) * WG + gl_LocalInvocationID.x;
    const uint row = packed ? gid / pc.ne00 : gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    const uint c0 = packed ? gid % pc.ne00 : gl_WorkGroupID.x * WG + gl_LocalInvocationID.x;
    const uint cstep = packed ? pc.ne00 : WG * gl_NumWorkGroups.x;
    if (row >= pc.rows) { return; }
    const uint i = row % pc.ne01;
    const uint i02 = (row / pc.ne01) % pc.ne02;
    const uint i03 = row / (pc.ne01 * pc.ne02);
    const uint p = pc.i_off + i * pc.i_s0 + (i02 % pc.ne11) * pc.i_s1 + (i03 % pc.ne12) * pc.i_s2;
    const uint lo = idx[p];
    const bool idx64 = (pc.idx64 & 1u) != 0u;
    const bool valid = row_index_in_range(idx64, lo, idx64 ? idx[p + 1u] : 0u, pc.ne1);
    if (!valid) { return; }
    const uint ab = pc.a_off + i * pc.a_s1 + i02 * pc.a_s2 + i03 * pc.a_s3;
    const uint db = pc.d_off + lo * pc.d_s1 + i02 * pc.d_s2 + i03 * pc.d_s3;
#ifdef VEC4
    for (uint c = 4u * c0; c < pc.ne00; c += 4u * cstep) {
        const uvec4 v = a4[(ab + c) / 4u];
        d2[(db + c) / 4u] = uvec2(float_bits_to_half(v.x) | (float_bits_to_half(v.y) << 16),
                                  float_bits_to_half(v.z) | (float_bits_to_half(v.w) << 16));
    }
    return;
#endif
    for (uint c = c0; c < pc.ne00; c += cstep) {
        put(db + c, SRC_BITS(ab + c));
    }
}
