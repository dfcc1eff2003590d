/* harness.h - what the fuzz harnesses share.
 *
 * Peak memory: nabla's allocator hooks that track the bytes nabla holds, so a harness can
 * assert the peak of one call (a reader must not size its memory by what a file's header
 * promises). Install with nb_set_allocator(peak_malloc, peak_realloc, peak_free) before any
 * other nabla call. */
#ifndef NABLA_FUZZ_HARNESS_H
#define NABLA_FUZZ_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

static size_t peak_live, peak_max;

static void peak_note(size_t grow) {
    peak_live += grow;
    if (peak_live > peak_max) peak_max = peak_live;
}
static void *peak_malloc(size_t n) {
    size_t *p = malloc(n + 16);
    if (!p) return NULL;
    p[0] = n;
    peak_note(n);
    return (char *)p + 16;
}
static void peak_free(void *q) {
    if (!q) return;
    size_t *p = (size_t *)(void *)((char *)q - 16);
    peak_live -= p[0];
    free(p);
}
static void *peak_realloc(void *q, size_t n) {
    if (!q) return peak_malloc(n);
    size_t *p = (size_t *)(void *)((char *)q - 16), old = p[0];
    size_t *r = realloc(p, n + 16);
    if (!r) return NULL;
    r[0] = n;
    peak_live -= old;
    peak_note(n);
    return (char *)r + 16;
}
/* Start measuring; peak_since(base) is then the most held above what was held at the start. */
static size_t peak_begin(void) {
    peak_max = peak_live;
    return peak_live;
}
static size_t peak_since(size_t base) { return peak_max - base; }

/* Append data[0..n) to f as one gzip member (deflate level 1..9). */
static void gz_member(FILE *f, const void *data, size_t n, int level) {
    z_stream z = {0};
    unsigned char out[1 << 14];
    if (deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
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
}

#endif
