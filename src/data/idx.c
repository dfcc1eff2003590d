/* idx.c - IDX files (the MNIST format): big-endian header, then raw unsigned bytes.
 * The file may be raw or gzip-compressed (detected by the gzip magic). Everything is checked:
 * the header against what the file really holds, and a gzip file to the end of its stream
 * (CRC-32 and length), so a cut or corrupted file is an error, never silently short data.
 * The header is read and checked (rank, sizes, the total against IDX_MAX_BYTES) before the
 * body, on its own (nb__idx_open), so a caller can check it against another file's first
 * (nb_mnist_load: images against labels); memory then grows only as data actually arrives. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>
#include <zlib.h>
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

/* ---- a byte stream over a raw or gzip file ----------------------------------------------
 * zlib's gzread cannot tell a complete gzip stream from one cut inside its 8-byte trailer (it
 * returns the data and no error), so the stream drives inflate() itself. Every allocation,
 * zlib's included, goes through nabla's allocator hooks. */
typedef struct stream {
    const char *path;
    int fd;
    bool gz, done;            /* gzip: the stream ended (trailer checked) */
    z_stream z;
    size_t avail;             /* raw: bytes of buf not yet served */
    unsigned char *next;      /* raw: where they start */
    unsigned char buf[1 << 16];
} stream;

/* read(2) up to n bytes, retrying on EINTR; -1 with the error set on failure. */
static ssize_t read_some(stream *s, unsigned char *dst, size_t n) {
    ssize_t r;
    do r = read(s->fd, dst, n);
    while (r < 0 && errno == EINTR);
    if (r < 0) nb__error(NB_EIO, "idx: %s: %s", s->path, strerror(errno));
    return r;
}

static stream *stream_open(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nb__null(NB_EIO, "idx: cannot open %s: %s", path, strerror(errno));
    stream *s = nb__calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return NULL;
    }
    s->path = path;
    s->fd = fd;
    size_t n = 0; /* the first two bytes decide: gzip (1f 8b) or raw */
    while (n < 2) {
        ssize_t r = read_some(s, s->buf + n, sizeof s->buf - n);
        if (r < 0) goto fail;
        if (r == 0) break;
        n += (size_t)r;
    }
    s->next = s->buf;
    s->avail = n;
    if (n >= 2 && s->buf[0] == 0x1f && s->buf[1] == 0x8b) {
        s->gz = true;
        s->z.zalloc = nb__zalloc;
        s->z.zfree = nb__zfree;
        s->z.next_in = s->buf;
        s->z.avail_in = (uInt)n;
        if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) { /* 16: gzip wrapper only */
            nb__error(NB_ENOMEM, "idx: %s: cannot start zlib", path);
            goto fail;
        }
    }
    return s;
fail:
    close(fd);
    nb__free(s);
    return NULL;
}

static void stream_close(stream *s) {
    if (!s) return;
    if (s->gz) inflateEnd(&s->z);
    close(s->fd);
    nb__free(s);
}

/* Inflate into dst[0..n); returns the bytes produced (fewer only at the end of the stream),
 * or -1 with the error set. */
static int64_t gz_read(stream *s, unsigned char *dst, int64_t n) {
    z_stream *z = &s->z;
    int64_t got = 0;
    while (got < n && !s->done) {
        if (z->avail_in == 0) {
            ssize_t r = read_some(s, s->buf, sizeof s->buf);
            if (r < 0) return -1;
            if (r == 0) {
                nb__error(NB_EFORMAT, "idx: %s: unexpected end of file (truncated gzip file)", s->path);
                return -1;
            }
            z->next_in = s->buf;
            z->avail_in = (uInt)r;
        }
        uInt room = n - got > (1 << 30) ? 1u << 30 : (uInt)(n - got);
        z->next_out = dst + got;
        z->avail_out = room;
        int ret = inflate(z, Z_NO_FLUSH);
        got += room - z->avail_out;
        if (ret == Z_STREAM_END) { /* CRC and length checked; a second member may follow */
            if (z->avail_in == 0) {
                ssize_t r = read_some(s, s->buf, sizeof s->buf);
                if (r < 0) return -1;
                z->next_in = s->buf;
                z->avail_in = (uInt)r;
            }
            if (z->avail_in == 0) s->done = true;
            else if (z->next_in[0] == 0x1f) inflateReset(z); /* concatenated gzip (gzip -c a b) */
            else {
                nb__error(NB_EFORMAT, "idx: %s: unexpected data after the end of the gzip stream", s->path);
                return -1;
            }
        } else if (ret == Z_MEM_ERROR) {
            nb__error(NB_ENOMEM, "idx: %s: out of memory in zlib", s->path);
            return -1;
        } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
            nb__error(NB_EFORMAT, "idx: %s: corrupt gzip data (%s)", s->path, z->msg ? z->msg : "zlib error");
            return -1;
        }
    }
    return got;
}

/* Read exactly n bytes (fewer only at the end of the data); -1 with the error set. */
static int64_t stream_read(stream *s, unsigned char *dst, int64_t n) {
    if (s->gz) return gz_read(s, dst, n);
    int64_t got = 0;
    if (s->avail) {
        got = n < (int64_t)s->avail ? n : (int64_t)s->avail;
        memcpy(dst, s->next, (size_t)got);
        s->next += got;
        s->avail -= (size_t)got;
    }
    while (got < n) {
        size_t want = n - got > (1 << 30) ? (size_t)1 << 30 : (size_t)(n - got);
        ssize_t r = read_some(s, dst + got, want);
        if (r < 0) return -1;
        if (r == 0) break;
        got += r;
    }
    return got;
}

/* ---- the reader ---------------------------------------------------------------------------- */

int nb__idx_open(const char *path, nb__idx *f) {
    memset(f, 0, sizeof *f);
    if (!path) return nb__error(NB_EINVAL, "idx: path is NULL");
    stream *s = stream_open(path);
    if (!s) return nb_last_status();
    unsigned char hdr[4 + 4 * IDX_MAX_RANK];
    int64_t got = stream_read(s, hdr, 4);
    if (got == 4 && hdr[3] >= 1 && hdr[3] <= IDX_MAX_RANK && hdr[0] == 0 && hdr[1] == 0) {
        int64_t more = stream_read(s, hdr + 4, 4 * (int64_t)hdr[3]);
        got = more < 0 ? more : got + more;
    }
    if (got < 0 || parse_header(hdr, (size_t)got, path, &f->ndim, f->shape, &f->bytes) < 0) {
        stream_close(s);
        return nb_last_status() ? nb_last_status() : NB_EFORMAT;
    }
    f->s = s;
    return NB_OK;
}

void nb__idx_close(nb__idx *f) {
    stream_close(f->s);
    f->s = NULL;
}

nb_tensor *nb__idx_read(nb__idx *f) {
    stream *s = f->s;
    const char *path = s->path;
    nb_tensor *t = NULL;
    int64_t bytes = f->bytes;
    /* grow as data arrives: a lying header cannot make us allocate what the file lacks */
    int64_t cap = bytes < ((int64_t)1 << 20) ? bytes : ((int64_t)1 << 20), have = 0;
    unsigned char *data = nb__malloc_aligned((size_t)cap);
    while (data) {
        int64_t r = stream_read(s, data + have, cap - have);
        if (r < 0) break;
        have += r;
        if (have < cap) {
            size_mismatch(path, bytes, have);
            break;
        }
        if (have == bytes) {
            unsigned char extra;
            int64_t r2 = stream_read(s, &extra, 1); /* the end: gzip checks CRC and length here */
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
