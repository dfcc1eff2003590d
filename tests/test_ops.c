/* test_ops.c - the op catalogue: forward values and input gradients against PyTorch goldens
 * (tools/golden/gen_ops.py), a finite-difference gradcheck of every differentiable op, and
 * the errors for bad shapes and dims. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

/* ---- the cases of ops.nbg.gz: name -> the nabla expression ------------------------------- */
typedef struct op_case {
    const char *name;
    nb_gradcheck_fn fn;
    double p[3];
    bool no_gradcheck; /* ties: not differentiable, goldens only */
} op_case;

#define P(u) (((const op_case *)(u))->p)
#define FN(fname, expr)                                                                      \
    static nb_tensor *fname(nb_arena *ar, nb_tensor *const *x, void *u) {                    \
        (void)ar, (void)x, (void)u;                                                          \
        return (expr);                                                                       \
    }

FN(f_add, nb_add(ar, x[0], x[1]))
FN(f_sub, nb_sub(ar, x[0], x[1]))
FN(f_mul, nb_mul(ar, x[0], x[1]))
FN(f_div, nb_div(ar, x[0], x[1]))
FN(f_mul_self, nb_mul(ar, x[0], x[0]))
FN(f_add_scalar, nb_add_scalar(ar, x[0], (float)P(u)[0]))
FN(f_mul_scalar, nb_mul_scalar(ar, x[0], (float)P(u)[0]))
FN(f_neg, nb_neg(ar, x[0]))
FN(f_exp, nb_exp(ar, x[0]))
FN(f_log, nb_log(ar, x[0]))
FN(f_sqrt, nb_sqrt(ar, x[0]))
FN(f_abs, nb_abs(ar, x[0]))
FN(f_pow, nb_pow(ar, x[0], (float)P(u)[0]))
FN(f_clamp, nb_clamp(ar, x[0], (float)P(u)[0], (float)P(u)[1]))
FN(f_relu, nb_relu(ar, x[0]))
FN(f_leaky_relu, nb_leaky_relu(ar, x[0], (float)P(u)[0]))
FN(f_tanh, nb_tanh(ar, x[0]))
FN(f_sigmoid, nb_sigmoid(ar, x[0]))
FN(f_gelu, nb_gelu(ar, x[0]))
FN(f_softmax, nb_softmax(ar, x[0], (int)P(u)[0]))
FN(f_log_softmax, nb_log_softmax(ar, x[0], (int)P(u)[0]))
FN(f_linear, nb_linear(ar, x[0], x[1], x[2]))
FN(f_linear_nobias, nb_linear(ar, x[0], x[1], NULL))
FN(f_cross_entropy, nb_cross_entropy(ar, x[0], x[1], NULL))
FN(f_matmul, nb_matmul(ar, x[0], x[1]))
FN(f_matmul_self, nb_matmul(ar, x[0], x[0]))
FN(f_transpose, nb_transpose(ar, x[0], (int)P(u)[0], (int)P(u)[1]))
FN(f_reshape, nb_reshape(ar, x[0], 2, (int64_t[]){(int64_t)P(u)[0], (int64_t)P(u)[1]}))
FN(f_view, nb_view(ar, x[0], 2, (int64_t[]){(int64_t)P(u)[0], (int64_t)P(u)[1]}))
FN(f_flatten, nb_flatten(ar, x[0], (int)P(u)[0], (int)P(u)[1]))
FN(f_sum, nb_sum(ar, x[0]))
FN(f_mean, nb_mean(ar, x[0]))
FN(f_sum_dim, nb_sum_dim(ar, x[0], (int)P(u)[0], P(u)[1] != 0))
FN(f_mean_dim, nb_mean_dim(ar, x[0], (int)P(u)[0], P(u)[1] != 0))
FN(f_max, nb_max(ar, x[0]))
FN(f_max_dim, nb_max_dim(ar, x[0], (int)P(u)[0], P(u)[1] != 0))
FN(f_index_select, nb_index_select(ar, x[0], x[1]))
FN(f_gather, nb_gather(ar, x[0], x[1]))
FN(f_cat, nb_cat(ar, (int)P(u)[1], x, (int)P(u)[0]))
FN(f_cat_self, nb_cat(ar, 2, (nb_tensor *[]){x[0], x[0]}, 0))
FN(f_stack, nb_stack(ar, (int)P(u)[1], x, (int)P(u)[0]))
FN(f_slice, nb_slice(ar, x[0], (int)P(u)[0], (int64_t)P(u)[1], (int64_t)P(u)[2]))

/* cat of the chunks of split(x, size, dim), chunk i scaled by i + 1 */
static nb_tensor *f_split(nb_arena *ar, nb_tensor *const *x, void *u) {
    nb_tensor *chunks[8];
    int n = nb_split(ar, x[0], (int64_t)P(u)[0], (int)P(u)[1], chunks, 8);
    if (n < 0 || n > 8) return NULL;
    for (int i = 0; i < n; i++) chunks[i] = nb_mul_scalar(ar, chunks[i], (float)(i + 1));
    return nb_cat(ar, n, chunks, (int)P(u)[1]);
}

#define BIN_CASES(op, f)                                                                     \
    {op "_same", f, {0}, false}, {op "_row", f, {0}, false}, {op "_col", f, {0}, false},     \
    {op "_lead", f, {0}, false}, {op "_0d", f, {0}, false}, {op "_both", f, {0}, false},     \
    {op "_mid", f, {0}, false}

static const op_case cases[] = {
    BIN_CASES("add", f_add), BIN_CASES("sub", f_sub), BIN_CASES("mul", f_mul),
    BIN_CASES("div", f_div),
    {"mul_self", f_mul_self, {0}, false},
    {"add_scalar", f_add_scalar, {0.75}, false},
    {"mul_scalar", f_mul_scalar, {-1.5}, false},
    {"neg", f_neg, {0}, false},
    {"exp", f_exp, {0}, false},
    {"log", f_log, {0}, false},
    {"sqrt", f_sqrt, {0}, false},
    {"abs", f_abs, {0}, false},
    {"pow_2", f_pow, {2.0}, false},
    {"pow_3", f_pow, {3.0}, false},
    {"pow_half", f_pow, {0.5}, false},
    {"pow_m1", f_pow, {-1.0}, false},
    {"pow_mhalf", f_pow, {-0.5}, false},
    {"pow_m2", f_pow, {-2.0}, false},
    {"pow_2p5", f_pow, {2.5}, false},
    {"pow_0", f_pow, {0.0}, false},
    {"pow_1", f_pow, {1.0}, false},
    {"pow_m1p5", f_pow, {-1.5}, false},
    {"clamp", f_clamp, {-0.5, 0.7}, false},
    {"clamp_min", f_clamp, {-0.25, INFINITY}, false},
    {"clamp_max", f_clamp, {-INFINITY, 0.3}, false},
    {"relu", f_relu, {0}, false},
    {"leaky_relu", f_leaky_relu, {0.1}, false},
    {"tanh", f_tanh, {0}, false},
    {"sigmoid", f_sigmoid, {0}, false},
    {"gelu", f_gelu, {0}, false},
    {"softmax_1", f_softmax, {1}, false},
    {"softmax_0", f_softmax, {0}, false},
    {"softmax_3d", f_softmax, {1}, false},
    {"log_softmax_1", f_log_softmax, {1}, false},
    {"log_softmax_0", f_log_softmax, {0}, false},
    {"log_softmax_3d", f_log_softmax, {-1}, false},
    {"softmax_big", f_softmax, {1}, false},
    {"log_softmax_big", f_log_softmax, {1}, false},
    {"log_softmax_big_0", f_log_softmax, {0}, false},
    {"linear", f_linear, {0}, false},
    {"linear_nobias", f_linear_nobias, {0}, false},
    {"linear_3d", f_linear, {0}, false},
    {"cross_entropy", f_cross_entropy, {0}, false},
    {"matmul", f_matmul, {0}, false},
    {"matmul_batched", f_matmul, {0}, false},
    {"matmul_self", f_matmul_self, {0}, false},
    {"transpose_01", f_transpose, {0, 1}, false},
    {"transpose_02", f_transpose, {0, 2}, false},
    {"transpose_13", f_transpose, {1, 3}, false},
    {"transpose_neg", f_transpose, {-1, -2}, false},
    {"transpose_same", f_transpose, {1, 1}, false},
    {"reshape", f_reshape, {2, 6}, false},
    {"reshape_infer", f_reshape, {-1, 3}, false},
    {"view", f_view, {4, 3}, false},
    {"flatten_12", f_flatten, {1, 2}, false},
    {"flatten_all", f_flatten, {0, -1}, false},
    {"sum", f_sum, {0}, false},
    {"mean", f_mean, {0}, false},
    {"sum_dim0", f_sum_dim, {0, 0}, false},
    {"sum_dim1_keep", f_sum_dim, {1, 1}, false},
    {"sum_dim_3d", f_sum_dim, {-2, 0}, false},
    {"mean_dim_3d", f_mean_dim, {1, 0}, false},
    {"mean_dim_keep", f_mean_dim, {-1, 1}, false},
    {"max", f_max, {0}, false},
    {"max_tie", f_max, {0}, true},
    {"max_dim1", f_max_dim, {1, 0}, false},
    {"max_dim0_keep", f_max_dim, {0, 1}, false},
    {"max_dim_3d", f_max_dim, {1, 0}, false},
    {"max_dim_tie", f_max_dim, {1, 0}, true},
    {"index_select", f_index_select, {0}, false},
    {"index_select_3d", f_index_select, {0}, false},
    {"gather", f_gather, {0}, false},
    {"gather_small", f_gather, {0}, false},
    {"gather_3d", f_gather, {0}, false},
    {"cat_0", f_cat, {0, 2}, false},
    {"cat_1", f_cat, {1, 3}, false},
    {"cat_3d", f_cat, {-1, 2}, false},
    {"cat_self", f_cat_self, {0}, false},
    {"stack_0", f_stack, {0, 3}, false},
    {"stack_1", f_stack, {1, 2}, false},
    {"stack_last", f_stack, {-1, 2}, false},
    {"slice_1", f_slice, {1, 1, 4}, false},
    {"slice_neg", f_slice, {0, -3, -1}, false},
    {"slice_3d", f_slice, {1, 1, 3}, false},
    {"split_0", f_split, {2, 0}, false},
    {"split_1", f_split, {3, 1}, false},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static golden *gold;

static void load_gold(void) { gold = golden_load("ops.nbg.gz"); }
static void free_gold(void) { golden_free(gold), gold = NULL; }

/* Heap tensors for <name>.x0, .x1, ...: float ones require grad, int32 ones are indices. */
static int load_inputs(const char *name, nb_tensor **x) {
    int n = 0;
    char key[96];
    for (; n < 8; n++) {
        snprintf(key, sizeof key, "%s.x%d", name, n);
        if (!golden_has(gold, key)) break;
        const gold_entry *e = golden_get(gold, key);
        if (e->dtype == 1) {
            x[n] = nb_from_array(NULL, NB_INT32, e->ndim, e->shape, e->data);
        } else {
            x[n] = golden_tensor(gold, key);
            ck_assert_int_eq(nb_requires_grad(x[n], true), NB_OK);
        }
    }
    return n;
}

START_TEST(test_op_vs_pytorch) {
    const op_case *c = &cases[_i];
    nb_tensor *x[8];
    int n = load_inputs(c->name, x);
    ck_assert_msg(n > 0, "%s: no inputs in ops.nbg.gz", c->name);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *y = c->fn(ar, x, (void *)c);
    ck_assert_msg(y != NULL, "%s: %s", c->name, nb_last_error());
    char key[96];
    snprintf(key, sizeof key, "%s.y", c->name);
    const gold_entry *ye = golden_get(gold, key);
    ck_assert_msg(y->numel == ye->numel && y->ndim == ye->ndim, "%s: output shape %s", c->name,
                  nb_shape_str(y, (char[64]){0}, 64));
    for (int d = 0; d < y->ndim; d++) ck_assert_int_eq(y->shape[d], ye->shape[d]);
    assert_golden(key, nb_f32(y), ye, 1e-5);
    snprintf(key, sizeof key, "%s.w", c->name);
    const gold_entry *we = golden_get(gold, key);
    nb_tensor *w = nb_from_array(ar, NB_FLOAT32, we->ndim, we->shape, we->data);
    ck_assert_msg(nb_backward_grad(y, w) == NB_OK, "%s: %s", c->name, nb_last_error());
    for (int k = 0; k < n; k++) {
        if (x[k]->dtype != NB_FLOAT32) continue;
        snprintf(key, sizeof key, "%s.g%d", c->name, k);
        ck_assert_msg(x[k]->grad != NULL, "%s: no gradient", key);
        assert_golden(key, nb_f32(x[k]->grad), golden_get(gold, key), 1e-5);
    }
    if (!c->no_gradcheck)
        ck_assert_msg(nb_gradcheck(c->fn, n, x, (void *)c, NULL) == NB_OK, "%s: %s", c->name,
                      nb_last_error());
    for (int k = 0; k < n; k++) nb_tensor_free(x[k]);
    nb_arena_free(ar);
}
END_TEST

/* ---- broadcasting on random shapes against a plain multi-index loop ---------------------- */
static float ref_op(int op, float a, float b) {
    return op == 0 ? a + b : op == 1 ? a - b : op == 2 ? a * b : a / b;
}

/* d(a op b)/da and /db at (a, b) */
static void ref_grad(int op, float a, float b, float *da, float *db) {
    *da = op == 2 ? b : op == 3 ? 1.0f / b : 1.0f;
    *db = op == 0 ? 1.0f : op == 1 ? -1.0f : op == 2 ? a : -a / (b * b);
}

/* Flat offset in a tensor of rank nd (right-aligned in a rank-ndo output) of output index ix. */
static int64_t bcast_off(const nb_tensor *t, int ndo, const int64_t *ix) {
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) {
        int64_t i = ix[d + ndo - t->ndim];
        off = off * t->shape[d] + (t->shape[d] == 1 ? 0 : i);
    }
    return off;
}

START_TEST(test_broadcast_random_shapes) {
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_tensor *(*const ops[4])(nb_arena *, nb_tensor *, nb_tensor *) = {nb_add, nb_sub, nb_mul, nb_div};
    for (int trial = 0; trial < 200; trial++) {
        int op = trial % 4, nd = 1 + (int)nb_rng_below(&rng, 5);
        int64_t out[8], sa[8], sb[8];
        int na = nd - (int)nb_rng_below(&rng, 2), nbb = nd - (int)nb_rng_below(&rng, 2);
        if (na < nd && nbb < nd) na = nd; /* the output has rank nd */
        for (int d = 0; d < nd; d++) {
            out[d] = 1 + nb_rng_below(&rng, trial >= 100 && d == nd - 1 ? 70 : 4); /* long rows too */
            if (d >= nd - na) sa[d - (nd - na)] = nb_rng_below(&rng, 3) ? out[d] : 1;
            if (d >= nd - nbb) sb[d - (nd - nbb)] = nb_rng_below(&rng, 3) ? out[d] : 1;
        }
        nb_tensor *a = nb_uniform(NULL, na, sa, -1, 1, &rng);
        nb_tensor *b = nb_uniform(NULL, nbb, sb, 0.5f, 2, &rng);
        nb_requires_grad(a, true);
        nb_requires_grad(b, true);
        nb_arena *ar = nb_arena_new(0);
        nb_tensor *y = ops[op](ar, a, b);
        ck_assert_ptr_nonnull(y);
        nb_tensor *gy = nb_uniform(ar, y->ndim, y->shape, -1, 1, &rng);
        ck_assert_int_eq(nb_backward_grad(y, gy), NB_OK);
        float *ga = calloc((size_t)a->numel, sizeof(float)), *gb = calloc((size_t)b->numel, sizeof(float));
        int64_t ix[8] = {0};
        for (int64_t k = 0; k < y->numel; k++) {
            int64_t rem = k;
            for (int d = nd - 1; d >= 0; d--) ix[d] = rem % y->shape[d], rem /= y->shape[d];
            int64_t ia = bcast_off(a, nd, ix), ib = bcast_off(b, nd, ix);
            float av = nb_f32(a)[ia], bv = nb_f32(b)[ib], da, db;
            ck_assert_float_eq(nb_f32(y)[k], ref_op(op, av, bv));
            ref_grad(op, av, bv, &da, &db);
            ga[ia] += nb_f32(gy)[k] * da;
            gb[ib] += nb_f32(gy)[k] * db;
        }
        assert_close("grad a", nb_f32(a->grad), ga, a->numel, 1e-5, 1e-5);
        assert_close("grad b", nb_f32(b->grad), gb, b->numel, 1e-5, 1e-5);
        free(ga);
        free(gb);
        nb_arena_free(ar);
        nb_tensor_free(a);
        nb_tensor_free(b);
    }
}
END_TEST

/* Empty tensors broadcast, reduce and differentiate without touching memory they do not own. */
START_TEST(test_empty_tensors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *a = nb_zeros(NULL, 2, (int64_t[]){0, 3}), *b = nb_ones(NULL, 2, (int64_t[]){1, 3});
    nb_requires_grad(a, true);
    nb_requires_grad(b, true);
    nb_tensor *y = nb_mul(ar, a, b);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->shape[0], 0);
    ck_assert_int_eq(y->shape[1], 3);
    nb_tensor *s = nb_sum(ar, y);
    ck_assert_float_eq(nb_f32(s)[0], 0.0f);
    ck_assert_int_eq(nb_backward(s), NB_OK);
    for (int j = 0; j < 3; j++) ck_assert_float_eq(nb_f32(b->grad)[j], 0.0f);
    ck_assert(isnan(nb_item(nb_mean(ar, a))));
    ck_assert_ptr_null(nb_max(ar, a));
    ck_assert_str_eq(nb_last_error(), "max: expected reduction dim to be specified for input.numel() == 0 (shape [0, 3])");
    nb_tensor *m = nb_sum_dim(ar, a, 0, false);
    ck_assert_int_eq(m->shape[0], 3);
    ck_assert_float_eq(nb_f32(m)[2], 0.0f);
    nb_tensor *chunks[2];
    ck_assert_int_eq(nb_split(ar, a, 2, 0, chunks, 2), 1);
    ck_assert_int_eq(chunks[0]->shape[0], 0);
    nb_tensor_free(a);
    nb_tensor_free(b);
    nb_arena_free(ar);
}
END_TEST

/* linear with 0 input features: PyTorch's output is the bias broadcast over the rows, and the
 * backward runs (it used to divide by in_features). */
START_TEST(test_linear_zero_features) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_zeros(NULL, 2, (int64_t[]){5, 0}), *w = nb_zeros(NULL, 2, (int64_t[]){3, 0});
    nb_tensor *b = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){3}, (float[]){1, 2, 3});
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_tensor *y = nb_linear(ar, x, w, b);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->shape[0], 5);
    ck_assert_int_eq(y->shape[1], 3);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 3; j++) ck_assert_float_eq(nb_f32(y)[i * 3 + j], (float)(j + 1));
    ck_assert_int_eq(nb_backward(nb_sum(ar, y)), NB_OK);
    for (int j = 0; j < 3; j++) ck_assert_float_eq(nb_f32(b->grad)[j], 5.0f);
    y = nb_linear(ar, x, w, NULL);
    for (int k = 0; k < 15; k++) ck_assert_float_eq(nb_f32(y)[k], 0.0f);
    nb_tensor_free(x);
    nb_tensor_free(w);
    nb_tensor_free(b);
    nb_arena_free(ar);
}
END_TEST

/* 0-d tensors: reductions accept dim 0 and -1 (as PyTorch), broadcasting works. */
START_TEST(test_scalar_tensors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *s = nb_scalar(ar, 2.5f), *v = nb_arange(ar, 0, 3, 1);
    ck_assert_float_eq(nb_item(nb_sum_dim(ar, s, 0, false)), 2.5f);
    ck_assert_float_eq(nb_item(nb_max_dim(ar, s, -1, true)), 2.5f);
    ck_assert_int_eq((int)nb_item(nb_argmax(ar, s, 0, false)), 0);
    nb_tensor *y = nb_mul(ar, s, v);
    ck_assert_int_eq(y->ndim, 1);
    ck_assert_float_eq(nb_f32(y)[2], 5.0f);
    ck_assert_int_eq(nb_mul(ar, s, s)->ndim, 0);
    nb_arena_free(ar);
}
END_TEST

/* max and max_dim propagate NaN as PyTorch; argmax points at the first maximum. */
START_TEST(test_max_nan_and_argmax) {
    nb_arena *ar = nb_arena_new(0);
    float v[] = {1, 3, 3, 2, NAN, 2, NAN, 0};
    nb_tensor *x = nb_from_array(ar, NB_FLOAT32, 2, (int64_t[]){2, 4}, v);
    ck_assert(isnan(nb_item(nb_max(ar, x))));
    nb_tensor *m = nb_max_dim(ar, x, 1, false), *i = nb_argmax(ar, x, 1, true);
    ck_assert_float_eq(nb_f32(m)[0], 3.0f);
    ck_assert(isnan(nb_f32(m)[1]));
    ck_assert_int_eq(i->ndim, 2);
    ck_assert_int_eq(nb_i32(i)[0], 1);
    ck_assert_int_eq(nb_i32(i)[1], 0);
    nb_tensor *i0 = nb_argmax(ar, x, 0, false);
    ck_assert_int_eq(nb_i32(i0)[0], 1);
    ck_assert_int_eq(nb_i32(i0)[2], 1);
    nb_arena_free(ar);
}
END_TEST

/* ---- dropout: a fixed mask (the rng reseeded on every call) makes it differentiable ------- */
static nb_tensor *f_dropout(nb_arena *ar, nb_tensor *const *x, void *u) {
    (void)u;
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    return nb_dropout(ar, x[0], 0.3f, true, &rng);
}

START_TEST(test_dropout_gradcheck) {
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *x = nb_uniform(NULL, 2, (int64_t[]){8, 16}, -1, 1, &rng);
    nb_requires_grad(x, true);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *y = f_dropout(ar, &x, NULL);
    int zeros = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        float yi = nb_f32(y)[i];
        if (yi == 0.0f) zeros++;
        else ck_assert_float_eq_tol(yi, nb_f32(x)[i] / 0.7f, 1e-6);
    }
    ck_assert(zeros > 16 && zeros < 64); /* about 30% of 128 */
    ck_assert_msg(nb_gradcheck(f_dropout, 1, &x, NULL, NULL) == NB_OK, "%s", nb_last_error());
    ck_assert_ptr_eq(nb_dropout(ar, x, 0.3f, false, NULL), x); /* eval: identity */
    nb_arena_free(ar);
    nb_tensor_free(x);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------------ */
#define EXPECT_ERR(call, msg)                                                                 \
    do {                                                                                      \
        nb_clear_error();                                                                     \
        ck_assert_ptr_null(call);                                                             \
        ck_assert_str_eq(nb_last_error(), msg);                                               \
    } while (0)

START_TEST(test_elementwise_errors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *a = nb_zeros(ar, 2, (int64_t[]){2, 3}), *b = nb_zeros(ar, 1, (int64_t[]){4});
    nb_tensor *c = nb_zeros(ar, 3, (int64_t[]){5, 3, 1}), *i = nb_empty(ar, NB_INT32, 1, (int64_t[]){3});
    nb_tensor *d = nb_zeros(ar, 3, (int64_t[]){5, 2, 1});
    EXPECT_ERR(nb_add(ar, a, b), "add: shapes [2, 3] and [4] cannot be broadcast: the size of "
               "tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1");
    EXPECT_ERR(nb_div(ar, b, a), "div: shapes [4] and [2, 3] cannot be broadcast: the size of "
               "tensor a (4) must match the size of tensor b (3) at non-singleton dimension 1");
    EXPECT_ERR(nb_sub(ar, c, a), "sub: shapes [5, 3, 1] and [2, 3] cannot be broadcast: the size "
               "of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 1");
    ck_assert_int_eq(nb_mul(ar, d, a)->shape[2], 3); /* [5, 2, 1] * [2, 3] -> [5, 2, 3] */
    EXPECT_ERR(nb_mul(ar, a, i), "mul: other must be float32, got int32");
    EXPECT_ERR(nb_exp(ar, i), "exp: input must be float32, got int32");
    EXPECT_ERR(nb_clamp(ar, a, NAN, 1), "clamp: min and max must not be NaN");
    /* a NULL input gives NULL and keeps the error that produced it */
    nb_clear_error();
    ck_assert_ptr_null(nb_sqrt(ar, nb_add(ar, a, b)));
    ck_assert_ptr_null(nb_add(ar, NULL, a));
    ck_assert_ptr_null(nb_add_scalar(ar, NULL, 1));
    ck_assert_ptr_null(nb_cat(ar, 2, (nb_tensor *[]){a, NULL}, 0));
    ck_assert_int_eq(nb_split(ar, NULL, 1, 0, (nb_tensor *[1]){0}, 1), NB_EINVAL);
    ck_assert(strncmp(nb_last_error(), "add: shapes [2, 3] and [4]", 26) == 0);
    nb_arena_free(ar);
}
END_TEST

START_TEST(test_matmul_transpose_errors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *a = nb_zeros(ar, 2, (int64_t[]){2, 3}), *b = nb_zeros(ar, 2, (int64_t[]){4, 5});
    nb_tensor *c = nb_zeros(ar, 3, (int64_t[]){2, 3, 4}), *d = nb_zeros(ar, 3, (int64_t[]){3, 4, 5});
    nb_tensor *v = nb_zeros(ar, 1, (int64_t[]){3});
    EXPECT_ERR(nb_matmul(ar, a, b), "matmul: shapes [2, 3] and [4, 5] cannot be multiplied (3 != 4)");
    EXPECT_ERR(nb_matmul(ar, a, v), "matmul: expected two 2-D or two 3-D tensors, got [2, 3] and [3]");
    EXPECT_ERR(nb_matmul(ar, c, b), "matmul: expected two 2-D or two 3-D tensors, got [2, 3, 4] and [4, 5]");
    EXPECT_ERR(nb_matmul(ar, c, d), "matmul: batch sizes differ: [2, 3, 4] and [3, 4, 5]");
    EXPECT_ERR(nb_transpose(ar, a, 0, 2), "transpose: dim 2 is out of range for a tensor of rank 2");
    EXPECT_ERR(nb_transpose(ar, a, -3, 0), "transpose: dim -3 is out of range for a tensor of rank 2");
    nb_arena_free(ar);
}
END_TEST

START_TEST(test_reduce_errors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *a = nb_zeros(ar, 2, (int64_t[]){2, 3}), *e = nb_zeros(ar, 2, (int64_t[]){2, 0});
    EXPECT_ERR(nb_sum_dim(ar, a, 2, false), "sum_dim: dim 2 is out of range for a tensor of rank 2");
    EXPECT_ERR(nb_mean_dim(ar, a, -3, true), "mean_dim: dim -3 is out of range for a tensor of rank 2");
    EXPECT_ERR(nb_max_dim(ar, a, 5, false), "max_dim: dim 5 is out of range for a tensor of rank 2");
    EXPECT_ERR(nb_max_dim(ar, e, 1, false), "max_dim: cannot reduce an empty dim");
    EXPECT_ERR(nb_argmax(ar, e, -1, false), "argmax: cannot reduce an empty dim");
    EXPECT_ERR(nb_sum_dim(ar, nb_scalar(ar, 1), 1, false), "sum_dim: dim 1 is out of range for a tensor of rank 0");
    nb_tensor *m = nb_max_dim(ar, e, 0, false); /* reducing a non-empty dim of an empty tensor */
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(m->numel, 0);
    nb_arena_free(ar);
}
END_TEST

START_TEST(test_index_errors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *a = nb_zeros(ar, 2, (int64_t[]){3, 4}), *f = nb_zeros(ar, 1, (int64_t[]){2});
    nb_tensor *i1 = nb_from_array(ar, NB_INT32, 1, (int64_t[]){2}, (int32_t[]){0, 3});
    nb_tensor *in = nb_from_array(ar, NB_INT32, 1, (int64_t[]){2}, (int32_t[]){-1, 0});
    nb_tensor *i2 = nb_from_array(ar, NB_INT32, 2, (int64_t[]){1, 2}, (int32_t[]){0, 1});
    nb_tensor *big = nb_from_array(ar, NB_INT32, 2, (int64_t[]){1, 5}, (int32_t[]){0, 1, 2, 0, 1});
    nb_tensor *oob = nb_from_array(ar, NB_INT32, 2, (int64_t[]){1, 2}, (int32_t[]){0, 7});
    EXPECT_ERR(nb_index_select(ar, a, i1), "index_select: index 3 is out of bounds for dimension 0 with size 3");
    EXPECT_ERR(nb_index_select(ar, a, in), "index_select: index -1 is out of bounds for dimension 0 with size 3");
    EXPECT_ERR(nb_index_select(ar, a, f), "index_select: index must be a 1-D int32 tensor, got float32 [2]");
    EXPECT_ERR(nb_index_select(ar, a, i2), "index_select: index must be a 1-D int32 tensor, got int32 [1, 2]");
    EXPECT_ERR(nb_gather(ar, a, i1), "gather: index [2] must have the same number of dimensions (at least 1) as input [3, 4]");
    EXPECT_ERR(nb_gather(ar, a, big), "gather: size does not match at dimension 1: expected index [1, 5] to be smaller than self [3, 4] apart from dimension 0");
    EXPECT_ERR(nb_gather(ar, a, oob), "gather: index 7 is out of bounds for dimension 0 with size 3");
    EXPECT_ERR(nb_gather(ar, a, f), "gather: index must be int32, got float32");
    nb_arena_free(ar);
}
END_TEST

/* Sizes near INT64_MAX: split counts its chunks and reshape multiplies the shape without
 * signed overflow (both were undefined behaviour). */
START_TEST(test_split_reshape_huge_sizes) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *v = nb_zeros(ar, 1, (int64_t[]){5}), *out[2];
    ck_assert_int_eq(nb_split(ar, v, INT64_MAX, 0, out, 2), 1);
    ck_assert_int_eq(out[0]->shape[0], 5);
    ck_assert_int_eq(nb_split(ar, v, INT64_MAX - 2, 0, out, 2), 1);
    EXPECT_ERR(nb_reshape(ar, v, 2, (int64_t[]){(int64_t)1 << 40, (int64_t)1 << 40}),
               "reshape: shape '[1099511627776, 1099511627776]' is invalid for input of size 5");
    EXPECT_ERR(nb_reshape(ar, v, 3, (int64_t[]){(int64_t)1 << 40, (int64_t)1 << 40, -1}),
               "reshape: shape '[1099511627776, 1099511627776, -1]' is invalid for input of size 5");
    nb_tensor *e = nb_zeros(ar, 1, (int64_t[]){0}); /* numel 0, but sizes no tensor can have */
    EXPECT_ERR(nb_reshape(ar, e, 3, (int64_t[]){(int64_t)1 << 40, (int64_t)1 << 40, 0}),
               "reshape: shape [1099511627776, 1099511627776, 0] is too large");
    ck_assert_int_eq(nb_reshape(ar, e, 3, (int64_t[]){4, 0, 5})->shape[2], 5);
    nb_arena_free(ar);
}
END_TEST

START_TEST(test_join_errors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *a = nb_zeros(ar, 2, (int64_t[]){2, 3}), *b = nb_zeros(ar, 2, (int64_t[]){3, 3});
    nb_tensor *c = nb_zeros(ar, 1, (int64_t[]){3}), *s = nb_scalar(ar, 1);
    EXPECT_ERR(nb_cat(ar, 2, (nb_tensor *[]){a, b}, 1), "cat: sizes of tensors must match except "
               "in dimension 1. Expected size 2 but got size 3 for tensor number 1 in the list "
               "(shapes [2, 3] and [3, 3])");
    ck_assert_int_eq(nb_cat(ar, 2, (nb_tensor *[]){a, b}, 0)->shape[0], 5);
    EXPECT_ERR(nb_cat(ar, 2, (nb_tensor *[]){a, c}, 0), "cat: tensors must have the same rank, "
               "got [2, 3] at entry 0 and [3] at entry 1");
    EXPECT_ERR(nb_cat(ar, 0, (nb_tensor *[]){a}, 0), "cat: expected a non-empty list of tensors");
    EXPECT_ERR(nb_cat(ar, 1, (nb_tensor *[]){s}, 0), "cat: zero-dimensional tensor (at position 0) cannot be concatenated");
    EXPECT_ERR(nb_cat(ar, 2, (nb_tensor *[]){a, a}, 2), "cat: dim 2 is out of range for a tensor of rank 2");
    EXPECT_ERR(nb_stack(ar, 2, (nb_tensor *[]){a, b}, 0), "stack: expects each tensor to be equal "
               "size, but got [2, 3] at entry 0 and [3, 3] at entry 1");
    EXPECT_ERR(nb_stack(ar, 2, (nb_tensor *[]){a, a}, 3), "stack: dim 3 is out of range for a tensor of rank 3");
    ck_assert_int_eq(nb_stack(ar, 2, (nb_tensor *[]){a, a}, -3)->shape[0], 2);
    ck_assert_int_eq(nb_stack(ar, 2, (nb_tensor *[]){s, s}, 0)->shape[0], 2);
    EXPECT_ERR(nb_slice(ar, a, 1, 2, 4), "slice: start 2 and end 4 are out of range for dim 1 of size 3 (shape [2, 3])");
    EXPECT_ERR(nb_slice(ar, a, 0, 2, 1), "slice: start 2 and end 1 are out of range for dim 0 of size 2 (shape [2, 3])");
    EXPECT_ERR(nb_slice(ar, a, 2, 0, 1), "slice: dim 2 is out of range for a tensor of rank 2");
    ck_assert_int_eq(nb_slice(ar, a, 1, 1, 1)->numel, 0);
    nb_tensor *out[4] = {0};
    ck_assert_int_eq(nb_split(ar, b, 0, 0, out, 4), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "split: split_size can only be 0 if dimension size is 0, but got dimension size of 3");
    ck_assert_int_eq(nb_split(ar, b, -1, 0, out, 4), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "split: split_size must be non-negative, got -1");
    ck_assert_int_eq(nb_split(ar, b, 1, 2, out, 4), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "split: dim 2 is out of range for a tensor of rank 2");
    /* as snprintf: the count of chunks, at most max written */
    ck_assert_int_eq(nb_split(ar, b, 1, 0, NULL, 0), 3);
    ck_assert_int_eq(nb_split(ar, b, 2, 1, out, 1), 2);
    ck_assert_ptr_nonnull(out[0]);
    ck_assert_ptr_null(out[1]);
    ck_assert_int_eq(out[0]->shape[1], 2);
    nb_arena_free(ar);
}
END_TEST

/* Ops given the wrong kind of tensor leave no node on the tape. */
START_TEST(test_failed_op_records_nothing) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *a = nb_ones(NULL, 2, (int64_t[]){2, 3}), *b = nb_ones(NULL, 1, (int64_t[]){4});
    nb_requires_grad(a, true);
    size_t used = nb_arena_used(ar);
    ck_assert_ptr_null(nb_add(ar, a, b));
    ck_assert_ptr_null(nb_matmul(ar, a, a));
    ck_assert_ptr_null(nb_transpose(ar, a, 0, 3));
    ck_assert_uint_eq(nb_arena_used(ar), used);
    nb_tensor_free(a);
    nb_tensor_free(b);
    nb_arena_free(ar);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("pytorch");
    tcase_add_unchecked_fixture(tc, load_gold, free_gold);
    tcase_add_loop_test(tc, test_op_vs_pytorch, 0, NCASES);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("properties");
    tcase_add_test(tp, test_broadcast_random_shapes);
    tcase_add_test(tp, test_empty_tensors);
    tcase_add_test(tp, test_linear_zero_features);
    tcase_add_test(tp, test_scalar_tensors);
    tcase_add_test(tp, test_max_nan_and_argmax);
    tcase_add_test(tp, test_dropout_gradcheck);
    suite_add_tcase(s, tp);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, test_elementwise_errors);
    tcase_add_test(te, test_matmul_transpose_errors);
    tcase_add_test(te, test_reduce_errors);
    tcase_add_test(te, test_index_errors);
    tcase_add_test(te, test_join_errors);
    tcase_add_test(te, test_split_reshape_huge_sizes);
    tcase_add_test(te, test_failed_op_records_nothing);
    suite_add_tcase(s, te);
    return run_suite(s) ? 1 : 0;
}
