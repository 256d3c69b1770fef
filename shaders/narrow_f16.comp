#version 450
// F32 columns -> packed f16 columns for the cooperative-matrix products, which multiply f16 operands: rounding to
// nearest even (exact integer arithmetic, as ggml's CPU backend converts), two values per word, one word per
// invocation (consecutive invocations read consecutive floats). A column of k values takes ceil(k / 2) words; an odd
// k leaves 0 in the last half word. x = word within a column, y (+ z overflow) = column
// (i11 + ne11 * (i12 + ne12 * i13)); where a column takes fewer than 64 invocations, `per` columns share a
// workgroup (x = 1, invocation = column within the workgroup * nwords + word; y (+ z) = group of `per` columns).
#include "common.glsl"
#include "half_bits.glsl"

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
#ifdef VEC8
// Eight values per invocation: two 16-byte loads, one 16-byte store (k a multiple of 8; b's offset and strides
// multiples of 4 floats; h_off a multiple of 4 words). x = group of four words within a column.
layout(binding = 0) readonly buffer B { vec4 b4[]; };
layout(binding = 1) writeonly buffer H { uvec4 h4[]; };
#else
layout(binding = 0) readonly buffer B { float b[]; };
layout(binding = 1) writeonly buffer H { uint h[]; };
#endif

layout(push_constant) uniform Push {
    uint nwords;   // words per column (ceil(k / 2)); VEC8: groups of four words per column (k / 8)
    uint ncols;    // columns in all (ne11 * ne12 * ne13)
    uint ne11; uint ne12;
    uint b_off; uint b_col; uint b_s2; uint b_s3;
    uint h_off; uint k; uint per; uint pad2;
} pc;

// This invocation's word (VEC8: group of four words) within its column, and the column.
uvec2 word_and_column() {
    const uint wg = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    if (pc.per > 1u) {
        const uint sub = gl_LocalInvocationID.x / pc.nwords;
        return uvec2(sub < pc.per ? gl_LocalInvocationID.x % pc.nwords : pc.nwords, wg * pc.per + sub);
    }
    return uvec2(gl_GlobalInvocationID.x, wg);
}

#ifdef VEC8
uint halves(vec2 v) {
    return float_bits_to_half(floatBitsToUint(v.x)) | (float_bits_to_half(floatBitsToUint(v.y)) << 16);
}

void main() {
    const uvec2 at = word_and_column();
    const uint g = at.x, col = at.y;
    if (g >= pc.nwords || col >= pc.ncols) { return; }
    const uint i11 = col % pc.ne11;
    const uint i12 = (col / pc.ne11) % pc.ne12;
    const uint i13 = col / (pc.ne11 * pc.ne12);
    const uint src = (pc.b_off + i11 * pc.b_col + i12 * pc.b_s2 + i13 * pc.b_s3) / 4u + 2u * g;
    const vec4 lo = b4[src];
    const vec4 hi = b4[src + 1u];
    h4[pc.h_off / 4u + col * pc.nwords + g] = uvec4(halves(lo.xy), halves(lo.zw), halves(hi.xy), halves(hi.zw));
}
#else
void main() {
    const uvec2 at = word_and_column();
    const uint w = at.x, col = at.y;
    if (w >= pc.nwords || col >= pc.ncols) { return; }
    const uint i11 = col % pc.ne11;
    const uint i12 = (col / pc.ne11) % pc.ne12;
    const uint i13 = col / (pc.ne11 * pc.ne12);
    const uint src = pc.b_off + i11 * pc.b_col + i12 * pc.b_s2 + i13 * pc.b_s3 + 2u * w;
    const uint lo = float_bits_to_half(floatBitsToUint(b[src]));
    const uint hi = 2u * w + 1u < pc.k ? float_bits_to_half(floatBitsToUint(b[src + 1u])) : 0u;
    h[pc.h_off + col * pc.nwords + w] = lo | (hi << 16);
}
#endif
