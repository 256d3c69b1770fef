#version 450
// Reductions along rows: SUM_ROWS and MEAN (dst[0, i1, i2, i3] = sum over i0 of src0, divided by `div` = 1 or ne0),
// SUM (one segment: every element, dst a single value) and, with ARGMAX, ARGMAX (dst[i1] = the index of the
// largest value of row i1, the first one on ties; NaN never wins, as ggml's `x[i] > max` test; an all -inf or
// NaN row gives 0). One workgroup per segment (x + y overflow); its threads stride over the segment's `n`
// elements, numbered in src0's logical order (dim 0 innermost) and read through any strides; partial results are
// combined in shared memory (a tree, f32).
#include "elementwise.glsl"

layout(binding = 0) readonly buffer A { float a[]; };
#ifdef ARGMAX
layout(binding = 1) writeonly buffer D { int d[]; };
#else
layout(binding = 1) writeonly buffer D { float d[]; };
#endif

// Mirrors ops::reduce::ReducePush. Strides and offsets in elements.
layout(push_constant) uniform Push {
    uvec4 ne;    // src0 shape
    uvec4 st;    // src0 strides
    uvec4 dst_s; // dst strides of dims 1..3 (x unused): segment s = i1 + ne1 * (i2 + ne2 * i3) goes to its i1, i2, i3
    uint a_off; uint d_off; uint n; uint segments;
    float div; uint pad0; uint pad1; uint pad2;
} pc;

shared float sv[WG];
#ifdef ARGMAX
shared uint si[WG];
#endif

void main() {
    const uint seg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    const uint tid = gl_LocalInvocationID.x;
    if (seg >= pc.segments) { return; }
    const uint first = seg * pc.n;
#ifdef ARGMAX
    float best = uintBitsToFloat(0xFF800000u); // -inf
    uint at = 0u;
    for (uint e = tid; e < pc.n; e += WG) {
        const float v = a[pc.a_off + strided_offset(first + e, pc.ne, pc.st)];
        if (v > best) { best = v; at = e; }
    }
    sv[tid] = best;
    si[tid] = at;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) {
            const float ov = sv[tid + s];
            const uint oi = si[tid + s];
            // Larger wins; on a tie the smaller index (ggml keeps the first maximum).
            if (ov > sv[tid] || (ov == sv[tid] && oi < si[tid])) { sv[tid] = ov; si[tid] = oi; }
        }
        barrier();
    }
#else
    float acc = 0.0;
    for (uint e = tid; e < pc.n; e += WG) {
        acc += a[pc.a_off + strided_offset(first + e, pc.ne, pc.st)];
    }
    sv[tid] = acc;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) { sv[tid] += sv[tid + s]; }
        barrier();
    }
#endif
    if (tid == 0u) {
        const uint i1 = seg % max(pc.ne.y, 1u);
        const uint i2 = (seg / max(pc.ne.y, 1u)) % max(pc.ne.z, 1u);
        const uint i3 = seg / max(pc.ne.y * pc.ne.z, 1u);
        const uint o = pc.d_off + i1 * pc.dst_s.y + i2 * pc.dst_s.z + i3 * pc.dst_s.w;
#ifdef ARGMAX
        d[o] = int(si[0]);
#else
        d[o] = pc.div == 1.0 ? sv[0] : sv[0] / pc.div;
#endif
    }
}
