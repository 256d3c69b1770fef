#version 450
// Round F32 activations onto the grid ggml's CPU backend multiplies them on (the weight type's vec_dot_type)
// and write the rounded values as f32, so the f32-activation kernels see what the CPU's dot products see.
// Mirrors src/quant/act.rs bit for bit (see there for the x86 code paths this follows):
//   R_Q8_0: blocks of 32, d = amax / 127 kept as f16, q = roundEven(x * (127 / amax)) saturated, value f16(d) * q
//   R_Q8_K: blocks of 256, iscale = -127 / (signed max), q = nearest_int(iscale * x) (1.5 * 2^23 trick), min 127,
//           stored as int8; value (1 / iscale) * q
//   R_BF16: round to nearest even bfloat16
// Divisions go through div_rn (integer long division, correctly rounded) since Vulkan allows 2.5 ulp for OpFDiv;
// products and sums are `precise` so no driver fuses them. One thread per block; x = block within a column,
// y (+ z overflow) = column (i11 + ne11 * (i12 + ne12 * i13)). Output column c starts at o_off + c * k.
#extension GL_EXT_control_flow_attributes : require
#include "half_bits.glsl"

#if defined(R_Q8_0)
#define BLK 32u
#elif defined(R_Q8_K)
#define BLK 256u
#else
#define BLK 1u
#endif

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(binding = 0) readonly buffer B { float b[]; };
layout(binding = 1) writeonly buffer O { float o[]; };

layout(push_constant) uniform Push {
    uint nblocks;  // blocks per column (k / BLK)
    uint ncols;    // columns in all (ne11 * ne12 * ne13)
    uint ne11; uint ne12;
    uint b_off; uint b_col; uint b_s2; uint b_s3;
    uint q_off; uint pad0; uint pad1; uint pad2;
} pc;

#include "div_rn.glsl"

void main() {
    const uint blk = gl_GlobalInvocationID.x;
    const uint col = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    if (blk >= pc.nblocks || col >= pc.ncols) { return; }
    const uint i11 = col % pc.ne11;
    const uint i12 = (col / pc.ne11) % pc.ne12;
    const uint i13 = col / (pc.ne11 * pc.ne12);
    const uint src = pc.b_off + i11 * pc.b_col + i12 * pc.b_s2 + i13 * pc.b_s3 + blk * BLK;
    const uint dst = pc.q_off + (col * pc.nblocks + blk) * BLK;
#if defined(R_Q8_0)
    // max |x| compared on the bit patterns (the same order as floats for non-NaN values; no flushing).
    uint amax_bits = 0u;
    [[unroll]] for (uint i = 0; i < BLK; ++i) {
        amax_bits = max(amax_bits, floatBitsToUint(b[src + i]) & 0x7FFFFFFFu);
    }
    const float amax = uintBitsToFloat(amax_bits);
    const float d16 = uintBitsToFloat(half_to_float_bits(float_bits_to_half(floatBitsToUint(div_rn(amax, 127.0)))));
    const float id = amax_bits != 0u ? div_rn(127.0, amax) : 0.0;
    [[unroll]] for (uint i = 0; i < BLK; ++i) {
        precise const float v = roundEven(b[src + i] * id);
        // _mm256_cvtps_epi32 (NaN / out of range -> INT_MIN), then the saturating packs to int8.
        const int qi = (isnan(v) || abs(v) >= 2147483648.0) ? -128 : clamp(int(v), -128, 127);
        o[dst + i] = d16 * float(qi);
    }
#elif defined(R_Q8_K)
    // The first element of largest magnitude, signed.
    uint amax_bits = 0u;
    float vmax = 0.0;
    for (uint i = 0; i < BLK; ++i) {
        const float v = b[src + i];
        const uint a = floatBitsToUint(v) & 0x7FFFFFFFu;
        if (a > amax_bits) { amax_bits = a; vmax = v; }
    }
    if (amax_bits == 0u) {
        for (uint i = 0; i < BLK; ++i) { o[dst + i] = 0.0; }
        return;
    }
    const float iscale = div_rn(-127.0, vmax);
    const float d = div_rn(1.0, iscale);
    for (uint i = 0; i < BLK; ++i) {
        precise const float p = iscale * b[src + i];
        precise const float t = p + 12582912.0;
        const int qi = min(int(floatBitsToUint(t) & 0x7FFFFFu) - 0x400000, 127);
        const int q8 = (qi << 24) >> 24; // stored as int8: the low byte
        precise const float val = d * float(q8);
        o[dst + i] = val;
    }
#else
    o[dst] = round_to_bf16(b[src]);
#endif
}
