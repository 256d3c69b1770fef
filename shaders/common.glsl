// Shared declarations for ggvk compute shaders.
// Quantized weights are read through 16-bit words, so a block may start at any even byte offset:
//   Q4_0: 18 bytes = 9 words: [d (f16)] [qs[0..16] as 8 words; byte j: element j (low nibble), element j+16 (high)]
//   Q8_0: 34 bytes = 17 words: [d (f16)] [qs[0..32] as 16 words; byte j: element j, signed]
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_control_flow_attributes : require

#define QK 32u
#define Q4_0_WORDS 9u
#define Q8_0_WORDS 17u

float f16_bits_to_float(uint16_t h) {
    return unpackHalf2x16(uint(h)).x;
}

// Integer -> float without the (quarter-rate on many GPUs) conversion instruction: OR a small integer into the
// mantissa of 2^23 and subtract. Exact for 0 <= n < 2^23.
// Q4_0 nibbles n (0..15) to n - 8.
vec4 nibbles_minus_8(uvec4 n) {
    return uintBitsToFloat(n | 0x4B000000u) - 8388616.0;
}
// Low bytes of each lane, read as int8, to float: (b ^ 0x80) is b + 128 as an unsigned byte.
vec4 bytes_to_signed(uvec4 v) {
    return uintBitsToFloat(((v & 0xFFu) ^ 0x80u) | 0x4B000000u) - 8388736.0;
}

// x rounded to the nearest f16 (and back): ggml's CPU backend multiplies F16 weights with activations
// converted to F16 (its vec_dot_type for F16), so ggvk does too.
float round_to_f16(float x) {
    return unpackHalf2x16(packHalf2x16(vec2(x, 0.0))).x;
}

// Sign-extended bytes of a 16-bit word.
int lo_i8(uint w) { return int(w << 24) >> 24; }
int hi_i8(uint w) { return int(w << 16) >> 24; }

// Push constants shared by the mat-vec and tiled mat-mul kernels (mirrors ops::matmul::MatMulPush).
// Offsets and strides of A are in A's binding units (float for F32, 16-bit words otherwise);
// those of B and D in floats.
#define MATMUL_PUSH_FIELDS \
        uint m; uint n; uint k; \
        uint a_off; uint a_row; uint a_s2; uint a_s3; \
        uint b_off; uint b_col; uint b_s2; uint b_s3; \
        uint d_off; uint d_col; uint d_s2; uint d_s3; \
        uint ne12; uint r2; uint r3; uint pad0; uint pad1;
#define MATMUL_PUSH layout(push_constant) uniform Push { MATMUL_PUSH_FIELDS } pc;
