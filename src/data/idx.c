/* idx.c - IDX files (the MNIST format): big-endian header, then raw unsigned bytes.
 * The file may be raw or gzip-compressed (read through stream.c). Everything is checked:
 * the header against what the file really holds, and a gzip file to the end of its stream
 * (CRC-32 and length), so a cut or corrupted file is an error, never silently short data.
 * The header is read and checked (rank, sizes, the total against IDX_MAX_BYTES) before the
 * body, on its own (nb__idx_open), so a caller can check it against another file's first
 * (nb_mnist_load: images against labels); memory then grows only as data actually arrives. */
#include <inttypes.h>
#include <stdio.h>
#include "idx.h"

enum { IDX_UBYTE = 0x08 };

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
    uint64_t total = 1;
    bool over = false;
    for (int i = 0; i < *ndim; i++) {
        shape[i] = be32(hdr + 4 + 4 * i);
        if (shape[i] == 0)
            return nb__error(NB_EFORMAT, "idx: %s: dimension %d has size 0 (an empty file)", what, i);
        over |= __builtin_mul_overflow(total, (uint64_t)shape[i], &total);
    }
    if (over || total > (uint64_t)IDX_MAX_BYTES) {
        char dims[64] = "";
        for (int i = 0, n = 0; i < *ndim; i++)
            n += snprintf(dims + n, sizeof dims - (size_t)n, "%s%lld", i ? " x " : "", (long long)shape[i]);
        char tot[32] = "more than 2^64";
        if (!over) snprintf(tot, sizeof tot, "%" PRIu64, total);
        return nb__error(NB_EFORMAT, "idx: %s: header promises %s = %s bytes, more than the limit of "
                         "%lld (4 GiB)", what, dims, tot, (long long)IDX_MAX_BYTES);
    }
    *bytes = (int64_t)total;
    return (int)hlen;
}

/* The data after the header is not the size the header promises. */
static void *size_mismatch(const char *what, int64_t bytes, int64_t have) {
    if (have < bytes)
        return nb__null(NB_EFORMAT, "idx: %s: truncated: header promises %lld data bytes, file has %lld",
                        what, (long long)bytes, (long long)have);
    return nb__null(NB_EFORMAT, "idx: %s: data continues past the %lld bytes the header promises",
                    what, (long long)bytes);
}

nb_tensor *nb_idx_parse(const void *buf, size_t len, const char *what) {
    if (!buf) return nb__null(NB_EINVAL, "idx: buffer is NULL");
    if (!what) what = "buffer";
    int ndim = 0;
    int64_t shape[IDX_MAX_RANK] = {0}, bytes = 0;
    int h = parse_header(buf, len, what, &ndim, shape, &bytes);
    if (h < 0) return NULL;
    if ((int64_t)(len - (size_t)h) != bytes) return size_mismatch(what, bytes, (int64_t)(len - (size_t)h));
    return nb_from_array(NULL, NB_UINT8, ndim, shape, (const unsigned char *)buf + h);
}

/* ---- the reader ---------------------------------------------------------------------------- */

int nb__idx_open(const char *path, nb__idx *f) {
    memset(f, 0, sizeof *f);
    if (!path) return nb__error(NB_EINVAL, "idx: path is NULL");
    nb__stream *s = nb__stream_open(path, "idx");
    if (!s) return nb_last_status();
    unsigned char hdr[4 + 4 * IDX_MAX_RANK];
    int64_t got = nb__stream_read(s, hdr, 4);
    if (got == 4 && hdr[3] >= 1 && hdr[3] <= IDX_MAX_RANK && hdr[0] == 0 && hdr[1] == 0) {
        int64_t more = nb__stream_read(s, hdr + 4, 4 * (int64_t)hdr[3]);
        got = more < 0 ? more : got + more;
    }
    if (got < 0 || parse_header(hdr, (size_t)got, path, &f->ndim, f->shape, &f->bytes) < 0) {
        nb__stream_close(s);
        return nb_last_status() ? nb_last_status() : NB_EFORMAT;
    }
    f->s = s;
    f->path = path;
    return NB_OK;
}

void nb__idx_close(nb__idx *f) {
    nb__stream_close(f->s);
    f->s = NULL;
}

nb_tensor *nb__idx_read(nb__idx *f) {
    nb__stream *s = f->s;
    const char *path = f->path;
    nb_tensor *t = NULL;
    int64_t bytes = f->bytes;
    /* grow as data arrives: a lying header cannot make us allocate what the file lacks */
    int64_t cap = bytes < ((int64_t)1 << 20) ? bytes : ((int64_t)1 << 20), have = 0;
    unsigned char *data = nb__malloc_aligned((size_t)cap);
    while (data) {
        int64_t r = nb__stream_read(s, data + have, cap - have);
        if (r < 0) break;
        have += r;
        if (have < cap) {
            size_mismatch(path, bytes, have);
            break;
        }
        if (have == bytes) {
            unsigned char extra;
            int64_t r2 = nb__stream_read(s, &extra, 1); /* the end: gzip checks CRC and length here */
            if (r2 > 0) size_mismatch(path, bytes, bytes + 1);
            else if (r2 == 0 && (t = nb__alias(NULL, &(nb_tensor){.dtype = NB_UINT8}, f->ndim, f->shape, data))) {
                t->flags |= NB_TENSOR_OWNS_DATA; /* the tensor takes the buffer: no copy */
                data = NULL;
            }
            break;
        }
        cap = cap * 2 < bytes ? cap * 2 : bytes;
        unsigned char *nd = nb__realloc_aligned(data, (size_t)have, (size_t)cap);
        if (!nd) break;
        data = nd;
    }
    nb__free_aligned(data);
    nb__idx_close(f);
    return t;
}

nb_tensor *nb_idx_load(const char *path) {
    nb__idx f;
    return nb__idx_open(path, &f) ? NULL : nb__idx_read(&f);
}
