#version 450
// Quantize F32 columns to 8-bit blocks for the integer-dot mat-vec: per 32 values, d = max|x| / 127,
// q = round(x * 127 / max|x|) (half to even), sum = sum(q); d is stored rounded to f16, as ggml's q8_0. Output block = 10 words:
//   [0] d (f32 bits) [1] sum(q) as int16 in the low half, ggml Q8_1's s = f16(d * sum(q)) (d before its f16
//   rounding, as the CPU's quantize_row_q8_1 computes it) in the high half (qx_sum_word) [2..9] q packed 4 per
//   word, element e in byte e % 4 of word e / 4.
// Eight threads per block, four values each (consecutive threads read consecutive 16 bytes, so loads coalesce);
// the block's max|x| and code sum are combined through shared memory. x = 8 x block within a column, y (+ z
// overflow) = column (i11 + ne11 * (i12 + ne12 * i13)).
#include "common.glsl"
#include "half_bits.glsl"
#include "q8_grid.glsl"
#define QX_WRITE
#include "qx_block.glsl"

#define WG 64u
#define TPB 8u
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

shared float s_amax[WG];
shared int s_sum[WG];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint blk = gl_GlobalInvocationID.x / TPB;
    const uint part = tid % TPB;
    const uint first = tid - part; // this block's first thread in the workgroup
    const uint col = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    // Threads past the end take part in the barriers but read and write nothing.
    const bool live = blk < pc.nblocks && col < pc.ncols;
    const uint i11 = col % pc.ne11;
    const uint i12 = (col / pc.ne11) % pc.ne12;
    const uint i13 = col / (pc.ne11 * pc.ne12);
    const uint src = pc.b_off + i11 * pc.b_col + i12 * pc.b_s2 + i13 * pc.b_s3 + blk * QK + 4u * part;
    vec4 x = vec4(0.0);
    if (live) {
        x = vec4(b[src], b[src + 1u], b[src + 2u], b[src + 3u]);
    }
    s_amax[tid] = max(max(abs(x.x), abs(x.y)), max(abs(x.z), abs(x.w)));
    barrier();
    float amax = 0.0;
    [[unroll]] for (uint i = 0; i < TPB; ++i) { amax = max(amax, s_amax[first + i]); }
    // As ggml's CPU backend (x86 build) quantizes activations for Q4_0/Q8_0 dot products (quantize_row_q8_0):
    // codes round(x * 127 / max|x|) to nearest even, the scale max|x| / 127 kept as f16.
    // Exact divisions and f16 rounding (to nearest even), so the codes match the CPU's on every driver.
    const float id = q8_inv_scale(amax);
    uint packed = 0u;
    int sum = 0;
    [[unroll]] for (uint j = 0; j < 4; ++j) {
        const int qi = q8_code(x[j], id);
        sum += qi;
        packed |= (uint(qi) & 0xFFu) << (8u * j);
    }
    s_sum[tid] = sum;
    barrier();
    if (!live) { return; }
    const uint dst = pc.q_off + (col * pc.nblocks + blk) * 10u;
    q[dst + 2u + part] = packed;
    if (part == 0u) {
        int total = 0;
        [[unroll]] for (uint i = 0; i < TPB; ++i) { total += s_sum[first + i]; }
        const float d = q8_scale(amax);
        q[dst] = floatBitsToUint(q8_scale_f16(d));
        q[dst + 1u] = qx_sum_word(total, d);
    }
}
