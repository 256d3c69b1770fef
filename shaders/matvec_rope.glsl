// Epilogue of the one-column mat-vec kernels (FUSE_ROPE; src/graph/fusion.rs, mat_vec_rope): the product's rows
// go on, in the same dispatch, to what a llama-family attention does next with a token's Q, K and V:
//   ROPE  (flags bit 2): rows seen as heads of `hd` channels, normal-mode pairs (2i, 2i + 1) of the first n_dims
//         channels rotated at the token's position (rope_theta.glsl, the same arithmetic as rope.comp), the rest
//         copied, into a packed F32 output at r_off;
//   CACHE (flags bit 3): every value (the rotated one when ROPE is on) also stored as f16, rounded as SET_ROWS
//         rounds it, at channel row % set_len of cache row idx[row / set_len] (I32 indices, or I64 with bit 1:
//         two words each, in range only with a zero high word); an index outside [0, c_rows) stores nothing.
// The product itself (dst) is still written. A pair's two rows sit in one workgroup (NROWS even, rows of a head
// starting at even rows: hd even), so each invocation reads its partner's sum from shared memory.
// Bit 0 of flags: frequency factors at f_off. Offsets and strides in elements of their buffers.
#include "rope_theta.glsl"
#include "half_bits.glsl"
#include "row_index.glsl"

layout(binding = 3) readonly buffer EpPos { int ep_pos[]; };
layout(binding = 4) readonly buffer EpFf { float ep_ff[]; };
layout(binding = 5) writeonly buffer EpRope { float ep_rope[]; };
layout(binding = 6) readonly buffer EpIdx { uint ep_idx[]; };
layout(binding = 7) writeonly buffer EpCache { uint16_t ep_cache[]; };

// Mirrors ops::matvec_rope::MatVecRopePush: the product's words that one column of one batch needs (the rest of
// MATMUL_PUSH is fixed: n = 1, no batches; matvec_rope_prologue fills `pc` with them), then the epilogue's. 92 bytes:
// within the 128 every device offers.
layout(push_constant) uniform Push {
    uint m; uint k; uint a_off; uint a_row; uint b_off; uint d_off;
    uint hd; uint n_dims; uint flags; uint p_off;
    uint f_off; uint r_off; uint c_off; uint c_s1;
    uint c_rows; uint i_off; uint set_len; float theta_scale;
    float freq_scale; float ext_factor; float attn_factor; float corr0;
    float corr1;
} pe;

// MATMUL_PUSH's fields, as the kernels read them.
struct MatMulPc {
    uint m; uint n; uint k;
    uint a_off; uint a_row; uint a_s2; uint a_s3;
    uint b_off; uint b_col; uint b_s2; uint b_s3;
    uint d_off; uint d_col; uint d_s2; uint d_s3;
    uint ne12; uint r2; uint r3; uint pad0; uint pad1;
};
MatMulPc pc;

// First thing in main().
void matvec_rope_prologue() {
    pc = MatMulPc(pe.m, 1u, pe.k, pe.a_off, pe.a_row, 0u, 0u, pe.b_off, 0u, 0u, 0u, pe.d_off, 0u, 0u, 0u, 1u, 1u, 1u,
                  0u, 0u);
}

shared float ep_val[NROWS];

// Every invocation calls (a barrier inside); `t` is row row0 + tid's sum for tid < NROWS.
void matvec_rope_epilogue(uint row0, float t) {
    const uint tid = gl_LocalInvocationID.x;
    if (tid < NROWS) { ep_val[tid] = t; }
    barrier();
    const uint row = row0 + tid;
    if (tid >= NROWS || row >= pc.m) { return; }
    float y = t;
    if ((pe.flags & 4u) != 0u) {
        const uint i0 = row % pe.hd;
        if (i0 < pe.n_dims) {
            const uint q = i0 / 2u;
            const bool has_ff = (pe.flags & 1u) != 0u;
            const vec2 cs = rope_cos_sin(float(ep_pos[pe.p_off]), float(q), float(q), has_ff,
                                         has_ff ? ep_ff[pe.f_off + q] : 1.0, pe.theta_scale, pe.freq_scale,
                                         pe.ext_factor, pe.attn_factor, pe.corr0, pe.corr1, 1.0);
            const uint first = tid & ~1u;
            const vec2 r = rope_rotate(ep_val[first], ep_val[first + 1u], cs);
            y = (tid & 1u) == 0u ? r.x : r.y;
        }
        ep_rope[pe.r_off + row] = y;
    }
    if ((pe.flags & 8u) != 0u) {
        const bool idx64 = (pe.flags & 2u) != 0u;
        const uint ip = pe.i_off + (row / pe.set_len) * (idx64 ? 2u : 1u);
        const uint slot = ep_idx[ip];
        const bool in_range = row_index_in_range(idx64, slot, idx64 ? ep_idx[ip + 1u] : 0u, pe.c_rows);
        if (in_range) {
            ep_cache[pe.c_off + slot * pe.c_s1 + row % pe.set_len] = uint16_t(float_bits_to_half(floatBitsToUint(y)));
        }
    }
}
