/* stream.c - a byte stream over a file or a buffer, raw or gzip-compressed (detected by the
 * gzip magic), for the IDX and CSV readers. A gzip stream is checked to its end (CRC-32 and
 * length; concatenated members are read on), so a cut or corrupted file is an error, never
 * silently short data. zlib's gzread cannot tell a complete gzip stream from one cut inside its
 * 8-byte trailer (it returns the data and no error), so the stream drives inflate() itself;
 * every allocation, zlib's included, goes through nabla's allocator hooks. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>
#include "data_internal.h"

struct nb__stream {
    const char *what;         /* path or name, for messages */
    const char *prefix;       /* "idx", "csv": the reader, for messages */
    int fd;                   /* -1: memory input */
    const unsigned char *mem; /* memory input and how much of it is left */
    size_t memlen;
    bool gz, done;            /* gzip: the stream ended (trailer checked) */
    z_stream z;
    size_t avail;             /* raw: bytes of buf not yet served */
    unsigned char *next;      /* raw: where they start */
    unsigned char buf[1 << 16];
};

/* Up to n bytes of raw input into dst: read(2), retrying on EINTR, or the next part of the
 * buffer; -1 with the error set on failure. */
static ssize_t read_some(nb__stream *s, unsigned char *dst, size_t n) {
    if (s->fd < 0) {
        size_t k = n < s->memlen ? n : s->memlen;
        memcpy(dst, s->mem, k);
        s->mem += k;
        s->memlen -= k;
        return (ssize_t)k;
    }
    ssize_t r;
    do r = read(s->fd, dst, n);
    while (r < 0 && errno == EINTR);
    if (r < 0) nb__error(NB_EIO, "%s: %s: %s", s->prefix, s->what, strerror(errno));
    return r;
}

static nb__stream *stream_start(nb__stream *s) {
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
            s->gz = false;
            nb__error(NB_ENOMEM, "%s: %s: cannot start zlib", s->prefix, s->what);
            goto fail;
        }
    }
    return s;
fail:
    nb__stream_close(s);
    return NULL;
}

nb__stream *nb__stream_open(const char *path, const char *prefix) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nb__null(NB_EIO, "%s: cannot open %s: %s", prefix, path, strerror(errno));
    nb__stream *s = nb__calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return NULL;
    }
    s->what = path;
    s->prefix = prefix;
    s->fd = fd;
    return stream_start(s);
}

nb__stream *nb__stream_mem(const void *buf, size_t len, const char *what, const char *prefix) {
    nb__stream *s = nb__calloc(1, sizeof *s);
    if (!s) return NULL;
    s->what = what;
    s->prefix = prefix;
    s->fd = -1;
    s->mem = buf;
    s->memlen = len;
    return stream_start(s);
}

void nb__stream_close(nb__stream *s) {
    if (!s) return;
    if (s->gz) inflateEnd(&s->z);
    if (s->fd >= 0) close(s->fd);
    nb__free(s);
}

/* Inflate into dst[0..n); returns the bytes produced (fewer only at the end of the stream),
 * or -1 with the error set. */
static int64_t gz_read(nb__stream *s, unsigned char *dst, int64_t n) {
    z_stream *z = &s->z;
    int64_t got = 0;
    while (got < n && !s->done) {
        if (z->avail_in == 0) {
            ssize_t r = read_some(s, s->buf, sizeof s->buf);
            if (r < 0) return -1;
            if (r == 0) {
                nb__error(NB_EFORMAT, "%s: %s: unexpected end of file (truncated gzip file)", s->prefix, s->what);
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
                nb__error(NB_EFORMAT, "%s: %s: unexpected data after the end of the gzip stream", s->prefix, s->what);
                return -1;
            }
        } else if (ret == Z_MEM_ERROR) {
            nb__error(NB_ENOMEM, "%s: %s: out of memory in zlib", s->prefix, s->what);
            return -1;
        } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
            nb__error(NB_EFORMAT, "%s: %s: corrupt gzip data (%s)", s->prefix, s->what, z->msg ? z->msg : "zlib error");
            return -1;
        }
    }
    return got;
}

int64_t nb__stream_read(nb__stream *s, unsigned char *dst, int64_t n) {
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
