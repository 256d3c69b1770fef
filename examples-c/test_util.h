/* Shared helpers for the ggvk C tests: CHECK macros, device selection, a small RNG.
 *
 * Everything here is `static inline` so that each test can use any subset without
 * tripping -Wunused-function.
 *
 * Note: the ggvk constants (GGVK_STATUS_*, GGVK_TYPE_*, ...) are only used in
 * run-time expressions, never in `case` labels or static initializers, so the tests
 * keep compiling whether the generated header spells them as macros, enumerators or
 * `static const` variables. */
#ifndef GGVK_TEST_UTIL_H
#define GGVK_TEST_UTIL_H

#include "ggvk.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* failure reporting                                                          */
/* ------------------------------------------------------------------------- */

/* Copy ggvk_last_error() right away: the pointer is only valid until the next ggvk call. */
static inline void test_grab_last_error_(char *out, size_t cap)
{
    const char *e = ggvk_last_error();
    if (e == NULL) {
        snprintf(out, cap, "(NULL)");
    } else {
        snprintf(out, cap, "%s", e);
    }
}

static inline const char *test_status_name(ggvk_status s)
{
    const char *n = ggvk_status_string(s);
    return n != NULL ? n : "(NULL status string)";
}

static inline void test_fail_(const char *file, int line, const char *what, const char *expr)
{
    char err[1024];
    test_grab_last_error_(err, sizeof err);
    fflush(stdout);
    fprintf(stderr, "%s:%d: %s: %s\n", file, line, what, expr);
    fprintf(stderr, "    ggvk_last_error(): \"%s\"\n", err);
}

/* CHECK(cond): plain assertion. CHECKF(cond, fmt, ...): with an extra message. */
#define CHECK(cond)                                                  \
    do {                                                             \
        if (!(cond)) {                                               \
            test_fail_(__FILE__, __LINE__, "CHECK failed", #cond);   \
            exit(1);                                                 \
        }                                                            \
    } while (0)

#define CHECKF(cond, ...)                                            \
    do {                                                             \
        if (!(cond)) {                                               \
            test_fail_(__FILE__, __LINE__, "CHECK failed", #cond);   \
            fprintf(stderr, "    ");                                 \
            fprintf(stderr, __VA_ARGS__);                            \
            fprintf(stderr, "\n");                                   \
            exit(1);                                                 \
        }                                                            \
    } while (0)

/* Checks a returned status against one or two accepted codes. For an accepted error
 * code, ggvk_last_error() must also be a non-empty message. */
static inline void test_check_status_(const char *file, int line, const char *expr,
                                      ggvk_status got, ggvk_status want1, ggvk_status want2)
{
    char err[1024];
    /* first thing after the call: grab the message before any other ggvk call */
    test_grab_last_error_(err, sizeof err);
    int ok = (got == want1 || got == want2);
    int need_msg = ok && got != GGVK_STATUS_OK;
    if (ok && (!need_msg || err[0] != '\0')) {
        return;
    }
    fflush(stdout);
    if (!ok) {
        fprintf(stderr, "%s:%d: %s\n    returned %d (%s), expected %d (%s)", file, line, expr,
                (int)got, test_status_name(got), (int)want1, test_status_name(want1));
        if (want2 != want1) {
            fprintf(stderr, " or %d (%s)", (int)want2, test_status_name(want2));
        }
        fprintf(stderr, "\n");
    } else {
        fprintf(stderr, "%s:%d: %s\n    returned %d (%s) as expected, but ggvk_last_error() is empty\n",
                file, line, expr, (int)got, test_status_name(got));
    }
    fprintf(stderr, "    ggvk_last_error(): \"%s\"\n", err);
    exit(1);
}

#define CHECK_STATUS2(expr, want1, want2) \
    test_check_status_(__FILE__, __LINE__, #expr, (expr), (want1), (want2))
#define CHECK_STATUS(expr, want) CHECK_STATUS2(expr, want, want)
#define CHECK_OK(expr) CHECK_STATUS(expr, GGVK_STATUS_OK)

/* ------------------------------------------------------------------------- */
/* misc                                                                       */
/* ------------------------------------------------------------------------- */

static inline void *test_xmalloc(size_t n)
{
    void *p = malloc(n != 0 ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "out of host memory allocating %zu bytes\n", n);
        exit(1);
    }
    return p;
}

static inline size_t test_align_up(size_t x, size_t a)
{
    return (x + a - 1) / a * a;
}

/* Offsets of several tensors placed in one buffer are aligned to this; 256 is the
 * largest minStorageBufferOffsetAlignment the Vulkan spec allows. */
#define TEST_TENSOR_ALIGN ((size_t)256)

/* ------------------------------------------------------------------------- */
/* device selection: GGVK_DEVICE=<decimal index> or the library's default      */
/* ------------------------------------------------------------------------- */

static inline uint32_t test_device_index(void)
{
    const char *s = getenv("GGVK_DEVICE");
    if (s == NULL || s[0] == '\0') {
        return GGVK_DEFAULT_DEVICE;
    }
    char *end = NULL;
    errno = 0;
    unsigned long v = (s[0] >= '0' && s[0] <= '9') ? strtoul(s, &end, 10) : 0;
    if (end == NULL || *end != '\0' || errno != 0 || v >= (unsigned long)UINT32_MAX) {
        fprintf(stderr, "GGVK_DEVICE=\"%s\" is not a decimal device index\n", s);
        exit(1);
    }
    return (uint32_t)v;
}

/* Resolves GGVK_DEVICE / the default device to an index, prints it, and initializes a
 * backend on it (passing GGVK_DEFAULT_DEVICE through when GGVK_DEVICE is unset). */
static inline ggvk_backend *test_init_backend(const char *test_name)
{
    uint32_t req = test_device_index();
    uint32_t idx = req;
    if (req == GGVK_DEFAULT_DEVICE) {
        CHECK_OK(ggvk_default_device(&idx));
    }
    ggvk_device_info info;
    memset(&info, 0, sizeof info);
    CHECK_OK(ggvk_device_get_info(idx, &info));
    info.name[sizeof info.name - 1] = '\0';
    printf("%s: device %u%s: %s (subgroup %u)\n", test_name, idx,
           req == GGVK_DEFAULT_DEVICE ? " (default)" : " (GGVK_DEVICE)", info.name,
           info.subgroup_size);
    ggvk_backend *b = NULL;
    CHECK_OK(ggvk_init(req, &b));
    CHECK(b != NULL);
    return b;
}

static inline ggvk_buffer *test_buffer_alloc(ggvk_backend *b, size_t size)
{
    ggvk_buffer *buf = NULL;
    CHECK_OK(ggvk_buffer_alloc(b, size, &buf));
    CHECK(buf != NULL);
    return buf;
}

static inline ggvk_tensor test_tensor(int32_t type, int64_t ne0, int64_t ne1, int64_t ne2,
                                      int64_t ne3, ggvk_buffer *buf, size_t offset)
{
    ggvk_tensor t;
    int64_t ne[4];
    ne[0] = ne0;
    ne[1] = ne1;
    ne[2] = ne2;
    ne[3] = ne3;
    memset(&t, 0, sizeof t);
    CHECK_OK(ggvk_tensor_init(&t, type, ne, buf, offset));
    return t;
}

/* ------------------------------------------------------------------------- */
/* deterministic RNG (splitmix64); seed from GGVK_TEST_SEED or a fixed default */
/* ------------------------------------------------------------------------- */

typedef struct test_rng {
    uint64_t s;
} test_rng;

static inline uint64_t test_rng_u64(test_rng *r)
{
    uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static inline test_rng test_rng_init(const char *test_name)
{
    uint64_t seed = 0x5eed1234u;
    const char *s = getenv("GGVK_TEST_SEED");
    if (s != NULL && s[0] != '\0') {
        seed = (uint64_t)strtoull(s, NULL, 0);
    }
    printf("%s: seed %" PRIu64 " (set GGVK_TEST_SEED to change)\n", test_name, seed);
    test_rng r;
    r.s = seed;
    return r;
}

/* uniform in [0, n) */
static inline uint32_t test_rng_below(test_rng *r, uint32_t n)
{
    return (uint32_t)(test_rng_u64(r) % n);
}

/* uniform in [lo, hi) */
static inline float test_rng_uniform(test_rng *r, float lo, float hi)
{
    double u = (double)(test_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}

/* standard normal (Box-Muller) */
static inline float test_rng_normal(test_rng *r)
{
    double u1 = ((double)(test_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(test_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2));
}

static inline void test_rng_bytes(test_rng *r, void *dst, size_t n)
{
    unsigned char *p = (unsigned char *)dst;
    size_t i = 0;
    while (i < n) {
        uint64_t v = test_rng_u64(r);
        for (int k = 0; k < 8 && i < n; k++, i++) {
            p[i] = (unsigned char)(v >> (8 * k));
        }
    }
}

#endif /* GGVK_TEST_UTIL_H */
