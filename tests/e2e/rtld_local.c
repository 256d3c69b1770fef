/* ggml opened RTLD_LOCAL, as Python's ctypes (and so llama-cpp-python) opens it: this program does not link ggml;
 * it dlopens the pinned libggml.so with RTLD_LOCAL (libggml-base.so comes along, local too), takes every ggml
 * function from that handle, loads libggvk.so with ggml_backend_load, and computes out = A x B + bias on GGVK0
 * (ggml-alloc'd device buffer, so ggvk must reach ggml_backend_buffer_init, which the global scope lacks), checked
 * against a CPU reference. It also checks that ggvk's diagnostics reach a log callback set with ggml_log_set: with
 * GGVK_DEBUG_SUPPORT=1 a declined op's reason, with GGVK_NOT_A_SETTING=1 the warning about an unknown setting.
 *   rtld_local <path/libggml.so> <path/libggvk.so>
 * ggml.h / ggml-backend.h / ggml-alloc.h (the pinned sources) give the types and function signatures only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"

static int checks = 0;
#define CHECK(c, ...)                                                              \
    do {                                                                           \
        if (!(c)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #c); \
            fprintf(stderr, __VA_ARGS__);                                          \
            fprintf(stderr, "\n");                                                 \
            exit(1);                                                               \
        }                                                                          \
        checks++;                                                                  \
    } while (0)

static void *ggml_handle;

static void *sym(const char *name) {
    void *p = dlsym(ggml_handle, name);
    if (p == NULL) {
        fprintf(stderr, "rtld_local: %s not in libggml's handle: %s\n", name, dlerror());
        exit(1);
    }
    return p;
}
/* A pointer to the ggml function `name`, typed by its declaration, resolved through the local handle. */
#define GGML_FN(name) static __typeof__(&name) p_##name
#define LOAD(name) p_##name = (__typeof__(&name))sym(#name)

GGML_FN(ggml_log_set);
GGML_FN(ggml_backend_load);
GGML_FN(ggml_backend_reg_name);
GGML_FN(ggml_backend_reg_dev_count);
GGML_FN(ggml_backend_reg_dev_get);
GGML_FN(ggml_backend_dev_name);
GGML_FN(ggml_backend_dev_init);
GGML_FN(ggml_backend_dev_supports_op);
GGML_FN(ggml_backend_free);
GGML_FN(ggml_tensor_overhead);
GGML_FN(ggml_graph_overhead);
GGML_FN(ggml_init);
GGML_FN(ggml_free);
GGML_FN(ggml_new_tensor_2d);
GGML_FN(ggml_mul_mat);
GGML_FN(ggml_add);
GGML_FN(ggml_new_graph);
GGML_FN(ggml_build_forward_expand);
GGML_FN(ggml_backend_alloc_ctx_tensors);
GGML_FN(ggml_backend_buffer_name);
GGML_FN(ggml_backend_buffer_free);
GGML_FN(ggml_backend_tensor_set);
GGML_FN(ggml_backend_tensor_get);
GGML_FN(ggml_backend_graph_compute);
GGML_FN(ggml_set_name);
GGML_FN(ggml_win_part);

/* What the log callback saw from ggvk. */
static char ggvk_lines[8192];
static size_t ggvk_len;

static void on_log(enum ggml_log_level level, const char *text, void *user) {
    (void)level;
    (void)user;
    if (strncmp(text, "ggvk: ", 6) == 0 && ggvk_len + strlen(text) + 1 < sizeof ggvk_lines) {
        memcpy(ggvk_lines + ggvk_len, text, strlen(text) + 1);
        ggvk_len += strlen(text);
    }
    fputs(text, stderr);
}

static unsigned rng = 12345u;
static float rnd(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xFFFF) / 65536.0f - 0.5f;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: rtld_local <libggml.so> <libggvk.so>\n");
        return 2;
    }
    ggml_handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    CHECK(ggml_handle != NULL, "dlopen %s: %s", argv[1], dlerror());
    /* The situation under test: ggml's functions are not in the global scope. */
    CHECK(dlsym(RTLD_DEFAULT, "ggml_backend_buffer_init") == NULL, "ggml-base is global: not the RTLD_LOCAL case");
    LOAD(ggml_log_set); LOAD(ggml_backend_load); LOAD(ggml_backend_reg_name); LOAD(ggml_backend_reg_dev_count);
    LOAD(ggml_backend_reg_dev_get); LOAD(ggml_backend_dev_name); LOAD(ggml_backend_dev_init);
    LOAD(ggml_backend_dev_supports_op); LOAD(ggml_backend_free); LOAD(ggml_tensor_overhead);
    LOAD(ggml_graph_overhead); LOAD(ggml_init); LOAD(ggml_free); LOAD(ggml_new_tensor_2d); LOAD(ggml_mul_mat);
    LOAD(ggml_add); LOAD(ggml_new_graph); LOAD(ggml_build_forward_expand); LOAD(ggml_backend_alloc_ctx_tensors);
    LOAD(ggml_backend_buffer_name); LOAD(ggml_backend_buffer_free); LOAD(ggml_backend_tensor_set);
    LOAD(ggml_backend_tensor_get); LOAD(ggml_backend_graph_compute); LOAD(ggml_set_name); LOAD(ggml_win_part);

    p_ggml_log_set(on_log, NULL);
    ggml_backend_reg_t reg = p_ggml_backend_load(argv[2]);
    CHECK(reg != NULL, "ggml_backend_load(%s) failed", argv[2]);
    CHECK(strcmp(p_ggml_backend_reg_name(reg), "GGVK") == 0, "registry %s", p_ggml_backend_reg_name(reg));
    CHECK(p_ggml_backend_reg_dev_count(reg) > 0, "no GGVK device");
    ggml_backend_dev_t dev = p_ggml_backend_reg_dev_get(reg, 0);
    CHECK(strcmp(p_ggml_backend_dev_name(dev), "GGVK0") == 0, "device %s", p_ggml_backend_dev_name(dev));
    ggml_backend_t be = p_ggml_backend_dev_init(dev, NULL);
    CHECK(be != NULL, "ggml_backend_dev_init(GGVK0) failed");

    enum { K = 96, M = 33, N = 5 };
    struct ggml_init_params ip = {
        .mem_size = 16 * p_ggml_tensor_overhead() + p_ggml_graph_overhead(),
        .mem_buffer = NULL,
        .no_alloc = true,
    };
    struct ggml_context *ctx = p_ggml_init(ip);
    CHECK(ctx != NULL, "ggml_init");
    struct ggml_tensor *a = p_ggml_new_tensor_2d(ctx, GGML_TYPE_F32, K, M);
    struct ggml_tensor *b = p_ggml_new_tensor_2d(ctx, GGML_TYPE_F32, K, N);
    struct ggml_tensor *bias = p_ggml_new_tensor_2d(ctx, GGML_TYPE_F32, M, N);
    struct ggml_tensor *out = p_ggml_add(ctx, p_ggml_mul_mat(ctx, a, b), bias);
    /* An op GGVK0 declines (WIN_PART), for the log check below; never computed. */
    struct ggml_tensor *declined = p_ggml_win_part(ctx, a, 8);
    p_ggml_set_name(declined, "rtld_declined");
    struct ggml_cgraph *gf = p_ggml_new_graph(ctx);
    p_ggml_build_forward_expand(gf, out);

    /* ggml-alloc asks GGVK0's buffer type for a buffer; ggvk hands it to ggml_backend_buffer_init. */
    ggml_backend_buffer_t buf = p_ggml_backend_alloc_ctx_tensors(ctx, be);
    CHECK(buf != NULL, "allocating the tensors in GGVK0's buffer failed");
    CHECK(strncmp(p_ggml_backend_buffer_name(buf), "GGVK0", 5) == 0, "buffer %s", p_ggml_backend_buffer_name(buf));

    static float ha[K * M], hb[K * N], hbias[M * N], hout[M * N];
    for (int i = 0; i < K * M; i++) ha[i] = rnd();
    for (int i = 0; i < K * N; i++) hb[i] = rnd();
    for (int i = 0; i < M * N; i++) hbias[i] = rnd();
    p_ggml_backend_tensor_set(a, ha, 0, sizeof ha);
    p_ggml_backend_tensor_set(b, hb, 0, sizeof hb);
    p_ggml_backend_tensor_set(bias, hbias, 0, sizeof hbias);
    CHECK(p_ggml_backend_graph_compute(be, gf) == GGML_STATUS_SUCCESS, "graph compute failed");
    p_ggml_backend_tensor_get(out, hout, 0, sizeof hout);
    double max_err = 0;
    for (int n = 0; n < N; n++) {
        for (int m = 0; m < M; m++) {
            double ref = hbias[n * M + m];
            for (int k = 0; k < K; k++) ref += (double)ha[m * K + k] * hb[n * K + k];
            double err = fabs(hout[n * M + m] - ref);
            CHECK(err <= 1e-4 * (1 + fabs(ref)), "out[%d,%d] = %g, reference %g", m, n, hout[n * M + m], ref);
            if (err > max_err) max_err = err;
        }
    }

    /* ggvk's diagnostics go through ggml's logger: the callback above sees the declined op's reason. */
    if (getenv("GGVK_DEBUG_SUPPORT") != NULL) {
        CHECK(!p_ggml_backend_dev_supports_op(dev, declined), "GGVK0 supports WIN_PART: pick another declined op");
        CHECK(strstr(ggvk_lines, "not supported") != NULL && strstr(ggvk_lines, "rtld_declined") != NULL,
              "the log callback did not see ggvk's GGVK_DEBUG_SUPPORT line; it saw: \"%s\"", ggvk_lines);
    }
    /* ... from the start: the warning about an unknown GGVK_* setting, given while the registry is built. */
    if (getenv("GGVK_NOT_A_SETTING") != NULL) {
        CHECK(strstr(ggvk_lines, "GGVK_NOT_A_SETTING is not a ggvk setting") != NULL,
              "the log callback did not see ggvk's warning about GGVK_NOT_A_SETTING; it saw: \"%s\"", ggvk_lines);
    }

    p_ggml_backend_buffer_free(buf);
    p_ggml_free(ctx);
    p_ggml_backend_free(be);
    printf("rtld_local: %d checks passed (GGVK0 through an RTLD_LOCAL ggml; mul_mat+add %dx%dx%d, max error %.2e%s)\n",
           checks, M, N, K, max_err, getenv("GGVK_DEBUG_SUPPORT") ? "; ggvk's log reached ggml_log_set's callback" : "");
    return 0;
}
