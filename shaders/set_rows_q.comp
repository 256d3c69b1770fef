#version 450
// ggml_set_rows into a quantized dst (DST_Q8_0, DST_Q4_0, DST_Q4_1, DST_Q5_0, DST_Q5_1, DST_IQ4_NL, DST_Q1_0, DST_Q2_0
// or DST_NVFP4): row (i, i02, i03) of src0 (F32, or F16 with
// SRC_F16) is quantized block by block into dst row (idx[i, i02 % ne11, i03 % ne12], i02, i03), as
// set_rows.comp does for float rows. One thread per block (QUANT_QK elements): x = block within the row (linearised
// with y: see below), y + z * numGroups.y = source row. Indices I32 or I64 (idx64); an index outside [0, ne1)
// writes nothing.
#include "elementwise.glsl"

#ifdef SRC_F16
layout(binding = 0) readonly buffer A { uint16_t a[]; };
#define LOAD_A(i) half_to_float(uint(a[i]))
#else
layout(binding = 0) readonly buffer A { float a[]; };
#define LOAD_A(i) a[i]
#endif
layout(binding = 1) readonly buffer I { uint idx[]; };
layout(binding = 2) writeonly buffer D { uint16_t d[]; };

#include "quantize.glsl"
#include "row_index.glsl"

// Mirrors ops::rows::SetRowsPush. Offsets and strides: src0 in its elements, indices in 32-bit words, dst in
// 16-bit words.
layout(push_constant) uniform Push {
    uint ne00; uint ne01; uint ne02; uint ne1;
    uint a_off; uint a_s1; uint a_s2; uint a_s3;
    uint i_off; uint i_s0; uint i_s1; uint i_s2;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    uint rows; uint ne11; uint ne12; uint idx64;
    uint period; uint pad0; uint pad1; uint pad2;
} pc;

void main() {
    const uint row = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    const uint blk = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x;
    const uint nblk = pc.ne00 / QUANT_QK;
    if (row >= pc.rows || blk >= nblk) { return; }
    const uint i = row % pc.ne01;
    const uint i02 = (row / pc.ne01) % pc.ne02;
    const uint i03 = row / (pc.ne01 * pc.ne02);
    const uint p = pc.i_off + i * pc.i_s0 + (i02 % pc.ne11) * pc.i_s1 + (i03 % pc.ne12) * pc.i_s2;
    const uint lo = idx[p];
    const bool idx64 = pc.idx64 != 0u;
    const bool valid = row_index_in_range(idx64, lo, idx64 ? idx[p + 1u] : 0u, pc.ne1);
    if (!valid) { return; }
    const uint ab = pc.a_off + i * pc.a_s1 + i02 * pc.a_s2 + i03 * pc.a_s3 + blk * QUANT_QK;
    const uint db = pc.d_off + lo * pc.d_s1 + i02 * pc.d_s2 + i03 * pc.d_s3 + blk * BLOCK_WORDS;
    float x[QUANT_QK];
    for (uint e = 0u; e < QUANT_QK; ++e) {
        x[e] = LOAD_A(ab + e);
    }
    quantize_block(x, db);
}
