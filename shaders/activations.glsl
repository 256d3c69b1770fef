// Activation functions shared by unary.comp and glu.comp, following ggml's CPU formulas (ggml-cpu/vec.h,
// unary-ops.cpp), written to stay finite where the formulas do: nothing here overflows to NaN for large |x|.
// Needs elementwise.glsl (half conversions).

// x rounded to f16 and back (ggml's CPU looks GELU and GELU_QUICK up in tables indexed by the f16 input and
// holding f16 outputs, also for F32 tensors).
float via_f16(float x) {
    return half_to_float(float_to_half(x));
}

// x * sigmoid(x) from exp(-|x|) <= 1: large positive x gives x, large negative x gives -0 (or a tiny negative).
float silu(float x) {
    const float e = exp(-abs(x));
    const float sig = (x >= 0.0 ? 1.0 : e) / (1.0 + e);
    return x * sig;
}

float sigmoid(float x) {
    const float e = exp(-abs(x));
    return (x >= 0.0 ? 1.0 : e) / (1.0 + e);
}

// e^x - 1 without the cancellation of exp(x) - 1 near 0 (Taylor series there).
float expm1_robust(float x) {
    if (abs(x) < 0.5) {
        // x + x^2/2! + ... + x^8/8!, Horner form; the first omitted term is below 3e-8 relative.
        return x * (1.0 + x * (1.0 / 2.0 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0
            + x * (1.0 / 720.0 + x * (1.0 / 5040.0 + x * (1.0 / 40320.0))))))));
    }
    return exp(x) - 1.0;
}

// tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)), signed: finite for every x, accurate near 0.
float tanh_robust(float x) {
    const float m = expm1_robust(-2.0 * abs(x));
    const float t = -m / (2.0 + m);
    return x < 0.0 ? -t : t;
}

const float GELU_COEF_A = 0.044715;
const float SQRT_2_OVER_PI = 0.79788456080286535587989211986876;
const float SQRT_2_INV = 0.70710678118654752440084436210484;
const float GELU_QUICK_COEF = -1.702;

float gelu_tanh(float x) {
    return 0.5 * x * (1.0 + tanh_robust(SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x)));
}

// ggml's GELU: x <= -10 gives 0, x >= 10 gives x, otherwise the f16 table entry of the f16-rounded x.
float gelu_table(float x) {
    if (x <= -10.0) {
        return 0.0;
    }
    if (x >= 10.0) {
        return x;
    }
    return via_f16(gelu_tanh(via_f16(x)));
}

float gelu_quick(float x) {
    return x * (1.0 / (1.0 + exp(GELU_QUICK_COEF * x)));
}

// ggml's GELU_QUICK: the f16 table entry of the f16-rounded x, for every x.
float gelu_quick_table(float x) {
    return via_f16(gelu_quick(via_f16(x)));
}

// erf(x) through erfc's rational Chebyshev fit (fractional error below 1.2e-7 everywhere).
float erf_approx(float x) {
    const float z = abs(x);
    const float t = 1.0 / (1.0 + 0.5 * z);
    const float p = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    const float erfc_z = t * exp(p);
    const float r = 1.0 - erfc_z;
    return x < 0.0 ? -r : r;
}

float gelu_erf(float x) {
    return 0.5 * x * (1.0 + erf_approx(x * SQRT_2_INV));
}

// The GLU family's value for gate x and up g (glu.comp's ops 0-4: ggml's SWIGLU, REGLU, GEGLU, GEGLU_ERF,
// GEGLU_QUICK); GEGLU is 0 below -10 (not 0 * up), x * up above 10, else the f16 table entry times up.
float glu_plain(uint op, float x, float g) {
    switch (op) {
    case 1u: return x > 0.0 ? x * g : 0.0;
    case 2u: return x <= -10.0 ? 0.0 : (x >= 10.0 ? x * g : via_f16(gelu_tanh(via_f16(x))) * g);
    case 3u: return gelu_erf(x) * g;
    case 4u: return gelu_quick_table(x) * g;
    default: return silu(x) * g;
    }
}

// C's roundf: halves away from zero (GLSL's round leaves the direction of halves open).
float round_away(float x) {
    const float t = trunc(x);
    const float f = x - t; // exact
    return abs(f) >= 0.5 ? t + sign(x) : t;
}
