#version 450
// A one-column Q4_0 product over ggml's own interleaved 18-byte blocks, for `ggvk stream` (src/bin/ggvk.rs): the
// workgroup reads each trip's run of blocks (WG x LOADS blocks a row, a multiple of 8 blocks, so 9 16-byte units
// per 8 blocks) with 16-byte loads into shared memory, then every invocation takes its LOADS whole blocks from
// there (consecutive invocations, consecutive blocks), against the same activations as stream_q4_0_split.comp. Rows
// start on 16-byte boundaries (18 x blocks a row a multiple of 16). The question: whether staging through shared
// memory gives ggml's layout the 16-byte loads without a layout of its own.
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_integer_dot_product : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
// A multiple of 8.
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint LOADS = 2;
layout(constant_id = 2) const uint ROWS = 1;

layout(binding = 0) readonly buffer Blocks { uvec4 blocks[]; };
layout(binding = 1) readonly buffer X { uvec4 xq[]; };
layout(binding = 2) readonly buffer XS { vec2 xs[]; };
layout(binding = 3) writeonly buffer D { float d[]; };

// nb: blocks per row; rows: the matrix's rows.
layout(push_constant) uniform Push { uint nb; uint rows; } pc;

// Blocks a row per trip, and its 16-byte units.
const uint TRIP = WG * LOADS;
const uint UNITS = TRIP * 18u / 16u;
shared uvec4 stage[ROWS * UNITS];
shared float red[ROWS * WG];

// 32 bits of a staged row's bytes from byte `at` (a multiple of 2).
uint staged_word(uint r, uint at) {
    const uint w = at >> 2;
    const uint lo = stage[r * UNITS + (w >> 2)][w & 3u];
    if ((at & 2u) == 0u) { return lo; }
    const uint w1 = w + 1u;
    return (lo >> 16) | (stage[r * UNITS + (w1 >> 2)][w1 & 3u] << 16);
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * ROWS;
    const uint row_units = pc.nb * 18u / 16u;
    float acc[ROWS];
    [[unroll]] for (uint r = 0; r < ROWS; ++r) { acc[r] = 0.0; }
    for (uint t0 = 0; t0 < pc.nb; t0 += TRIP) {
        // The trip's units, from unit t0 * 18 / 16 of each row (t0 is a multiple of 8 blocks); past the row's end the
        // last unit again (never used).
        const uint u0 = t0 * 18u / 16u;
        [[unroll]] for (uint r = 0; r < ROWS; ++r) {
            const uint base = min(row0 + r, pc.rows - 1u) * row_units;
            [[unroll]] for (uint i = 0; i < (UNITS + WG - 1u) / WG; ++i) {
                const uint u = tid + i * WG;
                if (u < UNITS) { stage[r * UNITS + u] = blocks[base + min(u0 + u, row_units - 1u)]; }
            }
        }
        barrier();
        [[unroll]] for (uint l = 0; l < LOADS; ++l) {
            const uint j = tid + l * WG;          // block within the trip
            const uint b = min(t0 + j, pc.nb - 1u);
            const uvec4 x_lo = xq[2u * b];
            const uvec4 x_hi = xq[2u * b + 1u];
            const vec2 x_ds = xs[b];
            // Past the row's end the staged bytes are the row's last unit again, any f16 among them: skipped.
            if (t0 + j >= pc.nb) { continue; }
            [[unroll]] for (uint r = 0; r < ROWS; ++r) {
                const uint at = 18u * j;
                const float dw = unpackHalf2x16(staged_word(r, at) & 0xFFFFu).x;
                int s = 0;
                [[unroll]] for (uint i = 0; i < 4u; ++i) {
                    const uint q = staged_word(r, at + 2u + 4u * i);
                    s += dotPacked4x8EXT(int(q & 0x0F0F0F0Fu), int(x_lo[i]))
                        + dotPacked4x8EXT(int((q >> 4) & 0x0F0F0F0Fu), int(x_hi[i]));
                }
                acc[r] += dw * x_ds.x * (float(s) - 8.0 * x_ds.y);
            }
        }
        barrier();
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
