#version 450
// OUT_PROD (ggml_out_prod): d[i0, i1, i2, i3] = sum_j A[i0, j, i2 / r2, i3 / r3] * B[i1, j, i2, i3], the sum over j
// taken in order as ggml's CPU backend does. A's rows (fixed j) run along i0 (the output rows), so a tile of A is
// read along its rows: dequantized on load for block types. B has any strides (a transposed view included).
// 64 x 64 output tiles (i0 x i1), 32-deep j steps through shared memory, 256 threads each owning a 4 x 4 sub-tile;
// workgroup z is the batch i2 + ne2 * i3.
// A_F32, A_F16, A_BF16: float weights; A_Q4_0, A_Q8_0: ggml's blocks; A_DQ: any type with a dequantization include
// ("dq_type.glsl", chosen by build.rs). Block types have rows of whole blocks (checked on the host), so a 4-value
// chunk of a row is either wholly inside the output or wholly outside.
#include "common.glsl"

#define BM 64u
#define BN 64u
#define BK 32u

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;

#if defined(A_F32)
layout(binding = 0) readonly buffer A { float a[]; };
#else
layout(binding = 0) readonly buffer A { uint16_t a[]; };
#endif
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

// Mirrors ops::out_prod::OutProdPush. A's offsets and strides in its binding units (floats for F32, 16-bit words
// otherwise), B's and D's in floats; m, n, k: output rows (A ne0), output columns (B ne0), the summed dimension.
layout(push_constant) uniform Push {
    uint m; uint n; uint k;
    uint a_off; uint a_s1; uint a_s2; uint a_s3;
    uint b_off; uint b_s0; uint b_s1; uint b_s2; uint b_s3;
    uint d_off; uint d_s1; uint d_s2; uint d_s3;
    uint ne2; uint r2; uint r3; uint pad;
} pc;

#ifdef A_DQ
uint dq_u16(uint i) { return uint(a[i]); }
#include "dq_type.glsl"
#endif

shared float As[BK][BM];
shared float Bs[BK][BN];

#if !defined(A_F32) && !defined(A_F16) && !defined(A_BF16)
// Values i0 .. i0+3 (i0 a multiple of 4) of the row whose first unit is `row`.
vec4 a_get4(uint row, uint i0) {
#if defined(A_Q4_0)
    // Block: [d] [qs: byte j holds value j (low nibble) and value j + 16 (high)]; ggml: (q - 8) * d.
    const uint blk = row + (i0 / QK) * Q4_0_WORDS;
    const uint e = i0 % QK;
    const uint q = e % 16u;
    const uint w = uint(a[blk + 1u + q / 2u]) | (uint(a[blk + 2u + q / 2u]) << 16);
    const uint sh = e >= 16u ? 4u : 0u;
    const uvec4 n = (uvec4(w) >> (uvec4(0u, 8u, 16u, 24u) + sh)) & 15u;
    return (vec4(n) - 8.0) * f16_bits_to_float(a[blk]);
#elif defined(A_Q8_0)
    // Block: [d] [qs: 32 signed bytes]; ggml: q * d.
    const uint blk = row + (i0 / QK) * Q8_0_WORDS;
    const uint e = i0 % QK;
    const uint w0 = uint(a[blk + 1u + e / 2u]);
    const uint w1 = uint(a[blk + 2u + e / 2u]);
    const vec4 q = vec4(float(lo_i8(w0)), float(hi_i8(w0)), float(lo_i8(w1)), float(hi_i8(w1)));
    return q * f16_bits_to_float(a[blk]);
#else
    return dq_get4(row + (i0 / DQ_QK) * DQ_WORDS, (i0 % DQ_QK) / 4u);
#endif
}
#endif

void main() {
#ifdef DQ_INIT
    // Grid or level tables into shared memory (IQ, MXFP4 and NVFP4 types; every invocation, before any return).
    DQ_INIT();
#endif
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * BM;
    const uint col0 = gl_WorkGroupID.y * BN;
    const uint z = gl_WorkGroupID.z;
    const uint i2 = z % pc.ne2;
    const uint i3 = z / pc.ne2;
    const uint a_base = pc.a_off + (i2 / pc.r2) * pc.a_s2 + (i3 / pc.r3) * pc.a_s3;
    const uint b_base = pc.b_off + i2 * pc.b_s2 + i3 * pc.b_s3;
    const uint d_base = pc.d_off + i2 * pc.d_s2 + i3 * pc.d_s3;

    // Loader role: step row lj of the j step, values 8 lc .. 8 lc + 7 of the tile's rows (A) and columns (B).
    const uint lj = tid >> 3;
    const uint lc = (tid & 7u) * 8u;
    // Compute role: rows tx + 16 i, columns ty + 16 j of the tile.
    const uint tx = tid & 15u;
    const uint ty = tid >> 4;
    float acc[4][4];
    [[unroll]] for (uint i = 0; i < 4; ++i) { [[unroll]] for (uint j = 0; j < 4; ++j) { acc[i][j] = 0.0; } }

    for (uint j0 = 0; j0 < pc.k; j0 += BK) {
        const uint j = j0 + lj;
        const bool j_ok = j < pc.k;
        const uint a_row = a_base + min(j, pc.k - 1u) * pc.a_s1;
#if defined(A_F32) || defined(A_F16) || defined(A_BF16)
        [[unroll]] for (uint h = 0; h < 8; ++h) {
            const uint i0 = row0 + lc + h;
            const bool ok = j_ok && i0 < pc.m;
#if defined(A_F32)
            As[lj][lc + h] = ok ? a[a_row + i0] : 0.0;
#elif defined(A_BF16)
            As[lj][lc + h] = ok ? uintBitsToFloat(uint(a[a_row + i0]) << 16) : 0.0;
#else
            As[lj][lc + h] = ok ? f16_bits_to_float(a[a_row + i0]) : 0.0;
#endif
        }
#else
        [[unroll]] for (uint h = 0; h < 2; ++h) {
            const uint i0 = row0 + lc + 4u * h;
            const vec4 v = (j_ok && i0 < pc.m) ? a_get4(a_row, i0) : vec4(0.0);
            [[unroll]] for (uint t = 0; t < 4; ++t) { As[lj][lc + 4u * h + t] = v[t]; }
        }
#endif
        [[unroll]] for (uint h = 0; h < 8; ++h) {
            const uint i1 = col0 + lc + h;
            Bs[lj][lc + h] = (j_ok && i1 < pc.n) ? b[b_base + i1 * pc.b_s0 + j * pc.b_s1] : 0.0;
        }
        barrier();
        [[unroll]] for (uint kk = 0; kk < BK; ++kk) {
            float av[4];
            float bv[4];
            [[unroll]] for (uint i = 0; i < 4; ++i) { av[i] = As[kk][tx + 16 * i]; }
            [[unroll]] for (uint q = 0; q < 4; ++q) { bv[q] = Bs[kk][ty + 16 * q]; }
            [[unroll]] for (uint i = 0; i < 4; ++i) {
                [[unroll]] for (uint q = 0; q < 4; ++q) { acc[i][q] += av[i] * bv[q]; }
            }
        }
        barrier();
    }

    [[unroll]] for (uint q = 0; q < 4; ++q) {
        const uint col = col0 + ty + 16 * q;
        [[unroll]] for (uint i = 0; i < 4; ++i) {
            const uint row = row0 + tx + 16 * i;
            if (row < pc.m && col < pc.n) { d[d_base + col * pc.d_s1 + row] = acc[i][q]; }
        }
    }
}
