#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml.h"
#include "ggml-cpu.h"
// ggml's CPU backend rounding of MUL_MAT activations, for scripts/act_round_crosscheck.sh: reads n f32 values
// from IN, converts them with the CPU backend's from_float of Q8_0, Q8_1, Q8_K and BF16 (the vec_dot_types) and
// writes the values back as f32 (d * q, or the bf16 value) to q8_0.bin, q8_1.bin, q8_k.bin, bf16.bin in the
// current directory. Usage: act_round_ref IN N   (N a multiple of 256)
static void dump(const char *name, const float *v, long n) { FILE *f = fopen(name, "wb"); fwrite(v, 4, n, f); fclose(f); }
int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s IN N\n", argv[0]); return 2; }
    long n = atol(argv[2]);
    float *x = malloc(n * 4), *y = malloc(n * 4);
    FILE *f = fopen(argv[1], "rb"); if (!f || fread(x, 4, n, f) != (size_t)n) { fprintf(stderr, "cannot read %ld floats from %s\n", n, argv[1]); return 1; }
    fclose(f);
    ggml_cpu_init();
    void *buf = malloc(n * 4 + 4096);
    enum ggml_type types[3] = {GGML_TYPE_Q8_0, GGML_TYPE_Q8_K, GGML_TYPE_BF16};
    const char *names[3] = {"q8_0.bin", "q8_k.bin", "bf16.bin"};
    for (int t = 0; t < 3; t++) {
        ggml_get_type_traits_cpu(types[t])->from_float(x, buf, n);
        if (types[t] == GGML_TYPE_Q8_K) {
            for (long b = 0; b < n / 256; b++) {
                const unsigned char *blk = (const unsigned char *)buf + b * 292;
                float d; memcpy(&d, blk, 4);
                for (int i = 0; i < 256; i++) y[b * 256 + i] = d * (float)(signed char)blk[4 + i];
            }
            dump(names[t], y, n);
            continue;
        }
        ggml_get_type_traits(types[t])->to_float(buf, y, n);
        dump(names[t], y, n);
    }
    ggml_get_type_traits_cpu(GGML_TYPE_Q8_1)->from_float(x, buf, n);
    for (long b = 0; b < n / 32; b++) {
        const unsigned char *blk = (const unsigned char *)buf + b * 36;
        ggml_fp16_t d; memcpy(&d, blk, 2);
        float df = ggml_fp16_to_fp32(d);
        for (int i = 0; i < 32; i++) y[b * 32 + i] = df * (float)(signed char)blk[4 + i];
    }
    dump("q8_1.bin", y, n);
    return 0;
}
