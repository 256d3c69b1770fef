// Producer-side quantization of activations: a kernel that writes values a following integer-dot product will
// read also writes them quantized, so the product's own quantization dispatch (and the barrier before it) is
// skipped (src/ops/q8_emit.rs; the executor decides through src/graph/fusion.rs). The codes are bit-identical to
// the stand-alone kernels':
//   EMIT_QX:  quantize_q8_1.comp's 10-word blocks per 32 values (d as f32 bits of the f16-rounded max|x| / 127,
//             the sum of codes as int16 and ggml Q8_1's s = f16(d * sum) above it, codes
//             round-half-even(x * 127 / max|x|)); eight invocations per block.
//   EMIT_Q8K: quantize_q8_k.comp's 76-word Q8_K blocks per 256 values (the first value of largest magnitude,
//             iscale = -127 / it, nearest codes capped at 127, d = 1 / iscale, sums per 32 values); 64 invocations
//             per block.
// Each invocation passes four consecutive values of its block (invocation p of a block holds values 4p..4p+3);
// blocks are invocations [EQ_TPB * j, EQ_TPB * (j + 1)) of the workgroup. Every invocation of the workgroup must
// call (the functions hold barriers); `live` false marks a block past the end (nothing written).
// EQ_SUBGROUPS (defined by an includer with GL_KHR_shader_subgroup_arithmetic enabled): the Q8_K block's largest
// magnitude through subgroup reductions where subgroups are at most a block (invocations numbered through the
// subgroups in order, as every driver does; 64 comparisons in shared memory otherwise, 2 on a 32-wide GPU).
// The includer declares `const uint WG` (workgroup size, a multiple of EQ_TPB) and the buffer
// `layout(binding = N) writeonly buffer Q8Out { uint q8out[]; };`, and includes div_rn.glsl (and, for EMIT_QX,
// half_bits.glsl) first.

#if defined(EMIT_QX)
#include "q8_grid.glsl"
#define QX_WRITE
#include "qx_block.glsl"
#define EQ_TPB 8u
shared float eq_amax[WG];
shared int eq_sum[WG];

// `word`: the block's first word in q8out.
void emit_q8_block(vec4 y, bool live, uint word) {
    const uint tid = gl_LocalInvocationID.x;
    const uint part = tid % EQ_TPB;
    const uint first = tid - part;
    eq_amax[tid] = max(max(abs(y.x), abs(y.y)), max(abs(y.z), abs(y.w)));
    barrier();
    float amax = 0.0;
    [[unroll]] for (uint i = 0; i < EQ_TPB; ++i) { amax = max(amax, eq_amax[first + i]); }
    const float id = q8_inv_scale(amax);
    uint packed = 0u;
    int sum = 0;
    [[unroll]] for (uint j = 0; j < 4; ++j) {
        const int qi = q8_code(y[j], id);
        sum += qi;
        packed |= (uint(qi) & 0xFFu) << (8u * j);
    }
    eq_sum[tid] = sum;
    barrier();
    if (live) {
        q8out[word + 2u + part] = packed;
        if (part == 0u) {
            int total = 0;
            [[unroll]] for (uint i = 0; i < EQ_TPB; ++i) { total += eq_sum[first + i]; }
            const float d = q8_scale(amax);
            q8out[word] = floatBitsToUint(q8_scale_f16(d));
            q8out[word + 1u] = qx_sum_word(total, d);
        }
    }
    // The shared arrays are reused by the next call.
    barrier();
}
#elif defined(EMIT_Q8K)
#define EQ_TPB 64u
shared uint eq_abs[WG];
shared float eq_val[WG];
shared int eq_sum[WG];

void emit_q8_block(vec4 y, bool live, uint word) {
    const uint tid = gl_LocalInvocationID.x;
    const uint part = tid % EQ_TPB;
    const uint first = tid - part;
    // The first value of largest magnitude: this invocation's four, then the block's in element order
    // (magnitudes compared on their bit patterns, as quantize_q8_k.comp does).
    uint best = 0u;
    uint at = 0u;
    [[unroll]] for (uint j = 0; j < 4u; ++j) {
        const uint a = floatBitsToUint(y[j]) & 0x7FFFFFFFu;
        if (a > best) { best = a; at = j; }
    }
    uint amax = 0u;
    float vmax = 0.0;
#ifdef EQ_SUBGROUPS
    // Subgroups of at most a block's invocations (uniform): each finds its first largest magnitude, then the
    // block's subgroups (in invocation order) are compared in shared memory.
    if (gl_SubgroupSize <= EQ_TPB) {
        const uint idx = 4u * part + at;
        const uint sbest = subgroupMax(best);
        const uint sidx = subgroupMin(best == sbest ? idx : 0xFFFFFFFFu);
        if (idx == sidx) {
            eq_abs[gl_SubgroupID] = sbest;
            eq_val[gl_SubgroupID] = y[at];
        }
        barrier();
        const uint s0 = first / gl_SubgroupSize;
        for (uint i = 0; i < EQ_TPB / gl_SubgroupSize; ++i) {
            const uint a = eq_abs[s0 + i];
            if (a > amax) { amax = a; vmax = eq_val[s0 + i]; }
        }
    } else
#endif
    {
        eq_abs[tid] = best;
        eq_val[tid] = y[at];
        barrier();
        for (uint i = 0; i < EQ_TPB; ++i) {
            const uint a = eq_abs[first + i];
            if (a > amax) { amax = a; vmax = eq_val[first + i]; }
        }
    }
    const float iscale = amax == 0u ? 0.0 : div_rn(-127.0, vmax);
    uint packed = 0u;
    int sum = 0;
    [[unroll]] for (uint j = 0; j < 4u; ++j) {
        precise const float p = iscale * y[j];
        precise const float t = p + 12582912.0;
        const int qi = min(int(floatBitsToUint(t) & 0x7FFFFFu) - 0x400000, 127);
        const int q8 = (qi << 24) >> 24;
        sum += q8;
        packed |= (uint(q8) & 0xFFu) << (8u * j);
    }
    eq_sum[tid] = sum;
    barrier();
    if (live) {
        if (amax == 0u) {
            q8out[word + 12u + part] = 0u;
            if (part < 12u) { q8out[word + part] = 0u; }
        } else {
            q8out[word + 12u + part] = packed;
            if (part < 8u) {
                int total = 0;
                [[unroll]] for (uint i = 0; i < 8u; ++i) { total += eq_sum[first + 8u * part + i]; }
                q8out[word + 1u + part] = uint(total);
            } else if (part < 11u) {
                q8out[word + 1u + part] = 0u;
            } else if (part == 11u) {
                q8out[word] = floatBitsToUint(div_rn(1.0, iscale));
            }
        }
    }
    barrier();
}
#endif

#if defined(EMIT_QX)
#define EQ_BLOCK 32u
#define EQ_WORDS 10u
#elif defined(EMIT_Q8K)
#define EQ_BLOCK 256u
#define EQ_WORDS 76u
#endif
