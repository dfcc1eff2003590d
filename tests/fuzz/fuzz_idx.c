/* fuzz_idx.c - libFuzzer harness for the IDX reader nb_idx_parse (built and run by
 * tools/fuzz.sh). With NB_FUZZ_SEEDS=<dir> set, the initializer writes small valid IDX files
 * there (ranks 1 to 4) as a seed corpus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nabla.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("NB_FUZZ_SEEDS");
    for (int rank = 1; dir && rank <= 4; rank++) {
        unsigned char buf[64] = {0, 0, 8, (unsigned char)rank};
        size_t n = 4, numel = 1;
        for (int d = 0; d < rank; d++) {
            buf[n + 3] = (unsigned char)(d + 2);
            numel *= (size_t)(d + 2);
            n += 4;
        }
        for (size_t i = 0; i < numel && n < sizeof buf; i++) buf[n++] = (unsigned char)(i * 7);
        if (n - 4 - 4 * (size_t)rank != numel) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/rank%d.idx", dir, rank);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(buf, 1, n, f);
            fclose(f);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nb_tensor *t = nb_idx_parse(data, size, "fuzz");
    if (t) {
        volatile unsigned sum = 0;
        for (int64_t i = 0; i < t->numel; i++) sum += nb_u8(t)[i];
        if (t->dtype != NB_UINT8 || t->ndim < 1 || t->ndim > 4) abort();
    }
    nb_tensor_free(t);
    return 0;
}
