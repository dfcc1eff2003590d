/* test_nonfinite.c - NaN and +-Inf through every op's forward and backward, against PyTorch
 * (tools/golden/gen_nonfinite.py): every element of the output and of each gradient must be
 * NaN, +Inf, -Inf or finite exactly where PyTorch's is, and finite ones close to PyTorch's.
 * Each case runs twice: non-finite values planted in the inputs, and in the upstream gradient.
 * In the second run NaN and infinity count as one kind ("not finite") in the gradients: where
 * an infinite upstream gradient meets two terms of opposite sign, PyTorch's autograd gives NaN
 * or infinity depending on how the op is decomposed (kl_div's target gradient is two terms in
 * PyTorch, one fused term here), which says nothing about propagation.
 * Under UBSan (tools/nabla test's ASan+UBSan pass) this is also the check that no kernel does
 * something undefined with them (converting NaN to an integer, ...). Dropout, whose mask comes
 * from nabla's generator, is checked against its definition. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "common.h"
bool nb__k_bf16_force(const char *name); /* src/kernels/gemm.c (the static library has it) */

typedef nb_tensor *(*case_fn)(nb_arena *ar, nb_tensor *const *x, nb_module *m);

typedef struct nf_case {
    const char *name;
    case_fn fn;
    nb_module *(*make)(void); /* a module whose parameters come from the golden (or NULL) */
} nf_case;

#define FN(fname, expr)                                                                      \
    static nb_tensor *fname(nb_arena *ar, nb_tensor *const *x, nb_module *m) {               \
        (void)ar, (void)x, (void)m;                                                          \
        return (expr);                                                                       \
    }

FN(f_add, nb_add(ar, x[0], x[1]))
FN(f_sub, nb_sub(ar, x[0], x[1]))
FN(f_mul, nb_mul(ar, x[0], x[1]))
FN(f_div, nb_div(ar, x[0], x[1]))
FN(f_add_scalar, nb_add_scalar(ar, x[0], 0.75f))
FN(f_mul_scalar, nb_mul_scalar(ar, x[0], -1.5f))
FN(f_mul_scalar_0, nb_mul_scalar(ar, x[0], 0.0f))
FN(f_neg, nb_neg(ar, x[0]))
FN(f_exp, nb_exp(ar, x[0]))
FN(f_log, nb_log(ar, x[0]))
FN(f_sqrt, nb_sqrt(ar, x[0]))
FN(f_abs, nb_abs(ar, x[0]))
FN(f_pow_2, nb_pow(ar, x[0], 2.0f))
FN(f_pow_3, nb_pow(ar, x[0], 3.0f))
FN(f_pow_half, nb_pow(ar, x[0], 0.5f))
FN(f_pow_m1, nb_pow(ar, x[0], -1.0f))
FN(f_pow_0, nb_pow(ar, x[0], 0.0f))
FN(f_pow_1, nb_pow(ar, x[0], 1.0f))
FN(f_pow_m1p5, nb_pow(ar, x[0], -1.5f))
FN(f_clamp, nb_clamp(ar, x[0], -0.5f, 0.7f))
FN(f_clamp_min, nb_clamp(ar, x[0], -0.25f, INFINITY))
FN(f_clamp_max, nb_clamp(ar, x[0], -INFINITY, 0.3f))
FN(f_relu, nb_relu(ar, x[0]))
FN(f_leaky_relu, nb_leaky_relu(ar, x[0], 0.1f))
FN(f_tanh, nb_tanh(ar, x[0]))
FN(f_sigmoid, nb_sigmoid(ar, x[0]))
FN(f_gelu, nb_gelu(ar, x[0]))
FN(f_elu, nb_elu(ar, x[0], 1.0f))
FN(f_silu, nb_silu(ar, x[0]))
FN(f_softmax, nb_softmax(ar, x[0], 1))
FN(f_softmax_0, nb_softmax(ar, x[0], 0))
FN(f_log_softmax, nb_log_softmax(ar, x[0], 1))
FN(f_log_softmax_0, nb_log_softmax(ar, x[0], 0))
FN(f_matmul, nb_matmul(ar, x[0], x[1]))
FN(f_linear, nb_linear(ar, x[0], x[1], x[2]))
FN(f_transpose, nb_transpose(ar, x[0], 0, 1))
FN(f_reshape, nb_reshape(ar, x[0], 2, (int64_t[]){5, 4}))
FN(f_flatten, nb_flatten(ar, x[0], 1, 2))
FN(f_sum, nb_sum(ar, x[0]))
FN(f_mean, nb_mean(ar, x[0]))
FN(f_sum_dim, nb_sum_dim(ar, x[0], 1, false))
FN(f_sum_dim0, nb_sum_dim(ar, x[0], 0, true))
FN(f_mean_dim, nb_mean_dim(ar, x[0], 1, false))
FN(f_max, nb_max(ar, x[0]))
FN(f_max_dim, nb_max_dim(ar, x[0], 1, false))
FN(f_max_dim0, nb_max_dim(ar, x[0], 0, true))
FN(f_index_select, nb_index_select(ar, x[0], x[1]))
FN(f_gather, nb_gather(ar, x[0], x[1]))
FN(f_select, nb_select(ar, x[0], 1, 2))
FN(f_embedding, nb_embedding(ar, x[0], x[1], -1))
FN(f_cat, nb_cat(ar, 2, x, 1))
FN(f_stack, nb_stack(ar, 2, x, 0))
FN(f_slice, nb_slice(ar, x[0], 1, 1, 4))
static nb_tensor *f_conv2d(nb_arena *ar, nb_tensor *const *x, nb_module *m) {
    (void)m;
    nb_conv_opts o = nb_conv_defaults();
    o.padding[0] = o.padding[1] = 1;
    return nb_conv2d(ar, x[0], x[1], x[2], &o);
}
static nb_tensor *f_conv1d(nb_arena *ar, nb_tensor *const *x, nb_module *m) {
    (void)m;
    nb_conv_opts o = nb_conv_defaults();
    o.padding[0] = 1;
    return nb_conv1d(ar, x[0], x[1], x[2], &o);
}
FN(f_max_pool2d, nb_max_pool2d(ar, x[0], 2, 2, NULL))
FN(f_avg_pool2d, nb_avg_pool2d(ar, x[0], 2, 2, NULL))
FN(f_adaptive_avg_pool2d, nb_adaptive_avg_pool2d(ar, x[0], 2, 3))
static nb_tensor *f_batch_norm(nb_arena *ar, nb_tensor *const *x, nb_module *m) {
    (void)m;
    int64_t c = x[1]->shape[0];
    nb_tensor *rm = nb_zeros(ar, 1, &c), *rv = nb_ones(ar, 1, &c);
    return nb_batch_norm(ar, x[0], rm, rv, x[1], x[2], true, 0.1, 1e-5);
}
static nb_tensor *f_batch_norm_eval(nb_arena *ar, nb_tensor *const *x, nb_module *m) {
    (void)m;
    int64_t c = x[1]->shape[0];
    return nb_batch_norm(ar, x[0], nb_full(ar, 1, &c, 0.25f), nb_full(ar, 1, &c, 2.0f), x[1], x[2],
                         false, 0.1, 1e-5);
}
FN(f_layer_norm, nb_layer_norm(ar, x[0], 1, (int64_t[]){5}, x[1], x[2], 1e-5))
FN(f_cross_entropy, nb_cross_entropy(ar, x[0], x[1], NULL))
static nb_tensor *f_cross_entropy_none(nb_arena *ar, nb_tensor *const *x, nb_module *m) {
    (void)m;
    nb_cross_entropy_opts o = nb_cross_entropy_defaults();
    o.reduction = NB_REDUCTION_NONE;
    return nb_cross_entropy(ar, x[0], x[1], &o);
}
static nb_tensor *f_nll_loss(nb_arena *ar, nb_tensor *const *x, nb_module *m) {
    (void)m;
    nb_cross_entropy_opts o = nb_cross_entropy_defaults();
    o.reduction = NB_REDUCTION_NONE;
    return nb_nll_loss(ar, x[0], x[1], &o);
}
FN(f_mse_loss, nb_mse_loss(ar, x[0], x[1], NB_REDUCTION_NONE))
FN(f_l1_loss, nb_l1_loss(ar, x[0], x[1], NB_REDUCTION_NONE))
FN(f_smooth_l1_loss, nb_smooth_l1_loss(ar, x[0], x[1], NB_REDUCTION_NONE, 0.5))
FN(f_huber_loss, nb_huber_loss(ar, x[0], x[1], NB_REDUCTION_NONE, 0.5))
FN(f_bce, nb_binary_cross_entropy(ar, x[0], x[1], NULL, NB_REDUCTION_NONE))
FN(f_bce_with_logits, nb_binary_cross_entropy_with_logits(ar, x[0], x[1], NULL, NULL, NB_REDUCTION_NONE))
FN(f_kl_div, nb_kl_div(ar, x[0], x[1], NB_REDUCTION_NONE, false))
FN(f_kl_div_log, nb_kl_div(ar, x[0], x[1], NB_REDUCTION_NONE, true))
FN(f_recurrent, nb_rnn_forward(m, ar, x[0], NULL, NULL, NULL, NULL))

static nb_module *recurrent(int kind, bool relu) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_rnn_opts o = nb_rnn_defaults();
    o.batch_first = true;
    o.relu = relu;
    return kind == 0 ? nb_rnn_new(3, 4, &o, &rng) : kind == 1 ? nb_lstm_new(3, 4, &o, &rng) : nb_gru_new(3, 4, &o, &rng);
}
static nb_module *make_rnn_tanh(void) { return recurrent(0, false); }
static nb_module *make_rnn_relu(void) { return recurrent(0, true); }
static nb_module *make_lstm(void) { return recurrent(1, false); }
static nb_module *make_gru(void) { return recurrent(2, false); }

#define BIN(op, f) {op, f, NULL}, {op "_bcast", f, NULL}
static const nf_case cases[] = {
    BIN("add", f_add), BIN("sub", f_sub), BIN("mul", f_mul), BIN("div", f_div),
    {"div_zero", f_div, NULL},
    {"add_scalar", f_add_scalar, NULL},
    {"mul_scalar", f_mul_scalar, NULL},
    {"mul_scalar_0", f_mul_scalar_0, NULL},
    {"neg", f_neg, NULL},
    {"exp", f_exp, NULL},
    {"exp_big", f_exp, NULL},
    {"log", f_log, NULL},
    {"sqrt", f_sqrt, NULL},
    {"abs", f_abs, NULL},
    {"pow_2", f_pow_2, NULL},
    {"pow_3", f_pow_3, NULL},
    {"pow_half", f_pow_half, NULL},
    {"pow_m1", f_pow_m1, NULL},
    {"pow_0", f_pow_0, NULL},
    {"pow_1", f_pow_1, NULL},
    {"pow_m1p5", f_pow_m1p5, NULL},
    {"clamp", f_clamp, NULL},
    {"clamp_min", f_clamp_min, NULL},
    {"clamp_max", f_clamp_max, NULL},
    {"relu", f_relu, NULL},
    {"leaky_relu", f_leaky_relu, NULL},
    {"tanh", f_tanh, NULL},
    {"sigmoid", f_sigmoid, NULL},
    {"gelu", f_gelu, NULL},
    {"elu", f_elu, NULL},
    {"silu", f_silu, NULL},
    {"softmax", f_softmax, NULL},
    {"softmax_0", f_softmax_0, NULL},
    {"log_softmax", f_log_softmax, NULL},
    {"log_softmax_0", f_log_softmax_0, NULL},
    {"matmul", f_matmul, NULL},
    {"matmul_batched", f_matmul, NULL},
    {"linear", f_linear, NULL},
    {"transpose", f_transpose, NULL},
    {"reshape", f_reshape, NULL},
    {"flatten", f_flatten, NULL},
    {"sum", f_sum, NULL},
    {"sum_inf", f_sum, NULL},
    {"mean", f_mean, NULL},
    {"sum_dim", f_sum_dim, NULL},
    {"sum_dim0", f_sum_dim0, NULL},
    {"mean_dim", f_mean_dim, NULL},
    {"max", f_max, NULL},
    {"max_inf", f_max, NULL},
    {"max_ninf", f_max, NULL},
    {"max_dim", f_max_dim, NULL},
    {"max_dim0", f_max_dim0, NULL},
    {"index_select", f_index_select, NULL},
    {"gather", f_gather, NULL},
    {"select", f_select, NULL},
    {"embedding", f_embedding, NULL},
    {"cat", f_cat, NULL},
    {"stack", f_stack, NULL},
    {"slice", f_slice, NULL},
    {"conv2d", f_conv2d, NULL},
    {"conv2d_edge", f_conv2d, NULL},
    {"conv2d_wnan", f_conv2d, NULL},
    {"conv1d", f_conv1d, NULL},
    {"max_pool2d", f_max_pool2d, NULL},
    {"max_pool2d_ninf", f_max_pool2d, NULL},
    {"avg_pool2d", f_avg_pool2d, NULL},
    {"adaptive_avg_pool2d", f_adaptive_avg_pool2d, NULL},
    {"batch_norm", f_batch_norm, NULL},
    {"batch_norm_eval", f_batch_norm_eval, NULL},
    {"batch_norm_2d", f_batch_norm, NULL},
    {"layer_norm", f_layer_norm, NULL},
    {"cross_entropy", f_cross_entropy, NULL},
    {"cross_entropy_none", f_cross_entropy_none, NULL},
    {"nll_loss", f_nll_loss, NULL},
    {"mse_loss", f_mse_loss, NULL},
    {"l1_loss", f_l1_loss, NULL},
    {"smooth_l1_loss", f_smooth_l1_loss, NULL},
    {"huber_loss", f_huber_loss, NULL},
    {"binary_cross_entropy", f_bce, NULL},
    {"bce_with_logits", f_bce_with_logits, NULL},
    {"kl_div", f_kl_div, NULL},
    {"kl_div_log", f_kl_div_log, NULL},
    {"rnn_tanh", f_recurrent, make_rnn_tanh},
    {"rnn_relu", f_recurrent, make_rnn_relu},
    {"lstm", f_recurrent, make_lstm},
    {"gru", f_recurrent, make_gru},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static golden *gold;
static void load_gold(void) { gold = golden_load("nonfinite.nbg.gz"); }
static void free_gold(void) { golden_free(gold), gold = NULL; }

/* The tolerance of finite values: 1e-3, or that of bfloat16 products (autocast runs). */
static double tol = 1e-3;

static const char *kind(float v) { return isnan(v) ? "NaN" : isinf(v) ? (v > 0 ? "+Inf" : "-Inf") : "finite"; }

/* Every element of got has the kind of want's, and finite ones agree loosely (the point here
 * is where non-finite values go; test_ops.c checks the values). */
static void assert_kinds(const char *what, const float *got, const gold_entry *e, bool finiteness) {
    const float *want = e->data;
    for (int64_t i = 0; i < e->numel; i++) {
        bool same = finiteness ? !isfinite(got[i]) == !isfinite(want[i])
                               : !strcmp(kind(got[i]), kind(want[i])) && (!isinf(want[i]) || got[i] == want[i]);
        ck_assert_msg(same,
                      "%s: element %lld is %.9g (%s), PyTorch's is %.9g (%s)", what, (long long)i,
                      (double)got[i], kind(got[i]), (double)want[i], kind(want[i]));
        if (isfinite(want[i]))
            ck_assert_msg(fabs((double)got[i] - want[i]) <= tol * (1 + fabs((double)want[i])),
                          "%s: element %lld is %.9g, PyTorch's is %.9g", what, (long long)i,
                          (double)got[i], (double)want[i]);
    }
}

static void run_variant(const nf_case *c, const char *tag, bool upstream, nb_dtype autocast) {
    char key[96];
    nb_tensor *x[8];
    int n = 0;
    for (; n < 8; n++) {
        snprintf(key, sizeof key, "%s.x%d", tag, n);
        if (!golden_has(gold, key)) break;
        const gold_entry *e = golden_get(gold, key);
        if (e->dtype == 1) {
            x[n] = nb_from_array(NULL, NB_INT32, e->ndim, e->shape, e->data);
        } else {
            x[n] = golden_tensor(gold, key);
            ck_assert_int_eq(nb_requires_grad(x[n], true), NB_OK);
        }
    }
    nb_module *m = c->make ? c->make() : NULL;
    const nb_named_tensor *named = NULL;
    int np = m ? nb_module_state(m, &named) : 0;
    for (int k = 0; k < np; k++) {
        snprintf(key, sizeof key, "%s.p%d", tag, k);
        const gold_entry *e = golden_get(gold, key);
        ck_assert_int_eq(e->numel, named[k].tensor->numel);
        memcpy(named[k].tensor->data, e->data, sizeof(float) * (size_t)e->numel);
    }
    nb_arena *ar = nb_arena_new(0);
    nb_arena_set_autocast(ar, autocast);
    nb_tensor *y = c->fn(ar, x, m);
    ck_assert_msg(y != NULL, "%s: %s", tag, nb_last_error());
    snprintf(key, sizeof key, "%s.y", tag);
    const gold_entry *ye = golden_get(gold, key);
    ck_assert_msg(y->numel == ye->numel, "%s: %lld outputs, PyTorch has %lld", tag, (long long)y->numel,
                  (long long)ye->numel);
    assert_kinds(key, nb_f32(y), ye, false);
    snprintf(key, sizeof key, "%s.w", tag);
    const gold_entry *we = golden_get(gold, key);
    nb_tensor *w = nb_from_array(ar, NB_FLOAT32, y->ndim, y->shape, we->data);
    ck_assert_msg(nb_backward_grad(y, w) == NB_OK, "%s: %s", tag, nb_last_error());
    for (int k = 0; k < n; k++) {
        if (x[k]->dtype != NB_FLOAT32) continue;
        snprintf(key, sizeof key, "%s.g%d", tag, k);
        ck_assert_msg(x[k]->grad != NULL, "%s: no gradient", key);
        assert_kinds(key, nb_f32(x[k]->grad), golden_get(gold, key), upstream);
    }
    for (int k = 0; k < np; k++) {
        snprintf(key, sizeof key, "%s.q%d (%s)", tag, k, named[k].name);
        char gkey[96];
        snprintf(gkey, sizeof gkey, "%s.q%d", tag, k);
        ck_assert_msg(named[k].tensor->grad != NULL, "%s: no gradient", key);
        assert_kinds(key, nb_f32(named[k].tensor->grad), golden_get(gold, gkey), upstream);
    }
    for (int k = 0; k < n; k++) nb_tensor_free(x[k]);
    nb_module_free(m);
    nb_arena_free(ar);
}

START_TEST(test_nonfinite_vs_pytorch) {
    const nf_case *c = &cases[_i];
    char tag[96];
    run_variant(c, c->name, false, NB_FLOAT32);
    snprintf(tag, sizeof tag, "%s~w", c->name);
    run_variant(c, tag, true, NB_FLOAT32);
}
END_TEST

/* The ops that form products, under bfloat16 autocast, with each bfloat16 kernel this CPU
 * runs: NaN and infinity go where they go in float32 (rounding to bfloat16 keeps them: every
 * NaN becomes a NaN, infinities stay infinite), finite values within bfloat16 rounding. */
START_TEST(test_nonfinite_autocast) {
    static const char *const products[] = {"matmul", "matmul_batched", "linear", "conv2d", "conv2d_edge",
                                           "conv2d_wnan", "conv1d", "rnn_tanh", "rnn_relu", "lstm", "gru"};
    static const char *const kernels[] = {"amx", "avx512bf16", "emulated"};
    tol = 3e-2;
    for (int k = 0; k < 3; k++) {
        if (!nb__k_bf16_force(kernels[k])) continue;
        for (size_t p = 0; p < sizeof products / sizeof products[0]; p++)
            for (int i = 0; i < NCASES; i++) {
                if (strcmp(cases[i].name, products[p])) continue;
                char tag[96];
                run_variant(&cases[i], cases[i].name, false, NB_BF16);
                snprintf(tag, sizeof tag, "%s~w", cases[i].name);
                run_variant(&cases[i], tag, true, NB_BF16);
            }
    }
    nb__k_bf16_force(NULL);
    tol = 1e-3;
}
END_TEST

/* Dropout multiplies by mask / (1 - p), as PyTorch: a dropped NaN or infinity gives NaN
 * (x * 0), a kept one stays what it was; the gradient is the upstream one times the same
 * factor, so a NaN upstream gradient reaches kept and dropped elements alike. */
START_TEST(test_dropout_nonfinite) {
    for (int two_d = 0; two_d < 2; two_d++) {
        nb_rng rng;
        nb_rng_seed(&rng, 3);
        nb_arena *ar = nb_arena_new(0);
        const int64_t shape[4] = {2, 6, 3, 3};
        nb_tensor *x = nb_uniform(NULL, 4, shape, -1, 1, &rng);
        for (int64_t i = 0; i < x->numel; i += 3) nb_f32(x)[i] = i % 9 == 0 ? NAN : i % 9 == 3 ? INFINITY : -INFINITY;
        nb_requires_grad(x, true);
        nb_tensor *y = two_d ? nb_dropout2d(ar, x, 0.5f, true, &rng) : nb_dropout(ar, x, 0.5f, true, &rng);
        ck_assert_ptr_nonnull(y);
        nb_tensor *w = nb_full(ar, 4, shape, NAN);
        ck_assert_int_eq(nb_backward_grad(y, w), NB_OK);
        int64_t dropped = 0;
        for (int64_t i = 0; i < x->numel; i++) {
            float xv = nb_f32(x)[i], yv = nb_f32(y)[i];
            bool kept = isfinite(xv) ? yv != 0.0f : !isnan(yv) || isnan(xv);
            if (isfinite(xv)) ck_assert(yv == 0.0f || fabsf(yv - 2.0f * xv) <= 1e-6f * fabsf(xv) + 1e-30f);
            else if (isinf(xv)) ck_assert_msg(isnan(yv) || yv == xv, "element %lld: %g -> %g", (long long)i, xv, yv);
            else ck_assert_msg(isnan(yv), "element %lld: NaN -> %g", (long long)i, yv);
            dropped += isfinite(xv) && !kept;
            ck_assert_msg(isnan(nb_f32(x->grad)[i]), "grad element %lld: %g", (long long)i, nb_f32(x->grad)[i]);
        }
        ck_assert(dropped > 0);
        nb_tensor_free(x);
        nb_arena_free(ar);
    }
}
END_TEST

/* argmax picks the first NaN, as PyTorch (NaN counts as the largest value). */
START_TEST(test_argmax_nonfinite) {
    nb_arena *ar = nb_arena_new(0);
    float v[3][4] = {{1, NAN, 5, NAN}, {-INFINITY, -INFINITY, -INFINITY, -INFINITY}, {2, INFINITY, 3, INFINITY}};
    nb_tensor *x = nb_from_array(ar, NB_FLOAT32, 2, (int64_t[]){3, 4}, v);
    nb_tensor *i = nb_argmax(ar, x, 1, false);
    ck_assert_ptr_nonnull(i);
    ck_assert_int_eq(nb_i32(i)[0], 1);
    ck_assert_int_eq(nb_i32(i)[1], 0);
    ck_assert_int_eq(nb_i32(i)[2], 1);
    nb_arena_free(ar);
}
END_TEST

Suite *nonfinite_suite(void) {
    Suite *s = suite_create("nonfinite");
    TCase *tc = tcase_create("vs_pytorch");
    tcase_add_unchecked_fixture(tc, load_gold, free_gold);
    tcase_add_loop_test(tc, test_nonfinite_vs_pytorch, 0, NCASES);
    tcase_add_test(tc, test_nonfinite_autocast);
    tcase_add_test(tc, test_dropout_nonfinite);
    tcase_add_test(tc, test_argmax_nonfinite);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(nonfinite_suite()) ? 1 : 0; }
