/* csv.c - CSV files as a dataset, parsed by libcsv in one pass.
 *
 * The text (raw or gzip, through stream.c) is read in 64 KiB pieces and handed to libcsv one
 * physical line at a time, so every field and row is reported with the line it is on, and the
 * whole text is never held. Each row's numbers go to a row buffer first and are appended to the
 * growing arrays only when the row is complete and checked, so a ragged row is refused with its
 * line. Fields are bounded (CSV_FIELD_MAX: libcsv's buffer grows through nabla's allocator and
 * no further) and so are the arrays (max_bytes): a gzip bomb is refused, not inflated.
 * Numbers: the usual decimal forms, converted to the nearest double (Clinger's exact fast path,
 * else strtod in the "C" decimal point) and then to float32, as numpy.loadtxt(...).astype(float32). */
#include <csv.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include "data_internal.h"

enum { CSV_FIELD_MAX = 1 << 20, MAX_CLASS = 1 << 24, NUM_MAX = 512 };

typedef struct reader {
    const char *what;
    nb_read_opts o;
    bool targets_only; /* a y file: every column is a target */
    bool ws;           /* fields separated by runs of spaces and tabs */
    struct csv_parser p;
    int64_t line;     /* the physical line being fed (1-based): where fields and rows end */
    int64_t row_start; /* the line the open row (or quoted field) began on */
    int64_t col;      /* fields of the current row so far */
    int64_t ncols;    /* fields of the first row (0: none yet) */
    int64_t target;   /* the target's column (-1: none) */
    int64_t ny;       /* floats of target per row */
    double *row;      /* the current row's values */
    int64_t rowcap;
    float *x;         /* rows so far: features, and targets */
    void *y;
    int64_t rows, cap;
    int64_t top;      /* largest class id seen */
    size_t limit;
    int status;       /* the first error (callbacks cannot return one) */
} reader;

/* libcsv's buffer grows through nabla's allocator, never past CSV_FIELD_MAX. */
static void *field_realloc(void *p, size_t n) { return n > CSV_FIELD_MAX ? NULL : nb__realloc(p, n); }

#define FAIL(r, st, ...) ((r)->status = nb__error((st), __VA_ARGS__))

/* ---- numbers --------------------------------------------------------------------------------- */
static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* s[0..n) as a double: [+-]digits[.digits][(e|E)[+-]digits], or inf/nan words (refused later
 * by the caller). Returns 0, or -1 if it is not a number. */
static int parse_num(const char *s, size_t n, double *out) {
    if (n <= 9) { /* the common case first: a small non-negative integer (pixels, labels) */
        uint32_t v = 0;
        size_t k = 0;
        for (; k < n && (unsigned)(s[k] - '0') <= 9; k++) v = v * 10 + (uint32_t)(s[k] - '0');
        if (k == n && n) {
            *out = v;
            return 0;
        }
    }
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    uint64_t m = 0; /* the first 15 significant digits */
    int frac = 0, sig = 0;
    bool any = false, dot = false;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            any = true;
            if (m || c != '0') sig++;
            if (sig <= 15) {
                m = m * 10 + (uint64_t)(c - '0');
                frac += dot;
            }
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
    }
    int64_t e = 0;
    if (any && i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        bool eneg = false;
        if (j < n && (s[j] == '+' || s[j] == '-')) eneg = s[j++] == '-';
        if (j == n || s[j] < '0' || s[j] > '9') return -1;
        for (; j < n && s[j] >= '0' && s[j] <= '9'; j++) e = e < 100000 ? e * 10 + (s[j] - '0') : e;
        if (eneg) e = -e;
        i = j;
    }
    if (i == n && any && sig <= 15) { /* exact: m < 10^15 < 2^53, and one correctly rounded op */
        int64_t p = e - frac;
        if (m == 0) {
            *out = neg ? -0.0 : 0.0;
            return 0;
        }
        if (p >= -22 && p <= 22) {
            double v = p < 0 ? (double)m / POW10[-p] : (double)m * POW10[p];
            *out = neg ? -v : v;
            return 0;
        }
    }
    /* everything else (long mantissas, large exponents, inf/nan words): strtod, with the "C"
     * decimal point whatever the process's locale */
    if (n == 0 || n >= NUM_MAX) return -1;
    char buf[NUM_MAX];
    memcpy(buf, s, n);
    buf[n] = '\0';
    for (size_t k = 0; k < n; k++)
        if (buf[k] == 'x' || buf[k] == 'X' || buf[k] == ' ' || buf[k] == '\t') return -1; /* no hex floats */
    const char *point = localeconv()->decimal_point;
    if (point && point[0] && point[0] != '.' && !point[1])
        for (size_t k = 0; k < n; k++)
            if (buf[k] == '.') buf[k] = point[0];
    char *end;
    *out = strtod(buf, &end);
    return end == buf + n ? 0 : -1;
}

/* ---- libcsv's callbacks -------------------------------------------------------------------------- */
/* A field for a message: at most 40 bytes, anything but printable ASCII shown as '?' (a file
 * is data: its bytes never reach a terminal as control sequences). */
static const char *shown(const char *s, size_t n, char *buf) {
    size_t k = n > 40 ? 40 : n;
    for (size_t i = 0; i < k; i++) buf[i] = s[i] >= ' ' && s[i] <= '~' ? s[i] : '?';
    strcpy(buf + k, n > 40 ? "..." : "");
    return buf;
}

static const char *col_hint(const reader *r) {
    return r->rows == 0 && r->ncols == 0 ? " (a header line? skip it with skip_rows)" : "";
}

static void on_field(void *field, size_t len, void *data) {
    reader *r = data;
    if (r->status) return;
    if (!field && r->ws) return; /* between spaces: not a field */
    int64_t c = r->col++;
    if (r->ncols && c >= r->ncols) {
        FAIL(r, NB_EFORMAT, "csv: %s: line %lld has more than the %lld fields of the first row (ragged row)", r->what,
             (long long)r->line, (long long)r->ncols);
        return;
    }
    if (c >= r->rowcap) { /* the first row decides the width: grow its buffer */
        int64_t cap = r->rowcap ? 2 * r->rowcap : 64;
        double *nr = (size_t)cap * sizeof(double) <= r->limit ? nb__realloc(r->row, sizeof(double) * (size_t)cap) : NULL;
        if (!nr) {
            FAIL(r, NB_ENOMEM, "csv: %s: line %lld: too many fields", r->what, (long long)r->line);
            return;
        }
        r->row = nr;
        r->rowcap = cap;
    }
    const char *s = field;
    if (!field || len == 0) {
        FAIL(r, NB_EFORMAT, "csv: %s: line %lld, column %lld: empty field (a missing value)", r->what,
             (long long)r->line, (long long)c + 1);
        return;
    }
    double v;
    char text[48];
    if (parse_num(s, len, &v)) {
        FAIL(r, NB_EFORMAT, "csv: %s: line %lld, column %lld: '%s' is not a number%s", r->what, (long long)r->line,
             (long long)c + 1, shown(s, len, text), col_hint(r));
        return;
    }
    if (!isfinite(v) || fabs(v) >= 0x1.ffffffp+127) { /* NaN, inf, or rounds to inf in float32 */
        FAIL(r, NB_EFORMAT, "csv: %s: line %lld, column %lld: %s is %s", r->what, (long long)r->line,
             (long long)c + 1, shown(s, len, text),
             isnan(v) ? "NaN (a missing value?)" : isinf(v) ? "infinite" : "too large for float32");
        return;
    }
    r->row[c] = v;
}

/* Resolve the target column from the first row's width. */
static void first_row(reader *r) {
    r->ncols = r->col;
    r->target = -1;
    r->ny = r->o.task == NB_REGRESS ? 1 : r->o.task == NB_CLASSIFY ? 1 : 0;
    if (r->targets_only) {
        r->ny = r->ncols;
        if (r->o.task == NB_CLASSIFY && r->ncols != 1)
            FAIL(r, NB_EFORMAT, "csv: %s: line %lld has %lld columns; class labels take one", r->what,
                 (long long)r->line, (long long)r->ncols);
        return;
    }
    if (r->o.task == NB_UNLABELED) return;
    int64_t t = r->o.target_col < 0 ? r->o.target_col + r->ncols : r->o.target_col;
    if (t < 0 || t >= r->ncols) {
        FAIL(r, NB_EINVAL, "csv: %s: target column %lld does not exist: line %lld has %lld columns", r->what,
             (long long)r->o.target_col, (long long)r->line, (long long)r->ncols);
        return;
    }
    if (r->ncols < 2) FAIL(r, NB_EFORMAT, "csv: %s: line %lld has only the target column, no features", r->what,
                            (long long)r->line);
    r->target = t;
}

static int64_t nfeat(const reader *r) { return r->targets_only ? 0 : r->ncols - (r->target >= 0); }

/* Append the checked row to the arrays (they grow geometrically, within the limit). */
static void append(reader *r) {
    const int64_t F = nfeat(r);
    size_t ysz = r->o.task == NB_CLASSIFY ? sizeof(int32_t) : sizeof(float) * (size_t)r->ny;
    size_t per = sizeof(float) * (size_t)F + ysz;
    if ((size_t)(r->rows + 1) > r->limit / (per ? per : 1)) {
        FAIL(r, NB_EFORMAT, "csv: %s: line %lld: the data exceeds the limit of %zu bytes (max_bytes)", r->what,
             (long long)r->line, r->limit);
        return;
    }
    if (r->rows == r->cap) {
        int64_t cap = r->cap ? 2 * r->cap : 1024;
        if ((size_t)cap > r->limit / (per ? per : 1)) cap = (int64_t)(r->limit / (per ? per : 1));
        float *nx = F ? nb__realloc_aligned(r->x, sizeof(float) * (size_t)(r->rows * F), sizeof(float) * (size_t)(cap * F))
                      : r->x;
        if (F && !nx) {
            r->status = NB_ENOMEM;
            return;
        }
        r->x = nx;
        void *ny = ysz ? nb__realloc(r->y, ysz * (size_t)cap) : r->y;
        if (ysz && !ny) {
            r->status = NB_ENOMEM;
            return;
        }
        r->y = ny;
        r->cap = cap;
    }
    float *xr = r->x + r->rows * F;
    int64_t f = 0, k = 0;
    for (int64_t c = 0; c < r->ncols; c++) {
        double v = r->row[c];
        bool is_target = r->targets_only || c == r->target;
        if (!is_target) {
            xr[f++] = (float)v;
        } else if (r->o.task == NB_CLASSIFY) {
            if (v < 0 || v != floor(v) || v >= MAX_CLASS || (r->o.classes && v >= (double)r->o.classes)) {
                if (r->o.classes && v >= 0 && v == floor(v))
                    FAIL(r, NB_EFORMAT, "csv: %s: line %lld, column %lld: label %.17g is out of range: there are "
                         "%lld classes (0..%lld)", r->what, (long long)r->line, (long long)c + 1, v,
                         (long long)r->o.classes, (long long)r->o.classes - 1);
                else
                    FAIL(r, NB_EFORMAT, "csv: %s: line %lld, column %lld: label %.17g is not a class index (an integer "
                         "0..%d)", r->what, (long long)r->line, (long long)c + 1, v, MAX_CLASS - 1);
                return;
            }
            ((int32_t *)r->y)[r->rows] = (int32_t)v;
            if ((int64_t)v > r->top) r->top = (int64_t)v;
        } else {
            ((float *)r->y)[r->rows * r->ny + k++] = (float)v;
        }
    }
    r->rows++;
}

static void on_row(int c, void *data) {
    (void)c;
    reader *r = data;
    if (r->status) return;
    if (r->col == 0) return; /* a line of spaces only */
    if (!r->ncols) first_row(r);
    else if (r->col != r->ncols) {
        if (r->target >= r->col)
            FAIL(r, NB_EFORMAT, "csv: %s: line %lld has %lld fields, expected %lld: the target (column %lld) is "
                 "missing (ragged row)", r->what, (long long)r->line, (long long)r->col, (long long)r->ncols,
                 (long long)r->target + 1);
        else
            FAIL(r, NB_EFORMAT, "csv: %s: line %lld has %lld fields, expected %lld as in the first row (ragged row)",
                 r->what, (long long)r->line, (long long)r->col, (long long)r->ncols);
    }
    if (!r->status) append(r);
    r->col = 0;
}

/* ---- the reader -------------------------------------------------------------------------------- */
/* Feed one piece of a line to libcsv (the row starts on this line if none is open). */
static void feed(reader *r, unsigned char *s, size_t n) {
    if (r->ws)
        for (size_t i = 0; i < n; i++)
            if (s[i] == '\t') s[i] = ' ';
    if (r->col == 0 && r->p.entry_pos == 0 && !r->p.quoted) r->row_start = r->line; /* no row open */
    if (csv_parse(&r->p, s, n, on_field, on_row, r) != n && !r->status) {
        int e = csv_error(&r->p);
        if (e == CSV_EPARSE)
            FAIL(r, NB_EFORMAT, "csv: %s: line %lld: malformed quotes (a quote inside an unquoted field, or text "
                 "after a closing quote)", r->what, (long long)r->line);
        else if (csv_get_buffer_size(&r->p) >= CSV_FIELD_MAX / 2)
            FAIL(r, NB_EFORMAT, "csv: %s: line %lld: a field longer than %d bytes (not a table of numbers?)", r->what,
                 (long long)r->line, CSV_FIELD_MAX);
        else
            FAIL(r, NB_ENOMEM, "csv: %s: line %lld: out of memory in libcsv", r->what, (long long)r->line);
    }
}

/* Read the whole stream into r; the stream is closed. */
static int read_all(reader *r, nb__stream *s) {
    unsigned char *buf = nb__malloc(1 << 16);
    if (!buf) {
        nb__stream_close(s);
        return NB_ENOMEM;
    }
    csv_init(&r->p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL);
    csv_set_realloc_func(&r->p, field_realloc);
    csv_set_free_func(&r->p, nb__free);
    csv_set_delim(&r->p, r->ws ? ' ' : (unsigned char)r->o.delimiter);
    r->line = 1;
    int64_t got = 0;
    while (!r->status && (got = nb__stream_read(s, buf, 1 << 16)) > 0) {
        unsigned char *p = buf, *end = buf + got;
        while (p < end && !r->status) { /* line by line, so callbacks know the line */
            unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
            unsigned char *stop = nl ? nl + 1 : end;
            if (r->line > r->o.skip_rows) feed(r, p, (size_t)(stop - p));
            if (nl) r->line++;
            p = stop;
        }
    }
    if (got < 0 && !r->status) r->status = nb_last_status();
    if (!r->status && csv_fini(&r->p, on_field, on_row, r) && !r->status)
        FAIL(r, NB_EFORMAT, "csv: %s: line %lld: a quoted field is not closed at the end of the file", r->what,
             (long long)r->row_start);
    csv_free(&r->p);
    nb__free(buf);
    nb__stream_close(s);
    if (!r->status && r->rows == 0)
        FAIL(r, NB_EFORMAT, "csv: %s: no data rows (an empty file%s)", r->what,
             r->o.skip_rows ? ", or only the skipped lines" : "");
    return r->status;
}

static void reader_free(reader *r) {
    nb__free(r->row);
    nb__free_aligned(r->x);
    nb__free(r->y);
}

static int check_opts(const nb_read_opts *o, const char *what) {
    if (o->task != NB_CLASSIFY && o->task != NB_REGRESS && o->task != NB_UNLABELED)
        return nb__error(NB_EINVAL, "csv: %s: unknown task %d", what, (int)o->task);
    if (o->classes < 0 || o->classes > MAX_CLASS)
        return nb__error(NB_EINVAL, "csv: %s: classes must be in 0..%d, got %lld", what, MAX_CLASS, (long long)o->classes);
    if (o->skip_rows < 0) return nb__error(NB_EINVAL, "csv: %s: skip_rows is negative", what);
    unsigned char d = (unsigned char)o->delimiter;
    if (d == '\n' || d == '\r' || d == '"' || d == '\0' || d == '.' || d == '-' || d == '+' || (d >= '0' && d <= '9'))
        return nb__error(NB_EINVAL, "csv: %s: delimiter 0x%02x cannot separate numbers", what, d);
    return NB_OK;
}

/* The dataset of a reader's arrays (taken over); y from a second reader when there is one. */
static nb_dataset *finish(reader *r, reader *ry) {
    reader *t = ry ? ry : r;
    nb_task task = ry ? ry->o.task : r->o.task;
    int64_t k = task == NB_CLASSIFY ? (r->o.classes ? r->o.classes : t->top + 1) : t->ny;
    int64_t shape[2] = {r->rows, nfeat(r)};
    float *x = r->x;
    void *y = t->y;
    r->x = NULL;
    t->y = NULL;
    return nb__dataset_owning("csv", x, 2, shape, y, task, k);
}

static nb_dataset *load(nb__stream *sx, const char *xwhat, nb__stream *sy, const char *ywhat, const nb_read_opts *opts) {
    nb_read_opts o = opts ? *opts : nb_read_defaults();
    if (check_opts(&o, xwhat)) {
        nb__stream_close(sx);
        nb__stream_close(sy);
        return NULL;
    }
    reader r = {.what = xwhat, .o = o, .ws = o.delimiter == NB_CSV_WHITESPACE, .top = -1, .limit = nb__max_bytes(&o)};
    reader ry = r;
    ry.what = ywhat;
    nb_dataset *ds = NULL;
    if (sy && o.task == NB_UNLABELED) {
        nb__stream_close(sx);
        nb__stream_close(sy);
        return nb__null(NB_EINVAL, "csv: %s: a targets file needs a task (classification or regression)", ywhat);
    }
    if (sy) r.o.task = NB_UNLABELED; /* the features' file has no target column */
    ry.targets_only = true;
    int rc = read_all(&r, sx);
    if (sy) {
        if (!rc) {
            ry.limit = r.limit - (size_t)r.rows * (size_t)nfeat(&r) * sizeof(float);
            rc = read_all(&ry, sy);
        } else {
            nb__stream_close(sy);
        }
        if (!rc && ry.rows != r.rows)
            rc = nb__error(NB_EFORMAT, "csv: %s has %lld rows but %s has %lld", xwhat, (long long)r.rows, ywhat,
                           (long long)ry.rows);
    }
    if (!rc) ds = finish(&r, sy ? &ry : NULL);
    reader_free(&r);
    reader_free(&ry);
    return ds;
}

nb_read_opts nb_read_defaults(void) {
    return (nb_read_opts){.task = NB_CLASSIFY, .classes = 0, .target_col = -1, .delimiter = ',', .skip_rows = 0,
                          .max_bytes = 0};
}

nb_dataset *nb_dataset_csv(const char *path, const char *y_path, const nb_read_opts *opts) {
    if (!path) return nb__null(NB_EINVAL, "csv: path is NULL");
    nb__stream *sx = nb__stream_open(path, "csv");
    if (!sx) return NULL;
    nb__stream *sy = y_path ? nb__stream_open(y_path, "csv") : NULL;
    if (y_path && !sy) {
        nb__stream_close(sx);
        return NULL;
    }
    return load(sx, path, sy, y_path, opts);
}

nb_dataset *nb_csv_parse(const void *buf, size_t len, const char *what, const nb_read_opts *opts) {
    if (!buf) return nb__null(NB_EINVAL, "csv: buffer is NULL");
    if (!what) what = "buffer";
    nb__stream *s = nb__stream_mem(buf, len, what, "csv");
    return s ? load(s, what, NULL, NULL, opts) : NULL;
}
