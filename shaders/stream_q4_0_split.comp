#version 450
// A one-column Q4_0 product over weights in a split layout, for `ggvk stream` (src/bin/ggvk.rs): the 16 code bytes
// of every block first (block b of row r is 16-byte unit r * nb + b, so one load takes a block's 32 codes), then
// the blocks' f16 scales apart (scale r * nb + b), against activations on the integer-dot path's grid (32 signed
// 8-bit codes a block as two 16-byte units, and per block its scale and its code sum). Same bytes as ggml's
// interleaved 18-byte blocks; the question is what the product costs when every weight load is 16 bytes wide. A
// thread takes whole blocks, LOADS of them per row and trip (consecutive invocations, consecutive blocks), ROWS
// rows per workgroup; the value of a block is ggml's: d_w d_x (sum (n - 8) q) = d_w d_x (sum n q - 8 sum q).
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_integer_dot_product : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 128;
// Blocks per invocation, row and trip.
layout(constant_id = 1) const uint LOADS = 2;
// Rows per workgroup.
layout(constant_id = 2) const uint ROWS = 1;

layout(binding = 0) readonly buffer Codes { uvec4 codes[]; };
layout(binding = 1) readonly buffer Scales { uint16_t scales[]; };
layout(binding = 2) readonly buffer X { uvec4 xq[]; };
// Per block: the activations' scale and their code sum (as a float).
layout(binding = 3) readonly buffer XS { vec2 xs[]; };
layout(binding = 4) writeonly buffer D { float d[]; };

// nb: blocks per row; rows: the matrix's rows.
layout(push_constant) uniform Push { uint nb; uint rows; } pc;

shared float red[ROWS * WG];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * ROWS;
    float acc[ROWS];
    [[unroll]] for (uint r = 0; r < ROWS; ++r) { acc[r] = 0.0; }
    for (uint b0 = tid; b0 < pc.nb; b0 += WG * LOADS) {
        uvec4 w[ROWS * LOADS];
        float dw[ROWS * LOADS];
        [[unroll]] for (uint r = 0; r < ROWS; ++r) {
            const uint base = min(row0 + r, pc.rows - 1u) * pc.nb;
            [[unroll]] for (uint l = 0; l < LOADS; ++l) {
                const uint b = min(b0 + l * WG, pc.nb - 1u);
                w[r * LOADS + l] = codes[base + b];
                dw[r * LOADS + l] = unpackHalf2x16(uint(scales[base + b])).x;
            }
        }
        [[unroll]] for (uint l = 0; l < LOADS; ++l) {
            const uint b = min(b0 + l * WG, pc.nb - 1u);
            const uvec4 x_lo = xq[2u * b];
            const uvec4 x_hi = xq[2u * b + 1u];
            const vec2 x_ds = b0 + l * WG < pc.nb ? xs[b] : vec2(0.0);
            [[unroll]] for (uint r = 0; r < ROWS; ++r) {
                const uvec4 q = w[r * LOADS + l];
                const uvec4 lo = q & 0x0F0F0F0Fu;
                const uvec4 hi = (q >> 4) & 0x0F0F0F0Fu;
                int s = 0;
                [[unroll]] for (uint i = 0; i < 4u; ++i) {
                    s += dotPacked4x8EXT(int(lo[i]), int(x_lo[i])) + dotPacked4x8EXT(int(hi[i]), int(x_hi[i]));
                }
                acc[r] += dw[r * LOADS + l] * x_ds.x * (float(s) - 8.0 * x_ds.y);
            }
        }
    }
    [[unroll]] for (uint r = 0; r < ROWS; ++r) {
        const float s = subgroupAdd(acc[r]);
        if (subgroupElect()) { red[r * WG + gl_SubgroupID] = s; }
    }
    barrier();
    if (tid < ROWS && row0 + tid < pc.rows) {
        float t = 0.0;
        for (uint i = 0; i < gl_NumSubgroups; ++i) { t += red[tid * WG + i]; }
        d[row0 + tid] = t;
    }
}
