/* peak_alloc.h - peak memory through nabla's allocator hooks, and gzip members, for the tests
 * and fuzz harnesses that feed readers decompression bombs.
 *
 * The hooks track the bytes nabla holds and their peak, so a test can assert the peak of one
 * call (a reader must not size its memory by what a file's header promises). Install them
 * with nb_set_allocator(peak_malloc, peak_realloc, peak_free) before any other nabla call. The
 * counters are atomic: nabla's pool threads allocate too. */
#ifndef NABLA_TESTS_PEAK_ALLOC_H
#define NABLA_TESTS_PEAK_ALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

static atomic_size_t peak_live, peak_max;

static inline void peak_note(size_t grow) {
    size_t now = atomic_fetch_add(&peak_live, grow) + grow, p = atomic_load(&peak_max);
    while (now > p && !atomic_compare_exchange_weak(&peak_max, &p, now)) {}
}
static inline void *peak_malloc(size_t n) {
    size_t *p = malloc(n + 16);
    if (!p) return NULL;
    p[0] = n;
    peak_note(n);
    return (char *)p + 16;
}
static inline void peak_free(void *q) {
    if (!q) return;
    size_t *p = (size_t *)(void *)((char *)q - 16);
    atomic_fetch_sub(&peak_live, p[0]);
    free(p);
}
static inline void *peak_realloc(void *q, size_t n) {
    if (!q) return peak_malloc(n);
    size_t *p = (size_t *)(void *)((char *)q - 16), old = p[0];
    size_t *r = realloc(p, n + 16);
    if (!r) return NULL;
    r[0] = n;
    atomic_fetch_sub(&peak_live, old);
    peak_note(n);
    return (char *)r + 16;
}
/* Start measuring: the peak so far is what is live now (returned, the base). */
static inline size_t peak_begin(void) {
    size_t now = atomic_load(&peak_live);
    atomic_store(&peak_max, now);
    return now;
}
/* Bytes above base at the peak since peak_begin. */
static inline size_t peak_since(size_t base) { return atomic_load(&peak_max) - base; }

/* Append data[0..n) to f as one gzip member (deflate level 1..9); false if zlib refuses. */
static inline bool gz_member(FILE *f, const void *data, size_t n, int level) {
    z_stream z = {0};
    unsigned char out[1 << 16];
    if (deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK) return false;
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)n;
    int zr;
    do {
        z.next_out = out;
        z.avail_out = sizeof out;
        zr = deflate(&z, Z_FINISH);
        fwrite(out, 1, sizeof out - z.avail_out, f);
    } while (zr != Z_STREAM_END);
    deflateEnd(&z);
    return true;
}

#endif
