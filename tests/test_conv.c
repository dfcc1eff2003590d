/* test_conv.c - convolution, pooling, normalisation, Dropout2d, ELU/SiLU, Identity: outputs
 * and every gradient against PyTorch (tests/golden/conv.nbg.gz, tools/golden/gen_conv.py),
 * finite-difference gradient checks, the modules (names, buffers, reprs, init) and the
 * errors on bad shapes and arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "fdcheck.h"
#include "goldcheck.h"

static void setup(void) { G = golden_load("conv.nbg.gz"); }
static void teardown(void) { golden_free((golden *)G); }

/* ---- convolution ------------------------------------------------------------------------ */
static nb_conv_opts conv_opts(const int32_t *a) {
    nb_conv_opts o = nb_conv_defaults();
    o.stride[0] = a[0], o.stride[1] = a[1];
    o.padding[0] = a[2], o.padding[1] = a[3];
    o.dilation[0] = a[4], o.dilation[1] = a[5];
    o.groups = a[6];
    o.same = a[7];
    return o;
}

static void conv_golden(const char *prefix, bool two_d) {
    const char *names[64];
    int n = cases(prefix, "args", names, 64);
    ck_assert_int_ge(n, 4);
    for (int i = 0; i < n; i++) {
        const char *c = names[i];
        const int32_t *a = iargs(c);
        nb_conv_opts o = conv_opts(a);
        nb_tensor *x = leaf(c, "x", true), *w = leaf(c, "w", true), *b = a[8] ? leaf(c, "b", true) : NULL;
        nb_arena *ar = nb_arena_new(0);
        nb_tensor *y = two_d ? nb_conv2d(ar, x, w, b, &o) : nb_conv1d(ar, x, w, b, &o);
        expect(c, "y", y);
        const gold_entry *ye = entry(c, "y");
        ck_assert_int_eq(y->ndim, ye->ndim);
        for (int d = 0; d < y->ndim; d++) ck_assert_int_eq(y->shape[d], ye->shape[d]);
        expect_grads(c, y, b ? 3 : 2, (nb_tensor *[]){x, w, b}, (const char *[]){"x", "w", "b"});
        nb_arena_free(ar);
        nb_tensor_free(x);
        nb_tensor_free(w);
        nb_tensor_free(b);
    }
    report(prefix);
}

START_TEST(test_conv2d_golden) { conv_golden("c2_", true); }
END_TEST

START_TEST(test_conv1d_golden) { conv_golden("c1_", false); }
END_TEST

typedef struct conv_ctx {
    nb_conv_opts o;
    bool two_d;
} conv_ctx;

static nb_tensor *conv_fn(nb_arena *ar, nb_tensor *const *in, void *ctx) {
    conv_ctx *c = ctx;
    return c->two_d ? nb_conv2d(ar, in[0], in[1], in[2], &c->o) : nb_conv1d(ar, in[0], in[1], in[2], &c->o);
}

START_TEST(test_conv_gradcheck) {
    const char *list[] = {"c2_stride_pad", "c2_dilation", "c2_groups", "c2_same_even", "c2_1x1",
                          "c2_unbatched", "c2_rows_dil", "c1_dil_groups", "c1_same"};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++) {
        const char *c = list[i];
        const int32_t *a = iargs(c);
        conv_ctx ctx = {conv_opts(a), c[1] == '2'};
        nb_tensor *in[3] = {leaf(c, "x", true), leaf(c, "w", true), a[8] ? leaf(c, "b", true) : NULL};
        fd_check(c, conv_fn, 3, in, &ctx, 1e-2, 2e-3, 1e-2);
        for (int k = 0; k < 3; k++) nb_tensor_free(in[k]);
    }
}
END_TEST

/* Only the weight requires grad (the first layer of a network): the input gets no gradient. */
START_TEST(test_conv_weight_grad_only) {
    const char *c = "c2_lenet1";
    nb_conv_opts o = conv_opts(iargs(c));
    nb_tensor *x = leaf(c, "x", false), *w = leaf(c, "w", true), *b = leaf(c, "b", true);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *y = nb_conv2d(ar, x, w, b, &o);
    expect_grads(c, y, 2, (nb_tensor *[]){w, b}, (const char *[]){"w", "b"});
    ck_assert_ptr_null(x->grad);
    /* no grad mode: no graph */
    bool prev = nb_set_grad_enabled(false);
    nb_tensor *y2 = nb_conv2d(ar, x, w, b, &o);
    nb_set_grad_enabled(prev);
    ck_assert_ptr_null(y2->internal.node);
    expect(c, "y", y2);
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(w);
    nb_tensor_free(b);
}
END_TEST

/* The thread count never changes a bit: a direct-path convolution (stride 1, split across the
 * pool by samples for y and dx, by blocks of output channels for dW) run twice without zeroing
 * the grads (so the second backward adds), on 1, 2 and 3 threads, gives bitwise equal outputs
 * and gradients. */
typedef struct conv_run {
    nb_tensor *y, *gx, *gw, *gb;
} conv_run;

static conv_run conv_threads_run(int threads, int dims, const int64_t *xs, const int64_t *ws,
                                 const nb_conv_opts *o, bool x_grad) {
    ck_assert_int_eq(nb_set_num_threads(threads), NB_OK);
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_tensor *x = nb_uniform(NULL, dims + 2, xs, -1, 1, &rng), *w = nb_uniform(NULL, dims + 2, ws, -1, 1, &rng);
    nb_tensor *b = nb_uniform(NULL, 1, ws, -1, 1, &rng);
    ck_assert_int_eq(nb_requires_grad(x, x_grad), NB_OK);
    ck_assert_int_eq(nb_requires_grad(w, true), NB_OK);
    ck_assert_int_eq(nb_requires_grad(b, true), NB_OK);
    nb_arena *ar = nb_arena_new(0);
    conv_run r = {0};
    for (int rep = 0; rep < 2; rep++) {
        nb_tensor *y = dims == 2 ? nb_conv2d(ar, x, w, b, o) : nb_conv1d(ar, x, w, b, o);
        ck_assert_ptr_nonnull(y);
        nb_tensor *gy = nb_uniform(ar, y->ndim, y->shape, -1, 1, &rng);
        ck_assert_int_eq(nb_backward_grad(y, gy), NB_OK);
        if (rep == 1) r.y = nb_clone(NULL, y);
    }
    r.gx = x_grad ? nb_clone(NULL, x->grad) : NULL;
    r.gw = nb_clone(NULL, w->grad);
    r.gb = nb_clone(NULL, b->grad);
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(w);
    nb_tensor_free(b);
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
    return r;
}

static void assert_same_bits(const char *what, int threads, const char *name, const nb_tensor *a,
                             const nb_tensor *b) {
    if (!a && !b) return;
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(a->numel, b->numel);
    ck_assert_msg(memcmp(nb_f32(a), nb_f32(b), sizeof(float) * (size_t)a->numel) == 0,
                  "%s: %s differs between 1 and %d threads", what, name, threads);
}

START_TEST(test_conv_threads_bit_identical) {
    nb_conv_opts lenet1 = nb_conv_defaults(), plain = nb_conv_defaults(), grouped = nb_conv_defaults();
    nb_conv_opts c1 = nb_conv_defaults();
    lenet1.padding[0] = lenet1.padding[1] = 2;
    grouped.padding[0] = 1, grouped.padding[1] = 2, grouped.dilation[0] = 2, grouped.groups = 2;
    c1.padding[0] = 2;
    nb_conv_opts grouped3 = grouped;
    grouped3.groups = 3;
    const struct {
        const char *what;
        int dims;
        int64_t x[4], w[4];
        const nb_conv_opts *o;
        bool x_grad;
    } cases[] = {
        {"LeNet conv1 (no dx)", 2, {0, 1, 28, 28}, {6, 1, 5, 5}, &lenet1, false},
        {"LeNet conv1", 2, {0, 1, 28, 28}, {6, 1, 5, 5}, &lenet1, true},
        {"LeNet conv2", 2, {0, 6, 14, 14}, {16, 6, 5, 5}, &plain, true},
        {"padding, dilation, groups", 2, {0, 4, 17, 19}, {10, 2, 3, 3}, &grouped, true},
        {"3 groups of 8", 2, {0, 6, 17, 19}, {24, 2, 3, 3}, &grouped3, true},
        {"27 taps", 2, {0, 3, 20, 20}, {20, 3, 3, 3}, &lenet1, true},
        {"conv1d", 1, {0, 8, 200}, {12, 8, 5}, &c1, true},
    };
    const int64_t batches[] = {5, 64};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int k = 0; k < 2; k++) {
            int64_t xs[4];
            memcpy(xs, cases[c].x, sizeof xs);
            xs[0] = batches[k];
            char what[96];
            snprintf(what, sizeof what, "%s, batch %lld", cases[c].what, (long long)batches[k]);
            conv_run r[3];
            for (int t = 0; t < 3; t++)
                r[t] = conv_threads_run(t + 1, cases[c].dims, xs, cases[c].w, cases[c].o, cases[c].x_grad);
            for (int t = 1; t < 3; t++) {
                assert_same_bits(what, t + 1, "y", r[0].y, r[t].y);
                assert_same_bits(what, t + 1, "dx", r[0].gx, r[t].gx);
                assert_same_bits(what, t + 1, "dW", r[0].gw, r[t].gw);
                assert_same_bits(what, t + 1, "db", r[0].gb, r[t].gb);
            }
            for (int t = 0; t < 3; t++) {
                nb_tensor_free(r[t].y);
                nb_tensor_free(r[t].gx);
                nb_tensor_free(r[t].gw);
                nb_tensor_free(r[t].gb);
            }
        }
}
END_TEST

/* ReLU and max pooling split across the pool too (elementwise / by planes): relu then max
 * pooling (2x2, LeNet's fast path, and 3x3 stride 1 padding 1), forward and two backwards,
 * give the same bits on 1, 2 and 3 threads. */
START_TEST(test_relu_pool_threads_bit_identical) {
    nb_pool_opts o3 = nb_pool_defaults();
    o3.stride[0] = o3.stride[1] = 1, o3.padding[0] = o3.padding[1] = 1;
    const nb_pool_opts *opts[2] = {NULL, &o3};
    const int64_t ks[2] = {2, 3}, xs[4] = {64, 6, 28, 28};
    for (int c = 0; c < 2; c++) {
        nb_tensor *y[3], *gx[3];
        for (int t = 0; t < 3; t++) {
            ck_assert_int_eq(nb_set_num_threads(t + 1), NB_OK);
            nb_rng rng;
            nb_rng_seed(&rng, 3);
            nb_tensor *x = nb_uniform(NULL, 4, xs, -1, 1, &rng);
            ck_assert_int_eq(nb_requires_grad(x, true), NB_OK);
            nb_arena *ar = nb_arena_new(0);
            for (int rep = 0; rep < 2; rep++) {
                nb_tensor *out = nb_max_pool2d(ar, nb_relu(ar, x), ks[c], ks[c], opts[c]);
                ck_assert_ptr_nonnull(out);
                ck_assert_int_eq(nb_backward_grad(out, nb_uniform(ar, 4, out->shape, -1, 1, &rng)), NB_OK);
                if (rep == 1) y[t] = nb_clone(NULL, out);
            }
            gx[t] = nb_clone(NULL, x->grad);
            nb_arena_free(ar);
            nb_tensor_free(x);
        }
        ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
        for (int t = 1; t < 3; t++) {
            assert_same_bits(c ? "relu, max_pool 3x3" : "relu, max_pool 2x2", t + 1, "y", y[0], y[t]);
            assert_same_bits(c ? "relu, max_pool 3x3" : "relu, max_pool 2x2", t + 1, "dx", gx[0], gx[t]);
        }
        for (int t = 0; t < 3; t++) nb_tensor_free(y[t]), nb_tensor_free(gx[t]);
    }
}
END_TEST

/* A zero-size kernel is PyTorch's error; a window so large that the output size would overflow
 * int64 is refused (it was computed with a signed overflow and accepted). */
START_TEST(test_conv_pool_window_limits) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_ones(ar, 4, (int64_t[]){1, 2, 5, 5}), *w = nb_ones(ar, 4, (int64_t[]){3, 2, 3, 3});
    ck_assert_ptr_null(nb_conv2d(ar, x, nb_ones(ar, 4, (int64_t[]){3, 2, 0, 3}), NULL, NULL));
    ck_assert_str_eq(nb_last_error(), "conv2d: kernel size should be greater than zero, but got "
                     "kernel_height: 0 kernel_width: 3");
    ck_assert_ptr_null(nb_conv1d(ar, nb_ones(ar, 3, (int64_t[]){1, 2, 5}), nb_ones(ar, 3, (int64_t[]){3, 2, 0}), NULL, NULL));
    ck_assert_str_eq(nb_last_error(), "conv1d: kernel size should be greater than zero, but got "
                     "kernel_height: 1 kernel_width: 0");
    nb_conv_opts o = nb_conv_defaults();
    o.padding[0] = INT64_MAX / 2 + 5;
    ck_assert_ptr_null(nb_conv2d(ar, x, w, NULL, &o));
    ck_assert_str_eq(nb_last_error(), "conv2d: padding 4611686018427387908 is too large (at most 2147483647)");
    o = nb_conv_defaults();
    o.dilation[1] = (int64_t)1 << 40;
    ck_assert_ptr_null(nb_conv2d(ar, x, w, NULL, &o));
    ck_assert_str_eq(nb_last_error(), "conv2d: dilation 1099511627776 is too large (at most 2147483647)");
    o = nb_conv_defaults();
    o.groups = (int64_t)1 << 62; /* weight.size(1) * groups would overflow */
    ck_assert_ptr_null(nb_conv2d(ar, x, nb_ones(ar, 4, (int64_t[]){0, 2, 3, 3}), NULL, &o));
    ck_assert_msg(strstr(nb_last_error(), "to have 9223372036854775807 channels, but got 2"), "%s", nb_last_error());
    ck_assert_ptr_null(nb_max_pool2d(ar, x, INT64_MAX, 3, NULL));
    ck_assert_str_eq(nb_last_error(), "max_pool2d: kernel size 9223372036854775807 is too large (at most 2147483647)");
    nb_pool_opts po = nb_pool_defaults();
    po.stride[0] = INT64_MAX;
    po.ceil_mode = true;
    ck_assert_ptr_null(nb_max_pool2d(ar, x, 2, 2, &po));
    ck_assert_str_eq(nb_last_error(), "max_pool2d: stride 9223372036854775807 is too large (at most 2147483647)");
    po = nb_pool_defaults();
    po.dilation[0] = INT64_MAX / 2;
    ck_assert_ptr_null(nb_max_pool2d(ar, x, 3, 3, &po));
    ck_assert_str_eq(nb_last_error(), "max_pool2d: dilation 4611686018427387903 is too large (at most 2147483647)");
    ck_assert_ptr_null(nb_avg_pool2d(ar, x, INT64_MAX / 2, 2, NULL));
    ck_assert_str_eq(nb_last_error(), "avg_pool2d: kernel size 4611686018427387903 is too large (at most 2147483647)");
    nb_arena_free(ar);
}
END_TEST

START_TEST(test_conv_errors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_zeros(ar, 4, (int64_t[]){2, 3, 4, 4});
    nb_tensor *w5 = nb_zeros(ar, 4, (int64_t[]){6, 3, 5, 5}), *w1 = nb_zeros(ar, 4, (int64_t[]){6, 1, 3, 3});
    ck_assert_ptr_null(nb_conv2d(ar, x, w5, NULL, NULL));
    ck_assert_int_eq(nb_last_status(), NB_ESHAPE);
    ck_assert_str_eq(nb_last_error(), "conv2d: Calculated padded input size per channel: (4 x 4). "
                     "Kernel size: (5 x 5). Kernel size can't be greater than actual input size");
    nb_conv_opts o = nb_conv_defaults();
    o.padding[0] = o.padding[1] = 1; /* padded 6x6 >= 5x5: fine */
    ck_assert_ptr_nonnull(nb_conv2d(ar, x, w5, NULL, &o));
    o = nb_conv_defaults();
    o.dilation[0] = 2; /* 3x3 dilated 2 spans 5 rows */
    ck_assert_ptr_null(nb_conv2d(ar, x, nb_zeros(ar, 4, (int64_t[]){6, 3, 3, 3}), NULL, &o));
    ck_assert_msg(strstr(nb_last_error(), "Kernel size: (5 x 3)"), "%s", nb_last_error());
    ck_assert_ptr_null(nb_conv2d(ar, x, w1, NULL, NULL));
    ck_assert_str_eq(nb_last_error(), "conv2d: Given groups=1, weight of size [6, 1, 3, 3], expected "
                     "input[2, 3, 4, 4] to have 1 channels, but got 3 channels instead");
    o = nb_conv_defaults();
    o.groups = 2; /* 3 channels are not divisible into 2 groups */
    nb_tensor *w2 = nb_zeros(ar, 4, (int64_t[]){6, 2, 3, 3});
    ck_assert_ptr_null(nb_conv2d(ar, x, w2, NULL, &o));
    ck_assert_str_eq(nb_last_error(), "conv2d: Given groups=2, weight of size [6, 2, 3, 3], expected "
                     "input[2, 3, 4, 4] to have 4 channels, but got 3 channels instead");
    o.groups = 4;
    nb_tensor *w3 = nb_zeros(ar, 4, (int64_t[]){6, 1, 3, 3});
    ck_assert_ptr_null(nb_conv2d(ar, nb_zeros(ar, 4, (int64_t[]){1, 4, 4, 4}), w3, NULL, &o));
    ck_assert_str_eq(nb_last_error(), "conv2d: Given groups=4, expected weight to be divisible by 4 at "
                     "dimension 0, but got weight of size [6, 1, 3, 3] instead");
    ck_assert_ptr_null(nb_conv2d(ar, x, w5, nb_zeros(ar, 1, (int64_t[]){5}), &(nb_conv_opts){{1, 1}, {2, 2}, {1, 1}, 1, false}));
    ck_assert_str_eq(nb_last_error(), "conv2d: Given weight of size [6, 3, 5, 5], expected bias to be "
                     "1-dimensional with 6 elements, but got bias of size [5] instead");
    o = nb_conv_defaults();
    o.stride[1] = 0;
    ck_assert_ptr_null(nb_conv2d(ar, x, w1, NULL, &o));
    ck_assert_str_eq(nb_last_error(), "conv2d: non-positive stride is not supported");
    o = nb_conv_defaults();
    o.padding[0] = -1;
    ck_assert_ptr_null(nb_conv2d(ar, x, w1, NULL, &o));
    ck_assert_str_eq(nb_last_error(), "conv2d: negative padding is not supported");
    o = nb_conv_defaults();
    o.same = true;
    o.stride[0] = 2;
    ck_assert_ptr_null(nb_conv2d(ar, x, w1, NULL, &o));
    ck_assert_str_eq(nb_last_error(), "conv2d: padding='same' is not supported for strided convolutions");
    ck_assert_ptr_null(nb_conv2d(ar, nb_zeros(ar, 2, (int64_t[]){3, 4}), w1, NULL, NULL));
    ck_assert_str_eq(nb_last_error(), "conv2d: Expected 3D (unbatched) or 4D (batched) input to "
                     "conv2d, but got input of size: [3, 4]");
    ck_assert_ptr_null(nb_conv1d(ar, nb_zeros(ar, 3, (int64_t[]){2, 3, 4}), nb_zeros(ar, 3, (int64_t[]){6, 3, 5}), NULL, NULL));
    ck_assert_str_eq(nb_last_error(), "conv1d: Calculated padded input size per channel: (4). Kernel "
                     "size: (5). Kernel size can't be greater than actual input size");
    ck_assert_ptr_null(nb_conv1d(ar, x, w1, NULL, NULL));
    ck_assert_msg(strstr(nb_last_error(), "Expected 2D (unbatched) or 3D (batched) input to conv1d"),
                  "%s", nb_last_error());
    ck_assert_ptr_null(nb_conv2d(ar, NULL, w1, NULL, NULL));
    /* ops write into an arena: NULL is an error, not a crash */
    nb_tensor *xin = nb_zeros(ar, 4, (int64_t[]){2, 3, 6, 6}), *win = nb_zeros(ar, 4, (int64_t[]){4, 3, 3, 3});
    nb_tensor *outs[] = {nb_conv2d(NULL, xin, win, NULL, NULL), nb_max_pool2d(NULL, xin, 2, 2, NULL),
                         nb_avg_pool2d(NULL, xin, 2, 2, NULL), nb_adaptive_avg_pool2d(NULL, xin, 2, 2),
                         nb_batch_norm(NULL, xin, NULL, NULL, NULL, NULL, true, 0.1, 1e-5),
                         nb_layer_norm(NULL, xin, 1, (int64_t[]){6}, NULL, NULL, 1e-5),
                         nb_elu(NULL, xin, 1.0f), nb_silu(NULL, xin)};
    for (size_t i = 0; i < sizeof outs / sizeof *outs; i++) {
        ck_assert_msg(outs[i] == NULL, "op %zu accepted a NULL arena", i);
        ck_assert_int_eq(nb_last_status(), NB_EINVAL);
    }
    nb_arena_free(ar);
}
END_TEST

/* ---- pooling ---------------------------------------------------------------------------- */
static nb_pool_opts pool_opts(const int32_t *a) {
    nb_pool_opts o = nb_pool_defaults();
    o.stride[0] = a[2], o.stride[1] = a[3];
    o.padding[0] = a[4], o.padding[1] = a[5];
    o.dilation[0] = a[6], o.dilation[1] = a[7];
    o.ceil_mode = a[8];
    o.count_include_pad = a[9];
    o.divisor_override = a[10];
    return o;
}

static void pool_golden(const char *prefix, bool is_max) {
    const char *names[64];
    int n = cases(prefix, "args", names, 64);
    ck_assert_int_ge(n, 4);
    for (int i = 0; i < n; i++) {
        const char *c = names[i];
        const int32_t *a = iargs(c);
        nb_pool_opts o = pool_opts(a);
        nb_tensor *x = leaf(c, "x", true);
        nb_arena *ar = nb_arena_new(0);
        nb_tensor *y = is_max ? nb_max_pool2d(ar, x, a[0], a[1], &o) : nb_avg_pool2d(ar, x, a[0], a[1], &o);
        expect(c, "y", y);
        expect_grads(c, y, 1, &x, (const char *[]){"x"});
        nb_arena_free(ar);
        nb_tensor_free(x);
    }
    report(prefix);
}

/* 2x2 max pooling's backward writes every element of a new gradient (beta 0: recycled arena
 * memory full of NaN, odd sizes leaving a last row and column outside every window) and adds
 * to one that holds a gradient already (x pooled twice). */
START_TEST(test_max_pool_2x2_backward_writes_all) {
    nb_arena *ar = nb_arena_new(0);
    float *want = NULL;
    for (int garbage = 0; garbage < 2; garbage++) {
        if (garbage) { /* fill the arena with NaN, then reuse it */
            nb_tensor *t = nb_empty(ar, NB_FLOAT32, 1, (int64_t[]){1 << 16});
            for (int64_t i = 0; i < t->numel; i++) nb_f32(t)[i] = NAN;
        }
        nb_arena_reset(ar);
        nb_rng rng;
        nb_rng_seed(&rng, 4);
        nb_tensor *x0 = nb_uniform(NULL, 4, (int64_t[]){2, 3, 7, 9}, -1, 1, &rng);
        ck_assert_int_eq(nb_requires_grad(x0, true), NB_OK);
        nb_tensor *x = nb_mul_scalar(ar, x0, 1.0f); /* its gradient lives in the arena */
        nb_tensor *l = nb_add(ar, nb_sum(ar, nb_max_pool2d(ar, x, 2, 2, NULL)),
                              nb_sum(ar, nb_mul_scalar(ar, nb_max_pool2d(ar, x, 2, 2, NULL), 3.0f)));
        ck_assert_int_eq(nb_backward(l), NB_OK);
        if (!garbage) {
            want = malloc(sizeof(float) * (size_t)x0->numel);
            memcpy(want, x0->grad->data, sizeof(float) * (size_t)x0->numel);
            int64_t nz = 0;
            for (int64_t i = 0; i < x0->numel; i++) nz += want[i] == 4.0f;
            ck_assert_int_eq(nz, 2 * 3 * 3 * 4); /* one maximum per window, 1 + 3 each */
        } else {
            ck_assert(!memcmp(want, x0->grad->data, sizeof(float) * (size_t)x0->numel));
        }
        nb_tensor_free(x0);
    }
    free(want);
    nb_arena_free(ar);
}
END_TEST

START_TEST(test_max_pool_golden) { pool_golden("mp_", true); }
END_TEST

START_TEST(test_avg_pool_golden) { pool_golden("ap_", false); }
END_TEST

START_TEST(test_adaptive_pool_golden) {
    const char *names[16];
    int n = cases("aap_", "args", names, 16);
    ck_assert_int_eq(n, 4);
    for (int i = 0; i < n; i++) {
        const int32_t *a = iargs(names[i]);
        nb_tensor *x = leaf(names[i], "x", true);
        nb_arena *ar = nb_arena_new(0);
        nb_tensor *y = nb_adaptive_avg_pool2d(ar, x, a[0], a[1]);
        expect(names[i], "y", y);
        expect_grads(names[i], y, 1, &x, (const char *[]){"x"});
        nb_arena_free(ar);
        nb_tensor_free(x);
    }
    report("aap_");
}
END_TEST

typedef struct pool_ctx {
    int kind; /* 0 max, 1 avg, 2 adaptive */
    int64_t kh, kw;
    nb_pool_opts o;
} pool_ctx;

static nb_tensor *pool_fn(nb_arena *ar, nb_tensor *const *in, void *ctx) {
    pool_ctx *p = ctx;
    if (p->kind == 0) return nb_max_pool2d(ar, in[0], p->kh, p->kw, &p->o);
    if (p->kind == 1) return nb_avg_pool2d(ar, in[0], p->kh, p->kw, &p->o);
    return nb_adaptive_avg_pool2d(ar, in[0], p->kh, p->kw);
}

START_TEST(test_pool_gradcheck) {
    const char *list[] = {"mp_3s2p1", "mp_dil_ceil", "mp_unbatched", "ap_pad_excl", "ap_ceil",
                          "ap_divisor", "aap_down", "aap_up"};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++) {
        const char *c = list[i];
        const int32_t *a = iargs(c);
        pool_ctx p = {.kind = c[0] == 'm' ? 0 : c[1] == 'p' ? 1 : 2, .kh = a[0], .kw = a[1]};
        if (p.kind < 2) p.o = pool_opts(a);
        nb_tensor *x = leaf(c, "x", true);
        if (p.kind == 0) /* keep every window's maximum clear of ties (and of ±eps) */
            for (int64_t j = 0; j < x->numel; j++) nb_f32(x)[j] = (float)((j * 7919) % 1009) / 100.0f;
        fd_check(c, pool_fn, 1, &x, &p, 1e-2, 2e-3, 1e-2);
        nb_tensor_free(x);
    }
}
END_TEST

START_TEST(test_pool_errors) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_zeros(ar, 4, (int64_t[]){2, 3, 4, 4});
    ck_assert_ptr_null(nb_max_pool2d(ar, x, 5, 5, NULL));
    ck_assert_str_eq(nb_last_error(), "max_pool2d: Given input size: (3x4x4). Calculated output size: "
                     "(3x0x0). Output size is too small");
    nb_pool_opts o = nb_pool_defaults();
    o.padding[0] = o.padding[1] = 2;
    ck_assert_ptr_null(nb_avg_pool2d(ar, x, 3, 3, &o));
    ck_assert_str_eq(nb_last_error(), "avg_pool2d: pad should be at most half of kernel size, but got "
                     "pad=2 and kernel_size=3");
    o = nb_pool_defaults();
    o.stride[0] = -1;
    ck_assert_ptr_null(nb_max_pool2d(ar, x, 2, 2, &o));
    ck_assert_str_eq(nb_last_error(), "max_pool2d: stride should be greater than zero, but got dH: -1 dW: 2");
    o = nb_pool_defaults();
    o.dilation[1] = 0;
    ck_assert_ptr_null(nb_max_pool2d(ar, x, 2, 2, &o));
    ck_assert_msg(strstr(nb_last_error(), "dilation should be greater than zero"), "%s", nb_last_error());
    ck_assert_ptr_null(nb_max_pool2d(ar, x, 0, 2, NULL));
    ck_assert_str_eq(nb_last_error(), "max_pool2d: kernel size should be greater than zero, but got kH: 0 kW: 2");
    ck_assert_ptr_null(nb_max_pool2d(ar, nb_zeros(ar, 2, (int64_t[]){4, 4}), 2, 2, NULL));
    ck_assert_msg(strstr(nb_last_error(), "Expected 3D or 4D (batch mode) tensor"), "%s", nb_last_error());
    ck_assert_ptr_null(nb_adaptive_avg_pool2d(ar, x, -2, 3));
    ck_assert_str_eq(nb_last_error(), "adaptive_avg_pool2d: elements of output_size must be greater than "
                     "or equal to 0 but received {-2, 3}");
    ck_assert_ptr_null(nb_adaptive_avg_pool2d(ar, nb_zeros(ar, 2, (int64_t[]){4, 4}), 2, 2));
    ck_assert_str_eq(nb_last_error(), "adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got [4, 4]");
    nb_arena_free(ar);
}
END_TEST

/* ---- batch norm ------------------------------------------------------------------------- */
START_TEST(test_batchnorm_golden) {
    const char *names[16];
    int n = cases("bn", "args", names, 16);
    ck_assert_int_eq(n, 5);
    for (int i = 0; i < n; i++) {
        const char *c = names[i];
        const int32_t *a = iargs(c);
        const double *f = fargs(c);
        nb_batchnorm_opts o = nb_batchnorm_defaults();
        o.momentum = f[0];
        o.eps = f[1];
        o.affine = a[2];
        o.track_running_stats = a[3];
        nb_module *bn = a[0] == 2 ? nb_batchnorm2d_new(a[1], &o) : nb_batchnorm1d_new(a[1], &o);
        ck_assert_ptr_nonnull(bn);
        nb_tensor *w = nb_module_find(bn, "weight"), *b = nb_module_find(bn, "bias");
        if (o.affine) {
            nb_tensor *gw = leaf(c, "weight", false), *gb = leaf(c, "bias", false);
            nb_copy(w, gw);
            nb_copy(b, gb);
            nb_tensor_free(gw);
            nb_tensor_free(gb);
        }
        nb_arena *ar = nb_arena_new(0);
        for (int s = 0; s < a[4] + a[5]; s++) {
            char step[64];
            snprintf(step, sizeof step, "%s.%d", c, s);
            nb_module_train(bn, s < a[4]);
            nb_module_zero_grad(bn, true);
            nb_arena_reset(ar);
            nb_tensor *x = leaf(step, "x", true);
            nb_tensor *y = nb_forward(bn, ar, x);
            expect(step, "y", y);
            if (o.affine)
                expect_grads(step, y, 3, (nb_tensor *[]){x, w, b}, (const char *[]){"x", "weight", "bias"});
            else
                expect_grads(step, y, 1, &x, (const char *[]){"x"});
            if (o.track_running_stats) {
                expect(step, "running_mean", nb_module_find(bn, "running_mean"));
                expect(step, "running_var", nb_module_find(bn, "running_var"));
                nb_tensor *nbt = nb_module_find(bn, "num_batches_tracked");
                ck_assert_int_eq(nb_i32(nbt)[0], ((const int32_t *)entry(step, "num_batches_tracked")->data)[0]);
            } else {
                ck_assert_ptr_null(nb_module_find(bn, "running_mean"));
            }
            nb_tensor_free(x);
        }
        nb_arena_free(ar);
        nb_module_free(bn);
    }
    report("bn");
}
END_TEST

typedef struct bn_ctx {
    bool training;
    nb_tensor *rm, *rv;
} bn_ctx;

static nb_tensor *bn_fn(nb_arena *ar, nb_tensor *const *in, void *ctx) {
    bn_ctx *c = ctx;
    return nb_batch_norm(ar, in[0], c->rm, c->rv, in[1], in[2], c->training, 0.0, 1e-5);
}

START_TEST(test_batchnorm_gradcheck) {
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    for (int training = 0; training < 2; training++) {
        nb_tensor *in[3] = {nb_normal(NULL, 4, (int64_t[]){3, 2, 2, 3}, 0.5f, 2.0f, &rng),
                            nb_normal(NULL, 1, (int64_t[]){2}, 1.0f, 0.3f, &rng),
                            nb_normal(NULL, 1, (int64_t[]){2}, 0.0f, 1.0f, &rng)};
        for (int k = 0; k < 3; k++) nb_requires_grad(in[k], true);
        bn_ctx c = {training, nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){2}, (float[]){0.3f, -0.2f}),
                    nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){2}, (float[]){1.5f, 0.7f})};
        fd_check(training ? "batch_norm train" : "batch_norm eval", bn_fn, 3, in, &c, 1e-2, 2e-3, 1e-2);
        for (int k = 0; k < 3; k++) nb_tensor_free(in[k]);
        nb_tensor_free(c.rm);
        nb_tensor_free(c.rv);
    }
}
END_TEST

START_TEST(test_batchnorm_module) {
    nb_module *bn = nb_batchnorm2d_new(6, NULL);
    char buf[256];
    nb_module_repr(bn, buf, sizeof buf);
    ck_assert_str_eq(buf, "BatchNorm2d(6, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
    nb_batchnorm_opts o = nb_batchnorm_defaults();
    o.momentum = NAN;
    o.eps = 1e-3;
    o.affine = false;
    nb_module *bn1 = nb_batchnorm1d_new(5, &o);
    nb_module_repr(bn1, buf, sizeof buf);
    ck_assert_str_eq(buf, "BatchNorm1d(5, eps=0.001, momentum=None, affine=False, track_running_stats=True)");
    ck_assert_int_eq(nb_module_num_params(bn1), 0);
    /* state order as PyTorch's state_dict */
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module_free(bn);
    bn = nb_batchnorm2d_new(2, NULL);
    nb_module *seq = nb_sequential(6, (nb_module *[]){nb_conv2d_new(1, 2, 3, 3, NULL, true, &rng), bn,
                                                     nb_relu_new(), nb_max_pool2d_new(2, 2, NULL),
                                                     nb_flatten_new(1, -1), nb_linear_new(8, 3, true, &rng)});
    ck_assert_ptr_nonnull(seq);
    const nb_named_tensor *st;
    int n = nb_module_state(seq, &st);
    const char *want[] = {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                          "1.num_batches_tracked", "5.weight", "5.bias"};
    ck_assert_int_eq(n, 9);
    for (int i = 0; i < n; i++) ck_assert_str_eq(st[i].name, want[i]);
    ck_assert_int_eq(nb_module_num_params(seq), 6);
    ck_assert_int_eq(st[6].tensor->dtype, NB_INT32);
    ck_assert_int_eq(st[6].tensor->ndim, 0);
    for (int c = 0; c < 2; c++) {
        ck_assert_float_eq(nb_f32(st[2].tensor)[c], 1.0f); /* weight ones */
        ck_assert_float_eq(nb_f32(st[3].tensor)[c], 0.0f); /* bias zeros */
        ck_assert_float_eq(nb_f32(st[4].tensor)[c], 0.0f);
        ck_assert_float_eq(nb_f32(st[5].tensor)[c], 1.0f);
    }
    /* a forward through the whole thing, then a rejected batch changes nothing */
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_normal(ar, 4, (int64_t[]){2, 1, 6, 6}, 0, 1, &rng);
    ck_assert_msg(nb_forward(seq, ar, x) != NULL, "%s", nb_last_error());
    ck_assert_int_eq(nb_i32(st[6].tensor)[0], 1);
    float rm0 = nb_f32(st[4].tensor)[0];
    nb_tensor *one = nb_normal(ar, 4, (int64_t[]){1, 2, 1, 1}, 0, 1, &rng);
    ck_assert_ptr_null(nb_forward(bn, ar, one));
    ck_assert_str_eq(nb_last_error(), "batch_norm: Expected more than 1 value per channel when training, "
                     "got input size [1, 2, 1, 1]");
    ck_assert_int_eq(nb_i32(st[6].tensor)[0], 1);
    ck_assert_float_eq(nb_f32(st[4].tensor)[0], rm0);
    ck_assert_ptr_null(nb_forward(bn, ar, nb_zeros(ar, 3, (int64_t[]){2, 2, 3})));
    ck_assert_str_eq(nb_last_error(), "BatchNorm2d: expected 4D input (got 3D input)");
    ck_assert_ptr_null(nb_forward(bn1, ar, nb_zeros(ar, 4, (int64_t[]){2, 5, 3, 3})));
    ck_assert_str_eq(nb_last_error(), "BatchNorm1d: expected 2D or 3D input (got 4D input)");
    ck_assert_ptr_null(nb_forward(bn1, ar, nb_zeros(ar, 2, (int64_t[]){2, 4})));
    ck_assert_str_eq(nb_last_error(), "batch_norm: running_mean should contain 4 elements not 5");
    /* eval mode does not count batches and accepts a batch of one */
    nb_module_train(seq, false);
    ck_assert_ptr_nonnull(nb_forward(bn, ar, one));
    ck_assert_int_eq(nb_i32(st[6].tensor)[0], 1);
    ck_assert_ptr_null(nb_batch_norm(ar, one, NULL, NULL, NULL, NULL, false, 0.1, 1e-5));
    ck_assert_str_eq(nb_last_error(), "batch_norm: running_mean must be defined in evaluation mode");
    ck_assert_ptr_null(nb_batchnorm2d_new(0, NULL));
    nb_arena_free(ar);
    nb_module_free(seq);
    nb_module_free(bn1);
}
END_TEST

/* ---- layer norm ------------------------------------------------------------------------- */
START_TEST(test_layernorm_golden) {
    const char *names[8];
    int n = cases("ln_", "args", names, 8);
    ck_assert_int_eq(n, 3);
    for (int i = 0; i < n; i++) {
        const char *c = names[i];
        const int32_t *a = iargs(c);
        int64_t shape[8];
        for (int d = 0; d < a[0]; d++) shape[d] = a[2 + d];
        nb_module *ln = nb_layernorm_new(a[0], shape, fargs(c)[0], a[1]);
        ck_assert_ptr_nonnull(ln);
        nb_tensor *w = nb_module_find(ln, "weight"), *b = nb_module_find(ln, "bias");
        if (a[1]) {
            nb_tensor *gw = leaf(c, "weight", false), *gb = leaf(c, "bias", false);
            nb_copy(w, gw);
            nb_copy(b, gb);
            nb_tensor_free(gw);
            nb_tensor_free(gb);
        }
        nb_tensor *x = leaf(c, "x", true);
        nb_arena *ar = nb_arena_new(0);
        nb_tensor *y = nb_forward(ln, ar, x);
        expect(c, "y", y);
        if (a[1]) expect_grads(c, y, 3, (nb_tensor *[]){x, w, b}, (const char *[]){"x", "weight", "bias"});
        else expect_grads(c, y, 1, &x, (const char *[]){"x"});
        nb_arena_free(ar);
        nb_tensor_free(x);
        nb_module_free(ln);
    }
    report("ln_");
}
END_TEST

static nb_tensor *ln_fn(nb_arena *ar, nb_tensor *const *in, void *ctx) {
    (void)ctx;
    return nb_layer_norm(ar, in[0], 2, (int64_t[]){2, 3}, in[1], in[2], 1e-5);
}

START_TEST(test_layernorm_gradcheck_and_errors) {
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_tensor *in[3] = {nb_normal(NULL, 3, (int64_t[]){2, 2, 3}, 0.5f, 2.0f, &rng),
                        nb_normal(NULL, 2, (int64_t[]){2, 3}, 1.0f, 0.3f, &rng),
                        nb_normal(NULL, 2, (int64_t[]){2, 3}, 0.0f, 1.0f, &rng)};
    for (int k = 0; k < 3; k++) nb_requires_grad(in[k], true);
    fd_check("layer_norm", ln_fn, 3, in, NULL, 1e-2, 2e-3, 1e-2);
    nb_arena *ar = nb_arena_new(0);
    ck_assert_ptr_null(nb_layer_norm(ar, in[0], 1, (int64_t[]){4}, NULL, NULL, 1e-5));
    ck_assert_str_eq(nb_last_error(), "layer_norm: Given normalized_shape=[4], expected input with shape "
                     "[*, 4], but got input of size[2, 2, 3]");
    ck_assert_ptr_null(nb_layer_norm(ar, in[0], 1, (int64_t[]){3}, in[1], NULL, 1e-5));
    ck_assert_str_eq(nb_last_error(), "layer_norm: Expected weight to be of same shape as normalized_shape, "
                     "but got weight of shape [2, 3] and normalized_shape = [3]");
    nb_module *ln = nb_layernorm_new(1, (int64_t[]){5}, 1e-5, true);
    char buf[128];
    nb_module_repr(ln, buf, sizeof buf);
    ck_assert_str_eq(buf, "LayerNorm((5,), eps=1e-05, elementwise_affine=True)");
    nb_module_free(ln);
    ln = nb_layernorm_new(2, (int64_t[]){3, 4}, 1e-5, false);
    nb_module_repr(ln, buf, sizeof buf);
    ck_assert_str_eq(buf, "LayerNorm((3, 4), eps=1e-05, elementwise_affine=False)");
    ck_assert_int_eq(nb_module_num_params(ln), 0);
    nb_module_free(ln);
    nb_arena_free(ar);
    for (int k = 0; k < 3; k++) nb_tensor_free(in[k]);
}
END_TEST

/* ---- activations, Dropout2d, Identity ----------------------------------------------------- */
static nb_tensor *elu_fn(nb_arena *ar, nb_tensor *const *in, void *ctx) { return nb_elu(ar, in[0], *(float *)ctx); }
static nb_tensor *silu_fn(nb_arena *ar, nb_tensor *const *in, void *ctx) { (void)ctx; return nb_silu(ar, in[0]); }

START_TEST(test_activations) {
    const char *names[] = {"elu", "elu_a05", "silu"};
    nb_module *mods[] = {nb_elu_new(1.0f), nb_elu_new(0.5f), nb_silu_new()};
    for (int i = 0; i < 3; i++) {
        nb_tensor *x = leaf(names[i], "x", true);
        nb_arena *ar = nb_arena_new(0);
        nb_tensor *y = nb_forward(mods[i], ar, x);
        expect(names[i], "y", y);
        expect_grads(names[i], y, 1, &x, (const char *[]){"x"});
        float alpha = i == 1 ? 0.5f : 1.0f;
        fd_check(names[i], i < 2 ? elu_fn : silu_fn, 1, &x, &alpha, 1e-3, 2e-3, 1e-2);
        nb_arena_free(ar);
        nb_tensor_free(x);
    }
    const char *reprs[] = {"ELU(alpha=1.0)", "ELU(alpha=0.5)", "SiLU()"};
    char buf[64];
    for (int i = 0; i < 3; i++) {
        nb_module_repr(mods[i], buf, sizeof buf);
        ck_assert_str_eq(buf, reprs[i]);
        nb_module_free(mods[i]);
    }
    nb_module *id = nb_identity_new();
    nb_module_repr(id, buf, sizeof buf);
    ck_assert_str_eq(buf, "Identity()");
    nb_tensor *t = nb_zeros(NULL, 1, (int64_t[]){3});
    nb_arena *ar = nb_arena_new(0);
    ck_assert_ptr_eq(nb_forward(id, ar, t), t);
    nb_arena_free(ar);
    nb_tensor_free(t);
    nb_module_free(id);
    report("activations");
}
END_TEST

static nb_tensor *dropout2d_fn(nb_arena *ar, nb_tensor *const *in, void *ctx) {
    nb_rng rng = *(nb_rng *)ctx; /* the same mask at every evaluation */
    return nb_dropout2d(ar, in[0], 0.4f, true, &rng);
}

START_TEST(test_dropout2d) {
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_tensor *x = nb_normal(NULL, 4, (int64_t[]){16, 8, 3, 3}, 0, 1, &rng);
    nb_requires_grad(x, true);
    nb_arena *ar = nb_arena_new(0);
    nb_module *d = nb_dropout2d_new(0.25f, &rng);
    nb_tensor *y = nb_forward(d, ar, x);
    int zeroed = 0;
    for (int64_t p = 0; p < 16 * 8; p++) { /* each plane is all zero or all x / 0.75 */
        bool z = nb_f32(y)[p * 9] == 0.0f;
        zeroed += z;
        for (int64_t i = 0; i < 9; i++) {
            float want = z ? 0.0f : nb_f32(x)[p * 9 + i] / 0.75f;
            ck_assert_float_eq_tol(nb_f32(y)[p * 9 + i], want, 1e-6f * (1 + fabsf(want)));
        }
    }
    ck_assert_int_gt(zeroed, 128 / 4 - 16);
    ck_assert_int_lt(zeroed, 128 / 4 + 16);
    ck_assert_int_eq(nb_backward_grad(y, nb_ones(ar, 4, x->shape)), NB_OK);
    for (int64_t p = 0; p < 128; p++)
        ck_assert_float_eq_tol(nb_f32(x->grad)[p * 9 + 4], nb_f32(y)[p * 9] == 0.0f ? 0.0f : 1 / 0.75f, 1e-6f);
    nb_module_train(d, false);
    ck_assert_ptr_eq(nb_forward(d, ar, x), x);
    char buf[64];
    nb_module_repr(d, buf, sizeof buf);
    ck_assert_str_eq(buf, "Dropout2d(p=0.25, inplace=False)");
    nb_module_free(d);
    d = nb_dropout2d_new(0.1f, &rng);
    nb_module_repr(d, buf, sizeof buf);
    ck_assert_str_eq(buf, "Dropout2d(p=0.1, inplace=False)");
    nb_module_free(d);
    ck_assert_ptr_null(nb_dropout2d_new(1.5f, &rng));
    ck_assert_str_eq(nb_last_error(), "dropout probability has to be between 0 and 1, but got 1.5");
    nb_rng fixed = rng;
    nb_tensor *small = nb_normal(NULL, 3, (int64_t[]){3, 4, 2}, 0, 1, &rng);
    nb_requires_grad(small, true);
    fd_check("dropout2d", dropout2d_fn, 1, &small, &fixed, 1e-2, 2e-3, 1e-2);
    nb_tensor_free(small);
    nb_arena_free(ar);
    nb_tensor_free(x);
}
END_TEST

/* ---- modules: Conv/pool constructors, reprs, init ----------------------------------------- */
START_TEST(test_conv_modules) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    char buf[256];
    nb_conv_opts o = nb_conv_defaults();
    o.padding[0] = o.padding[1] = 2;
    nb_module *c = nb_conv2d_new(1, 6, 5, 5, &o, true, &rng);
    nb_module_repr(c, buf, sizeof buf);
    ck_assert_str_eq(buf, "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))");
    ck_assert_str_eq(nb_module_param(c, 0).name, "weight");
    nb_tensor *w = nb_module_param(c, 0).tensor, *b = nb_module_param(c, 1).tensor;
    ck_assert_int_eq(w->ndim, 4);
    ck_assert_int_eq(w->shape[0], 6);
    ck_assert_int_eq(w->shape[1], 1);
    float bound = 1.0f / 5.0f, m = 0; /* kaiming_uniform(a=sqrt 5): 1/sqrt(fan_in), fan_in 25 */
    for (int64_t i = 0; i < w->numel; i++) m = fmaxf(m, fabsf(nb_f32(w)[i]));
    ck_assert(m <= bound && m > 0.8f * bound);
    for (int64_t i = 0; i < b->numel; i++) ck_assert(fabsf(nb_f32(b)[i]) <= bound);
    nb_module_free(c);
    o = nb_conv_defaults();
    o.stride[0] = o.stride[1] = 2;
    o.dilation[1] = 2;
    o.groups = 2;
    c = nb_conv2d_new(4, 6, 3, 2, &o, false, &rng);
    nb_module_repr(c, buf, sizeof buf);
    ck_assert_str_eq(buf, "Conv2d(4, 6, kernel_size=(3, 2), stride=(2, 2), dilation=(1, 2), groups=2, bias=False)");
    ck_assert_int_eq(nb_module_num_params(c), 1);
    ck_assert_int_eq(nb_module_param(c, 0).tensor->shape[1], 2);
    nb_module_free(c);
    o = nb_conv_defaults();
    o.same = true;
    c = nb_conv2d_new(3, 6, 3, 3, &o, true, &rng);
    nb_module_repr(c, buf, sizeof buf);
    ck_assert_str_eq(buf, "Conv2d(3, 6, kernel_size=(3, 3), stride=(1, 1), padding=same)");
    nb_module_free(c);
    o = nb_conv_defaults();
    o.stride[0] = 2;
    o.padding[0] = 1;
    c = nb_conv1d_new(3, 4, 3, &o, true, &rng);
    nb_module_repr(c, buf, sizeof buf);
    ck_assert_str_eq(buf, "Conv1d(3, 4, kernel_size=(3,), stride=(2,), padding=(1,))");
    ck_assert_int_eq(nb_module_param(c, 0).tensor->ndim, 3);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *y = nb_forward(c, ar, nb_zeros(ar, 3, (int64_t[]){2, 3, 10}));
    ck_assert_int_eq(y->shape[2], 5);
    nb_arena_free(ar);
    nb_module_free(c);
    /* constructor errors */
    o = nb_conv_defaults();
    o.groups = 2;
    ck_assert_ptr_null(nb_conv2d_new(3, 6, 3, 3, &o, true, &rng));
    ck_assert_str_eq(nb_last_error(), "Conv2d: in_channels must be divisible by groups");
    o.groups = 4;
    ck_assert_ptr_null(nb_conv2d_new(4, 6, 3, 3, &o, true, &rng));
    ck_assert_str_eq(nb_last_error(), "Conv2d: out_channels must be divisible by groups");
    o.groups = 0;
    ck_assert_ptr_null(nb_conv2d_new(4, 8, 3, 3, &o, true, &rng));
    ck_assert_str_eq(nb_last_error(), "Conv2d: groups must be a positive integer");
    o = nb_conv_defaults();
    o.same = true;
    o.stride[1] = 2;
    ck_assert_ptr_null(nb_conv2d_new(4, 8, 3, 3, &o, true, &rng));
    ck_assert_str_eq(nb_last_error(), "Conv2d: padding='same' is not supported for strided convolutions");
    /* pooling modules */
    const char *reprs[] = {"MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)",
                           "MaxPool2d(kernel_size=(3, 2), stride=(2, 1), padding=1, dilation=2, ceil_mode=True)",
                           "AvgPool2d(kernel_size=3, stride=2, padding=1)",
                           "AdaptiveAvgPool2d(output_size=(None, 5))", "AdaptiveAvgPool2d(output_size=1)"};
    nb_pool_opts po = nb_pool_defaults();
    po.stride[0] = 2, po.stride[1] = 1, po.padding[0] = po.padding[1] = 1;
    po.dilation[0] = po.dilation[1] = 2, po.ceil_mode = true;
    nb_pool_opts ao = nb_pool_defaults();
    ao.stride[0] = ao.stride[1] = 2, ao.padding[0] = ao.padding[1] = 1;
    nb_module *pools[] = {nb_max_pool2d_new(2, 2, NULL), nb_max_pool2d_new(3, 2, &po),
                          nb_avg_pool2d_new(3, 3, &ao), nb_adaptive_avg_pool2d_new(-1, 5),
                          nb_adaptive_avg_pool2d_new(1, 1)};
    for (int i = 0; i < 5; i++) {
        nb_module_repr(pools[i], buf, sizeof buf);
        ck_assert_str_eq(buf, reprs[i]);
        nb_module_free(pools[i]);
    }
    ck_assert_ptr_null(nb_max_pool2d_new(3, 3, &(nb_pool_opts){{0, 0}, {2, 2}, {1, 1}, false, true, 0}));
    ck_assert_str_eq(nb_last_error(), "MaxPool2d: pad should be at most half of kernel size, but got pad=2 "
                     "and kernel_size=3");
}
END_TEST

static long n_mallocs;
static void *count_malloc(size_t n) { n_mallocs++; return malloc(n); }
static void *count_realloc(void *p, size_t n) { n_mallocs++; return realloc(p, n); }

/* LeNet-5 end to end: shapes, a backward, and no heap allocation in a steady-state step, on 1
 * and on 2 threads. */
START_TEST(test_lenet_shapes_and_arena) {
    /* possible only while nabla has not allocated yet in this (forked) test process */
    bool counting = nb_set_allocator(count_malloc, count_realloc, free) == NB_OK;
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_conv_opts p2 = nb_conv_defaults();
    p2.padding[0] = p2.padding[1] = 2;
    nb_module *m = nb_sequential(12, (nb_module *[]){
        nb_conv2d_new(1, 6, 5, 5, &p2, true, &rng), nb_relu_new(), nb_max_pool2d_new(2, 2, NULL),
        nb_conv2d_new(6, 16, 5, 5, NULL, true, &rng), nb_relu_new(), nb_max_pool2d_new(2, 2, NULL),
        nb_flatten_new(1, -1), nb_linear_new(400, 120, true, &rng), nb_relu_new(),
        nb_linear_new(120, 84, true, &rng), nb_relu_new(), nb_linear_new(84, 10, true, &rng)});
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(nb_module_numel(m), 61706); /* as PyTorch's LeNet-5 */
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_uniform(NULL, 4, (int64_t[]){8, 1, 28, 28}, 0, 1, &rng);
    nb_tensor *y = nb_from_array(NULL, NB_INT32, 1, (int64_t[]){8}, (int32_t[]){0, 1, 2, 3, 4, 5, 6, 7});
    long before = 0, after_1thread = 0;
    for (int step = 0; step < 8; step++) { /* steps 4..7 on 2 threads: the convs are split */
        if (step == 2 || step == 6) before = n_mallocs;
        if (step == 4) {
            after_1thread = n_mallocs - before;
            ck_assert_int_eq(nb_set_num_threads(2), NB_OK);
        }
        nb_arena_reset(ar);
        nb_tensor *logits = nb_forward(m, ar, x);
        ck_assert_int_eq(logits->shape[1], 10);
        nb_module_zero_grad(m, true);
        ck_assert_int_eq(nb_backward(nb_cross_entropy(ar, logits, y, NULL)), NB_OK);
    }
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
    if (counting) { /* steps 3 and 4, 7 and 8 */
        ck_assert_int_eq(after_1thread, 0);
        ck_assert_int_eq(n_mallocs - before, 0);
    }
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(y);
    nb_module_free(m);
    if (!counting)
        NB_SKIP("shapes checked, allocations not counted: nabla already allocated in this process "
                "(CK_FORK=no?)");
}
END_TEST

int main(void) {
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_conv2d_golden);
    tcase_add_test(tc, test_conv1d_golden);
    tcase_add_test(tc, test_conv_gradcheck);
    tcase_add_test(tc, test_conv_weight_grad_only);
    tcase_add_test(tc, test_conv_threads_bit_identical);
    tcase_add_test(tc, test_relu_pool_threads_bit_identical);
    tcase_add_test(tc, test_conv_errors);
    tcase_add_test(tc, test_conv_pool_window_limits);
    tcase_add_test(tc, test_max_pool_golden);
    tcase_add_test(tc, test_max_pool_2x2_backward_writes_all);
    tcase_add_test(tc, test_avg_pool_golden);
    tcase_add_test(tc, test_adaptive_pool_golden);
    tcase_add_test(tc, test_pool_gradcheck);
    tcase_add_test(tc, test_pool_errors);
    tcase_add_test(tc, test_batchnorm_golden);
    tcase_add_test(tc, test_batchnorm_gradcheck);
    tcase_add_test(tc, test_batchnorm_module);
    tcase_add_test(tc, test_layernorm_golden);
    tcase_add_test(tc, test_layernorm_gradcheck_and_errors);
    tcase_add_test(tc, test_activations);
    tcase_add_test(tc, test_dropout2d);
    tcase_add_test(tc, test_conv_modules);
    tcase_add_test(tc, test_lenet_shapes_and_arena);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
