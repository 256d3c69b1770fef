#version 450
// Fetch a product's weights into the GPU's L2 cache while an earlier, short step runs (src/graph/prefetch.rs plans
// which bytes): the first `prefix` words of each of `rows` rows that start `row_stride` words apart from word
// `first`. One 32-bit load per 32-byte sector (the unit the cache fills) touches every sector of the range.
// Nothing is written: the loaded words are summed and the sum stored only where the push constant `keep` is not 0,
// which the host never passes (src/ops/prefetch.rs); without a possible use the compilers would drop the loads
// (a volatile qualifier does not stop spirv-opt).
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
layout(binding = 0) buffer W { uint w[]; };

layout(push_constant) uniform Push {
    uint first;       // first word of row 0 in the binding
    uint row_stride;  // words from a row to the next
    uint prefix;      // words fetched of each row (a multiple of 8)
    uint rows;
    uint keep;        // always 0
    uint pad0; uint pad1; uint pad2;
} pc;

// Sectors each invocation loads per trip (all in flight together).
const uint PER_TRIP = 4u;

void main() {
    const uint per_row = pc.prefix / 8u;
    const uint total = per_row * pc.rows;
    const uint threads = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint sum = 0u;
    for (uint s0 = gl_GlobalInvocationID.x; s0 < total; s0 += PER_TRIP * threads) {
        [[unroll]] for (uint u = 0u; u < PER_TRIP; ++u) {
            const uint s = s0 + u * threads;
            if (s < total) {
                const uint row = s / per_row;
                const uint sector = s - row * per_row;
                sum += w[pc.first + row * pc.row_stride + sector * 8u];
            }
        }
    }
    if (pc.keep != 0u) { w[pc.first] = sum; }
}
