/* test_rnn.c - RNN / LSTM / GRU, their cells, Embedding and select: parity with PyTorch
 * (outputs, final states and every gradient), finite-difference gradient checks of every op,
 * shape errors, names and init, dropout between layers, and a zero-allocation training step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "common.h"

enum { M_TANH, M_RELU, M_LSTM, M_GRU };

/* ---- helpers ------------------------------------------------------------------------------ */
static nb_module *make_module(const int32_t *cfg, nb_rng *rng) {
    int mode = cfg[0];
    int64_t I = cfg[1], H = cfg[2];
    bool bias = cfg[6], cell = cfg[9];
    if (cell) {
        if (mode == M_LSTM) return nb_lstm_cell_new(I, H, bias, rng);
        if (mode == M_GRU) return nb_gru_cell_new(I, H, bias, rng);
        return nb_rnn_cell_new(I, H, bias, mode == M_RELU, rng);
    }
    nb_rnn_opts o = nb_rnn_defaults();
    o.num_layers = cfg[3];
    o.bidirectional = cfg[4];
    o.batch_first = cfg[5];
    o.bias = bias;
    o.relu = mode == M_RELU;
    if (mode == M_LSTM) return nb_lstm_new(I, H, &o, rng);
    if (mode == M_GRU) return nb_gru_new(I, H, &o, rng);
    return nb_rnn_new(I, H, &o, rng);
}

/* sum(t * w) as a differentiable scalar: linear(t.view(1, n), w.view(1, n)). */
static nb_tensor *dot(nb_arena *ar, nb_tensor *t, const float *w) {
    int64_t n = t->numel;
    nb_tensor *wt = nb_from_array(ar, NB_FLOAT32, 2, (int64_t[]){1, n}, w);
    return nb_linear(ar, nb_reshape(ar, t, 2, (int64_t[]){1, n}), wt, NULL);
}

/* Max elementwise relative error, |expected| floored at 1% of the tensor's largest magnitude:
 * an element that is the small difference of terms as large as the largest one (a gradient
 * summed over steps and batch) carries float32 rounding of those terms, in PyTorch as here,
 * so below that floor it is compared absolutely at the floor's scale. */
static double rel_err(const float *a, const float *b, int64_t n) {
    double scale = 0.0;
    for (int64_t i = 0; i < n; i++) scale = fabs(b[i]) > scale ? fabs(b[i]) : scale;
    return max_rel_err(a, b, n, scale > 0 ? 1e-2 * scale : 1e-30, NULL);
}

static double worst_out, worst_grad;

static void check(const char *what, const nb_tensor *t, const gold_entry *e, bool grad) {
    ck_assert_msg(t != NULL, "%s: missing (%s)", what, nb_last_error());
    ck_assert_msg(t->ndim == e->ndim, "%s: rank %d, expected %d", what, t->ndim, e->ndim);
    for (int i = 0; i < e->ndim; i++)
        ck_assert_msg(t->shape[i] == e->shape[i], "%s: dim %d is %lld, expected %lld", what, i,
                      (long long)t->shape[i], (long long)e->shape[i]);
    double r = rel_err(nb_f32(t), e->data, e->numel);
    ck_assert_msg(r <= 1e-5, "%s: max relative error %.3g", what, r);
    double *w = grad ? &worst_grad : &worst_out;
    if (r > *w) *w = r;
}

/* ---- parity with PyTorch: every case of tools/golden/gen_rnn.py --------------------------- */
START_TEST(test_golden) {
    golden *g = golden_load("rnn.nbg.gz");
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    int ncase = 0;
    for (;; ncase++) {
        char k[64], what[96];
#define KEY(s) (snprintf(k, sizeof k, "case%d.%s", ncase, s), k)
        if (!golden_has(g, KEY("cfg"))) break;
        const int32_t *cfg = golden_get(g, KEY("cfg"))->data;
        int mode = cfg[0];
        bool states = cfg[8], cell = cfg[9];
        nb_module *m = make_module(cfg, &rng);
        ck_assert_ptr_nonnull(m);
        int np = *(const int32_t *)golden_get(g, KEY("nparams"))->data;
        ck_assert_int_eq(nb_module_num_params(m), np);
        for (int i = 0; i < np; i++) {
            char pk[32], name[64] = "";
            snprintf(pk, sizeof pk, "name%d", i);
            const gold_entry *ne = golden_get(g, KEY(pk));
            for (int64_t j = 0; j < ne->numel; j++) name[j] = (char)((const int32_t *)ne->data)[j];
            nb_named_tensor p = nb_module_param(m, i);
            ck_assert_str_eq(p.name, name);
            snprintf(pk, sizeof pk, "param%d", i);
            const gold_entry *pe = golden_get(g, KEY(pk));
            ck_assert_int_eq(p.tensor->numel, pe->numel);
            memcpy(p.tensor->data, pe->data, sizeof(float) * (size_t)pe->numel);
        }
        nb_tensor *x = golden_tensor(g, KEY("x")), *h0 = NULL, *c0 = NULL;
        nb_requires_grad(x, true);
        if (states) {
            nb_requires_grad(h0 = golden_tensor(g, KEY("h0")), true);
            if (mode == M_LSTM) nb_requires_grad(c0 = golden_tensor(g, KEY("c0")), true);
        }
        nb_arena *ar = nb_arena_new(0);
        nb_tensor *out, *hn = NULL, *cn = NULL;
        if (cell) out = nb_rnn_cell_forward(m, ar, x, h0, c0, mode == M_LSTM ? &cn : NULL);
        else out = nb_rnn_forward(m, ar, x, h0, c0, &hn, mode == M_LSTM ? &cn : NULL);
        snprintf(what, sizeof what, "case%d (%s) out", ncase, m->ops->type);
        check(what, out, golden_get(g, KEY("out")), false);
        if (!cell) check("h_n", hn, golden_get(g, KEY("h_n")), false);
        if (mode == M_LSTM) check("c_n", cn, golden_get(g, KEY("c_n")), false);
        { /* without grad the forward keeps one-step buffers only: the same bits */
            nb_arena *ar2 = nb_arena_new(0);
            nb_tensor *out2, *hn2 = NULL, *cn2 = NULL;
            bool prev = nb_set_grad_enabled(false);
            if (cell) out2 = nb_rnn_cell_forward(m, ar2, x, h0, c0, mode == M_LSTM ? &cn2 : NULL);
            else out2 = nb_rnn_forward(m, ar2, x, h0, c0, &hn2, mode == M_LSTM ? &cn2 : NULL);
            nb_set_grad_enabled(prev);
            ck_assert_ptr_nonnull(out2);
            ck_assert_msg(!nb_tensor_requires_grad(out2), "case%d: no-grad output requires grad", ncase);
            /* (other GEMMs may round a product of fewer rows differently) */
            bool exact = !strncmp(nb_blas_backend(), "avx512", 6);
            const nb_tensor *pairs[3][2] = {{out2, out}, {hn2, hn}, {cn2, cn}};
            for (int j = 0; j < 3; j++) {
                if (!pairs[j][1]) continue;
                const nb_tensor *a = pairs[j][0], *b = pairs[j][1];
                if (exact)
                    ck_assert_msg(!memcmp(a->data, b->data, sizeof(float) * (size_t)b->numel),
                                  "case%d (%s): no-grad result %d differs", ncase, m->ops->type, j);
                else
                    ck_assert_double_le(rel_err(nb_f32(a), nb_f32(b), b->numel), 1e-6);
            }
            nb_arena_free(ar2);
        }
        /* three backward passes accumulate the gradient of the sum of the three terms, and
         * check that the final states alone reach the parameters */
        nb_module_zero_grad(m, true);
        ck_assert_int_eq(nb_backward(dot(ar, out, golden_get(g, KEY("w_out"))->data)), NB_OK);
        if (hn) ck_assert_int_eq(nb_backward(dot(ar, hn, golden_get(g, KEY("w_h"))->data)), NB_OK);
        if (cn) ck_assert_int_eq(nb_backward(dot(ar, cn, golden_get(g, KEY("w_c"))->data)), NB_OK);
        snprintf(what, sizeof what, "case%d grad x", ncase);
        check(what, x->grad, golden_get(g, KEY("grad_x")), true);
        if (h0) check("grad h0", h0->grad, golden_get(g, KEY("grad_h0")), true);
        if (c0) check("grad c0", c0->grad, golden_get(g, KEY("grad_c0")), true);
        for (int i = 0; i < np; i++) {
            char pk[32];
            snprintf(pk, sizeof pk, "grad%d", i);
            nb_named_tensor p = nb_module_param(m, i);
            snprintf(what, sizeof what, "case%d (%s) grad %s", ncase, m->ops->type, p.name);
            check(what, p.tensor->grad, golden_get(g, KEY(pk)), true);
        }
#undef KEY
        nb_arena_free(ar);
        nb_tensor_free(x);
        nb_tensor_free(h0);
        nb_tensor_free(c0);
        nb_module_free(m);
    }
    ck_assert_int_eq(ncase, 36);
    printf("rnn golden: %d cases, max relative error: outputs %.2g, gradients %.2g\n", ncase,
           worst_out, worst_grad);
    golden_free(g);
}
END_TEST

/* ---- finite-difference gradient checks ------------------------------------------------------
 * nb_gradcheck: analytic gradients of sum(w * f(inputs)) (w fixed, random) against central
 * differences, for every element of every input that requires grad (the module's parameters
 * included). fd_check below is the same check, skipping elements at a ReLU kink. */
typedef nb_tensor *(*fd_fn)(nb_arena *ar, nb_tensor *const *in, void *user);

static double weighted_sum(const nb_tensor *t, const float *w) {
    double s = 0;
    for (int64_t i = 0; i < t->numel; i++) s += (double)nb_f32(t)[i] * w[i];
    return s;
}

/* Elements where the function is not smooth within +-eps (a ReLU unit crossing zero: the
 * second difference is far above float noise) are skipped, at most 3% of them. */
static void fd_check(const char *what, fd_fn f, void *user, nb_tensor *const *in, int n) {
    const double eps = 1e-3, tol = 1e-2, kink = 1e-5;
    nb_arena *ar = nb_arena_new(0);
    for (int i = 0; i < n; i++) in[i]->grad = NULL;
    nb_tensor *out = f(ar, in, user);
    ck_assert_msg(out != NULL, "%s: %s", what, nb_last_error());
    nb_rng r;
    nb_rng_seed(&r, 99);
    float *w = malloc(sizeof(float) * (size_t)out->numel);
    for (int64_t i = 0; i < out->numel; i++) w[i] = 2.0f * nb_rng_uniform(&r) - 1.0f;
    nb_tensor *wt = nb_from_array(ar, NB_FLOAT32, out->ndim, out->shape, w);
    ck_assert_int_eq(nb_backward_grad(out, wt), NB_OK);
    bool prev = nb_set_grad_enabled(false);
    nb_arena_reset(ar);
    double l0 = weighted_sum(f(ar, in, user), w);
    int64_t total = 0, skipped = 0;
    for (int i = 0; i < n; i++) {
        nb_tensor *t = in[i];
        ck_assert_msg(t->grad != NULL, "%s: input %d got no gradient", what, i);
        for (int64_t j = 0; j < t->numel; j++) {
            float v = nb_f32(t)[j];
            nb_f32(t)[j] = v + (float)eps;
            nb_arena_reset(ar);
            double lp = weighted_sum(f(ar, in, user), w);
            nb_f32(t)[j] = v - (float)eps;
            nb_arena_reset(ar);
            double lm = weighted_sum(f(ar, in, user), w);
            nb_f32(t)[j] = v;
            double num = (lp - lm) / (2 * eps), ana = nb_f32(t->grad)[j];
            total++;
            if (fabs(lp - 2 * l0 + lm) > kink) {
                skipped++;
                continue;
            }
            ck_assert_msg(fabs(ana - num) <= tol * (1 + fabs(num)),
                          "%s: input %d element %lld: analytic %.6g, numeric %.6g", what, i,
                          (long long)j, ana, num);
        }
    }
    ck_assert_msg(skipped * 100 <= total * 3, "%s: %lld of %lld elements not smooth", what,
                  (long long)skipped, (long long)total);
    nb_set_grad_enabled(prev);
    free(w);
    nb_arena_free(ar);
}

typedef struct rnn_case {
    nb_module *m;
    nb_tensor *x, *h0, *c0;
    int which; /* 0 output, 1 h_n, 2 c_n */
    nb_rng *rng;
} rnn_case;

static nb_tensor *rnn_fn(nb_arena *ar, nb_tensor *const *in, void *user) {
    rnn_case *c = user;
    (void)in; /* the same tensors as c->x, c->h0, c->c0 and the module's parameters */
    if (c->rng) nb_rng_seed(c->rng, 5); /* same dropout masks at every evaluation */
    nb_tensor *hn = NULL, *cn = NULL, *out;
    if (c->m->ops->type[strlen(c->m->ops->type) - 1] == 'l') /* ...Cell */
        out = nb_rnn_cell_forward(c->m, ar, c->x, c->h0, c->c0, &cn);
    else
        out = nb_rnn_forward(c->m, ar, c->x, c->h0, c->c0, &hn, &cn);
    return c->which == 0 ? out : c->which == 1 ? hn : cn;
}

static nb_tensor *randn(nb_rng *r, int ndim, const int64_t *shape) {
    nb_tensor *t = nb_normal(NULL, ndim, shape, 0.0f, 1.0f, r);
    nb_requires_grad(t, true);
    return t;
}

/* Check the gradients reaching x, h0, c0 and every parameter from each output. */
/* nb_gradcheck for the smooth cells; ReLU RNNs cross their kink within any finite step, so
 * they go through fd_check, which skips the few elements where that happens. */
static void fd_module(const char *what, nb_module *m, nb_tensor *x, nb_tensor *h0, nb_tensor *c0,
                      nb_rng *dropout_rng, bool relu) {
    nb_tensor *in[64];
    int n = 0;
    in[n++] = x;
    if (h0) in[n++] = h0;
    if (c0) in[n++] = c0;
    n += nb_module_parameters(m, in + n, 64 - n);
    bool cell = m->ops->type[strlen(m->ops->type) - 1] == 'l';
    bool lstm = strstr(m->ops->type, "LSTM") != NULL;
    for (int which = 0; which < 3; which++) {
        if ((which == 1 && cell) || (which == 2 && !lstm)) continue;
        rnn_case c = {m, x, h0, c0, which, dropout_rng};
        char buf[128];
        snprintf(buf, sizeof buf, "%s (from %s)", what, which == 0 ? "output" : which == 1 ? "h_n" : "c_n");
        if (relu) {
            fd_check(buf, rnn_fn, &c, in, n);
        } else {
            nb_clear_error();
            ck_assert_msg(nb_gradcheck(rnn_fn, n, in, &c, NULL) == NB_OK, "%s: %s", buf, nb_last_error());
        }
    }
}

START_TEST(test_gradcheck_modules) {
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    for (int mode = 0; mode < 4; mode++) {
        int32_t cfg[10] = {mode, 3, 4, 2, 1, 0, 1, 1, 1, 0}; /* 2 layers, bidirectional */
        for (int bf = 0; bf < 2; bf++) {
            cfg[5] = bf;
            nb_module *m = make_module(cfg, &rng);
            int64_t T = 4, B = 2;
            nb_tensor *x = randn(&rng, 3, bf ? (int64_t[]){B, T, 3} : (int64_t[]){T, B, 3});
            nb_tensor *h0 = randn(&rng, 3, (int64_t[]){4, B, 4});
            nb_tensor *c0 = mode == M_LSTM ? randn(&rng, 3, (int64_t[]){4, B, 4}) : NULL;
            char what[64];
            snprintf(what, sizeof what, "%s batch_first=%d", m->ops->type, bf);
            fd_module(what, m, x, h0, c0, NULL, mode == M_RELU);
            nb_tensor_free(x);
            nb_tensor_free(h0);
            nb_tensor_free(c0);
            nb_module_free(m);
        }
    }
}
END_TEST

START_TEST(test_gradcheck_cells) {
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    for (int mode = 0; mode < 4; mode++) {
        int32_t cfg[10] = {mode, 3, 5, 1, 0, 0, 1, 1, 1, 1};
        nb_module *m = make_module(cfg, &rng);
        nb_tensor *x = randn(&rng, 2, (int64_t[]){3, 3}), *h = randn(&rng, 2, (int64_t[]){3, 5});
        nb_tensor *c = mode == M_LSTM ? randn(&rng, 2, (int64_t[]){3, 5}) : NULL;
        fd_module(m->ops->type, m, x, h, c, NULL, mode == M_RELU);
        nb_tensor_free(x);
        nb_tensor_free(h);
        nb_tensor_free(c);
        nb_module_free(m);
    }
}
END_TEST

/* Dropout between layers: with the generator reseeded before each evaluation the masks repeat,
 * so the gradient is checked through them too. */
START_TEST(test_gradcheck_dropout) {
    nb_rng rng, drng;
    nb_rng_seed(&rng, 6);
    nb_rnn_opts o = nb_rnn_defaults();
    o.num_layers = 3;
    o.dropout = 0.4f;
    o.dropout_rng = &drng;
    nb_module *m = nb_gru_new(3, 4, &o, &rng);
    ck_assert_ptr_nonnull(m);
    nb_tensor *x = randn(&rng, 3, (int64_t[]){4, 2, 3});
    fd_module("GRU dropout=0.4", m, x, NULL, NULL, &drng, false);
    /* eval mode: no dropout, so the output does not depend on the generator */
    nb_arena *ar = nb_arena_new(0);
    nb_module_train(m, false);
    nb_rng_seed(&drng, 1);
    nb_tensor *a = nb_forward(m, ar, x);
    nb_rng_seed(&drng, 2);
    nb_tensor *b = nb_forward(m, ar, x);
    ck_assert_mem_eq(a->data, b->data, sizeof(float) * (size_t)a->numel);
    /* training mode: different masks, different outputs, and some units zeroed in layer 1 */
    nb_module_train(m, true);
    nb_rng_seed(&drng, 1);
    a = nb_forward(m, ar, x);
    nb_rng_seed(&drng, 2);
    b = nb_forward(m, ar, x);
    ck_assert(memcmp(a->data, b->data, sizeof(float) * (size_t)a->numel) != 0);
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_module_free(m);
}
END_TEST

typedef struct emb_case {
    nb_tensor *idx, *w;
    int64_t pad;
} emb_case;

static nb_tensor *emb_fn(nb_arena *ar, nb_tensor *const *in, void *user) {
    emb_case *c = user;
    (void)in;
    return nb_embedding(ar, c->idx, c->w, c->pad);
}

typedef struct sel_case {
    nb_tensor *x;
    int dim;
    int64_t index;
} sel_case;

static nb_tensor *sel_fn(nb_arena *ar, nb_tensor *const *in, void *user) {
    sel_case *c = user;
    (void)in;
    return nb_select(ar, c->x, c->dim, c->index);
}

START_TEST(test_gradcheck_embedding_select) {
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_tensor *w = randn(&rng, 2, (int64_t[]){6, 3});
    int32_t iv[8] = {1, 4, 4, 0, 5, 2, 4, 1};
    nb_tensor *idx = nb_from_array(NULL, NB_INT32, 2, (int64_t[]){2, 4}, iv);
    emb_case e = {idx, w, -1};
    nb_tensor *ein[2] = {idx, w};
    ck_assert_msg(nb_gradcheck(emb_fn, 2, ein, &e, NULL) == NB_OK, "embedding: %s", nb_last_error());
    /* padding_idx: that row gets no gradient */
    e.pad = 4;
    nb_arena *ar = nb_arena_new(0);
    w->grad = NULL;
    nb_tensor *y = nb_embedding(ar, idx, w, 4);
    ck_assert_int_eq(y->ndim, 3);
    ck_assert_int_eq(y->shape[2], 3);
    ck_assert_int_eq(nb_backward_grad(y, nb_ones(ar, 3, y->shape)), NB_OK);
    for (int j = 0; j < 3; j++) {
        ck_assert(nb_f32(w->grad)[4 * 3 + j] == 0.0f);
        ck_assert(nb_f32(w->grad)[1 * 3 + j] == 2.0f); /* index 1 appears twice */
        ck_assert(nb_f32(w->grad)[3 * 3 + j] == 0.0f); /* index 3 never */
    }
    nb_tensor *x = randn(&rng, 3, (int64_t[]){2, 3, 4});
    for (int dim = -3; dim < 3; dim++) {
        sel_case s = {x, dim, -1};
        ck_assert_msg(nb_gradcheck(sel_fn, 1, &x, &s, NULL) == NB_OK, "select: %s", nb_last_error());
    }
    sel_case s = {x, 1, 1};
    ck_assert_msg(nb_gradcheck(sel_fn, 1, &x, &s, NULL) == NB_OK, "select: %s", nb_last_error());
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(w);
    nb_tensor_free(idx);
}
END_TEST

/* ---- errors -------------------------------------------------------------------------------- */
#define EXPECT_ERR(call, msg)                                                                \
    do {                                                                                     \
        nb_clear_error();                                                                    \
        ck_assert_ptr_null(call);                                                            \
        ck_assert_str_eq(nb_last_error(), msg);                                              \
    } while (0)

START_TEST(test_bad_shapes) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_rnn_opts o = nb_rnn_defaults();
    o.num_layers = 2;
    nb_module *lstm = nb_lstm_new(4, 3, &o, &rng), *gru = nb_gru_new(4, 3, NULL, &rng);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_zeros(ar, 3, (int64_t[]){5, 2, 4});
    nb_tensor *hn = (nb_tensor *)1, *cn = (nb_tensor *)1;
    EXPECT_ERR(nb_rnn_forward(lstm, ar, nb_zeros(ar, 3, (int64_t[]){5, 2, 3}), NULL, NULL, &hn, &cn),
               "LSTM: input.size(-1) must be equal to input_size. Expected 4, got 3");
    ck_assert_ptr_null(hn);
    ck_assert_ptr_null(cn);
    EXPECT_ERR(nb_rnn_forward(lstm, ar, nb_zeros(ar, 4, (int64_t[]){5, 2, 4, 1}), NULL, NULL, NULL, NULL),
               "LSTM: input must have 3 dimensions (2 if unbatched), got 4");
    EXPECT_ERR(nb_rnn_forward(lstm, ar, nb_zeros(ar, 3, (int64_t[]){0, 2, 4}), NULL, NULL, NULL, NULL),
               "LSTM: Expected sequence length to be larger than 0 in RNN");
    EXPECT_ERR(nb_rnn_forward(lstm, ar, x, nb_zeros(ar, 3, (int64_t[]){1, 2, 3}), NULL, NULL, NULL),
               "LSTM: Expected hidden[0] size (2, 2, 3), got [1, 2, 3]");
    EXPECT_ERR(nb_rnn_forward(lstm, ar, x, NULL, nb_zeros(ar, 3, (int64_t[]){2, 3, 3}), NULL, NULL),
               "LSTM: Expected hidden[1] size (2, 2, 3), got [2, 3, 3]");
    EXPECT_ERR(nb_rnn_forward(lstm, ar, x, nb_zeros(ar, 2, (int64_t[]){2, 3}), NULL, NULL, NULL),
               "LSTM: For batched 3-D input, h0 should also be 3-D but got 2-D tensor");
    EXPECT_ERR(nb_rnn_forward(lstm, ar, nb_zeros(ar, 2, (int64_t[]){5, 4}), nb_zeros(ar, 3, (int64_t[]){2, 1, 3}), NULL, NULL, NULL),
               "LSTM: For unbatched 2-D input, h0 should also be 2-D but got 3-D tensor");
    EXPECT_ERR(nb_rnn_forward(lstm, ar, nb_zeros(ar, 2, (int64_t[]){5, 4}), nb_zeros(ar, 2, (int64_t[]){2, 4}), NULL, NULL, NULL),
               "LSTM: Expected hidden[0] size (2, 3), got [2, 4]");
    EXPECT_ERR(nb_rnn_forward(gru, ar, x, nb_zeros(ar, 3, (int64_t[]){1, 3, 3}), NULL, NULL, NULL),
               "GRU: Expected hidden size (1, 2, 3), got [1, 3, 3]");
    EXPECT_ERR(nb_rnn_forward(gru, ar, x, NULL, nb_zeros(ar, 3, (int64_t[]){1, 2, 3}), NULL, NULL),
               "GRU: c0 is only for LSTM (GRU has no cell state)");
    nb_tensor *xi = nb_empty(ar, NB_INT32, 3, (int64_t[]){5, 2, 4});
    EXPECT_ERR(nb_rnn_forward(gru, ar, xi, NULL, NULL, NULL, NULL), "GRU: input must be float32, got int32");
    nb_module *lin = nb_linear_new(2, 2, true, &rng);
    EXPECT_ERR(nb_rnn_forward(lin, ar, x, NULL, NULL, NULL, NULL),
               "rnn_forward: module is Linear, not an RNN, LSTM or GRU");
    EXPECT_ERR(nb_rnn_cell_forward(gru, ar, x, NULL, NULL, NULL),
               "rnn_cell_forward: module is GRU, not an RNNCell, LSTMCell or GRUCell");
    /* NULL input: NULL without an error, so chains are checked once */
    nb_clear_error();
    ck_assert_ptr_null(nb_rnn_forward(gru, ar, NULL, NULL, NULL, NULL, NULL));
    ck_assert_int_eq(nb_last_status(), NB_OK);
    /* an empty batch is not an error (PyTorch: output [5, 0, 3]) */
    nb_tensor *e = nb_rnn_forward(lstm, ar, nb_zeros(ar, 3, (int64_t[]){5, 0, 4}), NULL, NULL, &hn, &cn);
    ck_assert_msg(e && e->shape[1] == 0 && hn->shape[1] == 0 && cn->numel == 0, "%s", nb_last_error());
    /* the module still works after the errors */
    ck_assert_ptr_nonnull(nb_rnn_forward(lstm, ar, x, NULL, NULL, &hn, &cn));
    ck_assert_int_eq(hn->shape[0], 2);

    nb_module *cell = nb_lstm_cell_new(4, 3, true, &rng);
    nb_tensor *xc = nb_zeros(ar, 2, (int64_t[]){2, 4});
    EXPECT_ERR(nb_rnn_cell_forward(cell, ar, nb_zeros(ar, 2, (int64_t[]){2, 5}), NULL, NULL, NULL),
               "LSTMCell: input has inconsistent input_size: got 5 expected 4");
    EXPECT_ERR(nb_rnn_cell_forward(cell, ar, x, NULL, NULL, NULL),
               "LSTMCell: Expected input to be 1-D or 2-D but received 3-D tensor");
    EXPECT_ERR(nb_rnn_cell_forward(cell, ar, xc, nb_zeros(ar, 2, (int64_t[]){3, 3}), NULL, NULL),
               "LSTMCell: Input batch size 2 doesn't match hidden0 batch size 3");
    EXPECT_ERR(nb_rnn_cell_forward(cell, ar, xc, NULL, nb_zeros(ar, 2, (int64_t[]){2, 4}), NULL),
               "LSTMCell: hidden1 has inconsistent hidden_size: got 4, expected 3");
    EXPECT_ERR(nb_rnn_cell_forward(cell, ar, xc, nb_zeros(ar, 1, (int64_t[]){3}), NULL, NULL),
               "LSTMCell: Expected hidden0 to be 2-D for 2-D input but received 1-D tensor");
    nb_module *gcell = nb_gru_cell_new(4, 3, true, &rng);
    EXPECT_ERR(nb_rnn_cell_forward(gcell, ar, xc, NULL, nb_zeros(ar, 2, (int64_t[]){2, 3}), NULL),
               "GRUCell: c is only for LSTMCell (GRUCell has no cell state)");

    /* constructors */
    o = nb_rnn_defaults();
    o.dropout = 1.5f;
    EXPECT_ERR(nb_lstm_new(4, 3, &o, &rng), "LSTM: dropout should be a number in range [0, 1] "
               "representing the probability of an element being zeroed");
    o.dropout = 0.5f;
    EXPECT_ERR(nb_lstm_new(4, 3, &o, &rng), "LSTM: dropout > 0 needs opts.dropout_rng");
    EXPECT_ERR(nb_gru_new(4, 0, NULL, &rng), "GRU: hidden_size must be greater than zero");
    o = nb_rnn_defaults();
    o.num_layers = 0;
    EXPECT_ERR(nb_rnn_new(4, 3, &o, &rng), "RNN: num_layers must be greater than zero");
    EXPECT_ERR(nb_rnn_cell_new(0, 3, true, false, &rng), "RNNCell: input_size must be greater than zero");
    EXPECT_ERR(nb_lstm_new(4, 3, NULL, NULL), "LSTM: rng is NULL");

    /* embedding and select */
    EXPECT_ERR(nb_embedding_new(10, 3, 10, &rng), "Padding_idx must be within num_embeddings");
    EXPECT_ERR(nb_embedding_new(10, 3, -11, &rng), "Padding_idx must be within num_embeddings");
    nb_module *emb = nb_embedding_new(10, 3, NB_NO_PADDING, &rng);
    EXPECT_ERR(nb_forward(emb, ar, nb_from_array(ar, NB_INT32, 1, (int64_t[]){2}, (int32_t[]){3, 10})),
               "embedding: index 10 is out of range for 10 embeddings");
    EXPECT_ERR(nb_forward(emb, ar, nb_from_array(ar, NB_INT32, 1, (int64_t[]){1}, (int32_t[]){-1})),
               "embedding: index -1 is out of range for 10 embeddings");
    EXPECT_ERR(nb_forward(emb, ar, nb_zeros(ar, 1, (int64_t[]){2})), "embedding: indices must be int32, got float32");
    nb_tensor *s = nb_zeros(ar, 2, (int64_t[]){3, 4});
    EXPECT_ERR(nb_select(ar, s, 1, 4), "select(): index 4 out of range for tensor of size [3, 4] at dimension 1");
    EXPECT_ERR(nb_select(ar, s, 1, -5), "select(): index -5 out of range for tensor of size [3, 4] at dimension 1");
    EXPECT_ERR(nb_select(ar, s, 2, 0), "select: dim 2 is out of range for a tensor of rank 2");
    nb_arena_free(ar);
    nb_module_free(lstm);
    nb_module_free(gru);
    nb_module_free(lin);
    nb_module_free(cell);
    nb_module_free(gcell);
    nb_module_free(emb);
}
END_TEST

/* ---- names, init, repr, Sequential --------------------------------------------------------- */
START_TEST(test_names_init_repr) {
    nb_rng rng, drng;
    nb_rng_seed(&rng, 0);
    nb_rnn_opts o = nb_rnn_defaults();
    o.num_layers = 2;
    o.bidirectional = true;
    o.batch_first = true;
    o.dropout = 0.5f;
    o.dropout_rng = &drng;
    nb_module *m = nb_lstm_new(28, 16, &o, &rng);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(nb_module_num_params(m), 16);
    const char *names[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                           "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
                           "bias_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1"};
    for (int i = 0; i < 10; i++) ck_assert_str_eq(nb_module_param(m, i).name, names[i]);
    nb_tensor *w = nb_module_find(m, "weight_ih_l1_reverse");
    ck_assert_int_eq(w->shape[0], 64);
    ck_assert_int_eq(w->shape[1], 32);
    ck_assert_int_eq(nb_module_find(m, "weight_ih_l0")->shape[1], 28);
    ck_assert_int_eq(nb_module_find(m, "bias_hh_l1")->shape[0], 64);
    /* U(-1/4, 1/4) for every parameter, and spread over that range */
    float lo = 1, hi = -1;
    for (int i = 0; i < 16; i++) {
        nb_tensor *p = nb_module_param(m, i).tensor;
        for (int64_t j = 0; j < p->numel; j++) {
            float v = nb_f32(p)[j];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    ck_assert(lo >= -0.25f && hi <= 0.25f && lo < -0.24f && hi > 0.24f);
    char buf[256];
    nb_module_repr(m, buf, sizeof buf);
    ck_assert_str_eq(buf, "LSTM(28, 16, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True)");
    nb_module_free(m);
    o = nb_rnn_defaults();
    o.relu = true;
    m = nb_rnn_new(4, 3, &o, &rng);
    nb_module_repr(m, buf, sizeof buf);
    ck_assert_str_eq(buf, "RNN(4, 3)"); /* as PyTorch 1.13 prints it */
    nb_module_free(m);
    m = nb_rnn_cell_new(4, 3, false, true, &rng);
    nb_module_repr(m, buf, sizeof buf);
    ck_assert_str_eq(buf, "RNNCell(4, 3, bias=False, nonlinearity=relu)");
    ck_assert_str_eq(nb_module_param(m, 1).name, "weight_hh");
    ck_assert_int_eq(nb_module_num_params(m), 2);
    nb_module_free(m);
    m = nb_gru_cell_new(4, 3, true, &rng);
    ck_assert_int_eq(nb_module_find(m, "weight_ih")->shape[0], 9);
    ck_assert_str_eq(nb_module_param(m, 3).name, "bias_hh");
    nb_module_free(m);
    m = nb_embedding_new(10, 3, -1, &rng);
    nb_module_repr(m, buf, sizeof buf);
    ck_assert_str_eq(buf, "Embedding(10, 3, padding_idx=9)");
    for (int j = 0; j < 3; j++) ck_assert(nb_f32(nb_module_find(m, "weight"))[9 * 3 + j] == 0.0f);
    nb_module_free(m);
}
END_TEST

/* Sequential(LSTM(batch_first), Select(1, -1), Linear): the classifier of `nabla train --model
 * lstm`; its last-step features equal h_n of the (unidirectional) last layer. */
START_TEST(test_sequential_classifier) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_rnn_opts o = nb_rnn_defaults();
    o.batch_first = true;
    o.num_layers = 2;
    nb_module *seq = nb_sequential(3, (nb_module *[]){nb_lstm_new(28, 16, &o, &rng), nb_select_new(1, -1),
                                                       nb_linear_new(16, 10, true, &rng)});
    ck_assert_ptr_nonnull(seq);
    ck_assert_str_eq(nb_module_param(seq, 0).name, "0.weight_ih_l0");
    ck_assert_str_eq(nb_module_param(seq, 8).name, "2.weight");
    char buf[512];
    nb_module_repr(seq, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "(1): Select(dim=1, index=-1)"), "%s", buf);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_uniform(ar, 3, (int64_t[]){5, 28, 28}, 0, 1, &rng);
    nb_tensor *logits = nb_forward(seq, ar, x);
    ck_assert_int_eq(logits->ndim, 2);
    ck_assert_int_eq(logits->shape[0], 5);
    ck_assert_int_eq(logits->shape[1], 10);
    nb_tensor *hn, *out = nb_rnn_forward(nb_module_child(seq, 0), ar, x, NULL, NULL, &hn, NULL);
    nb_tensor *last = nb_select(ar, out, 1, -1);
    ck_assert_mem_eq(last->data, nb_f32(hn) + 5 * 16, sizeof(float) * 5 * 16);
    nb_tensor *y = nb_from_array(ar, NB_INT32, 1, (int64_t[]){5}, (int32_t[]){1, 2, 3, 4, 5});
    nb_module_zero_grad(seq, true);
    ck_assert_int_eq(nb_backward(nb_cross_entropy(ar, logits, y, NULL)), NB_OK);
    for (int i = 0; i < nb_module_num_params(seq); i++)
        ck_assert_ptr_nonnull(nb_module_param(seq, i).tensor->grad);
    nb_arena_free(ar);
    nb_module_free(seq);
}
END_TEST

/* New buffers in a recycled arena hold whatever an earlier step left (NaN, inf): the op must
 * write before it reads. Gradients on a poisoned arena equal those on a clean one, bit for bit. */
START_TEST(test_recycled_arena_garbage_is_never_read) {
    for (int mode = 0; mode < 4; mode++) {
        nb_rng rng;
        nb_rng_seed(&rng, 8);
        int32_t cfg[10] = {mode, 3, 4, 2, 1, 1, 1, 1, 1, 0}; /* 2 layers, bidirectional, batch_first */
        nb_module *m = make_module(cfg, &rng);
        nb_tensor *x = randn(&rng, 3, (int64_t[]){2, 5, 3}), *h0 = randn(&rng, 3, (int64_t[]){4, 2, 4});
        nb_tensor *c0 = mode == M_LSTM ? randn(&rng, 3, (int64_t[]){4, 2, 4}) : NULL;
        nb_tensor *in[40];
        int n = 0;
        in[n++] = x;
        in[n++] = h0;
        if (c0) in[n++] = c0;
        n += nb_module_parameters(m, in + n, 40 - n);
        float *clean[40] = {0};
        for (int pass = 0; pass < 2; pass++) {
            nb_arena *ar = nb_arena_new(1 << 20);
            if (pass == 1) {
                const float poison[2] = {NAN, INFINITY};
                for (int k = 0; k < 2; k++) { /* fill (nearly) all of it, then give it back */
                    ck_assert_ptr_nonnull(nb_full(ar, 1, (int64_t[]){(1 << 18) - 256}, poison[k]));
                    nb_arena_reset(ar);
                }
            }
            for (int i = 0; i < n; i++) in[i]->grad = NULL;
            nb_tensor *hn, *cn, *out = nb_rnn_forward(m, ar, x, h0, c0, &hn, &cn);
            ck_assert_int_eq(nb_backward(dot(ar, out, nb_f32(nb_ones(ar, 1, (int64_t[]){out->numel})))), NB_OK);
            ck_assert_int_eq(nb_backward(dot(ar, hn, nb_f32(nb_ones(ar, 1, (int64_t[]){hn->numel})))), NB_OK);
            for (int i = 0; i < n; i++) {
                ck_assert_ptr_nonnull(in[i]->grad);
                if (pass == 0) {
                    clean[i] = malloc(sizeof(float) * (size_t)in[i]->numel);
                    memcpy(clean[i], in[i]->grad->data, sizeof(float) * (size_t)in[i]->numel);
                } else {
                    ck_assert_mem_eq(clean[i], in[i]->grad->data, sizeof(float) * (size_t)in[i]->numel);
                    free(clean[i]);
                }
            }
            nb_arena_free(ar);
        }
        nb_tensor_free(x);
        nb_tensor_free(h0);
        nb_tensor_free(c0);
        nb_module_free(m);
    }
}
END_TEST

/* ---- nabla train --model rnn|lstm|gru on the tiny fixtures -------------------------------- */
static int run_nabla(const char *args, char *out, size_t n) {
    char cmd[1024], path[512];
    snprintf(path, sizeof path, "%s/out", temp_dir());
    snprintf(cmd, sizeof cmd, "'%s/nabla' train --data '%s' %s >'%s' 2>&1", NB_BUILD_DIR,
             fixture("tiny"), args, path);
    int st = system(cmd);
    FILE *f = fopen(path, "rb");
    size_t k = f ? fread(out, 1, n - 1, f) : 0;
    out[k] = '\0';
    if (f) fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_cli_models) {
    static char out[1 << 16];
    ck_assert_int_eq(run_nabla("--model lstm --hidden 8 --layers 2 --epochs 1 --optim adam --clip 1", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "lstm 28-8x2-10 over 28 steps") && strstr(out, "test_acc"), "%s", out);
    ck_assert_int_eq(run_nabla("--model rnn --hidden 8 --epochs 1 --optim adam", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "rnn 28-8-10 over 28 steps"), "%s", out);
    ck_assert_int_eq(run_nabla("--model gru --hidden 8,8", out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--hidden takes one size for gru, got '8,8'"), "%s", out);
    ck_assert_int_eq(run_nabla("--model lstm --layers 0", out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--layers must be between 1 and 64, got 0"), "%s", out);
    ck_assert_int_eq(run_nabla("--model gru --hidden 8 --layers 2 --dropout 0.3 --epochs 1", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "gru 28-8x2-10 over 28 steps +dropout 0.3"), "%s", out);
    ck_assert_int_eq(run_nabla("--model rnn --batchnorm", out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--batchnorm is for mlp and cnn, not rnn"), "%s", out);
    ck_assert_int_eq(run_nabla("--model transformer", out, sizeof out), 2);
    ck_assert_msg(strstr(out, "unknown model 'transformer' (mlp, cnn, rnn, lstm, gru)"), "%s", out);
}
END_TEST

/* ---- memory: a steady-state LSTM training step makes no heap allocation ------------------- */
static long nallocs;
static void *count_malloc(size_t n) { nallocs++; return malloc(n); }
static void *count_realloc(void *p, size_t n) { nallocs++; return realloc(p, n); }

/* Evaluation (no grad) keeps one step of gates and states, not all T: an LSTM over 28 steps
 * needs its output and little more, where the recorded forward keeps gates, c_t and tanh(c_t)
 * of every step for the backward. */
START_TEST(test_no_grad_forward_is_lean) {
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_rnn_opts o = nb_rnn_defaults();
    o.batch_first = true;
    int64_t B = 64, T = 28, I = 28, H = 32;
    nb_module *m = nb_lstm_new(I, H, &o, &rng);
    nb_tensor *x = nb_uniform(NULL, 3, (int64_t[]){B, T, I}, 0, 1, &rng);
    size_t used[2];
    for (int grad = 0; grad < 2; grad++) {
        nb_arena *ar = nb_arena_new(0);
        bool prev = nb_set_grad_enabled(grad);
        ck_assert_ptr_nonnull(nb_forward(m, ar, x));
        nb_set_grad_enabled(prev);
        used[grad] = nb_arena_used(ar);
        nb_arena_free(ar);
    }
    size_t out = sizeof(float) * (size_t)(B * T * H), step = sizeof(float) * (size_t)(B * 4 * H);
    ck_assert_msg(used[0] <= out + 6 * step, "no-grad LSTM forward used %zu bytes (output %zu)", used[0], out);
    ck_assert_msg(used[1] >= out + (size_t)T * step, "recorded forward used only %zu bytes", used[1]);
    nb_tensor_free(x);
    nb_module_free(m);
}
END_TEST

START_TEST(test_no_allocation_per_step) {
    /* possible only while nabla has not allocated yet in this (forked) test process */
    if (nb_set_allocator(count_malloc, count_realloc, free) != NB_OK)
        NB_SKIP("cannot count allocations: nabla already allocated in this process (CK_FORK=no?)");
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_rnn_opts o = nb_rnn_defaults();
    o.batch_first = true;
    nb_module *seq = nb_sequential(3, (nb_module *[]){nb_lstm_new(28, 32, &o, &rng), nb_select_new(1, -1),
                                                       nb_linear_new(32, 10, true, &rng)});
    nb_tensor *params[16];
    int np = nb_module_parameters(seq, params, 16);
    nb_optim *opt = nb_adam(params, np, NULL);
    nb_arena *ar = nb_arena_new(0);
    ck_assert_ptr_nonnull(opt);
    for (int step = 0; step < 6; step++) {
        if (step == 3) nallocs = 0;
        nb_arena_reset(ar);
        nb_tensor *x = nb_uniform(ar, 3, (int64_t[]){8, 28, 28}, 0, 1, &rng);
        nb_tensor *y = nb_empty(ar, NB_INT32, 1, (int64_t[]){8});
        memset(y->data, 0, 8 * sizeof(int32_t));
        nb_tensor *loss = nb_cross_entropy(ar, nb_forward(seq, ar, x), y, NULL);
        nb_optim_zero_grad(opt, true);
        double norm;
        ck_assert_int_eq(nb_backward(loss), NB_OK);
        ck_assert_int_eq(nb_clip_grad_norm(params, np, 1.0, 2.0, false, &norm), NB_OK);
        ck_assert_int_eq(nb_optim_step(opt), NB_OK);
    }
    ck_assert_int_eq(nallocs, 0);
    nb_arena_free(ar);
    nb_optim_free(opt);
    nb_module_free(seq);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rnn");
    TCase *tc = tcase_create("rnn");
    tcase_add_test(tc, test_golden);
    tcase_add_test(tc, test_gradcheck_modules);
    tcase_add_test(tc, test_gradcheck_cells);
    tcase_add_test(tc, test_gradcheck_dropout);
    tcase_add_test(tc, test_gradcheck_embedding_select);
    tcase_add_test(tc, test_bad_shapes);
    tcase_add_test(tc, test_names_init_repr);
    tcase_add_test(tc, test_sequential_classifier);
    tcase_add_test(tc, test_recycled_arena_garbage_is_never_read);
    tcase_add_test(tc, test_no_allocation_per_step);
    tcase_add_test(tc, test_no_grad_forward_is_lean);
    tcase_add_test(tc, test_cli_models);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
