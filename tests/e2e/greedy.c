/* Greedy generation through libllama, printing each step's chosen token and the top-2 logit gap, so two runs
 * (CPU backend vs GGVK0) can be compared token by token.
 *   greedy MODEL DEVICE N_PREDICT PROMPT      DEVICE: CPU (no offload), a device name such as GGVK0, or
 *                                             RPC:HOST:PORT (the first device of that ggml-rpc server)
 * Environment: GREEDY_FA=1 turns flash attention on; GREEDY_KV=<type> sets the K and V cache type (any of
 * llama.cpp's: f32 f16 bf16 q8_0 q4_0 q4_1 iq4_nl q5_0 q5_1), GREEDY_KV_V=<type> a different V cache type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"
#include "llama.h"
#include "load_model.h"

/* The K/V cache types llama.cpp's -ctk/-ctv accept, by name; GGML_TYPE_COUNT for any other name. */
static enum ggml_type cache_type(const char *name) {
    static const enum ggml_type types[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16,
                                           GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1,
                                           GGML_TYPE_IQ4_NL, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(name, ggml_type_name(types[i])) == 0) return types[i];
    }
    return GGML_TYPE_COUNT;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL DEVICE N_PREDICT PROMPT\n", argv[0]);
        return 2;
    }
    const char *model_path = argv[1], *device = argv[2], *prompt = argv[4];
    const int n_predict = atoi(argv[3]);
    llama_backend_init();
    ggml_backend_load_all();

    struct llama_model *model = load_model("greedy", model_path, device);
    if (!model) return 1;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = 512;
    const char *fa = getenv("GREEDY_FA");
    cp.flash_attn_type = fa && strcmp(fa, "1") == 0 ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    const char *kv = getenv("GREEDY_KV");
    const char *kv_v = getenv("GREEDY_KV_V");
    if (kv) {
        cp.type_k = cache_type(kv);
        cp.type_v = cache_type(kv_v ? kv_v : kv);
        if (cp.type_k == GGML_TYPE_COUNT || cp.type_v == GGML_TYPE_COUNT) {
            fprintf(stderr, "greedy: unknown cache type %s/%s\n", kv, kv_v ? kv_v : kv);
            return 2;
        }
    }
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) return 1;
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    llama_token tokens[512];
    int n = llama_tokenize(vocab, prompt, (int)strlen(prompt), tokens, 512, true, false);
    if (n <= 0) return 1;
    struct llama_batch batch = llama_batch_get_one(tokens, n);
    for (int step = 0; step < n_predict; step++) {
        if (llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "greedy: decode failed at step %d\n", step);
            return 1;
        }
        const float *logits = llama_get_logits_ith(ctx, -1);
        int best = 0, second = -1;
        for (int i = 1; i < n_vocab; i++) {
            if (logits[i] > logits[best]) {
                second = best;
                best = i;
            } else if (second < 0 || logits[i] > logits[second]) {
                second = i;
            }
        }
        printf("step %d token %d logit %.6f second %d logit %.6f gap %.6g\n", step, best, logits[best], second,
               logits[second], (double)(logits[best] - logits[second]));
        tokens[0] = best;
        batch = llama_batch_get_one(tokens, 1);
    }
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
