#version 450
// SOLVE_TRI (ggml_solve_tri, left, lower, not unit-diagonal): A X = B by forward substitution, one thread per
// column of X (column `col` of batch (i2, i3)); every column is independent. Row i:
//   X[i] = (B[i] - sum_{t < i} A[i, t] X[t]) / A[i, i]
// with the sum taken in t order as fused multiply-adds and a correctly rounded division: ggml's CPU loop, which
// its build (-mfma, GCC's default contraction) compiles to the same scalar chain.
// A dispatch covers rows [r0, r1): X's earlier rows are read back from dst (this thread wrote them, in this or
// an earlier dispatch), so the host can cut the rows to keep each thread's loops short.
// Rows of A, B and X packed along dim 0; other strides in elements.
#include "elementwise.glsl"
#include "div_rn.glsl"

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) buffer X { float x[]; };

// Mirrors ops::solve_tri::SolveTriPush.
layout(push_constant) uniform Push {
    uint n; uint k; uint ne2; uint threads;
    uint a_off; uint a_s1; uint a_s2; uint a_s3;
    uint b_off; uint b_s1; uint b_s2; uint b_s3;
    uint x_off; uint x_s1; uint x_s2; uint x_s3;
    uint r0; uint r1; uint pad0; uint pad1;
} pc;

void main() {
    const uint id = element_id();
    if (id >= pc.threads) {
        return;
    }
    const uint col = id % pc.k;
    const uint batch = id / pc.k;
    const uint i2 = batch % pc.ne2;
    const uint i3 = batch / pc.ne2;
    const uint ab = pc.a_off + i2 * pc.a_s2 + i3 * pc.a_s3;
    const uint bb = pc.b_off + i2 * pc.b_s2 + i3 * pc.b_s3 + col;
    const uint xb = pc.x_off + i2 * pc.x_s2 + i3 * pc.x_s3 + col;
    for (uint i = pc.r0; i < pc.r1; ++i) {
        const uint arow = ab + i * pc.a_s1;
        float sum = 0.0;
        for (uint t = 0u; t < i; ++t) {
            sum = fma(a[arow + t], x[xb + t * pc.x_s1], sum);
        }
        x[xb + i * pc.x_s1] = div_rn(b[bb + i * pc.b_s1] - sum, a[arow + i]);
    }
}
