#version 450
// Matrix x matrix on NV_cooperative_matrix2: workgroup-scope cooperative matrices whose loads and stores go through
// tensor layouts (the driver stages the tiles through shared memory and schedules the tensor cores), for prompt
// processing on devices that offer it (src/ops/coopmat.rs decides).
//
// The kernel computes the transposed output tile: D^T[col][row] = sum_k B[col][k] * A[row][k], so that B (the f16
// copy of the activations, k contiguous per column) is the A operand as laid out in memory, A (weights, k contiguous
// per row) is the B operand through a transposing view, and the result is stored to dst (row contiguous per
// column) without a view. Tile: TN columns x TM rows per workgroup, k steps of TK; out-of-range rows, columns and
// k read as 0 and out-of-range stores are dropped (clamp mode Constant).
//
// Weights: A_F16 (f16 rows), or block-quantized rows decoded per element by a decode function (A_Q4_0, A_Q8_0,
// A_Q4_K, A_Q6_K: ggml's dequantize_row_* formulas), f16 fragments, f32 accumulators.
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_buffer_reference : require
#include "common.glsl"

// Output rows (of A) and columns (of B) per workgroup and k step: chosen by the host among the workgroup-scope
// shapes the driver lists for 256 invocations.
layout(constant_id = 0) const uint TM = 128;
layout(constant_id = 1) const uint TN = 128;
layout(constant_id = 2) const uint TK = 64;
layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;

#if defined(A_F16)
layout(binding = 0) readonly buffer A { float16_t a[]; };
#define QK_A 1u
#define A_WORDS 1u
#else
#if defined(A_Q4_0)
#define QK_A 32u
#define A_WORDS 9u
#elif defined(A_Q8_0)
#define QK_A 32u
#define A_WORDS 17u
#elif defined(A_Q4_K)
#define QK_A 256u
#define A_WORDS 72u
#elif defined(A_Q6_K)
#define QK_A 256u
#define A_WORDS 105u
#endif
// One block as 16-bit words (ggml's layout, little-endian bytes).
struct Block { uint16_t w[A_WORDS]; };
layout(binding = 0) readonly buffer A { Block a[]; };
layout(buffer_reference, std430, buffer_reference_align = 2) buffer BlockRef { Block blk; };

// Byte `i` of the block.
uint byte_at(const in BlockRef r, uint i) { return (uint(r.blk.w[i >> 1]) >> (8u * (i & 1u))) & 0xFFu; }

float16_t decode(const in BlockRef r, const in uint block_coord[2], const in uint in_block[2]) {
    const uint i = in_block[1];
#if defined(A_Q4_0)
    // d (f16), 16 bytes of nibbles: value i < 16 low nibble of byte i, else high nibble of byte i - 16.
    const float d = float(uint16BitsToHalf(r.blk.w[0]));
    const uint q = (byte_at(r, 2u + (i & 15u)) >> (4u * (i >> 4))) & 0xFu;
    return float16_t(float(int(q) - 8) * d);
#elif defined(A_Q8_0)
    const float d = float(uint16BitsToHalf(r.blk.w[0]));
    return float16_t(float(int(byte_at(r, 2u + i) << 24) >> 24) * d);
#elif defined(A_Q4_K)
    // d, dmin (f16), 12 bytes of 6-bit (scale, min) pairs, 128 bytes of nibbles: sub-block j = i / 32 takes the low
    // (j even) or high (j odd) nibbles of bytes 32 (j / 2) .. + 31.
    const uint j = i >> 5;
    const float d = float(uint16BitsToHalf(r.blk.w[0]));
    const float dmin = float(uint16BitsToHalf(r.blk.w[1]));
    const uint jl = j & 3u;
    const uint b0 = byte_at(r, 4u + jl);
    const uint b4 = byte_at(r, 8u + jl);
    const uint b8 = byte_at(r, 12u + jl);
    const uint sc = j < 4u ? (b0 & 63u) : ((b8 & 0xFu) | ((b0 >> 6) << 4));
    const uint mn = j < 4u ? (b4 & 63u) : ((b8 >> 4) | ((b4 >> 6) << 4));
    const uint q = (byte_at(r, 16u + 32u * (j >> 1) + (i & 31u)) >> (4u * (j & 1u))) & 0xFu;
    precise const float v = d * float(sc) * float(q) - dmin * float(mn);
    return float16_t(v);
#elif defined(A_Q6_K)
    // 128 bytes ql, 64 bytes qh, 16 signed scales, d: value 128n + 32g + l (ggml's dequantize_row_q6_K).
    const uint n = i >> 7;
    const uint g = (i >> 5) & 3u;
    const uint l = i & 31u;
    const uint ql = (byte_at(r, 64u * n + 32u * (g & 1u) + l) >> (4u * (g >> 1))) & 0xFu;
    const uint qh = (byte_at(r, 128u + 32u * n + l) >> (2u * g)) & 3u;
    const int sc = int(byte_at(r, 192u + 8u * n + 2u * g + (l >> 4)) << 24) >> 24;
    const float d = float(uint16BitsToHalf(r.blk.w[104]));
    precise const float v = d * float(sc) * float(int(ql | (qh << 4)) - 32);
    return float16_t(v);
#endif
}
#endif

// b as packed f16 (narrow_f16.comp: offsets and strides in halves).
layout(binding = 1) readonly buffer B { float16_t b[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

MATMUL_PUSH

void main() {
    const uint row0 = gl_WorkGroupID.x * TM;
    const uint col0 = gl_WorkGroupID.y * TN;
    const uint z = gl_WorkGroupID.z;
    const uint i12 = z % pc.ne12;
    const uint i13 = z / pc.ne12;
    // Element offsets of this batch (the host checks they start 16-byte aligned): A in blocks (halves for F16).
    const uint a_base = (pc.a_off + (i12 / pc.r2) * pc.a_s2 + (i13 / pc.r3) * pc.a_s3) / A_WORDS;
    const uint b_base = pc.b_off + i12 * pc.b_s2 + i13 * pc.b_s3;
    const uint d_base = pc.d_off + i12 * pc.d_s2 + i13 * pc.d_s3;

    tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> la = createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    la = setTensorLayoutBlockSizeNV(la, 1, QK_A);
    la = setTensorLayoutDimensionNV(la, pc.m, pc.k);
    la = setTensorLayoutStrideNV(la, pc.a_row / A_WORDS, 1);
    tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> lb = createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    lb = setTensorLayoutDimensionNV(lb, pc.n, pc.k);
    lb = setTensorLayoutStrideNV(lb, pc.b_col, 1);
    tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> ld = createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    ld = setTensorLayoutDimensionNV(ld, pc.n, pc.m);
    ld = setTensorLayoutStrideNV(ld, pc.d_col, 1);
    tensorViewNV<2, false, 1, 0> transposed = createTensorViewNV(2, false, 1, 0);

    coopmat<float, gl_ScopeWorkgroup, TN, TM, gl_MatrixUseAccumulator> acc =
        coopmat<float, gl_ScopeWorkgroup, TN, TM, gl_MatrixUseAccumulator>(0.0);
    for (uint k0 = 0; k0 < pc.k; k0 += TK) {
        coopmat<float16_t, gl_ScopeWorkgroup, TN, TK, gl_MatrixUseA> fb;
        coopMatLoadTensorNV(fb, b, b_base, sliceTensorLayoutNV(lb, col0, TN, k0, TK));
        coopmat<float16_t, gl_ScopeWorkgroup, TK, TM, gl_MatrixUseB> fa;
#if defined(A_F16)
        coopMatLoadTensorNV(fa, a, a_base, sliceTensorLayoutNV(la, row0, TM, k0, TK), transposed);
#else
        coopMatLoadTensorNV(fa, a, a_base, sliceTensorLayoutNV(la, row0, TM, k0, TK), transposed, decode);
#endif
        acc = coopMatMulAdd(fb, fa, acc);
    }
    coopMatStoreTensorNV(acc, d, d_base, sliceTensorLayoutNV(ld, col0, TN, row0, TM));
}
