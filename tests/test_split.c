/* test_split.c - split training steps (nb_batch_split): the gradients of one nb_backward over the
 * whole batch (up to the order of the float sums over the batch), the same bits on 1, 2 and 3
 * threads, accumulation into existing gradients, bfloat16 autocast in the parts, empty parts,
 * errors from a part, refused models, and no allocation in a steady-state step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

static nb_tensor *ce_sum(nb_arena *ar, nb_tensor *out, nb_tensor *y, void *user) {
    (void)user;
    nb_cross_entropy_opts co = nb_cross_entropy_defaults();
    co.reduction = NB_REDUCTION_SUM;
    return nb_cross_entropy(ar, out, y, &co);
}

/* 0: MLP, 1: LeNet-like conv net (on [B, 1, 8, 8]), 2: LSTM over 8 rows of 8 (on [B, 8, 8]). */
static nb_module *model(int kind, nb_rng *rng) {
    if (kind == 0)
        return nb_sequential(4, (nb_module *[]){nb_flatten_new(1, -1), nb_linear_new(64, 32, true, rng),
                                                nb_relu_new(), nb_linear_new(32, 5, true, rng)});
    if (kind == 1) {
        nb_conv_opts p1 = nb_conv_defaults();
        p1.padding[0] = p1.padding[1] = 1;
        return nb_sequential(6, (nb_module *[]){nb_conv2d_new(1, 4, 3, 3, &p1, true, rng), nb_relu_new(),
                                                nb_max_pool2d_new(2, 2, NULL), nb_flatten_new(1, -1),
                                                nb_linear_new(64, 16, true, rng), nb_linear_new(16, 5, true, rng)});
    }
    nb_rnn_opts o = nb_rnn_defaults();
    o.batch_first = true;
    return nb_sequential(3, (nb_module *[]){nb_lstm_new(8, 12, &o, rng), nb_select_new(1, -1),
                                            nb_linear_new(12, 5, true, rng)});
}

typedef struct run {
    float *grads;
    int64_t n;
    double loss;
} run;

/* Gradients after a split step (parts; 0: one nb_backward) on `threads` threads, twice: the
 * second step adds to the first (zero_grad(set_to_none=false) semantics). */
static run step(int kind, int parts, int threads, int64_t B, bool bf16) {
    ck_assert_int_eq(nb_set_num_threads(threads), NB_OK);
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_module *m = model(kind, &rng);
    nb_tensor *x = kind == 2 ? nb_uniform(NULL, 3, (int64_t[]){B, 8, 8}, -1, 1, &rng)
                             : nb_uniform(NULL, 4, (int64_t[]){B, 1, 8, 8}, -1, 1, &rng);
    nb_tensor *y = nb_empty(NULL, NB_INT32, 1, (int64_t[]){B});
    for (int64_t i = 0; i < B; i++) nb_i32(y)[i] = (int32_t)(i * 7 % 5);
    nb_arena *ar = nb_arena_new(0);
    if (bf16) nb_arena_set_autocast(ar, NB_BF16);
    nb_batch_split *s = parts ? nb_batch_split_new(m, parts) : NULL;
    ck_assert(!parts || s);
    run r = {0};
    for (int rep = 0; rep < 2; rep++) {
        nb_arena_reset(ar);
        if (s) {
            ck_assert_int_eq(nb_batch_split_step(s, ar, x, y, ce_sum, NULL, &r.loss), NB_OK);
        } else {
            nb_tensor *l = nb_cross_entropy(ar, nb_forward(m, ar, x), y, NULL);
            ck_assert_int_eq(nb_backward(l), NB_OK);
            r.loss = nb_item(l);
        }
    }
    r.n = nb_module_numel(m);
    r.grads = malloc(sizeof(float) * (size_t)r.n);
    float *at = r.grads;
    for (int i = 0; i < nb_module_num_params(m); i++) {
        nb_tensor *p = nb_module_param(m, i).tensor;
        ck_assert_ptr_nonnull(p->grad);
        memcpy(at, p->grad->data, sizeof(float) * (size_t)p->numel);
        at += p->numel;
    }
    nb_batch_split_free(s);
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(y);
    nb_module_free(m);
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
    return r;
}

START_TEST(test_split_matches_whole_and_threads) {
    static const char *const kinds[3] = {"MLP", "conv net", "LSTM"};
    for (int kind = 0; kind < 3; kind++)
        for (int bf16 = 0; bf16 < 2; bf16++) {
            run whole = step(kind, 0, 1, 48, bf16);
            for (int parts = 2; parts <= 3; parts++) {
                run r1 = step(kind, parts, 1, 48, bf16);
                /* the same sums, grouped by part: float32 rounding apart */
                double scale = 0;
                for (int64_t i = 0; i < whole.n; i++) scale = fmax(scale, fabs(whole.grads[i]));
                char what[80];
                snprintf(what, sizeof what, "%s, %d parts%s vs whole", kinds[kind], parts, bf16 ? ", bf16" : "");
                assert_close(what, r1.grads, whole.grads, whole.n, 0, 1e-5 * scale);
                ck_assert_double_eq_tol(r1.loss, whole.loss, 1e-5);
                for (int t = 2; t <= 3; t++) { /* the parts, not the threads, fix the bits */
                    run rt = step(kind, parts, t, 48, bf16);
                    ck_assert_msg(!memcmp(rt.grads, r1.grads, sizeof(float) * (size_t)r1.n),
                                  "%s, %d parts: %d threads differ from 1", kinds[kind], parts, t);
                    ck_assert(rt.loss == r1.loss);
                    free(rt.grads);
                }
                free(r1.grads);
            }
            free(whole.grads);
        }
}
END_TEST

/* A batch smaller than the parts leaves parts empty; a batch of one runs in part 0 alone. */
START_TEST(test_split_small_batches) {
    for (int64_t B = 1; B <= 3; B++) {
        run whole = step(0, 0, 1, B, false), r = step(0, 4, 2, B, false);
        double scale = 0;
        for (int64_t i = 0; i < whole.n; i++) scale = fmax(scale, fabs(whole.grads[i]));
        assert_close("small batch", r.grads, whole.grads, whole.n, 0, 1e-5 * scale);
        free(whole.grads);
        free(r.grads);
    }
}
END_TEST

static nb_tensor *bad_loss(nb_arena *ar, nb_tensor *out, nb_tensor *y, void *user) {
    (void)y;
    int *calls = user;
    __atomic_add_fetch(calls, 1, __ATOMIC_SEQ_CST);
    return nb_reshape(ar, out, 1, (int64_t[]){7}); /* fails: a shape error in the part */
}

static nb_tensor *vector_loss(nb_arena *ar, nb_tensor *out, nb_tensor *y, void *user) {
    (void)ar, (void)y, (void)user;
    return out; /* not one number */
}

START_TEST(test_split_errors_and_refusals) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    ck_assert_ptr_null(nb_batch_split_new(NULL, 2));
    nb_module *m = model(0, &rng);
    ck_assert_ptr_null(nb_batch_split_new(m, 0));
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "parts must be 1..64"));
    ck_assert_ptr_null(nb_batch_split_new(nb_module_child(m, 1), 2));
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "root"));
    nb_batch_split *s = nb_batch_split_new(m, 2);
    ck_assert_ptr_nonnull(s);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_zeros(ar, 4, (int64_t[]){6, 1, 8, 8}), *y = nb_empty(ar, NB_INT32, 1, (int64_t[]){6});
    memset(y->data, 0, 6 * sizeof(int32_t));
    int calls = 0;
    ck_assert_int_eq(nb_set_num_threads(2), NB_OK);
    ck_assert_int_eq(nb_batch_split_step(s, ar, x, y, bad_loss, &calls, NULL), NB_ESHAPE);
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "reshape")); /* a worker's error, on this thread */
    ck_assert_int_eq(calls, 2);
    ck_assert_int_eq(nb_batch_split_step(s, ar, x, y, vector_loss, NULL, NULL), NB_EINVAL);
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "one number"));
    nb_tensor *y5 = nb_empty(ar, NB_INT32, 1, (int64_t[]){5});
    ck_assert_int_eq(nb_batch_split_step(s, ar, x, y5, ce_sum, NULL, NULL), NB_ESHAPE);
    ck_assert_int_eq(nb_batch_split_step(s, ar, x, y, NULL, NULL, NULL), NB_EINVAL);
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
    nb_batch_split_free(s);
    nb_batch_split_free(NULL);
    nb_arena_free(ar);
    nb_module_free(m);
    /* batch norm and dropout couple rows / draw random numbers */
    nb_module *bn = nb_sequential(2, (nb_module *[]){nb_linear_new(4, 4, true, &rng), nb_batchnorm1d_new(4, NULL)});
    ck_assert_ptr_null(nb_batch_split_new(bn, 2));
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "BatchNorm1d"));
    nb_module *dr = nb_sequential(2, (nb_module *[]){nb_linear_new(4, 4, true, &rng), nb_dropout_new(0.5f, &rng)});
    ck_assert_ptr_null(nb_batch_split_new(dr, 2));
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "Dropout"));
    nb_rnn_opts o = nb_rnn_defaults();
    o.num_layers = 2;
    o.dropout = 0.2f;
    o.dropout_rng = &rng;
    nb_module *rn = nb_lstm_new(4, 4, &o, &rng);
    ck_assert_ptr_null(nb_batch_split_new(rn, 2));
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "recurrent layer with dropout"));
    nb_module_free(bn);
    nb_module_free(dr);
    nb_module_free(rn);
}
END_TEST

int main(void) {
    Suite *s = suite_create("split");
    TCase *tc = tcase_create("split");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_split_matches_whole_and_threads);
    tcase_add_test(tc, test_split_small_batches);
    tcase_add_test(tc, test_split_errors_and_refusals);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
