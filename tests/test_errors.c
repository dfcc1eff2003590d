/* test_errors.c - the acceptance list for bad input, at the library level: each mistake gets a
 * clear message (PyTorch's own where PyTorch has one), a NULL or negative status, no crash, and
 * nothing half-changed. The CLI side (unknown flags, bad values, bad files through --data) is
 * in test_cli.c; every kind of malformed IDX file is in test_data.c. */
#include <math.h>
#include <string.h>
#include "common.h"

#define expect_error(call_is_error, status, msg)                                                   \
    do {                                                                                           \
        nb_clear_error();                                                                          \
        ck_assert_msg((call_is_error), "no error for: %s", #call_is_error);                         \
        ck_assert_msg(nb_last_status() == (status), "status %d (%s), expected %d", nb_last_status(), \
                      nb_last_error(), (status));                                                  \
        ck_assert_msg(strstr(nb_last_error(), (msg)) != NULL, "message '%s' lacks '%s'",            \
                      nb_last_error(), (msg));                                                     \
    } while (0)

/* ---- data files --------------------------------------------------------------------------- */

START_TEST(test_bad_files) {
    nb_mnist m;
    expect_error(nb_mnist_load("/nonexistent", "train", &m) == NB_EIO, NB_EIO,
                 "cannot open /nonexistent/train-images-idx3-ubyte: No such file or directory");
    const char *dir = temp_dir();
    char p[4200];
    snprintf(p, sizeof p, "%s/bad.idx", dir);
    FILE *f = fopen(p, "wb");
    fputs("garbage, not an IDX file", f);
    fclose(f);
    expect_error(nb_idx_load(p) == NULL, NB_EFORMAT, "bad magic");
    unsigned char hdr[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3};
    f = fopen(p, "wb");
    fwrite(hdr, 1, sizeof hdr, f);
    fclose(f);
    expect_error(nb_idx_load(p) == NULL, NB_EFORMAT, "truncated: header promises 1568 data bytes, file has 3");
}
END_TEST

/* ---- wrong shapes fed to a layer and a loss ------------------------------------------------- */

START_TEST(test_wrong_shapes) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *mlp = nb_sequential(3, (nb_module *[]){nb_linear_new(784, 16, true, &rng), nb_relu_new(),
                                                      nb_linear_new(16, 10, true, &rng)});
    ck_assert_ptr_nonnull(mlp);
    nb_tensor *w0 = nb_module_find(mlp, "0.weight");
    float before = nb_f32(w0)[5];
    nb_arena *ar = nb_arena_new(0);

    nb_tensor *x783 = nb_zeros(ar, 2, (int64_t[]){4, 783});
    expect_error(nb_forward(mlp, ar, x783) == NULL, NB_ESHAPE, "linear: input has 783 features, expected 784");
    /* images not flattened: [B, 28, 28] into Linear(784) */
    nb_tensor *img = nb_zeros(ar, 3, (int64_t[]){4, 28, 28});
    expect_error(nb_forward(mlp, ar, img) == NULL, NB_ESHAPE, "linear: input has 28 features, expected 784");
    /* an int32 tensor where floats are expected */
    nb_tensor *ints = nb_empty(ar, NB_INT32, 2, (int64_t[]){4, 784});
    nb_clear_error();
    ck_assert_ptr_null(nb_forward(mlp, ar, ints));
    ck_assert_int_ne(nb_last_status(), NB_OK);
    ck_assert_msg(strstr(nb_last_error(), "linear"), "%s", nb_last_error());
    /* a NULL input: NULL, and the message is left alone */
    nb_clear_error();
    ck_assert_ptr_null(nb_forward(mlp, ar, NULL));
    ck_assert_int_eq(nb_last_status(), NB_OK);

    /* losses: logits [4, 10] with a target of the wrong length, type or range */
    nb_tensor *x = nb_zeros(ar, 2, (int64_t[]){4, 784});
    nb_tensor *logits = nb_forward(mlp, ar, x);
    ck_assert_ptr_nonnull(logits);
    nb_tensor *y3 = nb_from_array(ar, NB_INT32, 1, (int64_t[]){3}, (int32_t[]){1, 2, 3});
    expect_error(nb_cross_entropy(ar, logits, y3, NULL) == NULL, NB_ESHAPE,
                 "cross_entropy: target has shape [3], expected [4]");
    nb_tensor *y10 = nb_from_array(ar, NB_INT32, 1, (int64_t[]){4}, (int32_t[]){1, 2, 10, 3});
    expect_error(nb_cross_entropy(ar, logits, y10, NULL) == NULL, NB_EINVAL,
                 "cross_entropy: target 10 is out of bounds for 10 classes (row 2)");
    nb_tensor *yneg = nb_from_array(ar, NB_INT32, 1, (int64_t[]){4}, (int32_t[]){1, -1, 2, 3});
    expect_error(nb_cross_entropy(ar, logits, yneg, NULL) == NULL, NB_EINVAL, "target -1 is out of bounds");
    nb_tensor *yf = nb_zeros(ar, 1, (int64_t[]){4});
    nb_clear_error();
    ck_assert_ptr_null(nb_cross_entropy(ar, logits, yf, NULL));
    ck_assert_int_ne(nb_last_status(), NB_OK);

    /* backward of a non-scalar */
    expect_error(nb_backward(logits) != NB_OK, NB_ESTATE,
                 "grad can be implicitly created only for scalar outputs");

    /* nothing changed: the weights are intact and the model still trains */
    ck_assert_float_eq(nb_f32(w0)[5], before);
    nb_tensor *y = nb_from_array(ar, NB_INT32, 1, (int64_t[]){4}, (int32_t[]){1, 2, 3, 4});
    nb_tensor *loss = nb_cross_entropy(ar, nb_forward(mlp, ar, x), y, NULL);
    ck_assert_ptr_nonnull(loss);
    ck_assert_int_eq(nb_backward(loss), NB_OK);
    ck_assert(isfinite(nb_item(loss)));
    nb_arena_free(ar);
    nb_module_free(mlp);
}
END_TEST

/* ---- invalid hyperparameters: PyTorch's messages, no optimizer ------------------------------ */

START_TEST(test_invalid_sgd) {
    nb_tensor *p = nb_zeros(NULL, 1, (int64_t[]){3});
    nb_requires_grad(p, true);
    nb_sgd_opts o = nb_sgd_defaults();
    o.lr = -0.1;
    expect_error(nb_sgd(&p, 1, &o) == NULL, NB_EINVAL, "Invalid learning rate: -0.1");
    o = nb_sgd_defaults();
    o.lr = 0.1;
    o.momentum = -0.5;
    expect_error(nb_sgd(&p, 1, &o) == NULL, NB_EINVAL, "Invalid momentum value: -0.5");
    o.momentum = 0.9;
    o.weight_decay = -1e-4;
    expect_error(nb_sgd(&p, 1, &o) == NULL, NB_EINVAL, "Invalid weight_decay value: -0.0001");
    o.weight_decay = 0;
    o.nesterov = true;
    o.dampening = 0.1; /* momentum with nesterov, but dampening != 0 */
    expect_error(nb_sgd(&p, 1, &o) == NULL, NB_EINVAL, "Nesterov momentum requires a momentum and zero dampening");
    o.dampening = 0;
    o.momentum = 0; /* nesterov without momentum */
    expect_error(nb_sgd(&p, 1, &o) == NULL, NB_EINVAL, "Nesterov momentum requires a momentum and zero dampening");
    o.momentum = 0.9; /* and the valid combination is accepted */
    nb_optim *opt = nb_sgd(&p, 1, &o);
    ck_assert_msg(opt != NULL, "%s", nb_last_error());
    nb_optim_free(opt);
    nb_tensor_free(p);
}
END_TEST

START_TEST(test_invalid_adam) {
    nb_tensor *p = nb_zeros(NULL, 1, (int64_t[]){3});
    nb_requires_grad(p, true);
    nb_adam_opts o = nb_adam_defaults();
    o.lr = -1e-3;
    expect_error(nb_adam(&p, 1, &o) == NULL, NB_EINVAL, "Invalid learning rate: -0.001");
    o = nb_adam_defaults();
    o.eps = -1e-8;
    expect_error(nb_adam(&p, 1, &o) == NULL, NB_EINVAL, "Invalid epsilon value: -1e-08");
    struct {
        double b0, b1;
        const char *want;
    } betas[] = {
        {1.0, 0.999, "Invalid beta parameter at index 0: 1.0"},
        {-0.1, 0.999, "Invalid beta parameter at index 0: -0.1"},
        {0.9, 1.0, "Invalid beta parameter at index 1: 1.0"},
        {0.9, 1.5, "Invalid beta parameter at index 1: 1.5"},
        {0.9, -0.5, "Invalid beta parameter at index 1: -0.5"},
    };
    for (size_t i = 0; i < sizeof betas / sizeof *betas; i++) {
        o = nb_adam_defaults();
        o.beta1 = betas[i].b0;
        o.beta2 = betas[i].b1;
        expect_error(nb_adam(&p, 1, &o) == NULL, NB_EINVAL, betas[i].want);
    }
    o = nb_adam_defaults();
    o.weight_decay = -0.01;
    expect_error(nb_adam(&p, 1, &o) == NULL, NB_EINVAL, "Invalid weight_decay value: -0.01");
    o = nb_adam_defaults();
    o.beta1 = 0.0; /* 0 is inside [0, 1) */
    nb_optim *opt = nb_adam(&p, 1, &o);
    ck_assert_msg(opt != NULL, "%s", nb_last_error());
    nb_optim_free(opt);
    nb_tensor_free(p);
}
END_TEST

START_TEST(test_invalid_loader_and_threads) {
    nb_tensor *x = nb_empty(NULL, NB_UINT8, 2, (int64_t[]){10, 4});
    nb_tensor *y = nb_empty(NULL, NB_UINT8, 1, (int64_t[]){10});
    nb_loader_opts o = nb_loader_defaults();
    o.batch_size = 0;
    expect_error(nb_loader_new(x, y, &o) == NULL, NB_EINVAL,
                 "batch_size should be a positive integer value, but got batch_size=0");
    expect_error(nb_set_num_threads(0) != NB_OK, NB_EINVAL, "set_num_threads");
    nb_tensor_free(x);
    nb_tensor_free(y);
}
END_TEST

int main(void) {
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_wrong_shapes);
    tcase_add_test(tc, test_invalid_sgd);
    tcase_add_test(tc, test_invalid_adam);
    tcase_add_test(tc, test_invalid_loader_and_threads);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
