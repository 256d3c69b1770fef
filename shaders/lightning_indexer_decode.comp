#version 450
// LIGHTNING_INDEXER for a few tokens (token generation): the same sums as lightning_indexer.comp, organised for
// TT <= 8 tokens per workgroup so no work goes to token slots that do not exist.
//
// One workgroup per 32 keys x TT tokens of one stream, 256 threads: thread (key = tid / 8, slice = tid % 8)
// holds SL consecutive values of its key's K row in registers (dequantized once; zero past the head size). Per
// head, the Q rows of the TT tokens go through shared memory, each thread forms its slice's partial dot product
// for every token, and thread (key, token) (tid < 32 TT) adds the eight partials in slice order, then
// max(dot, 0) * w to its running score, as the CPU does in head order.
// Heads [h0, h1) per dispatch, partial scores kept in dst between dispatches, the mask added by the last
// (FLAG_FIRST / FLAG_LAST), as in lightning_indexer.comp.
#include "common.glsl"
#include "kv_row.glsl"

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint SL = 16; // values of a K row per thread (head size / 8, rounded up)
layout(constant_id = 1) const uint TT = 1;  // tokens per workgroup (1, 2, 4 or 8)

#define TK 32u
#define NS 8u

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { uint16_t kw[]; };
layout(binding = 2) readonly buffer W { float w[]; };
layout(binding = 3) readonly buffer M { uint16_t mask[]; };
layout(binding = 4) buffer O { float o[]; };

// Mirrors ops::lightning_indexer::IndexerPush.
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

const uint QROW = NS * (SL + 1u); // a token's Q row in shared memory, each slice padded by one
shared float Qs[TT * QROW];
shared float red[TK * NS * TT];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint kl = tid / NS;
    const uint sl = tid % NS;
    const uint kv0 = gl_WorkGroupID.x * TK;
    const uint t0 = gl_WorkGroupID.y * TT;
    const uint s = gl_WorkGroupID.z;

    float kr[SL];
    [[unroll]] for (uint j = 0u; j < SL; ++j) {
        const uint c = sl * SL + j;
        kr[j] = 0.0;
        if (kv0 + kl < pc.n_kv && c < pc.n_embd) {
            kr[j] = k_at(pc.k_type, pc.k_off + (kv0 + kl) * pc.k_s2 + s * pc.k_s3, c, false);
        }
    }

    // The score this thread owns (tid < TK * TT): key kv0 + tid / TT, token t0 + tid % TT.
    const uint okey = kv0 + tid / TT;
    const uint otok = t0 + tid % TT;
    const bool owner = tid < TK * TT && okey < pc.n_kv && otok < pc.n_tok;
    float acc = 0.0;
    if (owner && (pc.flags & FLAG_FIRST) == 0u) {
        acc = o[pc.o_off + okey + otok * pc.o_s1 + s * pc.o_s3];
    }

    for (uint h = pc.h0; h < pc.h1; ++h) {
        barrier();
        for (uint e = tid; e < TT * NS * SL; e += 256u) {
            const uint t = e / (NS * SL);
            const uint c = e % (NS * SL);
            float v = 0.0;
            if (t0 + t < pc.n_tok && c < pc.n_embd) {
                v = q[pc.q_off + c + h * pc.q_s1 + (t0 + t) * pc.q_s2 + s * pc.q_s3];
            }
            Qs[t * QROW + (c / SL) * (SL + 1u) + c % SL] = v;
        }
        barrier();
        [[unroll]] for (uint t = 0u; t < TT; ++t) {
            float p = 0.0;
            [[unroll]] for (uint j = 0u; j < SL; ++j) {
                p = fma(Qs[t * QROW + sl * (SL + 1u) + j], kr[j], p);
            }
            red[(kl * NS + sl) * TT + t] = p;
        }
        barrier();
        if (owner) {
            const uint k = tid / TT;
            const uint t = tid % TT;
            float dot = 0.0;
            [[unroll]] for (uint i = 0u; i < NS; ++i) {
                dot += red[(k * NS + i) * TT + t];
            }
            acc = fma(max(dot, 0.0), w[pc.w_off + h + otok * pc.w_s1 + s * pc.w_s3], acc);
        }
    }

    if (owner) {
        if ((pc.flags & FLAG_LAST) != 0u) {
            acc += unpackHalf2x16(uint(mask[pc.m_off + okey + otok * pc.m_s1 + (s % pc.m_ne3) * pc.m_s3])).x;
        }
        o[pc.o_off + okey + otok * pc.o_s1 + s * pc.o_s3] = acc;
    }
}
