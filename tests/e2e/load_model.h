/* Shared by the e2e tools (greedy.c, nodes.c): load a model with every layer on one device.
 *   DEVICE: CPU (no offload), a device name such as GGVK0, or RPC:HOST:PORT (the first device of that ggml-rpc
 *   server, as llama.cpp's --rpc adds it). `tool` prefixes the error message. NULL on failure (reported). */
#ifndef GGVK_E2E_LOAD_MODEL_H
#define GGVK_E2E_LOAD_MODEL_H

#include <stdio.h>
#include <string.h>

#include "ggml-backend.h"
#include "llama.h"

static struct llama_model *load_model(const char *tool, const char *path, const char *device) {
    struct llama_model_params mp = llama_model_default_params();
    static ggml_backend_dev_t devs[2] = {NULL, NULL};
    if (strcmp(device, "CPU") == 0) {
        mp.n_gpu_layers = 0;
    } else {
        if (strncmp(device, "RPC:", 4) == 0) {
            typedef ggml_backend_reg_t (*add_server_fn)(const char *endpoint);
            ggml_backend_reg_t rpc = ggml_backend_reg_by_name("RPC");
            add_server_fn add =
                rpc ? (add_server_fn)ggml_backend_reg_get_proc_address(rpc, "ggml_backend_rpc_add_server") : NULL;
            ggml_backend_reg_t server = add ? add(device + 4) : NULL;
            if (server && ggml_backend_reg_dev_count(server) > 0) devs[0] = ggml_backend_reg_dev_get(server, 0);
        } else {
            devs[0] = ggml_backend_dev_by_name(device);
        }
        if (!devs[0]) {
            fprintf(stderr, "%s: no device %s\n", tool, device);
            return NULL;
        }
        mp.devices = devs;
        mp.n_gpu_layers = 999;
    }
    return llama_model_load_from_file(path, mp);
}

#endif
