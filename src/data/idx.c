/* idx.c - IDX files (the MNIST format): big-endian header, then raw unsigned bytes.
 * Read through zlib, so .gz and raw files both work; everything in the header is checked
 * against what the file really holds, and memory grows only as data actually arrives. */
#include <errno.h>
#include <stdio.h>
#include <zlib.h>
#include "../core/internal.h"

enum { IDX_UBYTE = 0x08, IDX_MAX_RANK = 4 };
#define IDX_MAX_BYTES ((int64_t)1 << 32)

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Parse the header in hdr (len bytes available): fills shape, returns header size or < 0. */
static int parse_header(const unsigned char *hdr, size_t len, const char *what, int *ndim,
                        int64_t *shape, int64_t *bytes) {
    if (len < 4)
        return nb__error(NB_EFORMAT, "idx: %s: file is too short for an IDX header (%zu bytes)", what, len);
    if (hdr[0] != 0 || hdr[1] != 0)
        return nb__error(NB_EFORMAT, "idx: %s: bad magic %02x%02x%02x%02x (not an IDX file)", what,
                         hdr[0], hdr[1], hdr[2], hdr[3]);
    if (hdr[2] != IDX_UBYTE)
        return nb__error(NB_EFORMAT, "idx: %s: element type 0x%02x is not supported (only unsigned "
                         "byte, 0x08)", what, hdr[2]);
    *ndim = hdr[3];
    if (*ndim < 1 || *ndim > IDX_MAX_RANK)
        return nb__error(NB_EFORMAT, "idx: %s: rank %d is outside 1..%d", what, *ndim, IDX_MAX_RANK);
    size_t hlen = 4 + 4 * (size_t)*ndim;
    if (len < hlen)
        return nb__error(NB_EFORMAT, "idx: %s: truncated header (%zu of %zu bytes)", what, len, hlen);
    *bytes = 1;
    for (int i = 0; i < *ndim; i++) {
        shape[i] = be32(hdr + 4 + 4 * i);
        if (shape[i] == 0 || *bytes > IDX_MAX_BYTES / (int64_t)shape[i])
            return nb__error(NB_EFORMAT, "idx: %s: dimension %d has size %lld (empty or too large)",
                             what, i, (long long)shape[i]);
        *bytes *= shape[i];
    }
    return (int)hlen;
}

nb_tensor *nb_idx_parse(const void *buf, size_t len, const char *what) {
    if (!buf) return nb__null(NB_EINVAL, "idx: buffer is NULL");
    int ndim = 0;
    int64_t shape[IDX_MAX_RANK] = {0}, bytes = 0;
    int h = parse_header(buf, len, what ? what : "buffer", &ndim, shape, &bytes);
    if (h < 0) return NULL;
    if ((int64_t)(len - (size_t)h) != bytes)
        return nb__null(NB_EFORMAT, "idx: %s: header promises %lld data bytes, file has %lld",
                        what ? what : "buffer", (long long)bytes, (long long)(len - (size_t)h));
    return nb_from_array(NULL, NB_UINT8, ndim, shape, (const unsigned char *)buf + h);
}

/* Read exactly n bytes (fewer only at end of file); < 0 on a zlib/IO error. */
static int64_t read_full(gzFile f, unsigned char *dst, int64_t n) {
    int64_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1 << 30) ? 1u << 30 : (unsigned)(n - got);
        int r = gzread(f, dst + got, chunk);
        if (r < 0) return -1;
        if (r == 0) break;
        got += r;
    }
    return got;
}

nb_tensor *nb_idx_load(const char *path) {
    if (!path) return nb__null(NB_EINVAL, "idx: path is NULL");
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) return nb__null(NB_EIO, "idx: cannot open %s: %s", path, errno ? strerror(errno) : "zlib error");
    nb_tensor *t = NULL;
    unsigned char hdr[4 + 4 * IDX_MAX_RANK];
    int zerr;
    int64_t got = read_full(f, hdr, 4);
    if (got == 4 && hdr[3] >= 1 && hdr[3] <= IDX_MAX_RANK && hdr[0] == 0 && hdr[1] == 0)
        got += read_full(f, hdr + 4, 4 * (int64_t)hdr[3]);
    if (got < 0) {
        nb__error(NB_EFORMAT, "idx: %s: %s", path, gzerror(f, &zerr));
        goto done;
    }
    int ndim = 0;
    int64_t shape[IDX_MAX_RANK] = {0}, bytes = 0;
    if (parse_header(hdr, (size_t)got, path, &ndim, shape, &bytes) < 0) goto done;
    /* grow as data arrives: a lying header cannot make us allocate what the file lacks */
    int64_t cap = bytes < ((int64_t)1 << 24) ? bytes : ((int64_t)1 << 24), have = 0;
    unsigned char *data = nb__malloc((size_t)cap);
    while (data) {
        int64_t r = read_full(f, data + have, cap - have);
        if (r < 0) {
            nb__error(NB_EFORMAT, "idx: %s: %s", path, gzerror(f, &zerr));
            break;
        }
        have += r;
        if (have < cap) {
            nb__error(NB_EFORMAT, "idx: %s: truncated: header promises %lld data bytes, file has "
                      "%lld", path, (long long)bytes, (long long)have);
            break;
        }
        if (have == bytes) {
            unsigned char extra;
            int r2 = gzread(f, &extra, 1); /* also makes zlib check the gzip CRC and length */
            if (r2 < 0) nb__error(NB_EFORMAT, "idx: %s: %s", path, gzerror(f, &zerr));
            else if (r2 > 0) nb__error(NB_EFORMAT, "idx: %s: data continues past the %lld bytes "
                                       "the header promises", path, (long long)bytes);
            else t = nb_from_array(NULL, NB_UINT8, ndim, shape, data);
            break;
        }
        cap = cap * 2 < bytes ? cap * 2 : bytes;
        unsigned char *nd = nb__realloc(data, (size_t)cap);
        if (!nd) break;
        data = nd;
    }
    nb__free(data);
done:
    gzclose(f);
    return t;
}
