// The GLU family's elementwise function, shared by glu.comp and the gate/up mat-vec with the GLU after it
// (mul_mat_vec_glu.comp), so both compute the same bits: act(x) * g for x the gate and g the up value. `op` is
// glu.comp's OP code (0 SWIGLU, 1 REGLU, 2 GEGLU, 3 GEGLU_ERF, 4 GEGLU_QUICK, 5 SWIGLU_OAI, 6 SILU_BACK,
// 7 SWIGLU_CLAMP); alpha and limit are SWIGLU_OAI's / SWIGLU_CLAMP's. Formulas as ggml's CPU (activations.glsl).
#include "activations.glsl"

float glu_apply(uint op, float x, float g, float alpha, float limit) {
    switch (op) {
    case 1u: return x > 0.0 ? x * g : 0.0;
    // ggml: 0 below -10 (not 0 * up), x * up above 10, else the f16 table entry times up.
    case 2u: return x <= -10.0 ? 0.0 : (x >= 10.0 ? x * g : via_f16(gelu_tanh(via_f16(x))) * g);
    case 3u: return gelu_erf(x) * g;
    case 4u: return gelu_quick_table(x) * g;
    // SWIGLU_OAI: the gate capped at limit, up clamped to [-limit, limit], x sigmoid(alpha x) (y + 1).
    case 5u: {
        const float xc = min(x, limit);
        const float yc = clamp(g, -limit, limit);
        return xc / (1.0 + exp(alpha * (-xc))) * (yc + 1.0);
    }
    // SWIGLU_CLAMP: the gate capped at limit, up clamped to [-limit, limit], silu(gate) up.
    case 7u: {
        const float xc = min(x, limit);
        return xc / (1.0 + exp(-xc)) * clamp(g, -limit, limit);
    }
    // SILU_BACK: src0 the gradient dy (here x), src1 the forward input (here g).
    case 6u: {
        const float s = 1.0 / (1.0 + exp(-g));
        return x * s * (1.0 + g * (1.0 - s));
    }
    default: return silu(x) * g;
    }
}

