#version 450
// How fast one mat-vec-shaped kernel can stream a matrix, by load width and loads in flight, for `ggvk stream`
// (src/bin/ggvk.rs): a workgroup of WG invocations reads ROWS rows of `row_bytes` bytes each; per trip every
// invocation issues LOADS loads of WIDTH bytes per row (consecutive invocations at consecutive addresses, so a
// subgroup's load is one contiguous run, as in the product kernels), all independent of each other, then folds
// them into its sums. The result, per row, is the wrapping sum of the row's 16-bit halfwords, so every byte is read
// exactly once whatever the width and the host can check it. COPY: the trip's loads are also stored to `dst` at the
// same offsets (a copy through the shader's own loads and stores, the reference rate for the read-only figures).
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 128;
// Bytes per load: 2, 4, 8 or 16.
layout(constant_id = 1) const uint WIDTH = 16;
// Loads per invocation, row and trip.
layout(constant_id = 2) const uint LOADS = 2;
// Rows per workgroup.
layout(constant_id = 3) const uint ROWS = 1;
layout(constant_id = 4) const bool COPY = false;

layout(binding = 0) readonly buffer S16 { uint16_t s16[]; };
layout(binding = 0) readonly buffer S32 { uint s32[]; };
layout(binding = 0) readonly buffer S64 { uvec2 s64[]; };
layout(binding = 0) readonly buffer S128 { uvec4 s128[]; };
// The sums, one word per row.
layout(binding = 1) writeonly buffer Sums { uint sums[]; };
layout(binding = 2) writeonly buffer D16 { uint16_t d16[]; };
layout(binding = 2) writeonly buffer D32 { uint d32[]; };
layout(binding = 2) writeonly buffer D64 { uvec2 d64[]; };
layout(binding = 2) writeonly buffer D128 { uvec4 d128[]; };

// row_bytes: a multiple of 16; rows: the matrix's rows.
layout(push_constant) uniform Push { uint row_bytes; uint rows; } pc;

shared uint row_sum[ROWS];

// The WIDTH bytes at unit `u` (in WIDTH-byte units) in the low components.
uvec4 load(uint u) {
    if (WIDTH == 2u) { return uvec4(uint(s16[u]), 0u, 0u, 0u); }
    if (WIDTH == 4u) { return uvec4(s32[u], 0u, 0u, 0u); }
    if (WIDTH == 8u) { return uvec4(s64[u], 0u, 0u); }
    return s128[u];
}

void store(uint u, uvec4 v) {
    if (WIDTH == 2u) { d16[u] = uint16_t(v.x); }
    else if (WIDTH == 4u) { d32[u] = v.x; }
    else if (WIDTH == 8u) { d64[u] = v.xy; }
    else { d128[u] = v; }
}

uint halves(uvec4 v) {
    const uvec4 s = (v & 0xFFFFu) + (v >> 16);
    return s.x + s.y + s.z + s.w;
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * ROWS;
    if (tid < ROWS) { row_sum[tid] = 0u; }
    barrier();
    const uint units = pc.row_bytes / WIDTH;
    uint acc[ROWS];
    [[unroll]] for (uint r = 0; r < ROWS; ++r) { acc[r] = 0u; }
    for (uint u0 = tid; u0 < units; u0 += WG * LOADS) {
        uvec4 v[ROWS * LOADS];
        [[unroll]] for (uint r = 0; r < ROWS; ++r) {
            const uint base = min(row0 + r, pc.rows - 1u) * units;
            [[unroll]] for (uint l = 0; l < LOADS; ++l) {
                const uint u = min(u0 + l * WG, units - 1u);
                v[r * LOADS + l] = load(base + u);
            }
        }
        [[unroll]] for (uint r = 0; r < ROWS; ++r) {
            const uint base = min(row0 + r, pc.rows - 1u) * units;
            [[unroll]] for (uint l = 0; l < LOADS; ++l) {
                const uint u = u0 + l * WG;
                if (u < units) {
                    acc[r] += halves(v[r * LOADS + l]);
                    if (COPY) { store(base + u, v[r * LOADS + l]); }
                }
            }
        }
    }
    [[unroll]] for (uint r = 0; r < ROWS; ++r) { atomicAdd(row_sum[r], acc[r]); }
    barrier();
    if (tid < ROWS && row0 + tid < pc.rows) { sums[row0 + tid] = row_sum[tid]; }
}
