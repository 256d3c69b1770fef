#version 450
// Elementwise F32 -> F32 or F16 -> F16 ops on any strides; dst has src0's shape and may alias it (each thread
// reads its element before writing it). Arithmetic in f32; an F16 dst gets the result rounded to nearest even.
// Defines: X_F16 (F16 src0 and dst, else F32). Spec constant 1: OP (the UOP_* codes below, mirrored by
// ops::unary). `scale` and `bias` carry the op's parameters (SCALE: s, b; CLAMP: min, max; LEAKY_RELU: slope).
#include "elementwise.glsl"

layout(constant_id = 1) const uint OP = 0;

#define UOP_SCALE 0u
#define UOP_SILU 1u
#define UOP_ABS 2u
#define UOP_SGN 3u
#define UOP_NEG 4u
#define UOP_STEP 5u
#define UOP_TANH 6u
#define UOP_ELU 7u
#define UOP_RELU 8u
#define UOP_SIGMOID 9u
#define UOP_GELU 10u
#define UOP_GELU_QUICK 11u
#define UOP_HARDSWISH 12u
#define UOP_HARDSIGMOID 13u
#define UOP_EXP 14u
#define UOP_EXPM1 15u
#define UOP_SOFTPLUS 16u
#define UOP_GELU_ERF 17u
#define UOP_FLOOR 18u
#define UOP_CEIL 19u
#define UOP_ROUND 20u
#define UOP_TRUNC 21u
#define UOP_SQR 22u
#define UOP_SQRT 23u
#define UOP_SIN 24u
#define UOP_COS 25u
#define UOP_LOG 26u
#define UOP_CLAMP 27u
#define UOP_LEAKY_RELU 28u
#define UOP_XIELU 29u

#ifdef X_F16
layout(binding = 0) readonly buffer A { uint16_t a[]; };
layout(binding = 1) writeonly buffer D { uint16_t d[]; };
#define LOAD_A(i) half_to_float(uint(a[i]))
#define STORE_D(i, v) d[i] = uint16_t(float_to_half(v))
#else
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
#define LOAD_A(i) a[i]
#define STORE_D(i, v) d[i] = (v)
#endif

layout(push_constant) uniform Push {
    uvec4 ne;  // shape of src0 and dst
    uvec4 s_a; // strides in elements (0 for dims of size 1)
    uvec4 s_d;
    uint a_off; uint d_off; uint n; uint pad0;
    uint a_mode; uint d_mode; uint a_rs; uint d_rs; // layout modes and row strides (elementwise.glsl)
    float scale; float bias; float p2; float p3; // XIELU: alpha_n, alpha_p, beta, eps
} pc;

#include "activations.glsl"

float apply(float x) {
    switch (OP) {
    case UOP_SCALE:
        // ggml: x * s when b == 0, else a fused multiply-add (its vector path).
        return pc.bias == 0.0 ? x * pc.scale : fma(x, pc.scale, pc.bias);
    case UOP_SILU: return silu(x);
    case UOP_ABS: return abs(x);
    case UOP_SGN: return x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : 0.0);
    case UOP_NEG: return -x;
    case UOP_STEP: return x > 0.0 ? 1.0 : 0.0;
    case UOP_TANH: return tanh_robust(x);
    case UOP_ELU: return x > 0.0 ? x : expm1_robust(x);
    case UOP_RELU: return x > 0.0 ? x : 0.0;
    case UOP_SIGMOID: return sigmoid(x);
    case UOP_GELU: return gelu_table(x);
    case UOP_GELU_QUICK: return gelu_quick_table(x);
    case UOP_HARDSWISH: return x * min(1.0, max(0.0, (x + 3.0) / 6.0));
    case UOP_HARDSIGMOID: return min(1.0, max(0.0, (x + 3.0) / 6.0));
    case UOP_EXP: return exp(x);
    case UOP_EXPM1: return expm1_robust(x);
    case UOP_SOFTPLUS: return x > 20.0 ? x : log(1.0 + exp(x));
    case UOP_GELU_ERF: return gelu_erf(x);
    case UOP_FLOOR: return floor(x);
    case UOP_CEIL: return ceil(x);
    case UOP_ROUND: return round_away(x);
    case UOP_TRUNC: return trunc(x);
    case UOP_SQR: return x * x;
    case UOP_SQRT: return sqrt(x);
    case UOP_SIN: return sin(x);
    case UOP_COS: return cos(x);
    case UOP_LOG: return log(x);
    // ggml: MAX(MIN(x, max), min) with C's conditional macros.
    case UOP_CLAMP: {
        const float lo = x < pc.bias ? x : pc.bias;
        return lo > pc.scale ? lo : pc.scale;
    }
    case UOP_LEAKY_RELU: return (x > 0.0 ? x : 0.0) + pc.scale * (x < 0.0 ? x : 0.0);
    // ggml: alpha_p x^2 + beta x above 0, else (expm1(min(x, eps)) - x) alpha_n + beta x.
    case UOP_XIELU: return x > 0.0 ? pc.bias * x * x + pc.p2 * x : (expm1_robust(min(x, pc.p3)) - x) * pc.scale + pc.p2 * x;
    default: return x;
    }
}

void main() {
    const uint id = element_id();
    if (id >= pc.n) {
        return;
    }
    const uint ia = pc.a_off + element_offset(id, pc.a_mode, pc.ne, pc.s_a, pc.a_rs);
    const uint idst = pc.d_off + element_offset(id, pc.d_mode, pc.ne, pc.s_d, pc.d_rs);
    STORE_D(idst, apply(LOAD_A(ia)));
}
