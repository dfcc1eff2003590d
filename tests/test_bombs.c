/* test_bombs.c - decompression bombs: a small gzip'd file whose header promises (and whose
 * stream really holds) hundreds of MiB is refused, or read, with memory bounded by what the
 * caller expects, never by what the file promises.
 *
 * Memory is measured by nabla's allocator hooks (installed in main, before anything else):
 * they track the bytes live and their peak, so each test asserts the peak of one call. The
 * bombs are gzip members of 1 MiB of zeros (about 1 KiB each) repeated: a reader accepts
 * concatenated members, and a 0.5 MiB file holds 512 MiB. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "common.h"
#include "peak_alloc.h"

#define MiB ((size_t)1 << 20)
/* What a refused or streamed bomb may cost: buffers, zlib's state, the parsed header. */
#define SMALL (2 * MiB)

/* ---- writing bombs ----------------------------------------------------------------------- */
/* n bytes of zeros as gzip members of at most 1 MiB (the first one compressed once). */
static void put_zeros(FILE *f, size_t n) {
    static unsigned char *member;
    static size_t mlen;
    if (!member) {
        unsigned char *zeros = calloc(1, MiB);
        char *buf;
        FILE *m = open_memstream(&buf, &mlen);
        ck_assert(gz_member(m, zeros, MiB, 9));
        fclose(m);
        member = (unsigned char *)buf;
        free(zeros);
    }
    for (; n >= MiB; n -= MiB) fwrite(member, 1, mlen, f);
    if (n) {
        unsigned char *zeros = calloc(1, n);
        ck_assert(gz_member(f, zeros, n, 9));
        free(zeros);
    }
}

/* A checkpoint: the container header (JSON of root, taken and freed) in one member, then
 * data_len bytes of zeros. Returns the file's size. */
static long write_ckpt(const char *path, cJSON *root, size_t data_len) {
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t n = strlen(json), padded = n + (8 - n % 8) % 8;
    unsigned char *hdr = malloc(8 + padded);
    for (int i = 0; i < 8; i++) hdr[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(hdr + 8, json, n);
    memset(hdr + 8 + n, ' ', padded - n);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert(gz_member(f, hdr, 8 + padded, 9));
    put_zeros(f, data_len);
    long size = ftell(f);
    fclose(f);
    free(hdr);
    free(json);
    return size;
}

/* Add tensor {"dtype", "shape", "data_offsets": [at, at + bytes]} to root; returns its end. */
static size_t add_tensor(cJSON *root, const char *name, const char *dtype, int ndim,
                         const int64_t *shape, size_t at) {
    cJSON *e = cJSON_AddObjectToObject(root, name), *s = cJSON_AddArrayToObject(e, "shape");
    cJSON_AddStringToObject(e, "dtype", dtype);
    size_t bytes = !strcmp(dtype, "F32") || !strcmp(dtype, "I32") ? 4 : !strcmp(dtype, "U8") ? 1 : 8;
    for (int d = 0; d < ndim; d++) {
        cJSON_AddItemToArray(s, cJSON_CreateNumber((double)shape[d]));
        bytes *= (size_t)shape[d];
    }
    cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
    cJSON_AddItemToArray(o, cJSON_CreateNumber((double)at));
    cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(at + bytes)));
    return at + bytes;
}

/* __metadata__ of a nabla file ("checkpoint" or "weights"), plus extra key/value pairs. */
static cJSON *nabla_meta(cJSON *root, const char *content) {
    cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(m, "format", "nabla-checkpoint");
    cJSON_AddStringToObject(m, "format_version", "1");
    cJSON_AddStringToObject(m, "content", content);
    return m;
}

/* Sequential(Linear(4, 3)): "0.weight" [3, 4], "0.bias" [3]. */
static nb_module *small_model(void) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    return nb_sequential(1, (nb_module *[]){nb_linear_new(4, 3, true, &rng)});
}

static const char *tmp_file(const char *name) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", temp_dir(), name);
    return path;
}

/* ---- checkpoints ------------------------------------------------------------------------- */
/* "0.weight" promises 512 MiB against the model's [3, 4]: refused from the header, before a
 * byte of tensor data is inflated. */
START_TEST(test_ckpt_bomb_wrong_shape) {
    const char *path = tmp_file("bomb.ckpt");
    cJSON *root = cJSON_CreateObject();
    nabla_meta(root, "weights");
    size_t at = add_tensor(root, "0.weight", "F32", 2, (int64_t[]){131072, 1024}, 0);
    at = add_tensor(root, "0.bias", "F32", 1, (int64_t[]){3}, at);
    long size = write_ckpt(path, root, at);
    nb_module *m = small_model();
    size_t base = peak_begin();
    ck_assert_int_eq(nb_weights_load(path, m), NB_ESHAPE);
    size_t used = peak_since(base);
    printf("checkpoint bomb (%ld bytes, promises %zu MiB, wrong shape): peak %zu KiB\n", size, at / MiB, used >> 10);
    ck_assert_str_eq(nb_last_error(), "checkpoint: tensor \"0.weight\" has shape [131072,1024], model expects [3,4]");
    ck_assert_msg(used < SMALL, "refusing the bomb took %zu bytes", used);
    nb_module_free(m);
}
END_TEST

/* The model's tensors are right, and a 512 MiB optimizer tensor follows: a weights-only load
 * ignores that section, inflating it through a small buffer to check the gzip stream. */
START_TEST(test_ckpt_bomb_ignored_section) {
    const char *path = tmp_file("bomb.ckpt");
    cJSON *root = cJSON_CreateObject();
    nabla_meta(root, "weights");
    size_t at = add_tensor(root, "0.weight", "F32", 2, (int64_t[]){3, 4}, 0);
    at = add_tensor(root, "0.bias", "F32", 1, (int64_t[]){3}, at);
    at = add_tensor(root, "optimizer.state.0.exp_avg", "F32", 2, (int64_t[]){131072, 1024}, at);
    long size = write_ckpt(path, root, at);
    nb_module *m = small_model();
    size_t base = peak_begin();
    ck_assert_msg(nb_weights_load(path, m) == NB_OK, "%s", nb_last_error());
    size_t used = peak_since(base);
    printf("checkpoint bomb (%ld bytes, promises %zu MiB, in a section the load skips): peak %zu KiB\n",
           size, at / MiB, used >> 10);
    ck_assert_msg(used < SMALL, "the load took %zu bytes", used);
    ck_assert_float_eq(nb_f32(nb_module_find(m, "0.weight"))[5], 0.0f);
    nb_module_free(m);
}
END_TEST

/* The same file cut 1 MiB short: the skipped section is still read to the end of the stream,
 * so the load fails, naming the truncation, and the model is unchanged. */
START_TEST(test_ckpt_skipped_section_truncated) {
    const char *path = tmp_file("cut.ckpt");
    cJSON *root = cJSON_CreateObject();
    nabla_meta(root, "weights");
    size_t at = add_tensor(root, "0.weight", "F32", 2, (int64_t[]){3, 4}, 0);
    at = add_tensor(root, "0.bias", "F32", 1, (int64_t[]){3}, at);
    at = add_tensor(root, "optimizer.state.0.exp_avg", "F32", 1, (int64_t[]){1 << 20}, at);
    write_ckpt(path, root, at - MiB);
    nb_module *m = small_model();
    float w5 = nb_f32(nb_module_find(m, "0.weight"))[5];
    ck_assert_int_eq(nb_weights_load(path, m), NB_EFORMAT);
    ck_assert_msg(strstr(nb_last_error(), "file is truncated: the header promises 4194364 bytes of "
                         "tensor data, the file has 3145788"), "%s", nb_last_error());
    ck_assert_float_eq(nb_f32(nb_module_find(m, "0.weight"))[5], w5);
    nb_module_free(m);
}
END_TEST

/* The same tensor as the optimizer state of parameter 0 when an optimizer is loaded: a state
 * tensor larger than all the optimizer's parameters together is refused from the header. */
START_TEST(test_ckpt_bomb_optimizer_state) {
    const char *path = tmp_file("bomb.ckpt");
    nb_module *m = small_model();
    nb_tensor *p[2];
    nb_module_parameters(m, p, 2);
    nb_adam_opts ao = nb_adam_defaults();
    nb_optim *opt = nb_adam(p, 2, &ao);
    /* the optimizer metadata of a real checkpoint, its exp_avg swapped for the bomb */
    nb_train_state st = {.model = m, .optim = opt};
    const char *real = tmp_file("real.ckpt");
    ck_assert_int_eq(nb_checkpoint_save(real, &st), NB_OK);
    nb_ckpt *c = nb_ckpt_open(real);
    ck_assert_ptr_nonnull(c);
    cJSON *root = cJSON_CreateObject(), *meta = nabla_meta(root, "checkpoint");
    cJSON *oj = cJSON_Parse(nb_ckpt_meta(c, "optimizer"));
    cJSON *state = cJSON_GetObjectItem(oj, "state"), *s0 = cJSON_AddObjectToObject(state, "0");
    cJSON_AddItemToObject(cJSON_AddObjectToObject(s0, "step"), "tensor", cJSON_CreateString("optimizer.state.0.step"));
    cJSON_AddItemToObject(cJSON_AddObjectToObject(s0, "exp_avg"), "tensor", cJSON_CreateString("optimizer.state.0.exp_avg"));
    cJSON_AddItemToObject(cJSON_AddObjectToObject(s0, "exp_avg_sq"), "tensor", cJSON_CreateString("optimizer.state.0.exp_avg_sq"));
    char *otxt = cJSON_PrintUnformatted(oj);
    cJSON_AddStringToObject(meta, "optimizer", otxt);
    cJSON_AddStringToObject(meta, "position", "{\"epoch\": 1, \"step\": 1}");
    free(otxt);
    cJSON_Delete(oj);
    nb_ckpt_close(c);
    size_t at = add_tensor(root, "0.weight", "F32", 2, (int64_t[]){3, 4}, 0);
    at = add_tensor(root, "0.bias", "F32", 1, (int64_t[]){3}, at);
    at = add_tensor(root, "optimizer.state.0.step", "F64", 0, NULL, at);
    at = add_tensor(root, "optimizer.state.0.exp_avg_sq", "F32", 2, (int64_t[]){3, 4}, at);
    at = add_tensor(root, "optimizer.state.0.exp_avg", "F32", 2, (int64_t[]){131072, 1024}, at);
    long size = write_ckpt(path, root, at);
    size_t base = peak_begin();
    ck_assert_int_ne(nb_checkpoint_load(path, &st), NB_OK);
    size_t used = peak_since(base);
    printf("checkpoint bomb (%ld bytes, promises %zu MiB, as optimizer state): peak %zu KiB\n", size,
           at / MiB, used >> 10);
    ck_assert_str_eq(nb_last_error(), "checkpoint: tensor \"optimizer.state.0.exp_avg\" has shape "
                     "[131072,1024], larger than all the optimizer's parameters together (15 elements)");
    ck_assert_msg(used < SMALL, "refusing the bomb took %zu bytes", used);
    nb_optim_free(opt);
    nb_module_free(m);
}
END_TEST

/* Many optimizer state tensors, each within the bound, together far beyond it: 64 tensors the
 * size of a 1M-parameter layer (256 MiB) are refused once they pass 4 times the optimizer's
 * parameters (what Adam with amsgrad holds, 3 per parameter, fits). */
START_TEST(test_ckpt_bomb_many_states) {
    const char *path = tmp_file("many.ckpt");
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *m = nb_sequential(1, (nb_module *[]){nb_linear_new(1024, 1024, false, &rng)});
    nb_tensor *p[1];
    nb_module_parameters(m, p, 1);
    nb_adam_opts ao = nb_adam_defaults();
    nb_optim *opt = nb_adam(p, 1, &ao);
    nb_train_state st = {.model = m, .optim = opt};
    const char *real = tmp_file("real1.ckpt");
    ck_assert_int_eq(nb_checkpoint_save(real, &st), NB_OK);
    nb_ckpt *c = nb_ckpt_open(real);
    cJSON *root = cJSON_CreateObject(), *meta = nabla_meta(root, "checkpoint");
    cJSON *oj = cJSON_Parse(nb_ckpt_meta(c, "optimizer"));
    nb_ckpt_close(c);
    cJSON *s0 = cJSON_AddObjectToObject(cJSON_GetObjectItem(oj, "state"), "0");
    size_t at = add_tensor(root, "0.weight", "F32", 2, (int64_t[]){1024, 1024}, 0);
    for (int k = 0; k < 64; k++) {
        char name[64], tensor[96];
        snprintf(name, sizeof name, "x%d", k);
        snprintf(tensor, sizeof tensor, "optimizer.state.0.%s", name);
        cJSON_AddItemToObject(cJSON_AddObjectToObject(s0, name), "tensor", cJSON_CreateString(tensor));
        at = add_tensor(root, tensor, "F32", 2, (int64_t[]){1024, 1024}, at);
    }
    char *otxt = cJSON_PrintUnformatted(oj);
    cJSON_AddStringToObject(meta, "optimizer", otxt);
    free(otxt);
    cJSON_Delete(oj);
    long size = write_ckpt(path, root, at);
    size_t base = peak_begin();
    ck_assert_int_eq(nb_checkpoint_load(path, &st), NB_EFORMAT);
    size_t used = peak_since(base);
    printf("checkpoint bomb (%ld bytes, promises %zu MiB, as 64 optimizer states of a 4 MiB layer): "
           "peak %zu KiB\n", size, at / MiB, used >> 10);
    ck_assert_str_eq(nb_last_error(), "checkpoint: the optimizer and scheduler tensors of the file hold "
                     "more than 4 times as many elements as all the optimizer's parameters (1048576)");
    ck_assert_msg(used < 24 * MiB, "refusing the bomb took %zu bytes", used);
    nb_optim_free(opt);
    nb_module_free(m);
}
END_TEST

/* Opening reads the header only: metadata of a bomb costs nothing, and nb_ckpt_data_bytes says
 * what reading its tensors would cost before anyone does. */
START_TEST(test_ckpt_bomb_open) {
    const char *path = tmp_file("bomb.ckpt");
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(nabla_meta(root, "weights"), "user.note", "hello");
    size_t at = add_tensor(root, "big", "F32", 2, (int64_t[]){131072, 1024}, 0);
    write_ckpt(path, root, at);
    size_t base = peak_begin();
    nb_ckpt *c = nb_ckpt_open(path);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(nb_ckpt_meta(c, "user.note"), "hello");
    ck_assert_uint_eq(nb_ckpt_data_bytes(c), 512 * MiB);
    size_t used = peak_since(base);
    printf("checkpoint bomb opened (metadata only): peak %zu KiB\n", used >> 10);
    ck_assert_msg(used < SMALL, "opening took %zu bytes", used);
    nb_ckpt_close(c);
}
END_TEST

/* ---- IDX ----------------------------------------------------------------------------------- */
/* An IDX file (gzip'd): the header, then `zeros` bytes of zeros. */
static void write_idx(const char *path, int rank, const uint32_t *dims, size_t zeros) {
    unsigned char hdr[4 + 16] = {0, 0, 8, (unsigned char)rank};
    for (int d = 0; d < rank; d++)
        for (int b = 0; b < 4; b++) hdr[4 + 4 * d + b] = (unsigned char)(dims[d] >> (24 - 8 * b));
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert(gz_member(f, hdr, 4 + 4 * (size_t)rank, 9));
    put_zeros(f, zeros);
    fclose(f);
}

/* dir with train-images (n_img images of 28x28) and train-labels (n_lab labels), each file
 * holding all the data its header promises. */
static const char *write_split(uint32_t n_img, uint32_t n_lab) {
    static char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s", temp_dir());
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(path, 3, (uint32_t[]){n_img, 28, 28}, (size_t)n_img * 784);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    write_idx(path, 1, (uint32_t[]){n_lab}, n_lab);
    return dir;
}

/* 524288 images (392 MiB) against 100 labels: the counts of the two headers disagree, so
 * neither body is read. */
START_TEST(test_idx_images_bomb) {
    const char *dir = write_split(524288, 100);
    nb_mnist m;
    size_t base = peak_begin();
    ck_assert_int_eq(nb_mnist_load(dir, "train", &m), NB_EFORMAT);
    size_t used = peak_since(base);
    printf("IDX images bomb (promises 392 MiB): peak %zu KiB\n", used >> 10);
    ck_assert_msg(strstr(nb_last_error(), "has 524288 images but") && strstr(nb_last_error(), "has 100 labels"),
                  "%s", nb_last_error());
    ck_assert_msg(used < SMALL, "refusing the bomb took %zu bytes", used);
}
END_TEST

/* 100 images against 2^29 labels (512 MiB): the same, the other way round. */
START_TEST(test_idx_labels_bomb) {
    const char *dir = write_split(100, 1u << 29);
    nb_mnist m;
    size_t base = peak_begin();
    ck_assert_int_eq(nb_mnist_load(dir, "train", &m), NB_EFORMAT);
    size_t used = peak_since(base);
    printf("IDX labels bomb (promises 512 MiB): peak %zu KiB\n", used >> 10);
    ck_assert_msg(strstr(nb_last_error(), "has 536870912 labels"), "%s", nb_last_error());
    ck_assert_msg(used < SMALL, "refusing the bomb took %zu bytes", used);
}
END_TEST

/* A header beyond the size limit is refused before its body, naming the total. */
START_TEST(test_idx_over_limit) {
    const char *path = tmp_file("big-idx3-ubyte.gz");
    write_idx(path, 3, (uint32_t[]){1u << 31, 28, 28}, 4 * MiB);
    size_t base = peak_begin();
    ck_assert_ptr_null(nb_idx_load(path));
    size_t used = peak_since(base);
    ck_assert_msg(strstr(nb_last_error(), "2147483648 x 28 x 28 = 1683627180032 bytes") &&
                  strstr(nb_last_error(), "more than the limit of 4294967296"), "%s", nb_last_error());
    ck_assert_msg(used < SMALL, "refusing took %zu bytes", used);
}
END_TEST

int main(void) {
    if (nb_set_allocator(peak_malloc, peak_realloc, peak_free) != NB_OK) return 1;
    setvbuf(stdout, NULL, _IOLBF, 0); /* the figures, from forked test processes too */
    Suite *s = suite_create("bombs");
    TCase *tc = tcase_create("bombs");
    tcase_add_test(tc, test_ckpt_bomb_wrong_shape);
    tcase_add_test(tc, test_ckpt_bomb_ignored_section);
    tcase_add_test(tc, test_ckpt_skipped_section_truncated);
    tcase_add_test(tc, test_ckpt_bomb_optimizer_state);
    tcase_add_test(tc, test_ckpt_bomb_many_states);
    tcase_add_test(tc, test_ckpt_bomb_open);
    tcase_add_test(tc, test_idx_images_bomb);
    tcase_add_test(tc, test_idx_labels_bomb);
    tcase_add_test(tc, test_idx_over_limit);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
