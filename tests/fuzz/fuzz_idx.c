/* fuzz_idx.c - libFuzzer harness for the IDX reader (built and run by tools/fuzz.sh).
 *
 * Each input is read three ways: from memory (nb_idx_parse); as a file, gzip'd when the input's
 * first byte is odd (nb_idx_load, which also takes an input that is itself gzip data); and as
 * the images and labels files of a split, cut at the position its first two bytes give
 * (nb_mnist_load, which checks the two headers against each other before reading a body).
 * Whatever a header promises, memory must follow what the files hold: the harness tracks what
 * nabla holds (tests/peak_alloc.h) and aborts if reading a file took more than twice its data plus 2 MiB,
 * or if nb_mnist_load of two files whose headers disagree on the count took more than 1 MiB
 * (it must refuse them before reading a body); tools/fuzz.sh adds -malloc_limit_mb.
 * With NB_FUZZ_SEEDS=<dir> set, the initializer writes small valid IDX files there (ranks 1 to
 * 4) as a seed corpus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "nabla.h"
#include "../peak_alloc.h"

static char dir[64];

static void cleanup(void) {
    static const char *const names[] = {"one", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"};
    char path[128];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (nb_set_allocator(peak_malloc, peak_realloc, peak_free)) abort();
    snprintf(dir, sizeof dir, "/dev/shm/nabla-fuzz-idx-XXXXXX"); /* in memory: files are rewritten per input */
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof dir, "/tmp/nabla-fuzz-idx-XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    atexit(cleanup);
    const char *seeds = getenv("NB_FUZZ_SEEDS");
    for (int rank = 1; seeds && rank <= 4; rank++) {
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
        snprintf(path, sizeof path, "%s/rank%d.idx", seeds, rank);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(buf, 1, n, f);
            fclose(f);
        }
    }
    return 0;
}

/* Write data to dir/name, as one gzip member when gz. */
static void put(const char *name, const uint8_t *data, size_t size, bool gz) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (gz && !gz_member(f, data, size, 1)) abort();
    else fwrite(data, 1, size, f);
    fclose(f);
}

static void check(nb_tensor *t) {
    if (!t) return;
    volatile unsigned sum = 0;
    for (int64_t i = 0; i < t->numel; i++) sum += nb_u8(t)[i];
    if (t->dtype != NB_UINT8 || t->ndim < 1 || t->ndim > 4) abort();
    nb_tensor_free(t);
}

/* The count (first dimension) of an IDX header in the plain bytes p[0..n), or -1 if there is
 * none (or p is gzip data, which the reader would inflate). */
static long long count_of(const uint8_t *p, size_t n) {
    if (n < 8 || p[0] || p[1] || p[2] != 8 || p[3] < 1 || p[3] > 4) return -1;
    return (long long)((uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7]);
}

static bool gzip_data(const uint8_t *p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(nb_idx_parse(data, size, "fuzz"));
    bool gz = size && (data[0] & 1);
    put("one", data, size, gz);
    char path[128];
    snprintf(path, sizeof path, "%s/one", dir);
    size_t base = peak_begin();
    check(nb_idx_load(path));
    if (!gzip_data(data, size) && peak_since(base) > 2 * size + (2u << 20)) {
        fprintf(stderr, "nb_idx_load of %zu bytes held %zu bytes\n", size, peak_since(base));
        abort();
    }
    size_t cut = size >= 2 ? ((size_t)data[0] << 8 | data[1]) % (size + 1) : 0;
    put("train-images-idx3-ubyte", data, cut, gz);
    put("train-labels-idx1-ubyte", data + cut, size - cut, size > 1 && (data[1] & 1));
    long long ni = count_of(data, cut), nl = count_of(data + cut, size - cut);
    nb_mnist m;
    base = peak_begin();
    if (nb_mnist_load(dir, "train", &m) == NB_OK) {
        if (m.images->shape[0] != m.labels->shape[0]) abort();
        nb_mnist_free(&m);
    } else if (ni >= 0 && nl >= 0 && ni != nl && peak_since(base) > (1u << 20)) {
        fprintf(stderr, "nb_mnist_load of %lld images and %lld labels held %zu bytes\n", ni, nl,
                peak_since(base));
        abort();
    }
    return 0;
}
