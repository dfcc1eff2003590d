/* test_readers.c - the CSV and .npy readers: real files as people publish them (scikit-learn's
 * CSVs in datasets/sklearn/), every option, values exactly as numpy.loadtxt + astype(float32)
 * give them, and every kind of bad input: a clear error naming the file, line and column (or
 * element), nothing loaded, memory bounded (peak measured through nabla's allocator hooks). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "common.h"
#include "peak_alloc.h"

/* ---- memory: nabla's allocations, live and peak (peak_alloc.h; hooks set in main) ---------- */
static bool tracking;

/* ---- files ---------------------------------------------------------------------------------- */
static const char *tmp(const char *name) {
    static char path[4][4096];
    static int k;
    char *p = path[k++ & 3];
    snprintf(p, sizeof path[0], "%s/%s", temp_dir(), name);
    return p;
}

static void write_file(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static const char *text_file(const char *name, const char *text) {
    const char *p = tmp(name);
    write_file(p, text, strlen(text));
    return p;
}

static nb_read_opts opts(nb_task task, int64_t skip, char delim) {
    nb_read_opts o = nb_read_defaults();
    o.task = task;
    o.skip_rows = skip;
    o.delimiter = delim;
    return o;
}

/* Sample i of ds: features into x, the target into *y (class id or first target). */
static void sample(const nb_dataset *ds, int64_t i, float *x, double *y) {
    union {
        float f[16];
        int32_t i[16];
    } yt;
    ck_assert_int_eq(nb_dataset_get(ds, &i, 1, x, yt.f), NB_OK);
    if (y) *y = ds->task == NB_CLASSIFY ? (double)yt.i[0] : (double)yt.f[0];
}

/* ---- CSV: real files --------------------------------------------------------------------------- */

START_TEST(test_csv_sklearn_files) {
    nb_read_opts o = opts(NB_CLASSIFY, 1, ',');
    nb_dataset *iris = nb_dataset_csv(fixture("sklearn/iris.csv"), NULL, &o);
    ck_assert_msg(iris != NULL, "%s", nb_last_error());
    ck_assert_int_eq(iris->len, 150);
    ck_assert_int_eq(iris->features, 4);
    ck_assert_int_eq(iris->classes, 3);
    ck_assert_str_eq(iris->ops->type, "csv");
    float x[64];
    double y;
    sample(iris, 0, x, &y); /* 5.1,3.5,1.4,0.2,0 */
    ck_assert_float_eq(x[0], 5.1f);
    ck_assert_float_eq(x[1], 3.5f);
    ck_assert_float_eq(x[3], 0.2f);
    ck_assert_double_eq(y, 0);
    int per[3] = {0};
    for (int64_t i = 0; i < 150; i++) {
        sample(iris, i, x, &y);
        per[(int)y]++;
    }
    ck_assert(per[0] == 50 && per[1] == 50 && per[2] == 50);
    nb_dataset_free(iris);
    nb_dataset *wine = nb_dataset_csv(fixture("sklearn/wine_data.csv"), NULL, &o);
    ck_assert_msg(wine && wine->len == 178 && wine->features == 13 && wine->classes == 3, "%s", nb_last_error());
    sample(wine, 177, x, &y); /* 14.13,4.1,2.74,24.5,96,2.05,.76,.56,1.35,9.2,.61,1.6,560,2 */
    ck_assert_float_eq(x[0], 14.13f);
    ck_assert_float_eq(x[6], 0.76f);
    ck_assert_float_eq(x[12], 560.0f);
    ck_assert_double_eq(y, 2);
    nb_dataset_free(wine);
    nb_dataset *bc = nb_dataset_csv(fixture("sklearn/breast_cancer.csv"), NULL, &o);
    ck_assert_msg(bc && bc->len == 569 && bc->features == 30 && bc->classes == 2, "%s", nb_last_error());
    nb_dataset_free(bc);
    o.skip_rows = 0; /* gzip'd, no header */
    nb_dataset *digits = nb_dataset_csv(fixture("sklearn/digits.csv.gz"), NULL, &o);
    ck_assert_msg(digits && digits->len == 1797 && digits->features == 64 && digits->classes == 10, "%s",
                  nb_last_error());
    nb_dataset_free(digits);
    /* features and targets in two gzip'd files, separated by spaces: regression */
    o = opts(NB_REGRESS, 0, NB_CSV_WHITESPACE);
    char dx[4096]; /* (fixture() returns a static buffer) */
    snprintf(dx, sizeof dx, "%s", fixture("sklearn/diabetes_data_raw.csv.gz"));
    nb_dataset *dia = nb_dataset_csv(dx, fixture("sklearn/diabetes_target.csv.gz"), &o);
    ck_assert_msg(dia != NULL, "%s", nb_last_error());
    ck_assert_int_eq(dia->len, 442);
    ck_assert_int_eq(dia->features, 10);
    ck_assert_int_eq(dia->task, NB_REGRESS);
    ck_assert_int_eq(dia->targets, 1);
    sample(dia, 0, x, &y); /* 59 2 32.1 101.0 157 93.2 38.0 4.0 4.8598 87 -> 151 */
    ck_assert_float_eq(x[2], 32.1f);
    ck_assert_float_eq(x[8], 4.8598f);
    ck_assert_double_eq(y, 151);
    nb_dataset_free(dia);
    /* the same files where python3-sklearn installs them, when it does */
    const char *sys = "/usr/lib/python3/dist-packages/sklearn/datasets/data/iris.csv";
    FILE *f = fopen(sys, "rb");
    if (f) {
        fclose(f);
        o = opts(NB_CLASSIFY, 1, ',');
        nb_dataset *d = nb_dataset_csv(sys, NULL, &o);
        ck_assert_msg(d && d->len == 150, "%s", nb_last_error());
        nb_dataset_free(d);
    }
}
END_TEST

/* The tiny IDX fixtures as a CSV the way Kaggle publishes Fashion-MNIST: a header line, the
 * label first, 784 pixel columns. Loaded, every value is the IDX byte (not scaled). */
START_TEST(test_csv_from_idx) {
    nb_mnist m;
    ck_assert_int_eq(nb_mnist_load(fixture("tiny"), "train", &m), NB_OK);
    const char *path = tmp("tiny.csv.gz");
    gzFile g = gzopen(path, "wb");
    gzprintf(g, "label");
    for (int j = 0; j < 784; j++) gzprintf(g, ",pixel%d", j + 1);
    gzprintf(g, "\r\n");
    for (int i = 0; i < 100; i++) {
        gzprintf(g, "%d", nb_u8(m.labels)[i]);
        for (int j = 0; j < 784; j++) gzprintf(g, ",%d", nb_u8(m.images)[i * 784 + j]);
        gzprintf(g, "\r\n");
    }
    gzclose(g);
    nb_read_opts o = opts(NB_CLASSIFY, 1, ',');
    o.target_col = 0;
    nb_dataset *ds = nb_dataset_csv(path, NULL, &o);
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    ck_assert_int_eq(ds->len, 100);
    ck_assert_int_eq(ds->features, 784);
    ck_assert_int_eq(ds->classes, 10);
    static float x[784];
    for (int64_t i = 0; i < 100; i++) {
        double y;
        sample(ds, i, x, &y);
        ck_assert_double_eq(y, nb_u8(m.labels)[i]);
        for (int j = 0; j < 784; j++) ck_assert_float_eq(x[j], nb_u8(m.images)[i * 784 + j]);
    }
    nb_dataset_free(ds);
    nb_mnist_free(&m);
}
END_TEST

/* Numbers in every usual form come out as numpy gives them: float(s) (the nearest double)
 * rounded to float32. */
START_TEST(test_csv_values_exact) {
    static const char *fixed[] = {"0", "-0", "+7", "1.", ".5", "-.25", "0.1", "0.30000000000000004", "1e-30",
                                  "1E+30", "-2.5e-3", "123456789", "1234567890123", "12345678901234567890",
                                  "3.4028234663852886e38", "-3.4028235e38", "1.17549435e-38", "1e-45", "7e-46",
                                  "0.000000000000000000000000000000000000000000000123", "9007199254740993",
                                  "2.00000011920928955078125", "4.9406564584124654e-324", "1e22", "1e23"};
    enum { NF = sizeof fixed / sizeof *fixed, NR = 2000 };
    static char text[NR * 40 + 4096], vals[NR][40];
    size_t at = 0;
    srand(7);
    for (int i = 0; i < NR; i++) {
        if (i < NF) snprintf(vals[i], sizeof vals[i], "%s", fixed[i]);
        else { /* random decimals: mantissas of 1..20 digits, exponents -30..15 (within float32) */
            int digits = 1 + rand() % 20, dot = rand() % (digits + 1), e = rand() % 46 - 30;
            char *p = vals[i];
            if (rand() % 2) *p++ = '-';
            for (int d = 0; d < digits; d++) {
                if (d == dot && d) *p++ = '.';
                *p++ = (char)('0' + rand() % 10);
            }
            if (rand() % 2) sprintf(p, "e%d", e);
            else *p = '\0';
        }
        at += (size_t)snprintf(text + at, sizeof text - at, "%s,%d\n", vals[i], i % 3);
    }
    nb_read_opts o = nb_read_defaults();
    nb_dataset *ds = nb_csv_parse(text, at, "values", &o);
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    ck_assert_int_eq(ds->len, NR);
    for (int64_t i = 0; i < NR; i++) {
        float x;
        double y, want = strtod(vals[i], NULL);
        sample(ds, i, &x, &y);
        float wf = (float)want;
        ck_assert_msg(memcmp(&x, &wf, 4) == 0, "'%s' gave %.9g, numpy %.9g", vals[i], (double)x, (double)wf);
    }
    nb_dataset_free(ds);
}
END_TEST

START_TEST(test_csv_options) {
    float x[8];
    double y;
    /* ';' and a quoted field, CRLF, blank lines, no newline at the end; the target in the middle */
    nb_read_opts o = opts(NB_CLASSIFY, 0, ';');
    o.target_col = 1;
    const char *semi = "1.5;\"2\";3\r\n\r\n  4 ; 0 ; 6  \n\n-1;1;\"-2.5\"";
    nb_dataset *ds = nb_csv_parse(semi, strlen(semi), "semi", &o);
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    ck_assert_int_eq(ds->len, 3);
    ck_assert_int_eq(ds->features, 2);
    ck_assert_int_eq(ds->classes, 3);
    sample(ds, 1, x, &y);
    ck_assert(x[0] == 4 && x[1] == 6 && y == 0);
    sample(ds, 2, x, &y);
    ck_assert(x[0] == -1 && x[1] == -2.5f && y == 1);
    nb_dataset_free(ds);
    /* tabs; target column 0 from the start, -3 from the end: the same here */
    for (int t = 0; t < 2; t++) {
        o = opts(NB_REGRESS, 0, '\t');
        o.target_col = t ? -3 : 0;
        const char *txt = "10\t1\t2\n20\t3\t4\n";
        ds = nb_csv_parse(txt, strlen(txt), "tabs", &o);
        ck_assert_msg(ds != NULL, "%s", nb_last_error());
        ck_assert_int_eq(ds->targets, 1);
        sample(ds, 1, x, &y);
        ck_assert(x[0] == 3 && x[1] == 4 && y == 20);
        nb_dataset_free(ds);
    }
    /* runs of spaces and tabs, leading and trailing; lines of blanks; skipped header lines */
    o = opts(NB_CLASSIFY, 2, NB_CSV_WHITESPACE);
    const char *ws = "# a title\nx y label\n  1 \t 2   0\n\t \n3\t\t4 1   \n";
    ds = nb_csv_parse(ws, strlen(ws), "ws", &o);
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    ck_assert_int_eq(ds->len, 2);
    sample(ds, 1, x, &y);
    ck_assert(x[0] == 3 && x[1] == 4 && y == 1);
    nb_dataset_free(ds);
    /* a class count given: labels below it; unlabeled: every column a feature */
    o = opts(NB_CLASSIFY, 0, ',');
    o.classes = 5;
    ds = nb_csv_parse("1,2\n3,4\n", 8, "c", &o);
    ck_assert_int_eq(ds->classes, 5);
    nb_dataset_free(ds);
    o = opts(NB_UNLABELED, 0, ',');
    ds = nb_csv_parse("1,2\n3,4\n", 8, "u", &o);
    ck_assert_int_eq(ds->task, NB_UNLABELED);
    ck_assert_int_eq(ds->features, 2);
    nb_dataset_free(ds);
    /* a targets file of 2 columns: regression with 2 targets */
    o = opts(NB_REGRESS, 0, ',');
    ds = nb_dataset_csv(text_file("x.csv", "1,2,3\n4,5,6\n"), text_file("y.csv", "0.5,1\n-2,7\n"), &o);
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    ck_assert_int_eq(ds->features, 3);
    ck_assert_int_eq(ds->targets, 2);
    float t[4];
    ck_assert_int_eq(nb_dataset_get(ds, (int64_t[]){1, 0}, 2, (float[6]){0}, t), NB_OK);
    ck_assert(t[0] == -2 && t[1] == 7 && t[2] == 0.5f && t[3] == 1);
    nb_dataset_free(ds);
}
END_TEST

/* ---- CSV: bad input ------------------------------------------------------------------------------ */

/* A file with text must fail with status st, nothing loaded, and a message holding the path
 * and every want (NULL-terminated); parsing the same bytes from memory fails the same way. */
static void expect_csv_error(const char *text, const nb_read_opts *o, nb_status st, const char *const *want) {
    const char *path = text_file("bad.csv", text);
    for (int from_mem = 0; from_mem < 2; from_mem++) {
        nb_clear_error();
        nb_dataset *ds = from_mem ? nb_csv_parse(text, strlen(text), path, o) : nb_dataset_csv(path, NULL, o);
        ck_assert_msg(ds == NULL, "'%s' loaded", text);
        ck_assert_msg(nb_last_status() == st, "'%s': status %d, expected %d (%s)", text, nb_last_status(), st,
                      nb_last_error());
        ck_assert_msg(strstr(nb_last_error(), path), "'%s': the message does not name the file: %s", text,
                      nb_last_error());
        for (int i = 0; want[i]; i++)
            ck_assert_msg(strstr(nb_last_error(), want[i]), "'%s': message '%s' lacks '%s'", text, nb_last_error(),
                          want[i]);
    }
}

#define BAD(text, o, st, ...) expect_csv_error(text, o, st, (const char *const[]){__VA_ARGS__, NULL})

START_TEST(test_csv_errors) {
    nb_read_opts c = opts(NB_CLASSIFY, 0, ','), r = opts(NB_REGRESS, 0, ','), h = opts(NB_CLASSIFY, 1, ',');
    BAD("1,2,0\n3,x,1\n", &c, NB_EFORMAT, "line 2, column 2: 'x' is not a number");
    BAD("a,b,label\n1,2,0\n", &c, NB_EFORMAT, "line 1, column 1: 'a' is not a number (a header line?");
    BAD("1,2,0\n3,,1\n", &c, NB_EFORMAT, "line 2, column 2: empty field (a missing value)");
    BAD("1,2,0\n3,4,1,5\n", &c, NB_EFORMAT, "line 2 has more than the 3 fields of the first row (ragged row)");
    BAD("1,2,3,0\n3,4,1\n", &r, NB_EFORMAT, "line 2 has 3 fields, expected 4: the target (column 4) is missing");
    BAD("1,2,0\n1,2,0\n5,0\n", &c, NB_EFORMAT, "line 3 has 2 fields, expected 3: the target (column 3) is missing");
    nb_read_opts first = c;
    first.target_col = 0;
    BAD("0,1,2\n1,2\n", &first, NB_EFORMAT, "line 2 has 2 fields, expected 3 as in the first row (ragged row)");
    BAD("1,2,0\n3,nan,1\n", &c, NB_EFORMAT, "line 2, column 2: nan is NaN");
    BAD("1,2,0\n3,-inf,1\n", &c, NB_EFORMAT, "line 2, column 2: -inf is infinite");
    BAD("1,1e39,0\n", &c, NB_EFORMAT, "line 1, column 2: 1e39 is too large for float32");
    BAD("1,2,0\n3,4,1.5\n", &c, NB_EFORMAT, "line 2, column 3: label 1.5 is not a class index");
    BAD("1,2,-1\n", &c, NB_EFORMAT, "line 1, column 3: label -1 is not a class index");
    nb_read_opts three = c;
    three.classes = 3;
    BAD("1,2,0\n3,4,7\n", &three, NB_EFORMAT, "line 2, column 3: label 7 is out of range: there are 3 classes (0..2)");
    BAD("", &c, NB_EFORMAT, "no data rows (an empty file)");
    BAD("\n  \n", &c, NB_EFORMAT, "no data rows");
    BAD("a,b,c\n", &h, NB_EFORMAT, "no data rows (an empty file, or only the skipped lines)");
    nb_read_opts far = c;
    far.target_col = 5;
    BAD("1,2,0\n", &far, NB_EINVAL, "target column 5 does not exist: line 1 has 3 columns");
    far.target_col = -4;
    BAD("1,2,0\n", &far, NB_EINVAL, "target column -4 does not exist");
    BAD("0\n1\n", &c, NB_EFORMAT, "line 1 has only the target column, no features");
    BAD("1,\"2\"x,0\n", &c, NB_EFORMAT, "line 1: malformed quotes");
    BAD("1,2,0\n3,\"4,1\n\n", &c, NB_EFORMAT, "line 2: a quoted field is not closed at the end of the file");
    BAD("1,0x10,0\n", &c, NB_EFORMAT, "'0x10' is not a number");
    BAD("1,\x1b[31mred,0\n", &c, NB_EFORMAT, "line 1, column 2: '?[31mred' is not a number"); /* no escapes reach a terminal */
    BAD("1\x00" "2,3,0\n", &c, NB_EFORMAT, "line 1"); /* (strlen stops at the NUL: "1" alone) */
    nb_read_opts bad_delim = c;
    bad_delim.delimiter = '.';
    BAD("1.2\n", &bad_delim, NB_EINVAL, "delimiter 0x2e cannot separate numbers");
    /* a NUL inside a field: not a number */
    nb_clear_error();
    ck_assert_ptr_null(nb_csv_parse("1,2\0" "5,0\n", 8, "nul", &c));
    ck_assert_msg(strstr(nb_last_error(), "line 1, column 2"), "%s", nb_last_error());
    /* a missing file, and x and y files of different lengths */
    ck_assert_ptr_null(nb_dataset_csv("/nonexistent.csv", NULL, &c));
    ck_assert_str_eq(nb_last_error(), "csv: cannot open /nonexistent.csv: No such file or directory");
    const char *x = text_file("x2.csv", "1,2\n3,4\n5,6\n"), *y = text_file("y2.csv", "0\n1\n");
    ck_assert_ptr_null(nb_dataset_csv(x, y, &c));
    ck_assert_msg(strstr(nb_last_error(), "has 3 rows but") && strstr(nb_last_error(), "has 2"), "%s", nb_last_error());
    ck_assert_ptr_null(nb_dataset_csv(x, text_file("y3.csv", "0,1\n1,0\n0,0\n"), &c));
    ck_assert_msg(strstr(nb_last_error(), "line 1 has 2 columns; class labels take one"), "%s", nb_last_error());
    ck_assert_ptr_null(nb_dataset_csv(x, text_file("y4.csv", "0\n1\nz\n"), &c));
    ck_assert_msg(strstr(nb_last_error(), "y4.csv: line 3, column 1: 'z' is not a number"), "%s", nb_last_error());
    nb_read_opts u = opts(NB_UNLABELED, 0, ',');
    ck_assert_ptr_null(nb_dataset_csv(x, y, &u));
    ck_assert_ptr_null(nb_csv_parse(NULL, 0, "n", &c));
}
END_TEST

/* Memory stays bounded: a field without end, more data than max_bytes, and a gzip bomb (1 GB
 * of zeros in 100 kB: 100 MB of text) are refused early, with nabla's peak allocation measured. */
START_TEST(test_csv_limits) {
    ck_assert_msg(tracking, "the allocator hooks could not be installed");
    nb_read_opts c = opts(NB_CLASSIFY, 0, ',');
    size_t n = 3u << 20;
    char *big = malloc(n + 8);
    memset(big, '7', n);
    memcpy(big + n, ",0\n", 4);
    size_t base = peak_begin();
    ck_assert_ptr_null(nb_csv_parse(big, n + 3, "long", &c));
    ck_assert_msg(strstr(nb_last_error(), "a field longer than 1048576 bytes"), "%s", nb_last_error());
    ck_assert_msg(peak_since(base) < (3u << 20), "peak %zu bytes for a 3 MB field", peak_since(base));
    free(big);
    /* the bomb: "0,0,...,0\n" (1000 columns) over and over, gzip'd */
    const char *path = tmp("bomb.csv.gz");
    gzFile g = gzopen(path, "wb9");
    static char row[2001];
    for (int i = 0; i < 1000; i++) row[2 * i] = '0', row[2 * i + 1] = i == 999 ? '\n' : ',';
    for (int i = 0; i < 50000; i++) gzwrite(g, row, 2000); /* 100 MB of text */
    gzclose(g);
    c.max_bytes = 8u << 20;
    base = peak_begin();
    ck_assert_ptr_null(nb_dataset_csv(path, NULL, &c));
    ck_assert_msg(strstr(nb_last_error(), "exceeds the limit of 8388608 bytes (max_bytes)") &&
                  strstr(nb_last_error(), path), "%s", nb_last_error());
    ck_assert_msg(peak_since(base) < (12u << 20), "peak %zu bytes with max_bytes 8 MiB", peak_since(base));
    ck_assert_uint_eq(atomic_load(&peak_live), base); /* everything freed */
    fprintf(stderr, "csv bomb: refused with a peak of %.1f MiB of nabla's allocations (max_bytes 8 MiB)\n",
            (double)(peak_since(base)) / (1 << 20));
}
END_TEST

/* ---- .npy ------------------------------------------------------------------------------------ */

/* A .npy file image of format version ver: header dict text, then data bytes. */
static size_t npy_bytes(unsigned char *out, int ver, const char *dict, const void *data, size_t n) {
    size_t pre = ver == 1 ? 10 : 12, len = strlen(dict) + 1;
    size_t pad = (64 - (pre + len) % 64) % 64;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)ver;
    out[7] = 0;
    size_t hl = len + pad;
    out[8] = (unsigned char)hl;
    out[9] = (unsigned char)(hl >> 8);
    if (ver > 1) out[10] = (unsigned char)(hl >> 16), out[11] = (unsigned char)(hl >> 24);
    memcpy(out + pre, dict, len - 1);
    memset(out + pre + len - 1, ' ', pad);
    out[pre + hl - 1] = '\n';
    memcpy(out + pre + hl, data, n);
    return pre + hl + n;
}

static const char *npy_file(const char *name, int ver, const char *dict, const void *data, size_t n) {
    static unsigned char buf[1 << 16];
    size_t len = npy_bytes(buf, ver, dict, data, n);
    const char *p = tmp(name);
    write_file(p, buf, len);
    return p;
}

START_TEST(test_npy_dtypes_and_layouts) {
    /* [3, 3] in every dtype, target column last: features 1..2, labels 0..2 */
    static const char *descr[] = {"<f4", "<f8", "|u1", "<i4", "<i8"};
    float f4[9] = {1, 2, 0, 3, 4, 1, 5, 6, 2};
    double f8[9];
    unsigned char u1[9];
    int32_t i4[9];
    int64_t i8[9];
    for (int i = 0; i < 9; i++) {
        f8[i] = f4[i];
        u1[i] = (unsigned char)f4[i];
        i4[i] = (int32_t)f4[i];
        i8[i] = (int64_t)f4[i];
    }
    const void *data[] = {f4, f8, u1, i4, i8};
    size_t size[] = {4, 8, 1, 4, 8};
    for (int t = 0; t < 5; t++)
        for (int ver = 1; ver <= 3; ver++) {
            char dict[128];
            snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (3, 3), }", descr[t]);
            const char *p = npy_file("a.npy", ver, dict, data[t], 9 * size[t]);
            nb_read_opts o = nb_read_defaults();
            nb_dataset *ds = nb_dataset_npy(p, NULL, &o);
            ck_assert_msg(ds != NULL, "%s v%d: %s", descr[t], ver, nb_last_error());
            ck_assert_int_eq(ds->len, 3);
            ck_assert_int_eq(ds->features, 2);
            ck_assert_int_eq(ds->classes, 3);
            float x[2];
            double y;
            sample(ds, 2, x, &y);
            ck_assert(x[0] == 5 && x[1] == 6 && y == 2);
            nb_dataset_free(ds);
        }
    /* keys in another order, double quotes, no trailing comma; target column 0 */
    const char *p = npy_file("b.npy", 1, "{\"shape\": (3,3), \"fortran_order\": False, \"descr\": \"<f4\"}", f4, 36);
    nb_read_opts o = nb_read_defaults();
    o.task = NB_REGRESS;
    o.target_col = 0;
    nb_dataset *ds = nb_dataset_npy(p, NULL, &o);
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    float x[2];
    double y;
    sample(ds, 1, x, &y);
    ck_assert(y == 3 && x[0] == 4 && x[1] == 1);
    nb_dataset_free(ds);
    /* images [4, 2, 3] uint8 with labels [4] int64 in a second file: sample shape [2, 3] */
    unsigned char img[24];
    for (int i = 0; i < 24; i++) img[i] = (unsigned char)(10 * i);
    int64_t lab[4] = {3, 0, 1, 3};
    const char *xi = npy_file("x.npy", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 2, 3), }", img, 24);
    const char *yi = npy_file("y.npy", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", lab, 32);
    ds = nb_dataset_npy(xi, yi, NULL);
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    ck_assert_int_eq(ds->ndim, 2);
    ck_assert_int_eq(ds->shape[0], 2);
    ck_assert_int_eq(ds->shape[1], 3);
    ck_assert_int_eq(ds->classes, 4);
    float px[6];
    sample(ds, 3, px, &y);
    ck_assert(px[0] == 180 && px[5] == 230 && y == 3);
    nb_dataset_free(ds);
    /* regression targets [4, 2] float64; and [4, 1] labels */
    double tg[8] = {0.5, 1, 2, 3, 4, 5, 6, 7.25};
    const char *yr = npy_file("yr.npy", 2, "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 2), }", tg, 64);
    o = nb_read_defaults();
    o.task = NB_REGRESS;
    ds = nb_dataset_npy(xi, yr, &o);
    ck_assert_msg(ds && ds->targets == 2, "%s", nb_last_error());
    float t[2];
    ck_assert_int_eq(nb_dataset_get(ds, (int64_t[]){3}, 1, px, t), NB_OK);
    ck_assert(t[0] == 6 && t[1] == 7.25f);
    nb_dataset_free(ds);
    const char *y41 = npy_file("y41.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (4, 1), }",
                               (int32_t[]){1, 0, 1, 1}, 16);
    ds = nb_dataset_npy(xi, y41, NULL);
    ck_assert_msg(ds && ds->classes == 2, "%s", nb_last_error());
    nb_dataset_free(ds);
    /* unlabeled: every column a feature, any rank */
    o = nb_read_defaults();
    o.task = NB_UNLABELED;
    ds = nb_dataset_npy(xi, NULL, &o);
    ck_assert_msg(ds && ds->features == 6 && ds->task == NB_UNLABELED, "%s", nb_last_error());
    nb_dataset_free(ds);
}
END_TEST

/* An .npy that must fail with st and a message naming the file and holding want. */
static void expect_npy(const char *x, const char *y, const nb_read_opts *o, nb_status st, const char *want) {
    nb_clear_error();
    ck_assert_ptr_null(nb_dataset_npy(x, y, o));
    ck_assert_msg(nb_last_status() == st, "status %d, expected %d: %s", nb_last_status(), st, nb_last_error());
    ck_assert_msg(strstr(nb_last_error(), want), "message '%s' lacks '%s'", nb_last_error(), want);
    ck_assert_msg(strstr(nb_last_error(), x) || (y && strstr(nb_last_error(), y)), "the message names no file: %s",
                  nb_last_error());
}

START_TEST(test_npy_errors) {
    float v[12] = {1, 2, 0, 3, 4, 1, 5, NAN, 2, 7, 8, 9};
    nb_read_opts o = nb_read_defaults();
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }";
    expect_npy(text_file("t.npy", "not numpy"), NULL, &o, NB_EFORMAT, "not a .npy file (no \\x93NUMPY magic)");
    static unsigned char b[4096];
    size_t n = npy_bytes(b, 1, ok, v, 36);
    b[6] = 4;
    const char *p = tmp("v4.npy");
    write_file(p, b, n);
    expect_npy(p, NULL, &o, NB_EFORMAT, "format version 4.0 is not supported");
    expect_npy(npy_file("f.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 3), }", v, 36), NULL, &o,
               NB_EFORMAT, "Fortran order");
    expect_npy(npy_file("be.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 3), }", v, 36), NULL, &o,
               NB_EFORMAT, "big-endian data ('>f4') is not supported");
    expect_npy(npy_file("f2.npy", 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 3), }", v, 18), NULL, &o,
               NB_EFORMAT, "dtype '<f2' is not supported");
    expect_npy(npy_file("st.npy", 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", v, 12),
               NULL, &o, NB_EFORMAT, "structured dtypes are not supported");
    expect_npy(npy_file("nokey.npy", 1, "{'descr': '<f4', 'shape': (3, 3), }", v, 36), NULL, &o, NB_EFORMAT,
               "'fortran_order' is missing");
    expect_npy(npy_file("extra.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), 'x': 1, }", v, 36),
               NULL, &o, NB_EFORMAT, "unexpected or repeated key 'x'");
    expect_npy(npy_file("esc.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), '\x1b[2J': 1, }", v,
                        36), NULL, &o, NB_EFORMAT, "a key of the header dict is malformed");
    expect_npy(npy_file("shape.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, -3), }", v, 36), NULL,
               &o, NB_EFORMAT, "'shape' holds something other than integers");
    expect_npy(npy_file("trunc.npy", 1, ok, v, 35), NULL, &o, NB_EFORMAT,
               "truncated: the header promises 36 data bytes (float32 [3, 3]), the file has 35");
    expect_npy(npy_file("long.npy", 1, ok, v, 40), NULL, &o, NB_EFORMAT, "data continues past the array");
    expect_npy(npy_file("huge.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000, 3), }", v,
                        36), NULL, &o, NB_EFORMAT, "the header promises 2400000000000 data bytes");
    expect_npy(npy_file("empty.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", v, 0), NULL,
               &o, NB_EFORMAT, "the array is empty");
    expect_npy(npy_file("nan.npy", 1, ok, v, 36), NULL, &o, NB_EFORMAT, "element [2, 1] is NaN");
    float bad_label[9] = {1, 2, 0, 3, 4, 0.5f, 5, 6, 2};
    expect_npy(npy_file("lab.npy", 1, ok, bad_label, 36), NULL, &o, NB_EFORMAT, "element [1, 2]: label 0.5 is not a class index");
    o.classes = 2;
    expect_npy(npy_file("lab2.npy", 1, ok, (float[]){1, 2, 0, 3, 4, 1, 5, 6, 2}, 36), NULL, &o, NB_EFORMAT,
               "element [2, 2]: label 2 is out of range for the class count");
    o.classes = 0;
    n = npy_bytes(b, 1, ok, v, 36);
    b[8 + 2 + 50] = '\0';
    write_file(p = tmp("nul.npy"), b, n);
    expect_npy(p, NULL, &o, NB_EFORMAT, "NUL byte");
    n = npy_bytes(b, 1, ok, v, 36);
    b[8] = 0xff; /* header length past the end of the file */
    b[9] = 0xff;
    write_file(p = tmp("hl.npy"), b, n);
    expect_npy(p, NULL, &o, NB_EFORMAT, "truncated: the header promises 65535 bytes");
    /* x and y disagree; a 3-D x needs a y file; classes take one column */
    const char *x3 = npy_file("x3.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 2), }", v, 48);
    const char *y2 = npy_file("y2.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
                              (int32_t[]){0, 1}, 8);
    v[7] = 0;
    x3 = npy_file("x3.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 2), }", v, 48);
    expect_npy(x3, y2, &o, NB_EFORMAT, "has 3 samples but");
    expect_npy(x3, NULL, &o, NB_EFORMAT, "an array of shape [3, 2, 2] holds no target column");
    const char *y32 = npy_file("y32.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }",
                               (int32_t[]){0, 1, 0, 1, 0, 1}, 24);
    expect_npy(x3, y32, &o, NB_EFORMAT, "targets of shape [3, 2]: expected [3] or [N, 1]");
    o.target_col = 7;
    expect_npy(p = npy_file("ok.npy", 1, ok, v, 36), NULL, &o, NB_EINVAL, "target column 7 does not exist");
    o.target_col = -1;
    o.max_bytes = 16;
    expect_npy(p, NULL, &o, NB_EFORMAT, "exceeds the limit of 16 bytes (max_bytes)");
    expect_npy("/nonexistent.npy", NULL, &o, NB_EIO, "cannot open /nonexistent.npy");
    expect_npy(temp_dir(), NULL, &o, NB_EIO, "is a directory");
    ck_assert_ptr_null(nb_npy_parse(NULL, 0, NULL, 0, NULL, NULL));
}
END_TEST

/* A header that promises a big array in a small file is refused before anything is allocated. */
START_TEST(test_npy_bounded) {
    ck_assert_msg(tracking, "the allocator hooks could not be installed");
    static unsigned char b[256];
    size_t n = npy_bytes(b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 8), }",
                         "\0\0\0\0", 4);
    size_t base = peak_begin();
    ck_assert_ptr_null(nb_npy_parse(b, n, NULL, 0, "promise", NULL));
    ck_assert_msg(strstr(nb_last_error(), "truncated"), "%s", nb_last_error());
    ck_assert_msg(peak_since(base) < (1u << 20), "peak %zu bytes", peak_since(base));
}
END_TEST

int main(void) {
    tracking = nb_set_allocator(peak_malloc, peak_realloc, peak_free) == NB_OK;
    Suite *s = suite_create("readers");
    TCase *csv = tcase_create("csv");
    tcase_add_test(csv, test_csv_sklearn_files);
    tcase_add_test(csv, test_csv_from_idx);
    tcase_add_test(csv, test_csv_values_exact);
    tcase_add_test(csv, test_csv_options);
    tcase_add_test(csv, test_csv_errors);
    tcase_add_test(csv, test_csv_limits);
    suite_add_tcase(s, csv);
    TCase *npy = tcase_create("npy");
    tcase_add_test(npy, test_npy_dtypes_and_layouts);
    tcase_add_test(npy, test_npy_errors);
    tcase_add_test(npy, test_npy_bounded);
    suite_add_tcase(s, npy);
    return run_suite(s) ? 1 : 0;
}
