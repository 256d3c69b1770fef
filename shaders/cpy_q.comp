#version 450
// CPY / CONT / DUP with a quantized side (ggml's blocks, 16-bit words). Element k of
// src0 in its logical order (dim 0 innermost) goes to element k of dst in dst's logical order, as cpy.comp.
// Quantized tensors have packed blocks along dim 0 and any strides (16-bit words) for dims 1..3.
//   DST_Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 / IQ4_NL / Q1_0 / Q2_0 / NVFP4 (float src, SRC_F16 / SRC_BF16 for F16 /
//     BF16): one thread per dst block; its QUANT_QK source values (any strides) are quantized as ggml's reference
//     quantizers do (quantize.glsl).
//   SRC_Q8_0 / SRC_Q4_0 without a DST_*: one thread per element, dequantized to an F32 dst (any strides),
//     y = code * d (Q8_0) or (code - 8) * d (Q4_0), as ggml's dequantize_row_*.
//   COPY_BLOCKS: same-type copy of any block type, one thread per block, its BLOCK_WORDS words moved untouched
//     (spec constants 1 BLOCK_WORDS, 2 COPY_QK: 16-bit words and values per block).
//   SRC_DQ: src0 of any type with a dequantization include (`dq_type.glsl`, chosen by build.rs: Q4_1, Q5_0, Q5_1,
//     IQ4_NL, the K-quants, ...) to an F32 dst: one thread per 4 values (`dq_get4`, ggml's dequantize_row_*).
#include "elementwise.glsl"

#if defined(DST_Q8_0) || defined(DST_Q4_0) || defined(DST_Q4_1) || defined(DST_Q5_0) || defined(DST_Q5_1) \
    || defined(DST_IQ4_NL) || defined(DST_Q1_0) || defined(DST_Q2_0) || defined(DST_NVFP4)
#define QUANTIZE 1
#if defined(SRC_F16)
layout(binding = 0) readonly buffer S { uint16_t s[]; };
#define LOAD_S(i) half_to_float(uint(s[i]))
#elif defined(SRC_BF16)
layout(binding = 0) readonly buffer S { uint16_t s[]; };
#define LOAD_S(i) uintBitsToFloat(uint(s[i]) << 16)
#else
layout(binding = 0) readonly buffer S { float s[]; };
#define LOAD_S(i) s[i]
#endif
layout(binding = 1) writeonly buffer D { uint16_t d[]; };
#include "quantize.glsl"
#elif defined(COPY_BLOCKS)
layout(binding = 0) readonly buffer S { uint16_t s[]; };
layout(binding = 1) writeonly buffer D { uint16_t d[]; };
layout(constant_id = 1) const uint BLOCK_WORDS = 9;
layout(constant_id = 2) const uint COPY_QK = 32;
#elif defined(SRC_DQ)
layout(binding = 0) readonly buffer S { uint16_t s[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
uint dq_u16(uint i) { return uint(s[i]); }
#include "dq_type.glsl"
#else
layout(binding = 0) readonly buffer S { uint16_t s[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
#ifdef SRC_Q8_0
#define SRC_WORDS 17u
#else
#define SRC_WORDS 9u
#endif
#endif

layout(push_constant) uniform Push {
    uvec4 ne_s; // src0 shape
    uvec4 ne_d; // dst shape
    uvec4 st_s; // strides (elements; for a quantized tensor: dims 1..3 in 16-bit words, dim 0 unused)
    uvec4 st_d;
    uint s_off; uint d_off; uint n; uint pad0; // n: threads (blocks, or elements when dequantizing)
} pc;

// Word offset of block b (logical order) of a quantized tensor of shape ne and row strides st (words), with
// qk values and bw words per block.
uint block_offset(uint b, uvec4 ne, uvec4 st, uint qk, uint bw) {
    const uint per_row = ne.x / qk;
    const uint j = b % per_row;
    uint r = b / per_row;
    const uint i1 = r % ne.y;
    r /= ne.y;
    const uint i2 = r % ne.z;
    const uint i3 = r / ne.z;
    return j * bw + i1 * st.y + i2 * st.z + i3 * st.w;
}

void main() {
#ifdef DQ_INIT
    // Grid or level tables into shared memory (IQ, MXFP4 and NVFP4 types; every invocation, before any return).
    DQ_INIT();
#endif
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
#if defined(QUANTIZE)
    float x[QUANT_QK];
    for (uint e = 0u; e < QUANT_QK; ++e) {
        x[e] = LOAD_S(pc.s_off + strided_offset(QUANT_QK * id + e, pc.ne_s, pc.st_s));
    }
    quantize_block(x, pc.d_off + block_offset(id, pc.ne_d, pc.st_d, QUANT_QK, BLOCK_WORDS));
#elif defined(SRC_DQ)
    // Values 4 id .. 4 id + 3 of src0 in logical order: chunk id % (DQ_QK / 4) of block id / (DQ_QK / 4).
    const uint bw = pc.s_off + block_offset(id / (DQ_QK / 4u), pc.ne_s, pc.st_s, DQ_QK, DQ_WORDS);
    const vec4 v = dq_get4(bw, id % (DQ_QK / 4u));
    for (uint j = 0u; j < 4u; ++j) {
        d[pc.d_off + strided_offset(4u * id + j, pc.ne_d, pc.st_d)] = v[j];
    }
#elif defined(COPY_BLOCKS)
    const uint src = pc.s_off + block_offset(id, pc.ne_s, pc.st_s, COPY_QK, BLOCK_WORDS);
    const uint dst = pc.d_off + block_offset(id, pc.ne_d, pc.st_d, COPY_QK, BLOCK_WORDS);
    for (uint w = 0u; w < BLOCK_WORDS; ++w) {
        d[dst + w] = s[src + w];
    }
#else
    const uint i0 = id % pc.ne_s.x;
    const uint blk = pc.s_off + block_offset(id / 32u, pc.ne_s, pc.st_s, 32u, SRC_WORDS);
    const uint e = i0 % 32u;
    const float scale = half_to_float(uint(s[blk]));
#ifdef SRC_Q8_0
    const uint word = uint(s[blk + 1u + e / 2u]);
    const int code = int(((e & 1u) != 0u ? word >> 8 : word) << 24) >> 24;
    const float v = float(code) * scale;
#else
    const uint word = uint(s[blk + 1u + (e % 16u) / 2u]);
    const uint byte_v = ((e % 16u) & 1u) != 0u ? (word >> 8) & 0xFFu : word & 0xFFu;
    const uint nib = e < 16u ? byte_v & 0xFu : byte_v >> 4;
    const float v = float(int(nib) - 8) * scale;
#endif
    d[pc.d_off + strided_offset(id, pc.ne_d, pc.st_d)] = v;
#endif
}
