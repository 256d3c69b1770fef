/* rope_ext (F32) against a C reference: normal and neox modes, full and partial
 * rotation, plain and YaRN parameters, with and without freq_factors, plus two
 * dependent rope nodes in one graph. */
#include "test_util.h"

#define TEST_PI_F 3.14159265358979323846f

/* --------------------------------------------------------------------------- */
/* reference                                                                   */
/* --------------------------------------------------------------------------- */

static float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base)
{
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2.0f * TEST_PI_F)) /
           (2.0f * logf(base));
}

/* x, dst: contiguous F32 [ne0, ne1, ne2, ne3]; pos: ne2 positions; ff: n_dims/2 or NULL */
static void rope_ref(const float *x, const int32_t *pos, const float *ff, float *dst,
                     const int64_t ne[4], const ggvk_rope_params *p)
{
    const int n_dims = p->n_dims;
    const int neox = p->mode == GGVK_ROPE_MODE_NEOX;
    const float theta_scale = powf(p->freq_base, -2.0f / (float)n_dims);

    float lo = floorf(yarn_corr_dim(n_dims, p->n_ctx_orig, p->beta_fast, p->freq_base));
    float hi = ceilf(yarn_corr_dim(n_dims, p->n_ctx_orig, p->beta_slow, p->freq_base));
    const float corr0 = lo > 0.0f ? lo : 0.0f;
    const float corr1 = hi < (float)(n_dims - 1) ? hi : (float)(n_dims - 1);

    for (int64_t i3 = 0; i3 < ne[3]; i3++) {
        for (int64_t i2 = 0; i2 < ne[2]; i2++) {
            for (int64_t i1 = 0; i1 < ne[1]; i1++) {
                const int64_t row = ((i3 * ne[2] + i2) * ne[1] + i1) * ne[0];
                const float *xr = x + row;
                float *dr = dst + row;
                memcpy(dr, xr, sizeof(float) * (size_t)ne[0]); /* dims >= n_dims unchanged */
                for (int i0 = 0; i0 < n_dims; i0 += 2) {
                    float theta_extrap = (float)pos[i2] * powf(theta_scale, (float)(i0 / 2));
                    if (ff != NULL) {
                        theta_extrap /= ff[i0 / 2];
                    }
                    const float theta_interp = p->freq_scale * theta_extrap;
                    float theta = theta_interp;
                    float mscale = p->attn_factor;
                    if (p->ext_factor != 0.0f) {
                        float y = ((float)(i0 / 2) - corr0) /
                                  (corr1 - corr0 > 0.001f ? corr1 - corr0 : 0.001f);
                        y = y < 0.0f ? 0.0f : y;
                        y = y > 1.0f ? 1.0f : y;
                        const float ramp_mix = (1.0f - y) * p->ext_factor;
                        theta = theta_interp * (1.0f - ramp_mix) + theta_extrap * ramp_mix;
                        mscale *= 1.0f + 0.1f * logf(1.0f / p->freq_scale);
                    }
                    const float c = cosf(theta) * mscale;
                    const float s = sinf(theta) * mscale;
                    const int a = neox ? i0 / 2 : i0;
                    const int b = neox ? i0 / 2 + n_dims / 2 : i0 + 1;
                    const float x0 = xr[a], x1 = xr[b];
                    dr[a] = x0 * c - x1 * s;
                    dr[b] = x0 * s + x1 * c;
                }
            }
        }
    }
}

/* --------------------------------------------------------------------------- */

typedef struct pset {
    const char *name;
    float freq_base, freq_scale, ext_factor, attn_factor, beta_fast, beta_slow;
    int n_ctx_orig;
} pset;

static ggvk_rope_params make_params(const pset *ps, int n_dims, int mode)
{
    ggvk_rope_params p;
    memset(&p, 0, sizeof p);
    p.n_dims = n_dims;
    p.mode = mode;
    p.n_ctx_orig = ps->n_ctx_orig;
    p.freq_base = ps->freq_base;
    p.freq_scale = ps->freq_scale;
    p.ext_factor = ps->ext_factor;
    p.attn_factor = ps->attn_factor;
    p.beta_fast = ps->beta_fast;
    p.beta_slow = ps->beta_slow;
    return p;
}

/* max over elements of |got - ref| / (1 + |ref|); fails the test at 1e-4 */
static double compare(const char *what, const float *got, const float *ref, int64_t n)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double err = fabs((double)got[i] - (double)ref[i]);
        const double tol = 1e-4 * (1.0 + fabs((double)ref[i]));
        CHECKF(err < tol, /* also false for NaN */
               "%s: element %" PRId64 " = %.9g, reference %.9g (abs err %.3g, tol %.3g)", what, i,
               (double)got[i], (double)ref[i], err, tol);
        const double rel = err / (1.0 + fabs((double)ref[i]));
        if (rel > worst) worst = rel;
    }
    return worst;
}

int main(void)
{
    test_rng r = test_rng_init("test_rope");
    ggvk_backend *be = test_init_backend("test_rope");

    const int64_t ne0 = 128, n_heads = 4, n_tokens = 5, ne3_max = 2;
    const int64_t n_max = ne0 * n_heads * n_tokens * ne3_max;
    const size_t bytes_max = sizeof(float) * (size_t)n_max;

    /* one buffer: x | pos | freq_factors | dst | dst2, at aligned offsets */
    const size_t off_pos = test_align_up(bytes_max, TEST_TENSOR_ALIGN);
    const size_t off_ff = off_pos + TEST_TENSOR_ALIGN;
    const size_t off_dst = off_ff + TEST_TENSOR_ALIGN;
    const size_t off_dst2 = off_dst + test_align_up(bytes_max, TEST_TENSOR_ALIGN);
    ggvk_buffer *buf = test_buffer_alloc(be, off_dst2 + bytes_max);

    float *x = (float *)test_xmalloc(bytes_max);
    float *ref = (float *)test_xmalloc(bytes_max);
    float *ref2 = (float *)test_xmalloc(bytes_max);
    float *out = (float *)test_xmalloc(bytes_max);
    float ff[64];
    int32_t pos[5];

    const pset psets[] = {
        {"plain", 10000.0f, 1.0f, 0.0f, 1.0f, 32.0f, 1.0f, 4096},
        {"yarn", 10000.0f, 0.25f, 1.0f, 1.0f, 32.0f, 1.0f, 4096},
        {"yarn-mixed", 500000.0f, 0.5f, 0.5f, 0.8f, 16.0f, 2.0f, 8192},
    };
    const int n_psets = (int)(sizeof psets / sizeof psets[0]);
    int modes[2];
    modes[0] = GGVK_ROPE_MODE_NORMAL;
    modes[1] = GGVK_ROPE_MODE_NEOX;
    const int dims_list[2] = {128, 64};

    int n_cases = 0;
    double worst_all = 0.0;
    for (int ips = 0; ips < n_psets; ips++) {
        for (int im = 0; im < 2; im++) {
            for (int id = 0; id < 2; id++) {
                for (int use_ff = 0; use_ff < 2; use_ff++) {
                    /* the last combination also runs with ne3 = 2 */
                    const int64_t ne3 = (ips == n_psets - 1 && im == 1 && id == 1 && use_ff) ? 2 : 1;
                    const int n_dims = dims_list[id];
                    const int64_t ne[4] = {ne0, n_heads, n_tokens, ne3};
                    const int64_t n = ne0 * n_heads * n_tokens * ne3;
                    const size_t bytes = sizeof(float) * (size_t)n;

                    for (int64_t i = 0; i < n; i++) x[i] = test_rng_uniform(&r, -1.0f, 1.0f);
                    for (int i = 0; i < n_tokens; i++) pos[i] = (int32_t)test_rng_below(&r, 128);
                    for (int i = 0; i < n_dims / 2; i++) ff[i] = test_rng_uniform(&r, 1.0f, 8.0f);

                    ggvk_tensor tx = test_tensor(GGVK_TYPE_F32, ne0, n_heads, n_tokens, ne3, buf, 0);
                    ggvk_tensor tpos = test_tensor(GGVK_TYPE_I32, n_tokens, 1, 1, 1, buf, off_pos);
                    ggvk_tensor tff = test_tensor(GGVK_TYPE_F32, n_dims / 2, 1, 1, 1, buf, off_ff);
                    ggvk_tensor tdst = test_tensor(GGVK_TYPE_F32, ne0, n_heads, n_tokens, ne3, buf, off_dst);
                    CHECK_OK(ggvk_tensor_set(&tx, x, 0, bytes));
                    CHECK_OK(ggvk_tensor_set(&tpos, pos, 0, sizeof pos));
                    CHECK_OK(ggvk_tensor_set(&tff, ff, 0, sizeof(float) * (size_t)(n_dims / 2)));
                    CHECK_OK(ggvk_buffer_memset(buf, off_dst, 0xFF, bytes)); /* NaN */

                    const ggvk_rope_params p = make_params(&psets[ips], n_dims, modes[im]);
                    ggvk_graph *g = NULL;
                    CHECK_OK(ggvk_graph_new(&g));
                    CHECK_OK(ggvk_graph_rope(g, &tx, &tpos, use_ff ? &tff : NULL, &tdst, &p));
                    CHECK_OK(ggvk_graph_compute(be, g));
                    ggvk_graph_free(g);

                    memset(out, 0, bytes);
                    CHECK_OK(ggvk_tensor_get(&tdst, out, 0, bytes));
                    rope_ref(x, pos, use_ff ? ff : NULL, ref, ne, &p);

                    char what[160];
                    snprintf(what, sizeof what, "rope %s mode=%s n_dims=%d ff=%s ne3=%d",
                             psets[ips].name, im ? "neox" : "normal", n_dims, use_ff ? "yes" : "no",
                             (int)ne3);
                    const double w = compare(what, out, ref, n);
                    printf("  %-60s max err %.3g\n", what, w);
                    if (w > worst_all) worst_all = w;
                    /* the input must be untouched */
                    CHECK_OK(ggvk_tensor_get(&tx, out, 0, bytes));
                    CHECKF(memcmp(out, x, bytes) == 0, "%s: rope modified its input", what);
                    n_cases++;
                }
            }
        }
    }

    /* two dependent nodes in one graph: dst = rope(x); dst2 = rope(dst) (neox, YaRN, ff) */
    {
        const int64_t ne[4] = {ne0, n_heads, n_tokens, 1};
        const int64_t n = ne0 * n_heads * n_tokens;
        const size_t bytes = sizeof(float) * (size_t)n;
        const int n_dims = 64;
        for (int64_t i = 0; i < n; i++) x[i] = test_rng_uniform(&r, -1.0f, 1.0f);
        for (int i = 0; i < n_tokens; i++) pos[i] = (int32_t)test_rng_below(&r, 128);
        for (int i = 0; i < n_dims / 2; i++) ff[i] = test_rng_uniform(&r, 1.0f, 8.0f);
        ggvk_tensor tx = test_tensor(GGVK_TYPE_F32, ne0, n_heads, n_tokens, 1, buf, 0);
        ggvk_tensor tpos = test_tensor(GGVK_TYPE_I32, n_tokens, 1, 1, 1, buf, off_pos);
        ggvk_tensor tff = test_tensor(GGVK_TYPE_F32, n_dims / 2, 1, 1, 1, buf, off_ff);
        ggvk_tensor tdst = test_tensor(GGVK_TYPE_F32, ne0, n_heads, n_tokens, 1, buf, off_dst);
        ggvk_tensor tdst2 = test_tensor(GGVK_TYPE_F32, ne0, n_heads, n_tokens, 1, buf, off_dst2);
        CHECK_OK(ggvk_tensor_set(&tx, x, 0, bytes));
        CHECK_OK(ggvk_tensor_set(&tpos, pos, 0, sizeof pos));
        CHECK_OK(ggvk_tensor_set(&tff, ff, 0, sizeof(float) * (size_t)(n_dims / 2)));
        CHECK_OK(ggvk_buffer_memset(buf, off_dst, 0xFF, bytes));
        CHECK_OK(ggvk_buffer_memset(buf, off_dst2, 0xFF, bytes));

        const ggvk_rope_params p = make_params(&psets[1], n_dims, GGVK_ROPE_MODE_NEOX);
        ggvk_graph *g = NULL;
        CHECK_OK(ggvk_graph_new(&g));
        CHECK_OK(ggvk_graph_rope(g, &tx, &tpos, &tff, &tdst, &p));
        CHECK_OK(ggvk_graph_rope(g, &tdst, &tpos, &tff, &tdst2, &p));
        /* run it twice: a graph can be computed again */
        CHECK_OK(ggvk_graph_compute(be, g));
        CHECK_OK(ggvk_buffer_memset(buf, off_dst2, 0xFF, bytes));
        CHECK_OK(ggvk_graph_compute_async(be, g));
        CHECK_OK(ggvk_synchronize(be));
        ggvk_graph_free(g);

        rope_ref(x, pos, ff, ref, ne, &p);
        rope_ref(ref, pos, ff, ref2, ne, &p);
        memset(out, 0, bytes);
        CHECK_OK(ggvk_tensor_get(&tdst, out, 0, bytes));
        double w = compare("chained rope, first node", out, ref, n);
        memset(out, 0, bytes);
        CHECK_OK(ggvk_tensor_get(&tdst2, out, 0, bytes));
        const double w2 = compare("chained rope, second node", out, ref2, n);
        if (w2 > w) w = w2;
        printf("  %-60s max err %.3g\n", "chained rope x2 (neox, yarn, ff), computed twice", w);
        if (w > worst_all) worst_all = w;
        n_cases++;
    }

    ggvk_buffer_free(buf);
    ggvk_free(be);
    free(x);
    free(ref);
    free(ref2);
    free(out);
    printf("test_rope: OK (%d rope cases: normal/neox x n_dims 128/64 x plain/yarn/yarn-mixed x "
           "freq_factors on/off, ne3=2, chained; max err/(1+|ref|) %.3g < 1e-4)\n",
           n_cases, worst_all);
    return 0;
}
