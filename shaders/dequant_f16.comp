#version 450
// Weights dequantized to packed f16 rows ahead of a prompt product (src/ops/matmul.rs, `dequant_first`): the
// f16 cooperative-matrix kernels then multiply them at f16 speed, where decoding blocks inside the tile loop costs
// 30-45% (NOTES.md). Row r of the source (m rows of k values, row stride a_row 16-bit words) becomes k halves at
// d_off + r * k (in 16-bit units) of the destination; k is a multiple of 8.
// Each invocation converts 8 consecutive values of one row and stores them as one 16-byte vector; x + y *
// numGroups.x (workgroups of 256) runs over m * k / 8 such chunks.
//   SRC_Q4_0 / SRC_Q8_0: ggml's 18- / 34-byte blocks (common.glsl), value = (q - 8) * d / q * d.
//   SRC_DQ: any type with a dequantization include ("dq_type.glsl", chosen by build.rs): two dq_get4 chunks.
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
    // Grid tables into shared memory (IQ types; every invocation, before any return).
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
