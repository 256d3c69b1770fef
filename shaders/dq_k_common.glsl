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

// The f16 bit pattern `h` as f32, converted in integer arithmetic so that a driver flushing f16 subnormals
// cannot change the scale (ggml's GGML_FP16_TO_FP32 is exact for every input).
float dq_k_half(uint h) {
    const uint sign = (h & 0x8000u) << 16;
    const uint e = (h >> 10) & 0x1Fu;
    const uint m = h & 0x3FFu;
    uint bits;
    if (e == 0x1Fu) {
        bits = sign | 0x7F800000u | (m << 13);
    } else if (e != 0u) {
        bits = sign | ((e + 112u) << 23) | (m << 13);
    } else if (m == 0u) {
        bits = sign;
    } else {
        // Subnormal m * 2^-24 with its leading one at bit p: 1.f * 2^(p - 24).
        const uint p = uint(findMSB(m));
        bits = sign | ((p + 103u) << 23) | ((m << (23u - p)) & 0x7FFFFFu);
    }
    return uintBitsToFloat(bits);
}

// ggml's get_scale_min_k4 for Q4_K / Q5_K: the 6-bit (scale, min) of sub-block j (0..8); the 12 packed bytes
// start at byte `sb` of the block.
uvec2 dq_k_scale_min(uint blk, uint sb, uint j) {
    if (j < 4u) {
        return uvec2(dq_k_byte(blk, sb + j) & 63u, dq_k_byte(blk, sb + j + 4u) & 63u);
    }
    const uint mixed = dq_k_byte(blk, sb + j + 4u);
    return uvec2((mixed & 0xFu) | ((dq_k_byte(blk, sb + j - 4u) >> 6) << 4),
                 (mixed >> 4) | ((dq_k_byte(blk, sb + j) >> 6) << 4));
}

#endif
