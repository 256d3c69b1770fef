/* Every node's output of one llama.cpp batch, for comparing two backends node by node (scripts/node-diff.sh).
 *   nodes MODEL DEVICE N_TOKENS UBATCH PROMPT_FILE OUT
 * The prompt file's first N_TOKENS tokens are decoded in batches of UBATCH tokens (UBATCH 1: token by token, every
 * product a mat-vec); during the last batch llama.cpp's eval callback reads each contiguous F32 node back and
 * OUT gets records of [64-byte name][u64 element count][f32 values]. DEVICE: as load_model.h takes it (CPU, a
 * device name such as GGVK0, RPC:HOST:PORT). Flash attention off, F16 K/V cache (GREEDY_FA=1 turns it on, as for
 * greedy.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"
#include "llama.h"
#include "load_model.h"

struct dump {
    FILE *out;
    int armed;
    int failed;
};

static bool on_node(struct ggml_tensor *t, bool ask, void *user) {
    struct dump *d = user;
    if (ask) return d->armed;
    if (t->type != GGML_TYPE_F32 || !ggml_is_contiguous(t)) return true;
    const uint64_t n = (uint64_t)ggml_nelements(t);
    float *buf = malloc(n * sizeof(float));
    if (!buf) {
        d->failed = 1;
        return false;
    }
    ggml_backend_tensor_get(t, buf, 0, n * sizeof(float));
    char name[64] = {0};
    snprintf(name, sizeof name, "%s", t->name);
    if (fwrite(name, 1, sizeof name, d->out) != sizeof name || fwrite(&n, sizeof n, 1, d->out) != 1 ||
        fwrite(buf, sizeof(float), n, d->out) != n) {
        d->failed = 1;
    }
    free(buf);
    return !d->failed;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s MODEL DEVICE N_TOKENS UBATCH PROMPT_FILE OUT\n", argv[0]);
        return 2;
    }
    const char *model_path = argv[1], *device = argv[2];
    int n_tokens = atoi(argv[3]);
    const int ubatch = atoi(argv[4]);
    if (n_tokens < 1 || ubatch < 1 || ubatch > 512) {
        fprintf(stderr, "nodes: N_TOKENS >= 1 and 1 <= UBATCH <= 512\n");
        return 2;
    }
    static char prompt[1 << 16];
    FILE *pf = fopen(argv[5], "rb");
    if (!pf) {
        perror(argv[5]);
        return 1;
    }
    const size_t len = fread(prompt, 1, sizeof prompt - 1, pf);
    fclose(pf);
    prompt[len] = 0;
    struct dump d = {fopen(argv[6], "wb"), 0, 0};
    if (!d.out) {
        perror(argv[6]);
        return 1;
    }

    llama_backend_init();
    ggml_backend_load_all();
    struct llama_model *model = load_model("nodes", model_path, device);
    if (!model) return 1;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 1024;
    cp.n_batch = 512;
    cp.n_ubatch = (uint32_t)ubatch;
    cp.cb_eval = on_node;
    cp.cb_eval_user_data = &d;
    const char *fa = getenv("GREEDY_FA");
    cp.flash_attn_type = fa && strcmp(fa, "1") == 0 ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) return 1;

    static llama_token tokens[1 << 16];
    const int n = llama_tokenize(llama_model_get_vocab(model), prompt, (int)len, tokens, 1 << 16, true, false);
    if (n <= 0) {
        fprintf(stderr, "nodes: the prompt did not tokenize\n");
        return 1;
    }
    if (n_tokens > n) n_tokens = n;
    if (n_tokens > (int)cp.n_ctx) n_tokens = (int)cp.n_ctx;
    for (int i = 0; i < n_tokens; i += ubatch) {
        const int count = n_tokens - i < ubatch ? n_tokens - i : ubatch;
        d.armed = i + count >= n_tokens;
        if (llama_decode(ctx, llama_batch_get_one(&tokens[i], count)) != 0 || d.failed) {
            fprintf(stderr, "nodes: decode failed at token %d\n", i);
            return 1;
        }
    }
    printf("%d tokens in batches of %d\n", n_tokens, ubatch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return fclose(d.out) == 0 ? 0 : 1;
}
