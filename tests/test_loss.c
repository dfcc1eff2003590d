/* test_loss.c - cross_entropy, nll_loss and mse_loss: values and input gradients against
 * PyTorch goldens (tools/golden/gen_loss.py) for every reduction and option combination, a
 * gradcheck of each, and the validation errors. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "common.h"

enum { CE, NLL, MSE };

typedef struct loss_case {
    const char *name;
    int kind;
    nb_reduction red;
    int32_t ignore;
    double smoothing;
} loss_case;

#define PER_REDUCTION(red, RED)                                                              \
    {"ce_" #red, CE, RED, -100, 0}, {"ce_ignore_" #red, CE, RED, -100, 0},                   \
    {"ce_smooth_" #red, CE, RED, -100, 0.1}, {"ce_weight_" #red, CE, RED, -100, 0},          \
    {"ce_prob_" #red, CE, RED, -100, 0}, {"ce_all_" #red, CE, RED, 2, 0.2},                  \
    {"ce_prob_all_" #red, CE, RED, -100, 0.3}, {"nll_" #red, NLL, RED, -100, 0},             \
    {"nll_all_" #red, NLL, RED, 2, 0}, {"mse_" #red, MSE, RED, 0, 0}

static const loss_case cases[] = {
    PER_REDUCTION(mean, NB_REDUCTION_MEAN),
    PER_REDUCTION(sum, NB_REDUCTION_SUM),
    PER_REDUCTION(none, NB_REDUCTION_NONE),
    {"ce_ignore_custom", CE, NB_REDUCTION_MEAN, 2, 0},
    {"ce_smooth_ignore", CE, NB_REDUCTION_MEAN, -100, 0.25},
    {"ce_smooth_one", CE, NB_REDUCTION_MEAN, -100, 1.0},
    {"ce_weight_ignore", CE, NB_REDUCTION_MEAN, -100, 0},
    {"ce_weight_smooth", CE, NB_REDUCTION_MEAN, -100, 0.15},
    {"ce_prob_smooth", CE, NB_REDUCTION_MEAN, -100, 0.2},
    {"ce_prob_weight", CE, NB_REDUCTION_MEAN, -100, 0},
    {"ce_big", CE, NB_REDUCTION_MEAN, -100, 0.1},
    {"ce_prob_big", CE, NB_REDUCTION_MEAN, -100, 0},
    {"nll_ignore", NLL, NB_REDUCTION_MEAN, -100, 0},
    {"nll_weight", NLL, NB_REDUCTION_MEAN, -100, 0},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* inputs: input, target, and the class weights when the case has them */
static nb_tensor *loss_fn(nb_arena *ar, nb_tensor *const *x, void *u) {
    const loss_case *c = u;
    if (c->kind == MSE) return nb_mse_loss(ar, x[0], x[1], c->red);
    nb_cross_entropy_opts o = nb_cross_entropy_defaults();
    o.reduction = c->red;
    o.ignore_index = c->ignore;
    o.label_smoothing = c->smoothing;
    o.weight = x[2];
    return c->kind == CE ? nb_cross_entropy(ar, x[0], x[1], &o) : nb_nll_loss(ar, x[0], x[1], &o);
}

static golden *gold;
static void load_gold(void) { gold = golden_load("loss.nbg.gz"); }
static void free_gold(void) { golden_free(gold), gold = NULL; }

static const gold_entry *entry(const char *name, const char *what) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", name, what);
    return golden_get(gold, key);
}

static nb_tensor *heap(const gold_entry *e) {
    nb_tensor *t = nb_from_array(NULL, e->dtype == 1 ? NB_INT32 : NB_FLOAT32, e->ndim, e->shape,
                                 e->data);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* PyTorch's values to 1e-5 relative (see assert_golden) */
static void check(const char *name, const char *what, const float *got) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", name, what);
    assert_golden(key, got, golden_get(gold, key), 1e-5);
}

START_TEST(test_loss_vs_pytorch) {
    const loss_case *c = &cases[_i];
    char key[96];
    snprintf(key, sizeof key, "%s.weight", c->name);
    nb_tensor *x[3] = {heap(entry(c->name, "input")), heap(entry(c->name, "target")),
                       golden_has(gold, key) ? heap(golden_get(gold, key)) : NULL};
    nb_requires_grad(x[0], true);
    if (c->kind == MSE) nb_requires_grad(x[1], true);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *y = loss_fn(ar, x, (void *)c);
    ck_assert_msg(y != NULL, "%s: %s", c->name, nb_last_error());
    const gold_entry *ye = entry(c->name, "y"), *we = entry(c->name, "w");
    ck_assert_int_eq(y->ndim, ye->ndim);
    ck_assert_int_eq(y->numel, ye->numel);
    check(c->name, "y", nb_f32(y));
    nb_tensor *w = nb_from_array(ar, NB_FLOAT32, we->ndim, we->shape, we->data);
    ck_assert_int_eq(nb_backward_grad(y, w), NB_OK);
    check(c->name, "g_input", nb_f32(x[0]->grad));
    if (c->kind == MSE) check(c->name, "g_target", nb_f32(x[1]->grad));
    ck_assert_msg(nb_gradcheck(loss_fn, x[2] ? 3 : 2, x, (void *)c, NULL) == NB_OK, "%s: %s",
                  c->name, nb_last_error());
    for (int k = 0; k < 3; k++) nb_tensor_free(x[k]);
    nb_arena_free(ar);
}
END_TEST

/* Every row ignored: the mean is 0/0 = NaN (as PyTorch) and no gradient flows. */
START_TEST(test_all_ignored) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_ones(NULL, 2, (int64_t[]){2, 3});
    nb_tensor *t = nb_from_array(ar, NB_INT32, 1, (int64_t[]){2}, (int32_t[]){-100, -100});
    nb_requires_grad(x, true);
    nb_tensor *ce = nb_cross_entropy(ar, x, t, NULL), *nll = nb_nll_loss(ar, x, t, NULL);
    ck_assert(isnan(nb_item(ce)) && isnan(nb_item(nll)));
    ck_assert_int_eq(nb_backward(ce), NB_OK);
    ck_assert_int_eq(nb_backward(nll), NB_OK);
    for (int i = 0; i < 6; i++) ck_assert_float_eq(nb_f32(x->grad)[i], 0.0f);
    nb_cross_entropy_opts o = nb_cross_entropy_defaults();
    o.reduction = NB_REDUCTION_SUM;
    ck_assert_float_eq(nb_item(nb_cross_entropy(ar, x, t, &o)), 0.0f);
    nb_tensor_free(x);
    nb_arena_free(ar);
}
END_TEST

/* ---- errors: a clear message, nothing recorded, the inputs untouched ----------------------- */
#define EXPECT_ERR(call, msg)                                                                 \
    do {                                                                                      \
        size_t used_ = nb_arena_used(ar);                                                     \
        nb_clear_error();                                                                     \
        ck_assert_ptr_null(call);                                                             \
        ck_assert_str_eq(nb_last_error(), msg);                                               \
        ck_assert_uint_eq(nb_arena_used(ar), used_);                                          \
    } while (0)

START_TEST(test_target_errors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_zeros(ar, 2, (int64_t[]){3, 5});
    nb_tensor *oob = nb_from_array(ar, NB_INT32, 1, (int64_t[]){3}, (int32_t[]){0, 5, 1});
    nb_tensor *neg = nb_from_array(ar, NB_INT32, 1, (int64_t[]){3}, (int32_t[]){0, 1, -1});
    nb_tensor *t2 = nb_from_array(ar, NB_INT32, 2, (int64_t[]){3, 1}, (int32_t[]){0, 1, 2});
    nb_tensor *t4 = nb_from_array(ar, NB_INT32, 1, (int64_t[]){4}, (int32_t[]){0, 1, 2, 3});
    nb_tensor *tu = nb_empty(ar, NB_UINT8, 1, (int64_t[]){3});
    nb_tensor *tf = nb_zeros(ar, 2, (int64_t[]){3, 4}), *ok = nb_zeros(ar, 1, (int64_t[]){3});
    nb_tensor *good = nb_from_array(ar, NB_INT32, 1, (int64_t[]){3}, (int32_t[]){0, 1, 2});
    EXPECT_ERR(nb_cross_entropy(ar, x, oob, NULL), "cross_entropy: target 5 is out of bounds for 5 classes (row 1)");
    EXPECT_ERR(nb_cross_entropy(ar, x, neg, NULL), "cross_entropy: target -1 is out of bounds for 5 classes (row 2)");
    EXPECT_ERR(nb_nll_loss(ar, x, oob, NULL), "nll_loss: target 5 is out of bounds for 5 classes (row 1)");
    EXPECT_ERR(nb_cross_entropy(ar, x, t2, NULL), "cross_entropy: target has shape [3, 1], expected [3]");
    EXPECT_ERR(nb_nll_loss(ar, x, t4, NULL), "nll_loss: target has shape [4], expected [3]");
    EXPECT_ERR(nb_cross_entropy(ar, x, tu, NULL), "cross_entropy: target must be int32 class indices");
    EXPECT_ERR(nb_cross_entropy(ar, x, tf, NULL), "cross_entropy: probability target has shape [3, 4], expected [3, 5]");
    EXPECT_ERR(nb_nll_loss(ar, x, ok, NULL), "nll_loss: target must be int32 class indices");
    EXPECT_ERR(nb_cross_entropy(ar, ok, good, NULL), "cross_entropy: input must be [N, C], got [3]");
    EXPECT_ERR(nb_cross_entropy(ar, good, good, NULL), "cross_entropy: input must be float32, got int32");
    nb_cross_entropy_opts o = nb_cross_entropy_defaults();
    o.weight = ok;
    EXPECT_ERR(nb_cross_entropy(ar, x, good, &o), "cross_entropy: weight has shape [3], expected [5]");
    EXPECT_ERR(nb_nll_loss(ar, x, good, &o), "nll_loss: weight has shape [3], expected [5]");
    o = nb_cross_entropy_defaults();
    o.reduction = (nb_reduction)7;
    EXPECT_ERR(nb_cross_entropy(ar, x, good, &o), "cross_entropy: unknown reduction 7");
    /* a target equal to ignore_index may be out of range; ignore_index may be a real class */
    o = nb_cross_entropy_defaults();
    o.ignore_index = 5;
    ck_assert_ptr_nonnull(nb_cross_entropy(ar, x, oob, &o));
    nb_arena_free(ar);
}
END_TEST

START_TEST(test_label_smoothing_errors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_zeros(ar, 2, (int64_t[]){3, 5});
    nb_tensor *t = nb_from_array(ar, NB_INT32, 1, (int64_t[]){3}, (int32_t[]){0, 1, 2});
    nb_cross_entropy_opts o = nb_cross_entropy_defaults();
    o.label_smoothing = -0.1;
    EXPECT_ERR(nb_cross_entropy(ar, x, t, &o), "cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: -0.1");
    o.label_smoothing = 1.5;
    EXPECT_ERR(nb_cross_entropy(ar, x, t, &o), "cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: 1.5");
    o.label_smoothing = NAN;
    EXPECT_ERR(nb_cross_entropy(ar, x, t, &o), "cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: nan");
    /* nll_loss has no label_smoothing: the field is not read */
    ck_assert_ptr_nonnull(nb_nll_loss(ar, x, t, &o));
    nb_arena_free(ar);
}
END_TEST

START_TEST(test_mse_errors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *a = nb_zeros(ar, 2, (int64_t[]){3, 4}), *b = nb_zeros(ar, 1, (int64_t[]){4});
    nb_tensor *i = nb_empty(ar, NB_INT32, 2, (int64_t[]){3, 4});
    EXPECT_ERR(nb_mse_loss(ar, a, b, NB_REDUCTION_MEAN), "mse_loss: target has shape [4] but input has shape [3, 4]");
    EXPECT_ERR(nb_mse_loss(ar, a, i, NB_REDUCTION_MEAN), "mse_loss: target must be float32, got int32");
    EXPECT_ERR(nb_mse_loss(ar, a, a, (nb_reduction)-1), "mse_loss: unknown reduction -1");
    nb_clear_error();
    ck_assert_ptr_null(nb_mse_loss(ar, NULL, a, NB_REDUCTION_MEAN));
    ck_assert_str_eq(nb_last_error(), "");
    nb_arena_free(ar);
}
END_TEST

/* The loss keeps its own copy of the class weights: changing them before backward is safe. */
START_TEST(test_weight_copied) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_ones(NULL, 2, (int64_t[]){2, 3});
    nb_tensor *t = nb_from_array(ar, NB_INT32, 1, (int64_t[]){2}, (int32_t[]){0, 2});
    nb_tensor *w = nb_from_array(ar, NB_FLOAT32, 1, (int64_t[]){3}, (float[]){1, 2, 3});
    nb_requires_grad(x, true);
    nb_cross_entropy_opts o = nb_cross_entropy_defaults();
    o.weight = w;
    nb_tensor *l = nb_nll_loss(ar, x, t, &o);
    nb_f32(w)[0] = 100.0f;
    ck_assert_int_eq(nb_backward(l), NB_OK);
    ck_assert_float_eq_tol(nb_f32(x->grad)[0], -0.25f, 1e-7); /* -w0 / (w0 + w2) */
    ck_assert_float_eq_tol(nb_f32(x->grad)[5], -0.75f, 1e-7);
    nb_tensor_free(x);
    nb_arena_free(ar);
}
END_TEST

/* New gradient buffers may reuse memory holding NaN (an arena after reset): backward must
 * write them, not scale their old content by 0 (regression: 0 * NaN was NaN). */
START_TEST(test_backward_writes_new_buffers) {
    nb_arena *ar = nb_arena_new(0);
    nb_full(ar, 1, (int64_t[]){1 << 14}, NAN);
    nb_arena_reset(ar);
    nb_tensor *x = nb_ones(ar, 2, (int64_t[]){4, 3});
    nb_tensor *t = nb_from_array(ar, NB_INT32, 1, (int64_t[]){4}, (int32_t[]){0, 2, 1, 0});
    nb_requires_grad(x, true);
    nb_cross_entropy_opts o = nb_cross_entropy_defaults();
    o.label_smoothing = 0.1;
    ck_assert_int_eq(nb_backward(nb_cross_entropy(ar, x, t, &o)), NB_OK);
    for (int i = 0; i < 12; i++)
        ck_assert_msg(isfinite(nb_f32(x->grad)[i]), "grad %d is %g", i, nb_f32(x->grad)[i]);
    nb_arena_free(ar);
}
END_TEST

int main(void) {
    Suite *s = suite_create("loss");
    TCase *tc = tcase_create("pytorch");
    tcase_add_unchecked_fixture(tc, load_gold, free_gold);
    tcase_add_loop_test(tc, test_loss_vs_pytorch, 0, NCASES);
    tcase_add_test(tc, test_all_ignored);
    tcase_add_test(tc, test_weight_copied);
    tcase_add_test(tc, test_backward_writes_new_buffers);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, test_target_errors);
    tcase_add_test(te, test_label_smoothing_errors);
    tcase_add_test(te, test_mse_errors);
    suite_add_tcase(s, te);
    return run_suite(s) ? 1 : 0;
}
