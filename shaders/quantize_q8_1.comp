#version 450
// Quantize F32 columns to 8-bit blocks for the integer-dot mat-vec: per 32 values, d = max|x| / 127,
// q = round(x * 127 / max|x|) (half to even), sum = sum(q); d is stored rounded to f16, as ggml's q8_0. Output block = 10 words:
//   [0] d (f32 bits) [1] sum(q) (int) [2..9] q packed 4 per word, element e in byte e % 4 of word e / 4.
// One thread per block; x = block within a column, y (+ z overflow) = column (i11 + ne11 * (i12 + ne12 * i13)).
#include "common.glsl"
#include "half_bits.glsl"
#include "div_rn.glsl"

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(binding = 0) readonly buffer B { float b[]; };
layout(binding = 1) writeonly buffer Q { uint q[]; };

layout(push_constant) uniform Push {
    uint nblocks;  // blocks per column (k / 32)
    uint ncols;    // columns in all (ne11 * ne12 * ne13)
    uint ne11; uint ne12;
    uint b_off; uint b_col; uint b_s2; uint b_s3;
    uint q_off; uint pad0; uint pad1; uint pad2;
} pc;

void main() {
    const uint blk = gl_GlobalInvocationID.x;
    const uint col = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    if (blk >= pc.nblocks || col >= pc.ncols) { return; }
    const uint i11 = col % pc.ne11;
    const uint i12 = (col / pc.ne11) % pc.ne12;
    const uint i13 = col / (pc.ne11 * pc.ne12);
    const uint src = pc.b_off + i11 * pc.b_col + i12 * pc.b_s2 + i13 * pc.b_s3 + blk * QK;
    float x[32];
    float amax = 0.0;
    [[unroll]] for (uint i = 0; i < 32; ++i) {
        x[i] = b[src + i];
        amax = max(amax, abs(x[i]));
    }
    // As ggml's CPU backend (x86 build) quantizes activations for Q4_0/Q8_0 dot products (quantize_row_q8_0):
    // codes round(x * 127 / max|x|) to nearest even, the scale max|x| / 127 kept as f16.
    // Exact divisions and f16 rounding (to nearest even), so the codes match the CPU's on every driver.
    const float d = div_rn(amax, 127.0);
    const float id = amax != 0.0 ? div_rn(127.0, amax) : 0.0;
    const float d16 = uintBitsToFloat(half_to_float_bits(float_bits_to_half(floatBitsToUint(d))));
    const uint dst = pc.q_off + (col * pc.nblocks + blk) * 10u;
    int sum = 0;
    [[unroll]] for (uint w = 0; w < 8; ++w) {
        uint packed = 0u;
        [[unroll]] for (uint j = 0; j < 4; ++j) {
            precise const float v = x[4 * w + j] * id;
            const int qi = clamp(int(roundEven(v)), -127, 127);
            sum += qi;
            packed |= (uint(qi) & 0xFFu) << (8u * j);
        }
        q[dst + 2u + w] = packed;
    }
    q[dst] = floatBitsToUint(d16);
    q[dst + 1u] = uint(sum);
}
