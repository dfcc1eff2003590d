/* fuzz_csv.c - libFuzzer harness for the CSV reader nb_csv_parse (built and run by
 * tools/fuzz.sh). The first byte of an input picks the options (delimiter, task, target
 * column, skipped lines), the rest is the file, raw or gzip'd. A dataset that loads must be
 * consistent: every value finite, every label a class index, every sample gatherable. Memory
 * must follow the bounds, whatever the text holds (a gzip'd input may inflate far): the arrays
 * and the first row's buffer at most max_bytes each (1 MiB here), a field at most 1 MiB; the
 * harness tracks what nabla holds (tests/peak_alloc.h) and aborts above 4 MiB. With NB_FUZZ_SEEDS=<dir>
 * set, the initializer writes small valid files there as a seed corpus. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nabla.h"
#include "../peak_alloc.h"

static const char DELIMS[4] = {',', ';', '\t', NB_CSV_WHITESPACE};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (nb_set_allocator(peak_malloc, peak_realloc, peak_free)) abort();
    const char *dir = getenv("NB_FUZZ_SEEDS");
    static const char *seeds[] = {"\x00" "5.1,3.5,1.4,0.2,0\n4.9,3.0,1.4,0.2,1\n",
                                  "\x05" "150,4,setosa,versicolor\n5.1,3.5,1.4,0.2,0\n6.2,2.9,4.3,1.3,2\n",
                                  "\x0b" "59 2 32.1 101.0  157\n48\t1 21.6 87.0 183\n",
                                  "\x01" "1;\"2.5e-3\";-7\r\n\r\n4;5;.5\r\n",
                                  "\x12" "0,1,2\n3,4,5\n6,7,8\n"};
    for (int i = 0; dir && i < 5; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/seed%d.csv", dir, i);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(seeds[i], 1, strlen(seeds[i] + 1) + 1, f);
            fclose(f);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    nb_read_opts o = nb_read_defaults();
    o.delimiter = DELIMS[data[0] & 3];
    o.task = (nb_task)(data[0] >> 2 & 3) % 3;
    o.target_col = (data[0] >> 4 & 1) ? 0 : -1;
    o.skip_rows = data[0] >> 5 & 1;
    o.classes = (data[0] >> 6 & 1) ? 3 : 0;
    o.max_bytes = 1 << 20;
    size_t base = peak_begin();
    nb_dataset *ds = nb_csv_parse(data + 1, size - 1, "fuzz", &o);
    if (peak_since(base) > (4u << 20)) {
        fprintf(stderr, "nb_csv_parse of %zu bytes held %zu bytes\n", size - 1, peak_since(base));
        abort();
    }
    if (!ds) return 0;
    if (ds->len < 1 || ds->features < 1 || ds->task != o.task) abort();
    float *x = malloc(sizeof(float) * (size_t)ds->features);
    float y[64];
    int32_t cls;
    for (int64_t i = 0; i < ds->len; i++) {
        void *yp = ds->task == NB_CLASSIFY ? (void *)&cls : (void *)y;
        if (ds->task == NB_REGRESS && ds->targets > 64) abort();
        if (nb_dataset_get(ds, &i, 1, x, yp)) abort();
        for (int64_t j = 0; j < ds->features; j++)
            if (!isfinite(x[j])) abort();
        if (ds->task == NB_CLASSIFY && (cls < 0 || cls >= ds->classes)) abort();
    }
    free(x);
    nb_dataset_free(ds);
    return 0;
}
