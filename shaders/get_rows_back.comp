#version 450
// GET_ROWS_BACK (the gradient of GET_ROWS): dst[c, r] = the sum, over the ids i (ascending, as ggml's CPU backend
// adds them) with ids[i] = r, of src0[c, i]. One thread per dst element; the ids [i0, i1) per dispatch (the host
// splits long id lists: lavapipe ends a shader's loops after 65535 iterations), later dispatches adding to dst.
// Defines: S_F16 (F16 src0). dst F32 contiguous, ids I32 adjacent.
#include "elementwise.glsl"

#ifdef S_F16
layout(binding = 0) readonly buffer A { uint16_t a[]; };
#define LOAD_A(i) half_to_float(uint(a[i]))
#else
layout(binding = 0) readonly buffer A { float a[]; };
#define LOAD_A(i) a[i]
#endif
layout(binding = 1) readonly buffer I { int ids[]; };
layout(binding = 2) buffer D { float d[]; };

// Mirrors ops::rows_back::RowsBackPush.
layout(push_constant) uniform Push {
    uint nc; uint rows; uint a_off; uint a_s1;
    uint ids_off; uint d_off; uint i0; uint i1;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.nc * pc.rows) {
        return;
    }
    const uint c = id % pc.nc;
    const int r = int(id / pc.nc);
    float acc = pc.i0 > 0u ? d[pc.d_off + id] : 0.0;
    for (uint i = pc.i0; i < pc.i1; ++i) {
        if (ids[pc.ids_off + i] == r) {
            acc += LOAD_A(pc.a_off + i * pc.a_s1 + c);
        }
    }
    d[pc.d_off + id] = acc;
}
