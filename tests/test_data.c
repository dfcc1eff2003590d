/* test_data.c - the IDX reader (valid files, raw vs gzip, and every kind of bad file), the
 * datasets (images, arrays, subsets, random_split, standardisation, a custom type), the
 * samplers (goldens from PyTorch: random_split, DistributedSampler, SubsetRandomSampler) and
 * the DataLoader (seeded shuffle, batch sizes, drop_last, exact resume, any dataset + sampler).
 * Fixtures: datasets/tiny/ (tools/gen_tiny_idx.py); bad files are written here, byte by byte;
 * goldens: tests/golden/data.nbg.gz (tools/golden/gen_data.py). */
#include <math.h>
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

/* ---- datasets ------------------------------------------------------------------------------ */

START_TEST(test_dataset_arrays_borrowed) {
    /* 5 samples of [2, 3], labels 0..2: TensorDataset(x, y), no copy */
    float x[5 * 6];
    int32_t y[5] = {2, 0, 1, 2, 1};
    for (int i = 0; i < 30; i++) x[i] = (float)i;
    nb_dataset *ds = nb_dataset_arrays(x, 3, (int64_t[]){5, 2, 3}, y, NB_CLASSIFY, 0);
    ck_assert_msg(ds != NULL, "%s", nb_last_error());
    ck_assert_int_eq(nb_dataset_len(ds), 5);
    ck_assert_int_eq(ds->ndim, 2);
    ck_assert_int_eq(ds->shape[0], 2);
    ck_assert_int_eq(ds->features, 6);
    ck_assert_int_eq(ds->classes, 3); /* the largest label + 1 */
    ck_assert_str_eq(ds->ops->type, "arrays");
    float bx[12];
    int32_t by[2];
    ck_assert_int_eq(nb_dataset_get(ds, (int64_t[]){4, 1}, 2, bx, by), NB_OK);
    for (int j = 0; j < 6; j++) {
        ck_assert_float_eq(bx[j], 24 + j);
        ck_assert_float_eq(bx[6 + j], 6 + j);
    }
    ck_assert_int_eq(by[0], 1);
    ck_assert_int_eq(by[1], 0);
    x[24] = -7; /* borrowed: the caller's array is what is served */
    ck_assert_int_eq(nb_dataset_get(ds, (int64_t[]){4}, 1, bx, by), NB_OK);
    ck_assert_float_eq(bx[0], -7);
    /* an index out of range is refused */
    nb_clear_error();
    ck_assert_int_eq(nb_dataset_get(ds, (int64_t[]){5}, 1, bx, by), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "dataset_get: index 5 is out of range for a dataset of 5 samples");
    nb_dataset_free(ds);
    /* labels are checked against a given class count */
    ck_assert_ptr_null(nb_dataset_arrays(x, 2, (int64_t[]){5, 6}, y, NB_CLASSIFY, 2));
    ck_assert_str_eq(nb_last_error(), "dataset_arrays: label 2 of sample 0 is not a class index 0..1");
    y[3] = -1;
    ck_assert_ptr_null(nb_dataset_arrays(x, 2, (int64_t[]){5, 6}, y, NB_CLASSIFY, 0));
    ck_assert_msg(strstr(nb_last_error(), "label -1 of sample 3"), "%s", nb_last_error());
    /* regression targets [N, 2]; unlabeled */
    float t[10];
    for (int i = 0; i < 10; i++) t[i] = 0.5f * (float)i;
    ds = nb_dataset_arrays(x, 2, (int64_t[]){5, 6}, t, NB_REGRESS, 2);
    ck_assert_ptr_nonnull(ds);
    ck_assert_int_eq(ds->targets, 2);
    float bt[4];
    ck_assert_int_eq(nb_dataset_get(ds, (int64_t[]){3, 0}, 2, bx, bt), NB_OK);
    ck_assert_float_eq(bt[0], 3.0f);
    ck_assert_float_eq(bt[1], 3.5f);
    ck_assert_float_eq(bt[2], 0.0f);
    nb_dataset_free(ds);
    ds = nb_dataset_arrays(x, 2, (int64_t[]){5, 6}, NULL, NB_UNLABELED, 0);
    ck_assert_ptr_nonnull(ds);
    ck_assert_int_eq(nb_dataset_get(ds, (int64_t[]){2}, 1, bx, NULL), NB_OK);
    nb_dataset_free(ds);
    ck_assert_ptr_null(nb_dataset_arrays(x, 1, (int64_t[]){5}, t, NB_REGRESS, 1)); /* no sample shape */
    ck_assert_ptr_null(nb_dataset_arrays(NULL, 2, (int64_t[]){5, 6}, t, NB_REGRESS, 1));
    ck_assert_ptr_null(nb_dataset_arrays(x, 2, (int64_t[]){5, 6}, t, NB_REGRESS, 0)); /* no target width */
    nb_dataset_free(NULL);
}
END_TEST

START_TEST(test_dataset_tensors_and_images) {
    nb_tensor *x = nb_arange(NULL, 0, 12, 1);
    nb_tensor *x2 = nb_from_array(NULL, NB_FLOAT32, 2, (int64_t[]){4, 3}, x->data);
    nb_tensor *yc = nb_from_array(NULL, NB_INT32, 1, (int64_t[]){4}, (int32_t[]){0, 1, 0, 1});
    nb_tensor *yr = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){4}, (float[]){1, 2, 3, 4});
    nb_dataset *a = nb_dataset_tensors(x2, yc, 0), *b = nb_dataset_tensors(x2, yr, 0);
    ck_assert_msg(a && b, "%s", nb_last_error());
    ck_assert_int_eq(a->task, NB_CLASSIFY);
    ck_assert_int_eq(a->classes, 2);
    ck_assert_int_eq(b->task, NB_REGRESS);
    ck_assert_int_eq(b->targets, 1);
    ck_assert_ptr_null(nb_dataset_tensors(x, yc, 0)); /* x must be [N, ...] */
    ck_assert_ptr_null(nb_dataset_tensors(x2, x, 0)); /* 12 targets for 4 samples */
    ck_assert_int_eq(nb_last_status(), NB_ESHAPE);
    nb_dataset_free(a);
    nb_dataset_free(b);
    /* images: uint8, scaled /255 */
    nb_mnist m;
    ck_assert_int_eq(nb_mnist_load(fixture("tiny"), "t10k", &m), NB_OK);
    nb_dataset *im = nb_dataset_images(m.images, m.labels, 10);
    ck_assert_ptr_nonnull(im);
    ck_assert_int_eq(im->ndim, 2);
    ck_assert_int_eq(im->features, 784);
    static float px[784];
    int32_t lab;
    ck_assert_int_eq(nb_dataset_get(im, (int64_t[]){7}, 1, px, &lab), NB_OK);
    ck_assert_int_eq(lab, nb_u8(m.labels)[7]);
    for (int j = 0; j < 784; j++) ck_assert_float_eq(px[j], (float)nb_u8(m.images)[7 * 784 + j] / 255.0f);
    nb_dataset_free(im);
    ck_assert_ptr_null(nb_dataset_images(m.images, m.labels, 5)); /* labels up to 9 */
    ck_assert_msg(strstr(nb_last_error(), "is not a class index 0..4"), "%s", nb_last_error());
    nb_mnist_free(&m);
    nb_dataset *mn = nb_dataset_mnist(fixture("tiny"), "train");
    ck_assert_ptr_nonnull(mn);
    ck_assert_int_eq(mn->len, 100);
    ck_assert_int_eq(mn->classes, 10);
    nb_dataset_free(mn);
    ck_assert_ptr_null(nb_dataset_mnist("/nonexistent", "train"));
    ck_assert_int_eq(nb_last_status(), NB_EIO);
    nb_tensor_free(x);
    nb_tensor_free(x2);
    nb_tensor_free(yc);
    nb_tensor_free(yr);
}
END_TEST

/* A custom dataset type: sample i is [i, -i], label i % 3 (the PyTorch Dataset subclass). */
typedef struct ramp {
    nb_dataset base;
    int freed;
} ramp;

static int ramp_gather(const nb_dataset *ds, const int64_t *idx, int64_t n, float *x, void *y) {
    (void)ds;
    for (int64_t i = 0; i < n; i++) {
        x[2 * i] = (float)idx[i];
        x[2 * i + 1] = -(float)idx[i];
        ((int32_t *)y)[i] = (int32_t)(idx[i] % 3);
    }
    return NB_OK;
}

static int ramp_frees;
static void ramp_free(nb_dataset *ds) { ramp_frees += ((ramp *)ds)->freed + 1; }

static const nb_dataset_ops ramp_ops = {"ramp", ramp_gather, NULL, ramp_free};

START_TEST(test_dataset_custom_subset_and_split) {
    nb_dataset *ds = nb_dataset_alloc(sizeof(ramp), &ramp_ops, 10, 1, (int64_t[]){2}, NB_CLASSIFY, 3);
    ck_assert_ptr_nonnull(ds);
    ck_assert_ptr_null(nb_dataset_alloc(sizeof(ramp), &ramp_ops, 10, 1, (int64_t[]){2}, NB_CLASSIFY, 0));
    ck_assert_ptr_null(nb_dataset_alloc(4, &ramp_ops, 10, 1, (int64_t[]){2}, NB_CLASSIFY, 3));
    ck_assert_ptr_null(nb_dataset_alloc(sizeof(ramp), &ramp_ops, 10, 0, (int64_t[]){2}, NB_CLASSIFY, 3));
    /* Subset(ds, [7, 2, 9]); a subset of it */
    nb_dataset *s = nb_dataset_subset(ds, (int64_t[]){7, 2, 9}, 3);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->len, 3);
    ck_assert_int_eq(s->classes, 3);
    nb_dataset *ss = nb_dataset_subset(s, (int64_t[]){2, 0}, 2);
    float x[4];
    int32_t y[2];
    ck_assert_int_eq(nb_dataset_get(ss, (int64_t[]){0, 1}, 2, x, y), NB_OK);
    ck_assert_float_eq(x[0], 9);
    ck_assert_float_eq(x[1], -9);
    ck_assert_float_eq(x[2], 7);
    ck_assert_int_eq(y[0], 0);
    ck_assert_int_eq(y[1], 1);
    ck_assert_ptr_null(nb_dataset_subset(s, (int64_t[]){3}, 1));
    ck_assert_str_eq(nb_last_error(), "dataset_subset: index 3 (at 0) is out of range for a dataset of 3 samples");
    nb_dataset_free(ss);
    nb_dataset_free(s);
    /* random_split: parts partition the dataset */
    nb_rng g;
    nb_rng_seed(&g, 42);
    nb_dataset *parts[3];
    ck_assert_int_eq(nb_random_split(ds, (int64_t[]){3, 3, 4}, 3, &g, parts), NB_OK);
    int seen[10] = {0};
    for (int p = 0; p < 3; p++) {
        float px[8];
        int32_t py[4];
        int64_t ids[4] = {0, 1, 2, 3};
        ck_assert_int_eq(nb_dataset_get(parts[p], ids, parts[p]->len, px, py), NB_OK);
        for (int i = 0; i < parts[p]->len; i++) seen[(int)px[2 * i]]++;
    }
    for (int i = 0; i < 10; i++) ck_assert_int_eq(seen[i], 1);
    for (int p = 0; p < 3; p++) nb_dataset_free(parts[p]);
    nb_clear_error();
    ck_assert_int_eq(nb_random_split(ds, (int64_t[]){3, 3}, 2, &g, parts), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "Sum of input lengths does not equal the length of the input dataset!");
    ck_assert_int_eq(nb_random_split(ds, (int64_t[]){-1, 11}, 2, &g, parts), NB_EINVAL);
    ck_assert_int_eq(nb_random_split(ds, (int64_t[]){10}, 1, NULL, parts), NB_EINVAL);
    int64_t len[2];
    ck_assert_int_eq(nb_split_lengths(10, (double[]){0.5, 0.6}, 2, len), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "split_lengths: the fractions sum to 1.1, not 1");
    ck_assert_int_eq(nb_split_lengths(10, (double[]){1.5, -0.5}, 2, len), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "Fraction at index 0 is not between 0 and 1");
    ramp_frees = 0;
    nb_dataset_free(ds);
    ck_assert_int_eq(ramp_frees, 1);
}
END_TEST

START_TEST(test_dataset_standardize) {
    /* 4 samples of 3 features; feature 2 is constant (std 1, as StandardScaler) */
    float x[12] = {1, 10, 5, 2, 20, 5, 3, 30, 5, 4, 40, 5};
    nb_dataset *ds = nb_dataset_arrays(x, 2, (int64_t[]){4, 3}, NULL, NB_UNLABELED, 0);
    nb_dataset *first2 = nb_dataset_subset(ds, (int64_t[]){0, 1}, 2);
    float mean[3], std[3];
    ck_assert_int_eq(nb_dataset_fit_standardize(first2, mean, std), NB_OK); /* the training part only */
    ck_assert_float_eq(mean[0], 1.5f);
    ck_assert_float_eq(mean[1], 15.0f);
    ck_assert_float_eq(std[0], 0.5f); /* population std */
    ck_assert_float_eq(std[1], 5.0f);
    ck_assert_float_eq(std[2], 1.0f);
    ck_assert_int_eq(nb_dataset_fit_standardize(ds, mean, std), NB_OK);
    ck_assert_float_eq(mean[1], 25.0f);
    ck_assert_double_eq_tol(std[1], sqrt(125.0), 1e-5);
    ck_assert_int_eq(nb_dataset_normalize(ds, mean, std), NB_OK);
    float b[6];
    ck_assert_int_eq(nb_dataset_get(first2, (int64_t[]){1, 0}, 2, b, NULL), NB_OK); /* the parts see it */
    ck_assert_float_eq(b[0], (2.0f - 2.5f) / std[0]);
    ck_assert_float_eq(b[1], (20.0f - 25.0f) / std[1]);
    ck_assert_float_eq(b[2], 0.0f);
    ck_assert_float_eq(b[3], (1.0f - 2.5f) / std[0]);
    ck_assert_int_eq(nb_dataset_normalize(ds, NULL, NULL), NB_OK);
    ck_assert_int_eq(nb_dataset_get(ds, (int64_t[]){3}, 1, b, NULL), NB_OK);
    ck_assert_float_eq(b[1], 40.0f);
    std[0] = 0;
    ck_assert_int_eq(nb_dataset_normalize(ds, mean, std), NB_EINVAL);
    ck_assert_int_eq(nb_dataset_normalize(ds, mean, NULL), NB_EINVAL);
    nb_dataset *none = nb_dataset_subset(ds, NULL, 0);
    ck_assert_int_eq(nb_dataset_fit_standardize(none, mean, std), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "dataset_fit_standardize: the dataset is empty");
    nb_dataset_free(none);
    nb_dataset_free(first2);
    nb_dataset_free(ds);
}
END_TEST

/* ---- samplers: PyTorch's index lists ------------------------------------------------------- */

static const golden *GD;

/* An index list against a golden entry "<name>" or "<name>.digest" (see gen_data.py). */
static void expect_list(const char *name, const int64_t *got, int64_t n) {
    char dn[128];
    snprintf(dn, sizeof dn, "%s.digest", name);
    if (golden_has(GD, dn)) {
        const gold_entry *e = golden_get(GD, dn);
        const int32_t *d = e->data;
        ck_assert_msg(n == d[0], "%s: %lld indices, PyTorch has %d", name, (long long)n, d[0]);
        int64_t h = 0;
        for (int64_t i = 0; i < n; i++) {
            if (i < 32) ck_assert_msg(got[i] == d[2 + i], "%s[%lld] is %lld, PyTorch has %d", name, (long long)i,
                                      (long long)got[i], d[2 + i]);
            h = (h * 1000003 + got[i] + 1) % 2147483647;
        }
        ck_assert_msg(h == d[1], "%s: the list differs from PyTorch's (digest)", name);
        return;
    }
    const gold_entry *e = golden_get(GD, name);
    const int32_t *w = e->data;
    ck_assert_msg(n == e->numel, "%s: %lld indices, PyTorch has %lld", name, (long long)n, (long long)e->numel);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == w[i], "%s[%lld] is %lld, PyTorch has %d", name, (long long)i, (long long)got[i], w[i]);
}

/* Sample i of an unlabeled [n, 1] dataset is i: a part's samples are its indices. */
static int64_t part_indices(const nb_dataset *p, int64_t *out) {
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)(p->len + 1));
    float *v = malloc(sizeof(float) * (size_t)(p->len + 1));
    for (int64_t i = 0; i < p->len; i++) pos[i] = i;
    ck_assert_int_eq(nb_dataset_get(p, pos, p->len, v, NULL), NB_OK);
    for (int64_t i = 0; i < p->len; i++) out[i] = (int64_t)v[i];
    free(pos);
    free(v);
    return p->len;
}

START_TEST(test_random_split_golden) {
    GD = golden_load("data.nbg.gz");
    static float ramp[60000];
    for (int i = 0; i < 60000; i++) ramp[i] = (float)i;
    nb_rng gen;
    nb_dataset *base = NULL, *parts[4] = {NULL}, *prev0 = NULL;
    int cases = 0;
    for (int c = 0;; c++) {
        char name[64];
        snprintf(name, sizeof name, "split.%d.args", c);
        if (!golden_has(GD, name)) break;
        const int32_t *args = golden_get(GD, name)->data;
        snprintf(name, sizeof name, "split.%d.in", c);
        const gold_entry *in = golden_get(GD, name);
        snprintf(name, sizeof name, "split.%d.fraction", c);
        bool frac = ((const int32_t *)golden_get(GD, name)->data)[0];
        snprintf(name, sizeof name, "split.%d.lengths", c);
        const gold_entry *want_len = golden_get(GD, name);
        int k = (int)in->numel;
        int64_t n = args[0], len[4];
        if (frac) ck_assert_int_eq(nb_split_lengths(n, in->data, k, len), NB_OK);
        else
            for (int i = 0; i < k; i++) len[i] = (int64_t)((const double *)in->data)[i];
        for (int i = 0; i < k; i++)
            ck_assert_msg(len[i] == ((const int32_t *)want_len->data)[i], "case %d: part %d has %lld samples, "
                          "PyTorch %d", c, i, (long long)len[i], ((const int32_t *)want_len->data)[i]);
        nb_dataset *ds;
        if (args[2]) { /* chained: the previous case's first part, same generator */
            ds = prev0;
        } else {
            for (int i = 0; i < 4; i++) nb_dataset_free(parts[i]), parts[i] = NULL;
            nb_dataset_free(prev0);
            nb_dataset_free(base);
            prev0 = NULL;
            base = nb_dataset_arrays(ramp, 2, (int64_t[]){n, 1}, NULL, NB_UNLABELED, 0);
            ds = base;
            nb_rng_seed(&gen, (uint64_t)args[1]);
        }
        nb_dataset *mine[4];
        ck_assert_msg(nb_random_split(ds, len, k, &gen, mine) == NB_OK, "%s", nb_last_error());
        /* positions within the case's dataset (a chained case splits a part: map back) */
        int64_t *all = malloc(sizeof(int64_t) * (size_t)(n + 1)), *pos_of = NULL, at = 0;
        if (args[2]) {
            pos_of = malloc(sizeof(int64_t) * 60000);
            int64_t *ids = malloc(sizeof(int64_t) * (size_t)(n + 1));
            part_indices(ds, ids);
            for (int64_t i = 0; i < n; i++) pos_of[ids[i]] = i;
            free(ids);
        }
        for (int i = 0; i < k; i++) at += part_indices(mine[i], all + at);
        if (pos_of)
            for (int64_t i = 0; i < n; i++) all[i] = pos_of[all[i]];
        snprintf(name, sizeof name, "split.%d.indices", c);
        expect_list(name, all, n);
        free(all);
        free(pos_of);
        if (args[2]) {
            for (int i = 0; i < k; i++) nb_dataset_free(mine[i]);
        } else {
            prev0 = mine[0];
            for (int i = 1; i < k; i++) parts[i] = mine[i];
        }
        cases++;
    }
    for (int i = 0; i < 4; i++) nb_dataset_free(parts[i]);
    nb_dataset_free(prev0);
    nb_dataset_free(base);
    ck_assert_int_ge(cases, 18);
    fprintf(stderr, "random_split: %d cases match PyTorch\n", cases);
    golden_free((golden *)GD);
}
END_TEST

START_TEST(test_distributed_sampler_golden) {
    GD = golden_load("data.nbg.gz");
    int cases = 0, lists = 0;
    for (int c = 0;; c++) {
        char name[64];
        snprintf(name, sizeof name, "dist.%d.args", c);
        if (!golden_has(GD, name)) break;
        const int32_t *a = golden_get(GD, name)->data;
        snprintf(name, sizeof name, "dist.%d.indices", c);
        const gold_entry *want = golden_get(GD, name);
        int64_t R = a[1], per = want->shape[1];
        for (int64_t r = 0; r < R; r++) {
            nb_distributed_opts o = nb_distributed_defaults();
            o.num_replicas = R;
            o.rank = r;
            o.drop_last = a[2];
            o.shuffle = a[3];
            o.seed = (uint64_t)a[4];
            nb_sampler *s = nb_distributed_sampler(a[0], &o);
            ck_assert_msg(s != NULL, "%s", nb_last_error());
            ck_assert_int_eq(nb_sampler_len(s), per);
            ck_assert_int_eq(nb_sampler_set_epoch(s, a[5]), NB_OK);
            int64_t got[1100];
            for (int rep = 0; rep < 2; rep++) { /* the same epoch gives the same order again */
                ck_assert_int_eq(nb_sampler_indices(s, got), NB_OK);
                for (int64_t j = 0; j < per; j++)
                    ck_assert_msg(got[j] == ((const int32_t *)want->data)[r * per + j],
                                  "n %d, %d replicas, drop_last %d, shuffle %d, seed %d, epoch %d: rank %lld "
                                  "index %lld is %lld, PyTorch %d", a[0], a[1], a[2], a[3], a[4], a[5], (long long)r,
                                  (long long)j, (long long)got[j], ((const int32_t *)want->data)[r * per + j]);
            }
            nb_sampler_free(s);
            lists++;
        }
        cases++;
    }
    ck_assert_int_ge(cases, 560);
    fprintf(stderr, "DistributedSampler: %d cases (%d rank lists) match PyTorch\n", cases, lists);
    nb_clear_error();
    nb_distributed_opts o = nb_distributed_defaults();
    o.num_replicas = 4;
    o.rank = 4;
    ck_assert_ptr_null(nb_distributed_sampler(10, &o));
    ck_assert_str_eq(nb_last_error(), "Invalid rank 4, rank should be in the interval [0, 3]");
    o.num_replicas = 0;
    ck_assert_ptr_null(nb_distributed_sampler(10, &o));
    ck_assert_ptr_null(nb_distributed_sampler(-1, NULL));
    golden_free((golden *)GD);
}
END_TEST

START_TEST(test_subset_random_sampler_golden) {
    GD = golden_load("data.nbg.gz");
    int cases = 0;
    static int64_t idx[60000], got[2 * 60000];
    for (int c = 0;; c++) {
        char name[64];
        snprintf(name, sizeof name, "subset.%d.args", c);
        if (!golden_has(GD, name)) break;
        const int32_t *a = golden_get(GD, name)->data;
        snprintf(name, sizeof name, "subset.%d.in", c);
        int64_t n;
        if (golden_has(GD, name)) {
            const gold_entry *in = golden_get(GD, name);
            n = in->numel;
            for (int64_t i = 0; i < n; i++) idx[i] = ((const int32_t *)in->data)[i];
        } else { /* a digest: the golden script's long subsets are range(n) */
            n = ((const int32_t *)golden_get(GD, strcat(name, ".digest"))->data)[0];
            for (int64_t i = 0; i < n; i++) idx[i] = i;
            name[strlen(name) - 7] = '\0';
            expect_list(name, idx, n);
        }
        bool is_range = true;
        for (int64_t i = 0; i < n; i++) is_range &= idx[i] == i;
        nb_sampler *s = nb_subset_random_sampler(idx, n, (uint64_t)a[0]);
        /* over range(n) it is the random sampler (and the loader's own shuffle) */
        nb_sampler *r = is_range ? nb_random_sampler(n, (uint64_t)a[0]) : NULL;
        for (int e = 0; e < a[1]; e++) {
            ck_assert_int_eq(nb_sampler_indices(s, got + e * n), NB_OK);
            if (r) {
                static int64_t alt[60000];
                ck_assert_int_eq(nb_sampler_indices(r, alt), NB_OK);
                ck_assert_mem_eq(alt, got + e * n, sizeof(int64_t) * (size_t)n);
            }
        }
        snprintf(name, sizeof name, "subset.%d.orders", c);
        expect_list(name, got, a[1] * n);
        nb_sampler_free(s);
        nb_sampler_free(r);
        cases++;
    }
    ck_assert_int_ge(cases, 6);
    fprintf(stderr, "SubsetRandomSampler: %d cases match PyTorch\n", cases);
    ck_assert_ptr_null(nb_subset_random_sampler((int64_t[]){1, -2}, 2, 0));
    nb_sampler *q = nb_sequential_sampler(3);
    int64_t o[3];
    ck_assert_int_eq(nb_sampler_indices(q, o), NB_OK);
    ck_assert(o[0] == 0 && o[1] == 1 && o[2] == 2);
    ck_assert_int_eq(nb_sampler_set_epoch(q, 5), NB_OK); /* ignored by non-distributed samplers */
    nb_sampler_free(q);
    nb_sampler_free(NULL);
    ck_assert_int_eq(nb_sampler_len(NULL), 0);
    golden_free((golden *)GD);
}
END_TEST

/* ---- the loader over any dataset and sampler ------------------------------------------------ */

/* interleave k: a batch's samples 0, k, 2k, ... come first, then 1, k+1, ...: its k slices of
 * consecutive rows are what a DistributedSampler over the same order gives k processes */
START_TEST(test_loader_interleave) {
    float x[40], t[20];
    for (int i = 0; i < 20; i++) x[2 * i] = (float)i, x[2 * i + 1] = 0.0f, t[i] = (float)i;
    nb_dataset *ds = nb_dataset_arrays(x, 2, (int64_t[]){20, 2}, t, NB_REGRESS, 1);
    nb_arena *ar = nb_arena_new(0);
    nb_loader_opts o = nb_loader_defaults();
    o.batch_size = 8;
    o.seed = 3;
    int64_t order[20];
    nb_loader *plain = nb_loader_over(ds, NULL, &o);
    o.interleave = 2;
    nb_loader *il = nb_loader_over(ds, NULL, &o);
    ck_assert_ptr_nonnull(plain);
    ck_assert_ptr_nonnull(il);
    for (int b = 0; b < 3; b++) { /* 8, 8 and a last batch of 4 */
        nb_tensor *px, *py, *ix, *iy;
        ck_assert_int_eq(nb_loader_next(plain, ar, &px, &py), 1);
        ck_assert_int_eq(nb_loader_next(il, ar, &ix, &iy), 1);
        int64_t B = px->shape[0], r = 0;
        ck_assert_int_eq(ix->shape[0], B);
        for (int64_t i = 0; i < B; i++) order[i] = (int64_t)nb_f32(px)[2 * i];
        for (int p = 0; p < 2; p++)
            for (int64_t i = p; i < B; i += 2, r++) {
                ck_assert_float_eq(nb_f32(ix)[2 * r], (float)order[i]);
                ck_assert_float_eq(nb_f32(iy)[r], (float)order[i]);
            }
    }
    nb_loader_free(il);
    o.interleave = 65;
    ck_assert_ptr_null(nb_loader_over(ds, NULL, &o));
    ck_assert_str_eq(nb_last_error(), "loader: interleave must be 0..64, got 65");
    nb_loader_free(plain);
    nb_arena_free(ar);
    nb_dataset_free(ds);
}
END_TEST

START_TEST(test_loader_over_dataset_and_sampler) {
    /* 20 samples [i, 2i], regression target i/2: the loader serves [B, 2] and [B, 1] */
    float x[40], t[20];
    for (int i = 0; i < 20; i++) x[2 * i] = (float)i, x[2 * i + 1] = 2.0f * (float)i, t[i] = 0.5f * (float)i;
    nb_dataset *ds = nb_dataset_arrays(x, 2, (int64_t[]){20, 2}, t, NB_REGRESS, 1);
    nb_arena *ar = nb_arena_new(0);
    nb_loader_opts o = nb_loader_defaults();
    o.batch_size = 8;
    /* a distributed shard: rank 1 of 3, epochs set by hand as in PyTorch */
    nb_distributed_opts d = nb_distributed_defaults();
    d.num_replicas = 3;
    d.rank = 1;
    d.seed = 4;
    nb_sampler *s = nb_distributed_sampler(20, &d);
    nb_loader *ld = nb_loader_over(ds, s, &o);
    ck_assert_ptr_nonnull(ld);
    ck_assert_int_eq(nb_loader_num_samples(ld), 7);
    ck_assert_int_eq(nb_loader_num_batches(ld), 1);
    ck_assert_ptr_eq(nb_loader_dataset(ld), ds);
    int64_t want[2][7];
    for (int e = 0; e < 2; e++) {
        nb_sampler_set_epoch(s, e);
        nb_sampler *ref = nb_distributed_sampler(20, &d);
        nb_sampler_set_epoch(ref, e);
        nb_sampler_indices(ref, want[e]);
        nb_sampler_free(ref);
        nb_tensor *bx, *by;
        ck_assert_int_eq(nb_loader_next(ld, ar, &bx, &by), 1);
        ck_assert_int_eq(bx->shape[0], 7);
        ck_assert_int_eq(by->dtype, NB_FLOAT32);
        ck_assert_int_eq(by->ndim, 2);
        ck_assert_int_eq(by->shape[1], 1);
        for (int i = 0; i < 7; i++) {
            ck_assert_float_eq(nb_f32(bx)[2 * i], (float)want[e][i]);
            ck_assert_float_eq(nb_f32(by)[i], 0.5f * (float)want[e][i]);
        }
        ck_assert_int_eq(nb_loader_next(ld, ar, &bx, &by), 0);
    }
    ck_assert(memcmp(want[0], want[1], sizeof want[0]) != 0);
    /* resume mid-epoch from a saved state: the same shard order comes back */
    nb_loader_free(ld);
    o.batch_size = 3;
    ld = nb_loader_over(ds, s, &o);
    nb_sampler_set_epoch(s, 9);
    nb_tensor *bx, *by;
    ck_assert_int_eq(nb_loader_next(ld, ar, &bx, &by), 1);
    nb_loader_state st = nb_loader_get_state(ld);
    float rest[4];
    ck_assert_int_eq(nb_loader_next(ld, ar, &bx, &by), 1);
    rest[0] = nb_f32(by)[0];
    nb_sampler *s2 = nb_distributed_sampler(20, &d); /* a fresh process: epoch 0 until restored */
    nb_loader *ld2 = nb_loader_over(ds, s2, &o);
    ck_assert_int_eq(nb_loader_set_state(ld2, &st), NB_OK);
    ck_assert_int_eq(nb_loader_next(ld2, ar, &bx, &by), 1);
    ck_assert_float_eq(nb_f32(by)[0], rest[0]);
    nb_loader_free(ld2);
    nb_sampler_free(s2);
    nb_loader_free(ld);
    nb_sampler_free(s);
    /* a subset sampler whose indices do not fit the dataset is refused */
    nb_sampler *big = nb_subset_random_sampler((int64_t[]){3, 25}, 2, 0);
    ck_assert_ptr_null(nb_loader_over(ds, big, &o));
    ck_assert_str_eq(nb_last_error(), "loader: the sampler gives indices up to 25, the dataset has 20 samples");
    nb_sampler_free(big);
    /* unlabeled data: y is NULL; flatten keeps [B, features] */
    nb_dataset *u = nb_dataset_arrays(x, 3, (int64_t[]){10, 2, 2}, NULL, NB_UNLABELED, 0);
    o.flatten = true;
    o.shuffle = false;
    ld = nb_loader_over(u, NULL, &o);
    ck_assert_int_eq(nb_loader_next(ld, ar, &bx, &by), 1);
    ck_assert_ptr_null(by);
    ck_assert_int_eq(bx->ndim, 2);
    ck_assert_int_eq(bx->shape[1], 4);
    ck_assert_float_eq(nb_f32(bx)[4], 2.0f); /* sequential */
    nb_loader_free(ld);
    o.flatten = false;
    ld = nb_loader_over(u, NULL, &o);
    ck_assert_int_eq(nb_loader_next(ld, ar, &bx, &by), 1);
    ck_assert_int_eq(bx->ndim, 3);
    nb_loader_free(ld);
    ck_assert_ptr_null(nb_loader_over(NULL, NULL, &o));
    nb_dataset_free(u);
    nb_dataset_free(ds);
    nb_arena_free(ar);
}
END_TEST

/* nb_loader_new (images + labels) and nb_loader_over(nb_dataset_images) with its own random
 * sampler serve the same batches, bit for bit, and save the same state. */
START_TEST(test_loader_new_is_loader_over_images) {
    nb_mnist m;
    ck_assert_int_eq(nb_mnist_load(fixture("tiny"), "train", &m), NB_OK);
    nb_dataset *ds = nb_dataset_images(m.images, m.labels, 0);
    nb_loader_opts o = nb_loader_defaults();
    o.batch_size = 16;
    o.seed = 3;
    o.flatten = true;
    nb_loader *a = nb_loader_new(m.images, m.labels, &o), *b = nb_loader_over(ds, NULL, &o);
    nb_sampler *rs = nb_random_sampler(100, 3);
    nb_loader *c = nb_loader_over(ds, rs, &o);
    nb_arena *ar = nb_arena_new(0);
    for (int k = 0; k < 20; k++) {
        nb_tensor *xa, *ya, *xb, *yb, *xc, *yc;
        int ra = nb_loader_next(a, ar, &xa, &ya), rb = nb_loader_next(b, ar, &xb, &yb);
        int rc = nb_loader_next(c, ar, &xc, &yc);
        ck_assert_int_eq(ra, rb);
        ck_assert_int_eq(ra, rc);
        if (ra == 1) {
            ck_assert_mem_eq(xa->data, xb->data, sizeof(float) * (size_t)xa->numel);
            ck_assert_mem_eq(xa->data, xc->data, sizeof(float) * (size_t)xa->numel);
            ck_assert_mem_eq(ya->data, yc->data, sizeof(int32_t) * (size_t)ya->numel);
        }
        nb_loader_state sa = nb_loader_get_state(a), sc = nb_loader_get_state(c);
        ck_assert_mem_eq(&sa, &sc, sizeof sa);
    }
    nb_loader_free(a);
    nb_loader_free(b);
    nb_loader_free(c);
    nb_sampler_free(rs);
    nb_dataset_free(ds);
    nb_arena_free(ar);
    nb_mnist_free(&m);
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
    tcase_add_test(ld, test_loader_over_dataset_and_sampler);
    tcase_add_test(ld, test_loader_interleave);
    tcase_add_test(ld, test_loader_new_is_loader_over_images);
    suite_add_tcase(s, ld);
    TCase *ds = tcase_create("dataset");
    tcase_add_test(ds, test_dataset_arrays_borrowed);
    tcase_add_test(ds, test_dataset_tensors_and_images);
    tcase_add_test(ds, test_dataset_custom_subset_and_split);
    tcase_add_test(ds, test_dataset_standardize);
    suite_add_tcase(s, ds);
    TCase *sm = tcase_create("sampler");
    tcase_add_test(sm, test_random_split_golden);
    tcase_add_test(sm, test_distributed_sampler_golden);
    tcase_add_test(sm, test_subset_random_sampler_golden);
    suite_add_tcase(s, sm);
    return run_suite(s) ? 1 : 0;
}
