/* The parts of the GGVK ggml interface that test-backend-ops does not exercise: device properties and memory,
 * asynchronous tensor set/get, memset, tensor copies (device to device and host to device), 2D transfers through
 * ggml-alloc'd buffers, and events. Loads libggvk.so through GGML_BACKEND_PATH like any ggml program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"

static int checks = 0;
#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            exit(1);                                                          \
        }                                                                     \
        checks++;                                                             \
    } while (0)

int main(void) {
    ggml_backend_load_all();
    ggml_backend_dev_t dev = ggml_backend_dev_by_name("GGVK0");
    CHECK(dev != NULL);
    struct ggml_backend_dev_props props;
    ggml_backend_dev_get_props(dev, &props);
    CHECK(strcmp(props.name, "GGVK0") == 0);
    CHECK(props.memory_total > 0 && props.memory_free <= props.memory_total);
    CHECK(props.caps.async && props.caps.events);
    /* device_id: the PCI bus id "0000:01:00.0" (VK_EXT_pci_bus_info) or the device UUID, the same every call */
    CHECK(props.device_id != NULL);
    CHECK(strlen(props.device_id) == 12 || strlen(props.device_id) == 36);
    {
        struct ggml_backend_dev_props again;
        ggml_backend_dev_get_props(dev, &again);
        CHECK(again.device_id == props.device_id);
    }
    CHECK(ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_GPU ||
          ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_IGPU);
    ggml_backend_t be = ggml_backend_dev_init(dev, NULL);
    CHECK(be != NULL);
    ggml_backend_buffer_type_t buft = ggml_backend_dev_buffer_type(dev);
    CHECK(ggml_backend_dev_supports_buft(dev, buft));
    CHECK(!ggml_backend_buft_is_host(buft));

    const int n = 1000;
    struct ggml_init_params ip = {ggml_tensor_overhead() * 8, NULL, true};
    struct ggml_context *ctx = ggml_init(ip);
    struct ggml_tensor *a = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, n);
    struct ggml_tensor *b = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, n);
    struct ggml_tensor *m = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 10, 7);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors_from_buft(ctx, buft);
    CHECK(buf != NULL);

    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    for (int i = 0; i < n; i++) x[i] = (float)i * 0.5f - 3.0f;
    ggml_backend_tensor_set_async(be, a, x, 0, n * sizeof(float));
    ggml_backend_synchronize(be);
    memset(y, 0, n * sizeof(float));
    ggml_backend_tensor_get_async(be, a, y, 0, n * sizeof(float));
    ggml_backend_synchronize(be);
    CHECK(memcmp(x, y, n * sizeof(float)) == 0);

    /* device -> device copy through the buffer's cpy_tensor */
    ggml_backend_tensor_copy(a, b);
    memset(y, 0, n * sizeof(float));
    ggml_backend_tensor_get(b, y, 0, n * sizeof(float));
    CHECK(memcmp(x, y, n * sizeof(float)) == 0);

    /* memset of a sub-range */
    ggml_backend_tensor_memset(b, 0, 8 * sizeof(float), 4 * sizeof(float));
    ggml_backend_tensor_get(b, y, 0, n * sizeof(float));
    CHECK(y[7] == x[7] && y[8] == 0.0f && y[11] == 0.0f && y[12] == x[12]);

    /* host (CPU buffer) -> device copy */
    struct ggml_init_params hp = {ggml_tensor_overhead() * 2, NULL, true};
    struct ggml_context *hctx = ggml_init(hp);
    struct ggml_tensor *h = ggml_new_tensor_1d(hctx, GGML_TYPE_F32, n);
    ggml_backend_buffer_t hbuf = ggml_backend_alloc_ctx_tensors_from_buft(hctx, ggml_backend_cpu_buffer_type());
    CHECK(hbuf != NULL);
    for (int i = 0; i < n; i++) ((float *)h->data)[i] = (float)(n - i);
    ggml_backend_tensor_copy(h, b);
    ggml_backend_tensor_get(b, y, 0, n * sizeof(float));
    CHECK(y[0] == (float)n && y[n - 1] == 1.0f);

    /* a 2D region: rows 2..4 of a [10, 7] matrix */
    float rows[30];
    for (int i = 0; i < 30; i++) rows[i] = (float)(100 + i);
    ggml_backend_tensor_memset(m, 0, 0, ggml_nbytes(m));
    ggml_backend_tensor_set(m, rows, 2 * m->nb[1], sizeof rows);
    float all[70];
    ggml_backend_tensor_get(m, all, 0, sizeof all);
    CHECK(all[19] == 0.0f && all[20] == 100.0f && all[49] == 129.0f && all[50] == 0.0f);

    /* pinned host buffer type: CPU-addressable, copies both ways */
    ggml_backend_buffer_type_t hbt = ggml_backend_dev_host_buffer_type(dev);
    CHECK(hbt != NULL && ggml_backend_buft_is_host(hbt));
    CHECK(props.caps.host_buffer);
    struct ggml_context *pctx = ggml_init(hp);
    struct ggml_tensor *pin = ggml_new_tensor_1d(pctx, GGML_TYPE_F32, n);
    ggml_backend_buffer_t pbuf = ggml_backend_alloc_ctx_tensors_from_buft(pctx, hbt);
    CHECK(pbuf != NULL && ggml_backend_buffer_is_host(pbuf));
    for (int i = 0; i < n; i++) ((float *)pin->data)[i] = (float)i * 3.0f;
    ggml_backend_tensor_copy(pin, b); /* host -> GGVK */
    ggml_backend_tensor_get(b, y, 0, n * sizeof(float));
    CHECK(y[0] == 0.0f && y[n - 1] == (float)(n - 1) * 3.0f);
    ggml_backend_tensor_copy(a, pin); /* GGVK -> host */
    CHECK(memcmp(pin->data, x, n * sizeof(float)) == 0);
    ggml_backend_buffer_clear(pbuf, 0);
    CHECK(((float *)pin->data)[5] == 0.0f);
    ggml_backend_buffer_free(pbuf);
    ggml_free(pctx);

    /* pinned host -> GGVK, large enough (4 MiB) for one transfer straight from the pinned memory rather than a
     * batched upload, from and to tensors at nonzero offsets in their buffers (where the device buffer is not
     * mapped into the host: GGVK_DIRECT_MAPPING=0 on CPU devices) */
    {
        const int big = 1 << 20;
        struct ggml_init_params bp = {ggml_tensor_overhead() * 2, NULL, true};
        struct ggml_context *sctx = ggml_init(bp), *dctx = ggml_init(bp);
        struct ggml_tensor *spad = ggml_new_tensor_1d(sctx, GGML_TYPE_F32, 100);
        struct ggml_tensor *src = ggml_new_tensor_1d(sctx, GGML_TYPE_F32, big);
        struct ggml_tensor *dpad = ggml_new_tensor_1d(dctx, GGML_TYPE_F32, 37);
        struct ggml_tensor *dst = ggml_new_tensor_1d(dctx, GGML_TYPE_F32, big);
        ggml_backend_buffer_t sbuf = ggml_backend_alloc_ctx_tensors_from_buft(sctx, hbt);
        ggml_backend_buffer_t dbuf = ggml_backend_alloc_ctx_tensors_from_buft(dctx, buft);
        CHECK(sbuf != NULL && dbuf != NULL);
        CHECK((char *)src->data > (char *)spad->data && (char *)dst->data > (char *)dpad->data);
        for (int i = 0; i < big; i++) ((float *)src->data)[i] = (float)(i % 1999) - 999.0f;
        ggml_backend_tensor_set(dpad, x, 0, 37 * sizeof(float));
        ggml_backend_tensor_copy(src, dst);
        float *back = malloc(big * sizeof(float));
        ggml_backend_tensor_get(dst, back, 0, big * sizeof(float));
        CHECK(memcmp(back, src->data, big * sizeof(float)) == 0);
        /* the neighbour before it is untouched */
        ggml_backend_tensor_get(dpad, back, 0, 37 * sizeof(float));
        CHECK(memcmp(back, x, 37 * sizeof(float)) == 0);
        free(back);
        ggml_backend_buffer_free(sbuf);
        ggml_backend_buffer_free(dbuf);
        ggml_free(sctx);
        ggml_free(dctx);
    }

    /* events */
    ggml_backend_event_t ev = ggml_backend_event_new(dev);
    CHECK(ev != NULL);
    ggml_backend_tensor_set_async(be, a, x, 0, n * sizeof(float));
    ggml_backend_event_record(ev, be);
    ggml_backend_event_synchronize(ev);
    ggml_backend_event_wait(be, ev);
    ggml_backend_tensor_get(a, y, 0, n * sizeof(float));
    CHECK(memcmp(x, y, n * sizeof(float)) == 0);
    ggml_backend_event_free(ev);
    /* an event never recorded counts as complete; one recorded after an asynchronous graph (twice: the later
     * point counts) is complete once the graph is */
    {
        ggml_backend_event_t gev = ggml_backend_event_new(dev);
        CHECK(gev != NULL);
        ggml_backend_event_synchronize(gev);
        struct ggml_init_params gp = {ggml_tensor_overhead() * 4 + ggml_graph_overhead(), NULL, true};
        struct ggml_context *gctx = ggml_init(gp);
        struct ggml_tensor *gin = ggml_new_tensor_1d(gctx, GGML_TYPE_F32, n);
        struct ggml_tensor *gout = ggml_scale(gctx, gin, 2.0f);
        struct ggml_cgraph *g = ggml_new_graph(gctx);
        ggml_build_forward_expand(g, gout);
        ggml_backend_buffer_t gbuf = ggml_backend_alloc_ctx_tensors(gctx, be);
        CHECK(gbuf != NULL);
        ggml_backend_tensor_set(gin, x, 0, n * sizeof(float));
        ggml_backend_event_record(gev, be);
        CHECK(ggml_backend_graph_compute_async(be, g) == GGML_STATUS_SUCCESS);
        ggml_backend_event_record(gev, be);
        ggml_backend_event_synchronize(gev);
        ggml_backend_event_wait(be, gev);
        ggml_backend_tensor_get(gout, y, 0, n * sizeof(float));
        int doubled = 1;
        for (int i = 0; i < n; i++) doubled &= y[i] == 2.0f * x[i];
        CHECK(doubled);
        ggml_backend_buffer_free(gbuf);
        ggml_free(gctx);
        ggml_backend_event_free(gev);
    }
    /* asynchronous reads (on staged devices: copies queued behind the graph, bytes delivered at synchronize):
     * reads of a graph's output issued before it ran read its result; two reads at once, one at an offset; a
     * read followed by a write of the same tensor sees the values before the write; an event recorded after a
     * read is complete with the read's bytes in place */
    {
        struct ggml_init_params gp = {ggml_tensor_overhead() * 4 + ggml_graph_overhead(), NULL, true};
        struct ggml_context *gctx = ggml_init(gp);
        struct ggml_tensor *gin = ggml_new_tensor_1d(gctx, GGML_TYPE_F32, n);
        struct ggml_tensor *gout = ggml_scale(gctx, gin, -3.0f);
        struct ggml_cgraph *g = ggml_new_graph(gctx);
        ggml_build_forward_expand(g, gout);
        ggml_backend_buffer_t gbuf = ggml_backend_alloc_ctx_tensors(gctx, be);
        CHECK(gbuf != NULL);
        float *z = malloc(n * sizeof(float));
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < n; i++) x[i] = (float)(i * (round + 1)) - 7.0f;
            ggml_backend_tensor_set_async(be, gin, x, 0, n * sizeof(float));
            CHECK(ggml_backend_graph_compute_async(be, g) == GGML_STATUS_SUCCESS);
            memset(y, 0, n * sizeof(float));
            memset(z, 0, n * sizeof(float));
            ggml_backend_tensor_get_async(be, gout, y, 0, n * sizeof(float));
            ggml_backend_tensor_get_async(be, gin, z, 100 * sizeof(float), 50 * sizeof(float));
            ggml_backend_tensor_get_async(be, gin, z, 0, 0);
            ggml_backend_synchronize(be);
            int scaled = 1;
            for (int i = 0; i < n; i++) scaled &= y[i] == -3.0f * x[i];
            CHECK(scaled);
            CHECK(memcmp(z, x + 100, 50 * sizeof(float)) == 0 && z[50] == 0.0f);
        }
        ggml_backend_tensor_get_async(be, gin, y, 0, n * sizeof(float));
        ggml_backend_tensor_set_async(be, gin, z, 0, n * sizeof(float));
        ggml_backend_synchronize(be);
        CHECK(memcmp(y, x, n * sizeof(float)) == 0);
        ggml_backend_event_t rev = ggml_backend_event_new(dev);
        CHECK(rev != NULL);
        ggml_backend_tensor_set_async(be, gin, x, 0, n * sizeof(float));
        CHECK(ggml_backend_graph_compute_async(be, g) == GGML_STATUS_SUCCESS);
        memset(y, 0, n * sizeof(float));
        ggml_backend_tensor_get_async(be, gout, y, 0, n * sizeof(float));
        ggml_backend_event_record(rev, be);
        ggml_backend_event_synchronize(rev);
        CHECK(y[n - 1] == -3.0f * x[n - 1] && y[0] == -3.0f * x[0]);
        ggml_backend_synchronize(be);
        ggml_backend_event_free(rev);
        free(z);
        ggml_backend_buffer_free(gbuf);
        ggml_free(gctx);
    }

    ggml_backend_buffer_free(hbuf);
    ggml_free(hctx);
    ggml_backend_buffer_free(buf);
    ggml_free(ctx);
    ggml_backend_free(be);
    free(x);
    free(y);
    printf("adapter: %d checks passed (GGVK0 id %s)\n", checks, props.device_id);
    return 0;
}
