#version 450
// LIGHTNING_INDEXER (ggml_lightning_indexer, DeepSeek's sparse-attention indexer):
//   dst[kv, t, s] = sum_h max(q[:, h, t, s] . k[:, 0, kv, s], 0) * w[h, t, s] + mask[kv, t, s % m_ne3]
// K rows of any cache type of kv_row.glsl (dequantized as ggml's to_float does), Q and weights f32, mask f16.
//
// One workgroup per tile of TK keys x TT tokens of one stream, WG = 256 threads as 16 x 16, each thread four
// outputs (keys tx, tx + 16; tokens ty, ty + 16). The K tile is dequantized once into shared memory (rows of D
// values, D the head size rounded up to DC and zero-padded); per head, the Q tile goes through shared memory in
// chunks of DC values and each thread accumulates its four dot products in order (fused multiply-adds), then
// adds max(dot, 0) * w in head order as the CPU does.
// Heads [h0, h1) per dispatch: the first dispatch starts from 0, later ones from the partial sums in dst; the
// last adds the mask. (The host cuts the heads so each thread's loops stay short.)
#include "common.glsl"
#include "kv_row.glsl"

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint D = 128; // head size rounded up to a multiple of DC

#define TK 32u
#define TT 32u
#define DC 32u

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { uint16_t kw[]; };
layout(binding = 2) readonly buffer W { float w[]; };
layout(binding = 3) readonly buffer M { uint16_t mask[]; };
layout(binding = 4) buffer O { float o[]; };

// Mirrors ops::lightning_indexer::IndexerPush. q, w, o in floats; k and mask in 16-bit words.
layout(push_constant) uniform Push {
    uint n_embd; uint n_kv; uint n_tok; uint k_type;
    uint q_off; uint q_s1; uint q_s2; uint q_s3;
    uint k_off; uint k_s2; uint k_s3; uint flags;
    uint w_off; uint w_s1; uint w_s3; uint h0;
    uint m_off; uint m_s1; uint m_s3; uint m_ne3;
    uint o_off; uint o_s1; uint o_s3; uint h1;
} pc;

#define FLAG_FIRST 1u
#define FLAG_LAST 2u

ROW_AT(k_at, kw)

const uint KS = D + 1u;   // padded K row: threads reading one column of different rows hit different banks
const uint QS = DC + 1u;
shared float Ks[TK * KS];
shared float Qs[TT * QS];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint tx = tid % 16u;
    const uint ty = tid / 16u;
    const uint kv0 = gl_WorkGroupID.x * TK;
    const uint t0 = gl_WorkGroupID.y * TT;
    const uint s = gl_WorkGroupID.z;

    for (uint e = tid; e < TK * D; e += 256u) {
        const uint r = e / D;
        const uint c = e % D;
        float v = 0.0;
        if (kv0 + r < pc.n_kv && c < pc.n_embd) {
            v = k_at(pc.k_type, pc.k_off + (kv0 + r) * pc.k_s2 + s * pc.k_s3, c, false);
        }
        Ks[r * KS + c] = v;
    }

    const uint key[2] = uint[2](kv0 + tx, kv0 + tx + 16u);
    const uint tok[2] = uint[2](t0 + ty, t0 + ty + 16u);
    float acc[4];
    [[unroll]] for (uint j = 0u; j < 4u; ++j) {
        acc[j] = 0.0;
        const uint kk = key[j & 1u];
        const uint tt = tok[j >> 1u];
        if ((pc.flags & FLAG_FIRST) == 0u && kk < pc.n_kv && tt < pc.n_tok) {
            acc[j] = o[pc.o_off + kk + tt * pc.o_s1 + s * pc.o_s3];
        }
    }

    for (uint h = pc.h0; h < pc.h1; ++h) {
        float dot[4] = float[4](0.0, 0.0, 0.0, 0.0);
        for (uint c0 = 0u; c0 < D; c0 += DC) {
            barrier();
            for (uint e = tid; e < TT * DC; e += 256u) {
                const uint r = e / DC;
                const uint c = e % DC;
                float v = 0.0;
                if (t0 + r < pc.n_tok && c0 + c < pc.n_embd) {
                    v = q[pc.q_off + c0 + c + h * pc.q_s1 + (t0 + r) * pc.q_s2 + s * pc.q_s3];
                }
                Qs[r * QS + c] = v;
            }
            barrier();
            [[unroll]] for (uint c = 0u; c < DC; ++c) {
                const float q0 = Qs[ty * QS + c];
                const float q1 = Qs[(ty + 16u) * QS + c];
                const float k0 = Ks[tx * KS + c0 + c];
                const float k1 = Ks[(tx + 16u) * KS + c0 + c];
                dot[0] = fma(q0, k0, dot[0]);
                dot[1] = fma(q0, k1, dot[1]);
                dot[2] = fma(q1, k0, dot[2]);
                dot[3] = fma(q1, k1, dot[3]);
            }
        }
        [[unroll]] for (uint j = 0u; j < 4u; ++j) {
            const uint tt = tok[j >> 1u];
            if (tt < pc.n_tok) {
                acc[j] = fma(max(dot[j], 0.0), w[pc.w_off + h + tt * pc.w_s1 + s * pc.w_s3], acc[j]);
            }
        }
    }

    [[unroll]] for (uint j = 0u; j < 4u; ++j) {
        const uint kk = key[j & 1u];
        const uint tt = tok[j >> 1u];
        if (kk < pc.n_kv && tt < pc.n_tok) {
            float v = acc[j];
            if ((pc.flags & FLAG_LAST) != 0u) {
                v += unpackHalf2x16(uint(mask[pc.m_off + kk + tt * pc.m_s1 + (s % pc.m_ne3) * pc.m_s3])).x;
            }
            o[pc.o_off + kk + tt * pc.o_s1 + s * pc.o_s3] = v;
        }
    }
}
