/* test_nn.c - modules: names, slab, Linear/Sequential, the MLP parity with PyTorch, and
 * swa_utils.update_bn against PyTorch 1.13. */
#include <math.h>
#include <string.h>
#include "common.h"

START_TEST(test_sequential_names) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *m = nb_sequential(3, (nb_module *[]){nb_linear_new(784, 128, true, &rng), nb_relu_new(),
                                                     nb_linear_new(128, 10, true, &rng)});
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(nb_module_num_params(m), 4);
    ck_assert_int_eq(nb_module_numel(m), 784 * 128 + 128 + 128 * 10 + 10);
    const char *names[] = {"0.weight", "0.bias", "2.weight", "2.bias"};
    for (int i = 0; i < 4; i++) ck_assert_str_eq(nb_module_param(m, i).name, names[i]);
    ck_assert_int_eq(nb_module_find(m, "0.weight")->shape[1], 784);
    ck_assert_ptr_null(nb_module_find(m, "1.weight"));
    /* all parameters live in one slab, in order */
    const float *w0 = nb_f32(nb_module_param(m, 0).tensor), *b2 = nb_f32(nb_module_param(m, 3).tensor);
    ck_assert_ptr_eq(nb_module_param(m, 0).tensor->data, m->internal.slab);
    ck_assert(b2 > w0 && b2 < m->internal.slab + m->internal.slab_numel);
    char buf[512];
    nb_module_repr(m, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "(0): Linear(in_features=784, out_features=128, bias=True)"), "%s", buf);
    nb_module_free(m);
}
END_TEST

/* float arguments print as PyTorch prints the Python float the user wrote (0.1, not the
 * 0.10000000149011612 that 0.1f widens to), in reprs and in messages */
START_TEST(test_float_arguments_print_as_written) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_rnn_opts o = nb_rnn_defaults();
    o.num_layers = 2;
    o.dropout = 0.1f;
    o.dropout_rng = &rng;
    struct {
        nb_module *m;
        const char *want;
    } cases[] = {
        {nb_dropout_new(0.1f, &rng), "Dropout(p=0.1, inplace=False)"},
        {nb_dropout2d_new(0.3f, &rng), "Dropout2d(p=0.3, inplace=False)"},
        {nb_elu_new(0.3f), "ELU(alpha=0.3)"},
        {nb_leaky_relu_new(100.0f), "LeakyReLU(negative_slope=100.0)"},
        {nb_leaky_relu_new(1e-5f), "LeakyReLU(negative_slope=1e-05)"},
        {nb_lstm_new(3, 4, &o, &rng), "LSTM(3, 4, num_layers=2, dropout=0.1)"},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_ptr_nonnull(cases[i].m);
        nb_module_repr(cases[i].m, buf, sizeof buf);
        ck_assert_str_eq(buf, cases[i].want);
        nb_module_free(cases[i].m);
    }
    ck_assert_ptr_null(nb_dropout_new(-0.1f, &rng));
    ck_assert_str_eq(nb_last_error(), "dropout probability has to be between 0 and 1, but got -0.1");
}
END_TEST

/* Parameters are float32 heap leaves: a uint8 one made nb_module_pack copy 4 bytes per
 * element out of a 1-byte buffer; an arena tensor would die at the next reset. The module
 * takes ownership either way (the rejected tensor is freed: ASan sees no leak). */
START_TEST(test_param_must_be_float_heap_leaf) {
    static const nb_module_ops ops = {"Custom", NULL, NULL, NULL};
    nb_module *m = nb_module_alloc(sizeof(nb_module), &ops);
    nb_arena *ar = nb_arena_new(0);
    ck_assert_int_eq(nb_module_add_param(m, "w", nb_empty(NULL, NB_UINT8, 1, (int64_t[]){3})), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "module: parameter \"w\" must be float32, got uint8");
    ck_assert_int_eq(nb_module_add_param(m, "v", nb_zeros(ar, 1, (int64_t[]){3})), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "module: parameter \"v\" must be a heap leaf tensor (made with a "
                     "NULL arena, not by an op)");
    ck_assert_int_eq(nb_module_add_buffer(m, "count", nb_empty(NULL, NB_INT32, 0, NULL)), NB_OK);
    ck_assert_int_eq(nb_module_add_param(m, "u", nb_ones(NULL, 1, (int64_t[]){3})), NB_OK);
    ck_assert_int_eq(nb_module_pack(m), NB_OK);
    ck_assert_int_eq(nb_module_num_params(m), 1);
    ck_assert_float_eq(nb_f32(nb_module_find(m, "u"))[2], 1.0f);
    nb_arena_free(ar);
    nb_module_free(m);
}
END_TEST

/* A module has one parent: the same module twice, or one that already belongs to a tree, is
 * refused (it was added twice and freed twice). */
START_TEST(test_module_has_one_parent) {
    nb_module *r = nb_relu_new();
    ck_assert_ptr_null(nb_sequential(2, (nb_module *[]){r, r})); /* r is freed once */
    ck_assert_str_eq(nb_last_error(), "Sequential: module 1 appears twice (a module has one parent; "
                     "nabla shares no module between places)");
    nb_module *a = nb_tanh_new(), *s1 = nb_sequential(1, (nb_module *[]){a});
    ck_assert_ptr_nonnull(s1);
    ck_assert_ptr_null(nb_sequential(2, (nb_module *[]){nb_relu_new(), a})); /* a stays s1's */
    ck_assert_str_eq(nb_last_error(), "Sequential: module 1 already belongs to a module");
    ck_assert_int_eq(nb_module_add_child(a, "up", s1), NB_EINVAL); /* a cycle */
    ck_assert_str_eq(nb_last_error(), "module: child \"up\" (Sequential) already contains this module; "
                     "a module has one parent");
    ck_assert_int_eq(nb_module_add_child(s1, "again", a), NB_EINVAL);
    ck_assert_ptr_eq(nb_module_child(s1, 0), a);
    nb_module_free(s1);
}
END_TEST

START_TEST(test_sequential_takes_ownership_on_failure) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *m = nb_sequential(2, (nb_module *[]){nb_linear_new(4, 4, true, &rng), NULL});
    ck_assert_ptr_null(m); /* the Linear is freed (ASan/valgrind would report a leak) */
    ck_assert_int_eq(nb_last_status(), NB_EINVAL);
}
END_TEST

START_TEST(test_linear_bad_input) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *l = nb_linear_new(784, 128, true, &rng);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_zeros(ar, 2, (int64_t[]){2, 783});
    ck_assert_ptr_null(nb_forward(l, ar, x));
    ck_assert_str_eq(nb_last_error(), "linear: input has 783 features, expected 784 (input shape [2, 783])");
    ck_assert_ptr_null(nb_forward(l, ar, NULL));
    nb_arena_free(ar);
    nb_module_free(l);
}
END_TEST

/* 784-128-10 MLP with PyTorch's weights and a fixed batch: logits, loss and all gradients. */
START_TEST(test_mlp_parity) {
    golden *g = golden_load("mlp.nbg.gz");
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *m = nb_sequential(3, (nb_module *[]){nb_linear_new(784, 128, true, &rng), nb_relu_new(),
                                                     nb_linear_new(128, 10, true, &rng)});
    const char *names[] = {"0.weight", "0.bias", "2.weight", "2.bias"};
    for (int i = 0; i < 4; i++) { /* seed 0 gives PyTorch's torch.manual_seed(0) init, bit for bit */
        const gold_entry *e = golden_get(g, names[i]);
        nb_tensor *p = nb_module_find(m, names[i]);
        ck_assert_int_eq(p->numel, e->numel);
        ck_assert_msg(memcmp(p->data, e->data, sizeof(float) * (size_t)e->numel) == 0,
                      "%s: init differs from PyTorch's with the same seed", names[i]);
    }
    nb_arena *ar = nb_arena_new(0);
    const gold_entry *xe = golden_get(g, "x"), *ye = golden_get(g, "y");
    nb_tensor *x = nb_from_array(ar, NB_FLOAT32, xe->ndim, xe->shape, xe->data);
    nb_tensor *y = nb_from_array(ar, NB_INT32, ye->ndim, ye->shape, ye->data);
    nb_tensor *logits = nb_forward(m, ar, x);
    nb_tensor *loss = nb_cross_entropy(ar, logits, y, NULL);
    ck_assert_ptr_nonnull(loss);
    const gold_entry *le = golden_get(g, "logits"), *lo = golden_get(g, "loss");
    assert_close("logits", nb_f32(logits), le->data, le->numel, 1e-5, 1e-6);
    assert_close("loss", nb_f32(loss), lo->data, 1, 1e-5, 0);
    ck_assert_int_eq(nb_backward(loss), NB_OK);
    for (int i = 0; i < 4; i++) {
        char gname[32];
        snprintf(gname, sizeof gname, "grad.%s", names[i]);
        const gold_entry *e = golden_get(g, gname);
        nb_tensor *p = nb_module_find(m, names[i]);
        ck_assert_ptr_nonnull(p->grad);
        int64_t w;
        double rel = parity_err(nb_f32(p->grad), e->data, e->numel, &w);
        ck_assert_msg(rel <= 1e-5, "%s: max relative error %.3g at %lld", gname, rel, (long long)w);
    }
    nb_arena_free(ar);
    nb_module_free(m);
    golden_free(g);
}
END_TEST

/* A uint8 tensor of the given shape from a golden's int32 values (0..255). */
static nb_tensor *u8_tensor(const gold_entry *e, int ndim, const int64_t *shape) {
    nb_tensor *t = nb_empty(NULL, NB_UINT8, ndim, shape);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->numel, e->numel);
    for (int64_t i = 0; i < e->numel; i++) nb_u8(t)[i] = (uint8_t)((const int32_t *)e->data)[i];
    return t;
}

/* ---- torch.optim.swa_utils.update_bn ------------------------------------------------------ */
/* The golden's three models (tools/golden/gen_update_bn.py): PyTorch's parameters copied in,
 * running statistics set to junk, num_batches_tracked 7, eval mode; then update_bn over a
 * loader of the golden's images (batches of 5 of 23, not shuffled). */
static nb_module *bn_model(int which, golden *g) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_batchnorm_opts mo = nb_batchnorm_defaults(), none = nb_batchnorm_defaults();
    mo.momentum = 0.3;
    none.momentum = NAN;
    static const char *prefix[] = {"flat", "seq", "conv"};
    nb_module *m = which == 0 ? nb_sequential(5, (nb_module *[]){nb_linear_new(12, 6, true, &rng), nb_batchnorm1d_new(6, NULL),
                                                                 nb_relu_new(), nb_linear_new(6, 5, true, &rng),
                                                                 nb_batchnorm1d_new(5, &mo)})
                   : which == 1 ? nb_sequential(2, (nb_module *[]){nb_batchnorm1d_new(3, &none), nb_relu_new()})
                                : nb_sequential(3, (nb_module *[]){nb_conv2d_new(1, 2, 2, 2, NULL, true, &rng),
                                                                   nb_batchnorm2d_new(2, NULL), nb_relu_new()});
    ck_assert_ptr_nonnull(m);
    const nb_named_tensor *st;
    int n = nb_module_state(m, &st);
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s.%s", prefix[which], st[i].name);
        if (strstr(key, "num_batches_tracked")) nb_i32(st[i].tensor)[0] = 7;
        else if (strstr(key, "running_")) {
            for (int64_t j = 0; j < st[i].tensor->numel; j++) nb_f32(st[i].tensor)[j] = 5.0f + (float)j;
        } else {
            const gold_entry *e = golden_get(g, key);
            ck_assert_int_eq(e->numel, st[i].tensor->numel);
            memcpy(st[i].tensor->data, e->data, sizeof(float) * (size_t)e->numel);
        }
    }
    nb_module_train(m, false);
    return m;
}

START_TEST(test_update_bn) {
    golden *g = golden_load("update_bn.nbg.gz");
    const gold_entry *im = golden_get(g, "images");
    nb_tensor *images[2], *labels = nb_empty(NULL, NB_INT32, 1, (int64_t[]){im->numel / 12});
    memset(labels->data, 0, sizeof(int32_t) * (size_t)labels->numel);
    images[0] = u8_tensor(im, 4, (int64_t[]){im->shape[0], 1, 3, 4});
    images[1] = u8_tensor(im, 3, (int64_t[]){im->shape[0], 3, 4});
    nb_arena *ar = nb_arena_new(0);
    for (int which = 0; which < 3; which++) {
        nb_module *m = bn_model(which, g);
        char before[512], after[512];
        nb_module_repr(m, before, sizeof before);
        nb_loader_opts lo = {.batch_size = 5, .shuffle = false, .flatten = which == 0};
        nb_loader *ld = nb_loader_new(images[which == 1], labels, &lo);
        ck_assert_msg(ld, "%s", nb_last_error());
        ck_assert_msg(nb_update_bn(m, nb_loader_inputs, ld, ar) == NB_OK, "%s", nb_last_error());
        ck_assert(!m->training && !m->children[0]->training); /* eval again, as before */
        nb_module_repr(m, after, sizeof after);
        ck_assert_str_eq(after, before); /* momenta restored */
        const nb_named_tensor *st;
        int n = nb_module_state(m, &st), checked = 0;
        static const char *prefix[] = {"flat", "seq", "conv"};
        for (int i = 0; i < n; i++) {
            char key[64];
            snprintf(key, sizeof key, "%s.%s", prefix[which], st[i].name);
            if (strstr(key, "num_batches_tracked")) {
                ck_assert_int_eq(nb_i32(st[i].tensor)[0], *(const int32_t *)golden_get(g, key)->data);
                ck_assert_int_eq(nb_i32(st[i].tensor)[0], 5);
                checked++;
            } else if (strstr(key, "running_")) {
                const gold_entry *e = golden_get(g, key);
                assert_close(key, nb_f32(st[i].tensor), e->data, e->numel, 1e-5, 1e-6);
                checked++;
            }
        }
        ck_assert_int_eq(checked, which == 0 ? 6 : 3);
        nb_loader_free(ld);
        nb_module_free(m);
    }
    nb_tensor_free(images[0]);
    nb_tensor_free(images[1]);
    nb_tensor_free(labels);
    nb_arena_free(ar);
    golden_free(g);
}
END_TEST

/* A source that counts its calls and fails (or ends) at the third. */
typedef struct {
    int calls, fail;
} counted;

static int counted_next(void *user, nb_arena *ar, nb_tensor **x) {
    counted *c = user;
    if (++c->calls == 3) return c->fail ? NB_EIO : 0;
    *x = nb_full(ar, 2, (int64_t[]){4, 3}, (float)c->calls);
    nb_f32(*x)[0] = -1.0f;
    return 1;
}

START_TEST(test_update_bn_rules) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_arena *ar = nb_arena_new(0);
    /* no BatchNorm: returns before reading anything */
    nb_module *plain = nb_sequential(1, (nb_module *[]){nb_linear_new(3, 2, true, &rng)});
    counted c = {0, 0};
    ck_assert_int_eq(nb_update_bn(plain, counted_next, &c, ar), NB_OK);
    ck_assert_int_eq(c.calls, 0);
    nb_module_free(plain);
    /* track_running_stats=False: refused, nothing read */
    nb_batchnorm_opts off = nb_batchnorm_defaults();
    off.track_running_stats = false;
    nb_module *m = nb_sequential(2, (nb_module *[]){nb_batchnorm1d_new(3, NULL), nb_batchnorm1d_new(3, &off)});
    ck_assert_int_eq(nb_update_bn(m, counted_next, &c, ar), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "update_bn: a BatchNorm1d has no running statistics (track_running_stats=False)");
    ck_assert_int_eq(c.calls, 0);
    nb_module_free(m);
    /* an error from the source: returned, with the momentum and the training mode restored
     * and the statistics of the batches so far; training mode stays training */
    m = nb_sequential(1, (nb_module *[]){nb_batchnorm1d_new(3, NULL)});
    c = (counted){0, 1};
    ck_assert_int_eq(nb_update_bn(m, counted_next, &c, ar), NB_EIO);
    ck_assert(m->training);
    ck_assert_int_eq(nb_i32(nb_module_find(m, "0.num_batches_tracked"))[0], 2);
    /* the mean of the two batches' means: column 1 holds 1 then 2 */
    ck_assert_float_eq_tol(nb_f32(nb_module_find(m, "0.running_mean"))[1], 1.5f, 1e-6f);
    char repr[256];
    nb_module_repr(m, repr, sizeof repr);
    ck_assert_ptr_nonnull(strstr(repr, "momentum=0.1"));
    ck_assert_int_eq(nb_update_bn(NULL, counted_next, &c, ar), NB_EINVAL);
    ck_assert_int_eq(nb_update_bn(m, NULL, &c, ar), NB_EINVAL);
    ck_assert_int_eq(nb_update_bn(m, counted_next, &c, NULL), NB_EINVAL);
    nb_module_free(m);
    nb_arena_free(ar);
}
END_TEST

int main(void) {
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("nn");
    tcase_add_test(tc, test_sequential_names);
    tcase_add_test(tc, test_float_arguments_print_as_written);
    tcase_add_test(tc, test_sequential_takes_ownership_on_failure);
    tcase_add_test(tc, test_param_must_be_float_heap_leaf);
    tcase_add_test(tc, test_module_has_one_parent);
    tcase_add_test(tc, test_linear_bad_input);
    tcase_add_test(tc, test_mlp_parity);
    tcase_add_test(tc, test_update_bn);
    tcase_add_test(tc, test_update_bn_rules);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
