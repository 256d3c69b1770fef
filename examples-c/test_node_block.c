/* ggvk_graph_node, the generic node call:
 *  1. a small transformer block (RMS_NORM, MUL, MUL_MAT with Q4_0 / F16 / F32 weights and permuted views, ROPE,
 *     SOFT_MAX with a causal mask over 4 positions, CPY, ADD, SwiGLU) built only through ggvk_graph_node, checked
 *     node by node against C references computed from the GPU's own inputs, and end to end against a double
 *     precision reference of the whole block; the graph is computed twice (new input bytes) after its weight
 *     buffer's handle was freed;
 *  2. MUL_MAT for every weight type the header lists, each result within the error bound the header documents;
 *  3. bad descriptors: status codes and messages, the graph unchanged and still usable after each refusal. */
#include "test_util.h"

#define D 64  /* model width */
#define H 2   /* heads */
#define HD 32 /* head size */
#define T 4   /* positions */
#define F 128 /* feed-forward width */

static const double U = 1.0 / 16777216.0; /* 2^-24 */

/* ------------------------------------------------------------------------- */
/* a bump allocator of tensors in one buffer                                  */
/* ------------------------------------------------------------------------- */

typedef struct arena {
    ggvk_buffer *buf;
    size_t used, cap;
} arena;

static ggvk_tensor arena_tensor(arena *a, int32_t type, int64_t ne0, int64_t ne1, int64_t ne2)
{
    size_t rs = 0;
    CHECK_OK(ggvk_row_size(type, ne0, &rs));
    const size_t off = a->used;
    a->used = test_align_up(off + rs * (size_t)(ne1 * ne2), TEST_TENSOR_ALIGN);
    CHECKF(a->used <= a->cap, "arena of %zu bytes is full", a->cap);
    return test_tensor(type, ne0, ne1, ne2, 1, a->buf, off);
}

/* A view of t's bytes with another shape and strides (nb in bytes). */
static ggvk_tensor view(const ggvk_tensor *t, int64_t ne0, int64_t ne1, int64_t ne2, size_t nb0, size_t nb1,
                        size_t nb2)
{
    ggvk_tensor v = *t;
    v.ne[0] = ne0;
    v.ne[1] = ne1;
    v.ne[2] = ne2;
    v.ne[3] = 1;
    v.nb[0] = nb0;
    v.nb[1] = nb1;
    v.nb[2] = nb2;
    v.nb[3] = nb2 * (size_t)ne2;
    return v;
}

static void get_f32(const ggvk_tensor *t, float *out, size_t n)
{
    CHECK_OK(ggvk_tensor_get(t, out, 0, n * sizeof(float)));
}

/* ------------------------------------------------------------------------- */
/* node helpers: every node goes through ggvk_graph_node                       */
/* ------------------------------------------------------------------------- */

static ggvk_node_desc desc_for(int32_t op, const ggvk_tensor *s0, const ggvk_tensor *s1, const ggvk_tensor *dst)
{
    ggvk_node_desc d;
    memset(&d, 0xAB, sizeof d); /* garbage first: ggvk_node_desc_init must set every field */
    CHECK_OK(ggvk_node_desc_init(&d, op));
    d.src[0] = s0;
    d.src[1] = s1;
    d.dst = dst;
    return d;
}

static void node(ggvk_graph *g, const ggvk_node_desc *d)
{
    const ggvk_status s = ggvk_graph_node(g, d);
    CHECKF(s == GGVK_STATUS_OK, "ggvk_graph_node(%s) returned %s", ggvk_op_name(d->op), test_status_name(s));
}

/* ------------------------------------------------------------------------- */
/* the documented mat-vec error bound                                          */
/* ------------------------------------------------------------------------- */

static int env_is(const char *name, const char *value)
{
    const char *v = getenv(name);
    return v != NULL && strcmp(v, value) == 0;
}

/* Bound on |x_k - x'_k| for activation k (of a column of K) for weights of `type`, from the header's list. */
static double act_err(int32_t type, const float *x, int64_t K, int64_t k)
{
    int block = 0; /* 0: no rounding; 1: f16; 2: bf16; 32 / 256: 8-bit blocks */
    if (type == GGVK_TYPE_F16) {
        block = 1;
    } else if (type == GGVK_TYPE_Q4_0 || type == GGVK_TYPE_Q8_0) {
        block = env_is("GGVK_INT_DOT", "0") ? 0 : 32;
    } else if ((type == GGVK_TYPE_Q4_K || type == GGVK_TYPE_Q5_K || type == GGVK_TYPE_Q6_K) &&
               !env_is("GGVK_INT_DOT", "0") && !env_is("GGVK_KQUANT_MATVEC", "0")) {
        block = 256; /* the integer-dot mat-vec's Q8_K grid (where the device has integer dot products) */
    } else if ((type == GGVK_TYPE_Q2_K || type == GGVK_TYPE_Q3_K || type == GGVK_TYPE_IQ4_XS) &&
               !env_is("GGVK_INT_DOT", "0") && !env_is("GGVK_INT_DOT_KQUANT_MORE", "0")) {
        block = 256;
    } else if ((type == GGVK_TYPE_Q4_1 || type == GGVK_TYPE_Q5_0 || type == GGVK_TYPE_Q5_1 ||
                type == GGVK_TYPE_MXFP4 || type == GGVK_TYPE_IQ4_NL) &&
               !env_is("GGVK_INT_DOT", "0") && !env_is("GGVK_INT_DOT_BLOCK32", "0")) {
        block = 32; /* the integer-dot mat-vec's 8-bit blocks */
    } else if (type == GGVK_TYPE_IQ4_NL || type == GGVK_TYPE_NVFP4 || type == GGVK_TYPE_Q1_0 || type == GGVK_TYPE_Q2_0) {
        block = env_is("GGVK_ROUND_ACTIVATIONS", "0") ? 0 : 32;
    } else if (type != GGVK_TYPE_F32 && env_is("GGVK_ROUND_ACTIVATIONS", "1")) {
        block = type == GGVK_TYPE_BF16 ? 2 : (type >= GGVK_TYPE_Q2_K && type <= GGVK_TYPE_Q6_K) ? 256 : 32;
    }
    const double ax = fabs((double)x[k]);
    if (block == 0) return 0.0;
    if (block == 1) return ax * (1.0 / 2048.0) + 1.0 / 33554432.0;
    if (block == 2) return ax * (1.0 / 256.0);
    double amax = 0.0;
    const int64_t b0 = k / block * block;
    for (int64_t j = b0; j < b0 + block && j < K; j++) {
        if (fabs((double)x[j]) > amax) amax = fabs((double)x[j]);
    }
    const double d = amax / 127.0;
    return d * (0.5 + 127.0 / 2048.0) + 2.0 * U * d + 1.0 / 262144.0 * (block == 32);
}

/* Q4_1 / Q5_1 on the integer-dot mat-vec take each block's min against ggml Q8_1's s = f16(d * sum(q)) (d before its
 * f16 rounding), as the CPU's dot products do, instead of the rounded activations' sum: per block |m| 2^-10 |sum x'|
 * more, with |m| at most the block's largest |w| (the min is the value of a code-0 element). */
static double q8_1_min_term(int32_t type, const float *w, const float *x, const double *e, int64_t K)
{
    if ((type != GGVK_TYPE_Q4_1 && type != GGVK_TYPE_Q5_1) || env_is("GGVK_INT_DOT", "0") ||
        env_is("GGVK_INT_DOT_BLOCK32", "0")) {
        return 0.0;
    }
    double extra = 0.0;
    for (int64_t b0 = 0; b0 < K; b0 += 32) {
        double wmax = 0.0, xs = 0.0;
        for (int64_t k = b0; k < b0 + 32 && k < K; k++) {
            if (fabs((double)w[k]) > wmax) wmax = fabs((double)w[k]);
            xs += fabs((double)x[k]) + e[k];
        }
        extra += wmax * xs * 1.01 / 1024.0;
    }
    return extra;
}

/* Check y = W x (W [K, M] row-major by output, host copies of the exact weight values) within the bound:
 * |y - sum w x| <= sum |w| |x - x'| + (K + 2) 2^-24 sum |w| (|x| + |x - x'|) (+ subnormal slack). Returns the
 * largest error as a fraction of the bound. */
static double check_matvec(const char *what, int32_t type, const float *w, const float *x, const float *y,
                           int64_t K, int64_t M, int64_t N)
{
    double worst = 0.0;
    double *e = (double *)test_xmalloc(sizeof(double) * (size_t)K);
    for (int64_t n = 0; n < N; n++) {
        const float *xc = x + n * K;
        for (int64_t k = 0; k < K; k++) e[k] = act_err(type, xc, K, k);
        for (int64_t m = 0; m < M; m++) {
            const float *wr = w + m * K;
            double sum = 0.0, round = 0.0, mag = 0.0;
            for (int64_t k = 0; k < K; k++) {
                sum += (double)wr[k] * (double)xc[k];
                round += fabs((double)wr[k]) * e[k];
                mag += fabs((double)wr[k]) * (fabs((double)xc[k]) + e[k]);
            }
            double bound = round + (double)(K + 2) * U * mag + (double)K * 1.2e-38;
            bound += q8_1_min_term(type, wr, xc, e, K);
            const double got = (double)y[n * M + m];
            const double err = fabs(got - sum);
            CHECKF(err <= bound, /* also false for NaN */
                   "%s: y[%" PRId64 ", %" PRId64 "] = %.9g, exact %.9g: error %.3g above the documented bound %.3g",
                   what, m, n, got, sum, err, bound);
            if (bound > 0 && err / bound > worst) worst = err / bound;
        }
    }
    free(e);
    return worst;
}

/* ------------------------------------------------------------------------- */
/* small references                                                           */
/* ------------------------------------------------------------------------- */

#define CLOSE(what, i, got, ref, rtol, atol)                                                                  \
    CHECKF(fabs((double)(got) - (double)(ref)) <= (atol) + (rtol) * fabs((double)(ref)),                      \
           "%s[%d] = %.9g, reference %.9g", what, (int)(i), (double)(got), (double)(ref))

static void ref_rms_norm(const float *x, double *y, int n, int rows, double eps)
{
    for (int r = 0; r < rows; r++) {
        double ss = 0.0;
        for (int i = 0; i < n; i++) ss += (double)x[r * n + i] * x[r * n + i];
        const double s = 1.0 / sqrt(ss / n + eps);
        for (int i = 0; i < n; i++) y[r * n + i] = x[r * n + i] * s;
    }
}

/* rope, normal mode, all dims rotated: x [HD, H, T] */
static void ref_rope(const float *x, double *y, const int32_t *pos, double base)
{
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < H; h++) {
            const float *r = x + (t * H + h) * HD;
            double *o = y + (t * H + h) * HD;
            for (int i = 0; i < HD; i += 2) {
                const double th = pos[t] * pow(base, -(double)i / HD);
                o[i] = r[i] * cos(th) - r[i + 1] * sin(th);
                o[i + 1] = r[i] * sin(th) + r[i + 1] * cos(th);
            }
        }
    }
}

static double silu(double v)
{
    return v / (1.0 + exp(-v));
}

/* ------------------------------------------------------------------------- */
/* 1. the transformer block                                                    */
/* ------------------------------------------------------------------------- */

typedef struct weights {
    /* exact values (what the GPU multiplies by), row m = output m */
    float wq[D * D], wk[D * D], wv[D * D], wo[D * D], wg[F * D], wu[F * D], wd[D * F], gnorm[D];
} weights;

/* Random weights of `type` with K inputs and M outputs: bytes into `bytes`, exact values into `w`. */
static void make_weights(test_rng *r, int32_t type, int64_t K, int64_t M, float scale, void *bytes, float *w)
{
    for (int64_t i = 0; i < K * M; i++) w[i] = test_rng_normal(r) * scale;
    CHECK_OK(ggvk_quantize(type, w, bytes, K * M));
    CHECK_OK(ggvk_dequantize(type, bytes, w, K * M));
}

static void test_block(ggvk_backend *be, test_rng *r)
{
    static weights W;
    const double eps = 1e-5, base = 10000.0, kq_scale = 1.0 / sqrt((double)HD);

    /* weights in their own buffer, whose handle is freed once the graph is built */
    arena wa = {test_buffer_alloc(be, 1 << 16), 0, 1 << 16};
    ggvk_tensor wq = arena_tensor(&wa, GGVK_TYPE_Q4_0, D, D, 1);
    ggvk_tensor wk = arena_tensor(&wa, GGVK_TYPE_F16, D, D, 1);
    ggvk_tensor wv = arena_tensor(&wa, GGVK_TYPE_Q4_0, D, D, 1);
    ggvk_tensor wo = arena_tensor(&wa, GGVK_TYPE_Q4_0, D, D, 1);
    ggvk_tensor wg = arena_tensor(&wa, GGVK_TYPE_F16, D, F, 1);
    ggvk_tensor wu = arena_tensor(&wa, GGVK_TYPE_Q4_0, D, F, 1);
    ggvk_tensor wd = arena_tensor(&wa, GGVK_TYPE_Q4_0, F, D, 1);
    ggvk_tensor gn = arena_tensor(&wa, GGVK_TYPE_F32, D, 1, 1);
    {
        unsigned char bytes[F * D * 2];
        const struct {
            ggvk_tensor *t;
            float *w;
            int64_t K, M;
        } ws[] = {{&wq, W.wq, D, D}, {&wk, W.wk, D, D}, {&wv, W.wv, D, D}, {&wo, W.wo, D, D},
                  {&wg, W.wg, D, F}, {&wu, W.wu, D, F}, {&wd, W.wd, F, D}};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
            size_t nb = 0;
            make_weights(r, ws[i].t->type, ws[i].K, ws[i].M, 1.0f / sqrtf((float)ws[i].K), bytes, ws[i].w);
            CHECK_OK(ggvk_tensor_nbytes(ws[i].t, &nb));
            CHECK_OK(ggvk_tensor_set(ws[i].t, bytes, 0, nb));
        }
        for (int i = 0; i < D; i++) W.gnorm[i] = 1.0f + 0.25f * test_rng_normal(r);
        CHECK_OK(ggvk_tensor_set(&gn, W.gnorm, 0, sizeof W.gnorm));
    }

    /* activations */
    arena a = {test_buffer_alloc(be, 1 << 17), 0, 1 << 17};
    ggvk_tensor x = arena_tensor(&a, GGVK_TYPE_F32, D, T, 1);
    ggvk_tensor pos = arena_tensor(&a, GGVK_TYPE_I32, T, 1, 1);
    ggvk_tensor mask = arena_tensor(&a, GGVK_TYPE_F32, T, T, 1);
    ggvk_tensor xn = arena_tensor(&a, GGVK_TYPE_F32, D, T, 1);
    ggvk_tensor xg = arena_tensor(&a, GGVK_TYPE_F32, D, T, 1);
    ggvk_tensor q = arena_tensor(&a, GGVK_TYPE_F32, D, T, 1);
    ggvk_tensor k = arena_tensor(&a, GGVK_TYPE_F32, D, T, 1);
    ggvk_tensor v = arena_tensor(&a, GGVK_TYPE_F32, D, T, 1);
    ggvk_tensor qr = arena_tensor(&a, GGVK_TYPE_F32, HD, H, T);
    ggvk_tensor kr = arena_tensor(&a, GGVK_TYPE_F32, HD, H, T);
    ggvk_tensor kq = arena_tensor(&a, GGVK_TYPE_F32, T, T, H); /* [kv, q, head] */
    ggvk_tensor p = arena_tensor(&a, GGVK_TYPE_F32, T, T, H);
    ggvk_tensor vt = arena_tensor(&a, GGVK_TYPE_F32, T, HD, H); /* [kv, d, head] */
    ggvk_tensor att = arena_tensor(&a, GGVK_TYPE_F32, HD, T, H); /* [d, q, head] */
    ggvk_tensor o = arena_tensor(&a, GGVK_TYPE_F32, HD, H, T);   /* heads merged: [D, T] */
    ggvk_tensor y = arena_tensor(&a, GGVK_TYPE_F32, D, T, 1);
    ggvk_tensor h = arena_tensor(&a, GGVK_TYPE_F32, D, T, 1);
    ggvk_tensor hn = arena_tensor(&a, GGVK_TYPE_F32, D, T, 1);
    ggvk_tensor gate = arena_tensor(&a, GGVK_TYPE_F32, F, T, 1);
    ggvk_tensor up = arena_tensor(&a, GGVK_TYPE_F32, F, T, 1);
    ggvk_tensor act = arena_tensor(&a, GGVK_TYPE_F32, F, T, 1);
    ggvk_tensor down = arena_tensor(&a, GGVK_TYPE_F32, D, T, 1);
    ggvk_tensor out = arena_tensor(&a, GGVK_TYPE_F32, D, T, 1);
    /* views */
    const ggvk_tensor q3 = view(&q, HD, H, T, 4, HD * 4, D * 4);         /* [HD, H, T] */
    const ggvk_tensor k3 = view(&k, HD, H, T, 4, HD * 4, D * 4);
    const ggvk_tensor qp = view(&qr, HD, T, H, 4, D * 4, HD * 4);        /* [HD, T, H] permuted */
    const ggvk_tensor kp = view(&kr, HD, T, H, 4, D * 4, HD * 4);
    const ggvk_tensor vT = view(&v, T, HD, H, D * 4, 4, HD * 4);         /* [T, HD, H] transposed */
    const ggvk_tensor attp = view(&att, HD, H, T, 4, HD * T * 4, HD * 4); /* [HD, H, T] permuted */
    const ggvk_tensor o2 = view(&o, D, T, 1, 4, D * 4, D * T * 4);       /* [D, T] */

    ggvk_graph *g = NULL;
    CHECK_OK(ggvk_graph_new(&g));
    ggvk_node_desc d;
    d = desc_for(GGVK_OP_RMS_NORM, &x, NULL, &xn);
    d.params.norm.eps = (float)eps;
    node(g, &d);
    d = desc_for(GGVK_OP_MUL, &xn, &gn, &xg); /* gn [D] broadcast over the positions */
    node(g, &d);
    d = desc_for(GGVK_OP_MUL_MAT, &wq, &xg, &q);
    node(g, &d);
    d = desc_for(GGVK_OP_MUL_MAT, &wk, &xg, &k);
    node(g, &d);
    d = desc_for(GGVK_OP_MUL_MAT, &wv, &xg, &v);
    node(g, &d);
    d = desc_for(GGVK_OP_ROPE, &q3, &pos, &qr);
    d.params.rope.n_dims = HD;
    d.params.rope.n_ctx_orig = 4096;
    node(g, &d);
    d.src[0] = &k3;
    d.dst = &kr;
    node(g, &d);
    d = desc_for(GGVK_OP_MUL_MAT, &kp, &qp, &kq); /* F32 "weights": k permuted */
    node(g, &d);
    d = desc_for(GGVK_OP_SOFT_MAX, &kq, &mask, &p);
    d.params.soft_max.scale = (float)kq_scale;
    node(g, &d);
    d = desc_for(GGVK_OP_CPY, &vT, NULL, &vt);
    node(g, &d);
    d = desc_for(GGVK_OP_MUL_MAT, &vt, &p, &att);
    node(g, &d);
    d = desc_for(GGVK_OP_CPY, &attp, NULL, &o);
    node(g, &d);
    d = desc_for(GGVK_OP_MUL_MAT, &wo, &o2, &y);
    node(g, &d);
    d = desc_for(GGVK_OP_ADD, &x, &y, &h);
    node(g, &d);
    d = desc_for(GGVK_OP_RMS_NORM, &h, NULL, &hn);
    d.params.norm.eps = (float)eps;
    node(g, &d);
    d = desc_for(GGVK_OP_MUL_MAT, &wg, &hn, &gate);
    node(g, &d);
    d = desc_for(GGVK_OP_MUL_MAT, &wu, &hn, &up);
    node(g, &d);
    d = desc_for(GGVK_OP_GLU, &gate, &up, &act); /* split form: silu(gate) * up */
    d.params.glu.kind = GGVK_GLU_SWIGLU;
    node(g, &d);
    d = desc_for(GGVK_OP_MUL_MAT, &wd, &act, &down);
    node(g, &d);
    d = desc_for(GGVK_OP_ADD, &h, &down, &out);
    node(g, &d);

    /* the graph holds the weights' memory: the handle can go now (wq... must not be passed to ggvk again) */
    ggvk_buffer_free(wa.buf);

    int32_t posv[T];
    float maskv[T * T];
    for (int t = 0; t < T; t++) posv[t] = 3 + 5 * t; /* positions need not be consecutive */
    for (int qi = 0; qi < T; qi++)
        for (int kv = 0; kv < T; kv++) maskv[qi * T + kv] = kv <= qi ? 0.0f : -INFINITY;
    CHECK_OK(ggvk_tensor_set(&pos, posv, 0, sizeof posv));
    CHECK_OK(ggvk_tensor_set(&mask, maskv, 0, sizeof maskv));

    static float X[D * T], XN[D * T], XG[D * T], Q[D * T], K_[D * T], V[D * T], QR[D * T], KR[D * T],
        KQ[T * T * H], P[T * T * H], VT[T * HD * H], ATT[HD * T * H], O[D * T], Y[D * T], Hh[D * T], HN[D * T],
        G[F * T], UP[F * T], ACT[F * T], DOWN[D * T], OUT[D * T];
    static double R[F * T], R2[F * T];
    double worst_mv = 0.0, worst_e2e = 0.0;
    for (int run = 0; run < 2; run++) {
        for (int i = 0; i < D * T; i++) X[i] = test_rng_normal(r) * (run ? 3.0f : 1.0f);
        CHECK_OK(ggvk_tensor_set(&x, X, 0, sizeof X));
        /* poison every intermediate: each node must write all of its output */
        CHECK_OK(ggvk_buffer_memset(a.buf, mask.offset + sizeof maskv, 0xFF, a.used - mask.offset - sizeof maskv));
        CHECK_OK(ggvk_graph_compute(be, g));

        get_f32(&xn, XN, D * T);
        get_f32(&xg, XG, D * T);
        get_f32(&q, Q, D * T);
        get_f32(&k, K_, D * T);
        get_f32(&v, V, D * T);
        get_f32(&qr, QR, D * T);
        get_f32(&kr, KR, D * T);
        get_f32(&kq, KQ, T * T * H);
        get_f32(&p, P, T * T * H);
        get_f32(&vt, VT, T * HD * H);
        get_f32(&att, ATT, HD * T * H);
        get_f32(&o, O, D * T);
        get_f32(&y, Y, D * T);
        get_f32(&h, Hh, D * T);
        get_f32(&hn, HN, D * T);
        get_f32(&gate, G, F * T);
        get_f32(&up, UP, F * T);
        get_f32(&act, ACT, F * T);
        get_f32(&down, DOWN, D * T);
        get_f32(&out, OUT, D * T);

        /* node by node, each from the GPU's own inputs */
        ref_rms_norm(X, R, D, T, eps);
        for (int i = 0; i < D * T; i++) CLOSE("rms_norm", i, XN[i], R[i], 1e-5, 1e-6);
        for (int i = 0; i < D * T; i++) CLOSE("mul", i, XG[i], (double)XN[i] * W.gnorm[i % D], 1e-6, 0.0);
        double w;
        w = check_matvec("q = wq x (Q4_0)", GGVK_TYPE_Q4_0, W.wq, XG, Q, D, D, T);
        if (w > worst_mv) worst_mv = w;
        w = check_matvec("k = wk x (F16)", GGVK_TYPE_F16, W.wk, XG, K_, D, D, T);
        if (w > worst_mv) worst_mv = w;
        w = check_matvec("v = wv x (Q4_0)", GGVK_TYPE_Q4_0, W.wv, XG, V, D, D, T);
        if (w > worst_mv) worst_mv = w;
        ref_rope(Q, R, posv, base);
        for (int i = 0; i < D * T; i++) CLOSE("rope q", i, QR[i], R[i], 1e-4, 1e-4);
        ref_rope(K_, R, posv, base);
        for (int i = 0; i < D * T; i++) CLOSE("rope k", i, KR[i], R[i], 1e-4, 1e-4);
        for (int hh = 0; hh < H; hh++) {
            for (int qi = 0; qi < T; qi++) {
                double s[T], mx = -INFINITY, z = 0.0;
                for (int kv = 0; kv < T; kv++) {
                    double dot = 0.0, mag = 0.0;
                    for (int e = 0; e < HD; e++) {
                        const double pr = (double)KR[(kv * H + hh) * HD + e] * QR[(qi * H + hh) * HD + e];
                        dot += pr;
                        mag += fabs(pr);
                    }
                    const int at = (hh * T + qi) * T + kv;
                    CHECKF(fabs(KQ[at] - dot) <= (HD + 2) * U * mag + 1e-30, "kq[%d] = %.9g, reference %.9g", at,
                           (double)KQ[at], dot);
                    s[kv] = KQ[at] * kq_scale + maskv[qi * T + kv];
                    if (s[kv] > mx) mx = s[kv];
                }
                for (int kv = 0; kv < T; kv++) z += exp(s[kv] - mx);
                for (int kv = 0; kv < T; kv++) {
                    const int at = (hh * T + qi) * T + kv;
                    CLOSE("soft_max", at, P[at], exp(s[kv] - mx) / z, 1e-5, 1e-7);
                    if (kv > qi) CHECKF(P[at] == 0.0f, "masked p[%d] = %g", at, (double)P[at]);
                }
            }
        }
        for (int hh = 0; hh < H; hh++)
            for (int e = 0; e < HD; e++)
                for (int kv = 0; kv < T; kv++)
                    CHECKF(VT[(hh * HD + e) * T + kv] == V[kv * D + hh * HD + e], "cpy v^T at %d %d %d", hh, e, kv);
        for (int hh = 0; hh < H; hh++) {
            for (int qi = 0; qi < T; qi++) {
                for (int e = 0; e < HD; e++) {
                    double sum = 0.0, mag = 0.0;
                    for (int kv = 0; kv < T; kv++) {
                        const double pr = (double)VT[(hh * HD + e) * T + kv] * P[(hh * T + qi) * T + kv];
                        sum += pr;
                        mag += fabs(pr);
                    }
                    const int at = (hh * T + qi) * HD + e;
                    CHECKF(fabs(ATT[at] - sum) <= (T + 2) * U * mag + 1e-30, "att[%d] = %.9g, reference %.9g", at,
                           (double)ATT[at], sum);
                    CHECKF(O[(qi * H + hh) * HD + e] == ATT[at], "cpy of the merged heads at %d", at);
                }
            }
        }
        w = check_matvec("y = wo o (Q4_0)", GGVK_TYPE_Q4_0, W.wo, O, Y, D, D, T);
        if (w > worst_mv) worst_mv = w;
        for (int i = 0; i < D * T; i++) CHECKF(Hh[i] == X[i] + Y[i], "add at %d", i);
        ref_rms_norm(Hh, R, D, T, eps);
        for (int i = 0; i < D * T; i++) CLOSE("rms_norm 2", i, HN[i], R[i], 1e-5, 1e-6);
        w = check_matvec("gate (F16)", GGVK_TYPE_F16, W.wg, HN, G, D, F, T);
        if (w > worst_mv) worst_mv = w;
        w = check_matvec("up (Q4_0)", GGVK_TYPE_Q4_0, W.wu, HN, UP, D, F, T);
        if (w > worst_mv) worst_mv = w;
        for (int i = 0; i < F * T; i++) CLOSE("swiglu", i, ACT[i], silu(G[i]) * UP[i], 1e-5, 1e-6);
        w = check_matvec("down (Q4_0)", GGVK_TYPE_Q4_0, W.wd, ACT, DOWN, F, D, T);
        if (w > worst_mv) worst_mv = w;
        for (int i = 0; i < D * T; i++) CHECKF(OUT[i] == Hh[i] + DOWN[i], "add 2 at %d", i);

        /* end to end: the whole block in double from x alone (no activation rounding) */
        {
            static double xn_[D * T], q_[D * T], k_[D * T], v_[D * T], o_[D * T], h_[D * T], a_[F * T];
            ref_rms_norm(X, xn_, D, T, eps);
            for (int i = 0; i < D * T; i++) xn_[i] *= W.gnorm[i % D];
            for (int t = 0; t < T; t++)
                for (int m = 0; m < D; m++) {
                    double sq = 0, sk = 0, sv = 0;
                    for (int e = 0; e < D; e++) {
                        sq += (double)W.wq[m * D + e] * xn_[t * D + e];
                        sk += (double)W.wk[m * D + e] * xn_[t * D + e];
                        sv += (double)W.wv[m * D + e] * xn_[t * D + e];
                    }
                    q_[t * D + m] = sq, k_[t * D + m] = sk, v_[t * D + m] = sv;
                }
            double qf[D * T], kf[D * T];
            for (int t = 0; t < T; t++) /* rope in double */
                for (int hh = 0; hh < H; hh++)
                    for (int e = 0; e < HD; e += 2) {
                        const double th = posv[t] * pow(base, -(double)e / HD);
                        const int i0 = (t * H + hh) * HD + e;
                        qf[i0] = q_[i0] * cos(th) - q_[i0 + 1] * sin(th);
                        qf[i0 + 1] = q_[i0] * sin(th) + q_[i0 + 1] * cos(th);
                        kf[i0] = k_[i0] * cos(th) - k_[i0 + 1] * sin(th);
                        kf[i0 + 1] = k_[i0] * sin(th) + k_[i0 + 1] * cos(th);
                    }
            for (int hh = 0; hh < H; hh++)
                for (int qi = 0; qi < T; qi++) {
                    double s[T], mx = -INFINITY, z = 0;
                    for (int kv = 0; kv <= qi; kv++) {
                        s[kv] = 0;
                        for (int e = 0; e < HD; e++) s[kv] += qf[(qi * H + hh) * HD + e] * kf[(kv * H + hh) * HD + e];
                        s[kv] *= kq_scale;
                        if (s[kv] > mx) mx = s[kv];
                    }
                    for (int kv = 0; kv <= qi; kv++) z += exp(s[kv] - mx);
                    for (int e = 0; e < HD; e++) {
                        double acc = 0;
                        for (int kv = 0; kv <= qi; kv++) acc += exp(s[kv] - mx) / z * v_[(kv * H + hh) * HD + e];
                        o_[(qi * H + hh) * HD + e] = acc;
                    }
                }
            for (int t = 0; t < T; t++)
                for (int m = 0; m < D; m++) {
                    double s = 0;
                    for (int e = 0; e < D; e++) s += (double)W.wo[m * D + e] * o_[t * D + e];
                    h_[t * D + m] = X[t * D + m] + s;
                }
            double hn_[D * T];
            {
                float hf[D * T];
                for (int i = 0; i < D * T; i++) hf[i] = (float)h_[i];
                ref_rms_norm(hf, hn_, D, T, eps);
            }
            for (int t = 0; t < T; t++)
                for (int f = 0; f < F; f++) {
                    double sg = 0, su = 0;
                    for (int e = 0; e < D; e++) {
                        sg += (double)W.wg[f * D + e] * hn_[t * D + e];
                        su += (double)W.wu[f * D + e] * hn_[t * D + e];
                    }
                    a_[t * F + f] = silu(sg) * su;
                }
            double rms = 0.0;
            for (int t = 0; t < T; t++)
                for (int m = 0; m < D; m++) {
                    double s = 0;
                    for (int f = 0; f < F; f++) s += (double)W.wd[m * F + f] * a_[t * F + f];
                    R2[t * D + m] = h_[t * D + m] + s;
                    rms += R2[t * D + m] * R2[t * D + m];
                }
            rms = sqrt(rms / (D * T));
            /* the 8-bit rounding of activations (as in ggml's CPU backend) moves results by a few % of their scale */
            for (int i = 0; i < D * T; i++) {
                const double e = fabs(OUT[i] - R2[i]) / rms;
                CHECKF(e < 0.1, "block output[%d] = %.9g, double reference %.9g (rms %.3g)", i, (double)OUT[i],
                       R2[i], rms);
                if (e > worst_e2e) worst_e2e = e;
            }
        }
    }
    ggvk_graph_free(g);
    ggvk_buffer_free(a.buf);
    printf("  block: 20 nodes through ggvk_graph_node, every node checked; mat-vec errors at most %.3g of the "
           "documented bound; output within %.3g x rms of the double reference; computed twice, weight handle freed\n",
           worst_mv, worst_e2e);
}

/* ------------------------------------------------------------------------- */
/* 2. every weight type                                                       */
/* ------------------------------------------------------------------------- */

/* f16 fields (d, dmin) of the K-quant blocks, which random bytes would make huge or NaN. */
static void tame_kquant(int32_t type, unsigned char *b, size_t bytes, size_t block)
{
    int offs[2] = {-1, -1};
    if (type == GGVK_TYPE_Q2_K) offs[0] = 80, offs[1] = 82;
    if (type == GGVK_TYPE_Q3_K) offs[0] = 108;
    if (type == GGVK_TYPE_Q4_K || type == GGVK_TYPE_Q5_K) offs[0] = 0, offs[1] = 2;
    if (type == GGVK_TYPE_Q6_K) offs[0] = 208;
    for (size_t at = 0; at < bytes; at += block)
        for (int i = 0; i < 2; i++)
            if (offs[i] >= 0) {
                b[at + (size_t)offs[i]] = 0x00;
                b[at + (size_t)offs[i] + 1] = (unsigned char)(0x1C + (at / block) % 3); /* 2^-8 .. 2^-6 */
            }
}

static void test_weight_types(ggvk_backend *be, test_rng *r)
{
    static const struct {
        int32_t type;
        const char *name;
        int quantizer;
    } types[] = {
        {GGVK_TYPE_F32, "F32", 1},   {GGVK_TYPE_F16, "F16", 1},   {GGVK_TYPE_BF16, "BF16", 1},
        {GGVK_TYPE_Q4_0, "Q4_0", 1}, {GGVK_TYPE_Q4_1, "Q4_1", 1}, {GGVK_TYPE_Q5_0, "Q5_0", 1},
        {GGVK_TYPE_Q5_1, "Q5_1", 1}, {GGVK_TYPE_Q8_0, "Q8_0", 1}, {GGVK_TYPE_IQ4_NL, "IQ4_NL", 1},
        {GGVK_TYPE_Q2_K, "Q2_K", 0}, {GGVK_TYPE_Q3_K, "Q3_K", 0}, {GGVK_TYPE_Q4_K, "Q4_K", 0},
        {GGVK_TYPE_Q5_K, "Q5_K", 0}, {GGVK_TYPE_Q6_K, "Q6_K", 0},   {GGVK_TYPE_NVFP4, "NVFP4", 1},
        {GGVK_TYPE_Q1_0, "Q1_0", 1}, {GGVK_TYPE_Q2_0, "Q2_0", 1},
    };
    const int64_t K = 512, M = 48, N = 3;
    float *w = (float *)test_xmalloc(sizeof(float) * (size_t)(K * M));
    float *x = (float *)test_xmalloc(sizeof(float) * (size_t)(K * N));
    float *yv = (float *)test_xmalloc(sizeof(float) * (size_t)(M * N));
    unsigned char *bytes = (unsigned char *)test_xmalloc((size_t)(K * M) * 4);
    printf("  weight types (K=%" PRId64 " M=%" PRId64 " N=%" PRId64 "), largest error / documented bound:", K, M, N);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const int32_t ty = types[i].type;
        size_t rs = 0, bb = 0;
        int64_t be_ = 0;
        CHECK_OK(ggvk_row_size(ty, K, &rs));
        CHECK_OK(ggvk_type_info(ty, &bb, &be_));
        if (types[i].quantizer) {
            make_weights(r, ty, K, M, 0.05f, bytes, w);
        } else {
            for (int64_t j = 0; j < be_; j++) x[j] = 0.0f;
            CHECK_STATUS(ggvk_quantize(ty, x, bytes, be_), GGVK_STATUS_UNSUPPORTED); /* dequantize only */
            test_rng_bytes(r, bytes, rs * (size_t)M);
            tame_kquant(ty, bytes, rs * (size_t)M, bb);
            CHECK_OK(ggvk_dequantize(ty, bytes, w, K * M));
        }
        for (int64_t j = 0; j < K * N; j++) x[j] = test_rng_normal(r) * (j % 7 == 0 ? 4.0f : 1.0f);

        ggvk_buffer *buf = test_buffer_alloc(be, 3 * 65536 + rs * (size_t)M);
        ggvk_tensor A = test_tensor(ty, K, M, 1, 1, buf, 0);
        ggvk_tensor B = test_tensor(GGVK_TYPE_F32, K, N, 1, 1, buf, test_align_up(rs * (size_t)M, 256));
        ggvk_tensor Y = test_tensor(GGVK_TYPE_F32, M, N, 1, 1, buf, B.offset + 65536);
        CHECK_OK(ggvk_tensor_set(&A, bytes, 0, rs * (size_t)M));
        CHECK_OK(ggvk_tensor_set(&B, x, 0, sizeof(float) * (size_t)(K * N)));
        CHECK_OK(ggvk_buffer_memset(buf, Y.offset, 0xFF, sizeof(float) * (size_t)(M * N)));
        ggvk_graph *g = NULL;
        CHECK_OK(ggvk_graph_new(&g));
        ggvk_node_desc d = desc_for(GGVK_OP_MUL_MAT, &A, &B, &Y);
        node(g, &d);
        CHECK_OK(ggvk_graph_compute(be, g));
        get_f32(&Y, yv, (size_t)(M * N));
        const double worst = check_matvec(types[i].name, ty, w, x, yv, K, M, N);
        printf(" %s %.2g", types[i].name, worst);
        ggvk_graph_free(g);
        ggvk_buffer_free(buf);
    }
    printf("\n");
    free(w);
    free(x);
    free(yv);
    free(bytes);
}

/* ------------------------------------------------------------------------- */
/* 3. bad descriptors                                                         */
/* ------------------------------------------------------------------------- */

static unsigned g_refusals;

/* The call returns `want` and the message contains `needle`. */
static void refused_(int line, ggvk_graph *g, const ggvk_node_desc *d, ggvk_status want, const char *needle)
{
    const ggvk_status s = ggvk_graph_node(g, d);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ggvk_last_error());
    CHECKF(s == want, "line %d: ggvk_graph_node returned %s, expected %s (\"%s\")", line, test_status_name(s),
           test_status_name(want), msg);
    CHECKF(strstr(msg, needle) != NULL, "line %d: message \"%s\" lacks \"%s\"", line, msg, needle);
    g_refusals++;
}
#define REFUSED(g, d, want, needle) refused_(__LINE__, g, d, want, needle)

static void test_refusals(ggvk_backend *be)
{
    const ggvk_status INV = GGVK_STATUS_INVALID_ARGUMENT, UNS = GGVK_STATUS_UNSUPPORTED;
    ggvk_buffer *buf = test_buffer_alloc(be, 8192);
    ggvk_tensor x = test_tensor(GGVK_TYPE_F32, 32, 4, 1, 1, buf, 0);      /* 512 B */
    ggvk_tensor y = test_tensor(GGVK_TYPE_F32, 32, 4, 1, 1, buf, 512);
    ggvk_tensor y_bad = test_tensor(GGVK_TYPE_F32, 32, 5, 1, 1, buf, 1024);
    ggvk_tensor xh = test_tensor(GGVK_TYPE_F16, 32, 4, 1, 1, buf, 2048);
    ggvk_tensor w = test_tensor(GGVK_TYPE_Q4_0, 64, 8, 1, 1, buf, 4096);
    ggvk_tensor mm = test_tensor(GGVK_TYPE_F32, 8, 4, 1, 1, buf, 3072);
    ggvk_tensor pos = test_tensor(GGVK_TYPE_I32, 4, 1, 1, 1, buf, 3584);
    ggvk_graph *g = NULL;
    CHECK_OK(ggvk_graph_new(&g));

    ggvk_node_desc d;
    CHECK_STATUS(ggvk_graph_node(g, NULL), INV);
    d = desc_for(GGVK_OP_SCALE, &x, NULL, &y);
    CHECK_STATUS(ggvk_graph_node(NULL, &d), INV);
    CHECK_STATUS(ggvk_node_desc_init(NULL, GGVK_OP_ADD), INV);

    /* ops */
    memset(&d, 0, sizeof d);
    REFUSED(g, &d, INV, "GGVK_OP_NONE");
    d = desc_for(999, &x, NULL, &y);
    REFUSED(g, &d, INV, "unknown op 999");
    d = desc_for(-1, &x, NULL, &y);
    REFUSED(g, &d, INV, "unknown op -1");
    CHECK(strcmp(ggvk_op_name(999), "GGVK_OP_UNKNOWN") == 0);
    CHECK(strcmp(ggvk_op_name(GGVK_OP_FLASH_ATTN_EXT), "GGVK_OP_FLASH_ATTN_EXT") == 0);

    /* parameters */
    d = desc_for(GGVK_OP_UNARY, &x, NULL, &y);
    REFUSED(g, &d, INV, "params.unary.kind = 0");
    d.params.unary.kind = 99;
    REFUSED(g, &d, INV, "params.unary.kind = 99 is not a ggvk_unary_op");
    d = desc_for(GGVK_OP_GLU, &x, NULL, &y);
    d.params.glu.kind = GGVK_GLU_SWIGLU;
    d.params.glu.swapped = 2;
    REFUSED(g, &d, INV, "params.glu.swapped = 2 must be 0 or 1");
    d = desc_for(GGVK_OP_RMS_NORM, &x, NULL, &y);
    d.params.norm.eps = -1.0f;
    REFUSED(g, &d, INV, "params.norm.eps = -1 must be finite and >= 0");
    d.params.norm.eps = NAN;
    REFUSED(g, &d, INV, "params.norm.eps");
    d = desc_for(GGVK_OP_GROUP_NORM, &x, NULL, &y);
    d.params.norm.groups = 0;
    REFUSED(g, &d, INV, "params.norm.groups = 0");
    d = desc_for(GGVK_OP_SOFT_MAX, &x, NULL, &y);
    d.params.soft_max.max_bias = -0.5f;
    REFUSED(g, &d, INV, "params.soft_max.max_bias");
    d = desc_for(GGVK_OP_ARGSORT, &x, NULL, &y);
    d.params.argsort.order = 5;
    REFUSED(g, &d, INV, "params.argsort.order = 5");
    d = desc_for(GGVK_OP_FLASH_ATTN_EXT, &x, &x, &y);
    d.src[2] = &x;
    d.params.flash_attn.prec = 3;
    REFUSED(g, &d, INV, "params.flash_attn.prec = 3");
    d = desc_for(GGVK_OP_ROPE, &x, &pos, &y);
    d.params.rope.n_dims = 31;
    REFUSED(g, &d, INV, "params.rope.n_dims = 31 must be even");
    d.params.rope.n_dims = 32;
    d.params.rope.mode = 8; /* multi-section rope: valid in ggml, not run by ggvk */
    REFUSED(g, &d, UNS, "params.rope.mode = 8");
    d = desc_for(GGVK_OP_SCALE, &x, NULL, &y);
    d.params.reserved[0] = 1;
    REFUSED(g, &d, INV, "params.reserved[0] = 1 must be 0");

    /* sources */
    d = desc_for(GGVK_OP_ADD, &x, NULL, &y);
    REFUSED(g, &d, INV, "GGVK_OP_ADD: src[1] (b) is NULL but required");
    d = desc_for(GGVK_OP_SCALE, &x, &x, &y);
    REFUSED(g, &d, INV, "GGVK_OP_SCALE takes 1 source(s) (x); src[1] must be NULL");
    d = desc_for(GGVK_OP_SCALE, &x, NULL, NULL);
    REFUSED(g, &d, INV, "GGVK_OP_SCALE: dst is NULL");
    {
        ggvk_tensor nobuf = x;
        nobuf.buffer = NULL;
        d = desc_for(GGVK_OP_SCALE, &nobuf, NULL, &y);
        REFUSED(g, &d, INV, "GGVK_OP_SCALE: src[0] (x)->buffer is NULL");
        ggvk_tensor past = x;
        past.offset = 8192 - 256;
        d = desc_for(GGVK_OP_SCALE, &x, NULL, &past);
        REFUSED(g, &d, GGVK_STATUS_OUT_OF_BOUNDS, "past the end of its buffer");
    }

    /* shapes and types, checked by the engine's per-op checks */
    d = desc_for(GGVK_OP_ADD, &x, &x, &y_bad);
    REFUSED(g, &d, INV, "shape");
    d = desc_for(GGVK_OP_MUL_MAT, &w, &x, &mm); /* K 64 vs 32 */
    REFUSED(g, &d, INV, "MUL_MAT: src0 ne[0] = 64 but src1 ne[0] = 32");
    d = desc_for(GGVK_OP_SOFT_MAX, &xh, NULL, &xh);
    REFUSED(g, &d, UNS, "SOFT_MAX on f16");
    d = desc_for(GGVK_OP_GET_ROWS, &x, &x, &y); /* indices must be I32 */
    REFUSED(g, &d, INV, "indices must be i32");

    /* every refusal left the graph as it was: one valid node now, and it computes */
    d = desc_for(GGVK_OP_SCALE, &x, NULL, &y);
    d.params.scale.s = 2.0f;
    d.params.scale.b = -1.0f;
    node(g, &d);
    float xin[128], yout[128];
    for (int i = 0; i < 128; i++) xin[i] = (float)i * 0.5f;
    CHECK_OK(ggvk_tensor_set(&x, xin, 0, sizeof xin));
    CHECK_OK(ggvk_graph_compute(be, g));
    get_f32(&y, yout, 128);
    for (int i = 0; i < 128; i++) CHECKF(yout[i] == xin[i] * 2.0f - 1.0f, "scale at %d: %g", i, (double)yout[i]);

    ggvk_graph_free(g);
    ggvk_buffer_free(buf);
    printf("  %u bad descriptors refused with the expected status and message; the graph stayed usable\n",
           g_refusals);
}

int main(void)
{
    test_rng r = test_rng_init("test_node_block");
    ggvk_backend *be = test_init_backend("test_node_block");
    test_refusals(be);
    test_block(be, &r);
    test_weight_types(be, &r);
    ggvk_free(be);
    printf("test_node_block: OK\n");
    return 0;
}
