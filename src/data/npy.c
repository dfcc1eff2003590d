/* npy.c - NumPy .npy files as a dataset (the format np.save writes).
 *
 *   "\x93NUMPY" major minor | header length (u16 LE in 1.0, u32 LE in 2.0/3.0) | header: a
 *   Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, ...), } padded
 *   with spaces and ended by '\n' | the data, C order
 *
 * The header is parsed by a small tokenizer for exactly that literal (keys in any order, no
 * other keys), and the size it promises is checked against the file's length and the memory
 * limit before anything is allocated. The data is converted to float32 as it is read, 64 KiB
 * at a time; NaN and infinity are refused, as are class labels that are not class indices. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include "data_internal.h"

enum { HEADER_MAX = 1 << 16, MAX_CLASS = 1 << 24 };

typedef enum { F4, F8, U1, I4, I8 } elem;
static const struct {
    const char *descr, *name;
    size_t size;
} ELEMS[] = {{"f4", "float32", 4}, {"f8", "float64", 8}, {"u1", "uint8", 1}, {"i4", "int32", 4}, {"i8", "int64", 8}};

/* One input: a file (fd) or a buffer, and what the header said. */
typedef struct npy {
    const char *what;
    int fd;
    const unsigned char *mem;
    size_t memlen, pos;
    uint64_t data_bytes; /* after the header, as the file or buffer holds */
    elem type;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    int64_t numel;
} npy;

static int64_t in_read(npy *f, unsigned char *dst, size_t n) {
    if (f->fd < 0) {
        size_t k = n < f->memlen - f->pos ? n : f->memlen - f->pos;
        memcpy(dst, f->mem + f->pos, k);
        f->pos += k;
        return (int64_t)k;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(f->fd, dst + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return nb__error(NB_EIO, "npy: %s: %s", f->what, strerror(errno));
        if (r == 0) break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

/* ---- the header's dict literal ------------------------------------------------------------------ */
typedef struct tok {
    const char *s, *end;
} tok;

static void skip_ws(tok *t) {
    while (t->s < t->end && (*t->s == ' ' || *t->s == '\t' || *t->s == '\n' || *t->s == '\r')) t->s++;
}

static bool eat(tok *t, char c) {
    skip_ws(t);
    if (t->s < t->end && *t->s == c) {
        t->s++;
        return true;
    }
    return false;
}

/* A quoted string ('...' or "...", printable ASCII, no escapes) into out (at most cap - 1
 * bytes): what it holds may reach a message, never a control sequence. */
static bool string(tok *t, char *out, size_t cap) {
    skip_ws(t);
    if (t->s >= t->end || (*t->s != '\'' && *t->s != '"')) return false;
    char q = *t->s++;
    size_t n = 0;
    while (t->s < t->end && *t->s != q) {
        if (n + 1 >= cap || *t->s == '\\' || *t->s < ' ' || *t->s > '~') return false;
        out[n++] = *t->s++;
    }
    out[n] = '\0';
    return eat(t, q);
}

static bool word(tok *t, const char *w) {
    skip_ws(t);
    size_t n = strlen(w);
    if ((size_t)(t->end - t->s) < n || memcmp(t->s, w, n)) return false;
    t->s += n;
    return true;
}

static int bad(const npy *f, const char *why) {
    return nb__error(NB_EFORMAT, "npy: %s: %s (not a .npy header as np.save writes it)", f->what, why);
}

/* {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } */
static int parse_dict(npy *f, tok *t) {
    bool have_descr = false, have_order = false, have_shape = false;
    if (!eat(t, '{')) return bad(f, "the header is not a dict");
    while (!eat(t, '}')) {
        char key[32];
        if (!string(t, key, sizeof key) || !eat(t, ':')) return bad(f, "a key of the header dict is malformed");
        if (!strcmp(key, "descr") && !have_descr) {
            char d[32];
            if (!string(t, d, sizeof d)) return bad(f, "'descr' is not a string (structured dtypes are not supported)");
            int k = -1;
            for (int i = 0; i < 5; i++)
                if ((d[0] == '<' || d[0] == '|' || d[0] == '=') && !strcmp(d + 1, ELEMS[i].descr)) k = i;
            if (k < 0) {
                if (d[0] == '>' && d[1])
                    return nb__error(NB_EFORMAT, "npy: %s: big-endian data ('%s') is not supported: save it "
                                     "little-endian (x.astype('<%s'))", f->what, d, d + 1);
                return nb__error(NB_EFORMAT, "npy: %s: dtype '%s' is not supported (float32, float64, uint8, "
                                 "int32 or int64)", f->what, d);
            }
            f->type = (elem)k;
            have_descr = true;
        } else if (!strcmp(key, "fortran_order") && !have_order) {
            if (word(t, "True"))
                return nb__error(NB_EFORMAT, "npy: %s: the array is in Fortran order; save it in C order "
                                 "(np.ascontiguousarray(x))", f->what);
            if (!word(t, "False")) return bad(f, "'fortran_order' is neither True nor False");
            have_order = true;
        } else if (!strcmp(key, "shape") && !have_shape) {
            if (!eat(t, '(')) return bad(f, "'shape' is not a tuple");
            f->ndim = 0;
            f->numel = 1;
            while (!eat(t, ')')) {
                skip_ws(t);
                int64_t v = 0;
                const char *start = t->s;
                while (t->s < t->end && *t->s >= '0' && *t->s <= '9') {
                    if (v > ((int64_t)1 << 50)) return nb__error(NB_EFORMAT, "npy: %s: a dimension is too large", f->what);
                    v = v * 10 + (*t->s++ - '0');
                }
                if (t->s == start) return bad(f, "'shape' holds something other than integers");
                if (f->ndim == NB_MAX_DIMS)
                    return nb__error(NB_EFORMAT, "npy: %s: more than %d dimensions", f->what, NB_MAX_DIMS);
                f->shape[f->ndim++] = v;
                if (v && f->numel > ((int64_t)1 << 50) / v)
                    return nb__error(NB_EFORMAT, "npy: %s: the shape holds too many elements", f->what);
                f->numel *= v;
                if (!eat(t, ',') && (skip_ws(t), t->s >= t->end || *t->s != ')'))
                    return bad(f, "'shape' is not a tuple of integers");
            }
            have_shape = true;
        } else {
            return nb__error(NB_EFORMAT, "npy: %s: unexpected or repeated key '%s' in the header", f->what, key);
        }
        if (!eat(t, ',') && (skip_ws(t), t->s >= t->end || *t->s != '}')) return bad(f, "the header dict is malformed");
    }
    if (!have_descr || !have_order || !have_shape)
        return bad(f, !have_descr ? "'descr' is missing" : !have_order ? "'fortran_order' is missing" : "'shape' is missing");
    skip_ws(t);
    if (t->s != t->end) return bad(f, "text after the header dict");
    return NB_OK;
}

/* Read and check the header; data_bytes must then equal numel * element size. */
static int open_header(npy *f, uint64_t total) {
    unsigned char pre[12];
    int64_t got = in_read(f, pre, 10);
    if (got < 0) return NB_EIO;
    if (got < 10 || memcmp(pre, "\x93NUMPY", 6))
        return nb__error(NB_EFORMAT, "npy: %s: not a .npy file (no \\x93NUMPY magic)", f->what);
    int major = pre[6];
    if (major < 1 || major > 3)
        return nb__error(NB_EFORMAT, "npy: %s: format version %d.%d is not supported (1.0, 2.0, 3.0)", f->what, major,
                         pre[7]);
    uint64_t hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8, pre_len = 10;
    if (major > 1) {
        if (in_read(f, pre + 10, 2) != 2) return bad(f, "the file ends inside the header length");
        hlen |= (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
        pre_len = 12;
    }
    if (hlen > HEADER_MAX)
        return nb__error(NB_EFORMAT, "npy: %s: a header of %llu bytes is longer than the %d this reader accepts",
                         f->what, (unsigned long long)hlen, HEADER_MAX);
    if (pre_len + hlen > total)
        return nb__error(NB_EFORMAT, "npy: %s: truncated: the header promises %llu bytes, the file has %llu", f->what,
                         (unsigned long long)hlen, (unsigned long long)(total - pre_len));
    char *h = nb__malloc(hlen + 1);
    if (!h) return NB_ENOMEM;
    int rc = in_read(f, (unsigned char *)h, hlen) == (int64_t)hlen ? NB_OK : bad(f, "the header is truncated");
    if (!rc && (hlen == 0 || h[hlen - 1] != '\n')) rc = bad(f, "the header does not end with a newline");
    for (uint64_t i = 0; !rc && i < hlen; i++)
        if (h[i] == '\0') rc = bad(f, "the header holds a NUL byte");
    if (!rc) rc = parse_dict(f, &(tok){h, h + hlen});
    nb__free(h);
    if (rc) return rc;
    f->data_bytes = total - pre_len - hlen;
    uint64_t want = (uint64_t)f->numel * ELEMS[f->type].size;
    if (f->data_bytes != want)
        return nb__error(NB_EFORMAT, "npy: %s: %s: the header promises %llu data bytes (%s %s), the file has %llu",
                         f->what, f->data_bytes < want ? "truncated" : "data continues past the array",
                         (unsigned long long)want, ELEMS[f->type].name, nb__shape_of(f->ndim, f->shape, 0),
                         (unsigned long long)f->data_bytes);
    if (f->ndim == 0) return nb__error(NB_EFORMAT, "npy: %s: a 0-d array holds no samples", f->what);
    if (f->shape[0] == 0) return nb__error(NB_EFORMAT, "npy: %s: the array is empty (shape %s)", f->what,
                                           nb__shape_of(f->ndim, f->shape, 0));
    return NB_OK;
}

/* A little-endian element of type t at p, as a double. */
static double elem_at(elem t, const unsigned char *p) {
    uint64_t u = 0;
    for (int b = (int)ELEMS[t].size - 1; b >= 0; b--) u = u << 8 | p[b];
    switch (t) {
    case F4: {
        float v;
        uint32_t w = (uint32_t)u;
        memcpy(&v, &w, 4);
        return v;
    }
    case F8: {
        double v;
        memcpy(&v, &u, 8);
        return v;
    }
    case U1: return (double)u;
    case I4: return (int32_t)(uint32_t)u;
    case I8: return (double)(int64_t)u;
    }
    return NAN;
}

/* "[12, 3]": where element i of f lies. */
static const char *where(const npy *f, int64_t i) {
    int64_t idx[NB_MAX_DIMS];
    for (int d = f->ndim - 1; d >= 0; d--) {
        idx[d] = f->shape[d] ? i % f->shape[d] : 0;
        i = f->shape[d] ? i / f->shape[d] : 0;
    }
    return nb__shape_of(f->ndim, idx, 3);
}

/* Where each element goes: features to x, the target (a column or the whole y file) to y. */
typedef struct sink {
    float *x;
    void *y;
    int64_t cols;       /* elements per sample in the file */
    int64_t target;     /* column of the target (-1: none; ALL: every element is a target) */
    nb_task task;
    int64_t classes, top;
} sink;
#define ALL (-2)

static int put(const npy *f, sink *s, int64_t i, double v) {
    if (!isfinite(v) || fabs(v) >= 0x1.ffffffp+127)
        return nb__error(NB_EFORMAT, "npy: %s: element %s is %s", f->what, where(f, i),
                         isnan(v) ? "NaN (a missing value?)" : isinf(v) ? "infinite" : "too large for float32");
    int64_t row = i / s->cols, col = i % s->cols;
    bool is_target = s->target == ALL || col == s->target;
    if (!is_target) {
        s->x[row * (s->cols - (s->target >= 0)) + col - (s->target >= 0 && col > s->target)] = (float)v;
        return NB_OK;
    }
    if (s->task == NB_CLASSIFY) {
        if (v < 0 || v != floor(v) || v >= MAX_CLASS || (s->classes && v >= (double)s->classes))
            return nb__error(NB_EFORMAT, "npy: %s: element %s: label %.17g is %s", f->what, where(f, i), v,
                             s->classes && v >= 0 && v == floor(v) ? "out of range for the class count" : "not a class index");
        ((int32_t *)s->y)[row] = (int32_t)v;
        if ((int64_t)v > s->top) s->top = (int64_t)v;
    } else {
        int64_t k = s->target == ALL ? s->cols : 1;
        ((float *)s->y)[row * k + (s->target == ALL ? col : 0)] = (float)v;
    }
    return NB_OK;
}

/* Read the data of f into the sink, 64 KiB at a time: features only (the common case, e.g.
 * images) straight into x, anything with targets element by element. */
static int read_data(npy *f, sink *s) {
    enum { BUF = 1 << 16 };
    unsigned char *buf = nb__malloc(BUF);
    if (!buf) return NB_ENOMEM;
    size_t es = ELEMS[f->type].size;
    int64_t i = 0;
    int rc = NB_OK;
    while (!rc && i < f->numel) {
        size_t want = (size_t)(f->numel - i) * es < BUF ? (size_t)(f->numel - i) * es : BUF / es * es;
        int64_t got = in_read(f, buf, want), n = (int64_t)(want / es);
        if (got < 0) rc = NB_EIO;
        else if ((size_t)got != want) rc = bad(f, "the file ended early (it changed while being read?)");
        else if (s->target == -1 && f->type == U1)
            for (int64_t k = 0; k < n; k++) s->x[i + k] = buf[k];
        else if (s->target == -1) {
            for (int64_t k = 0; k < n; k++) {
                double v = elem_at(f->type, buf + (size_t)k * es);
                if (!isfinite(v) || fabs(v) >= 0x1.ffffffp+127) { /* put() says which */
                    rc = put(f, s, i + k, v);
                    break;
                }
                s->x[i + k] = (float)v;
            }
        } else {
            for (int64_t k = 0; !rc && k < n; k++) rc = put(f, s, i + k, elem_at(f->type, buf + (size_t)k * es));
        }
        i += n;
    }
    nb__free(buf);
    return rc;
}

static int open_file(npy *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->what = path;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) return nb__error(NB_EIO, "npy: cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(f->fd, &st)) return nb__error(NB_EIO, "npy: %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return nb__error(NB_EIO, "npy: %s: %s", path, S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
    return open_header(f, (uint64_t)st.st_size);
}

static int open_mem(npy *f, const void *buf, size_t len, const char *what) {
    memset(f, 0, sizeof *f);
    f->what = what;
    f->fd = -1;
    f->mem = buf;
    f->memlen = len;
    return open_header(f, len);
}

static void close_npy(npy *f) {
    if (f->fd >= 0) close(f->fd);
}

/* x (and y, when fy) opened with their headers checked: the dataset. */
static nb_dataset *load(npy *fx, npy *fy, const nb_read_opts *opts) {
    nb_read_opts o = opts ? *opts : nb_read_defaults();
    if (o.task != NB_CLASSIFY && o.task != NB_REGRESS && o.task != NB_UNLABELED)
        return nb__null(NB_EINVAL, "npy: unknown task %d", (int)o.task);
    if (o.classes < 0 || o.classes > MAX_CLASS)
        return nb__null(NB_EINVAL, "npy: classes must be in 0..%d, got %lld", MAX_CLASS, (long long)o.classes);
    if (fy && o.task == NB_UNLABELED)
        return nb__null(NB_EINVAL, "npy: %s: a targets file needs a task (classification or regression)", fy->what);
    int64_t N = fx->shape[0], cols = fx->numel / N, target = -1, k = 0;
    int64_t shape[NB_MAX_DIMS];
    int ndim = fx->ndim;
    memcpy(shape, fx->shape, sizeof shape);
    if (ndim == 1) shape[ndim++] = 1; /* [N]: one feature per sample */
    if (fy) {
        if (fy->shape[0] != N)
            return nb__null(NB_EFORMAT, "npy: %s has %lld samples but %s has %lld", fx->what, (long long)N, fy->what,
                            (long long)fy->shape[0]);
        int64_t per = fy->numel / N;
        if (fy->ndim > 2 || (o.task == NB_CLASSIFY && per != 1))
            return nb__null(NB_EFORMAT, "npy: %s: targets of shape %s: expected [%lld]%s", fy->what,
                            nb__shape_of(fy->ndim, fy->shape, 0), (long long)N,
                            o.task == NB_CLASSIFY ? " or [N, 1] (one class id per sample)" : " or [N, k]");
        k = per;
    } else if (o.task != NB_UNLABELED) {
        if (fx->ndim != 2)
            return nb__null(NB_EFORMAT, "npy: %s: an array of shape %s holds no target column; give the targets "
                            "in a second file, or a 2-D array [N, features + 1]", fx->what, nb__shape_of(fx->ndim, fx->shape, 0));
        target = o.target_col < 0 ? o.target_col + cols : o.target_col;
        if (target < 0 || target >= cols)
            return nb__null(NB_EINVAL, "npy: %s: target column %lld does not exist: the array has %lld columns",
                            fx->what, (long long)o.target_col, (long long)cols);
        if (cols < 2) return nb__null(NB_EFORMAT, "npy: %s: the array has only the target column, no features", fx->what);
        shape[1] = cols - 1;
        k = 1;
    }
    int64_t F = cols - (target >= 0);
    size_t ybytes = o.task == NB_CLASSIFY ? sizeof(int32_t) * (size_t)N : sizeof(float) * (size_t)(N * k);
    if (o.task == NB_UNLABELED) ybytes = 0;
    size_t limit = nb__max_bytes(&o);
    if (ybytes > limit || (uint64_t)N * (uint64_t)F > (limit - ybytes) / sizeof(float))
        return nb__null(NB_EFORMAT, "npy: %s: the data (%lld x %lld values) exceeds the limit of %zu bytes (max_bytes)",
                        fx->what, (long long)N, (long long)F, limit);
    float *x = nb__malloc_aligned(sizeof(float) * (size_t)(N * F));
    void *y = ybytes ? nb__malloc(ybytes) : NULL;
    if (!x || (ybytes && !y)) {
        nb__free_aligned(x);
        nb__free(y);
        return NULL;
    }
    sink s = {x, y, cols, target, o.task, o.classes, -1};
    int rc = read_data(fx, &s);
    if (!rc && fy) {
        sink sy = {x, y, k, ALL, o.task, o.classes, -1};
        rc = read_data(fy, &sy);
        s.top = sy.top;
    }
    if (rc) {
        nb__free_aligned(x);
        nb__free(y);
        return NULL;
    }
    shape[0] = N;
    if (o.task == NB_CLASSIFY) k = o.classes ? o.classes : s.top + 1;
    return nb__dataset_owning("npy", x, ndim, shape, y, o.task, k);
}

nb_dataset *nb_dataset_npy(const char *x_path, const char *y_path, const nb_read_opts *opts) {
    if (!x_path) return nb__null(NB_EINVAL, "npy: x_path is NULL");
    npy fx, fy;
    nb_dataset *ds = NULL;
    int rx = open_file(&fx, x_path), ry = rx || !y_path ? NB_OK : open_file(&fy, y_path);
    if (!rx && !ry) ds = load(&fx, y_path ? &fy : NULL, opts);
    close_npy(&fx);
    if (y_path && !rx) close_npy(&fy);
    return ds;
}

nb_dataset *nb_npy_parse(const void *x, size_t xlen, const void *y, size_t ylen, const char *what,
                         const nb_read_opts *opts) {
    if (!x) return nb__null(NB_EINVAL, "npy: buffer is NULL");
    if (!what) what = "buffer";
    npy fx, fy;
    if (open_mem(&fx, x, xlen, what) || (y && open_mem(&fy, y, ylen, what))) return NULL;
    return load(&fx, y ? &fy : NULL, opts);
}
