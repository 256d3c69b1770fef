#version 450
// Matrix x vector(s): d[c, row] = sum_k A[row, k] * b[c, k], for NROWS rows of A per workgroup and NCOLS columns
// of b (a few tokens at once read the weights once),
// batched over z (b/dst batches i12 + i13*ne12; A batch i12/r2, i13/r3 as ggml broadcasts).
// Quantized weights: four threads per 32-value block, blocks strided by WG/4; a thread's x values are loaded
// once and reused for every row. Float weights (F32, F16, and BF16 rows whose length is not a multiple of 4,
// which the generic kernel's 4-value chunks cannot take): one k per thread, strided by WG. Partial sums are reduced with subgroupAdd (or shared memory).
// Q4_1, Q5_0, Q5_1, IQ4_NL and MXFP4 weights (integer-dot path only; the generic kernel takes them otherwise):
// the same four threads per block; each thread builds its quarter's codes as 8-bit lanes (fifth bits spread in,
// table levels looked up in shared memory) and takes the same dot products as Q4_0, with the block's scale, min
// and code offset applied as ggml's CPU dot products apply them against Q8_0/Q8_1 activations.
// FUSE_ROPE (one column, integer-dot paths): the rows also go through the rope / K-V cache epilogue of
// matvec_rope.glsl (the rope and SET_ROWS that follow a token's Q, K and V products, in the same dispatch).
#include "common.glsl"
#include "half_bits.glsl"
#include "qx_block.glsl"
#ifdef INT_DOT
#extension GL_EXT_integer_dot_product : require
#endif
#if defined(A_Q4_1) || defined(A_Q5_0) || defined(A_Q5_1) || defined(A_IQ4_NL) || defined(A_MXFP4)
#define QX_LEGACY 1
#ifndef INT_DOT
#error "Q4_1, Q5_0, Q5_1, IQ4_NL and MXFP4 take this kernel on the integer-dot path only"
#endif
#endif
#ifndef NO_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 3) const uint NROWS = 2;
// b's offset and batch strides are multiples of 4 floats: read x as vec4.
layout(constant_id = 4) const bool B_VEC4 = false;
// Blocks per thread per loop trip (quantized weights): all of a trip's loads can be in flight at once.
layout(constant_id = 5) const uint UNROLL = 2;
// Columns of b (and dst) per dispatch; WG >= NROWS * NCOLS.
layout(constant_id = 6) const uint NCOLS = 1;

#if defined(A_F32)
layout(binding = 0) readonly buffer A { float a[]; };
#else
layout(binding = 0) readonly buffer A { uint16_t a[]; };
#endif
#ifdef A_WORDS32
// Q4_1 / Q5_1 blocks (20 / 24 bytes) starting on 32-bit words (offset and strides even in 16-bit words; checked on
// the host): the scale pair, the fifth bits and each quarter's code bytes are one 32-bit load each, not two 16-bit.
#if !defined(A_Q4_1) && !defined(A_Q5_1)
#error "A_WORDS32 is a variant of the Q4_1 and Q5_1 kernels"
#endif
layout(binding = 0) readonly buffer A32 { uint a32[]; };
#endif
#ifdef WIDE16
// F16 or BF16 weights whose rows start on 16-byte boundaries (offset and strides multiples of 8 values, k a
// multiple of 8; checked on the host): 8 consecutive values per thread per step, one 16-byte load per row. The
// activations are rounded in the kernel as the CPU backend's dot products take them (to f16; to bf16, to nearest
// even as ggml's FP32_TO_BF16, where ggvk rounds them for BF16 at all: no rounding pre-pass).
#if !defined(A_F16) && !defined(A_BF16)
#error "WIDE16 is a variant of the F16 and BF16 kernels"
#endif
layout(binding = 0) readonly buffer A8 { uvec4 a8[]; };
// BF16: whether the activations are rounded to bf16 (where ggvk rounds BF16 products' activations at all).
layout(constant_id = 7) const bool ROUND_X = true;
#ifdef A_BF16
vec2 pair16(uint w) { return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xFFFF0000u)); }
vec4 round4(vec4 x) { return vec4(round_to_bf16(x.x), round_to_bf16(x.y), round_to_bf16(x.z), round_to_bf16(x.w)); }
#else
vec2 pair16(uint w) { return unpackHalf2x16(w); }
vec4 round4(vec4 x) { return vec4(unpackHalf2x16(packHalf2x16(x.xy)), unpackHalf2x16(packHalf2x16(x.zw))); }
#endif
#endif
#ifdef INT_DOT
// x quantized by quantize_q8_1.comp: 10 words per 32-value block ([d] [sum q | s] [8 words of q], qx_block.glsl).
layout(binding = 1) readonly buffer BQ { uint bq[]; };
#else
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 1) readonly buffer B4 { vec4 b4[]; };
#endif
layout(binding = 2) writeonly buffer D { float d[]; };
#ifdef FUSE_ADD
// The ADD that follows the product (graph/fusion.rs): out[row] = d[row] + addend[row] for one column, offsets in
// floats in pc.pad0 (addend) and pc.pad1 (out); d is still written.
layout(binding = 3) readonly buffer FA { float addend[]; };
layout(binding = 4) writeonly buffer FO { float fused_out[]; };
#endif

#ifdef FUSE_ROPE
#include "matvec_rope.glsl"
#else
MATMUL_PUSH
#endif
#ifdef MUL_MAT_ID
#include "mul_mat_id.glsl"
#endif

shared float red[NCOLS * NROWS * WG];

#ifdef QX_LEGACY
// Block layouts in 16-bit words: the block's size, where its fifth bits (qh, a little-endian u32) and its 16 code
// bytes (element j in the low nibble of byte j, element j + 16 in the high one) start. MXFP4's 17-byte blocks are
// addressed in bytes instead (a_byte, a_bytes4).
#if defined(A_Q4_1)
#define QX_A_WORDS 10u
#define QS_WORD 2u
#elif defined(A_Q5_0)
#define QX_A_WORDS 11u
#define QH_WORD 1u
#define QS_WORD 3u
#elif defined(A_Q5_1)
#define QX_A_WORDS 12u
#define QH_WORD 2u
#define QS_WORD 4u
#elif defined(A_IQ4_NL)
#define QX_A_WORDS 9u
#define QS_WORD 1u
#endif

// Bits 0..3 of h as bit 4 of bytes 0..3 (the fifth bit of four codes): bit i of the nibble lands at 8i through one
// multiply by 1 + 2^7 + 2^14 + 2^21 (the four shifted copies of a 4-bit value do not overlap, so nothing carries).
uint spread4(uint h) {
    return (((h & 0xFu) * 0x00204081u) << 4) & 0x10101010u;
}

#if defined(A_IQ4_NL)
#define LUT_IQ4NL
#include "level_lut.glsl"
#elif defined(A_MXFP4)
#define LUT_MXFP4
#include "level_lut.glsl"
#include "e8m0.glsl"
#endif

#ifdef A_MXFP4
uint a_byte(uint i) { return (uint(a[i >> 1]) >> ((i & 1u) * 8u)) & 0xFFu; }
// Bytes i..i+3 of the weights as a little-endian u32 (i may be odd); the third word is read only within the buffer.
uint a_bytes4(uint i) {
    const uint w = i >> 1;
    const uint sh = (i & 1u) * 8u;
    const uint lo = uint(a[w]) | (uint(a[w + 1u]) << 16);
    const uint w2 = uint(a[min(w + 2u, uint(a.length()) - 1u)]);
    return (lo >> sh) | ((w2 << 16) << (16u - sh));
}
#endif
#endif

#if defined(INT_DOT) && (defined(A_Q4_0) || defined(A_Q8_0) || (defined(QX_LEGACY) && !defined(A_MXFP4)))
// STAGED (the 32-value block kernels on integer dot products but MXFP4's; rows on 16-byte boundaries and UNROLL x
// WG / 4 a multiple of 8 blocks, checked on the host; `GGVK_MATVEC_STAGED`, for measurements): each trip's run of
// blocks of every row (an even number of bytes a block, so 8 blocks are whole 16-byte units) comes into shared
// memory by 16-byte loads, the workgroup's invocations spread over its units, and the invocations read their
// quarter blocks from there (WA, WA32) instead of from memory: per row and trip about one 16-byte load an
// invocation instead of three to five 2-byte ones. Without it the reads are the kernel's own.
#define STAGE_KERNEL 1
#if defined(A_Q4_0)
#define ST_BLOCK_WORDS Q4_0_WORDS
#elif defined(A_Q8_0)
#define ST_BLOCK_WORDS Q8_0_WORDS
#else
#define ST_BLOCK_WORDS QX_A_WORDS
#endif
layout(constant_id = 7) const bool STAGED = false;
// Blocks a row per trip, their 16-bit words and their 16-byte units.
const uint ST_BLOCKS = UNROLL * (WG / 4u);
const uint ST_UNITS = STAGED ? ST_BLOCKS * ST_BLOCK_WORDS / 8u : 1u;
layout(binding = 0) readonly buffer A128 { uvec4 a128[]; };
shared uvec4 stage[NROWS * ST_UNITS];
// Each row's first 16-bit word (an index into a) in the trip staged now.
uint st_first[NROWS];

// Row r's staged 16-byte units of the trip from block t0 (`row_word`: the row's first 16-bit word, a multiple of 8).
void stage_trip(uint r, uint row_word, uint t0) {
    st_first[r] = row_word + t0 * ST_BLOCK_WORDS;
    const uint first = st_first[r] >> 3;
    const uint last = uint(a128.length()) - 1u;
    for (uint i = gl_LocalInvocationID.x; i < ST_UNITS; i += WG) {
        stage[r * ST_UNITS + i] = a128[min(first + i, last)];
    }
}

// 16-bit word i of a (within row r's staged trip under STAGED).
uint16_t wa16(uint r, uint i) {
    if (!STAGED) { return a[i]; }
    const uint j = i - st_first[r];
    return uint16_t(stage[r * ST_UNITS + (j >> 3)][(j >> 1) & 3u] >> (16u * (j & 1u)));
}
#define WA(r, i) wa16(r, i)
#ifdef A_WORDS32
// 32-bit word w of a32 (within row r's staged trip under STAGED).
uint wa32(uint r, uint w) {
    if (!STAGED) { return a32[w]; }
    const uint j = 2u * w - st_first[r];
    return stage[r * ST_UNITS + (j >> 3)][(j >> 1) & 3u];
}
#define WA32(r, w) wa32(r, w)
#endif
#else
#define WA(r, i) a[i]
#define WA32(r, w) a32[w]
#endif

void main() {
#ifdef FUSE_ROPE
    matvec_rope_prologue();
#endif
    const uint tid = gl_LocalInvocationID.x;
#if defined(A_IQ4_NL) || defined(A_MXFP4)
    lut_init();
#endif
    const uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    const uint row0 = group * NROWS;
    const uint z = gl_WorkGroupID.z;
    const uint i12 = z % pc.ne12;
    const uint i13 = z / pc.ne12;
#ifdef MUL_MAT_ID
    // A pair whose expert lies outside this dispatch's experts is another dispatch's (see mul_mat_id.glsl).
    const uint expert = expert_of(i12, i13);
    if (expert >= pc.pad1) { return; }
    const uint a_base = pc.a_off + expert * pc.a_s2;
#else
    const uint a_base = pc.a_off + (i12 / pc.r2) * pc.a_s2 + (i13 / pc.r3) * pc.a_s3;
#endif
    const uint b_base = pc.b_off + i12 * pc.b_s2 + i13 * pc.b_s3;

    // acc[c * NROWS + r]: column c, row r.
    float acc[NCOLS * NROWS];
    [[unroll]] for (uint i = 0; i < NCOLS * NROWS; ++i) { acc[i] = 0.0; }
    // Rows past the end read row m-1 (in bounds) and are not written.
    uint rbase[NROWS];
    [[unroll]] for (uint r = 0; r < NROWS; ++r) { rbase[r] = a_base + min(row0 + r, pc.m - 1) * pc.a_row; }

#if defined(A_Q4_0) || defined(A_Q8_0) || defined(QX_LEGACY)
    // Four threads share a block, each taking a quarter of it, so a subgroup reads consecutive blocks
    // (coalesced 16-bit loads); the block's scale is a broadcast load.
    const uint nblocks = pc.k / QK;
    const uint part = tid & 3u;
#ifdef STAGE_KERNEL
    // Under STAGED every invocation takes every trip (the staging's barriers); without it an invocation stops after
    // its last block, as the loop below does.
    for (uint t0 = 0; t0 < nblocks; t0 += ST_BLOCKS) {
      const uint blk0 = t0 + (tid >> 2);
      if (STAGED) {
        [[unroll]] for (uint r = 0; r < NROWS; ++r) { stage_trip(r, rbase[r], t0); }
        barrier();
      } else if (blk0 >= nblocks) {
        break;
      }
#else
    for (uint blk0 = tid >> 2; blk0 < nblocks; blk0 += UNROLL * (WG / 4)) {
#endif
      [[unroll]] for (uint u = 0; u < UNROLL; ++u) {
        // Past the end: reread the last block (in bounds) and weigh it 0, so the trip has no branch.
        const uint bu = blk0 + u * (WG / 4);
        const float valid = bu < nblocks ? 1.0 : 0.0;
        const uint blk = min(bu, nblocks - 1);
#if defined(INT_DOT)
        // Integer dot products of 4 packed 8-bit lanes; one float conversion per block quarter.
        [[unroll]] for (uint c = 0; c < NCOLS; ++c) {
        const uint xb = b_base + c * pc.b_col + blk * 10u;
        const float dx = uintBitsToFloat(bq[xb]) * valid;
#if defined(A_Q4_0)
        // Nibbles are 0..15; (n - 8) . x = n . x - 8 sum(x), the block's sum taken once (by quarter 0).
        const int x_lo = int(bq[xb + 2u + part]);
        const int x_hi = int(bq[xb + 6u + part]);
        const float corr = part == 0u ? 8.0 * float(qx_sum(bq[xb + 1u])) : 0.0;
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
            const uint base = rbase[r] + blk * Q4_0_WORDS;
            const uint w = uint(WA(r, base + 1 + 2 * part)) | (uint(WA(r, base + 2 + 2 * part)) << 16);
            const int s = dotPacked4x8EXT(int(w & 0x0F0F0F0Fu), x_lo) + dotPacked4x8EXT(int((w >> 4) & 0x0F0F0F0Fu), x_hi);
            acc[c * NROWS + r] += f16_bits_to_float(WA(r, base)) * dx * (float(s) - corr);
        }
        }
#elif defined(QX_LEGACY)
        // Quarter p: codes of elements 4p..4p+3 (low nibbles of code bytes 4p..4p+3) against x_lo, elements
        // 16+4p..16+4p+3 (their high nibbles) against x_hi.
        const int x_lo = int(bq[xb + 2u + part]);
        const int x_hi = int(bq[xb + 6u + part]);
        const uint xsw = bq[xb + 1u];
#if defined(A_Q4_1) || defined(A_Q5_1)
        // ggml Q8_1's s = f16(d * sum(q)); where that overflows f16 (max|x| beyond ~2^11; the CPU's min term is then
        // inf or NaN) the f32 product stands in for it.
        float s_x = uintBitsToFloat(half_to_float_bits(xsw >> 16));
        if (isinf(s_x)) { s_x = uintBitsToFloat(bq[xb]) * float(qx_sum(xsw)); }
#endif
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
#if defined(A_MXFP4)
            const uint byte0 = 2u * rbase[r] + 17u * blk;
            const uint e = a_byte(byte0);
            const float dw = e8m0_half(e);
            const uint qs = a_bytes4(byte0 + 1u + 4u * part);
#elif defined(A_WORDS32)
            const uint base = rbase[r] + blk * QX_A_WORDS;
            const uint w32 = base >> 1;
            const uint dm = WA32(r, w32);
            const float dw = f16_bits_to_float(uint16_t(dm & 0xFFFFu));
            const uint qs = WA32(r, w32 + QS_WORD / 2u + part);
#else
            const uint base = rbase[r] + blk * QX_A_WORDS;
            const float dw = f16_bits_to_float(WA(r, base));
            const uint qs = uint(WA(r, base + QS_WORD + 2u * part)) | (uint(WA(r, base + QS_WORD + 1u + 2u * part)) << 16);
#endif
            uint lo = qs & 0x0F0F0F0Fu;
            uint hi = (qs >> 4) & 0x0F0F0F0Fu;
#if defined(A_Q5_0) || defined(A_Q5_1)
#ifdef A_WORDS32
            const uint qh = WA32(r, w32 + QH_WORD / 2u);
#else
            const uint qh = uint(WA(r, base + QH_WORD)) | (uint(WA(r, base + QH_WORD + 1u)) << 16);
#endif
            lo |= spread4(qh >> (4u * part));
            hi |= spread4(qh >> (16u + 4u * part));
#endif
#if defined(A_IQ4_NL) || defined(A_MXFP4)
            lo = lut_bytes(lo);
            hi = lut_bytes(hi);
#endif
            int s = dotPacked4x8EXT(int(lo), x_lo) + dotPacked4x8EXT(int(hi), x_hi);
#if defined(A_Q5_0)
            // Codes 0..31 stand for -16..15: the block's sum of x times 16 taken once (by quarter 0), in integers.
            s -= part == 0u ? 16 * qx_sum(xsw) : 0;
#endif
#if defined(A_Q4_1) || defined(A_Q5_1)
            // value = d * code + m: as ggml's CPU dot product, d d_x sum(code q) + m s, s = f16(d_x sum(q)) as the
            // activations' quantization stored it (once per block, by quarter 0).
#ifdef A_WORDS32
            const float ms = part == 0u ? f16_bits_to_float(uint16_t(dm >> 16)) * s_x : 0.0;
#else
            const float ms = part == 0u ? f16_bits_to_float(WA(r, base + 1u)) * s_x : 0.0;
#endif
            acc[c * NROWS + r] += dx * (dw * float(s)) + valid * ms;
#else
            acc[c * NROWS + r] += dx * (dw * float(s));
#endif
        }
        }
#else
        const int x0 = int(bq[xb + 2u + 2u * part]);
        const int x1 = int(bq[xb + 3u + 2u * part]);
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
            const uint blkbase = rbase[r] + blk * Q8_0_WORDS;
            const uint base = blkbase + 1 + 4 * part;
            const uint w0 = uint(WA(r, base)) | (uint(WA(r, base + 1)) << 16);
            const uint w1 = uint(WA(r, base + 2)) | (uint(WA(r, base + 3)) << 16);
            const int s = dotPacked4x8EXT(int(w0), x0) + dotPacked4x8EXT(int(w1), x1);
            acc[c * NROWS + r] += f16_bits_to_float(WA(r, blkbase)) * dx * float(s);
        }
        }
#endif
#else
        [[unroll]] for (uint c = 0; c < NCOLS; ++c) {
        const uint kb = b_base + c * pc.b_col + blk * QK;
#if defined(A_Q4_0)
        // Quarter p holds qs bytes 4p..4p+3: elements 4p..4p+3 (low nibbles) and 16+4p..16+4p+3 (high).
        vec4 xl;
        vec4 xh;
        if (B_VEC4) {
            xl = b4[kb / 4 + part];
            xh = b4[kb / 4 + 4 + part];
        } else {
            const uint e = kb + 4 * part;
            xl = vec4(b[e], b[e + 1], b[e + 2], b[e + 3]);
            xh = vec4(b[e + 16], b[e + 17], b[e + 18], b[e + 19]);
        }
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
            const uint base = rbase[r] + blk * Q4_0_WORDS;
            const uint w = uint(a[base + 1 + 2 * part]) | (uint(a[base + 2 + 2 * part]) << 16);
            const uvec4 sh = uvec4(0u, 8u, 16u, 24u);
            acc[c * NROWS + r] += valid * f16_bits_to_float(a[base]) *
                      (dot(nibbles_minus_8((uvec4(w) >> sh) & 15u), xl) +
                       dot(nibbles_minus_8((uvec4(w) >> (sh + 4u)) & 15u), xh));
        }
#else
        // Quarter p holds signed bytes 8p..8p+7: elements 8p..8p+7.
        vec4 x0;
        vec4 x1;
        if (B_VEC4) {
            x0 = b4[kb / 4 + 2 * part];
            x1 = b4[kb / 4 + 2 * part + 1];
        } else {
            const uint e = kb + 8 * part;
            x0 = vec4(b[e], b[e + 1], b[e + 2], b[e + 3]);
            x1 = vec4(b[e + 4], b[e + 5], b[e + 6], b[e + 7]);
        }
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
            const uint base = rbase[r] + blk * Q8_0_WORDS + 1 + 4 * part;
            const uint w0 = uint(a[base]);
            const uint w1 = uint(a[base + 1]);
            const uint w2 = uint(a[base + 2]);
            const uint w3 = uint(a[base + 3]);
            const vec4 q0 = bytes_to_signed(uvec4(w0, w0 >> 8, w1, w1 >> 8));
            const vec4 q1 = bytes_to_signed(uvec4(w2, w2 >> 8, w3, w3 >> 8));
            acc[c * NROWS + r] += valid * f16_bits_to_float(a[rbase[r] + blk * Q8_0_WORDS]) * (dot(q0, x0) + dot(q1, x1));
        }
#endif
        }
#endif
      }
#ifdef STAGE_KERNEL
      if (STAGED) { barrier(); }
#endif
    }
#elif defined(WIDE16)
    for (uint g = tid; g < pc.k / 8u; g += WG) {
        vec4 w0[NROWS];
        vec4 w1[NROWS];
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
            const uvec4 v = a8[(rbase[r] >> 3) + g];
            w0[r] = vec4(pair16(v.x), pair16(v.y));
            w1[r] = vec4(pair16(v.z), pair16(v.w));
        }
        [[unroll]] for (uint c = 0; c < NCOLS; ++c) {
            const uint e = b_base + c * pc.b_col + 8u * g;
            vec4 x0;
            vec4 x1;
            if (B_VEC4) {
                x0 = b4[e / 4u];
                x1 = b4[e / 4u + 1u];
            } else {
                x0 = vec4(b[e], b[e + 1u], b[e + 2u], b[e + 3u]);
                x1 = vec4(b[e + 4u], b[e + 5u], b[e + 6u], b[e + 7u]);
            }
            if (ROUND_X) {
                x0 = round4(x0);
                x1 = round4(x1);
            }
            [[unroll]] for (uint r = 0; r < NROWS; ++r) { acc[c * NROWS + r] += dot(w0[r], x0) + dot(w1[r], x1); }
        }
    }
#else
    for (uint kk = tid; kk < pc.k; kk += WG) {
        float av[NROWS];
        [[unroll]] for (uint r = 0; r < NROWS; ++r) {
#if defined(A_F32)
            av[r] = a[rbase[r] + kk];
#elif defined(A_BF16)
            av[r] = uintBitsToFloat(uint(a[rbase[r] + kk]) << 16);
#else
            av[r] = f16_bits_to_float(a[rbase[r] + kk]);
#endif
        }
        [[unroll]] for (uint c = 0; c < NCOLS; ++c) {
#if defined(A_F16)
            const float xv = round_to_f16(b[b_base + c * pc.b_col + kk]);
#else
            const float xv = b[b_base + c * pc.b_col + kk];
#endif
            [[unroll]] for (uint r = 0; r < NROWS; ++r) { acc[c * NROWS + r] += av[r] * xv; }
        }
    }
#endif

    const uint d_base = pc.d_off + i12 * pc.d_s2 + i13 * pc.d_s3;
#ifndef NO_SUBGROUPS
    [[unroll]] for (uint i = 0; i < NCOLS * NROWS; ++i) {
        const float s = subgroupAdd(acc[i]);
        if (subgroupElect()) { red[i * WG + gl_SubgroupID] = s; }
    }
    barrier();
    // Thread i < NCOLS * NROWS writes column i / NROWS, row i % NROWS.
#ifdef FUSE_ROPE
    // One column: thread tid < NROWS holds row row0 + tid (see matvec_rope.glsl).
    float t = 0.0;
    if (tid < NROWS) {
        for (uint i = 0; i < gl_NumSubgroups; ++i) { t += red[tid * WG + i]; }
        if (row0 + tid < pc.m) { d[d_base + row0 + tid] = t; }
    }
    matvec_rope_epilogue(row0, t);
#else
    if (tid < NCOLS * NROWS && row0 + tid % NROWS < pc.m) {
        float t = 0.0;
        for (uint i = 0; i < gl_NumSubgroups; ++i) { t += red[tid * WG + i]; }
        d[d_base + (tid / NROWS) * pc.d_col + row0 + tid % NROWS] = t;
#ifdef FUSE_ADD
        fused_out[pc.pad1 + row0 + tid] = t + addend[pc.pad0 + row0 + tid];
#endif
    }
#endif
#else
#if defined(FUSE_ADD) || defined(FUSE_ROPE)
#error "FUSE_ADD and FUSE_ROPE need the subgroup reduction"
#endif
    [[unroll]] for (uint i = 0; i < NCOLS * NROWS; ++i) { red[i * WG + tid] = acc[i]; }
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) {
            [[unroll]] for (uint i = 0; i < NCOLS * NROWS; ++i) { red[i * WG + tid] += red[i * WG + tid + s]; }
        }
        barrier();
    }
    if (tid < NCOLS * NROWS && row0 + tid % NROWS < pc.m) {
        d[d_base + (tid / NROWS) * pc.d_col + row0 + tid % NROWS] = red[tid * WG];
    }
#endif
}
