/* Device enumeration, device info sanity, backend init/free. */
#include "test_util.h"

static const char *device_type_name(int32_t t)
{
    if (t == GGVK_DEVICE_TYPE_DISCRETE_GPU) return "discrete";
    if (t == GGVK_DEVICE_TYPE_INTEGRATED_GPU) return "integrated";
    if (t == GGVK_DEVICE_TYPE_VIRTUAL_GPU) return "virtual";
    if (t == GGVK_DEVICE_TYPE_CPU) return "cpu";
    return "other";
}

/* A backend is usable: allocate a small buffer, write, read back. */
static void smoke_backend(ggvk_backend *b, unsigned char tag)
{
    unsigned char in[64], out[64];
    for (int i = 0; i < 64; i++) {
        in[i] = (unsigned char)(tag ^ (i * 7));
    }
    memset(out, 0, sizeof out);
    ggvk_buffer *buf = test_buffer_alloc(b, sizeof in);
    CHECK_OK(ggvk_buffer_set(buf, 0, in, sizeof in));
    CHECK_OK(ggvk_buffer_get(buf, 0, out, sizeof out));
    CHECK(memcmp(in, out, sizeof in) == 0);
    ggvk_buffer_free(buf);
}

int main(void)
{
    const uint32_t vk11 = (1u << 22) | (1u << 12);
    uint32_t count = 0;
    CHECK_OK(ggvk_device_count(&count));
    CHECKF(count > 0, "no Vulkan devices found");

    for (uint32_t i = 0; i < count; i++) {
        ggvk_device_info info;
        memset(&info, 0xA5, sizeof info); /* garbage, so a missing terminator shows */
        CHECK_OK(ggvk_device_get_info(i, &info));
        CHECKF(memchr(info.name, '\0', sizeof info.name) != NULL,
               "device %u: name not NUL-terminated within %zu bytes", i, sizeof info.name);
        CHECKF(info.name[0] != '\0', "device %u: empty name", i);
        CHECKF(info.api_version >= vk11, "device %u: api_version 0x%08x < Vulkan 1.1", i,
               info.api_version);
        CHECKF(info.subgroup_size >= 1 && (info.subgroup_size & (info.subgroup_size - 1)) == 0,
               "device %u: subgroup_size %u is not a power of two", i, info.subgroup_size);
        CHECKF(info.max_storage_buffer_range > 0, "device %u: max_storage_buffer_range 0", i);
        CHECKF(info.device_type >= GGVK_DEVICE_TYPE_OTHER && info.device_type <= GGVK_DEVICE_TYPE_CPU, "device %u: device_type %d", i,
               (int)info.device_type);
        printf("device %u: %s [%s] vendor 0x%04x id 0x%04x Vulkan %u.%u.%u subgroup %u "
               "fp16 %d int8 %d storage16 %d storage8 %d subgroup_arith %d dot %d coopmat %d/%d "
               "ssbo range %" PRIu64 " max alloc %" PRIu64 " shared %" PRIu64
               " local %" PRIu64 " MiB (budget %" PRIu64 " MiB)\n",
               i, info.name, device_type_name(info.device_type), info.vendor_id, info.device_id,
               (info.api_version >> 22) & 0x7Fu, (info.api_version >> 12) & 0x3FFu,
               info.api_version & 0xFFFu, info.subgroup_size, (int)info.fp16, (int)info.int8,
               (int)info.storage_16bit, (int)info.storage_8bit, (int)info.subgroup_arithmetic,
               (int)info.integer_dot_product, (int)info.coopmat_khr, (int)info.coopmat2_nv,
               info.max_storage_buffer_range, info.max_memory_allocation_size,
               info.max_shared_memory, info.device_local_bytes >> 20,
               info.device_local_budget >> 20);
    }

    uint32_t def = UINT32_MAX;
    CHECK_OK(ggvk_default_device(&def));
    CHECKF(def < count, "default device %u, count %u", def, count);
    printf("default device: %u\n", def);

    /* init on the default device, use it, free it */
    ggvk_backend *b0 = NULL;
    CHECK_OK(ggvk_init(GGVK_DEFAULT_DEVICE, &b0));
    CHECK(b0 != NULL);
    smoke_backend(b0, 0x11);
    ggvk_free(b0);

    /* the default device by explicit index */
    b0 = NULL;
    CHECK_OK(ggvk_init(def, &b0));
    CHECK(b0 != NULL);
    smoke_backend(b0, 0x22);
    ggvk_free(b0);

    /* two backends alive at once on the test device (GGVK_DEVICE or default) */
    ggvk_backend *b1 = test_init_backend("test_enumerate");
    ggvk_backend *b2 = NULL;
    CHECK_OK(ggvk_init(test_device_index(), &b2));
    CHECK(b2 != NULL);
    CHECK(b1 != b2);
    smoke_backend(b1, 0x33);
    smoke_backend(b2, 0x44);
    smoke_backend(b1, 0x55);
    ggvk_free(b1); /* freed in creation order, not LIFO */
    smoke_backend(b2, 0x66);
    ggvk_free(b2);

    /* NULL frees are no-ops */
    ggvk_free(NULL);
    ggvk_buffer_free(NULL);
    ggvk_graph_free(NULL);

    printf("test_enumerate: OK (%u device(s) with sane info, default %u, init/free single + "
           "explicit index + two at once, NULL frees)\n",
           count, def);
    return 0;
}
