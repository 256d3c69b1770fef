#version 450
// ggml_flash_attn_ext for many query rows (prompt processing) on NV_cooperative_matrix2: workgroup-scope matrices
// whose Q, K, V, mask and output tiles move through tensor layouts (the driver stages them), scores, probabilities
// and the output accumulator kept in matrices from the first key to the last, the online softmax (running max M
// and sum L per row, f32) done with row reductions and per-element operations. F16 K and V of head size D (a
// multiple of 16 up to 128), or Q8_0 / Q4_0 K and V (KV_Q8_0 / KV_Q4_0: decoded to f16 as the tiles load, head
// sizes multiples of 32); src/ops/flash_attn/coopmat.rs decides where it runs.
//
// One workgroup of 128 invocations per (block of BR = 64 rows, KV head, sequence). Rows are the query rows of every
// Q head sharing the KV head, row = iq1 * ratio + g (ratio divides BR, so a block is whole query rows), which makes
// Q, the mask and the output three-dimensional tensors [iq1][g][column]. Or, with GQA, one Q head per block (the
// host's default, RATIO 1): the workgroup's "KV head" is then a Q head and its K and V rows those of KV head
// Q head / KV_GROUP. Q is scaled once (f32) and rounded to f16.
// Per tile of BC keys from c0:
//   1. the tile's mask flag (fa_mask_flags.comp, one per block and tile): 0 = no row of the block sees a key of
//      the tile (causal masks: the tile is skipped), 2 = every entry is 0 (no mask to add), 1 = load the mask;
//   2. S = Q K^T (f16 operands, f32 accumulators; softcap: c tanh(S)); S += slope x mask; keys past n_kv -inf;
//   3. Mnew = max(M, rowmax S); P = exp(S - Mnew); alpha = exp(M - Mnew); L = alpha L + rowsum P (M starts at a
//      finite floor rather than -inf, so rows that have seen no key give exp(-inf) = 0, never NaN);
//   4. O = alpha O + P V (P as f16, as ggml-vulkan and the KHR kernel have it).
// At the end the sinks join L (a logit with no value row), O / L is stored. K and V tiles wholly inside n_kv take
// unclamped layouts (16-byte aligned rows, which the host checks); the last partial tile clamps to zeros. Where
// n_kv is a multiple of BC (llama.cpp's caches are) the clamped path is not compiled at all (WHOLE), and mask tiles
// are read without clamping where the host finds that safe (MASK_MODE): both measured on the H200 (NOTES.md).
//
// M, L and alpha are kept as BR x BC matrices with each row's value in every column (row reductions give that
// shape); alpha and 1 / L reach O's BR x D shape through a second row reduction of equal values.
//
// SPLIT (token generation and small batches, flash_attn_cm2s_d*): the same tile loop over one split of the keys,
// [split * chunk, split * chunk + chunk), for blocks of BR rows (a constant: 16 or 32 rows hold a token's Q heads
// of one KV head with little waste) and tiles of BC keys. Workgroup z is sequence x splits + split. Instead of the
// output it writes flash_attn_decode.comp's split records [M, L, O (not divided by L)] for flash_attn_reduce.comp,
// which adds the sinks and normalises. No mask flags: the mask entries are read per element of the score tile;
// V's tile is loaded together with K's, before the scores.
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#if defined(KV_Q8_0) || defined(KV_Q4_0)
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_buffer_reference : require
#endif
#include "common.glsl"

#ifndef D
#error "flash_attn_cm2.comp: define D (head size)"
#endif
#ifdef SPLIT
// Rows per workgroup and keys per tile (ops::flash_attn::Cm2Split: the host checks the driver's shapes for both).
layout(constant_id = 4) const uint BR = 16;
layout(constant_id = 5) const uint BC = 64;
#else
// Rows per workgroup (ops::flash_attn::CM_ROWS: the host sizes the grid with it).
#define BR 64u
// Keys per tile (ops::flash_attn::CM2_KEYS: the host sizes the flag array with it). 128 measured 2x slower on the H200.
#define BC 64u
#endif

// 128 invocations (ops::flash_attn::CM2_WG: the host checks the driver's shapes for it).
layout(local_size_x = 128, local_size_y = 1, local_size_z = 1) in;
// Q heads per KV head (divides BR): a constant, so that the driver's addressing of the three-dimensional Q, mask
// and output tiles divides by constants (with the ratio in a push constant the mask loads cost more than the rest).
layout(constant_id = 0) const uint RATIO = 1;
// Every tile of keys is whole (n_kv a multiple of BC): K and V load without clamping and no key is past the end.
// The clamped loads and the bounds pass cost 15-25% of the kernel's time even where they never run (NOTES.md).
layout(constant_id = 1) const bool WHOLE = false;
// How mask tiles are read: 0 through the clamped three-dimensional layout (-inf past the ends); 1 directly through a
// two-dimensional layout without clamping (one Q head per KV head, whole tiles, mask rows on 16-byte boundaries and
// every block's rows inside the mask); 2 directly for blocks whose rows all lie inside the mask, clamped for the
// last block. A clamped mask load took half the kernel's time where every tile loads one.
layout(constant_id = 2) const uint MASK_MODE = 0;
// Q heads per K/V head beyond RATIO: workgroups of KV_GROUP consecutive heads read the same K and V rows.
layout(constant_id = 3) const uint KV_GROUP = 1;
// Prompts: workgroups take their (block, head) heads first and the last block first, so that under a causal mask
// (later blocks see more keys) the longest workgroups start first and the dispatch ends on the shortest ones.
layout(constant_id = 6) const bool DESCEND = false;
// Query rows per block.
const uint QB = BR / RATIO;
// The running maximum's floor: a row that has seen no key yet keeps this finite value instead of -inf, so that
// S - M and M_old - M_new are -inf (exp: 0) rather than NaN, and nothing else changes (any real score is larger).
#define M_FLOOR (-3.402823e38)

layout(binding = 0) readonly buffer Q { float q[]; };
#if defined(KV_Q8_0) || defined(KV_Q4_0)
// K and V of one block-quantized type (32 values a block, ggml's layout): their tiles go through tensor layouts of
// 1 x 32 blocks and are decoded to f16 per element as they load (ggml's dequantization: d x code). Offsets and row
// strides in blocks (the host checks that they are whole blocks).
#if defined(KV_Q8_0)
#define KV_WORDS 17u
#else
#define KV_WORDS 9u
#endif
struct KvBlock { uint16_t w[KV_WORDS]; };
layout(binding = 1) readonly buffer K { KvBlock k[]; };
layout(binding = 2) readonly buffer V { KvBlock v[]; };
layout(buffer_reference, std430, buffer_reference_align = 2) buffer KvRef { KvBlock blk; };
float16_t kv_decode(const in KvRef r, const in uint block_coord[2], const in uint in_block[2]) {
    const uint i = in_block[1];
    const float d = float(uint16BitsToHalf(r.blk.w[0]));
#if defined(KV_Q8_0)
    const uint b = (uint(r.blk.w[1u + (i >> 1)]) >> (8u * (i & 1u))) & 0xFFu;
    return float16_t(float(int(b << 24) >> 24) * d);
#else
    // Byte j = i % 16 holds values j (low nibble) and j + 16 (high nibble), each code minus 8.
    const uint j = i & 15u;
    const uint b = (uint(r.blk.w[1u + (j >> 1)]) >> (8u * (j & 1u))) & 0xFFu;
    return float16_t(float(int((i < 16u ? b : b >> 4) & 0xFu) - 8) * d);
#endif
}
// Layout strides and bases in blocks; loads decode.
#define KV_STRIDE(s) ((s) / KV_WORDS)
#define KV_STRIDE_C(s) ((s) / KV_WORDS)
#define KV_BASE(x) ((x) / KV_WORDS)
#define KV_DECODE , kv_decode
#define KV_BLOCKS(l) l = setTensorLayoutBlockSizeNV(l, 1, 32)
#else
layout(binding = 1) readonly buffer K { float16_t k[]; };
layout(binding = 2) readonly buffer V { float16_t v[]; };
// F16 rows: unclamped layouts take strides and bases masked to multiples of 8 halves (16-byte rows the compiler
// can see; the host guarantees them, so the masks clear nothing).
#define KV_STRIDE(s) ((s) & ~7u)
#define KV_STRIDE_C(s) (s)
#define KV_BASE(x) ((x) & ~7u)
#define KV_DECODE
#define KV_BLOCKS(l)
#endif
layout(binding = 3) readonly buffer M { float16_t mask[]; };
layout(binding = 4) readonly buffer S { float sinks[]; };
layout(binding = 5) writeonly buffer Dst { float d[]; };
// Per (block, tile): 0 skip, 1 mask, 2 no mask (fa_mask_flags.comp; absent without a mask).
layout(binding = 6) readonly buffer F { uint flags[]; };
#ifndef SPLIT
// The output also as packed f16 (EMIT_F16): the copy the product after the attention reads (narrow_f16.comp's
// layout: dst's elements in dst's order from the binding's first half, dst contiguous; the host checks both).
layout(constant_id = 7) const bool EMIT_F16 = false;
layout(binding = 7) writeonly buffer Dst16 { float16_t d16[]; };
#endif

#include "fa_push.glsl"

// Per row of the block: its ALiBi slope and its head's sink logit.
shared float slope_r[BR];
shared float sink_r[BR];

#define SCOPE gl_ScopeWorkgroup
#define MAT_S coopmat<float, SCOPE, BR, BC, gl_MatrixUseAccumulator>
#define MAT_O coopmat<float, SCOPE, BR, D, gl_MatrixUseAccumulator>

float max2(const in float a, const in float b) { return max(a, b); }
float add2(const in float a, const in float b) { return a + b; }
float capped(const in uint r, const in uint c, const in float s, const in float cap) {
    const float e = exp(-2.0 * abs(s));
    return cap * sign(s) * (1.0 - e) / (1.0 + e);
}
float masked(const in uint r, const in uint c, const in float s, const in float m) { return s + m; }
float masked_sloped(const in uint r, const in uint c, const in float s, const in float m) {
    return s + slope_r[r] * m;
}
// Keys from `first` on (past n_kv) drop out.
float bounded(const in uint r, const in uint c, const in float s, const in uint first) {
    return c >= first ? NEG_INF : s;
}
#ifdef SPLIT
// The mask entry of block row r (query r / RATIO of the block, head r % RATIO) and tile key c, times the row's ALiBi
// slope (1 without ALiBi), added to score s. `base`: the mask word of the block's first query, first head and the
// tile's first key; `m_sg`: the stride between heads (0 where they share rows); rows from `queries` on and keys from
// `keys` on are past the ends (left as they are: the first are never stored, the second drop out in `bounded`).
float masked_split(const in uint r, const in uint c, const in float s, const in uint base, const in uint m_sg,
                   const in uint queries, const in uint keys) {
    const uint i1 = r / RATIO;
    if (i1 >= queries || c >= keys) { return s; }
    return s + slope_r[r] * float(mask[base + i1 * pc.m_s1 + (r % RATIO) * m_sg + c]);
}
// Row r's split record starts at rec0 + (query * n_head + head) * (D + 2) (flash_attn_reduce.comp's layout):
// [M, L, O[D]]. Rows from `queries` on are past the last query and store nothing.
uint record_of(const in uint r, const in uint rec0, const in uint n_head) {
    return rec0 + ((r / RATIO) * n_head + r % RATIO) * (D + 2u);
}
float store_out(const in uint r, const in uint c, const in float o, const in uint rec0, const in uint n_head,
                const in uint queries) {
    if (r / RATIO < queries) { d[record_of(r, rec0, n_head) + 2u + c] = o; }
    return o;
}
// Column 0 of a matrix that holds each row's value in every column, to word `at` of the row's record.
float store_stat(const in uint r, const in uint c, const in float x, const in uint rec0, const in uint n_head,
                 const in uint queries, const in uint at) {
    if (c == 0u && r / RATIO < queries) { d[record_of(r, rec0, n_head) + at] = x; }
    return x;
}
#endif
float larger(const in uint r, const in uint c, const in float a, const in float b) { return max(a, b); }
float exp_of(const in uint r, const in uint c, const in float x) { return exp(x); }
// The factor that turns a row's accumulated output into the result: 1 / L, with the sink logit of the row's head
// joining L first where there are sinks (the sink's share has no value row). Rows from `valid` on are past the end.
float out_factor(const in uint r, const in uint c, const in float l, const in float m, const in uint valid) {
    float a = 1.0;
    float ll = l;
    if ((pc.flags & FLAG_SINKS) != 0u && r < valid) {
        const float s = sink_r[r];
        float vs = 1.0;
        if (s > m) {
            a = exp(m - s);
        } else {
            vs = exp(s - m);
        }
        ll = l * a + vs;
    }
    return ll == 0.0 ? 0.0 : a / ll;
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
#ifdef SPLIT
    const uint rb = gl_WorkGroupID.x;
    const uint ih = gl_WorkGroupID.y;
    const uint splits = (pc.n_kv + pc.chunk - 1u) / pc.chunk;
    const uint iq3 = gl_WorkGroupID.z / splits;
    const uint split = gl_WorkGroupID.z % splits;
    const uint kv0 = split * pc.chunk;
    const uint kv1 = min(kv0 + pc.chunk, pc.n_kv);
#else
    const uint lin = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    const uint rb = DESCEND ? gl_NumWorkGroups.x - 1u - lin / gl_NumWorkGroups.y : gl_WorkGroupID.x;
    const uint ih = DESCEND ? lin % gl_NumWorkGroups.y : gl_WorkGroupID.y;
    const uint iq3 = gl_WorkGroupID.z;
    const uint kv0 = 0u;
    const uint kv1 = pc.n_kv;
#endif
    const uint rows = pc.n_q * RATIO;
    const uint r0 = rb * BR;
    const bool has_mask = (pc.flags & FLAG_MASK) != 0u;
    const bool alibi = (pc.flags & FLAG_ALIBI) != 0u;

    if (tid < BR) {
        const uint row = r0 + tid;
        float slope = 1.0;
        float sink = 0.0;
        if (row < rows) {
            const uint iq2 = ih * RATIO + row % RATIO;
            if (alibi) {
                const uint nhl2 = pc.flags >> 16;
                slope = iq2 < nhl2 ? exp2(pc.e0 * float(iq2 + 1u)) : exp2(pc.e1 * float(2u * (iq2 - nhl2) + 1u));
            }
            if ((pc.flags & FLAG_SINKS) != 0u) { sink = sinks[pc.s_off + iq2]; }
        }
        slope_r[tid] = slope;
        sink_r[tid] = sink;
    }
    barrier();

    // Q [iq1][g][column] (rows past the end read 0), scaled, to f16.
    const uint qr0 = rb * QB;
    // A block of one Q head whose rows all exist: Q in and the output out through two-dimensional layouts without
    // clamping (the clamped three-dimensional ones check every element).
    const bool inside = RATIO == 1u && qr0 + BR <= pc.n_q;
    coopmat<float, SCOPE, BR, D, gl_MatrixUseAccumulator> qf;
    if (inside) {
        tensorLayoutNV<2> lq2 = createTensorLayoutNV(2);
        lq2 = setTensorLayoutDimensionNV(lq2, pc.n_q, D);
        lq2 = setTensorLayoutStrideNV(lq2, pc.q_s1, 1);
        coopMatLoadTensorNV(qf, q, pc.q_off + ih * pc.q_s2 + iq3 * pc.q_s3, sliceTensorLayoutNV(lq2, qr0, BR, 0, D));
    } else {
        tensorLayoutNV<3, gl_CooperativeMatrixClampModeConstantNV> lq =
            createTensorLayoutNV(3, gl_CooperativeMatrixClampModeConstantNV);
        lq = setTensorLayoutDimensionNV(lq, pc.n_q, RATIO, D);
        lq = setTensorLayoutStrideNV(lq, pc.q_s1, pc.q_s2, 1);
        coopMatLoadTensorNV(qf, q, pc.q_off + ih * RATIO * pc.q_s2 + iq3 * pc.q_s3,
                            sliceTensorLayoutNV(lq, qr0, QB, 0, RATIO, 0, D));
    }
    qf = qf * pc.scale;
    const coopmat<float16_t, SCOPE, BR, D, gl_MatrixUseA> qa = coopmat<float16_t, SCOPE, BR, D, gl_MatrixUseA>(qf);

    // K and V rows of this head and sequence: unclamped for whole tiles (offsets and strides multiples of 8 halves,
    // masked so that the compiler sees it), clamped to zeros for the last partial tile.
    tensorLayoutNV<2> lk = createTensorLayoutNV(2);
    KV_BLOCKS(lk);
    lk = setTensorLayoutDimensionNV(lk, pc.n_kv, D);
    lk = setTensorLayoutStrideNV(lk, KV_STRIDE(pc.k_s1), 1);
    tensorLayoutNV<2> lv = createTensorLayoutNV(2);
    KV_BLOCKS(lv);
    lv = setTensorLayoutDimensionNV(lv, pc.n_kv, D);
    lv = setTensorLayoutStrideNV(lv, KV_STRIDE(pc.v_s1), 1);
    tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> lkc =
        createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    KV_BLOCKS(lkc);
    lkc = setTensorLayoutDimensionNV(lkc, pc.n_kv, D);
    lkc = setTensorLayoutStrideNV(lkc, KV_STRIDE_C(pc.k_s1), 1);
    tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> lvc =
        createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    KV_BLOCKS(lvc);
    lvc = setTensorLayoutDimensionNV(lvc, pc.n_kv, D);
    lvc = setTensorLayoutStrideNV(lvc, KV_STRIDE_C(pc.v_s1), 1);
    tensorViewNV<2, false, 1, 0> transposed = createTensorViewNV(2, false, 1, 0);
    const uint ikv = ih / KV_GROUP;
    const uint k_base = KV_BASE(pc.k_off + ikv * pc.k_s2 + iq3 * pc.k_s3);
    const uint v_base = KV_BASE(pc.v_off + ikv * pc.v_s2 + iq3 * pc.v_s3);

    // The mask [iq1][g][key]: one row per query row, the same for every head (m_ne2 = 1: stride 0) or one per head
    // (m_ne2 = n_head); -inf past n_kv and past the last query row.
    const uint m_ne2 = pc.m_ne23 & 0xFFFFu;
    const uint m_ne3 = pc.m_ne23 >> 16;
    const uint m_sg = m_ne2 == 1u ? 0u : pc.m_s2;
    tensorLayoutNV<3, gl_CooperativeMatrixClampModeConstantNV> lm =
        createTensorLayoutNV(3, gl_CooperativeMatrixClampModeConstantNV);
    lm = setTensorLayoutDimensionNV(lm, pc.n_q, RATIO, pc.n_kv);
    lm = setTensorLayoutStrideNV(lm, pc.m_s1, m_sg, 1);
    lm = setTensorLayoutClampValueNV(lm, 0xFC00u);
    const uint m_base = pc.m_off + ih * RATIO * m_sg + (iq3 % m_ne3) * pc.m_s3;
    const uint n_tiles = (pc.n_kv + BC - 1u) / BC;
    // The direct mask layout: [row][key], base and stride multiples of 8 words (the host checks; masked so that the
    // compiler sees it).
    tensorLayoutNV<2> lmd = createTensorLayoutNV(2);
    lmd = setTensorLayoutDimensionNV(lmd, pc.n_q, pc.n_kv);
    lmd = setTensorLayoutStrideNV(lmd, pc.m_s1 & ~7u, 1);
    const uint md_base = m_base & ~7u;
    const bool direct_mask = MASK_MODE == 1u || (MASK_MODE == 2u && qr0 + QB <= pc.n_q);

    MAT_O o = MAT_O(0.0);
    MAT_S m_run = MAT_S(M_FLOOR);
    MAT_S l_run = MAT_S(0.0);

    for (uint c0 = kv0, t = 0u; c0 < kv1; c0 += BC, ++t) {
        // 1. The tile's flag (the same word for the whole workgroup).
#ifdef SPLIT
        const uint flag = has_mask ? 1u : 2u;
#else
        const uint flag = has_mask ? flags[pc.chunk + rb * n_tiles + t] : 2u;
        if (flag == 0u) { continue; }
#endif
        const bool whole = WHOLE || c0 + BC <= pc.n_kv;
#ifdef SPLIT
        coopmat<float16_t, SCOPE, BC, D, gl_MatrixUseB> vt;
        if (whole) {
            coopMatLoadTensorNV(vt, v, v_base, sliceTensorLayoutNV(lv, c0, BC, 0, D) KV_DECODE);
        } else {
            coopMatLoadTensorNV(vt, v, v_base, sliceTensorLayoutNV(lvc, c0, BC, 0, D) KV_DECODE);
        }
#endif

        // 2. Scores.
        coopmat<float16_t, SCOPE, D, BC, gl_MatrixUseB> kt;
        if (whole) {
            coopMatLoadTensorNV(kt, k, k_base, sliceTensorLayoutNV(lk, c0, BC, 0, D), transposed KV_DECODE);
        } else {
            coopMatLoadTensorNV(kt, k, k_base, sliceTensorLayoutNV(lkc, c0, BC, 0, D), transposed KV_DECODE);
        }
        MAT_S s = coopMatMulAdd(qa, kt, MAT_S(0.0));
        if (pc.softcap != 0.0) { coopMatPerElementNV(s, s, capped, pc.softcap); }
#ifdef SPLIT
        if (flag == 1u) {
            coopMatPerElementNV(s, s, masked_split, m_base + qr0 * pc.m_s1 + c0, m_sg, pc.n_q - min(pc.n_q, qr0),
                                pc.n_kv - c0);
        }
#else
        if (flag == 1u) {
            coopmat<float16_t, SCOPE, BR, BC, gl_MatrixUseAccumulator> mh;
            if (direct_mask) {
                coopMatLoadTensorNV(mh, mask, md_base, sliceTensorLayoutNV(lmd, qr0, BR, c0, BC));
            } else {
                coopMatLoadTensorNV(mh, mask, m_base, sliceTensorLayoutNV(lm, qr0, QB, 0, RATIO, c0, BC));
            }
            if (alibi) {
                coopMatPerElementNV(s, s, masked_sloped, MAT_S(mh));
            } else {
                coopMatPerElementNV(s, s, masked, MAT_S(mh));
            }
        }
#endif
        if (!whole) { coopMatPerElementNV(s, s, bounded, pc.n_kv - c0); }


        // 3. Online softmax (M never below M_FLOOR: see there).
        MAT_S m_new;
        coopMatReduceNV(m_new, s, gl_CooperativeMatrixReduceRowNV, max2);
        coopMatPerElementNV(m_new, m_new, larger, m_run);
        MAT_S p = s - m_new;
        coopMatPerElementNV(p, p, exp_of);
        MAT_S alpha = m_run - m_new;
        coopMatPerElementNV(alpha, alpha, exp_of);
        MAT_S sum;
        coopMatReduceNV(sum, p, gl_CooperativeMatrixReduceRowNV, add2);
        l_run = l_run * alpha + sum;
        m_run = m_new;

        // 4. O = alpha O + P V.
        MAT_O alpha_o;
        coopMatReduceNV(alpha_o, alpha, gl_CooperativeMatrixReduceRowNV, max2);
        o = o * alpha_o;
        const coopmat<float16_t, SCOPE, BR, BC, gl_MatrixUseA> pa = coopmat<float16_t, SCOPE, BR, BC, gl_MatrixUseA>(p);
#ifndef SPLIT
        coopmat<float16_t, SCOPE, BC, D, gl_MatrixUseB> vt;
        if (whole) {
            coopMatLoadTensorNV(vt, v, v_base, sliceTensorLayoutNV(lv, c0, BC, 0, D) KV_DECODE);
        } else {
            coopMatLoadTensorNV(vt, v, v_base, sliceTensorLayoutNV(lvc, c0, BC, 0, D) KV_DECODE);
        }
#endif
        o = coopMatMulAdd(pa, vt, o);
    }

#ifdef SPLIT
    // Records of split `split`: rows (iq3, query, head) in flash_attn_reduce.comp's order, n_head heads a query.
    const uint n_head = pc.ratio * pc.n_head_kv;
    const uint total = pc.n_q * n_head * (gl_NumWorkGroups.z / splits);
    const uint rec0 = pc.d_off + (split * total + (iq3 * pc.n_q + qr0) * n_head + ih * RATIO) * (D + 2u);
    const uint queries = pc.n_q - min(pc.n_q, qr0);
    coopMatPerElementNV(o, o, store_out, rec0, n_head, queries);
    coopMatPerElementNV(m_run, m_run, store_stat, rec0, n_head, queries, 0u);
    coopMatPerElementNV(l_run, l_run, store_stat, rec0, n_head, queries, 1u);
#else

    MAT_S f;
    coopMatPerElementNV(f, l_run, out_factor, m_run, rows - min(rows, r0));
    MAT_O f_o;
    coopMatReduceNV(f_o, f, gl_CooperativeMatrixReduceRowNV, max2);
    o = o * f_o;

    // dst [iq1][g][column]: row iq1 * d_s2, head ih * ratio + g at d_s1; rows past the end are dropped. The f16
    // copy (EMIT_F16) at the same element offsets from its binding's first half, rounded to nearest even as
    // narrow_f16.comp rounds.
    const uint d_head = ih * RATIO * pc.d_s1 + iq3 * pc.d_s3;
    if (inside) {
        tensorLayoutNV<2> ld2 = createTensorLayoutNV(2);
        ld2 = setTensorLayoutDimensionNV(ld2, pc.n_q, D);
        ld2 = setTensorLayoutStrideNV(ld2, pc.d_s2, 1);
        coopMatStoreTensorNV(o, d, pc.d_off + d_head, sliceTensorLayoutNV(ld2, qr0, BR, 0, D));
        if (EMIT_F16) {
            const coopmat<float16_t, SCOPE, BR, D, gl_MatrixUseAccumulator> oh =
                coopmat<float16_t, SCOPE, BR, D, gl_MatrixUseAccumulator>(o);
            coopMatStoreTensorNV(oh, d16, d_head, sliceTensorLayoutNV(ld2, qr0, BR, 0, D));
        }
    } else {
        tensorLayoutNV<3, gl_CooperativeMatrixClampModeConstantNV> ld =
            createTensorLayoutNV(3, gl_CooperativeMatrixClampModeConstantNV);
        ld = setTensorLayoutDimensionNV(ld, pc.n_q, RATIO, D);
        ld = setTensorLayoutStrideNV(ld, pc.d_s2, pc.d_s1, 1);
        coopMatStoreTensorNV(o, d, pc.d_off + d_head, sliceTensorLayoutNV(ld, qr0, QB, 0, RATIO, 0, D));
        if (EMIT_F16) {
            const coopmat<float16_t, SCOPE, BR, D, gl_MatrixUseAccumulator> oh =
                coopmat<float16_t, SCOPE, BR, D, gl_MatrixUseAccumulator>(o);
            coopMatStoreTensorNV(oh, d16, d_head, sliceTensorLayoutNV(ld, qr0, QB, 0, RATIO, 0, D));
        }
    }
#endif
}
