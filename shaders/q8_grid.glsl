// The 8-bit grid ggml's CPU backend (x86 build) puts activations on for the dot products of Q4_0/Q8_0-family
// weights, per block of 32 values (quantize_row_q8_0 / quantize_row_q8_1): codes round(x * (127 / max|x|)) to
// nearest even, the scale d = max|x| / 127 stored as f16 (Q8_1 also keeps s = f16(d * sum of codes) from the
// unrounded d). The divisions are exact (div_rn) and the f16 rounding works on bit patterns (half_bits), so codes
// and scales equal the CPU's on every driver. Used by every kernel that writes or reads such blocks: the
// activation quantizer, the producers that emit the blocks, the K/V cache quantizer and flash attention's Q.
#ifndef Q8_GRID_GLSL
#define Q8_GRID_GLSL
#include "div_rn.glsl"
#include "half_bits.glsl"

// 127 / max|x|, the factor each value is multiplied by before rounding (0 for a block of zeros).
float q8_inv_scale(float amax) {
    return amax != 0.0 ? div_rn(127.0, amax) : 0.0;
}

// max|x| / 127 before its f16 rounding.
float q8_scale(float amax) {
    return div_rn(amax, 127.0);
}

// d rounded to f16 (the scale a block stores), as f32.
float q8_scale_f16(float d) {
    return uintBitsToFloat(half_to_float_bits(float_bits_to_half(floatBitsToUint(d))));
}

// The code of x in a block with factor `id` (q8_inv_scale). `precise`: the product is rounded on its own, never
// fused into a following operation. |x * id| <= 127 up to rounding, so the clamp only guards the int conversion.
int q8_code(float x, float id) {
    precise const float v = x * id;
    return clamp(int(roundEven(v)), -127, 127);
}
#endif // Q8_GRID_GLSL
