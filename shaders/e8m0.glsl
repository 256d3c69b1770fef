// ggml's GGML_E8M0_TO_FP32_HALF (MXFP4's block scale): 2^(e - 128), a subnormal float below e = 2.
#ifndef E8M0_GLSL
#define E8M0_GLSL
float e8m0_half(uint e) {
    return uintBitsToFloat(e < 2u ? (0x00200000u << e) : ((e - 1u) << 23));
}
#endif // E8M0_GLSL
