#version 450
#extension GL_EXT_control_flow_attributes : enable
// GLU family (ggml_glu / ggml_glu_split): dst = act(gate) * up, elementwise over dst's shape. Spec constant 1:
// OP (0 SWIGLU, 1 REGLU, 2 GEGLU, 3 GEGLU_ERF, 4 GEGLU_QUICK), formulas as ggml's CPU (activations.glsl). The host points `gate` (binding 0) and `up` (binding 1) at the right tensors: in the fused form both
// are src0, the second half starting ne0 elements after the first along dim 0. Defines: X_F16 (F16 everywhere,
// else F32).
#include "elementwise.glsl"

#ifdef X_F16
layout(binding = 0) readonly buffer G { uint16_t g[]; };
layout(binding = 1) readonly buffer U { uint16_t u[]; };
layout(binding = 2) writeonly buffer D { uint16_t d[]; };
#define LOAD_G(i) half_to_float(uint(g[i]))
#define LOAD_U(i) half_to_float(uint(u[i]))
#define STORE_D(i, v) d[i] = uint16_t(float_to_half(v))
#else
layout(binding = 0) readonly buffer G { float g[]; };
layout(binding = 1) readonly buffer U { float u[]; };
layout(binding = 2) writeonly buffer D { float d[]; };
#define LOAD_G(i) g[i]
#define LOAD_U(i) u[i]
#define STORE_D(i, v) d[i] = (v)
#endif

layout(push_constant) uniform Push {
    uvec4 ne;  // dst shape (also the shape read from gate and up)
    uvec4 s_g; // strides in elements (0 for dims of size 1)
    uvec4 s_u;
    uvec4 s_d;
    uint g_off; uint u_off; uint d_off; uint n;
    uint g_mode; uint u_mode; uint d_mode; float alpha; // layout modes (elementwise.glsl); SWIGLU_OAI's alpha
    uint g_rs; uint u_rs; uint d_rs; float limit;      // row strides for MODE_ROWS; SWIGLU_OAI's limit
#if defined(EMIT_QX) || defined(EMIT_Q8K)
    uint q_off; uint q_pad0; uint q_pad1; uint q_pad2;  // first word of the quantized copy
#endif
} pc;

#if defined(EMIT_QX) || defined(EMIT_Q8K)
// F32 only: dst also written quantized for the integer-dot products that read it (emit_q8.glsl), block j of dst's
// logical order (rows of ne0, a multiple of the block) at word pc.q_off + j * EQ_WORDS. Four consecutive elements
// per invocation.
layout(binding = 3) writeonly buffer Q8Out { uint q8out[]; };
#define EMIT_Q8
#include "half_bits.glsl"
#include "div_rn.glsl"
#include "emit_q8.glsl"
#endif

#include "activations.glsl"

layout(constant_id = 1) const uint OP = 0;

float glu(float x, float g) {
    switch (OP) {
    // SWIGLU_OAI: the gate capped at limit, up clamped to [-limit, limit], x sigmoid(alpha x) (y + 1).
    case 5u: {
        const float xc = min(x, pc.limit);
        const float yc = clamp(g, -pc.limit, pc.limit);
        return xc / (1.0 + exp(pc.alpha * (-xc))) * (yc + 1.0);
    }
    // SWIGLU_CLAMP: the gate capped at limit, up clamped to [-limit, limit], silu(gate) up.
    case 7u: {
        const float xc = min(x, pc.limit);
        return xc / (1.0 + exp(-xc)) * clamp(g, -pc.limit, pc.limit);
    }
    // SILU_BACK: src0 the gradient dy (here x), src1 the forward input (here g).
    case 6u: {
        const float s = 1.0 / (1.0 + exp(-g));
        return x * s * (1.0 + g * (1.0 - s));
    }
    default: return glu_plain(OP, x, g);
    }
}

void main() {
#ifdef EMIT_Q8
    const uint id4 = element_id() * 4u;
    // pc.n is a multiple of the block, so a block is wholly live or not.
    const bool live = id4 < pc.n;
    vec4 y = vec4(0.0);
    if (live) {
        [[unroll]] for (uint j = 0u; j < 4u; ++j) {
            const uint id = id4 + j;
            const uint ig = pc.g_off + element_offset(id, pc.g_mode, pc.ne, pc.s_g, pc.g_rs);
            const uint iu = pc.u_off + element_offset(id, pc.u_mode, pc.ne, pc.s_u, pc.u_rs);
            const uint idst = pc.d_off + element_offset(id, pc.d_mode, pc.ne, pc.s_d, pc.d_rs);
            y[j] = glu(LOAD_G(ig), LOAD_U(iu));
            STORE_D(idst, y[j]);
        }
    }
    emit_q8_block(y, live, pc.q_off + (id4 / EQ_BLOCK) * EQ_WORDS);
    return;
#endif
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint ig = pc.g_off + element_offset(id, pc.g_mode, pc.ne, pc.s_g, pc.g_rs);
    const uint iu = pc.u_off + element_offset(id, pc.u_mode, pc.ne, pc.s_u, pc.u_rs);
    const uint idst = pc.d_off + element_offset(id, pc.d_mode, pc.ne, pc.s_d, pc.d_rs);
    STORE_D(idst, glu(LOAD_G(ig), LOAD_U(iu)));
}
