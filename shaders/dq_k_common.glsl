// Helpers shared by the K-quant dequantization includes (shaders/dequant/q*_k.glsl). The includer has defined
// `uint dq_u16(uint i)`, the i-th 16-bit word of the weight buffer, zero-extended; a block starts at word `blk`.
#ifndef DQ_K_COMMON_GLSL
#define DQ_K_COMMON_GLSL

// Byte `off` of the block at word `blk`.
uint dq_k_byte(uint blk, uint off) {
    return (dq_u16(blk + (off >> 1)) >> ((off & 1u) * 8u)) & 0xFFu;
}

// Bytes off..off+3 (off even) of the block at word `blk`, packed little-endian into one uint.
uint dq_k_bytes4(uint blk, uint off) {
    const uint w = blk + (off >> 1);
    return dq_u16(w) | (dq_u16(w + 1u) << 16);
}

// Byte lanes of a packed word: shifting uvec4(w) by this puts byte k in the low bits of component k.
const uvec4 DQ_K_LANES = uvec4(0u, 8u, 16u, 24u);

// The f16 bit pattern `h` as f32, exact for every input (as ggml's GGML_FP16_TO_FP32), without branches and
// without f32 subnormals (a driver may flush those): normal halves rebias the exponent, subnormal ones are
// m * 2^-24 (an exact product), infinities stay infinite, NaNs keep their payload and come out quiet
// (as x86's F16C conversion does).
float dq_k_half(uint h) {
    const uint em = h & 0x7FFFu;
    const float normal = uintBitsToFloat((em << 13) + 0x38000000u);
    const float sub = float(em) * 5.9604644775390625e-8;
    const uint payload = (em & 0x3FFu) << 13;
    const float special = uintBitsToFloat(0x7F800000u | payload | (payload != 0u ? 0x400000u : 0u));
    const float mag = em < 0x400u ? sub : (em >= 0x7C00u ? special : normal);
    return uintBitsToFloat(floatBitsToUint(mag) | ((h & 0x8000u) << 16));
}

// ggml's get_scale_min_k4 for Q4_K / Q5_K: the 6-bit (scale, min) of sub-block j (0..8); the 12 packed bytes
// start at byte `sb` of the block.
uvec2 dq_k_scale_min(uint blk, uint sb, uint j) {
    // Both cases computed and selected, so threads of one subgroup on different sub-blocks do not diverge.
    const uint jl = j & 3u;
    const uint b0 = dq_k_byte(blk, sb + jl);      // q[j] (j < 4) or q[j - 4] (j >= 4)
    const uint b4 = dq_k_byte(blk, sb + jl + 4u); // q[j + 4] (j < 4) or q[j] (j >= 4)
    const uint b8 = dq_k_byte(blk, sb + jl + 8u); // q[j + 4] (j >= 4)
    const uvec2 lo = uvec2(b0 & 63u, b4 & 63u);
    const uvec2 hi = uvec2((b8 & 0xFu) | ((b0 >> 6) << 4), (b8 >> 4) | ((b4 >> 6) << 4));
    return j < 4u ? lo : hi;
}

#endif
