#version 450
// Matrix x matrix on NV_cooperative_matrix2: workgroup-scope cooperative matrices whose loads and stores go through
// tensor layouts (the driver stages the tiles through shared memory and schedules the tensor cores), for prompt
// processing on devices that offer it (src/ops/coopmat.rs decides).
//
// The kernel computes the transposed output tile: D^T[col][row] = sum_k B[col][k] * A[row][k], so that B (the f16
// copy of the activations, k contiguous per column) is the A operand as laid out in memory, A (weights, k contiguous
// per row) is the B operand through a transposing view, and the result is stored to dst (row contiguous per
// column) without a view. Tile: TN columns x TM rows per workgroup, k steps of TK.
//
// Two loops over k. Interior tiles (every row, column and k step in range) with 16-byte aligned rows (ALIGNED, set
// by the host) take unclamped layouts whose strides and offsets the compiler sees as multiples of 8 halves, and
// four k steps per iteration (a K-quant block per iteration for TK = 64). Edge tiles clamp: out-of-range rows,
// columns and k read as 0 and out-of-range stores are dropped.
//
// Weights: A_F16 (f16 rows), or block-quantized rows decoded per element by a decode function (A_Q8_0, A_Q4_K,
// A_Q5_K, A_Q6_K: ggml's dequantize_row_* formulas), f16 fragments, f32 accumulators. The K-quants' sub-block
// scales (d x scale, dmin x min) are unpacked once per 256-value block and row into shared memory, fetched one block
// ahead, so that their decode functions read one scale pair and one code word per value.
//
// FUSE_GLU (F16 weights): two products of the same activations, gate = A x B and up = A2 x B (an FFN's two halves,
// one accumulator each, TM rows of each per workgroup), both stored as the separate products store them, then the
// GLU that follows them (SWIGLU: silu(gate) * up; GEGLU and the others as glu.comp), stored as f32 and as the
// packed f16 copy the next product reads.
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

// Output rows (of A) and columns (of B) per workgroup and k step: chosen by the host among the workgroup-scope
// shapes the driver lists for 256 invocations (K-quants: TK divides 256 and TM divides 256).
layout(constant_id = 0) const uint TM = 128;
layout(constant_id = 1) const uint TN = 128;
layout(constant_id = 2) const uint TK = 64;
// A's row stride (F16: in halves), B's column stride (halves) and dst's column stride (floats) keep every row
// 16-byte aligned (the host checks; offsets are checked for every dispatch).
layout(constant_id = 3) const bool ALIGNED = false;
#define WG 256u
layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
// k steps per iteration of the interior loop for F16 and Q8_0 (the K-quants take one block per iteration).
#define UNROLL 4u

#if defined(A_F16)
layout(binding = 0) readonly buffer A { float16_t a[]; };
#define QK_A 1u
#define A_WORDS 1u
#else
#if defined(A_Q8_0)
#define QK_A 32u
#define A_WORDS 17u
#elif defined(A_Q4_K)
#define QK_A 256u
#define A_WORDS 72u
#elif defined(A_Q5_K)
#define QK_A 256u
#define A_WORDS 88u
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

#if defined(A_Q4_K) || defined(A_Q5_K)
// Q4_K / Q5_K blocks (144 / 176 bytes) start 16-byte aligned (the host checks A's offset): the same block as 32-bit
// words, and the block array as 16-byte units for the scale fetch (both start with d, dmin and the same 12 bytes
// of 6-bit scales and minimums).
layout(buffer_reference, std430, buffer_reference_align = 16) buffer BlockRef32 { uint w[A_WORDS / 2u]; };
layout(binding = 0) readonly buffer A16 { uvec4 a16[]; };
// Per row of the tile (index r) and sub-block j of the current block: (d x scale, dmin x min) at [j * TM + r].
shared vec2 sk[8u * TM];
// This invocation's block header (d, dmin, 12 scale bytes) for the next block.
uvec4 hdr;
#elif defined(A_Q6_K)
// Per row of the tile (index r) and 16-value group s of the current block: d x scale at [s * TM + r].
shared float sk[16u * TM];
// This invocation's share of the next block's scales (8 / (WG / TM) words of scale bytes) and d.
uint16_t sw[8];
uint16_t sd;
#endif

#if defined(A_Q4_K) || defined(A_Q5_K)
// Value of code q in sub-block j of tile row `row`: d x scale x q - dmin x min, the scales from shared memory.
float16_t scale_code(uint q, uint j, uint row) {
    const vec2 s = sk[j * TM + row % TM];
    precise const float v = s.x * float(q) - s.y;
    return float16_t(v);
}
#endif

float16_t decode(const in BlockRef r, const in uint block_coord[2], const in uint in_block[2]) {
    const uint i = in_block[1];
#if defined(A_Q8_0)
    const float d = float(uint16BitsToHalf(r.blk.w[0]));
    return float16_t(float(int(byte_at(r, 2u + i) << 24) >> 24) * d);
#elif defined(A_Q4_K)
    // 128 code bytes after the 16-byte header: sub-block j = i / 32 takes the low (j even) or high (j odd) nibbles
    // of bytes 32 (j / 2) .. + 31; d x scale and dmin x min from shared memory (ggml's dequantize_row_q4_K).
    const uint j = i >> 5;
    const uint byte = 32u * (j >> 1) + (i & 31u);
    const uint word = BlockRef32(r).w[4u + (byte >> 2)];
    return scale_code((word >> (8u * (byte & 3u) + 4u * (j & 1u))) & 0xFu, j, block_coord[0]);
#elif defined(A_Q5_K)
    // As Q4_K with 32 bytes of high bits after the header (bit j of byte i % 32 for sub-block j) and the 128 code
    // bytes after those (ggml's dequantize_row_q5_K).
    const uint j = i >> 5;
    const uint l = i & 31u;
    const uint byte = 32u * (j >> 1) + l;
    const uint word = BlockRef32(r).w[12u + (byte >> 2)];
    const uint hw = BlockRef32(r).w[4u + (l >> 2)];
    const uint q = ((word >> (8u * (byte & 3u) + 4u * (j & 1u))) & 0xFu) | (((hw >> (8u * (l & 3u) + j)) & 1u) << 4);
    return scale_code(q, j, block_coord[0]);
#elif defined(A_Q6_K)
    // 128 bytes ql, 64 bytes qh, 16 signed scales, d: value 128n + 32g + l (ggml's dequantize_row_q6_K), scale
    // index i / 16; d x scale from shared memory.
    const uint n = i >> 7;
    const uint g = (i >> 5) & 3u;
    const uint l = i & 31u;
    const uint ql = (byte_at(r, 64u * n + 32u * (g & 1u) + l) >> (4u * (g >> 1))) & 0xFu;
    const uint qh = (byte_at(r, 128u + 32u * n + l) >> (2u * g)) & 3u;
    precise const float v = sk[(i >> 4) * TM + block_coord[0] % TM] * float(int(ql | (qh << 4)) - 32);
    return float16_t(v);
#endif
}
#endif

// b as packed f16 (narrow_f16.comp: offsets and strides in halves).
layout(binding = 1) readonly buffer B { float16_t b[]; };
layout(binding = 2) writeonly buffer D { float d[]; };
#ifdef FUSE_ADD
// The ADD that follows the product (graph/fusion.rs, mul_mat_add): out = d + addend, both laid out as d (its
// column stride), from floats pc.pad0 (addend) and pc.pad1 (out), one batch; d is still written.
layout(binding = 3) readonly buffer FA { float addend[]; };
layout(binding = 4) writeonly buffer FO { float fused_out[]; };
#endif

#ifdef FUSE_GLU
#if !defined(A_F16) || defined(FUSE_ADD)
#error "FUSE_GLU is a variant of the F16 kernel"
#endif
// graph/fusion.rs, mul_mat_pair_glu: the up weights (laid out as A, from half pc.a2_off), the up product (laid
// out as d, from float pc.d2_off), the GLU's output (laid out as d, from float pc.g_off) and its f16 copy
// (columns of m halves, from half pc.g16_off). One batch.
layout(binding = 3) readonly buffer A2 { float16_t a2[]; };
layout(binding = 4) writeonly buffer D2 { float d2[]; };
layout(binding = 5) writeonly buffer GO { float glu_out[]; };
layout(binding = 6) writeonly buffer GH { float16_t glu_half[]; };
layout(push_constant) uniform Push { MATMUL_PUSH_FIELDS uint a2_off; uint d2_off; uint g_off; uint g16_off; } pc;
#include "half_bits.glsl"
#include "activations.glsl"
// The GLU per element (glu.comp's formulas): spec constant 4 picks SWIGLU (0), REGLU, GEGLU, GEGLU_ERF, GEGLU_QUICK.
layout(constant_id = 4) const uint GLU_OP = 0;
float glu_of(const in uint r, const in uint c, const in float gate, const in float up) {
    return glu_plain(GLU_OP, gate, up);
}
#else
MATMUL_PUSH
#endif

#if defined(A_Q4_K) || defined(A_Q5_K) || defined(A_Q6_K)
// Scale fetch roles: WG / TM invocations per row of the tile (TM divides 256), each unpacking its share.
#define TPR (WG / TM)
// Read this invocation's share of block `kb`'s scales for its row (rows past m read row m - 1).
void fetch_scales(uint a_base, uint row0, uint kb) {
    const uint r = min(row0 + gl_LocalInvocationID.x / TPR, pc.m - 1u);
    const uint blk = a_base + r * (pc.a_row / A_WORDS) + kb;
#if defined(A_Q4_K) || defined(A_Q5_K)
    hdr = a16[blk * (A_WORDS / 8u)];
#else
    const uint part = gl_LocalInvocationID.x % TPR;
    const uint words = 8u / TPR;
    [[unroll]] for (uint w = 0; w < words; ++w) { sw[w] = a[blk].w[96u + part * words + w]; }
    sd = a[blk].w[104];
#endif
}

// Unpack the fetched scales into shared memory (between two barriers: the previous block's decodes are done).
void store_scales() {
    const uint r = gl_LocalInvocationID.x / TPR;
    const uint part = gl_LocalInvocationID.x % TPR;
    barrier();
#if defined(A_Q4_K) || defined(A_Q5_K)
    // ggml's get_scale_min_k4: scale and min j of the 12 bytes (hdr.y: bytes 0-3, hdr.z: 4-7, hdr.w: 8-11).
    const float d0 = f16_bits_to_float(uint16_t(hdr.x & 0xFFFFu));
    const float m0 = f16_bits_to_float(uint16_t(hdr.x >> 16));
    const uint per = 8u / TPR;
    [[unroll]] for (uint t = 0; t < per; ++t) {
        const uint j = part * per + t;
        const uint sh = 8u * (j & 3u);
        uint sc;
        uint mn;
        if (j < 4u) {
            sc = (hdr.y >> sh) & 63u;
            mn = (hdr.z >> sh) & 63u;
        } else {
            const uint hi = (hdr.w >> sh) & 0xFFu;
            sc = (hi & 0xFu) | (((hdr.y >> sh) & 0xC0u) >> 2);
            mn = (hi >> 4) | (((hdr.z >> sh) & 0xC0u) >> 2);
        }
        precise const float dl = d0 * float(sc);
        precise const float ml = m0 * float(mn);
        sk[j * TM + r] = vec2(dl, ml);
    }
#else
    const float dd = f16_bits_to_float(sd);
    const uint words = 8u / TPR;
    [[unroll]] for (uint w = 0; w < words; ++w) {
        const uint v = uint(sw[w]);
        const uint s = 2u * (part * words + w);
        sk[s * TM + r] = dd * float(int(v << 24) >> 24);
        sk[(s + 1u) * TM + r] = dd * float(int(v << 16) >> 24);
    }
#endif
    barrier();
}
#define K_SCALES 1
#endif

#if defined(A_F16)
#define LOAD_A(fa, a0, layout_a, k0) \
    coopMatLoadTensorNV(fa, a, a0, sliceTensorLayoutNV(layout_a, row0, TM, k0, TK), transposed)
#else
#define LOAD_A(fa, a0, layout_a, k0) \
    coopMatLoadTensorNV(fa, a, a0, sliceTensorLayoutNV(layout_a, row0, TM, k0, TK), transposed, decode)
#endif

// One k step at k0 into acc (A from element / block a0 through layout_a, B from b0 through layout_b); FUSE_GLU:
// also A2 (from a2_0, through layout_a) into acc2 with the same B tile.
#ifdef FUSE_GLU
#define STEP_A2(layout_a, k0)                                                                                      \
    coopMatLoadTensorNV(fa, a2, a2_0, sliceTensorLayoutNV(layout_a, row0, TM, k0, TK), transposed);               \
    acc2 = coopMatMulAdd(fb, fa, acc2);
#else
#define STEP_A2(layout_a, k0)
#endif
#define STEP(a0, layout_a, b0, layout_b, k0)                                                                       \
    {                                                                                                              \
        coopmat<float16_t, gl_ScopeWorkgroup, TN, TK, gl_MatrixUseA> fb;                                           \
        coopMatLoadTensorNV(fb, b, b0, sliceTensorLayoutNV(layout_b, col0, TN, k0, TK));                           \
        coopmat<float16_t, gl_ScopeWorkgroup, TK, TM, gl_MatrixUseB> fa;                                           \
        LOAD_A(fa, a0, layout_a, k0);                                                                              \
        acc = coopMatMulAdd(fb, fa, acc);                                                                          \
        STEP_A2(layout_a, k0)                                                                                      \
    }

#ifdef FUSE_GLU
// After the k loop: the up product stored (gate is in d already), then the GLU in f32 and as f16, through ld
// (floats) and lh (halves) at the given first elements.
#define STORE_GLU(ld, lh, d2_0, g_0, g16_0)                                                                        \
    {                                                                                                              \
        coopMatStoreTensorNV(acc2, d2, d2_0, sliceTensorLayoutNV(ld, col0, TN, row0, TM));                         \
        coopMatPerElementNV(acc, acc, glu_of, acc2);                                                               \
        coopMatStoreTensorNV(acc, glu_out, g_0, sliceTensorLayoutNV(ld, col0, TN, row0, TM));                      \
        coopmat<float16_t, gl_ScopeWorkgroup, TN, TM, gl_MatrixUseAccumulator> h =                                 \
            coopmat<float16_t, gl_ScopeWorkgroup, TN, TM, gl_MatrixUseAccumulator>(acc);                           \
        coopMatStoreTensorNV(h, glu_half, g16_0, sliceTensorLayoutNV(lh, col0, TN, row0, TM));                     \
    }
#endif

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
    tensorViewNV<2, false, 1, 0> transposed = createTensorViewNV(2, false, 1, 0);

    coopmat<float, gl_ScopeWorkgroup, TN, TM, gl_MatrixUseAccumulator> acc =
        coopmat<float, gl_ScopeWorkgroup, TN, TM, gl_MatrixUseAccumulator>(0.0);
#ifdef FUSE_GLU
    coopmat<float, gl_ScopeWorkgroup, TN, TM, gl_MatrixUseAccumulator> acc2 =
        coopmat<float, gl_ScopeWorkgroup, TN, TM, gl_MatrixUseAccumulator>(0.0);
#endif

#ifdef K_SCALES
    fetch_scales(a_base, row0, 0u);
#endif
    const bool interior = ALIGNED && row0 + TM <= pc.m && col0 + TN <= pc.n && pc.k % TK == 0u;
    if (interior) {
        // Strides and offsets as multiples of 8 halves (4 floats for dst): 16-byte aligned rows the compiler can
        // see (the host guarantees them; the masks clear nothing).
        tensorLayoutNV<2> la = createTensorLayoutNV(2);
        la = setTensorLayoutBlockSizeNV(la, 1, QK_A);
        la = setTensorLayoutDimensionNV(la, pc.m, pc.k);
#if defined(A_F16)
        la = setTensorLayoutStrideNV(la, pc.a_row & ~7u, 1);
        const uint a_al = a_base & ~7u;
#ifdef FUSE_GLU
        const uint a2_0 = pc.a2_off & ~7u;
#endif
#else
        la = setTensorLayoutStrideNV(la, pc.a_row / A_WORDS, 1);
        const uint a_al = a_base;
#endif
        tensorLayoutNV<2> lb = createTensorLayoutNV(2);
        lb = setTensorLayoutDimensionNV(lb, pc.n, pc.k);
        lb = setTensorLayoutStrideNV(lb, pc.b_col & ~7u, 1);
        const uint b_al = b_base & ~7u;
        tensorLayoutNV<2> ld = createTensorLayoutNV(2);
        ld = setTensorLayoutDimensionNV(ld, pc.n, pc.m);
        ld = setTensorLayoutStrideNV(ld, pc.d_col & ~3u, 1);
        uint k0 = 0;
#ifdef K_SCALES
        // One block per iteration: its scales stored, the next block's fetched, then its 256 / TK steps.
        [[dont_unroll]] for (uint kb = 0; k0 < pc.k; ++kb) {
            store_scales();
            if (k0 + 256u < pc.k) { fetch_scales(a_base, row0, kb + 1u); }
            [[unroll]] for (uint s = 0; s < 256u / TK; ++s) {
                STEP(a_al, la, b_al, lb, k0)
                k0 += TK;
            }
        }
#else
        [[dont_unroll]] for (; k0 + UNROLL * TK <= pc.k;) {
            [[unroll]] for (uint s = 0; s < UNROLL; ++s) {
                STEP(a_al, la, b_al, lb, k0)
                k0 += TK;
            }
        }
        [[dont_unroll]] for (; k0 < pc.k; k0 += TK) { STEP(a_al, la, b_al, lb, k0) }
#endif
        coopMatStoreTensorNV(acc, d, d_base & ~3u, sliceTensorLayoutNV(ld, col0, TN, row0, TM));
#ifdef FUSE_GLU
        // The host checks the offsets are multiples of 4 floats (8 halves for the f16 copy) and m of 8.
        tensorLayoutNV<2> lh = createTensorLayoutNV(2);
        lh = setTensorLayoutDimensionNV(lh, pc.n, pc.m);
        lh = setTensorLayoutStrideNV(lh, pc.m & ~7u, 1);
        STORE_GLU(ld, lh, pc.d2_off & ~3u, pc.g_off & ~3u, pc.g16_off & ~7u)
#endif
#ifdef FUSE_ADD
        // The host checks both offsets are multiples of 4 floats, as d's.
        coopmat<float, gl_ScopeWorkgroup, TN, TM, gl_MatrixUseAccumulator> r;
        coopMatLoadTensorNV(r, addend, pc.pad0 & ~3u, sliceTensorLayoutNV(ld, col0, TN, row0, TM));
        acc = acc + r;
        coopMatStoreTensorNV(acc, fused_out, pc.pad1 & ~3u, sliceTensorLayoutNV(ld, col0, TN, row0, TM));
#endif
        return;
    }

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
#ifdef FUSE_GLU
    const uint a2_0 = pc.a2_off;
#endif
    for (uint k0 = 0; k0 < pc.k; k0 += TK) {
#ifdef K_SCALES
        if (k0 % 256u == 0u) {
            store_scales();
            if (k0 + 256u < pc.k) { fetch_scales(a_base, row0, k0 / 256u + 1u); }
        }
#endif
        STEP(a_base, la, b_base, lb, k0)
    }
    coopMatStoreTensorNV(acc, d, d_base, sliceTensorLayoutNV(ld, col0, TN, row0, TM));
#ifdef FUSE_GLU
    tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> lh = createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    lh = setTensorLayoutDimensionNV(lh, pc.n, pc.m);
    lh = setTensorLayoutStrideNV(lh, pc.m, 1);
    STORE_GLU(ld, lh, pc.d2_off, pc.g_off, pc.g16_off)
#endif
#ifdef FUSE_ADD
    coopmat<float, gl_ScopeWorkgroup, TN, TM, gl_MatrixUseAccumulator> r;
    coopMatLoadTensorNV(r, addend, pc.pad0, sliceTensorLayoutNV(ld, col0, TN, row0, TM));
    acc = acc + r;
    coopMatStoreTensorNV(acc, fused_out, pc.pad1, sliceTensorLayoutNV(ld, col0, TN, row0, TM));
#endif
}
