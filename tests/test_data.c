/* test_data.c - the IDX reader (valid files, raw vs gzip, and every kind of bad file) and the
 * DataLoader (seeded shuffle, batch sizes, drop_last, exact resume, label dtypes).
 * Fixtures: datasets/tiny/ (tools/gen_tiny_idx.py); bad files are written here, byte by byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "common.h"

/* ---- writing test files ------------------------------------------------------------------ */

static const char *tmp_path(const char *name) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", temp_dir(), name);
    return path;
}

static void write_raw(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_gz(const char *path, const void *buf, size_t n) {
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_int_eq(gzwrite(f, buf, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(f), Z_OK);
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n ? *n : 1);
    ck_assert_uint_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* An IDX file in buf: magic (type, rank), dims, then `data` bytes of a counting pattern. */
static size_t make_idx(unsigned char *buf, int type, int rank, const uint32_t *dims, size_t data) {
    size_t n = 0;
    buf[n++] = 0;
    buf[n++] = 0;
    buf[n++] = (unsigned char)type;
    buf[n++] = (unsigned char)rank;
    for (int i = 0; i < rank; i++) {
        buf[n++] = (unsigned char)(dims[i] >> 24);
        buf[n++] = (unsigned char)(dims[i] >> 16);
        buf[n++] = (unsigned char)(dims[i] >> 8);
        buf[n++] = (unsigned char)dims[i];
    }
    for (size_t i = 0; i < data; i++) buf[n++] = (unsigned char)(i * 7);
    return n;
}

/* Load buf as a raw file, as a gzip file and through nb_idx_parse: all three must fail with
 * status st and a message containing want (and the file's name, for the files). */
static void expect_bad(const char *name, const void *buf, size_t n, nb_status st, const char *want) {
    char raw[4096], gz[4100];
    snprintf(raw, sizeof raw, "%s", tmp_path(name));
    snprintf(gz, sizeof gz, "%s.gz", raw);
    write_raw(raw, buf, n);
    write_gz(gz, buf, n);
    const char *paths[] = {raw, gz};
    for (int i = 0; i < 2; i++) {
        nb_clear_error();
        nb_tensor *t = nb_idx_load(paths[i]);
        ck_assert_msg(t == NULL, "%s: loaded a bad file", paths[i]);
        ck_assert_msg(nb_last_status() == st, "%s: status %d, expected %d (%s)", paths[i],
                      nb_last_status(), st, nb_last_error());
        ck_assert_msg(strstr(nb_last_error(), want), "%s: message '%s' lacks '%s'", paths[i],
                      nb_last_error(), want);
        ck_assert_msg(strstr(nb_last_error(), paths[i]), "%s: message '%s' does not name the file",
                      paths[i], nb_last_error());
    }
    nb_clear_error();
    ck_assert_ptr_null(nb_idx_parse(buf, n, name));
    ck_assert_int_eq(nb_last_status(), st);
    ck_assert_msg(strstr(nb_last_error(), want), "parse: message '%s' lacks '%s'", nb_last_error(), want);
}

/* ---- IDX: valid files -------------------------------------------------------------------- */

START_TEST(test_idx_tiny_fixtures) {
    nb_tensor *img = nb_idx_load(fixture("tiny/train-images-idx3-ubyte.gz"));
    nb_tensor *lab = nb_idx_load(fixture("tiny/train-labels-idx1-ubyte.gz"));
    ck_assert_msg(img && lab, "%s", nb_last_error());
    ck_assert_int_eq(img->dtype, NB_UINT8);
    ck_assert_int_eq(img->ndim, 3);
    ck_assert_int_eq(img->shape[0], 100);
    ck_assert_int_eq(img->shape[1], 28);
    ck_assert_int_eq(img->shape[2], 28);
    ck_assert_int_eq(img->numel, 100 * 28 * 28);
    ck_assert_int_eq(lab->ndim, 1);
    ck_assert_int_eq(lab->shape[0], 100);
    for (int i = 0; i < 100; i++) ck_assert_int_eq(nb_u8(lab)[i], (7 * i + 3) % 10);
    /* the generator's class 3 is a horizontal bar on rows 18..20: sample 0 has label 3 */
    ck_assert_uint_ge(nb_u8(img)[19 * 28 + 14], 200);
    ck_assert_uint_lt(nb_u8(img)[5 * 28 + 14], 200);
    nb_tensor_free(img);
    nb_tensor_free(lab);
}
END_TEST

START_TEST(test_idx_raw_and_gzip_identical) {
    const char *names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++) {
        char gz[256], raw[256];
        snprintf(gz, sizeof gz, "tiny/%s.gz", names[i]);
        snprintf(raw, sizeof raw, "tiny/raw/%s", names[i]);
        nb_tensor *a = nb_idx_load(fixture(gz));
        nb_tensor *b = nb_idx_load(fixture(raw));
        ck_assert_msg(a && b, "%s: %s", names[i], nb_last_error());
        ck_assert(nb_same_shape(a, b));
        ck_assert_mem_eq(a->data, b->data, (size_t)a->numel);
        /* and the same bytes parsed from memory */
        size_t n;
        unsigned char *buf = read_all(fixture(raw), &n);
        nb_tensor *c = nb_idx_parse(buf, n, names[i]);
        ck_assert_ptr_nonnull(c);
        ck_assert(nb_same_shape(a, c));
        ck_assert_mem_eq(a->data, c->data, (size_t)a->numel);
        free(buf);
        nb_tensor_free(a);
        nb_tensor_free(b);
        nb_tensor_free(c);
    }
}
END_TEST

START_TEST(test_mnist_load_gz_raw_and_default) {
    nb_mnist gz, raw;
    ck_assert_msg(nb_mnist_load(fixture("tiny"), "train", &gz) == NB_OK, "%s", nb_last_error());
    ck_assert_msg(nb_mnist_load(fixture("tiny/raw"), "train", &raw) == NB_OK, "%s", nb_last_error());
    ck_assert_int_eq(gz.images->shape[0], 100);
    ck_assert_mem_eq(gz.images->data, raw.images->data, (size_t)gz.images->numel);
    ck_assert_mem_eq(gz.labels->data, raw.labels->data, 100);
    nb_mnist_free(&gz);
    nb_mnist_free(&raw);
    nb_mnist_free(&raw); /* twice is harmless */
    nb_mnist_free(NULL);
    nb_mnist t;
    ck_assert_int_eq(nb_mnist_load(fixture("tiny"), "t10k", &t), NB_OK);
    ck_assert_int_eq(t.images->shape[0], 40);
    nb_mnist_free(&t);

    setenv("NABLA_DATA", "/some/where", 1);
    ck_assert_str_eq(nb_default_data_dir(), "/some/where");
    unsetenv("NABLA_DATA");
    ck_assert_str_eq(nb_default_data_dir(), "/usr/share/datasets/fashion-mnist");
}
END_TEST

START_TEST(test_idx_other_ranks) {
    unsigned char buf[256];
    uint32_t d4[] = {2, 3, 1, 4};
    size_t n = make_idx(buf, 0x08, 4, d4, 24);
    const char *p = tmp_path("rank4.idx");
    write_raw(p, buf, n);
    nb_tensor *t = nb_idx_load(p);
    ck_assert_msg(t != NULL, "%s", nb_last_error());
    ck_assert_int_eq(t->ndim, 4);
    ck_assert_int_eq(t->shape[3], 4);
    for (int i = 0; i < 24; i++) ck_assert_uint_eq(nb_u8(t)[i], (unsigned char)(i * 7));
    nb_tensor_free(t);
}
END_TEST

/* ---- IDX: bad files ---------------------------------------------------------------------- */

START_TEST(test_idx_missing_file) {
    nb_clear_error();
    ck_assert_ptr_null(nb_idx_load("/nonexistent/train-images-idx3-ubyte.gz"));
    ck_assert_int_eq(nb_last_status(), NB_EIO);
    ck_assert_str_eq(nb_last_error(),
                     "idx: cannot open /nonexistent/train-images-idx3-ubyte.gz: No such file or directory");
    ck_assert_ptr_null(nb_idx_load(NULL));
    ck_assert_int_eq(nb_last_status(), NB_EINVAL);
    ck_assert_ptr_null(nb_idx_parse(NULL, 10, "x"));
    ck_assert_int_eq(nb_last_status(), NB_EINVAL);

    nb_mnist m = {(nb_tensor *)1, (nb_tensor *)1};
    ck_assert_int_eq(nb_mnist_load("/nonexistent", "train", &m), NB_EIO);
    ck_assert_msg(strstr(nb_last_error(), "/nonexistent/train-images-idx3-ubyte"), "%s", nb_last_error());
    ck_assert_ptr_null(m.images); /* out is cleared, never left dangling */
    ck_assert_ptr_null(m.labels);
    ck_assert_int_eq(nb_mnist_load(NULL, "train", &m), NB_EINVAL);
}
END_TEST

START_TEST(test_idx_directory) {
    const char *dir = temp_dir();
    nb_clear_error();
    ck_assert_ptr_null(nb_idx_load(dir));
    ck_assert_msg(nb_last_status() == NB_EIO || nb_last_status() == NB_EFORMAT, "%s", nb_last_error());
    ck_assert_msg(strstr(nb_last_error(), dir), "%s", nb_last_error());
    ck_assert_msg(strstr(nb_last_error(), "directory"), "%s", nb_last_error());
}
END_TEST

START_TEST(test_idx_empty_and_short) {
    unsigned char buf[8] = {0, 0, 8};
    expect_bad("empty", buf, 0, NB_EFORMAT, "too short for an IDX header (0 bytes)");
    expect_bad("three", buf, 3, NB_EFORMAT, "too short for an IDX header (3 bytes)");
}
END_TEST

START_TEST(test_idx_truncated_header) {
    unsigned char buf[64];
    uint32_t d[] = {100, 28, 28};
    make_idx(buf, 0x08, 3, d, 0);
    expect_bad("hdr6", buf, 6, NB_EFORMAT, "truncated header (6 of 16 bytes)");
    expect_bad("hdr15", buf, 15, NB_EFORMAT, "truncated header (15 of 16 bytes)");
    expect_bad("hdr4", buf, 4, NB_EFORMAT, "truncated header (4 of 16 bytes)");
}
END_TEST

START_TEST(test_idx_truncated_data) {
    static unsigned char buf[16 + 3 * 784];
    uint32_t d[] = {3, 28, 28};
    size_t n = make_idx(buf, 0x08, 3, d, 3 * 784);
    expect_bad("trunc", buf, n - 1, NB_EFORMAT, "header promises 2352 data bytes, file has 2351");
    expect_bad("nodata", buf, 16, NB_EFORMAT, "header promises 2352 data bytes, file has 0");
}
END_TEST

START_TEST(test_idx_header_promises_too_much) {
    /* 4e9 bytes promised, 10 present: fails fast, without allocating what the file lacks */
    unsigned char buf[64];
    uint32_t d[] = {1000000, 100, 40};
    size_t n = make_idx(buf, 0x08, 3, d, 10);
    expect_bad("huge", buf, n, NB_EFORMAT, "header promises 4000000000 data bytes, file has 10");
    /* more than the reader accepts at all (2^32 bytes) */
    uint32_t d2[] = {0xffffffffu, 0xffffffffu};
    n = make_idx(buf, 0x08, 2, d2, 0);
    expect_bad("toolarge", buf, n, NB_EFORMAT, "header promises 4294967295 x 4294967295 = "
               "18446744065119617025 bytes, more than the limit of 4294967296 (4 GiB)");
    uint32_t d0[] = {5, 0};
    n = make_idx(buf, 0x08, 2, d0, 0);
    expect_bad("zerodim", buf, n, NB_EFORMAT, "dimension 1 has size 0 (an empty file)");
}
END_TEST

START_TEST(test_idx_trailing_data) {
    unsigned char buf[64];
    uint32_t d[] = {2, 3};
    size_t n = make_idx(buf, 0x08, 2, d, 6);
    buf[n++] = 42;
    expect_bad("trailing", buf, n, NB_EFORMAT, "data continues past the 6 bytes the header promises");
}
END_TEST

START_TEST(test_idx_garbage_and_bad_magic) {
    const char *text = "this is a text file, not an IDX file\n";
    expect_bad("garbage", text, strlen(text), NB_EFORMAT, "bad magic 74686973 (not an IDX file)");
    unsigned char buf[64];
    uint32_t d[] = {2};
    size_t n = make_idx(buf, 0x08, 1, d, 2);
    buf[1] = 1;
    expect_bad("magic", buf, n, NB_EFORMAT, "bad magic 00010801 (not an IDX file)");
    /* random bytes */
    unsigned char junk[300];
    for (int i = 0; i < 300; i++) junk[i] = (unsigned char)(i * 131 + 17);
    expect_bad("junk", junk, sizeof junk, NB_EFORMAT, "bad magic");
}
END_TEST

START_TEST(test_idx_wrong_dtype) {
    unsigned char buf[64];
    uint32_t d[] = {2};
    int types[] = {0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xff};
    for (int i = 0; i < 7; i++) {
        size_t n = make_idx(buf, types[i], 1, d, 2);
        char want[64];
        snprintf(want, sizeof want, "element type 0x%02x is not supported", types[i]);
        expect_bad("dtype", buf, n, NB_EFORMAT, want);
    }
}
END_TEST

START_TEST(test_idx_bad_rank) {
    unsigned char buf[64];
    uint32_t d[] = {1, 1, 1, 1, 1, 1};
    size_t n = make_idx(buf, 0x08, 0, d, 1);
    expect_bad("rank0", buf, n, NB_EFORMAT, "rank 0 is outside 1..4");
    n = make_idx(buf, 0x08, 5, d, 1);
    expect_bad("rank5", buf, n, NB_EFORMAT, "rank 5 is outside 1..4");
    buf[3] = 255;
    expect_bad("rank255", buf, n, NB_EFORMAT, "rank 255 is outside 1..4");
}
END_TEST

/* A valid gzip file with one byte of its trailer (CRC-32 or length) changed. */
static void corrupt_gz_trailer(const char *name, int from_end, const char *want) {
    size_t n, len;
    unsigned char *src = read_all(fixture("tiny/raw/t10k-labels-idx1-ubyte"), &len);
    char path[4096];
    snprintf(path, sizeof path, "%s", tmp_path(name));
    write_gz(path, src, len);
    unsigned char *gz = read_all(path, &n);
    gz[n - (size_t)from_end] ^= 0x5a;
    write_raw(path, gz, n);
    nb_clear_error();
    ck_assert_ptr_null(nb_idx_load(path));
    ck_assert_int_eq(nb_last_status(), NB_EFORMAT);
    ck_assert_msg(strstr(nb_last_error(), want) && strstr(nb_last_error(), path), "message: %s",
                  nb_last_error());
    free(src);
    free(gz);
}

START_TEST(test_idx_corrupt_gzip) {
    corrupt_gz_trailer("crc.gz", 8, "incorrect data check");   /* CRC-32 */
    corrupt_gz_trailer("isize.gz", 1, "incorrect length check"); /* ISIZE */
    /* a flipped byte inside the deflate stream of the real images: an error, never bad data */
    size_t n;
    unsigned char *gz = read_all(fixture("tiny/train-images-idx3-ubyte.gz"), &n);
    const char *p = tmp_path("body.gz");
    for (size_t at = 40; at + 16 < n; at += n / 7) {
        gz[at] ^= 0x10;
        write_raw(p, gz, n);
        gz[at] ^= 0x10;
        nb_clear_error();
        nb_tensor *t = nb_idx_load(p);
        ck_assert_msg(t == NULL, "corruption at byte %zu went unnoticed", at);
        ck_assert_int_eq(nb_last_status(), NB_EFORMAT);
        ck_assert_msg(strstr(nb_last_error(), p), "message: %s", nb_last_error());
    }
    /* a gzip file cut short: in the header, in the data, in the trailer */
    size_t cuts[] = {5, n / 2, n - 3};
    for (int i = 0; i < 3; i++) {
        write_raw(p, gz, cuts[i]);
        nb_clear_error();
        ck_assert_ptr_null(nb_idx_load(p));
        ck_assert_int_eq(nb_last_status(), NB_EFORMAT);
        ck_assert_msg(strstr(nb_last_error(), p), "message: %s", nb_last_error());
    }
    free(gz);
}
END_TEST

START_TEST(test_mnist_mismatch) {
    /* images from the train split, labels from t10k: 100 images vs 40 labels */
    const char *dir = temp_dir();
    char p[4096];
    size_t n;
    unsigned char *b = read_all(fixture("tiny/raw/train-images-idx3-ubyte"), &n);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
    write_raw(p, b, n);
    free(b);
    b = read_all(fixture("tiny/raw/t10k-labels-idx1-ubyte"), &n);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", dir);
    write_raw(p, b, n);
    free(b);
    nb_mnist m;
    ck_assert_int_eq(nb_mnist_load(dir, "train", &m), NB_EFORMAT);
    ck_assert_msg(strstr(nb_last_error(), "has 100 images but") && strstr(nb_last_error(), "has 40 labels"),
                  "%s", nb_last_error());
    ck_assert_ptr_null(m.images);
    /* the right count, but the labels file is cut after its header */
    unsigned char buf[64];
    n = make_idx(buf, 0x08, 1, (uint32_t[]){100}, 0);
    write_raw(p, buf, n);
    ck_assert_int_eq(nb_mnist_load(dir, "train", &m), NB_EFORMAT);
    ck_assert_msg(strstr(nb_last_error(), "truncated"), "%s", nb_last_error());
    ck_assert_ptr_null(m.images);
    /* labels of rank 2: refused from the headers, before either body */
    uint32_t d[] = {100, 1};
    static unsigned char big[16 + 100];
    n = make_idx(big, 0x08, 2, d, 100);
    write_raw(p, big, n);
    ck_assert_int_eq(nb_mnist_load(dir, "train", &m), NB_EFORMAT);
    ck_assert_msg(strstr(nb_last_error(), "has rank 2, expected 1"), "%s", nb_last_error());
}
END_TEST

/* ---- DataLoader -------------------------------------------------------------------------- */

/* n samples whose 2 pixels encode their index, labels = index (int32) or index % 256 (uint8). */
static void make_indexed(int64_t n, nb_tensor **x, nb_tensor **y, bool u8_labels) {
    *x = nb_empty(NULL, NB_UINT8, 2, (int64_t[]){n, 2});
    *y = nb_empty(NULL, u8_labels ? NB_UINT8 : NB_INT32, 1, &n);
    for (int64_t i = 0; i < n; i++) {
        nb_u8(*x)[2 * i] = (uint8_t)(i & 255);
        nb_u8(*x)[2 * i + 1] = (uint8_t)(i >> 8);
        if (u8_labels) nb_u8(*y)[i] = (uint8_t)(i & 255);
        else nb_i32(*y)[i] = (int32_t)i;
    }
}

/* One epoch: the labels served in order (out, up to cap), batch sizes in sizes; returns count. */
static int64_t run_epoch(nb_loader *ld, nb_arena *ar, int32_t *out, int64_t *sizes, int *nbatches) {
    nb_tensor *x, *y;
    int64_t k = 0;
    int b = 0, rc;
    while ((rc = nb_loader_next(ld, ar, &x, &y)) == 1) {
        ck_assert_int_eq(y->dtype, NB_INT32);
        ck_assert_int_eq(x->dtype, NB_FLOAT32);
        ck_assert_int_eq(x->shape[0], y->shape[0]);
        for (int64_t i = 0; i < y->numel; i++) {
            int32_t id = nb_i32(y)[i];
            /* the pixels travel with their label, scaled x/255 exactly as torch */
            ck_assert_float_eq(nb_f32(x)[2 * i], (float)(id & 255) / 255.0f);
            ck_assert_float_eq(nb_f32(x)[2 * i + 1], (float)(id >> 8) / 255.0f);
            out[k++] = id;
        }
        if (sizes) sizes[b] = y->numel;
        b++;
        nb_arena_reset(ar);
    }
    ck_assert_int_eq(rc, 0);
    if (nbatches) *nbatches = b;
    return k;
}

static void assert_permutation(const int32_t *v, int64_t n) {
    char *seen = calloc((size_t)n, 1);
    for (int64_t i = 0; i < n; i++) {
        ck_assert(v[i] >= 0 && v[i] < n);
        ck_assert_msg(!seen[v[i]], "sample %d served twice", v[i]);
        seen[v[i]] = 1;
    }
    free(seen);
}

START_TEST(test_loader_shuffle_is_seeded_permutation) {
    nb_tensor *x, *y;
    make_indexed(1000, &x, &y, false);
    nb_arena *ar = nb_arena_new(0);
    nb_loader_opts o = nb_loader_defaults();
    ck_assert_int_eq(o.batch_size, 64);
    ck_assert(o.shuffle);
    ck_assert(!o.drop_last);
    o.seed = 5;
    nb_loader *a = nb_loader_new(x, y, &o), *b = nb_loader_new(x, y, &o);
    o.seed = 6;
    nb_loader *c = nb_loader_new(x, y, &o);
    ck_assert(a && b && c);
    static int32_t ea[2][1000], eb[2][1000], ec[1000];
    for (int e = 0; e < 2; e++) {
        ck_assert_int_eq(run_epoch(a, ar, ea[e], NULL, NULL), 1000);
        ck_assert_int_eq(run_epoch(b, ar, eb[e], NULL, NULL), 1000);
        assert_permutation(ea[e], 1000);
        ck_assert_mem_eq(ea[e], eb[e], sizeof ea[e]); /* same seed, same order */
    }
    ck_assert(memcmp(ea[0], ea[1], sizeof ea[0]) != 0); /* a fresh order every epoch */
    run_epoch(c, ar, ec, NULL, NULL);
    ck_assert(memcmp(ea[0], ec, sizeof ec) != 0);      /* another seed, another order */
    int fixed = 0;
    for (int i = 0; i < 1000; i++) fixed += ea[0][i] == i;
    ck_assert_int_lt(fixed, 10);
    nb_loader_free(a);
    nb_loader_free(b);
    nb_loader_free(c);
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(y);
}
END_TEST

START_TEST(test_loader_order_matches_torch_randperm) {
    /* torch.Generator().manual_seed(s); torch.randperm(10, generator=g), twice (2 epochs) */
    static const int32_t want[3][2][10] = {
        {{4, 1, 7, 5, 3, 9, 0, 8, 6, 2}, {3, 9, 4, 2, 7, 8, 6, 0, 5, 1}},
        {{5, 6, 1, 2, 0, 8, 9, 3, 7, 4}, {2, 3, 1, 8, 9, 0, 6, 7, 4, 5}},
        {{5, 0, 3, 4, 1, 7, 9, 6, 8, 2}, {1, 8, 9, 5, 7, 4, 0, 3, 6, 2}}};
    const uint64_t seeds[3] = {0, 1, 7};
    nb_tensor *x, *y;
    make_indexed(10, &x, &y, false);
    nb_arena *ar = nb_arena_new(0);
    for (int s = 0; s < 3; s++) {
        nb_loader_opts o = nb_loader_defaults();
        o.seed = seeds[s];
        o.batch_size = 3;
        nb_loader *ld = nb_loader_new(x, y, &o);
        int32_t got[10];
        for (int e = 0; e < 2; e++) {
            ck_assert_int_eq(run_epoch(ld, ar, got, NULL, NULL), 10);
            for (int i = 0; i < 10; i++)
                ck_assert_msg(got[i] == want[s][e][i], "seed %d epoch %d: position %d is %d, torch has %d",
                              (int)seeds[s], e, i, got[i], want[s][e][i]);
        }
        nb_loader_free(ld);
    }
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(y);
}
END_TEST

START_TEST(test_loader_no_shuffle_and_flatten) {
    nb_mnist m;
    ck_assert_int_eq(nb_mnist_load(fixture("tiny"), "t10k", &m), NB_OK);
    nb_arena *ar = nb_arena_new(0);
    nb_loader_opts o = nb_loader_defaults();
    o.shuffle = false;
    o.batch_size = 16;
    nb_loader *ld = nb_loader_new(m.images, m.labels, &o);
    nb_tensor *x, *y;
    ck_assert_int_eq(nb_loader_next(ld, ar, &x, &y), 1);
    ck_assert_int_eq(x->ndim, 3); /* [B, 28, 28] */
    ck_assert_int_eq(x->shape[0], 16);
    ck_assert_int_eq(x->shape[1], 28);
    ck_assert_int_eq(x->shape[2], 28);
    for (int i = 0; i < 16; i++) ck_assert_int_eq(nb_i32(y)[i], nb_u8(m.labels)[i]); /* uint8 labels */
    for (int64_t j = 0; j < 16 * 784; j++) ck_assert_float_eq(nb_f32(x)[j], (float)nb_u8(m.images)[j] / 255.0f);
    nb_loader_free(ld);
    o.flatten = true;
    ld = nb_loader_new(m.images, m.labels, &o);
    ck_assert_int_eq(nb_loader_next(ld, ar, &x, &y), 1);
    ck_assert_int_eq(x->ndim, 2); /* [B, 784] */
    ck_assert_int_eq(x->shape[1], 784);
    nb_loader_free(ld);
    nb_arena_free(ar);
    nb_mnist_free(&m);
}
END_TEST

START_TEST(test_loader_batch_sizes_and_drop_last) {
    nb_tensor *x, *y;
    make_indexed(10, &x, &y, true); /* uint8 labels, served as int32 */
    nb_arena *ar = nb_arena_new(0);
    int64_t sizes[16];
    int nb;
    int32_t ids[10];
    nb_loader_opts o = nb_loader_defaults();
    o.batch_size = 4;
    nb_loader *ld = nb_loader_new(x, y, &o);
    ck_assert_int_eq(nb_loader_num_batches(ld), 3);
    ck_assert_int_eq(nb_loader_num_samples(ld), 10);
    for (int e = 0; e < 3; e++) { /* every epoch: 4, 4, 2, then the end */
        ck_assert_int_eq(run_epoch(ld, ar, ids, sizes, &nb), 10);
        ck_assert_int_eq(nb, 3);
        ck_assert_int_eq(sizes[0], 4);
        ck_assert_int_eq(sizes[1], 4);
        ck_assert_int_eq(sizes[2], 2);
        assert_permutation(ids, 10);
    }
    nb_loader_free(ld);

    o.drop_last = true;
    ld = nb_loader_new(x, y, &o);
    ck_assert_int_eq(nb_loader_num_batches(ld), 2);
    ck_assert_int_eq(nb_loader_num_samples(ld), 8);
    ck_assert_int_eq(run_epoch(ld, ar, ids, sizes, &nb), 8);
    ck_assert_int_eq(nb, 2);
    ck_assert_int_eq(sizes[1], 4);
    nb_loader_free(ld);

    o.batch_size = 64; /* bigger than the data */
    ld = nb_loader_new(x, y, &o);
    ck_assert_int_eq(nb_loader_num_batches(ld), 0);
    ck_assert_int_eq(run_epoch(ld, ar, ids, sizes, &nb), 0);
    nb_loader_free(ld);
    o.drop_last = false;
    ld = nb_loader_new(x, y, &o);
    ck_assert_int_eq(run_epoch(ld, ar, ids, sizes, &nb), 10);
    ck_assert_int_eq(nb, 1);
    nb_loader_free(ld);
    o.batch_size = INT64_MAX; /* one batch of everything (n + batch - 1 overflowed: no batch) */
    ld = nb_loader_new(x, y, &o);
    ck_assert_int_eq(nb_loader_num_batches(ld), 1);
    ck_assert_int_eq(run_epoch(ld, ar, ids, sizes, &nb), 10);
    ck_assert_int_eq(nb, 1);
    nb_loader_free(ld);

    o.batch_size = 5; /* exact division: no partial batch, drop_last changes nothing */
    o.drop_last = true;
    ld = nb_loader_new(x, y, &o);
    ck_assert_int_eq(run_epoch(ld, ar, ids, sizes, &nb), 10);
    ck_assert_int_eq(nb, 2);
    nb_loader_free(ld);
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(y);
}
END_TEST

START_TEST(test_loader_int32_labels_passthrough) {
    nb_tensor *x, *y;
    make_indexed(300, &x, &y, false); /* int32 labels up to 299: not truncated to a byte */
    nb_arena *ar = nb_arena_new(0);
    nb_loader_opts o = nb_loader_defaults();
    o.shuffle = false;
    o.batch_size = 300;
    nb_loader *ld = nb_loader_new(x, y, &o);
    int32_t ids[300];
    ck_assert_int_eq(run_epoch(ld, ar, ids, NULL, NULL), 300);
    for (int i = 0; i < 300; i++) ck_assert_int_eq(ids[i], i);
    nb_loader_free(ld);
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(y);
}
END_TEST

/* Serve n batches from ld (crossing epoch ends), writing labels to out; returns the count. */
static int64_t serve(nb_loader *ld, nb_arena *ar, int batches, int32_t *out) {
    int64_t k = 0;
    nb_tensor *x, *y;
    for (int b = 0; b < batches;) {
        int rc = nb_loader_next(ld, ar, &x, &y);
        ck_assert_int_ge(rc, 0);
        if (rc == 0) {
            out[k++] = -1; /* epoch boundary */
            continue;
        }
        for (int64_t i = 0; i < y->numel; i++) out[k++] = nb_i32(y)[i];
        nb_arena_reset(ar);
        b++;
    }
    return k;
}

START_TEST(test_loader_state_resumes) {
    nb_tensor *x, *y;
    make_indexed(50, &x, &y, false);
    nb_arena *ar = nb_arena_new(0);
    nb_loader_opts o = nb_loader_defaults();
    o.batch_size = 8; /* 7 batches per epoch, the last one of 2 */
    o.seed = 11;
    /* stop at several points: fresh, mid first epoch, after the last batch of an epoch
     * (before and after the 0 that ends it), early and mid second and third epochs */
    struct { int batches; bool eat_end; } stops[] = {{0, false}, {3, false}, {7, false}, {7, true},
                                                      {8, false}, {16, false}};
    for (int s = 0; s < 6; s++) {
        nb_loader *ref = nb_loader_new(x, y, &o);
        static int32_t head[1000], tail_ref[1000], tail[1000];
        serve(ref, ar, stops[s].batches, head);
        if (stops[s].eat_end) {
            nb_tensor *bx, *by;
            ck_assert_int_eq(nb_loader_next(ref, ar, &bx, &by), 0);
        }
        nb_loader_state st = nb_loader_get_state(ref);
        int64_t nref = serve(ref, ar, 20, tail_ref);
        /* a new loader (other seed even) restored from the state serves the same sequence */
        nb_loader_opts o2 = o;
        o2.seed = 999;
        nb_loader *ld = nb_loader_new(x, y, &o2);
        ck_assert_int_eq(nb_loader_set_state(ld, &st), NB_OK);
        nb_loader_state st2 = nb_loader_get_state(ld);
        ck_assert_int_eq(st2.epoch, st.epoch);
        ck_assert_int_eq(st2.batch, st.batch);
        ck_assert_mem_eq(&st2.rng, &st.rng, sizeof st.rng);
        int64_t n = serve(ld, ar, 20, tail);
        ck_assert_int_eq(n, nref);
        ck_assert_msg(memcmp(tail, tail_ref, (size_t)n * sizeof *tail) == 0, "stop %d: resumed order differs", s);
        nb_loader_free(ld);
        nb_loader_free(ref);
    }
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(y);
}
END_TEST

START_TEST(test_loader_errors) {
    nb_tensor *x, *y;
    make_indexed(10, &x, &y, false);
    nb_loader_opts o = nb_loader_defaults();
    o.batch_size = 0;
    nb_clear_error();
    ck_assert_ptr_null(nb_loader_new(x, y, &o));
    ck_assert_str_eq(nb_last_error(), "loader: batch_size should be a positive integer value, but got batch_size=0");
    o.batch_size = -3;
    ck_assert_ptr_null(nb_loader_new(x, y, &o));
    ck_assert_int_eq(nb_last_status(), NB_EINVAL);
    o.batch_size = 4;
    ck_assert_ptr_null(nb_loader_new(NULL, y, &o));
    ck_assert_int_eq(nb_last_status(), NB_EINVAL);
    nb_tensor *fx = nb_zeros(NULL, 2, (int64_t[]){10, 2});
    ck_assert_ptr_null(nb_loader_new(fx, y, &o));
    ck_assert_msg(strstr(nb_last_error(), "images must be uint8"), "%s", nb_last_error());
    nb_tensor *y9 = nb_empty(NULL, NB_INT32, 1, (int64_t[]){9});
    ck_assert_ptr_null(nb_loader_new(x, y9, &o));
    ck_assert_int_eq(nb_last_status(), NB_ESHAPE);
    ck_assert_str_eq(nb_last_error(), "loader: labels have shape [9], expected [10] (uint8 or int32)");
    ck_assert_ptr_null(nb_loader_new(x, fx, &o));
    ck_assert_int_eq(nb_last_status(), NB_ESHAPE);

    nb_loader *ld = nb_loader_new(x, y, NULL); /* NULL options: the defaults */
    ck_assert_ptr_nonnull(ld);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *bx, *by;
    ck_assert_int_eq(nb_loader_next(ld, NULL, &bx, &by), NB_EINVAL);
    ck_assert_int_eq(nb_loader_next(NULL, ar, &bx, &by), NB_EINVAL);
    /* a bad state is refused and changes nothing */
    ck_assert_int_eq(nb_loader_next(ld, ar, &bx, &by), 1);
    nb_loader_state before = nb_loader_get_state(ld);
    nb_loader_state bad = before;
    bad.batch = 5;
    ck_assert_int_eq(nb_loader_set_state(ld, &bad), NB_EINVAL);
    ck_assert_msg(strstr(nb_last_error(), "out of range"), "%s", nb_last_error());
    bad = before;
    bad.epoch = -1;
    ck_assert_int_eq(nb_loader_set_state(ld, &bad), NB_EINVAL);
    bad = before;
    bad.batch = -2;
    ck_assert_int_eq(nb_loader_set_state(ld, &bad), NB_EINVAL);
    ck_assert_int_eq(nb_loader_set_state(ld, NULL), NB_EINVAL);
    nb_loader_state after = nb_loader_get_state(ld);
    ck_assert_mem_eq(&before, &after, sizeof before);
    ck_assert_int_eq(nb_loader_num_batches(NULL), 0);
    nb_loader_free(ld);
    nb_loader_free(NULL);
    nb_arena_free(ar);
    nb_tensor_free(fx);
    nb_tensor_free(y9);
    nb_tensor_free(x);
    nb_tensor_free(y);
}
END_TEST

int main(void) {
    Suite *s = suite_create("data");
    TCase *idx = tcase_create("idx");
    tcase_add_test(idx, test_idx_tiny_fixtures);
    tcase_add_test(idx, test_idx_raw_and_gzip_identical);
    tcase_add_test(idx, test_mnist_load_gz_raw_and_default);
    tcase_add_test(idx, test_idx_other_ranks);
    tcase_add_test(idx, test_idx_missing_file);
    tcase_add_test(idx, test_idx_directory);
    tcase_add_test(idx, test_idx_empty_and_short);
    tcase_add_test(idx, test_idx_truncated_header);
    tcase_add_test(idx, test_idx_truncated_data);
    tcase_add_test(idx, test_idx_header_promises_too_much);
    tcase_add_test(idx, test_idx_trailing_data);
    tcase_add_test(idx, test_idx_garbage_and_bad_magic);
    tcase_add_test(idx, test_idx_wrong_dtype);
    tcase_add_test(idx, test_idx_bad_rank);
    tcase_add_test(idx, test_idx_corrupt_gzip);
    tcase_add_test(idx, test_mnist_mismatch);
    suite_add_tcase(s, idx);
    TCase *ld = tcase_create("loader");
    tcase_add_test(ld, test_loader_shuffle_is_seeded_permutation);
    tcase_add_test(ld, test_loader_order_matches_torch_randperm);
    tcase_add_test(ld, test_loader_no_shuffle_and_flatten);
    tcase_add_test(ld, test_loader_batch_sizes_and_drop_last);
    tcase_add_test(ld, test_loader_int32_labels_passthrough);
    tcase_add_test(ld, test_loader_state_resumes);
    tcase_add_test(ld, test_loader_errors);
    suite_add_tcase(s, ld);
    return run_suite(s) ? 1 : 0;
}
