#version 450
// ARGSORT and TOP_K of F32 rows (ggml_argsort, ggml_top_k): one workgroup per row sorts (value, index) pairs in
// shared memory with a bitonic network of N (a power of two >= the row's length) slots, then writes the first
// `count` indices (the whole row for ARGSORT, k for TOP_K) as I32. Order: ascending or descending value; equal
// values keep their index order (ggml's CPU backend uses std::sort, whose order of ties is unspecified; this is
// the stable order), so TOP_K's k indices are those of the k largest values, the smallest indices first among
// ties, in descending order of value (ggml documents TOP_K's order as unspecified). Padding slots sort last.
// A NaN compares unordered with everything: where it lands is unspecified, as on the CPU.
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint N = 1024;

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { int d[]; };

// Mirrors ops::moe::SortPush. Offsets and strides in elements; rows numbered r = i1 + ne1 * (i2 + ne2 * i3).
layout(push_constant) uniform Push {
    uvec4 ne;   // src shape (ne.x = the row's length)
    uvec4 sa;   // src strides
    uvec4 sd;   // dst strides
    uint a_off; uint d_off;
    uint count; // indices written per row
    uint desc;  // 1: descending
    uint rows; uint pad0; uint pad1; uint pad2;
} pc;

shared float key[N];
shared uint idx[N];

// Whether the pair (ka, ia) sorts before (kb, ib).
bool before(float ka, uint ia, float kb, uint ib) {
    const bool pa = ia >= pc.ne.x;
    const bool pb = ib >= pc.ne.x;
    if (pa || pb) { return pa == pb ? ia < ib : pb; }
    if (ka != kb) { return pc.desc != 0u ? ka > kb : ka < kb; }
    return ia < ib;
}

void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.rows) { return; }
    const uint tid = gl_LocalInvocationID.x;
    const uint i1 = row % pc.ne.y;
    const uint i2 = (row / pc.ne.y) % pc.ne.z;
    const uint i3 = row / (pc.ne.y * pc.ne.z);
    const uint src = pc.a_off + i1 * pc.sa.y + i2 * pc.sa.z + i3 * pc.sa.w;
    for (uint i = tid; i < N; i += WG) {
        idx[i] = i;
        key[i] = i < pc.ne.x ? a[src + i * pc.sa.x] : 0.0;
    }
    barrier();
    for (uint k = 2u; k <= N; k <<= 1u) {
        for (uint j = k >> 1u; j > 0u; j >>= 1u) {
            for (uint t = tid; t < N / 2u; t += WG) {
                const uint lo = (t / j) * 2u * j + (t % j);
                const uint hi = lo + j;
                const float kl = key[lo];
                const float kh = key[hi];
                const uint il = idx[lo];
                const uint ih = idx[hi];
                // Blocks of k alternate direction; within the final block (k = N) everything runs one way.
                const bool up = (lo & k) == 0u;
                if (up ? before(kh, ih, kl, il) : before(kl, il, kh, ih)) {
                    key[lo] = kh;
                    key[hi] = kl;
                    idx[lo] = ih;
                    idx[hi] = il;
                }
            }
            barrier();
        }
    }
    const uint dst = pc.d_off + i1 * pc.sd.y + i2 * pc.sd.z + i3 * pc.sd.w;
    for (uint i = tid; i < pc.count; i += WG) {
        d[dst + i * pc.sd.x] = int(idx[i]);
    }
}
