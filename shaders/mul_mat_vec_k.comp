#version 450
// Matrix x vector(s) for K-quant weights (Q4_K with Q4K, Q5_K with Q5K, Q6_K with Q6K), f32 activations: d[c, row] =
// sum_k A[row, k] * b[c, k] for NROWS rows of A per workgroup and NCOLS columns of b, batched over z with ggml's
// broadcast (same push constants and spec constants as mul_mat_vec_dq.comp, which serves these types too but
// unpacks the scales again for every 8 values).
// Work unit: 1/16 of a 256-value super-block. Consecutive threads take consecutive units, so 16 threads cover a
// block's bytes together (coalesced), and each unpacks its scales once for its share:
//   Q4_K: unit t reads 8 code bytes (two 32-bit loads) at 32 (t / 4) + 8 (t % 4) of qs: 8 values of sub-block
//         2 (t / 4) (low nibbles) and the same 8 of sub-block 2 (t / 4) + 1 (high nibbles); the block's d, dmin
//         and 12 scale bytes are three more 32-bit loads (shared with the unit's neighbours through the cache).
//         Needs blocks at 32-bit word boundaries (the host checks the tensor offset; 144-byte blocks keep it).
//   Q5_K: as Q4_K (176-byte blocks: d, dmin, 12 scale bytes, 32 bytes qh, 128 bytes qs), each code's fifth bit
//         from qh byte l: bit 2 (t / 4) for the low nibble's sub-block, the next bit for the high one's.
//   Q6_K: unit t covers half h = t / 8 and l = 4 (t % 8) .. +3 of each of the half's four 32-value quarters
//         (16 values): 4 bytes of each ql half, 4 bytes of qh, four signed scales.
// Per value the arithmetic is ggml's dequantization ((d * sc) * q - dmin * m, or (d * sc) * (q - 32)) folded into
// the dot product: sum((d sc) q x) = d sc sum(q x), sum(dmin m x) = dmin m sum(x); summation order differs from
// the CPU's (as every GPU reduction does).
// INT_DOT: b arrives quantized onto ggml's Q8_K grid by quantize_q8_k.comp (the CPU backend's activations for these
// weight types) and each unit's products are integer dot products of packed bytes: sum over a sub-block of
// q_weight * q_x is exact in int32, the weight's sub-block scale multiplies it as an integer, and only the block
// scales (d_x * d, d_x * dmin) are floats, as in ggml's CPU dot products (Q5_K's fifth bit is ORed into each code
// byte; Q6_K's codes become q - 32 as signed bytes, so no sum of x is needed there).
// WIDE (Q4_K or Q5_K with INT_DOT, blocks and Q8_K blocks on 16-byte boundaries, checked on the host): units of
// 1/8 block read in 16-byte loads: unit t takes the block's first 16 bytes (d, dmin, the 12 scale bytes) and 16 code
// bytes at 32 (t / 2) + 16 (t % 2) of qs, 32 values: 16 of sub-block 2 (t / 2) (low nibbles) and the same 16 of
// sub-block 2 (t / 2) + 1 (high nibbles), for Q5_K also the 16 qh bytes of those positions; the activations' 16
// code bytes of each in two more 16-byte loads. Six loads per 32 values per row instead of six per 16 (Q5_K: eight
// per 16), and the scales unpacked once per 32 values.
// Q2_K with WIDE (Q8_K blocks on 16-byte boundaries, checked on the host): units of 1/4 block, 16 code bytes of a
// half (four 32-bit loads: 84-byte blocks keep only 4-byte alignment) and each group's 16 activation codes in one
// 16-byte load: 64 values per unit instead of 16.
// Q2_K (Q2K), Q3_K (Q3K), IQ4_XS (IQ4XS): INT_DOT only (the generic kernel takes them otherwise), 16 units per block.
//   Q2_K / Q3_K: unit t takes code bytes l0 = 4 (t % 8) .. +3 of the block's half n = t / 8: 4 values of each of
//         the half's four 32-value groups j (2-bit codes at bit 2j; sub-block 8n + 2j + l0 / 16), one 32-bit
//         load for all 16; Q3_K's high-mask bit 4n + j of bytes l0 .. l0 + 3 lifts each code by 4, and the codes
//         become code - 4 as signed bytes; Q2_K's mins meet the unit's own activation code sums (a dot product
//         with ones), since Q8_K keeps sums per 32 values and Q2_K's mins cover 16.
//   IQ4_XS: unit t takes 8 code bytes of sub-block t / 2 (elements 8 (t % 2) .. +7 in the low nibbles, the same
//         + 16 in the high ones), each looked up in kvalues_iq4nl (shared memory) as a signed byte.
// Partial sums are reduced with subgroupAdd (or shared memory with NO_SUBGROUPS).
// FUSE_ROPE (one column, integer-dot paths): the rows also go through the rope / K-V cache epilogue of
// matvec_rope.glsl (the rope and SET_ROWS that follow a token's Q, K and V products, in the same dispatch).
#include "common.glsl"
#ifdef INT_DOT
#extension GL_EXT_integer_dot_product : require
#endif
#ifndef NO_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 3) const uint NROWS = 2;
// b's offset and strides are multiples of 4 floats: read x as vec4.
layout(constant_id = 4) const bool B_VEC4 = false;
// Units per thread per loop trip: all of a trip's loads can be in flight at once.
layout(constant_id = 5) const uint UNROLL = 2;
// Columns of b (and dst) per dispatch; WG >= NROWS * NCOLS.
layout(constant_id = 6) const uint NCOLS = 1;

layout(binding = 0) readonly buffer A { uint16_t a[]; };
layout(binding = 0) readonly buffer A32 { uint a32[]; };
#ifdef INT_DOT
// Q8_K blocks of 76 words: [0] d (f32) [1..8] code sum of each 32-value sub-block [9..11] 0 [12..75] codes, 4 per word.
layout(binding = 1) readonly buffer BQ { uint bq[]; };
#define Q8K_WORDS 76u
#define Q8K_CODES 12u
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

uint dq_u16(uint i) { return uint(a[i]); }
// dq_k_half: f16 bits to f32 exactly (subnormal scales included, which a driver's conversion may flush).
#include "dq_k_common.glsl"

#if defined(Q4K)
#define BLOCK_WORDS 72u
#elif defined(Q5K)
#define BLOCK_WORDS 88u
#elif defined(Q6K)
#define BLOCK_WORDS 105u
#elif defined(Q2K)
#define BLOCK_WORDS 42u
#elif defined(Q3K)
#define BLOCK_WORDS 55u
#elif defined(IQ4XS)
#define BLOCK_WORDS 68u
#else
#error "define Q4K, Q5K, Q6K, Q2K, Q3K or IQ4XS"
#endif
#if (defined(Q2K) || defined(Q3K) || defined(IQ4XS)) && !defined(INT_DOT)
#error "Q2_K, Q3_K and IQ4_XS take this kernel on integer dot products only"
#endif
#define QK_K 256u
#ifdef WIDE
#if !(defined(Q4K) || defined(Q5K) || defined(Q2K)) || !defined(INT_DOT) || defined(MUL_MAT_ID) || defined(NO_SUBGROUPS)
#error "WIDE: Q4_K, Q5_K or Q2_K on integer dot products with subgroups, MUL_MAT only"
#endif
layout(binding = 0) readonly buffer A128 { uvec4 a128[]; };
layout(binding = 1) readonly buffer BQ128 { uvec4 bq128[]; };
#if defined(Q2K)
#define UPB 4u
#else
#define UPB 8u
#endif
#else
#define UPB 16u
#endif

#ifndef INT_DOT
vec4 load_x(uint e) {
    return B_VEC4 ? b4[e / 4u] : vec4(b[e], b[e + 1u], b[e + 2u], b[e + 3u]);
}
#endif

// Byte lanes of a packed word: shifting uvec4(w) by this puts byte k in the low bits of component k.
const uvec4 LANES = uvec4(0u, 8u, 16u, 24u);

shared float red[NCOLS * NROWS * WG];

#ifdef Q3K
// Q3_K's sub-block scale i (0..15) from its 12 scale bytes in s0 (bytes 0-3), s1 (4-7), s2 (8-11), minus 32: low
// four bits from byte i % 8 (its low nibble for i < 8, its high one after), high two from byte 8 + i % 4 at bit
// 2 (i / 4), as ggml unpacks them.
int q3k_scale(uint i, uint s0, uint s1, uint s2) {
    const uint b = ((i & 4u) != 0u ? s1 : s0) >> (8u * (i & 3u));
    const uint lo = (b >> (4u * (i >> 3))) & 0xFu;
    const uint hi = (s2 >> (8u * (i & 3u) + 2u * (i >> 2))) & 3u;
    return int(lo | (hi << 4)) - 32;
}
#endif

#ifdef Q2K
// Of the Q2_K block at 16-bit word bw ([scales 16 bytes] [qs 64 bytes] [d] [dmin], on 32-bit boundaries): the
// scale bytes 8n .. 8n + 7 of half n as two words, and (d, dmin) in dm.
uvec2 q2k_header(uint bw, uint n, out vec2 dm) {
    const uint dmw = a32[(bw + 40u) >> 1];
    dm = vec2(dq_k_half(dmw & 0xFFFFu), dq_k_half(dmw >> 16));
    return uvec2(a32[(bw + 4u * n) >> 1], a32[(bw + 4u * n + 2u) >> 1]);
}

// The scale byte (4-bit scale, 4-bit min) of group j's sub-block 2j + hsub in a half's words sw.
uint q2k_scale_byte(uvec2 sw, uint j, uint hsub) {
    return ((j < 2u ? sw.x : sw.y) >> (8u * (2u * (j & 1u) + hsub))) & 0xFFu;
}
#endif

#ifdef IQ4XS
#define LUT_IQ4NL
#include "level_lut.glsl"
#endif

#if defined(Q4K) || defined(Q5K)
// ggml's get_scale_min_k4 for sub-blocks 2p and 2p + 1 from the 12 scale bytes in words q (bytes 0-3, 4-7, 8-11):
// bytes j, j + 4 (j < 4), or j + 4 with the top bits of bytes j - 4 and j (j >= 4). p < 2: j = 2p, 2p + 1 < 4;
// else j - 4 = 2p - 4, 2p - 3.
void scale_min_pair(uint p, uvec3 q, out uvec2 sc, out uvec2 mn) {
    const uint sh = 16u * (p & 1u);
    const uint lo_q = (q.x >> sh) & 0xFFFFu; // bytes 2(p & 1), +1 of q[0..3]
    const uint mi_q = (q.y >> sh) & 0xFFFFu; // the same of q[4..7]
    const uint hi_q = (q.z >> sh) & 0xFFFFu; // the same of q[8..11]
    if (p < 2u) {
        sc = uvec2(lo_q & 63u, (lo_q >> 8) & 63u);
        mn = uvec2(mi_q & 63u, (mi_q >> 8) & 63u);
    } else {
        sc = uvec2((hi_q & 0xFu) | (((lo_q >> 6) & 3u) << 4), ((hi_q >> 8) & 0xFu) | (((lo_q >> 14) & 3u) << 4));
        mn = uvec2(((hi_q >> 4) & 0xFu) | (((mi_q >> 6) & 3u) << 4), ((hi_q >> 12) & 0xFu) | (((mi_q >> 14) & 3u) << 4));
    }
}
#endif

void main() {
#ifdef FUSE_ROPE
    matvec_rope_prologue();
#endif
    const uint tid = gl_LocalInvocationID.x;
#ifdef IQ4XS
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

    float acc[NCOLS * NROWS];
    [[unroll]] for (uint i = 0; i < NCOLS * NROWS; ++i) { acc[i] = 0.0; }
    // Rows past the end read row m-1 (in bounds) and are not written.
    uint rbase[NROWS];
    [[unroll]] for (uint r = 0; r < NROWS; ++r) { rbase[r] = a_base + min(row0 + r, pc.m - 1) * pc.a_row; }

    // k is a multiple of 256 (checked on the host).
    const uint nunits = (pc.k / QK_K) * UPB;
    for (uint c0 = tid; c0 < nunits; c0 += UNROLL * WG) {
        [[unroll]] for (uint u = 0; u < UNROLL; ++u) {
            // Past the end: reread the last unit (in bounds) and weigh it 0, so the trip has no branch.
            const uint cu = c0 + u * WG;
            const bool valid = cu < nunits;
            const uint c = min(cu, nunits - 1u);
            const uint blk = c / UPB;
            const uint t = c % UPB;
#if defined(WIDE) && defined(Q2K)
            // A quarter block: half n, code bytes 16 hf .. +15 of it (64 values: 16 of each group j, sub-block
            // 8n + 2j + hf), the activations' 16 codes of each group as one 16-byte load, their code sums (Q2_K's
            // mins cover 16 values, Q8_K's sums 32) as dot products with ones; loaded once for every row.
            const uint n = t >> 1;
            const uint hf = t & 1u;
            uvec4 xv[NCOLS * 4u];
            int xs[NCOLS * 4u];
            [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                const uint xb = b_base + col * pc.b_col + blk * Q8K_WORDS;
                [[unroll]] for (uint j = 0; j < 4u; ++j) {
                    const uvec4 x = bq128[(xb + Q8K_CODES + 32u * n + 8u * j + 4u * hf) >> 2];
                    xv[col * 4u + j] = x;
                    xs[col * 4u + j] = dotPacked4x8EXT(int(x.x), 0x01010101) + dotPacked4x8EXT(int(x.y), 0x01010101)
                        + dotPacked4x8EXT(int(x.z), 0x01010101) + dotPacked4x8EXT(int(x.w), 0x01010101);
                }
            }
            [[unroll]] for (uint r = 0; r < NROWS; ++r) {
                // [scales 16 bytes] [qs 64 bytes] [d] [dmin], 84-byte blocks on 32-bit boundaries.
                const uint bw = rbase[r] + blk * BLOCK_WORDS;
                const uint qw = (bw + 8u + 16u * n + 8u * hf) >> 1;
                const uvec4 q = uvec4(a32[qw], a32[qw + 1u], a32[qw + 2u], a32[qw + 3u]);
                vec2 dm;
                const uvec2 sw = q2k_header(bw, n, dm);
                int isc[NCOLS];
                int imn[NCOLS];
                [[unroll]] for (uint col = 0; col < NCOLS; ++col) { isc[col] = 0; imn[col] = 0; }
                [[unroll]] for (uint j = 0; j < 4u; ++j) {
                    const uvec4 c = (q >> (2u * j)) & 0x03030303u;
                    const uint sb = q2k_scale_byte(sw, j, hf);
                    const int sc = int(sb & 0xFu);
                    const int mn = int(sb >> 4);
                    [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                        const uvec4 x = xv[col * 4u + j];
                        const int s = dotPacked4x8EXT(int(c.x), int(x.x)) + dotPacked4x8EXT(int(c.y), int(x.y))
                            + dotPacked4x8EXT(int(c.z), int(x.z)) + dotPacked4x8EXT(int(c.w), int(x.w));
                        isc[col] += sc * s;
                        imn[col] += mn * xs[col * 4u + j];
                    }
                }
                [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                    const float dx = uintBitsToFloat(bq[b_base + col * pc.b_col + blk * Q8K_WORDS]);
                    acc[col * NROWS + r] += valid ? dx * (dm.x * float(isc[col]) - dm.y * float(imn[col])) : 0.0;
                }
            }
#elif defined(WIDE)
            const uint p = t >> 1;
            const uint hf = t & 1u;
            [[unroll]] for (uint r = 0; r < NROWS; ++r) {
                const uint v = (rbase[r] + blk * BLOCK_WORDS) >> 3; // the block's first 16 bytes
                const uvec4 hd = a128[v];
#if defined(Q5K)
                const uvec4 qv = a128[v + 3u + 2u * p + hf]; // after 16 header and 32 qh bytes
                const uvec4 qhv = a128[v + 1u + hf];         // qh bytes 16 hf .. + 15: bit 2p (lo), 2p + 1 (hi)
#else
                const uvec4 qv = a128[v + 1u + 2u * p + hf];
#endif
                const vec2 dm = vec2(dq_k_half(hd.x & 0xFFFFu), dq_k_half(hd.x >> 16));
                uvec2 sc, mn;
                scale_min_pair(p, hd.yzw, sc, mn);
#if defined(Q5K)
                const uvec4 lo = (qv & 0x0F0F0F0Fu) | (((qhv >> (2u * p)) & 0x01010101u) << 4);
                const uvec4 hi = ((qv >> 4) & 0x0F0F0F0Fu) | (((qhv >> (2u * p + 1u)) & 0x01010101u) << 4);
#else
                const uvec4 lo = qv & 0x0F0F0F0Fu;
                const uvec4 hi = (qv >> 4) & 0x0F0F0F0Fu;
#endif
                [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                    const uint xb = b_base + col * pc.b_col + blk * Q8K_WORDS;
                    const uint x4 = (xb + Q8K_CODES + 16u * p + 4u * hf) >> 2;
                    const uvec4 xl = bq128[x4];
                    const uvec4 xh = bq128[x4 + 2u];
                    int s_lo = 0;
                    int s_hi = 0;
                    [[unroll]] for (uint i = 0; i < 4u; ++i) {
                        s_lo += dotPacked4x8EXT(int(lo[i]), int(xl[i]));
                        s_hi += dotPacked4x8EXT(int(hi[i]), int(xh[i]));
                    }
                    const int isc = int(sc.x) * s_lo + int(sc.y) * s_hi;
                    // The mins meet each sub-block's code sum once: the unit of the first half adds them.
                    const int imn = hf == 0u ? int(mn.x) * int(bq[xb + 1u + 2u * p]) + int(mn.y) * int(bq[xb + 2u + 2u * p]) : 0;
                    const float dx = uintBitsToFloat(bq[xb]);
                    acc[col * NROWS + r] += valid ? dx * (dm.x * float(isc) - dm.y * float(imn)) : 0.0;
                }
            }
#elif defined(Q4K) || defined(Q5K)
            const uint p = t >> 2;
            const uint xo = blk * QK_K + 64u * p + 8u * (t & 3u);
            [[unroll]] for (uint r = 0; r < NROWS; ++r) {
                const uint w = (rbase[r] + blk * BLOCK_WORDS) >> 1; // first 32-bit word of the block
                const uint dmw = a32[w];
                const vec2 dm = vec2(dq_k_half(dmw & 0xFFFFu), dq_k_half(dmw >> 16));
                uvec2 sc, mn;
                scale_min_pair(p, uvec3(a32[w + 1u], a32[w + 2u], a32[w + 3u]), sc, mn);
#if defined(INT_DOT)
                // Code bytes of sub-blocks 2p (lo) and 2p + 1 (hi), positions 8 (t % 4) .. +7.
                const uint qw = w + (BLOCK_WORDS == 72u ? 4u : 12u) + 8u * p + 2u * (t & 3u);
                const uint q0 = a32[qw];
                const uint q1 = a32[qw + 1u];
                uint lo0 = q0 & 0x0F0F0F0Fu;
                uint lo1 = q1 & 0x0F0F0F0Fu;
                uint hi0 = (q0 >> 4) & 0x0F0F0F0Fu;
                uint hi1 = (q1 >> 4) & 0x0F0F0F0Fu;
#if defined(Q5K)
                const uint hw = w + 4u + 2u * (t & 3u); // qh bytes 8 (t % 4) .. +7: bit 2p (lo), 2p + 1 (hi)
                const uint b0 = a32[hw];
                const uint b1 = a32[hw + 1u];
                lo0 |= ((b0 >> (2u * p)) & 0x01010101u) << 4;
                lo1 |= ((b1 >> (2u * p)) & 0x01010101u) << 4;
                hi0 |= ((b0 >> (2u * p + 1u)) & 0x01010101u) << 4;
                hi1 |= ((b1 >> (2u * p + 1u)) & 0x01010101u) << 4;
#endif
                [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                    const uint xb = b_base + col * pc.b_col + blk * Q8K_WORDS;
                    const uint xl = xb + Q8K_CODES + 16u * p + 2u * (t & 3u);
                    const int s_lo = dotPacked4x8EXT(int(lo0), int(bq[xl])) + dotPacked4x8EXT(int(lo1), int(bq[xl + 1u]));
                    const int s_hi = dotPacked4x8EXT(int(hi0), int(bq[xl + 8u])) + dotPacked4x8EXT(int(hi1), int(bq[xl + 9u]));
                    const int isc = int(sc.x) * s_lo + int(sc.y) * s_hi;
                    // The mins meet each sub-block's code sum once: the unit at position 0 adds them.
                    const int imn = (t & 3u) == 0u
                        ? int(mn.x) * int(bq[xb + 1u + 2u * p]) + int(mn.y) * int(bq[xb + 2u + 2u * p]) : 0;
                    const float dx = uintBitsToFloat(bq[xb]);
                    acc[col * NROWS + r] += valid ? dx * (dm.x * float(isc) - dm.y * float(imn)) : 0.0;
                }
#else
#if defined(Q4K)
                const uint qw = w + 4u + 8u * p + 2u * (t & 3u);
                const uint q0 = a32[qw];
                const uint q1 = a32[qw + 1u];
                const vec4 l0 = vec4((uvec4(q0) >> LANES) & 0xFu);
                const vec4 l1 = vec4((uvec4(q1) >> LANES) & 0xFu);
                const vec4 h0 = vec4((uvec4(q0) >> (LANES + 4u)) & 0xFu);
                const vec4 h1 = vec4((uvec4(q1) >> (LANES + 4u)) & 0xFu);
#else
                const uint qw = w + 12u + 8u * p + 2u * (t & 3u);
                const uint q0 = a32[qw];
                const uint q1 = a32[qw + 1u];
                const uint hw = w + 4u + 2u * (t & 3u); // qh bytes 8 (t % 4) .. +7
                const uint b0 = a32[hw];
                const uint b1 = a32[hw + 1u];
                const uvec4 sl = LANES + 2u * p;
                const vec4 l0 = vec4(((uvec4(q0) >> LANES) & 0xFu) | (((uvec4(b0) >> sl) & 1u) << 4));
                const vec4 l1 = vec4(((uvec4(q1) >> LANES) & 0xFu) | (((uvec4(b1) >> sl) & 1u) << 4));
                const vec4 h0 = vec4(((uvec4(q0) >> (LANES + 4u)) & 0xFu) | (((uvec4(b0) >> (sl + 1u)) & 1u) << 4));
                const vec4 h1 = vec4(((uvec4(q1) >> (LANES + 4u)) & 0xFu) | (((uvec4(b1) >> (sl + 1u)) & 1u) << 4));
#endif
                const float dl = dm.x * float(sc.x);
                const float dh = dm.x * float(sc.y);
                const float ml = dm.y * float(mn.x);
                const float mh = dm.y * float(mn.y);
                [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                    const uint e = b_base + col * pc.b_col + xo;
                    const vec4 xl0 = load_x(e);
                    const vec4 xl1 = load_x(e + 4u);
                    const vec4 xh0 = load_x(e + 32u);
                    const vec4 xh1 = load_x(e + 36u);
                    const float sl = dot(l0, xl0) + dot(l1, xl1);
                    const float sh2 = dot(h0, xh0) + dot(h1, xh1);
                    const float xs_l = dot(xl0 + xl1, vec4(1.0));
                    const float xs_h = dot(xh0 + xh1, vec4(1.0));
                    const float s = dl * sl - ml * xs_l + dh * sh2 - mh * xs_h;
                    acc[col * NROWS + r] += valid ? s : 0.0;
                }
#endif
            }
#elif defined(Q2K) || defined(Q3K)
            const uint n = t >> 3;
            const uint l0 = 4u * (t & 7u);
            const uint hsub = l0 >> 4;
            // The unit's activation words (4 codes of each group j) and, for Q2_K's mins, their code sums: loaded
            // once for every row.
            int xv[NCOLS * 4u];
#if defined(Q2K)
            int xs[NCOLS * 4u];
#endif
            [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                [[unroll]] for (uint j = 0; j < 4u; ++j) {
                    xv[col * 4u + j] = int(bq[b_base + col * pc.b_col + blk * Q8K_WORDS + Q8K_CODES + 32u * n + 8u * j + (t & 7u)]);
#if defined(Q2K)
                    xs[col * 4u + j] = dotPacked4x8EXT(xv[col * 4u + j], 0x01010101);
#endif
                }
            }
            [[unroll]] for (uint r = 0; r < NROWS; ++r) {
                const uint bw = rbase[r] + blk * BLOCK_WORDS;
#if defined(Q2K)
                // [scales 16 bytes] [qs 64 bytes] [d] [dmin]: 84-byte blocks on 32-bit boundaries (the host checks
                // the offset and strides), so every field is read as whole words.
                const uint q = a32[(bw + 8u + 16u * n + l0 / 2u) >> 1];
                vec2 dm;
                const uvec2 sw = q2k_header(bw, n, dm);
#else
                // [hmask 32 bytes] [qs 64 bytes] [scales 12 bytes] [d]
                const uint oq = bw + 16u + 16u * n + l0 / 2u;
                const uint q = uint(a[oq]) | (uint(a[oq + 1u]) << 16);
                const uint oh = bw + l0 / 2u;
                const uint hm = uint(a[oh]) | (uint(a[oh + 1u]) << 16);
                const uint s0 = uint(a[bw + 48u]) | (uint(a[bw + 49u]) << 16);
                const uint s1 = uint(a[bw + 50u]) | (uint(a[bw + 51u]) << 16);
                const uint s2 = uint(a[bw + 52u]) | (uint(a[bw + 53u]) << 16);
                const float dd = dq_k_half(uint(a[bw + 54u]));
#endif
                int isc[NCOLS];
                int imn[NCOLS];
                [[unroll]] for (uint col = 0; col < NCOLS; ++col) { isc[col] = 0; imn[col] = 0; }
                [[unroll]] for (uint j = 0; j < 4u; ++j) {
                    const uint c = (q >> (2u * j)) & 0x03030303u;
#if defined(Q2K)
                    const uint sb = q2k_scale_byte(sw, j, hsub);
                    const int sc = int(sb & 0xFu);
                    const int mn = int(sb >> 4);
                    const int qs = int(c);
#else
                    // Code + 4 where the high-mask bit is set, then - 4 lane by lane as signed bytes (-4..3).
                    const uint u = c | (((hm >> (4u * n + j)) & 0x01010101u) << 2);
                    const int qs = int(((u | 0x80808080u) - 0x04040404u) ^ 0x80808080u);
                    const int sc = q3k_scale(8u * n + 2u * j + hsub, s0, s1, s2);
#endif
                    [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                        isc[col] += sc * dotPacked4x8EXT(qs, xv[col * 4u + j]);
#if defined(Q2K)
                        imn[col] += mn * xs[col * 4u + j];
#endif
                    }
                }
                [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                    const float dx = uintBitsToFloat(bq[b_base + col * pc.b_col + blk * Q8K_WORDS]);
#if defined(Q2K)
                    acc[col * NROWS + r] += valid ? dx * (dm.x * float(isc[col]) - dm.y * float(imn[col])) : 0.0;
#else
                    acc[col * NROWS + r] += valid ? dx * dd * float(isc[col]) : 0.0;
#endif
                }
            }
#elif defined(IQ4XS)
            const uint ib = t >> 1;
            const uint hh = t & 1u;
            [[unroll]] for (uint r = 0; r < NROWS; ++r) {
                // [d] [scales_h] [scales_l 4 bytes] [qs 128 bytes]
                const uint bw = rbase[r] + blk * BLOCK_WORDS;
                const float dd = dq_k_half(uint(a[bw]));
                const uint sl = (uint(a[bw + 2u + (ib >> 2)]) >> (8u * ((ib >> 1) & 1u) + 4u * (ib & 1u))) & 0xFu;
                const uint sh = (uint(a[bw + 1u]) >> (2u * ib)) & 3u;
                const int ls = int(sl | (sh << 4)) - 32;
                const uint oq = bw + 4u + 8u * ib + 4u * hh;
                const uint q0 = uint(a[oq]) | (uint(a[oq + 1u]) << 16);
                const uint q1 = uint(a[oq + 2u]) | (uint(a[oq + 3u]) << 16);
                const int lo0 = int(lut_bytes(q0 & 0x0F0F0F0Fu));
                const int lo1 = int(lut_bytes(q1 & 0x0F0F0F0Fu));
                const int hi0 = int(lut_bytes((q0 >> 4) & 0x0F0F0F0Fu));
                const int hi1 = int(lut_bytes((q1 >> 4) & 0x0F0F0F0Fu));
                [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                    const uint xb = b_base + col * pc.b_col + blk * Q8K_WORDS;
                    const uint xw = xb + Q8K_CODES + 8u * ib + 2u * hh;
                    const int s = dotPacked4x8EXT(lo0, int(bq[xw])) + dotPacked4x8EXT(lo1, int(bq[xw + 1u]))
                                + dotPacked4x8EXT(hi0, int(bq[xw + 4u])) + dotPacked4x8EXT(hi1, int(bq[xw + 5u]));
                    const float dx = uintBitsToFloat(bq[xb]);
                    acc[col * NROWS + r] += valid ? dx * dd * float(ls * s) : 0.0;
                }
            }
#else
            const uint h = t >> 3;
            const uint l0 = 4u * (t & 7u);
            const uint xo = blk * QK_K + 128u * h + l0;
            [[unroll]] for (uint r = 0; r < NROWS; ++r) {
                const uint bw = rbase[r] + blk * BLOCK_WORDS;
                const uint o0 = bw + 32u * h + l0 / 2u;     // ql bytes 64h + l0 .. +3
                const uint ql0 = uint(a[o0]) | (uint(a[o0 + 1u]) << 16);
                const uint ql1 = uint(a[o0 + 16u]) | (uint(a[o0 + 17u]) << 16); // ql bytes 64h + 32 + l0 ..
                const uint oh = bw + 64u + 16u * h + l0 / 2u; // qh bytes 128 + 32h + l0 .. +3
                const uint qh = uint(a[oh]) | (uint(a[oh + 1u]) << 16);
                // scales[8h + 2k + l0 / 16] for k = 0..3: bytes 192 + 8h + (l0 >> 4) + {0, 2, 4, 6}.
                const uint so = bw + 96u + 4u * h;         // byte 192 + 8h
                const uint sw0 = uint(a[so]) | (uint(a[so + 1u]) << 16);
                const uint sw1 = uint(a[so + 2u]) | (uint(a[so + 3u]) << 16);
                const uint sb = 8u * (l0 >> 4);
                const ivec4 scs = ivec4(uvec4(sw0 >> sb, sw0 >> (sb + 16u), sw1 >> sb, sw1 >> (sb + 16u)) << 24) >> 24;
                const float dd = dq_k_half(uint(a[bw + 104u]));
#if defined(INT_DOT)
                int isum[NCOLS];
                [[unroll]] for (uint col = 0; col < NCOLS; ++col) { isum[col] = 0; }
                [[unroll]] for (uint k = 0; k < 4u; ++k) {
                    const uint ql = (k & 1u) != 0u ? ql1 : ql0;
                    const uint q = ((ql >> (4u * (k >> 1))) & 0x0F0F0F0Fu) | (((qh >> (2u * k)) & 0x03030303u) << 4);
                    // Bytes q (0..63) to q - 32 as int8, lane by lane without borrows between lanes.
                    const int qs = int(((q | 0x80808080u) - 0x20202020u) ^ 0x80808080u);
                    [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                        const uint xw = b_base + col * pc.b_col + blk * Q8K_WORDS + Q8K_CODES + 32u * h + 8u * k + (t & 7u);
                        isum[col] += scs[k] * dotPacked4x8EXT(qs, int(bq[xw]));
                    }
                }
                [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                    const float dx = uintBitsToFloat(bq[b_base + col * pc.b_col + blk * Q8K_WORDS]);
                    acc[col * NROWS + r] += valid ? dx * dd * float(isum[col]) : 0.0;
                }
#else
                [[unroll]] for (uint k = 0; k < 4u; ++k) {
                    const uint ql = (k & 1u) != 0u ? ql1 : ql0;
                    const uvec4 lo = (uvec4(ql) >> (LANES + 4u * (k >> 1))) & 0xFu;
                    const uvec4 hb = (uvec4(qh) >> (LANES + 2u * k)) & 3u;
                    const vec4 q = vec4(ivec4(lo | (hb << 4)) - 32);
                    const float ds = dd * float(scs[k]);
                    [[unroll]] for (uint col = 0; col < NCOLS; ++col) {
                        const vec4 x = load_x(b_base + col * pc.b_col + xo + 32u * k);
                        acc[col * NROWS + r] += valid ? ds * dot(q, x) : 0.0;
                    }
                }
#endif
            }
#endif
        }
    }

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
