/* Q4_0: bit-exact quantize/dequantize against a C reference, then mul_mat
 * (mat-vec, small matmul, batched broadcast) against a double-precision reference. */
#include "test_util.h"

#define QK4_0 32
#define Q4_0_BLOCK_BYTES 18 /* fp16 d + 16 bytes of nibbles */

/* ------------------------------------------------------------------------- */
/* fp16 <-> fp32 (round to nearest, ties to even)                             */
/* ------------------------------------------------------------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint16_t f32_to_f16(float f)
{
    const uint32_t x = f32_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const int32_t exp = (int32_t)((x >> 23) & 0xFFu);
    uint32_t mant = x & 0x7FFFFFu;

    if (exp == 0xFF) { /* inf / NaN (NaN stays a quiet NaN) */
        return (uint16_t)(sign | 0x7C00u | (mant != 0 ? 0x200u | (mant >> 13) : 0u));
    }
    const int32_t e = exp - 127 + 15; /* biased half exponent */
    if (e >= 31) {
        return (uint16_t)(sign | 0x7C00u); /* overflow */
    }
    if (e <= 0) { /* half subnormal or zero */
        if (e < -10) {
            return sign; /* below half of the smallest subnormal */
        }
        mant |= 0x800000u; /* implicit bit (f32 subnormals land in e < -10) */
        const uint32_t shift = (uint32_t)(14 - e);
        uint32_t h = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1u);
        const uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (h & 1u))) {
            h++; /* may carry into the smallest normal: still correct */
        }
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) {
        h++; /* may carry into the exponent, up to infinity: still correct */
    }
    return (uint16_t)(sign | h);
}

static float f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    const uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F) {
        return bits_f32(sign | 0x7F800000u | (mant << 13));
    }
    if (exp == 0) { /* zero / subnormal: mant * 2^-24 exactly */
        const float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

static void self_test_f16(void)
{
    static const struct {
        float f;
        uint16_t h;
    } known[] = {
        {0.0f, 0x0000},           {-0.0f, 0x8000},         {1.0f, 0x3C00},
        {-2.0f, 0xC000},          {65504.0f, 0x7BFF},      {65519.99f, 0x7BFF},
        {65520.0f, 0x7C00},       {1e10f, 0x7C00},         {5.9604645e-8f, 0x0001},
        {2.9802322e-8f, 0x0000},  /* exactly half the smallest subnormal: tie to even (0) */
        {2.9802326e-8f, 0x0001},  /* just above the tie */
        {8.940697e-8f, 0x0002},   /* 1.5 * smallest subnormal: tie, rounds to even (2) */
        {6.097555e-5f, 0x03FF},   /* largest subnormal */
        {6.1035156e-5f, 0x0400},  /* smallest normal */
        {0.1f, 0x2E66},           {1.0f / 3.0f, 0x3555},   {1.00048828125f, 0x3C00}, /* tie -> even */
        {1.00146484375f, 0x3C02}, /* tie -> even (up) */
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        uint16_t h = f32_to_f16(known[i].f);
        CHECKF(h == known[i].h, "f32_to_f16(%.9g) = 0x%04x, expected 0x%04x", (double)known[i].f, h,
               known[i].h);
    }
    /* every non-NaN half converts to float and back to itself */
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if ((h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0) {
            continue;
        }
        const uint16_t back = f32_to_f16(f16_to_f32((uint16_t)h));
        CHECKF(back == h, "f16 round trip 0x%04x -> %.9g -> 0x%04x", h, (double)f16_to_f32((uint16_t)h),
               back);
    }
}

/* ------------------------------------------------------------------------- */
/* Q4_0 reference                                                             */
/* ------------------------------------------------------------------------- */

static void ref_quantize_q4_0(const float *x, unsigned char *out, int64_t n)
{
    for (int64_t blk = 0; blk < n / QK4_0; blk++) {
        const float *v = x + blk * QK4_0;
        unsigned char *o = out + blk * Q4_0_BLOCK_BYTES;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++) {
            if (fabsf(v[j]) > amax) {
                amax = fabsf(v[j]);
                max = v[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t dh = f32_to_f16(d);
        o[0] = (unsigned char)(dh & 0xFFu); /* little endian */
        o[1] = (unsigned char)(dh >> 8);
        for (int j = 0; j < QK4_0 / 2; j++) {
            int lo = (int8_t)(v[j] * id + 8.5f);
            int hi = (int8_t)(v[j + QK4_0 / 2] * id + 8.5f);
            if (lo > 15) lo = 15;
            if (hi > 15) hi = 15;
            o[2 + j] = (unsigned char)(lo | (hi << 4));
        }
    }
}

static void ref_dequantize_q4_0(const unsigned char *q, float *y, int64_t n)
{
    for (int64_t blk = 0; blk < n / QK4_0; blk++) {
        const unsigned char *b = q + blk * Q4_0_BLOCK_BYTES;
        const float d = f16_to_f32((uint16_t)(b[0] | (b[1] << 8)));
        float *o = y + blk * QK4_0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            o[j] = (float)((b[2 + j] & 15) - 8) * d;
            o[j + QK4_0 / 2] = (float)((b[2 + j] >> 4) - 8) * d;
        }
    }
}

/* Blocks of varied character: plain, scaled over many decades, all-zero, positive and
 * negative extremes, sign ties, exact grid values (rounding ties at .5), tiny values
 * whose d is an fp16 subnormal, and huge values whose d overflows fp16. */
static void fill_block(test_rng *r, float *v, int kind)
{
    const float scale = powf(10.0f, test_rng_uniform(r, -6.0f, 4.0f));
    for (int j = 0; j < QK4_0; j++) {
        v[j] = test_rng_normal(r) * scale;
    }
    switch (kind % 10) {
    case 0: /* as generated */
        break;
    case 1: /* all zero */
        for (int j = 0; j < QK4_0; j++) v[j] = 0.0f;
        break;
    case 2: /* positive extreme */
        v[test_rng_below(r, QK4_0)] = 4.0f * scale;
        break;
    case 3: /* +/- the same magnitude: first one wins */
        v[3] = -5.0f * scale;
        v[20] = 5.0f * scale;
        break;
    case 4: /* values on the quantization grid: x*id + 8.5 lands on .5 boundaries */
        for (int j = 0; j < QK4_0; j++) v[j] = (float)((int)test_rng_below(r, 17) - 8) * 0.25f;
        v[0] = -2.0f;
        break;
    case 5: /* tiny: d is an fp16 subnormal or flushes to 0 */
        for (int j = 0; j < QK4_0; j++) v[j] = test_rng_normal(r) * 1e-6f;
        break;
    case 6: /* huge: d overflows fp16 */
        for (int j = 0; j < QK4_0; j++) v[j] = test_rng_normal(r) * 3e5f;
        break;
    case 7: /* one nonzero element */
        for (int j = 0; j < QK4_0; j++) v[j] = 0.0f;
        v[test_rng_below(r, QK4_0)] = test_rng_normal(r);
        break;
    case 8: /* uniform [-1, 1) */
        for (int j = 0; j < QK4_0; j++) v[j] = test_rng_uniform(r, -1.0f, 1.0f);
        break;
    default: /* integers */
        for (int j = 0; j < QK4_0; j++) v[j] = (float)((int)test_rng_below(r, 31) - 15);
        break;
    }
}

static void test_quantize_bitexact(test_rng *r, int64_t n_blocks)
{
    const int64_t n = n_blocks * QK4_0;
    float *x = (float *)test_xmalloc((size_t)n * sizeof(float));
    unsigned char *qref = (unsigned char *)test_xmalloc((size_t)n_blocks * Q4_0_BLOCK_BYTES);
    unsigned char *qlib = (unsigned char *)test_xmalloc((size_t)n_blocks * Q4_0_BLOCK_BYTES);
    float *yref = (float *)test_xmalloc((size_t)n * sizeof(float));
    float *ylib = (float *)test_xmalloc((size_t)n * sizeof(float));

    for (int64_t b = 0; b < n_blocks; b++) {
        fill_block(r, x + b * QK4_0, (int)b);
    }
    size_t rs = 0;
    CHECK_OK(ggvk_row_size(GGVK_TYPE_Q4_0, n, &rs));
    CHECKF(rs == (size_t)n_blocks * Q4_0_BLOCK_BYTES, "row_size(Q4_0, %" PRId64 ") = %zu", n, rs);

    ref_quantize_q4_0(x, qref, n);
    memset(qlib, 0xCD, (size_t)n_blocks * Q4_0_BLOCK_BYTES);
    CHECK_OK(ggvk_quantize(GGVK_TYPE_Q4_0, x, qlib, n));
    for (int64_t b = 0; b < n_blocks; b++) {
        const unsigned char *pr = qref + b * Q4_0_BLOCK_BYTES;
        const unsigned char *pl = qlib + b * Q4_0_BLOCK_BYTES;
        if (memcmp(pr, pl, Q4_0_BLOCK_BYTES) != 0) {
            fprintf(stderr, "block %" PRId64 " (kind %d) differs:\n  input:", b, (int)(b % 10));
            for (int j = 0; j < QK4_0; j++) fprintf(stderr, " %.9g", (double)x[b * QK4_0 + j]);
            fprintf(stderr, "\n  ref:");
            for (int j = 0; j < Q4_0_BLOCK_BYTES; j++) fprintf(stderr, " %02x", pr[j]);
            fprintf(stderr, "\n  lib:");
            for (int j = 0; j < Q4_0_BLOCK_BYTES; j++) fprintf(stderr, " %02x", pl[j]);
            fprintf(stderr, "\n");
            CHECKF(0, "ggvk_quantize(Q4_0) is not bit-exact with the reference");
        }
    }

    ref_dequantize_q4_0(qref, yref, n);
    CHECK_OK(ggvk_dequantize(GGVK_TYPE_Q4_0, qref, ylib, n));
    for (int64_t i = 0; i < n; i++) {
        /* bit-exact, except that any NaN matches any NaN (0 * inf when d overflowed) */
        CHECKF(f32_bits(yref[i]) == f32_bits(ylib[i]) || (isnan(yref[i]) && isnan(ylib[i])),
               "ggvk_dequantize(Q4_0) element %" PRId64 ": %.9g, reference %.9g", i,
               (double)ylib[i], (double)yref[i]);
    }

    free(x);
    free(qref);
    free(qlib);
    free(yref);
    free(ylib);
}

/* ------------------------------------------------------------------------- */
/* mul_mat                                                                    */
/* ------------------------------------------------------------------------- */

typedef struct mm_case {
    const char *name;
    int64_t K, M, N;    /* A [K, M, a2, a3], B [K, N, b2, b3], dst [M, N, b2, b3] */
    int64_t a2, a3, b2, b3;
    int one_buffer;     /* all three tensors in a single buffer at aligned offsets */
    int async;          /* ggvk_graph_compute_async + ggvk_synchronize */
} mm_case;

static double run_mul_mat(ggvk_backend *be, test_rng *r, const mm_case *c)
{
    const int64_t K = c->K, M = c->M, N = c->N;
    const int64_t a_rows = M * c->a2 * c->a3;
    const int64_t b_cols = N * c->b2 * c->b3;
    const size_t a_row_bytes = (size_t)(K / QK4_0) * Q4_0_BLOCK_BYTES;
    const size_t a_bytes = a_row_bytes * (size_t)a_rows;
    const size_t b_bytes = sizeof(float) * (size_t)(K * b_cols);
    const size_t d_bytes = sizeof(float) * (size_t)(M * b_cols);

    /* host data: A quantized with the C reference (already checked bit-exact) */
    float *af = (float *)test_xmalloc(sizeof(float) * (size_t)(K * a_rows));
    for (int64_t i = 0; i < K * a_rows; i++) af[i] = test_rng_uniform(r, -1.0f, 1.0f);
    unsigned char *aq = (unsigned char *)test_xmalloc(a_bytes);
    ref_quantize_q4_0(af, aq, K * a_rows);
    ref_dequantize_q4_0(aq, af, K * a_rows); /* af now holds what the GPU sees */
    float *bf = (float *)test_xmalloc(b_bytes);
    for (int64_t i = 0; i < K * b_cols; i++) bf[i] = test_rng_uniform(r, -1.0f, 1.0f);
    float *out = (float *)test_xmalloc(d_bytes);

    /* device tensors */
    ggvk_buffer *bufs[3] = {NULL, NULL, NULL};
    ggvk_tensor A, B, D;
    if (c->one_buffer) {
        const size_t ob = test_align_up(a_bytes, TEST_TENSOR_ALIGN);
        const size_t od = ob + test_align_up(b_bytes, TEST_TENSOR_ALIGN);
        bufs[0] = test_buffer_alloc(be, od + d_bytes);
        A = test_tensor(GGVK_TYPE_Q4_0, K, M, c->a2, c->a3, bufs[0], 0);
        B = test_tensor(GGVK_TYPE_F32, K, N, c->b2, c->b3, bufs[0], ob);
        D = test_tensor(GGVK_TYPE_F32, M, N, c->b2, c->b3, bufs[0], od);
    } else {
        bufs[0] = test_buffer_alloc(be, a_bytes);
        bufs[1] = test_buffer_alloc(be, b_bytes);
        bufs[2] = test_buffer_alloc(be, d_bytes);
        A = test_tensor(GGVK_TYPE_Q4_0, K, M, c->a2, c->a3, bufs[0], 0);
        B = test_tensor(GGVK_TYPE_F32, K, N, c->b2, c->b3, bufs[1], 0);
        D = test_tensor(GGVK_TYPE_F32, M, N, c->b2, c->b3, bufs[2], 0);
    }
    size_t nb = 0;
    CHECK_OK(ggvk_tensor_nbytes(&A, &nb));
    CHECKF(nb == a_bytes, "A nbytes %zu, expected %zu", nb, a_bytes);
    CHECK_OK(ggvk_tensor_set(&A, aq, 0, a_bytes));
    CHECK_OK(ggvk_tensor_set(&B, bf, 0, b_bytes));
    /* 0xFF bytes are NaNs: every output element must be written */
    CHECK_OK(ggvk_buffer_memset(D.buffer, D.offset, 0xFF, d_bytes));

    ggvk_graph *g = NULL;
    CHECK_OK(ggvk_graph_new(&g));
    CHECK(g != NULL);
    CHECK_OK(ggvk_graph_mul_mat(g, &A, &B, &D));
    if (c->async) {
        CHECK_OK(ggvk_graph_compute_async(be, g));
        CHECK_OK(ggvk_synchronize(be));
    } else {
        CHECK_OK(ggvk_graph_compute(be, g));
    }
    memset(out, 0, d_bytes);
    CHECK_OK(ggvk_tensor_get(&D, out, 0, d_bytes));

    /* reference: dst[m, n, i2, i3] = sum_k A[k, m, i2 / (b2/a2), i3 / (b3/a3)] * B[k, n, i2, i3] */
    const int64_t r2 = c->b2 / c->a2, r3 = c->b3 / c->a3;
    double worst = 0.0;
    for (int64_t i3 = 0; i3 < c->b3; i3++) {
        for (int64_t i2 = 0; i2 < c->b2; i2++) {
            const float *ab = af + ((i3 / r3) * c->a2 + (i2 / r2)) * M * K;
            for (int64_t n = 0; n < N; n++) {
                const float *x = bf + ((i3 * c->b2 + i2) * N + n) * K;
                const float *o = out + ((i3 * c->b2 + i2) * N + n) * M;
                for (int64_t m = 0; m < M; m++) {
                    const float *a = ab + m * K;
                    double sum = 0.0, mag = 0.0, qbound = 0.0;
                    for (int64_t k = 0; k < K; k++) {
                        const double p = (double)a[k] * (double)x[k];
                        sum += p;
                        mag += fabs(p);
                    }
                    /* With Q4_0 weights ggvk rounds x to 8 bits per 32-value block first, as ggml's CPU backend does:
                     * |x - x'| <= d/2 + 127 d 2^-11 (d = max|x|/127, kept as f16) bounds the change. */
                    {
                        for (int64_t kb = 0; kb < K; kb += 32) {
                            double amax = 0.0, asum = 0.0;
                            for (int64_t k = kb; k < kb + 32; k++) {
                                if (fabs((double)x[k]) > amax) amax = fabs((double)x[k]);
                                asum += fabs((double)a[k]);
                            }
                            qbound += amax / 127.0 * (0.5 + 127.0 / 2048.0) * asum;
                        }
                    }
                    const double err = (fabs((double)o[m] - sum) - 1.01 * qbound) / (mag + 1e-6);
                    CHECKF(err < 1e-4, /* also false for NaN */
                           "%s: dst[m=%" PRId64 ", n=%" PRId64 ", %" PRId64 ", %" PRId64
                           "] = %.9g, reference %.9g (sum|a*x| %.6g, rel err %.3g)",
                           c->name, m, n, i2, i3, (double)o[m], sum, mag, err);
                    if (err > worst) worst = err;
                }
            }
        }
    }

    ggvk_graph_free(g);
    for (int i = 0; i < 3; i++) ggvk_buffer_free(bufs[i]);
    free(af);
    free(aq);
    free(bf);
    free(out);
    return worst;
}

int main(void)
{
    test_rng r = test_rng_init("test_matvec_q4_0");
    const int64_t n_blocks = 4000;

    self_test_f16();
    test_quantize_bitexact(&r, n_blocks);
    printf("quantize/dequantize Q4_0: %" PRId64 " blocks bit-exact\n", n_blocks);

    ggvk_backend *be = test_init_backend("test_matvec_q4_0");

    /* name, K, M, N, a2, a3, b2, b3, one_buffer, async */
    const mm_case cases[] = {
        {"matvec K=4096 M=333", 4096, 333, 1, 1, 1, 1, 1, 0, 0},
        {"matvec K=4096 M=4096", 4096, 4096, 1, 1, 1, 1, 1, 0, 0},
        {"matvec K=96 M=333", 96, 333, 1, 1, 1, 1, 1, 0, 0},
        {"matvec K=96 M=4096 (async)", 96, 4096, 1, 1, 1, 1, 1, 0, 1},
        {"matmul K=4096 M=333 N=7", 4096, 333, 7, 1, 1, 1, 1, 0, 0},
        {"matmul K=96 M=333 N=7", 96, 333, 7, 1, 1, 1, 1, 0, 0},
        {"matmul K=96 M=333 N=33", 96, 333, 33, 1, 1, 1, 1, 0, 0},
        {"broadcast A[K,M,2,1] B[K,3,6,1] K=512 M=200 (one buffer, async)", 512, 200, 3, 2, 1, 6, 1, 1, 1},
        {"broadcast matvec A[K,M,2,1] B[K,1,6,1] K=256 M=333", 256, 333, 1, 2, 1, 6, 1, 0, 0},
        {"broadcast A[K,M,1,2] B[K,2,2,4] K=96 M=65 (one buffer)", 96, 65, 2, 1, 2, 2, 4, 1, 0},
    };
    const size_t n_cases = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n_cases; i++) {
        const double worst = run_mul_mat(be, &r, &cases[i]);
        printf("  %-70s max rel err %.3g\n", cases[i].name, worst);
    }

    ggvk_free(be);
    printf("test_matvec_q4_0: OK (f16 conversion self-test, %" PRId64
           " Q4_0 blocks quantize+dequantize bit-exact, %zu mul_mat cases within 1e-4 "
           "relative error beyond the 8-bit rounding bound of x)\n",
           n_blocks, n_cases);
    return 0;
}
