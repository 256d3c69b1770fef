#version 450
// Weights dequantized to packed f16 rows ahead of a prompt product (src/ops/matmul/weights_f16.rs, `dequant_f16`): the
// f16 cooperative-matrix kernels then multiply them at f16 speed, where decoding blocks inside the tile loop costs
// 30-45% (NOTES.md). Row r of the source (m rows of k values, row stride a_row 16-bit words) becomes k halves at
// d_off + r * k (in 16-bit units) of the destination; k is a multiple of 8.
// Each invocation converts 8 consecutive values of one row and stores them as one 16-byte vector; x + y *
// numGroups.x (workgroups of 256) runs over m * k / 8 such chunks.
//   SRC_Q4_0 / SRC_Q8_0: ggml's 18- / 34-byte blocks (common.glsl), value = (q - 8) * d / q * d.
//   SRC_DQ: any type with a dequantization include ("dq_type.glsl", chosen by build.rs): two dq_get4 chunks.
//   SRC_Q4_K: Q4_K blocks (dequant/q4_k.glsl has the layout) read as vectors (the caller checks that offset and
//     row stride are whole 16-byte vectors): an invocation loads the block's header as one 16-byte vector and 8
//     code bytes as one 8-byte vector (the generic path makes about ten 16-bit loads per 4 values).
// Values are computed in f32 as ggml's dequantize_row_<type> computes them and rounded once to f16 (nearest even).
#include "common.glsl"

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) readonly buffer A { uint16_t a[]; };
layout(binding = 1) writeonly buffer D { uvec4 d[]; };

// Mirrors ops::matmul::DequantPush. a_off and a_row in 16-bit words; d_off in 16-byte vectors.
layout(push_constant) uniform Push {
    uint m; uint k; uint a_off; uint a_row;
    uint d_off; uint chunks; uint pad0; uint pad1;
} pc;

#ifdef SRC_DQ
uint dq_u16(uint i) { return uint(a[i]); }
#include "dq_type.glsl"
#endif

#ifdef SRC_Q4_K
// The same bytes as 16- and 8-byte vectors.
layout(binding = 0) readonly buffer A4 { uvec4 a4[]; };
layout(binding = 0) readonly buffer A2 { uvec2 a2[]; };
uint dq_u16(uint i) { return uint(a[i]); }
#include "dq_k_common.glsl"

// Byte b (0..11) of the packed 6-bit scales and mins: the header vector's words y, z, w.
uint scale_byte(uvec4 h, uint b) {
    return (h[1u + (b >> 2)] >> ((b & 3u) * 8u)) & 0xFFu;
}

// ggml's get_scale_min_k4 over the header vector: (scale, min) of sub-block j (0..8).
uvec2 scale_min(uvec4 h, uint j) {
    const uint jl = j & 3u;
    const uint b0 = scale_byte(h, jl);
    const uint b4 = scale_byte(h, jl + 4u);
    const uint b8 = scale_byte(h, jl + 8u);
    const uvec2 lo = uvec2(b0 & 63u, b4 & 63u);
    const uvec2 hi = uvec2((b8 & 0xFu) | ((b0 >> 6) << 4), (b8 >> 4) | ((b4 >> 6) << 4));
    return j < 4u ? lo : hi;
}

void main() {
    const uint c = gl_GlobalInvocationID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x * 256u;
    if (c >= pc.chunks) { return; }
    // Output vector u of the row: block u / 32, 64-value group j, and within it p: p < 4 the low nibbles of code
    // bytes 8p..8p+7 of the group (sub-block 2j), p >= 4 the high nibbles of bytes 8(p-4).. (sub-block 2j + 1).
    const uint per_row = pc.k / 8u;
    const uint r = c / per_row;
    const uint u = c % per_row;
    const uint b = u / 32u;
    const uint j = (u / 8u) % 4u;
    const uint p = u % 8u;
    const uint blk2 = (pc.a_off + r * pc.a_row) / 4u + b * 18u;
    const uvec4 h = a4[blk2 / 2u];
    const uvec2 q = a2[blk2 + 2u + 4u * j + (p & 3u)];
    const uvec2 sm = scale_min(h, 2u * j + p / 4u);
    precise const float dsub = dq_k_half(h.x & 0xFFFFu) * float(sm.x);
    precise const float msub = dq_k_half(h.x >> 16) * float(sm.y);
    const uvec4 lanes = uvec4(0u, 8u, 16u, 24u) + (p < 4u ? 0u : 4u);
    precise const vec4 x = dsub * vec4((uvec4(q.x) >> lanes) & 0xFu) - msub;
    precise const vec4 y = dsub * vec4((uvec4(q.y) >> lanes) & 0xFu) - msub;
    d[pc.d_off + c] = uvec4(packHalf2x16(x.xy), packHalf2x16(x.zw), packHalf2x16(y.xy), packHalf2x16(y.zw));
}
#else

// Values e .. e + 7 of the row starting at word `row` (e a multiple of 8).
void values8(uint row, uint e, out vec4 lo, out vec4 hi) {
#if defined(SRC_Q4_0)
    const uint blk = row + (e / QK) * Q4_0_WORDS;
    const uint j = e % QK;
    // Bytes (j & 15) .. (j & 15) + 7: low nibbles for values 0..15 of the block, high nibbles for 16..31.
    const uint w0 = blk + 1u + (j & 15u) / 2u;
    const uvec4 words = uvec4(a[w0], a[w0 + 1u], a[w0 + 2u], a[w0 + 3u]);
    const uint shift = j < 16u ? 0u : 4u;
    const uvec4 q_even = (words >> shift) & 0xFu;
    const uvec4 q_odd = (words >> (8u + shift)) & 0xFu;
    const float dscale = f16_bits_to_float(a[blk]);
    lo = nibbles_minus_8(uvec4(q_even.x, q_odd.x, q_even.y, q_odd.y)) * dscale;
    hi = nibbles_minus_8(uvec4(q_even.z, q_odd.z, q_even.w, q_odd.w)) * dscale;
#elif defined(SRC_Q8_0)
    const uint blk = row + (e / QK) * Q8_0_WORDS;
    const uint w0 = blk + 1u + (e % QK) / 2u;
    const uvec4 words = uvec4(a[w0], a[w0 + 1u], a[w0 + 2u], a[w0 + 3u]);
    const float dscale = f16_bits_to_float(a[blk]);
    lo = bytes_to_signed(uvec4(words.x, words.x >> 8, words.y, words.y >> 8)) * dscale;
    hi = bytes_to_signed(uvec4(words.z, words.z >> 8, words.w, words.w >> 8)) * dscale;
#else
    const uint blk = row + (e / DQ_QK) * DQ_WORDS;
    const uint i = (e % DQ_QK) / 4u;
    lo = dq_get4(blk, i);
    hi = dq_get4(blk, i + 1u);
#endif
}

void main() {
#ifdef DQ_INIT
    // Grid or level tables into shared memory (IQ, MXFP4 and NVFP4 types; every invocation, before any return).
    DQ_INIT();
#endif
    const uint c = gl_GlobalInvocationID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x * 256u;
    if (c >= pc.chunks) { return; }
    const uint per_row = pc.k / 8u;
    const uint r = c / per_row;
    const uint e = (c % per_row) * 8u;
    vec4 lo;
    vec4 hi;
    values8(pc.a_off + r * pc.a_row, e, lo, hi);
    d[pc.d_off + c] = uvec4(packHalf2x16(lo.xy), packHalf2x16(lo.zw), packHalf2x16(hi.xy), packHalf2x16(hi.zw));
}
#endif
