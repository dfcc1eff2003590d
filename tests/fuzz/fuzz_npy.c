/* fuzz_npy.c - libFuzzer harness for the .npy reader nb_npy_parse (built and run by
 * tools/fuzz.sh). An input is one .npy file (the target a column of it), or two: when it holds
 * a second "\x93NUMPY" magic, the bytes from there on are the targets' file. The first byte
 * picks the task and the target column. A dataset that loads must be consistent: every value
 * finite, every label a class index. Memory must follow the bounds, whatever a header promises:
 * the arrays at most max_bytes (1 MiB here), the header at most 64 KiB; the harness tracks what
 * nabla holds (tests/peak_alloc.h) and aborts above 2 MiB. With NB_FUZZ_SEEDS=<dir> set, the initializer
 * writes small valid files there as a seed corpus. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nabla.h"
#include "../peak_alloc.h"

/* A .npy file of format 1.0 with the given header dict and data, into out; returns its size. */
static size_t npy(unsigned char *out, const char *dict, const void *data, size_t n) {
    size_t len = strlen(dict) + 1, pad = (64 - (10 + len) % 64) % 64, hl = len + pad;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)hl;
    out[9] = (unsigned char)(hl >> 8);
    memcpy(out + 10, dict, len - 1);
    memset(out + 10 + len - 1, ' ', pad);
    out[10 + hl - 1] = '\n';
    memcpy(out + 10 + hl, data, n);
    return 10 + hl + n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (nb_set_allocator(peak_malloc, peak_realloc, peak_free)) abort();
    const char *dir = getenv("NB_FUZZ_SEEDS");
    if (!dir) return 0;
    static unsigned char buf[1024];
    float f4[6] = {1, 2, 0, 3, 4, 1};
    unsigned char u1[8] = {0, 10, 20, 30, 40, 50, 60, 70};
    int64_t i8[2] = {1, 0};
    size_t n;
    char path[4096];
    for (int s = 0; s < 2; s++) {
        buf[0] = (unsigned char)s;
        if (s == 0) n = 1 + npy(buf + 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4, 24);
        else {
            n = 1 + npy(buf + 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 2), }", u1, 8);
            n += npy(buf + n, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", i8, 16);
        }
        snprintf(path, sizeof path, "%s/seed%d.npy", dir, s);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(buf, 1, n, f);
            fclose(f);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    nb_read_opts o = nb_read_defaults();
    o.task = (nb_task)(data[0] & 3) % 3;
    o.target_col = (data[0] >> 2 & 1) ? 0 : -1;
    o.max_bytes = 1 << 20;
    const uint8_t *x = data + 1, *y = NULL;
    size_t xn = size - 1, yn = 0;
    for (size_t i = 1; i + 6 <= xn; i++)
        if (!memcmp(x + i, "\x93NUMPY", 6)) {
            y = x + i;
            yn = xn - i;
            xn = i;
            break;
        }
    size_t base = peak_begin();
    nb_dataset *ds = nb_npy_parse(x, xn, y, yn, "fuzz", &o);
    if (peak_since(base) > (2u << 20)) {
        fprintf(stderr, "nb_npy_parse of %zu bytes held %zu bytes\n", size - 1, peak_since(base));
        abort();
    }
    if (!ds) return 0;
    if (ds->len < 1 || ds->features < 1 || ds->task != o.task) abort();
    float *xv = malloc(sizeof(float) * (size_t)ds->features), *yv = NULL;
    if (ds->task == NB_REGRESS) yv = malloc(sizeof(float) * (size_t)ds->targets);
    int32_t cls;
    for (int64_t i = 0; i < ds->len; i++) {
        if (nb_dataset_get(ds, &i, 1, xv, ds->task == NB_CLASSIFY ? (void *)&cls : (void *)yv)) abort();
        for (int64_t j = 0; j < ds->features; j++)
            if (!isfinite(xv[j])) abort();
        if (ds->task == NB_CLASSIFY && (cls < 0 || cls >= ds->classes)) abort();
    }
    free(xv);
    free(yv);
    nb_dataset_free(ds);
    return 0;
}
