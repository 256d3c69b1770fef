#version 450
// Quantize F32 columns onto ggml's Q8_K grid, the CPU backend's activations for K-quant dot products, for the
// integer-dot K-quant mat-vec (mul_mat_vec_k.comp with INT_DOT). Per 256 values, as round_act.comp's R_Q8_K and
// src/quant/act.rs: vmax = the first value of largest magnitude (sign kept), iscale = -127 / vmax,
// q = nearest_int(iscale * x) (the 1.5 * 2^23 trick) capped at 127 and stored as int8, d = 1 / iscale (f32);
// an all-zero block has d = 0 and zero codes. Output block = 76 words:
//   [0] d (f32 bits) [1..8] sum of the codes of each 32-value sub-block (int) [9..11] 0
//   [12..75] codes, element e in byte e % 4 of word 12 + e / 4 (16-byte aligned when the block is).
// One 64-thread workgroup per block, four consecutive values per thread (coalesced loads); x = block within a
// column, y (+ z overflow) = column (i11 + ne11 * (i12 + ne12 * i13)).
#extension GL_EXT_control_flow_attributes : require
#include "div_rn.glsl"

#define BLK 256u
#define WORDS 76u
#define CODES 12u
layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(binding = 0) readonly buffer B { float b[]; };
layout(binding = 1) writeonly buffer Q { uint q[]; };

layout(push_constant) uniform Push {
    uint nblocks;  // blocks per column (k / 256)
    uint ncols;    // columns in all (ne11 * ne12 * ne13)
    uint ne11; uint ne12;
    uint b_off; uint b_col; uint b_s2; uint b_s3;
    uint q_off; uint pad0; uint pad1; uint pad2;
} pc;

shared uint s_abs[64];
shared uint s_at[64];
shared int s_sum[64];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint blk = gl_WorkGroupID.x;
    const uint col = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    // Uniform over the workgroup, so leaving before the barriers is allowed.
    if (blk >= pc.nblocks || col >= pc.ncols) { return; }
    const uint i11 = col % pc.ne11;
    const uint i12 = (col / pc.ne11) % pc.ne12;
    const uint i13 = col / (pc.ne11 * pc.ne12);
    const uint base = pc.b_off + i11 * pc.b_col + i12 * pc.b_s2 + i13 * pc.b_s3 + blk * BLK;
    const uint src = base + 4u * tid;
    const vec4 x = vec4(b[src], b[src + 1u], b[src + 2u], b[src + 3u]);
    const uint dst = pc.q_off + (col * pc.nblocks + blk) * WORDS;

    // The first element of largest magnitude: this thread's four, then the workgroup's in element order (magnitudes
    // compared on the bit patterns, as round_act.comp does).
    uint best = 0u;
    uint at = 0u;
    [[unroll]] for (uint j = 0; j < 4u; ++j) {
        const uint a = floatBitsToUint(x[j]) & 0x7FFFFFFFu;
        if (a > best) { best = a; at = j; }
    }
    s_abs[tid] = best;
    s_at[tid] = 4u * tid + at;
    barrier();
    uint amax = 0u;
    uint first = 0u;
    for (uint i = 0; i < 64u; ++i) {
        const uint a = s_abs[i];
        if (a > amax) { amax = a; first = s_at[i]; }
    }
    if (amax == 0u) {
        q[dst + CODES + tid] = 0u;
        if (tid < 12u) { q[dst + tid] = 0u; }
        return;
    }
    const float iscale = div_rn(-127.0, b[base + first]);
    const float d = div_rn(1.0, iscale);
    uint packed = 0u;
    int sum = 0;
    [[unroll]] for (uint j = 0; j < 4u; ++j) {
        precise const float p = iscale * x[j];
        precise const float t = p + 12582912.0;
        const int qi = min(int(floatBitsToUint(t) & 0x7FFFFFu) - 0x400000, 127);
        const int q8 = (qi << 24) >> 24; // stored as int8: the low byte
        sum += q8;
        packed |= (uint(q8) & 0xFFu) << (8u * j);
    }
    q[dst + CODES + tid] = packed;
    s_sum[tid] = sum;
    barrier();
    if (tid < 8u) {
        int total = 0;
        [[unroll]] for (uint i = 0; i < 8u; ++i) { total += s_sum[8u * tid + i]; }
        q[dst + 1u + tid] = uint(total);
    } else if (tid < 11u) {
        q[dst + 1u + tid] = 0u;
    } else if (tid == 11u) {
        q[dst] = floatBitsToUint(d);
    }
}
