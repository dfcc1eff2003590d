/* test_losses2.c - l1, smooth_l1, huber, binary_cross_entropy (weight), ..._with_logits
 * (weight, pos_weight), kl_div (log_target, batchmean) and cross_entropy with class weights:
 * values and input/target gradients against PyTorch for every reduction, finite-difference
 * checks, and the errors on bad targets and arguments. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "common.h"
#include "fdcheck.h"
#include "goldcheck.h"

static void setup(void) { G = golden_load("conv.nbg.gz"); }
static void teardown(void) { golden_free((golden *)G); }

typedef struct loss_ctx {
    const char *kind; /* golden case prefix, e.g. "bcel_pw_" */
    nb_reduction red;
    double param;
    const nb_tensor *w, *pw;
} loss_ctx;

/* in[0] input, in[1] target */
static nb_tensor *loss_fn(nb_arena *ar, nb_tensor *const *in, void *ctx) {
    const loss_ctx *c = ctx;
    const char *k = c->kind;
    if (!strcmp(k, "l1_")) return nb_l1_loss(ar, in[0], in[1], c->red);
    if (!strncmp(k, "smooth_l1_", 10)) return nb_smooth_l1_loss(ar, in[0], in[1], c->red, c->param);
    if (!strncmp(k, "huber_", 6)) return nb_huber_loss(ar, in[0], in[1], c->red, c->param);
    if (!strncmp(k, "bcel_", 5))
        return nb_binary_cross_entropy_with_logits(ar, in[0], in[1], c->w, c->pw, c->red);
    if (!strncmp(k, "bce_", 4)) return nb_binary_cross_entropy(ar, in[0], in[1], c->w, c->red);
    if (!strncmp(k, "kl_", 3)) return nb_kl_div(ar, in[0], in[1], c->red, c->param != 0);
    ck_abort_msg("unknown loss %s", k);
    return NULL;
}

static const char *const KINDS[] = {"l1_", "smooth_l1_", "smooth_l1_b05_", "huber_", "huber_d03_",
                                    "bce_", "bce_w_", "bcel_", "bcel_pw_", "kl_", "kl_log_"};
static const char *const REDS[] = {"mean", "sum", "none", "batchmean"};

START_TEST(test_losses_golden) {
    int ncases = 0;
    for (size_t k = 0; k < sizeof KINDS / sizeof *KINDS; k++)
        for (int r = 0; r < 4; r++) {
            char c[64];
            snprintf(c, sizeof c, "%s%s", KINDS[k], REDS[r]);
            char fname[80];
            snprintf(fname, sizeof fname, "%s.fargs", c);
            if (!golden_has(G, fname)) continue;
            const double *f = fargs(c);
            loss_ctx ctx = {KINDS[k], (nb_reduction)f[0], f[1], NULL, NULL};
            nb_tensor *w = NULL, *pw = NULL;
            snprintf(fname, sizeof fname, "%s.weight", c);
            if (golden_has(G, fname)) ctx.w = w = leaf(c, "weight", false);
            snprintf(fname, sizeof fname, "%s.pos_weight", c);
            if (golden_has(G, fname)) ctx.pw = pw = leaf(c, "pos_weight", false);
            nb_tensor *in[2] = {leaf(c, "x", true), leaf(c, "t", f[2] != 0)};
            nb_arena *ar = nb_arena_new(0);
            nb_tensor *y = loss_fn(ar, in, &ctx);
            expect(c, "y", y);
            ck_assert_int_eq(y->ndim, ctx.red == NB_REDUCTION_NONE ? 2 : 0);
            if (f[2] != 0) expect_grads(c, y, 2, in, (const char *[]){"x", "t"});
            else expect_grads(c, y, 1, in, (const char *[]){"x"});
            nb_arena_free(ar);
            nb_tensor_free(in[0]);
            nb_tensor_free(in[1]);
            nb_tensor_free(w);
            nb_tensor_free(pw);
            ncases++;
        }
    ck_assert_int_eq(ncases, 9 * 3 + 2 * 4);
    /* a zero target (no target gradient: PyTorch's would be NaN there) */
    const char *c = "kl_zero_sum";
    loss_ctx ctx = {"kl_", NB_REDUCTION_SUM, 0, NULL, NULL};
    nb_tensor *in[2] = {leaf(c, "x", true), leaf(c, "t", false)};
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *y = loss_fn(ar, in, &ctx);
    expect(c, "y", y);
    expect_grads(c, y, 1, in, (const char *[]){"x"});
    nb_arena_free(ar);
    nb_tensor_free(in[0]);
    nb_tensor_free(in[1]);
    report("losses");
}
END_TEST

START_TEST(test_cross_entropy_class_weights) {
    const char *names[] = {"ce_weight", "ce_weight_smooth"};
    for (int i = 0; i < 2; i++) {
        const char *c = names[i];
        nb_tensor *x = leaf(c, "x", true), *w = leaf(c, "weight", false);
        const gold_entry *te = entry(c, "target");
        nb_tensor *t = nb_from_array(NULL, NB_INT32, te->ndim, te->shape, te->data);
        nb_cross_entropy_opts o = nb_cross_entropy_defaults();
        o.weight = w;
        o.label_smoothing = fargs(c)[0];
        nb_arena *ar = nb_arena_new(0);
        nb_tensor *y = nb_cross_entropy(ar, x, t, &o);
        expect(c, "y", y);
        ck_assert_int_eq(nb_backward(y), NB_OK);
        expect(c, "gx", x->grad);
        nb_arena_free(ar);
        nb_tensor_free(x);
        nb_tensor_free(w);
        nb_tensor_free(t);
    }
    report("cross_entropy weights");
}
END_TEST

START_TEST(test_losses_gradcheck) {
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    for (size_t k = 0; k < sizeof KINDS / sizeof *KINDS; k++)
        for (int r = 0; r < 3; r++) {
            const char *kind = KINDS[k];
            loss_ctx ctx = {kind, (nb_reduction)r, 0, NULL, NULL};
            int64_t shape[2] = {3, 4};
            nb_tensor *in[2], *w = NULL, *pw = NULL;
            if (!strncmp(kind, "bce_", 4)) { /* probabilities away from 0 and 1 */
                in[0] = nb_uniform(NULL, 2, shape, 0.1f, 0.9f, &rng);
                in[1] = nb_uniform(NULL, 2, shape, 0.0f, 1.0f, &rng);
            } else if (!strncmp(kind, "kl_", 3)) {
                in[0] = nb_uniform(NULL, 2, shape, -3.0f, -0.2f, &rng);
                in[1] = nb_uniform(NULL, 2, shape, kind[3] == 'l' ? -3.0f : 0.05f, kind[3] == 'l' ? 0.0f : 1.0f, &rng);
            } else { /* differences away from the kinks at 0 and +-beta/delta */
                in[0] = nb_normal(NULL, 2, shape, 0.0f, 1.0f, &rng);
                in[1] = nb_clone(NULL, in[0]);
                for (int64_t i = 0; i < 12; i++)
                    nb_f32(in[1])[i] += (i % 2 ? 1.0f : -1.0f) * (0.05f + 0.2f * (float)(i % 6));
            }
            if (!strcmp(kind, "smooth_l1_b05_") || !strcmp(kind, "huber_d03_")) ctx.param = kind[0] == 's' ? 0.5 : 0.33;
            else if (!strcmp(kind, "smooth_l1_") || !strcmp(kind, "huber_")) ctx.param = 1.0;
            else if (!strcmp(kind, "kl_log_")) ctx.param = 1.0;
            if (!strcmp(kind, "bce_w_") || !strcmp(kind, "bcel_pw_"))
                ctx.w = w = nb_uniform(NULL, 1, (int64_t[]){4}, 0.5f, 1.5f, &rng);
            if (!strcmp(kind, "bcel_pw_")) ctx.pw = pw = nb_uniform(NULL, 2, (int64_t[]){3, 1}, 0.5f, 3.0f, &rng);
            nb_requires_grad(in[0], true);
            nb_requires_grad(in[1], true);
            char what[64];
            snprintf(what, sizeof what, "%s%s", kind, REDS[r]);
            fd_check(what, loss_fn, 2, in, &ctx, 1e-3, 1e-3, 1e-2);
            nb_tensor_free(in[0]);
            nb_tensor_free(in[1]);
            nb_tensor_free(w);
            nb_tensor_free(pw);
        }
}
END_TEST

START_TEST(test_losses_errors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *a = nb_full(ar, 2, (int64_t[]){2, 3}, 0.5f), *b = nb_full(ar, 2, (int64_t[]){3, 2}, 0.5f);
    ck_assert_ptr_null(nb_l1_loss(ar, a, b, NB_REDUCTION_MEAN));
    ck_assert_int_eq(nb_last_status(), NB_ESHAPE);
    ck_assert_str_eq(nb_last_error(), "l1_loss: Target size [3, 2] must be the same as input size [2, 3]");
    ck_assert_ptr_null(nb_binary_cross_entropy_with_logits(ar, a, b, NULL, NULL, NB_REDUCTION_SUM));
    ck_assert_str_eq(nb_last_error(), "binary_cross_entropy_with_logits: Target size [3, 2] must be the "
                     "same as input size [2, 3]");
    ck_assert_ptr_null(nb_smooth_l1_loss(ar, a, a, NB_REDUCTION_MEAN, -1));
    ck_assert_str_eq(nb_last_error(), "smooth_l1_loss does not support negative values for beta.");
    ck_assert_ptr_null(nb_huber_loss(ar, a, a, NB_REDUCTION_MEAN, 0));
    ck_assert_str_eq(nb_last_error(), "huber_loss does not support non-positive values for delta.");
    nb_tensor *big = nb_full(ar, 2, (int64_t[]){2, 3}, 1.5f);
    ck_assert_ptr_null(nb_binary_cross_entropy(ar, big, a, NULL, NB_REDUCTION_MEAN));
    ck_assert_str_eq(nb_last_error(), "binary_cross_entropy: all elements of input should be between 0 and 1");
    ck_assert_ptr_null(nb_binary_cross_entropy(ar, a, a, nb_ones(ar, 1, (int64_t[]){2}), NB_REDUCTION_MEAN));
    ck_assert_str_eq(nb_last_error(), "binary_cross_entropy: weight of shape [2] cannot be broadcast to the "
                     "input's shape [2, 3]");
    ck_assert_ptr_null(nb_l1_loss(ar, a, a, NB_REDUCTION_BATCHMEAN));
    ck_assert_str_eq(nb_last_error(), "l1_loss: reduction 'batchmean' is only valid for kl_div");
    ck_assert_ptr_null(nb_kl_div(ar, a, a, (nb_reduction)7, false));
    ck_assert_str_eq(nb_last_error(), "kl_div: 7 is not a valid value for reduction");
    nb_tensor *labels = nb_from_array(ar, NB_INT32, 1, (int64_t[]){2}, (int32_t[]){0, 3});
    ck_assert_ptr_null(nb_cross_entropy(ar, a, labels, NULL));
    ck_assert_msg(strstr(nb_last_error(), "target 3 is out of bounds"), "%s", nb_last_error());
    nb_tensor *labels3 = nb_from_array(ar, NB_INT32, 1, (int64_t[]){3}, (int32_t[]){0, 1, 2});
    ck_assert_ptr_null(nb_cross_entropy(ar, a, labels3, NULL));
    ck_assert_int_eq(nb_last_status(), NB_ESHAPE);
    ck_assert_ptr_null(nb_l1_loss(ar, NULL, a, NB_REDUCTION_MEAN));
    ck_assert_ptr_null(nb_kl_div(NULL, a, a, NB_REDUCTION_SUM, false));
    ck_assert_msg(strstr(nb_last_error(), "NULL arena"), "%s", nb_last_error());
    /* batchmean divides by the batch size, mean by the element count */
    nb_tensor *lp = nb_full(ar, 2, (int64_t[]){2, 3}, -1.0f), *tp = nb_full(ar, 2, (int64_t[]){2, 3}, 0.5f);
    double bm = nb_item(nb_kl_div(ar, lp, tp, NB_REDUCTION_BATCHMEAN, false));
    double mn = nb_item(nb_kl_div(ar, lp, tp, NB_REDUCTION_MEAN, false));
    ck_assert_double_eq_tol(bm, 3 * mn, 1e-6);
    nb_arena_free(ar);
}
END_TEST

int main(void) {
    Suite *s = suite_create("losses2");
    TCase *tc = tcase_create("losses2");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_losses_golden);
    tcase_add_test(tc, test_cross_entropy_class_weights);
    tcase_add_test(tc, test_losses_gradcheck);
    tcase_add_test(tc, test_losses_errors);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
