#version 450
// MUL_MAT_ID, many tokens: group the (slot, token) pairs by expert before the tiled kernel (mul_mat_id_tiled.comp).
// One workgroup per expert e scans every pair p = slot + n_used * token in order and appends those whose id is e
// to its list: map[n_as + e * n_pairs + i] = p (i = 0..count-1, in pair order), map[e] = count. Ids are read on
// the device (the router computed them in the same graph). Experts too large for one storage window together are
// handled a range at a time: this dispatch lists experts e_first .. e_first + n_as - 1 (workgroup e: expert
// e_first + e). An id outside [0, n_as) of the whole tensor belongs to no list (ggml asserts it never happens), so
// its outputs are left unwritten.
layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
#define WG 256u

layout(binding = 0) readonly buffer I { int ids[]; };
layout(binding = 1) writeonly buffer M { uint map[]; };

// Mirrors ops::matmul_id::MapPush. Offsets and strides in elements.
layout(push_constant) uniform Push {
    uint i_off; uint i_s0; uint i_s1; // ids: first element, slot stride, token stride
    uint n_used; uint n_pairs; uint n_as;
    uint m_off; uint e_first;
} pc;

shared uint scan[WG];

void main() {
    const uint e = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (e >= pc.n_as) { return; }
    const uint tid = gl_LocalInvocationID.x;
    const uint list = pc.m_off + pc.n_as + e * pc.n_pairs;
    uint count = 0u;
    for (uint p0 = 0u; p0 < pc.n_pairs; p0 += WG) {
        const uint p = p0 + tid;
        const bool hit = p < pc.n_pairs && ids[pc.i_off + (p % pc.n_used) * pc.i_s0 + (p / pc.n_used) * pc.i_s1] == int(e + pc.e_first);
        // Inclusive prefix sum of the hits (Hillis-Steele in shared memory).
        scan[tid] = hit ? 1u : 0u;
        barrier();
        for (uint s = 1u; s < WG; s <<= 1u) {
            const uint v = tid >= s ? scan[tid - s] : 0u;
            barrier();
            scan[tid] += v;
            barrier();
        }
        if (hit) { map[list + count + scan[tid] - 1u] = p; }
        count += scan[WG - 1u];
        barrier();
    }
    if (tid == 0u) { map[pc.m_off + e] = count; }
}
