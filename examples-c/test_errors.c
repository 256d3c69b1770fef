/* Error paths: each must return the documented status and leave a non-empty
 * ggvk_last_error(). (A successful call need not clear the message; not checked.) */
#include "test_util.h"

static unsigned g_checks = 0;

#define EXPECT(expr, want)                  \
    do {                                    \
        CHECK_STATUS(expr, want);           \
        g_checks++;                         \
    } while (0)
#define EXPECT2(expr, want1, want2)         \
    do {                                    \
        CHECK_STATUS2(expr, want1, want2);  \
        g_checks++;                         \
    } while (0)

static void status_strings(void)
{
    const char *names[10];
    for (int s = 0; s <= 9; s++) {
        names[s] = ggvk_status_string(s);
        CHECKF(names[s] != NULL && names[s][0] != '\0', "ggvk_status_string(%d) is NULL/empty", s);
        for (int t = 0; t < s; t++) {
            CHECKF(strcmp(names[s], names[t]) != 0, "status %d and %d share the name \"%s\"", s, t,
                   names[s]);
        }
        g_checks++;
    }
    const ggvk_status unknown[] = {10, 12345, -1, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *n = ggvk_status_string(unknown[i]);
        CHECKF(n != NULL, "ggvk_status_string(%d) is NULL", (int)unknown[i]);
        g_checks++;
    }
}

/* The header's constants have the documented (ABI) values. */
static void constants(void)
{
    CHECK(GGVK_STATUS_OK == 0 && GGVK_STATUS_INVALID_ARGUMENT == 1 &&
          GGVK_STATUS_OUT_OF_BOUNDS == 2 && GGVK_STATUS_UNSUPPORTED == 3 &&
          GGVK_STATUS_NO_DEVICE == 4 && GGVK_STATUS_OUT_OF_DEVICE_MEMORY == 5 &&
          GGVK_STATUS_OUT_OF_HOST_MEMORY == 6 && GGVK_STATUS_DEVICE_LOST == 7 &&
          GGVK_STATUS_VULKAN_ERROR == 8 && GGVK_STATUS_INTERNAL_ERROR == 9);
    CHECK(GGVK_TYPE_F32 == 0 && GGVK_TYPE_F16 == 1 && GGVK_TYPE_Q4_0 == 2 &&
          GGVK_TYPE_Q8_0 == 8 && GGVK_TYPE_I32 == 26);
    CHECK(GGVK_DEVICE_TYPE_OTHER == 0 && GGVK_DEVICE_TYPE_INTEGRATED_GPU == 1 &&
          GGVK_DEVICE_TYPE_DISCRETE_GPU == 2 && GGVK_DEVICE_TYPE_VIRTUAL_GPU == 3 &&
          GGVK_DEVICE_TYPE_CPU == 4);
    CHECK(GGVK_DEFAULT_DEVICE == UINT32_MAX);
    CHECK(GGVK_ROPE_MODE_NORMAL == 0 && GGVK_ROPE_MODE_NEOX == 2);
    CHECK(sizeof(ggvk_status) == 4);
    g_checks += 6;
}

static void device_errors(void)
{
    ggvk_device_info info;
    uint32_t u = 0;
    ggvk_backend *b = NULL;

    EXPECT(ggvk_init(0, NULL), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_init(GGVK_DEFAULT_DEVICE, NULL), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_device_count(NULL), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_default_device(NULL), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_device_get_info(0, NULL), GGVK_STATUS_INVALID_ARGUMENT);

    EXPECT(ggvk_init(1000000, &b), GGVK_STATUS_NO_DEVICE);
    EXPECT(ggvk_device_get_info(1000000, &info), GGVK_STATUS_NO_DEVICE);
    CHECK_OK(ggvk_device_count(&u));
    EXPECT(ggvk_init(u, &b), GGVK_STATUS_NO_DEVICE); /* one past the last */
}

static void buffer_errors(ggvk_backend *be)
{
    ggvk_buffer *buf = NULL;
    unsigned char data[64];
    size_t sz = 0;
    memset(data, 0x42, sizeof data);

    EXPECT(ggvk_buffer_alloc(NULL, 16, &buf), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_buffer_alloc(be, 16, NULL), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_buffer_alloc(be, 0, &buf), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT2(ggvk_buffer_alloc(be, SIZE_MAX / 2, &buf), GGVK_STATUS_OUT_OF_DEVICE_MEMORY,
            GGVK_STATUS_UNSUPPORTED);
    EXPECT2(ggvk_buffer_alloc(be, (size_t)(UINT64_C(1) << 42), &buf),
            GGVK_STATUS_OUT_OF_DEVICE_MEMORY, GGVK_STATUS_UNSUPPORTED);
    EXPECT2(ggvk_buffer_alloc(be, SIZE_MAX, &buf), GGVK_STATUS_OUT_OF_DEVICE_MEMORY,
            GGVK_STATUS_UNSUPPORTED);

    const size_t size = 64;
    ggvk_buffer *a = test_buffer_alloc(be, size);
    ggvk_buffer *c = test_buffer_alloc(be, size);

    EXPECT(ggvk_buffer_size(NULL, &sz), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_buffer_size(a, NULL), GGVK_STATUS_INVALID_ARGUMENT);

    /* out of range, including offset + size overflowing size_t */
    EXPECT(ggvk_buffer_set(a, size - 4, data, 8), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_buffer_set(a, size + 1, data, 1), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_buffer_set(a, 0, data, size + 1), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_buffer_set(a, SIZE_MAX - 2, data, 8), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_buffer_get(a, size - 4, data, 8), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_buffer_get(a, SIZE_MAX - 2, data, 8), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_buffer_get_async(be, a, size - 4, data, 8), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_buffer_get_async(be, a, SIZE_MAX - 2, data, 8), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_buffer_memset(a, size - 4, 0, 8), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_buffer_memset(a, 8, 0, SIZE_MAX - 4), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_buffer_copy(a, size - 4, c, 0, 8), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_buffer_copy(a, 0, c, size - 4, 8), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_buffer_copy(a, 0, c, SIZE_MAX - 2, 8), GGVK_STATUS_OUT_OF_BOUNDS);

    /* NULL pointers / handles */
    EXPECT(ggvk_buffer_set(a, 0, NULL, 8), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_buffer_get(a, 0, NULL, 8), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_buffer_set(NULL, 0, data, 8), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_buffer_get(NULL, 0, data, 8), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_buffer_get_async(be, a, 0, NULL, 8), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_buffer_get_async(be, NULL, 0, data, 8), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_buffer_get_async(NULL, a, 0, data, 8), GGVK_STATUS_INVALID_ARGUMENT);
    CHECK_OK(ggvk_synchronize(be));
    EXPECT(ggvk_buffer_memset(NULL, 0, 0, 8), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_buffer_copy(NULL, 0, c, 0, 8), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_buffer_copy(a, 0, NULL, 0, 8), GGVK_STATUS_INVALID_ARGUMENT);

    /* the buffers still work after all that */
    unsigned char back[64];
    memset(back, 0, sizeof back);
    CHECK_OK(ggvk_buffer_set(a, 0, data, size));
    CHECK_OK(ggvk_buffer_copy(a, 0, c, 0, size));
    CHECK_OK(ggvk_buffer_get(c, 0, back, size));
    CHECK(memcmp(back, data, size) == 0);

    ggvk_buffer_free(a);
    ggvk_buffer_free(c);
}

static void tensor_errors(ggvk_backend *be)
{
    const size_t bsize = 4096;
    ggvk_buffer *buf = test_buffer_alloc(be, bsize);
    ggvk_tensor t;
    int64_t ne[4];
    float data[64];
    size_t sz = 0;
    memset(data, 0, sizeof data);

#define SET_NE(a, b, c, d) (ne[0] = (a), ne[1] = (b), ne[2] = (c), ne[3] = (d))

    SET_NE(-1, 4, 1, 1);
    EXPECT(ggvk_tensor_init(&t, GGVK_TYPE_F32, ne, buf, 0), GGVK_STATUS_INVALID_ARGUMENT);
    SET_NE(4, 1, -3, 1);
    EXPECT(ggvk_tensor_init(&t, GGVK_TYPE_F32, ne, buf, 0), GGVK_STATUS_INVALID_ARGUMENT);
    SET_NE(33, 1, 1, 1);
    EXPECT(ggvk_tensor_init(&t, GGVK_TYPE_Q4_0, ne, buf, 0), GGVK_STATUS_INVALID_ARGUMENT);
    SET_NE(33, 1, 1, 1);
    EXPECT(ggvk_tensor_init(&t, GGVK_TYPE_Q8_0, ne, buf, 0), GGVK_STATUS_INVALID_ARGUMENT);
    SET_NE(32, 1, 1, 1);
    EXPECT2(ggvk_tensor_init(&t, 12345, ne, buf, 0), GGVK_STATUS_INVALID_ARGUMENT,
            GGVK_STATUS_UNSUPPORTED);
    EXPECT(ggvk_tensor_init(NULL, GGVK_TYPE_F32, ne, buf, 0), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_tensor_init(&t, GGVK_TYPE_F32, NULL, buf, 0), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_tensor_init(&t, GGVK_TYPE_F32, ne, NULL, 0), GGVK_STATUS_INVALID_ARGUMENT);

    /* bytes past the end of the buffer */
    SET_NE(2048, 1, 1, 1); /* 8 KiB in a 4 KiB buffer */
    EXPECT(ggvk_tensor_init(&t, GGVK_TYPE_F32, ne, buf, 0), GGVK_STATUS_OUT_OF_BOUNDS);
    SET_NE(64, 4, 1, 1); /* 1 KiB at offset 3328: ends at 4352 */
    EXPECT(ggvk_tensor_init(&t, GGVK_TYPE_F32, ne, buf, 3328), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_tensor_init(&t, GGVK_TYPE_F32, ne, buf, bsize + 256), GGVK_STATUS_OUT_OF_BOUNDS);

    /* type queries */
    size_t bb = 0;
    int64_t be_ = 0;
    EXPECT2(ggvk_type_info(12345, &bb, &be_), GGVK_STATUS_INVALID_ARGUMENT, GGVK_STATUS_UNSUPPORTED);
    EXPECT2(ggvk_row_size(12345, 32, &sz), GGVK_STATUS_INVALID_ARGUMENT, GGVK_STATUS_UNSUPPORTED);
    EXPECT(ggvk_row_size(GGVK_TYPE_Q4_0, 33, &sz), GGVK_STATUS_INVALID_ARGUMENT);
    unsigned char qout[2 * 18];
    EXPECT(ggvk_quantize(GGVK_TYPE_Q4_0, data, qout, 33), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_quantize(GGVK_TYPE_Q4_0, NULL, qout, 32), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_quantize(GGVK_TYPE_Q4_0, data, NULL, 32), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_dequantize(GGVK_TYPE_Q4_0, qout, data, 33), GGVK_STATUS_INVALID_ARGUMENT);

    /* valid tensor; set/get beyond the tensor's own bytes */
    ggvk_tensor ok = test_tensor(GGVK_TYPE_F32, 16, 1, 1, 1, buf, 0); /* 64 bytes */
    EXPECT(ggvk_tensor_nbytes(NULL, &sz), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_tensor_nbytes(&ok, NULL), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_tensor_set(&ok, data, 60, 8), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_tensor_get(&ok, data, 0, 68), GGVK_STATUS_OUT_OF_BOUNDS);
    EXPECT(ggvk_tensor_set(&ok, NULL, 0, 8), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_tensor_set(NULL, data, 0, 8), GGVK_STATUS_INVALID_ARGUMENT);

    /* hand-built descriptors (bypassing ggvk_tensor_init) that reach past the buffer */
    ggvk_tensor bad = test_tensor(GGVK_TYPE_F32, 64, 4, 1, 1, buf, 0);
    bad.offset = 3328;
    EXPECT(ggvk_tensor_set(&bad, data, 0, 8), GGVK_STATUS_OUT_OF_BOUNDS);
    bad.offset = SIZE_MAX & ~(size_t)255; /* offset + nbytes wraps around */
    EXPECT(ggvk_tensor_get(&bad, data, 0, 8), GGVK_STATUS_OUT_OF_BOUNDS);
    bad.offset = 0;
    bad.buffer = NULL;
    EXPECT(ggvk_tensor_set(&bad, data, 0, 8), GGVK_STATUS_INVALID_ARGUMENT);

    ggvk_buffer_free(buf);
#undef SET_NE
}

static void graph_errors(ggvk_backend *be)
{
    ggvk_buffer *buf = test_buffer_alloc(be, 4096);
    /* all small tensors sit at 256-aligned offsets; contents are irrelevant here */
    ggvk_tensor a = test_tensor(GGVK_TYPE_F32, 64, 8, 1, 1, buf, 0);      /* 2048 B */
    ggvk_tensor b = test_tensor(GGVK_TYPE_F32, 64, 2, 1, 1, buf, 2048);   /* 512 B */
    ggvk_tensor b32 = test_tensor(GGVK_TYPE_F32, 32, 2, 1, 1, buf, 2560); /* 256 B */
    ggvk_tensor d = test_tensor(GGVK_TYPE_F32, 8, 2, 1, 1, buf, 3072);    /* 64 B */
    ggvk_tensor d_bad = test_tensor(GGVK_TYPE_F32, 8, 3, 1, 1, buf, 3072);
    ggvk_tensor d_bad2 = test_tensor(GGVK_TYPE_F32, 9, 2, 1, 1, buf, 3072);
    ggvk_tensor bq = test_tensor(GGVK_TYPE_Q4_0, 64, 2, 1, 1, buf, 3328);
    ggvk_tensor a2 = test_tensor(GGVK_TYPE_F32, 8, 4, 2, 1, buf, 0); /* ne2 = 2 */
    ggvk_tensor b3 = test_tensor(GGVK_TYPE_F32, 8, 1, 3, 1, buf, 2048); /* ne2 = 3: 3 % 2 != 0 */
    ggvk_tensor d3 = test_tensor(GGVK_TYPE_F32, 4, 1, 3, 1, buf, 3072);

    ggvk_graph *g = NULL;
    EXPECT(ggvk_graph_new(NULL), GGVK_STATUS_INVALID_ARGUMENT);
    CHECK_OK(ggvk_graph_new(&g));
    CHECK(g != NULL);

    EXPECT(ggvk_graph_mul_mat(g, &a, &b32, &d), GGVK_STATUS_INVALID_ARGUMENT); /* K 64 vs 32 */
    EXPECT(ggvk_graph_mul_mat(g, &a, &b, &d_bad), GGVK_STATUS_INVALID_ARGUMENT);  /* N 3 vs 2 */
    EXPECT(ggvk_graph_mul_mat(g, &a, &b, &d_bad2), GGVK_STATUS_INVALID_ARGUMENT); /* M 9 vs 8 */
    EXPECT(ggvk_graph_mul_mat(g, &a2, &b3, &d3), GGVK_STATUS_INVALID_ARGUMENT); /* broadcast */
    EXPECT2(ggvk_graph_mul_mat(g, &a, &bq, &d), GGVK_STATUS_INVALID_ARGUMENT,
            GGVK_STATUS_UNSUPPORTED); /* b must be F32 */
    EXPECT(ggvk_graph_mul_mat(NULL, &a, &b, &d), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_graph_mul_mat(g, NULL, &b, &d), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_graph_mul_mat(g, &a, NULL, &d), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_graph_mul_mat(g, &a, &b, NULL), GGVK_STATUS_INVALID_ARGUMENT);

    /* a hand-built b whose bytes extend past the buffer end (512 B at 3840 in 4096) */
    ggvk_tensor b_oob = b;
    b_oob.offset = 3840;
    EXPECT(ggvk_graph_mul_mat(g, &a, &b_oob, &d), GGVK_STATUS_OUT_OF_BOUNDS);
    ggvk_tensor d_null = d;
    d_null.buffer = NULL;
    EXPECT(ggvk_graph_mul_mat(g, &a, &b, &d_null), GGVK_STATUS_INVALID_ARGUMENT);

    /* rope parameter checks */
    ggvk_buffer *rbuf = test_buffer_alloc(be, 8192);
    ggvk_tensor x = test_tensor(GGVK_TYPE_F32, 16, 2, 3, 1, rbuf, 0);    /* 384 B */
    ggvk_tensor pos = test_tensor(GGVK_TYPE_I32, 3, 1, 1, 1, rbuf, 512);
    ggvk_tensor pos4 = test_tensor(GGVK_TYPE_I32, 4, 1, 1, 1, rbuf, 512);
    ggvk_tensor posf = test_tensor(GGVK_TYPE_F32, 3, 1, 1, 1, rbuf, 512);
    ggvk_tensor y = test_tensor(GGVK_TYPE_F32, 16, 2, 3, 1, rbuf, 1024);
    ggvk_tensor y_bad = test_tensor(GGVK_TYPE_F32, 16, 3, 2, 1, rbuf, 1024);
    ggvk_rope_params rp;
    memset(&rp, 0, sizeof rp);
    rp.n_dims = 16;
    rp.mode = GGVK_ROPE_MODE_NORMAL;
    rp.n_ctx_orig = 4096;
    rp.freq_base = 10000.0f;
    rp.freq_scale = 1.0f;
    rp.ext_factor = 0.0f;
    rp.attn_factor = 1.0f;
    rp.beta_fast = 32.0f;
    rp.beta_slow = 1.0f;
    CHECK_OK(ggvk_graph_rope(g, &x, &pos, NULL, &y, &rp)); /* the baseline is valid */
    rp.n_dims = 15;
    EXPECT(ggvk_graph_rope(g, &x, &pos, NULL, &y, &rp), GGVK_STATUS_INVALID_ARGUMENT);
    rp.n_dims = 18;
    EXPECT(ggvk_graph_rope(g, &x, &pos, NULL, &y, &rp), GGVK_STATUS_INVALID_ARGUMENT);
    rp.n_dims = 16;
    EXPECT(ggvk_graph_rope(g, &x, &pos4, NULL, &y, &rp), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_graph_rope(g, &x, &posf, NULL, &y, &rp), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_graph_rope(g, &x, &pos, NULL, &y_bad, &rp), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_graph_rope(g, &x, &pos, NULL, &y, NULL), GGVK_STATUS_INVALID_ARGUMENT);
    rp.mode = 1;
    EXPECT2(ggvk_graph_rope(g, &x, &pos, NULL, &y, &rp), GGVK_STATUS_INVALID_ARGUMENT,
            GGVK_STATUS_UNSUPPORTED);
    rp.mode = GGVK_ROPE_MODE_NORMAL;

    /* compute with NULL handles */
    EXPECT(ggvk_graph_compute(NULL, g), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_graph_compute(be, NULL), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_graph_compute_async(NULL, g), GGVK_STATUS_INVALID_ARGUMENT);
    EXPECT(ggvk_synchronize(NULL), GGVK_STATUS_INVALID_ARGUMENT);

    /* the graph (only the one valid rope node was added) still computes */
    int32_t p[3] = {0, 1, 2};
    float xin[96];
    for (int i = 0; i < 96; i++) xin[i] = (float)i;
    CHECK_OK(ggvk_tensor_set(&pos, p, 0, sizeof p));
    CHECK_OK(ggvk_tensor_set(&x, xin, 0, sizeof xin));
    CHECK_OK(ggvk_graph_compute(be, g));
    float yout[96];
    memset(yout, 0, sizeof yout);
    CHECK_OK(ggvk_tensor_get(&y, yout, 0, sizeof yout));
    /* token 0 has position 0: its 32 values pass through unchanged */
    for (int i = 0; i < 32; i++) {
        CHECKF(fabsf(yout[i] - xin[i]) <= 1e-5f * (1.0f + fabsf(xin[i])),
               "rope at position 0: y[%d] = %g, expected %g", i, (double)yout[i], (double)xin[i]);
    }

    ggvk_graph_free(g);
    ggvk_buffer_free(buf);
    ggvk_buffer_free(rbuf);
}

int main(void)
{
    constants();
    status_strings();
    device_errors();

    ggvk_backend *be = test_init_backend("test_errors");
    buffer_errors(be);
    tensor_errors(be);
    graph_errors(be);
    ggvk_free(be);

    printf("test_errors: OK (%u error-path checks: status codes and non-empty last_error for NULL "
           "pointers, bad devices, bad sizes, out-of-bounds ranges, bad tensors, bad mul_mat/rope "
           "arguments, NULL compute; status strings)\n",
           g_checks);
    return 0;
}
