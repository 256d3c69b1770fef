#version 450
// ggml_rope_ext / ggml_rope_multi (and their _back: the sine negated) for F32 or F16 (define X_F16: src0 and dst
// both F16, arithmetic in f32). Each row rotates pairs by theta = pos * theta_scale^q (q the pair's index among
// the rotated channels, optionally divided by a frequency factor) with YaRN interpolation/extrapolation mixing.
// Modes (ggml's GGML_ROPE_TYPE_*):
//   0 normal: pairs (i0, i0 + 1) of channels [n_offs, n_offs + n_dims); other channels copied.
//   2 neox:   pairs (n_offs + q, n_offs + q + n_dims/2); other channels copied.
//   8 mrope, 40 imrope: neox pairs; each q takes one of four positions (t, h, w, e: pos[i2 + k * ne2]) by its
//             sector q % (sum of the sections): contiguous sections (mrope) or interleaved t, h, w (imrope).
//   24 vision: every channel rotated, pairs (q, q + n_dims) for q < n_dims = ne0/2; sections as mrope, but each
//             section's exponent counts from the start of its section (where ggml resets its running theta).
// One thread per pair of channels of a row (ne0/2 pairs a row, rows i1 + ne1 * (i2 + ne2 * i3) one after another),
// 256 a workgroup.
// CACHE (with CACHE_F16 or CACHE_F32): the rope fused with the SET_ROWS that stores its output into a cache
// (src/graph/fusion.rs, rope_set_rows): every value written to dst is also written, converted as set_rows.comp
// converts it, to cache row idx[i2 + ne2 * i3] at channel i0 + ne0 * i1 (the set's source is dst seen as rows of
// ne0 * ne1 values, one per position). An index outside [0, c_rows) writes no cache value, as SET_ROWS.
// SCALED (F32 only): the rope fused with the SCALE of its output (src/graph/fusion.rs, rope_scale; gemma's and
// phi's queries): every value v written to dst also goes, as SCALE computes it (b == 0 ? v * s : fma(v, s, b)), to
// the same element of e (dst's strides, its own offset); with e_apart 0 (the SCALE writes over the rope's output)
// only the scaled value is written, to dst.
#include "common.glsl"
#include "rope_theta.glsl"
#include "row_index.glsl"

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;

#ifdef X_F16
layout(binding = 0) readonly buffer X { uint16_t x[]; };
layout(binding = 3) writeonly buffer D { uint16_t d[]; };
#include "half_bits.glsl"
#define LOAD(i) uintBitsToFloat(half_to_float_bits(uint(x[i])))
#define STORE(i, v) d[i] = uint16_t(float_bits_to_half(floatBitsToUint(v)))
#else
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 3) writeonly buffer D { float d[]; };
#define LOAD(i) x[i]
#define STORE(i, v) d[i] = (v)
#endif
layout(binding = 1) readonly buffer P { int pos[]; };
layout(binding = 2) readonly buffer F { float ff[]; };
#if defined(SCALED) && (defined(CACHE) || defined(X_F16))
#error "SCALED is a variant of the F32 rope without a cache"
#endif
#ifdef SCALED
layout(binding = 4) writeonly buffer E { float e_out[]; };
#endif
#ifdef CACHE
layout(binding = 4) readonly buffer I { uint idx[]; };
#ifdef CACHE_F16
layout(binding = 5) writeonly buffer C { uint16_t cache[]; };
#ifndef X_F16
#include "half_bits.glsl"
#endif
#define CSTORE(i, v) cache[i] = uint16_t(float_bits_to_half(floatBitsToUint(v)))
#else
layout(binding = 5) writeonly buffer C { float cache[]; };
#define CSTORE(i, v) cache[i] = (v)
#endif
#endif

// Mirrors ops::rope::RopePush.
layout(push_constant) uniform Push {
    uint ne0; uint ne1; uint ne2; uint ne3;
    uint n_dims; uint mode; uint has_ff; uint rows;
    uint x_off; uint x_s1; uint x_s2; uint x_s3;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    uint p_off; uint f_off; uint n_offs; float sin_sign;
    float theta_scale; float freq_scale; float ext_factor; float attn_factor;
    float corr0; float corr1; uint sect01; uint sect23;
#ifdef CACHE
    // Mirrors ops::rope::CachePush: cache offset and row stride (cache elements), its rows, the indices' offset
    // (words). Bit 1 of has_ff: I64 indices (two words each, in range only with a zero high word), else I32.
    uint c_off; uint c_s1; uint c_rows; uint i_off;
#endif
#ifdef SCALED
    // Mirrors ops::rope::ScalePush: SCALE's s and b, e's offset (floats), whether dst keeps the unscaled values.
    float s_mul; float s_bias; uint e_off; uint e_apart;
#endif
} pc;

// Write value v of dst element i (and, SCALED, its scaled value).
void put(uint i, float v) {
#ifdef SCALED
    const float sv = pc.s_bias == 0.0 ? v * pc.s_mul : fma(v, pc.s_mul, pc.s_bias);
    if (pc.e_apart != 0u) {
        STORE(i, v);
        e_out[pc.e_off + (i - pc.d_off)] = sv;
    } else {
        STORE(i, sv);
    }
#else
    STORE(i, v);
#endif
}

#define MODE_NORMAL 0u
#define MODE_NEOX 2u
#define MODE_MROPE 8u
#define MODE_VISION 24u
#define MODE_IMROPE 40u

// Position and exponent of pair q under the multi-section modes.
void multi_section(uint q, uint i2, out float p, out float e) {
    const uint s0 = pc.sect01 & 0xFFFFu;
    const uint s1 = pc.sect01 >> 16;
    const uint s2 = pc.sect23 & 0xFFFFu;
    const uint s3 = pc.sect23 >> 16;
    const uint total = s0 + s1 + s2 + s3;
    const uint sector = q % total;
    const uint sec_w = s0 + s1;
    const uint sec_e = sec_w + s2;
    uint k; // 0 t, 1 h, 2 w, 3 e
    if (pc.mode == MODE_IMROPE) {
        if (sector % 3u == 1u && sector < 3u * s1) {
            k = 1u;
        } else if (sector % 3u == 2u && sector < 3u * s2) {
            k = 2u;
        } else if (sector % 3u == 0u && sector < 3u * s0) {
            k = 0u;
        } else {
            k = 3u;
        }
    } else {
        k = sector < s0 ? 0u : (sector < sec_w ? 1u : (sector < sec_e ? 2u : 3u));
    }
    p = float(pos[pc.p_off + i2 + k * pc.ne2]);
    e = float(q);
    if (pc.mode == MODE_VISION) {
        // ggml resets section k's running theta where its sector starts, unless an earlier test of the same
        // sector value (t at 0, then h, w, e) claims that reset; a section never reset counts from q = 0.
        const uint start = k == 0u ? 0u : (k == 1u ? s0 : (k == 2u ? sec_w : sec_e));
        bool reset = true;
        if (k == 1u) { reset = s0 != 0u; }
        if (k == 2u) { reset = sec_w != 0u && sec_w != s0; }
        if (k == 3u) { reset = sec_e != 0u && sec_e != s0 && sec_e != sec_w; }
        if (reset) {
            e = float(sector - start);
        }
    }
}

void main() {
    // One invocation per (row, pair), rows one after another: x + y * numGroups.x runs over rows * ne0 / 2.
    const uint half_row = pc.ne0 / 2u;
    const uint g = gl_GlobalInvocationID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x * 256u;
    const uint row = g / half_row;
    const uint pr = g % half_row;
    if (row >= pc.rows) { return; }
    const uint i1 = row % pc.ne1;
    const uint i2 = (row / pc.ne1) % pc.ne2;
    const uint i3 = row / (pc.ne1 * pc.ne2);
    const uint xb = pc.x_off + i1 * pc.x_s1 + i2 * pc.x_s2 + i3 * pc.x_s3;
    const uint db = pc.d_off + i1 * pc.d_s1 + i2 * pc.d_s2 + i3 * pc.d_s3;
    const uint i0 = 2u * pr;
#ifdef CACHE
    const bool idx64 = (pc.has_ff & 2u) != 0u;
    const uint ip = pc.i_off + (i2 + pc.ne2 * i3) * (idx64 ? 2u : 1u);
    const uint slot = idx[ip];
    const bool cached = row_index_in_range(idx64, slot, idx64 ? idx[ip + 1u] : 0u, pc.c_rows);
    const uint cb = pc.c_off + slot * pc.c_s1 + i1 * pc.ne0;
#endif
    uint q;
    uint ia;
    uint ib;
    if (pc.mode == MODE_VISION) {
        q = pr;
        ia = q;
        ib = q + pc.n_dims;
    } else {
        // Channels [n_offs, n_offs + n_dims) are rotated (ggml_rope_set_offset); the rest are copied.
        if (i0 < pc.n_offs || i0 >= pc.n_offs + pc.n_dims) {
            const float v0 = LOAD(xb + i0);
            const float v1 = LOAD(xb + i0 + 1u);
            put(db + i0, v0);
            put(db + i0 + 1u, v1);
#ifdef CACHE
            if (cached) {
                CSTORE(cb + i0, v0);
                CSTORE(cb + i0 + 1u, v1);
            }
#endif
            return;
        }
        q = pr - pc.n_offs / 2u;
        ia = pc.mode == MODE_NORMAL ? i0 : pc.n_offs + q;
        ib = pc.mode == MODE_NORMAL ? i0 + 1u : pc.n_offs + q + pc.n_dims / 2u;
    }
    float p;
    float e;
    if (pc.mode == MODE_NORMAL || pc.mode == MODE_NEOX) {
        p = float(pos[pc.p_off + i2]);
        e = float(q);
    } else {
        multi_section(q, i2, p, e);
    }
    const bool has_ff = (pc.has_ff & 1u) != 0u;
    const vec2 cs = rope_cos_sin(p, e, float(q), has_ff, has_ff ? ff[pc.f_off + q] : 1.0, pc.theta_scale,
                                 pc.freq_scale, pc.ext_factor, pc.attn_factor, pc.corr0, pc.corr1, pc.sin_sign);
    const vec2 y = rope_rotate(LOAD(xb + ia), LOAD(xb + ib), cs);
    const float ya = y.x;
    const float yb = y.y;
    put(db + ia, ya);
    put(db + ib, yb);
#ifdef CACHE
    if (cached) {
        CSTORE(cb + ia, ya);
        CSTORE(cb + ib, yb);
    }
#endif
}
