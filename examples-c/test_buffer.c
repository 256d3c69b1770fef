/* Buffers: alloc/size, set/get at odd offsets, memset, copy, tensor set/get.
 *
 * Every buffer has a host mirror; after each mutating operation the whole device
 * buffer is read back and compared with the mirror, so an operation that writes
 * outside its range (or not at all) is caught. */
#include "test_util.h"

typedef struct mbuf {
    const char *name;
    ggvk_buffer *buf;
    size_t size;
    unsigned char *mirror;
} mbuf;

static unsigned long g_ops = 0;

static void mbuf_verify(const mbuf *m, const char *after)
{
    unsigned char *tmp = (unsigned char *)test_xmalloc(m->size);
    memset(tmp, 0, m->size);
    CHECK_OK(ggvk_buffer_get(m->buf, 0, tmp, m->size));
    for (size_t i = 0; i < m->size; i++) {
        CHECKF(tmp[i] == m->mirror[i],
               "buffer %s (size %zu): byte %zu is 0x%02x, expected 0x%02x, after %s", m->name,
               m->size, i, tmp[i], m->mirror[i], after);
    }
    free(tmp);
}

static mbuf mbuf_new(ggvk_backend *b, test_rng *r, const char *name, size_t size)
{
    mbuf m;
    m.name = name;
    m.size = size;
    m.buf = test_buffer_alloc(b, size);
    size_t got = 0;
    CHECK_OK(ggvk_buffer_size(m.buf, &got));
    CHECKF(got == size, "ggvk_buffer_size of %s: %zu, allocated %zu", name, got, size);
    /* contents after allocation are unspecified: fill everything first */
    m.mirror = (unsigned char *)test_xmalloc(size);
    test_rng_bytes(r, m.mirror, size);
    CHECK_OK(ggvk_buffer_set(m.buf, 0, m.mirror, size));
    mbuf_verify(&m, "full initial set");
    g_ops++;
    return m;
}

static void mbuf_free(mbuf *m)
{
    ggvk_buffer_free(m->buf);
    free(m->mirror);
    m->buf = NULL;
    m->mirror = NULL;
}

/* set random bytes at [off, off+n) */
static void op_set(test_rng *r, mbuf *m, size_t off, size_t n)
{
    char what[128];
    snprintf(what, sizeof what, "set(offset %zu, size %zu)", off, n);
    unsigned char *src = (unsigned char *)test_xmalloc(n);
    test_rng_bytes(r, src, n);
    CHECK_OK(ggvk_buffer_set(m->buf, off, src, n));
    memcpy(m->mirror + off, src, n);
    free(src);
    mbuf_verify(m, what);
    g_ops++;
}

/* get [off, off+n) into the middle of a host array with canaries on both sides */
static void op_get(mbuf *m, size_t off, size_t n)
{
    const size_t guard = 64;
    unsigned char *dst = (unsigned char *)test_xmalloc(n + 2 * guard);
    memset(dst, 0xC3, n + 2 * guard);
    CHECK_OK(ggvk_buffer_get(m->buf, off, dst + guard, n));
    for (size_t i = 0; i < guard; i++) {
        CHECKF(dst[i] == 0xC3 && dst[guard + n + i] == 0xC3,
               "get(offset %zu, size %zu) on %s wrote outside the host range", off, n, m->name);
    }
    for (size_t i = 0; i < n; i++) {
        CHECKF(dst[guard + i] == m->mirror[off + i],
               "get(offset %zu, size %zu) on %s: byte %zu is 0x%02x, expected 0x%02x", off, n,
               m->name, i, dst[guard + i], m->mirror[off + i]);
    }
    free(dst);
    g_ops++;
}

/* asynchronous gets of [off, off+n): the first started before a set of that range, the second after it; both land
 * (and only there: canaries) once ggvk_synchronize returns, the first with the bytes before the set */
static void op_get_async(ggvk_backend *b, test_rng *r, mbuf *m, size_t off, size_t n)
{
    const size_t guard = 64;
    unsigned char *first = (unsigned char *)test_xmalloc(n + 2 * guard);
    unsigned char *second = (unsigned char *)test_xmalloc(n + 2 * guard);
    unsigned char *before = (unsigned char *)test_xmalloc(n);
    unsigned char *src = (unsigned char *)test_xmalloc(n);
    memset(first, 0xC3, n + 2 * guard);
    memset(second, 0xC3, n + 2 * guard);
    memcpy(before, m->mirror + off, n);
    test_rng_bytes(r, src, n);
    CHECK_OK(ggvk_buffer_get_async(b, m->buf, off, first + guard, n));
    CHECK_OK(ggvk_buffer_set(m->buf, off, src, n));
    memcpy(m->mirror + off, src, n);
    CHECK_OK(ggvk_buffer_get_async(b, m->buf, off, second + guard, n));
    CHECK_OK(ggvk_synchronize(b));
    for (size_t i = 0; i < guard; i++) {
        CHECKF(first[i] == 0xC3 && first[guard + n + i] == 0xC3 && second[i] == 0xC3 &&
                   second[guard + n + i] == 0xC3,
               "get_async(offset %zu, size %zu) on %s wrote outside the host range", off, n, m->name);
    }
    CHECKF(memcmp(first + guard, before, n) == 0, "get_async(offset %zu, size %zu) on %s, started before a set: "
           "not the bytes before it", off, n, m->name);
    CHECKF(memcmp(second + guard, src, n) == 0, "get_async(offset %zu, size %zu) on %s, started after a set: "
           "not the bytes it wrote", off, n, m->name);
    free(first);
    free(second);
    free(before);
    free(src);
    mbuf_verify(m, "set between two asynchronous gets");
    g_ops++;
}

static void op_memset(mbuf *m, size_t off, size_t n, uint8_t value)
{
    char what[128];
    snprintf(what, sizeof what, "memset(offset %zu, value 0x%02x, size %zu)", off, value, n);
    CHECK_OK(ggvk_buffer_memset(m->buf, off, value, n));
    memset(m->mirror + off, value, n);
    mbuf_verify(m, what);
    g_ops++;
}

static void op_copy(mbuf *src, size_t soff, mbuf *dst, size_t doff, size_t n)
{
    char what[160];
    snprintf(what, sizeof what, "copy(%s+%zu -> %s+%zu, size %zu)", src->name, soff, dst->name,
             doff, n);
    CHECK_OK(ggvk_buffer_copy(src->buf, soff, dst->buf, doff, n));
    memcpy(dst->mirror + doff, src->mirror + soff, n);
    mbuf_verify(dst, what);
    mbuf_verify(src, what); /* the source must be unchanged */
    g_ops++;
}

static void check_type_info(int32_t type, const char *name, size_t bytes, int64_t elems)
{
    size_t bb = 0;
    int64_t be = 0;
    CHECK_OK(ggvk_type_info(type, &bb, &be));
    CHECKF(bb == bytes && be == elems, "type_info(%s): %zu bytes / %" PRId64 " elems, expected %zu / %" PRId64,
           name, bb, be, bytes, elems);
    size_t rs = 0;
    CHECK_OK(ggvk_row_size(type, elems * 128, &rs));
    CHECKF(rs == bytes * 128, "row_size(%s, %" PRId64 ") = %zu, expected %zu", name, elems * 128, rs,
           bytes * 128);
}

static void test_tensors(ggvk_backend *b, test_rng *r)
{
    /* layout queries */
    check_type_info(GGVK_TYPE_F32, "F32", 4, 1);
    check_type_info(GGVK_TYPE_F16, "F16", 2, 1);
    check_type_info(GGVK_TYPE_Q4_0, "Q4_0", 18, 32);
    check_type_info(GGVK_TYPE_Q8_0, "Q8_0", 34, 32);
    check_type_info(GGVK_TYPE_I32, "I32", 4, 1);

    const size_t toff = 256;
    const size_t nbytes_expected = (size_t)4 * 7 * 5 * 3 * 2;
    mbuf m = mbuf_new(b, r, "tensorbuf", 4096);
    ggvk_tensor t = test_tensor(GGVK_TYPE_F32, 7, 5, 3, 2, m.buf, toff);

    CHECK(t.type == GGVK_TYPE_F32);
    CHECK(t.ne[0] == 7 && t.ne[1] == 5 && t.ne[2] == 3 && t.ne[3] == 2);
    CHECKF(t.nb[0] == 4 && t.nb[1] == 4 * 7 && t.nb[2] == 4 * 7 * 5 && t.nb[3] == 4 * 7 * 5 * 3,
           "F32 [7,5,3,2] strides %zu %zu %zu %zu", t.nb[0], t.nb[1], t.nb[2], t.nb[3]);
    CHECK(t.buffer == m.buf);
    CHECK(t.offset == toff);

    size_t nbytes = 0;
    CHECK_OK(ggvk_tensor_nbytes(&t, &nbytes));
    CHECKF(nbytes == nbytes_expected, "tensor_nbytes %zu, expected %zu", nbytes, nbytes_expected);

    /* full round trip of random floats */
    float host[210], back[210];
    for (int i = 0; i < 210; i++) {
        host[i] = test_rng_normal(r) * 100.0f;
    }
    memset(back, 0, sizeof back);
    CHECK_OK(ggvk_tensor_set(&t, host, 0, nbytes));
    memcpy(m.mirror + toff, host, nbytes);
    mbuf_verify(&m, "tensor_set (whole tensor at buffer offset 256)");
    CHECK_OK(ggvk_tensor_get(&t, back, 0, nbytes));
    CHECK(memcmp(host, back, nbytes) == 0);

    /* partial set/get at an odd byte offset inside the tensor */
    unsigned char part[101], partback[101];
    test_rng_bytes(r, part, sizeof part);
    CHECK_OK(ggvk_tensor_set(&t, part, 6, sizeof part));
    memcpy(m.mirror + toff + 6, part, sizeof part);
    mbuf_verify(&m, "tensor_set(offset 6, size 101)");
    memset(partback, 0, sizeof partback);
    CHECK_OK(ggvk_tensor_get(&t, partback, 6, sizeof partback));
    CHECK(memcmp(part, partback, sizeof part) == 0);
    memset(back, 0, sizeof back);
    CHECK_OK(ggvk_tensor_get(&t, back, 0, nbytes));
    CHECK(memcmp(back, m.mirror + toff, nbytes) == 0);
    g_ops += 6;

    /* a quantized tensor's strides: nb[0] = block bytes, a row is ne0/32 blocks */
    ggvk_tensor q = test_tensor(GGVK_TYPE_Q4_0, 64, 3, 2, 1, m.buf, 0);
    CHECKF(q.nb[0] == 18 && q.nb[1] == 36 && q.nb[2] == 108 && q.nb[3] == 216,
           "Q4_0 [64,3,2,1] strides %zu %zu %zu %zu", q.nb[0], q.nb[1], q.nb[2], q.nb[3]);
    CHECK_OK(ggvk_tensor_nbytes(&q, &nbytes));
    CHECKF(nbytes == 216, "Q4_0 [64,3,2,1] nbytes %zu, expected 216", nbytes);

    mbuf_free(&m);
}

int main(void)
{
    test_rng r = test_rng_init("test_buffer");
    ggvk_backend *b = test_init_backend("test_buffer");

    const size_t big = (size_t)3 * 1024 * 1024 + 7;
    mbuf tiny = mbuf_new(b, &r, "tiny(1)", 1);
    mbuf page = mbuf_new(b, &r, "page(4096)", 4096);
    mbuf large = mbuf_new(b, &r, "large(3MiB+7)", big);
    mbuf large2 = mbuf_new(b, &r, "large2(3MiB+7)", big);

    /* set/get round trips at odd offsets and sizes */
    op_set(&r, &tiny, 0, 1);
    op_get(&tiny, 0, 1);
    op_set(&r, &page, 3, 1001);
    op_get(&page, 3, 1001);
    op_get(&page, 1, 3);
    op_set(&r, &page, 4095, 1);
    op_set(&r, &page, 0, 5);
    op_get(&page, 4090, 6);
    op_set(&r, &large, 3, 1001);
    op_get(&large, 3, 1001);
    op_set(&r, &large, 1024 * 1024 + 1, 1024 * 1024 + 3); /* > 1 MiB, both ends unaligned */
    op_get(&large, 1024 * 1024 - 5, 1024 * 1024 + 17);
    op_set(&r, &large, big - 9, 9); /* tail */
    op_get(&large, big - 2, 2);

    /* asynchronous gets, small and large (the large one above 256 KiB: its set is not batched) */
    op_get_async(b, &r, &tiny, 0, 1);
    op_get_async(b, &r, &page, 5, 999);
    op_get_async(b, &r, &large, 3, 300 * 1024 + 1);

    /* memset: unaligned small, aligned large, unaligned large */
    op_memset(&tiny, 0, 1, 0x00);
    op_memset(&page, 5, 13, 0xAB);
    op_memset(&page, 0, 3, 0xFF);
    op_memset(&large, 5, 13, 0x7E);
    op_memset(&large, 4096, 2 * 1024 * 1024, 0x5A);
    op_memset(&large, 7, 1024 * 1024 + 5, 0x00);
    op_memset(&large, big - 3, 3, 0xEE);

    /* copies between buffers at odd offsets */
    op_copy(&large, 11, &page, 3, 2000);
    op_copy(&page, 1, &large2, 5, 4093);
    op_copy(&large, 1, &large2, 6, 2 * 1024 * 1024 + 1);
    op_copy(&large2, big - 1, &tiny, 0, 1);
    op_copy(&tiny, 0, &large, big - 1, 1);

    test_tensors(b, &r);

    mbuf_free(&tiny);
    mbuf_free(&page);
    mbuf_free(&large);
    mbuf_free(&large2);
    ggvk_free(b);

    printf("test_buffer: OK (%lu checked operations: sizes 1/4096/3MiB+7, set/get/get_async/memset/"
           "copy at odd offsets with whole-buffer verification, F32 [7,5,3,2] tensor set/get, "
           "strides and type sizes)\n",
           g_ops);
    return 0;
}
