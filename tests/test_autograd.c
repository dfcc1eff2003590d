/* test_autograd.c - the tape: accumulation, requires_grad, detach, no-grad, backward errors,
 * vector-Jacobian products, shared subgraphs, gradcheck itself and the DOT export. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "common.h"

static nb_tensor *leaf(const float *v, int64_t n) {
    nb_tensor *t = nb_from_array(NULL, NB_FLOAT32, 1, &n, v);
    ck_assert_int_eq(nb_requires_grad(t, true), NB_OK);
    return t;
}

/* Gradients add up over backward calls until the caller clears them. */
START_TEST(test_accumulates_across_backwards) {
    nb_tensor *x = leaf((float[]){1, -2, 3}, 3);
    nb_arena *ar = nb_arena_new(0);
    ck_assert_int_eq(nb_backward(nb_sum(ar, nb_mul(ar, x, x))), NB_OK); /* 2x */
    nb_arena_reset(ar);
    ck_assert_int_eq(nb_backward(nb_sum(ar, nb_mul_scalar(ar, x, 3))), NB_OK); /* + 3 */
    float want[] = {5, -1, 9};
    assert_close("x.grad", nb_f32(x->grad), want, 3, 0, 0);
    nb_arena_free(ar);
    nb_tensor_free(x);
}
END_TEST

/* The same graph walked twice gives twice the gradient (intermediates start afresh). */
START_TEST(test_backward_twice_same_graph) {
    nb_tensor *x = leaf((float[]){0.5f, -1, 2}, 3);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *loss = nb_sum(ar, nb_exp(ar, nb_mul_scalar(ar, x, 2)));
    ck_assert_int_eq(nb_backward(loss), NB_OK);
    float once[3];
    memcpy(once, nb_f32(x->grad), sizeof once);
    ck_assert_int_eq(nb_backward(loss), NB_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_float_eq_tol(once[i], 2 * expf(2 * nb_f32(x)[i]), 1e-5f * once[i]);
        ck_assert_float_eq(nb_f32(x->grad)[i], 2 * once[i]);
    }
    nb_arena_free(ar);
    nb_tensor_free(x);
}
END_TEST

START_TEST(test_requires_grad) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_ones(ar, 1, (int64_t[]){3}), *c = nb_ones(ar, 1, (int64_t[]){3});
    ck_assert(!nb_tensor_requires_grad(x));
    ck_assert_int_eq(nb_requires_grad(x, true), NB_OK);
    ck_assert(nb_tensor_requires_grad(x));
    nb_tensor *y = nb_mul(ar, x, c);
    ck_assert(nb_tensor_requires_grad(y)); /* produced by a recorded op */
    ck_assert_ptr_nonnull(y->internal.node);
    ck_assert_int_eq(nb_requires_grad(y, false), NB_ESTATE);
    ck_assert_str_eq(nb_last_error(), "requires_grad: you can only change requires_grad flags of leaf variables");
    nb_tensor *i = nb_empty(ar, NB_INT32, 1, (int64_t[]){3});
    ck_assert_int_eq(nb_requires_grad(i, true), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "requires_grad: only float32 tensors can require gradients");
    ck_assert(!nb_tensor_requires_grad(i));
    ck_assert_int_eq(nb_requires_grad(NULL, true), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "requires_grad: tensor is NULL");
    /* constants only: nothing is recorded */
    nb_tensor *z = nb_mul(ar, c, c);
    ck_assert_ptr_null(z->internal.node);
    ck_assert_int_eq(nb_backward(nb_sum(ar, z)), NB_ESTATE);
    ck_assert_str_eq(nb_last_error(), "backward: element 0 of tensors does not require grad and does not have a grad_fn");
    ck_assert_int_eq(nb_requires_grad(x, false), NB_OK);
    ck_assert_ptr_null(nb_mul(ar, x, c)->internal.node);
    nb_arena_free(ar);
}
END_TEST

/* detach shares the data, cuts the history: the gradient flows only through the other use. */
START_TEST(test_detach) {
    nb_tensor *x = leaf((float[]){1, 2, 3}, 3);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *y = nb_exp(ar, x), *d = nb_detach(ar, y);
    ck_assert_ptr_eq(d->data, y->data);
    ck_assert(!nb_tensor_requires_grad(d));
    ck_assert_ptr_null(d->internal.node);
    ck_assert_int_eq(nb_backward(nb_sum(ar, nb_mul(ar, d, x))), NB_OK); /* d/dx = d = e^x */
    for (int i = 0; i < 3; i++) ck_assert_float_eq(nb_f32(x->grad)[i], nb_f32(y)[i]);
    ck_assert_ptr_null(nb_detach(ar, NULL));
    nb_arena_free(ar);
    nb_tensor_free(x);
}
END_TEST

/* In a no-grad scope ops record nothing, and the mode is restored afterwards. */
START_TEST(test_no_grad_scope) {
    nb_tensor *x = leaf((float[]){1, 2}, 2);
    nb_arena *ar = nb_arena_new(0);
    ck_assert(nb_is_grad_enabled());
    bool prev = nb_set_grad_enabled(false);
    ck_assert(prev);
    ck_assert(!nb_is_grad_enabled());
    nb_tensor *r = nb_relu(ar, x), *m = nb_mul(ar, r, x), *y = nb_sum(ar, m);
    ck_assert(!r->internal.node && !m->internal.node && !y->internal.node);
    ck_assert(!nb_tensor_requires_grad(y));
    ck_assert_int_eq(nb_backward(y), NB_ESTATE);
    ck_assert_ptr_null(x->grad);
    ck_assert(!nb_set_grad_enabled(prev));
    ck_assert(nb_is_grad_enabled());
    ck_assert_ptr_nonnull(nb_relu(ar, x)->internal.node); /* recording again */
    nb_arena_free(ar);
    nb_tensor_free(x);
}
END_TEST

START_TEST(test_backward_non_scalar) {
    nb_tensor *x = leaf((float[]){1, 2, 3, 4, 5, 6}, 6);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *y = nb_reshape(ar, nb_mul_scalar(ar, x, 2), 2, (int64_t[]){2, 3});
    ck_assert_int_eq(nb_backward(y), NB_ESTATE);
    ck_assert_str_eq(nb_last_error(), "backward: grad can be implicitly created only for scalar outputs (got shape [2, 3])");
    ck_assert_ptr_null(x->grad);
    ck_assert_int_eq(nb_backward(NULL), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "backward: tensor is NULL");
    nb_arena_free(ar);
    nb_tensor_free(x);
}
END_TEST

/* nb_backward_grad: a vector-Jacobian product with an explicit upstream gradient. */
START_TEST(test_backward_grad) {
    nb_tensor *x = leaf((float[]){1, 2, 3, 4, 5, 6}, 6);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *y = nb_reshape(ar, nb_mul(ar, x, x), 2, (int64_t[]){2, 3});
    nb_tensor *g = nb_from_array(ar, NB_FLOAT32, 2, (int64_t[]){2, 3}, (float[]){1, 0, -1, 2, 0.5f, 0});
    ck_assert_int_eq(nb_backward_grad(y, g), NB_OK);
    float want[] = {2, 0, -6, 16, 5, 0}; /* 2 x g */
    assert_close("x.grad", nb_f32(x->grad), want, 6, 0, 0);
    nb_tensor *bad = nb_zeros(ar, 1, (int64_t[]){4});
    ck_assert_int_eq(nb_backward_grad(y, bad), NB_ESHAPE);
    ck_assert_str_eq(nb_last_error(), "backward: grad has shape [4], output has shape [2, 3]");
    ck_assert_int_eq(nb_backward_grad(y, NULL), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "backward: grad_out is NULL");
    assert_close("x.grad unchanged", nb_f32(x->grad), want, 6, 0, 0);
    nb_arena_free(ar);
    nb_tensor_free(x);
}
END_TEST

/* A tensor used twice (a diamond) gets the sum of both paths; so does a leaf read both
 * through a view and directly. */
START_TEST(test_diamond) {
    nb_tensor *x = leaf((float[]){0.5f, -1, 2}, 3);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *y = nb_mul_scalar(ar, x, 2);
    nb_tensor *z = nb_sum(ar, nb_add(ar, nb_mul(ar, y, y), y)); /* 4x^2 + 2x */
    ck_assert_int_eq(nb_backward(z), NB_OK);
    for (int i = 0; i < 3; i++) ck_assert_float_eq(nb_f32(x->grad)[i], 8 * nb_f32(x)[i] + 2);
    nb_arena_reset(ar);
    nb_tensor *x2 = nb_from_array(ar, NB_FLOAT32, 1, (int64_t[]){3}, (float[]){1, 2, 3});
    nb_requires_grad(x2, true); /* an arena leaf: its grad may alias the view's */
    nb_tensor *e = nb_exp(ar, x2);
    nb_tensor *v = nb_reshape(ar, x2, 2, (int64_t[]){3, 1});
    nb_tensor *l = nb_add(ar, nb_sum(ar, nb_mul_scalar(ar, v, 3)), nb_sum(ar, e));
    ck_assert_int_eq(nb_backward(l), NB_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq_tol(nb_f32(x2->grad)[i], 3 + expf(nb_f32(x2)[i]), 1e-5);
    nb_arena_free(ar);
    nb_tensor_free(x);
}
END_TEST

/* ---- gradcheck ------------------------------------------------------------------------- */
static nb_tensor *f_good(nb_arena *ar, nb_tensor *const *x, void *u) {
    (void)u;
    return nb_tanh(ar, nb_matmul(ar, x[0], x[1]));
}

/* x * detach(x): the analytic gradient misses one of the two paths. */
static nb_tensor *f_wrong(nb_arena *ar, nb_tensor *const *x, void *u) {
    (void)u;
    return nb_mul(ar, x[0], nb_detach(ar, x[0]));
}

static nb_tensor *f_fails(nb_arena *ar, nb_tensor *const *x, void *u) {
    (void)u;
    return nb_transpose(ar, x[0], 0, 5);
}

START_TEST(test_gradcheck) {
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_tensor *x[2] = {nb_uniform(NULL, 2, (int64_t[]){3, 4}, -1, 1, &rng),
                       nb_uniform(NULL, 2, (int64_t[]){4, 2}, -1, 1, &rng)};
    nb_requires_grad(x[0], true);
    nb_requires_grad(x[1], true);
    ck_assert_msg(nb_gradcheck(f_good, 2, x, NULL, NULL) == NB_OK, "%s", nb_last_error());
    ck_assert_ptr_null(x[0]->grad); /* no gradient left behind */
    /* an existing gradient and the inputs survive a failing check unchanged */
    nb_tensor *y = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){4}, (float[]){0.5f, 1, -1.5f, 2});
    nb_requires_grad(y, true);
    nb_arena *ar = nb_arena_new(0);
    nb_backward(nb_sum(ar, y));
    nb_tensor *g = y->grad;
    ck_assert_int_eq(nb_gradcheck(f_wrong, 1, &y, NULL, NULL), NB_EINVAL);
    double an, nu;
    ck_assert_msg(sscanf(nb_last_error(), "gradcheck: input 0 element %*d: analytic %lf, numeric %lf",
                         &an, &nu) == 2, "%s", nb_last_error());
    ck_assert_double_eq_tol(nu, 2 * an, 1e-3 * fabs(an)); /* half the gradient was missing */
    ck_assert_ptr_eq(y->grad, g);
    float ones[] = {1, 1, 1, 1}, vals[] = {0.5f, 1, -1.5f, 2};
    assert_close("grad", nb_f32(y->grad), ones, 4, 0, 0);
    assert_close("values", nb_f32(y), vals, 4, 0, 0);
    /* errors */
    nb_tensor *c = nb_ones(NULL, 1, (int64_t[]){2});
    ck_assert_int_eq(nb_gradcheck(f_good, 1, &c, NULL, NULL), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "gradcheck: expects at least one input to require grad");
    ck_assert_int_eq(nb_gradcheck(f_fails, 1, &y, NULL, NULL), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "gradcheck: the function failed: transpose: dim 5 is out of range for a tensor of rank 1");
    nb_gradcheck_opts o = nb_gradcheck_defaults();
    ck_assert(o.eps == 1e-2 && o.atol == 1e-2 && o.rtol == 1e-2);
    o.eps = 0;
    ck_assert_int_eq(nb_gradcheck(f_good, 2, x, NULL, &o), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "gradcheck: eps must be > 0 and atol, rtol >= 0, got eps 0, atol 0.01, rtol 0.01");
    nb_tensor *nl = nb_mul_scalar(ar, y, 2); /* not a leaf */
    ck_assert_int_eq(nb_gradcheck(f_wrong, 1, &nl, NULL, NULL), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "gradcheck: input 0 must be a float32 leaf tensor");
    ck_assert(nb_is_grad_enabled());
    nb_arena_free(ar);
    nb_tensor_free(c);
    nb_tensor_free(y);
    nb_tensor_free(x[0]);
    nb_tensor_free(x[1]);
}
END_TEST

/* A graph built across two arenas is refused before any gradient is written (the walk follows
 * one arena's tape, so it would silently skip the other arena's nodes). A heap leaf or a
 * detached tensor from another arena is fine. */
START_TEST(test_graph_in_two_arenas) {
    nb_tensor *x = leaf((float[]){2}, 1);
    nb_arena *a = nb_arena_new(0), *b = nb_arena_new(0);
    nb_tensor *y = nb_mul(a, x, x);
    nb_tensor *loss = nb_sum(b, nb_mul_scalar(b, y, 3));
    ck_assert_int_eq(nb_backward(loss), NB_ESTATE);
    ck_assert_str_eq(nb_last_error(), "backward: mul_scalar reads the output of mul, which was made "
                                      "in another arena (a graph must be built in one arena)");
    ck_assert_ptr_null(x->grad);
    ck_assert_ptr_null(y->grad);
    ck_assert_uint_eq(y->flags & 0x80000000u, 0); /* no walk mark left behind */
    nb_tensor *ok = nb_sum(b, nb_mul(b, x, nb_detach(b, y))); /* x * (x*x, detached) */
    ck_assert_int_eq(nb_backward(ok), NB_OK);
    ck_assert_float_eq(nb_f32(x->grad)[0], 4);
    ck_assert_int_eq(nb_backward(nb_sum(a, nb_mul_scalar(a, y, 1))), NB_OK); /* a is whole */
    ck_assert_float_eq(nb_f32(x->grad)[0], 8);
    nb_arena_free(a);
    nb_arena_free(b);
    nb_tensor_free(x);
}
END_TEST

/* ---- DOT export ------------------------------------------------------------------------ */
static char *slurp(FILE *f) {
    static char buf[8192];
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    return buf;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what)) n++;
    return n;
}

START_TEST(test_graph_dot) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *w = nb_uniform(ar, 2, (int64_t[]){3, 4}, -1, 1, &rng);
    nb_tensor *b = nb_zeros(ar, 1, (int64_t[]){3}), *x = nb_ones(ar, 2, (int64_t[]){2, 4});
    nb_tensor *t = nb_from_array(ar, NB_INT32, 1, (int64_t[]){2}, (int32_t[]){0, 2});
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_tensor *h = nb_relu(ar, nb_linear(ar, x, w, b));           /* linear: 3 inputs, relu: 1 */
    nb_tensor *loss = nb_add(ar, nb_cross_entropy(ar, h, t, NULL), /* ce: 2, add: 2 */
                             nb_mean(ar, nb_mul(ar, h, h)));       /* mul: 2 (h twice), mean: 1 */
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(nb_graph_dot(loss, f), NB_OK);
    ck_assert_int_gt(fprintf(f, "// still open\n"), 0); /* the FILE is the caller's */
    const char *s = slurp(f);
    ck_assert_msg(strncmp(s, "digraph nabla {", 15) == 0, "%s", s);
    ck_assert_int_eq(count(s, "->"), 3 + 1 + 2 + 2 + 2 + 1);
    ck_assert_int_eq(count(s, "shape=box"), 6);     /* one per op */
    ck_assert_int_eq(count(s, "shape=ellipse"), 4); /* x, w, b, t */
    ck_assert_int_eq(count(s, "fillcolor"), 2);     /* w and b require grad */
    ck_assert_msg(strstr(s, "label=\"linear\\n[2, 3]\"") && strstr(s, "label=\"leaf\\n[2]\\nint32\""),
                  "%s", s);
    ck_assert_msg(strstr(s, "}\n// still open\n") != NULL, "%s", s);
    fclose(f);
    ck_assert_int_eq(nb_graph_dot(NULL, stdout), NB_EINVAL);
    ck_assert_int_eq(nb_graph_dot(loss, NULL), NB_EINVAL);
    nb_arena_free(ar);
}
END_TEST

/* Leaves named by role and name, the legend, and the norms of values and gradients. */
START_TEST(test_graph_dot_labels_and_values) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *w = nb_from_array(ar, NB_FLOAT32, 2, (int64_t[]){2, 2}, (float[]){3, 0, 0, 4});
    nb_tensor *x = nb_from_array(ar, NB_FLOAT32, 2, (int64_t[]){1, 2}, (float[]){1, 1});
    nb_tensor *t = nb_from_array(ar, NB_INT32, 1, (int64_t[]){1}, (int32_t[]){1});
    nb_tensor *c = nb_ones(ar, 1, (int64_t[]){2});
    nb_requires_grad(w, true);
    nb_tensor *h = nb_linear(ar, x, w, NULL); /* [[3, 4]]: norm 5 */
    nb_tensor *loss = nb_cross_entropy(ar, nb_mul(ar, h, c), t, NULL);
    ck_assert_int_eq(nb_backward(loss), NB_OK);
    nb_graph_label labels[] = {{w, "fc.weight", NB_GRAPH_PARAMETER}, {x, "input", NB_GRAPH_INPUT},
                               {t, "target", NB_GRAPH_TARGET}, {c, "my \"scale\"", NB_GRAPH_BUFFER}};
    nb_graph_opts o = nb_graph_defaults();
    ck_assert(!o.legend && !o.values && o.nlabels == 0);
    o.labels = labels;
    o.nlabels = 4;
    o.legend = true;
    o.values = true;
    FILE *f = tmpfile();
    ck_assert_int_eq(nb_graph_dot_opts(loss, f, &o), NB_OK);
    const char *s = slurp(f);
    ck_assert_msg(strstr(s, "label=\"fc.weight (parameter)\\n[2, 2]\\n|value| 5  |grad| "), "%s", s);
    ck_assert_msg(strstr(s, "label=\"input\\n[1, 2]\\n|value| 1.41\", shape=ellipse, style=filled, "
                            "fillcolor=\"#fff2a8\""), "%s", s);           /* no grad: no grad norm */
    ck_assert_msg(strstr(s, "label=\"target\\n[1]\\nint32\", shape=ellipse, style=filled, "
                            "fillcolor=\"#ffd1dc\""), "%s", s);           /* int32: no norms */
    ck_assert_msg(strstr(s, "label=\"my \\\"scale\\\" (buffer)\\n[2]"), "%s", s); /* escaped */
    ck_assert_msg(strstr(s, "label=\"linear\\n[1, 2]\\n|value| 5  |grad| "), "%s", s);
    ck_assert_msg(strstr(s, "label=\"cross_entropy\\n[]\\n|value| "), "%s", s);
    ck_assert_msg(strstr(s, "subgraph cluster_legend {") && strstr(s, "l_target [label=\"target\""), "%s", s);
    fclose(f);
    /* the gradient norm is the gradient's: |d loss / d w| */
    double g2 = 0;
    for (int i = 0; i < 4; i++) g2 += (double)nb_f32(w->grad)[i] * nb_f32(w->grad)[i];
    char want[64];
    snprintf(want, sizeof want, "|value| 5  |grad| %.3g\"", sqrt(g2));
    f = tmpfile();
    ck_assert_int_eq(nb_graph_dot_opts(loss, f, &o), NB_OK);
    s = slurp(f);
    ck_assert_msg(strstr(s, want), "%s lacks %s", s, want);
    fclose(f);
    /* bad labels */
    o.nlabels = -1;
    ck_assert_int_eq(nb_graph_dot_opts(loss, stdout, &o), NB_EINVAL);
    o.nlabels = 1;
    o.labels = NULL;
    ck_assert_int_eq(nb_graph_dot_opts(loss, stdout, &o), NB_EINVAL);
    nb_graph_label bad[] = {{w, NULL, NB_GRAPH_PARAMETER}, {w, "w", (nb_graph_role)9}};
    o.labels = bad;
    ck_assert_int_eq(nb_graph_dot_opts(loss, stdout, &o), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "graph_dot: label 0 needs a tensor, a name and a role");
    o.labels = bad + 1;
    ck_assert_int_eq(nb_graph_dot_opts(loss, stdout, &o), NB_EINVAL);
    nb_arena_free(ar);
}
END_TEST

/* ---- a fresh gradient buffer is write-only ----------------------------------------------
 * nb__grad hands a backward an uninitialised buffer with beta 0: the backward must write it,
 * never scale what is there (0 * NaN is NaN). Here every op reads intermediates (leaf * 1),
 * whose gradient buffers come from an arena that held NaN before its reset; the forward
 * outputs land there too. Every leaf gradient (and the loss) must come out finite. */
typedef nb_tensor *(*poison_fn)(nb_arena *ar, nb_tensor *const *x);

static nb_tensor *g_idx, *g_cls;  /* int32 [3] in 0..2, class targets [3] in 0..3 */
static nb_module *g_rnn[3];       /* RNN, LSTM, GRU (4 -> 3), batch_first */

static nb_tensor *p_exp(nb_arena *ar, nb_tensor *const *x) { return nb_exp(ar, x[0]); }
static nb_tensor *p_log(nb_arena *ar, nb_tensor *const *x) { return nb_log(ar, x[0]); }
static nb_tensor *p_sqrt(nb_arena *ar, nb_tensor *const *x) { return nb_sqrt(ar, x[0]); }
static nb_tensor *p_abs(nb_arena *ar, nb_tensor *const *x) { return nb_abs(ar, x[0]); }
static nb_tensor *p_neg(nb_arena *ar, nb_tensor *const *x) { return nb_neg(ar, x[0]); }
static nb_tensor *p_pow(nb_arena *ar, nb_tensor *const *x) { return nb_pow(ar, x[0], 3); }
static nb_tensor *p_clamp(nb_arena *ar, nb_tensor *const *x) { return nb_clamp(ar, x[0], 0.3f, 0.8f); }
static nb_tensor *p_relu(nb_arena *ar, nb_tensor *const *x) { return nb_relu(ar, x[0]); }
static nb_tensor *p_leaky(nb_arena *ar, nb_tensor *const *x) { return nb_leaky_relu(ar, x[0], 0.1f); }
static nb_tensor *p_tanh(nb_arena *ar, nb_tensor *const *x) { return nb_tanh(ar, x[0]); }
static nb_tensor *p_sigmoid(nb_arena *ar, nb_tensor *const *x) { return nb_sigmoid(ar, x[0]); }
static nb_tensor *p_gelu(nb_arena *ar, nb_tensor *const *x) { return nb_gelu(ar, x[0]); }
static nb_tensor *p_elu(nb_arena *ar, nb_tensor *const *x) { return nb_elu(ar, x[0], 1.0f); }
static nb_tensor *p_silu(nb_arena *ar, nb_tensor *const *x) { return nb_silu(ar, x[0]); }
static nb_tensor *p_softmax(nb_arena *ar, nb_tensor *const *x) { return nb_softmax(ar, x[0], 1); }
static nb_tensor *p_log_softmax(nb_arena *ar, nb_tensor *const *x) { return nb_log_softmax(ar, x[0], 0); }
static nb_tensor *p_add(nb_arena *ar, nb_tensor *const *x) { return nb_add(ar, x[0], x[1]); }
static nb_tensor *p_sub(nb_arena *ar, nb_tensor *const *x) { return nb_sub(ar, x[0], x[1]); }
static nb_tensor *p_mul(nb_arena *ar, nb_tensor *const *x) { return nb_mul(ar, x[0], x[1]); }
static nb_tensor *p_div(nb_arena *ar, nb_tensor *const *x) { return nb_div(ar, x[0], x[1]); }
static nb_tensor *p_add_scalar(nb_arena *ar, nb_tensor *const *x) { return nb_add_scalar(ar, x[0], 2); }
static nb_tensor *p_sum_dim(nb_arena *ar, nb_tensor *const *x) { return nb_sum_dim(ar, x[0], 1, false); }
static nb_tensor *p_mean(nb_arena *ar, nb_tensor *const *x) { return nb_mean(ar, x[0]); }
static nb_tensor *p_mean_dim(nb_arena *ar, nb_tensor *const *x) { return nb_mean_dim(ar, x[0], 0, true); }
static nb_tensor *p_max(nb_arena *ar, nb_tensor *const *x) { return nb_max(ar, x[0]); }
static nb_tensor *p_max_dim(nb_arena *ar, nb_tensor *const *x) { return nb_max_dim(ar, x[0], 1, false); }
static nb_tensor *p_reshape(nb_arena *ar, nb_tensor *const *x) { return nb_reshape(ar, x[0], 1, (int64_t[]){-1}); }
static nb_tensor *p_transpose(nb_arena *ar, nb_tensor *const *x) { return nb_transpose(ar, x[0], 0, 1); }
static nb_tensor *p_cat(nb_arena *ar, nb_tensor *const *x) { return nb_cat(ar, 2, x, 0); }
static nb_tensor *p_stack(nb_arena *ar, nb_tensor *const *x) { return nb_stack(ar, 2, (nb_tensor *[]){x[0], x[0]}, 1); }
static nb_tensor *p_slice(nb_arena *ar, nb_tensor *const *x) { return nb_slice(ar, x[0], 1, 1, 3); }
static nb_tensor *p_select(nb_arena *ar, nb_tensor *const *x) { return nb_select(ar, x[0], 1, -1); }
static nb_tensor *p_index_select(nb_arena *ar, nb_tensor *const *x) { return nb_index_select(ar, x[0], g_idx); }
static nb_tensor *p_embedding(nb_arena *ar, nb_tensor *const *x) { return nb_embedding(ar, g_idx, x[0], 1); }
static nb_tensor *p_matmul(nb_arena *ar, nb_tensor *const *x) { return nb_matmul(ar, x[0], nb_transpose(ar, x[1], 0, 1)); }
static nb_tensor *p_linear(nb_arena *ar, nb_tensor *const *x) { return nb_linear(ar, x[0], x[1], nb_slice(ar, x[2], 0, 0, 3)); }
static nb_tensor *p_dropout(nb_arena *ar, nb_tensor *const *x) {
    nb_rng r;
    nb_rng_seed(&r, 1);
    return nb_dropout(ar, x[0], 0.5f, true, &r);
}
static nb_tensor *p_dropout2d(nb_arena *ar, nb_tensor *const *x) {
    nb_rng r;
    nb_rng_seed(&r, 1);
    return nb_dropout2d(ar, x[0], 0.5f, true, &r);
}
static nb_tensor *p_conv(nb_arena *ar, nb_tensor *const *x, int64_t stride, int64_t k) {
    nb_conv_opts o = nb_conv_defaults();
    o.stride[0] = o.stride[1] = stride;
    nb_tensor *img = nb_reshape(ar, nb_cat(ar, 4, (nb_tensor *[]){x[0], x[0], x[0], x[0]}, 1),
                                4, (int64_t[]){1, 3, 4, 4}); /* [3, 16] -> [1, 3, 4, 4] */
    nb_tensor *flat = nb_reshape(ar, x[1], 1, (int64_t[]){-1}); /* 12 values, 54 needed */
    nb_tensor *many = nb_cat(ar, 5, (nb_tensor *[]){flat, flat, flat, flat, flat}, 0);
    nb_tensor *w = nb_reshape(ar, nb_slice(ar, many, 0, 0, 2 * 3 * k * k), 4, (int64_t[]){2, 3, k, k});
    return nb_conv2d(ar, img, w, nb_slice(ar, x[2], 0, 0, 2), &o);
}
static nb_tensor *p_conv_plain(nb_arena *ar, nb_tensor *const *x) { return p_conv(ar, x, 1, 1); }
static nb_tensor *p_conv_direct(nb_arena *ar, nb_tensor *const *x) { return p_conv(ar, x, 1, 3); }
static nb_tensor *p_conv_im2col(nb_arena *ar, nb_tensor *const *x) { return p_conv(ar, x, 2, 3); }
static nb_tensor *p_conv1d(nb_arena *ar, nb_tensor *const *x) {
    return nb_conv1d(ar, nb_reshape(ar, x[0], 3, (int64_t[]){1, 3, 4}),
                     nb_reshape(ar, x[1], 3, (int64_t[]){4, 3, 1}), x[2], NULL);
}
static nb_tensor *p_img(nb_arena *ar, nb_tensor *x) { return nb_reshape(ar, x, 4, (int64_t[]){1, 3, 2, 2}); }
static nb_tensor *p_max_pool(nb_arena *ar, nb_tensor *const *x) { return nb_max_pool2d(ar, p_img(ar, x[0]), 2, 1, NULL); }
static nb_tensor *p_avg_pool(nb_arena *ar, nb_tensor *const *x) { return nb_avg_pool2d(ar, p_img(ar, x[0]), 1, 2, NULL); }
static nb_tensor *p_adaptive(nb_arena *ar, nb_tensor *const *x) { return nb_adaptive_avg_pool2d(ar, p_img(ar, x[0]), 1, 1); }
static nb_tensor *p_batch_norm(nb_arena *ar, nb_tensor *const *x) {
    return nb_batch_norm(ar, x[0], NULL, NULL, nb_slice(ar, x[2], 0, 0, 4), x[2], true, 0.1, 1e-5);
}
static nb_tensor *p_layer_norm(nb_arena *ar, nb_tensor *const *x) {
    return nb_layer_norm(ar, x[0], 1, (int64_t[]){4}, nb_slice(ar, x[2], 0, 0, 4), x[2], 1e-5);
}
static nb_tensor *p_cross_entropy(nb_arena *ar, nb_tensor *const *x) {
    nb_cross_entropy_opts o = nb_cross_entropy_defaults();
    o.label_smoothing = 0.1;
    return nb_cross_entropy(ar, x[0], g_cls, &o);
}
static nb_tensor *p_soft_targets(nb_arena *ar, nb_tensor *const *x) { return nb_cross_entropy(ar, x[0], x[1], NULL); }
static nb_tensor *p_nll(nb_arena *ar, nb_tensor *const *x) { return nb_nll_loss(ar, x[0], g_cls, NULL); }
static nb_tensor *p_mse(nb_arena *ar, nb_tensor *const *x) { return nb_mse_loss(ar, x[0], x[1], NB_REDUCTION_SUM); }
static nb_tensor *p_l1(nb_arena *ar, nb_tensor *const *x) { return nb_l1_loss(ar, x[0], x[1], NB_REDUCTION_MEAN); }
static nb_tensor *p_smooth_l1(nb_arena *ar, nb_tensor *const *x) { return nb_smooth_l1_loss(ar, x[0], x[1], NB_REDUCTION_NONE, 0.5); }
static nb_tensor *p_huber(nb_arena *ar, nb_tensor *const *x) { return nb_huber_loss(ar, x[0], x[1], NB_REDUCTION_MEAN, 0.5); }
static nb_tensor *p_bce(nb_arena *ar, nb_tensor *const *x) { return nb_binary_cross_entropy(ar, x[0], x[1], NULL, NB_REDUCTION_MEAN); }
static nb_tensor *p_bce_logits(nb_arena *ar, nb_tensor *const *x) {
    return nb_binary_cross_entropy_with_logits(ar, x[0], x[1], NULL, NULL, NB_REDUCTION_SUM);
}
static nb_tensor *p_kl_div(nb_arena *ar, nb_tensor *const *x) { return nb_kl_div(ar, x[0], x[1], NB_REDUCTION_BATCHMEAN, false); }
static nb_tensor *p_rnn(nb_arena *ar, nb_tensor *const *x, int k) {
    nb_tensor *seq = nb_reshape(ar, x[0], 3, (int64_t[]){1, 3, 4}); /* [B 1, T 3, in 4] */
    nb_tensor *h0 = nb_reshape(ar, nb_slice(ar, x[2], 0, 0, 3), 3, (int64_t[]){1, 1, 3});
    nb_tensor *c0 = k == 1 ? nb_reshape(ar, nb_slice(ar, x[2], 0, 1, 4), 3, (int64_t[]){1, 1, 3}) : NULL;
    nb_tensor *hn = NULL, *y = nb_rnn_forward(g_rnn[k], ar, seq, h0, c0, &hn, NULL);
    return nb_add(ar, nb_sum(ar, y), nb_sum(ar, hn));
}
static nb_tensor *p_rnn_tanh(nb_arena *ar, nb_tensor *const *x) { return p_rnn(ar, x, 0); }
static nb_tensor *p_lstm(nb_arena *ar, nb_tensor *const *x) { return p_rnn(ar, x, 1); }
static nb_tensor *p_gru(nb_arena *ar, nb_tensor *const *x) { return p_rnn(ar, x, 2); }

START_TEST(test_fresh_grad_is_write_only) {
    static const struct {
        const char *name;
        poison_fn f;
    } ops[] = {
        {"exp", p_exp}, {"log", p_log}, {"sqrt", p_sqrt}, {"abs", p_abs}, {"neg", p_neg},
        {"pow", p_pow}, {"clamp", p_clamp}, {"relu", p_relu}, {"leaky_relu", p_leaky},
        {"tanh", p_tanh}, {"sigmoid", p_sigmoid}, {"gelu", p_gelu}, {"elu", p_elu},
        {"silu", p_silu}, {"softmax", p_softmax}, {"log_softmax", p_log_softmax}, {"add", p_add},
        {"sub", p_sub}, {"mul", p_mul}, {"div", p_div}, {"add_scalar", p_add_scalar},
        {"sum_dim", p_sum_dim}, {"mean", p_mean}, {"mean_dim", p_mean_dim}, {"max", p_max},
        {"max_dim", p_max_dim}, {"reshape", p_reshape}, {"transpose", p_transpose}, {"cat", p_cat},
        {"stack", p_stack}, {"slice", p_slice}, {"select", p_select},
        {"index_select", p_index_select}, {"embedding", p_embedding}, {"matmul", p_matmul},
        {"linear", p_linear}, {"dropout", p_dropout}, {"dropout2d", p_dropout2d},
        {"conv2d 1x1", p_conv_plain}, {"conv2d direct", p_conv_direct},
        {"conv2d im2col", p_conv_im2col}, {"conv1d", p_conv1d}, {"max_pool2d", p_max_pool},
        {"avg_pool2d", p_avg_pool}, {"adaptive_avg_pool2d", p_adaptive},
        {"batch_norm", p_batch_norm}, {"layer_norm", p_layer_norm},
        {"cross_entropy", p_cross_entropy}, {"cross_entropy soft", p_soft_targets},
        {"nll_loss", p_nll}, {"mse_loss", p_mse}, {"l1_loss", p_l1}, {"smooth_l1", p_smooth_l1},
        {"huber", p_huber}, {"bce", p_bce}, {"bce_with_logits", p_bce_logits},
        {"kl_div", p_kl_div}, {"rnn", p_rnn_tanh}, {"lstm", p_lstm}, {"gru", p_gru},
    };
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    g_idx = nb_from_array(NULL, NB_INT32, 1, (int64_t[]){3}, (int32_t[]){2, 0, 2});
    g_cls = nb_from_array(NULL, NB_INT32, 1, (int64_t[]){3}, (int32_t[]){3, 0, 1});
    nb_rnn_opts ro = nb_rnn_defaults();
    ro.batch_first = true;
    g_rnn[0] = nb_rnn_new(4, 3, &ro, &rng);
    g_rnn[1] = nb_lstm_new(4, 3, &ro, &rng);
    g_rnn[2] = nb_gru_new(4, 3, &ro, &rng);
    /* x[0], x[1]: [3, 4] in (0.2, 1) (positive, and probabilities for the BCE); x[2]: [4] */
    nb_tensor *leaves[3] = {nb_uniform(NULL, 2, (int64_t[]){3, 4}, 0.2f, 1.0f, &rng),
                            nb_uniform(NULL, 2, (int64_t[]){3, 4}, 0.2f, 1.0f, &rng),
                            nb_uniform(NULL, 1, (int64_t[]){4}, 0.2f, 1.0f, &rng)};
    for (int k = 0; k < 3; k++) nb_requires_grad(leaves[k], true);
    nb_arena *ar = nb_arena_new((size_t)4 << 20);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        nb_arena_reset(ar); /* one chunk: the memory (full of NaN) is handed out again */
        ck_assert_ptr_nonnull(nb_full(ar, 1, (int64_t[]){3 << 18}, NAN));
        nb_arena_reset(ar);
        nb_tensor *mid[3];
        for (int k = 0; k < 3; k++) {
            mid[k] = nb_mul_scalar(ar, leaves[k], 1.0f);
            leaves[k]->grad = NULL;
        }
        nb_tensor *y = ops[i].f(ar, mid);
        ck_assert_msg(y != NULL, "%s: %s", ops[i].name, nb_last_error());
        nb_tensor *loss = y->numel == 1 ? y : nb_sum(ar, y);
        ck_assert_msg(isfinite(nb_item(loss)), "%s: the forward read garbage (loss %g)", ops[i].name,
                      nb_item(loss));
        ck_assert_msg(nb_backward(loss) == NB_OK, "%s: %s", ops[i].name, nb_last_error());
        for (int k = 0; k < 3; k++) {
            if (!leaves[k]->grad) continue; /* not an input of this op */
            for (int64_t j = 0; j < leaves[k]->numel; j++)
                ck_assert_msg(isfinite(nb_f32(leaves[k]->grad)[j]),
                              "%s: input %d grad[%lld] is %g: the backward read a fresh buffer",
                              ops[i].name, k, (long long)j, nb_f32(leaves[k]->grad)[j]);
        }
    }
    nb_arena_free(ar);
    for (int k = 0; k < 3; k++) {
        nb_tensor_free(leaves[k]);
        nb_module_free(g_rnn[k]);
    }
    nb_tensor_free(g_idx);
    nb_tensor_free(g_cls);
}
END_TEST

/* ---- grad hooks and end-of-backward callbacks (what nabla/dist.h builds on) ------------------ */
typedef struct hook_log {
    int n;
    const nb_tensor *who[8];
    float grad0[8]; /* grad[0] of the leaf when its hook ran */
    int ended, status;
    int queue_rc;
} hook_log;

static void log_hook(nb_tensor *leaf, void *user) {
    hook_log *l = user;
    l->who[l->n] = leaf;
    l->grad0[l->n++] = leaf->grad ? nb_f32(leaf->grad)[0] : NAN;
}

static int log_end(void *user, int status) {
    hook_log *l = user;
    l->ended++;
    l->status = status;
    return status ? status : NB_EIO; /* what the callback returns is the backward's result */
}

static void queue_hook(nb_tensor *leaf, void *user) {
    hook_log *l = user;
    if (l->n == 0) l->queue_rc = nb_backward_queue_callback(log_end, l);
    log_hook(leaf, user);
}

/* A hook runs once per backward, after the last op that adds to the leaf: w is read by three
 * ops here (w*x, w*w and sum(w)); its hook sees the whole gradient. Layers finish from the last
 * to the first, so the later weight's hook runs first. Unreached leaves are not called. */
START_TEST(test_grad_hooks) {
    nb_tensor *w = leaf((float[]){2, 3}, 2), *v = leaf((float[]){1, -1}, 2), *u = leaf((float[]){5, 5}, 2);
    nb_tensor *x = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){2}, (float[]){4, 1});
    hook_log l = {0};
    ck_assert_int_eq(nb_set_grad_hook(w, log_hook, &l), NB_OK);
    ck_assert_int_eq(nb_set_grad_hook(v, log_hook, &l), NB_OK);
    ck_assert_int_eq(nb_set_grad_hook(u, log_hook, &l), NB_OK);
    nb_arena *ar = nb_arena_new(0);
    /* loss = sum(v * (w*x + w*w)) + sum(w): v's last reader is the late mul, w's the early ops */
    nb_tensor *h = nb_add(ar, nb_mul(ar, w, x), nb_mul(ar, w, w));
    nb_tensor *loss = nb_add(ar, nb_sum(ar, nb_mul(ar, v, h)), nb_sum(ar, w));
    ck_assert_int_eq(nb_backward(loss), NB_OK);
    ck_assert_int_eq(l.n, 2);
    ck_assert_ptr_eq(l.who[0], v);
    ck_assert_ptr_eq(l.who[1], w);
    ck_assert_float_eq(l.grad0[0], 2 * 4 + 2 * 2);         /* dv = w*x + w*w */
    ck_assert_float_eq(l.grad0[1], nb_f32(w->grad)[0]);     /* the final gradient of w */
    ck_assert_float_eq(nb_f32(w->grad)[0], 1 * (4 + 2 * 2) + 1);
    /* a second backward over the same graph: counted afresh, called again */
    ck_assert_int_eq(nb_backward(loss), NB_OK);
    ck_assert_int_eq(l.n, 4);
    ck_assert_float_eq(l.grad0[3], 2 * (1 * (4 + 2 * 2) + 1));
    /* removed: not called */
    ck_assert_int_eq(nb_set_grad_hook(v, NULL, NULL), NB_OK);
    ck_assert_ptr_null(v->internal.hook);
    ck_assert_int_eq(nb_backward(loss), NB_OK);
    ck_assert_int_eq(l.n, 5);
    nb_arena_reset(ar);
    /* a leaf's own backward calls its hook */
    nb_tensor *s = leaf((float[]){1}, 1);
    ck_assert_int_eq(nb_set_grad_hook(s, log_hook, &l), NB_OK);
    ck_assert_int_eq(nb_backward(s), NB_OK);
    ck_assert_int_eq(l.n, 6);
    /* errors: not a heap leaf, NULL */
    nb_tensor *y = nb_mul(ar, w, x);
    ck_assert_int_eq(nb_set_grad_hook(y, log_hook, &l), NB_EINVAL);
    ck_assert_msg(strstr(nb_last_error(), "heap leaf"), "%s", nb_last_error());
    ck_assert_int_eq(nb_set_grad_hook(NULL, log_hook, &l), NB_EINVAL);
    nb_arena_free(ar);
    nb_tensor_free(w); /* frees its hook (ASan/valgrind would see a leak) */
    nb_tensor_free(v);
    nb_tensor_free(u);
    nb_tensor_free(s);
    nb_tensor_free(x);
}
END_TEST

/* A callback queued by a hook runs once at the end, with the backward's status, and its result
 * is the backward's; outside a backward there is nothing to queue on. */
START_TEST(test_backward_end_callbacks) {
    ck_assert_int_eq(nb_backward_queue_callback(log_end, NULL), NB_ESTATE);
    ck_assert_msg(strstr(nb_last_error(), "no backward is running"), "%s", nb_last_error());
    ck_assert_int_eq(nb_backward_queue_callback(NULL, NULL), NB_EINVAL);
    nb_tensor *w = leaf((float[]){2, 3}, 2), *v = leaf((float[]){1, 1}, 2);
    hook_log l = {0};
    ck_assert_int_eq(nb_set_grad_hook(w, queue_hook, &l), NB_OK);
    ck_assert_int_eq(nb_set_grad_hook(v, queue_hook, &l), NB_OK);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *loss = nb_sum(ar, nb_mul(ar, w, v));
    ck_assert_int_eq(nb_backward(loss), NB_EIO);
    ck_assert_int_eq(l.queue_rc, NB_OK);
    ck_assert_int_eq(l.n, 2);
    ck_assert_int_eq(l.ended, 1);
    ck_assert_int_eq(l.status, NB_OK);
    /* no hook reached: nothing queued, the backward's own result */
    nb_tensor *z = leaf((float[]){1, 2}, 2);
    ck_assert_int_eq(nb_backward(nb_sum(ar, z)), NB_OK);
    ck_assert_int_eq(l.ended, 1);
    nb_arena_free(ar);
    nb_tensor_free(w);
    nb_tensor_free(v);
    nb_tensor_free(z);
}
END_TEST

int main(void) {
    Suite *s = suite_create("autograd");
    TCase *tc = tcase_create("autograd");
    tcase_add_test(tc, test_accumulates_across_backwards);
    tcase_add_test(tc, test_backward_twice_same_graph);
    tcase_add_test(tc, test_requires_grad);
    tcase_add_test(tc, test_detach);
    tcase_add_test(tc, test_no_grad_scope);
    tcase_add_test(tc, test_backward_non_scalar);
    tcase_add_test(tc, test_backward_grad);
    tcase_add_test(tc, test_diamond);
    tcase_add_test(tc, test_gradcheck);
    tcase_add_test(tc, test_graph_dot);
    tcase_add_test(tc, test_graph_dot_labels_and_values);
    tcase_add_test(tc, test_graph_in_two_arenas);
    tcase_add_test(tc, test_fresh_grad_is_write_only);
    tcase_add_test(tc, test_grad_hooks);
    tcase_add_test(tc, test_backward_end_callbacks);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
