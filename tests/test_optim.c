/* test_optim.c - every optimizer against PyTorch's trajectories (tests/golden/optim.nbg.gz,
 * from tools/golden/gen_optim.py), validation rules and their messages, param groups,
 * state_dict round trips, load failures, gradient clipping and allocation-free steps.
 *
 * Each golden case runs 20 steps from fixed parameters; the gradient at every step is
 * g = (p*p - 0.5)*p + c, computed in float32 exactly as the generator computes it, and given
 * to the parameters through nb_backward_grad. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "../src/kernels/gemm_avx512.h"
#include "../src/kernels/denormal512.h"
#if defined(__x86_64__)
#include <xmmintrin.h> /* _mm_getcsr: the floating-point mode */
#endif

/* ---- allocation counting (nb_set_allocator in main, before anything else) ----------------- */
static long n_alloc;
static void *count_malloc(size_t n) {
    n_alloc++;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n) {
    n_alloc++;
    return realloc(p, n);
}

/* ---- parameters and their gradient function --------------------------------------------- */
#define MAXP 4
typedef struct pset {
    int n;
    const char *names[MAXP];
    nb_tensor *p[MAXP], *c[MAXP], *g[MAXP];
} pset;

static golden *G; /* loaded once per test process */


static golden *gold(void) {
    if (!G) G = golden_load("optim.nbg.gz");
    return G;
}

/* The parameters of a case from the golden file, with their gradient constants: W, b (with_k:
 * and K, for Adafactor); or W, M, both 2-D, for Muon (kind PARAMS_2D). */
enum { PARAMS_WB = 0, PARAMS_WBK = 1, PARAMS_2D = 2 };

static pset params_new(int kind) {
    pset s = {.n = kind == PARAMS_WB ? 2 : kind == PARAMS_WBK ? 3 : 2, .names = {"W", "b", "K"}};
    const char *set = kind == PARAMS_WB ? "init" : kind == PARAMS_WBK ? "initk" : "initm";
    if (kind == PARAMS_2D) s.names[1] = "M";
    for (int i = 0; i < s.n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.%s", set, s.names[i]);
        s.p[i] = golden_tensor(gold(), name);
        snprintf(name, sizeof name, "%s.c.%s", set, s.names[i]);
        s.c[i] = golden_tensor(gold(), name);
        s.g[i] = nb_zeros(NULL, s.p[i]->ndim, s.p[i]->shape);
        ck_assert_int_eq(nb_requires_grad(s.p[i], true), NB_OK);
    }
    return s;
}

static pset params_copy(const pset *src) {
    pset s = *src;
    for (int i = 0; i < s.n; i++) {
        s.p[i] = nb_clone(NULL, src->p[i]);
        s.c[i] = nb_clone(NULL, src->c[i]);
        s.g[i] = nb_zeros(NULL, s.p[i]->ndim, s.p[i]->shape);
        nb_requires_grad(s.p[i], true);
    }
    return s;
}

static void params_free(pset *s) {
    for (int i = 0; i < s->n; i++) {
        nb_tensor_free(s->p[i]);
        nb_tensor_free(s->c[i]);
        nb_tensor_free(s->g[i]);
    }
}

/* p.grad = (p*p - 0.5)*p + c for the first n parameters, through the autograd API (after
 * zero_grad, so the others have no gradient). */
static void set_grads_n(nb_optim *o, pset *s, int n) {
    nb_optim_zero_grad(o, true);
    for (int i = 0; i < n; i++) {
        const float *x = nb_f32(s->p[i]), *c = nb_f32(s->c[i]);
        float *g = nb_f32(s->g[i]);
        for (int64_t j = 0; j < s->p[i]->numel; j++) g[j] = (x[j] * x[j] - 0.5f) * x[j] + c[j];
        ck_assert_int_eq(nb_backward_grad(s->p[i], s->g[i]), NB_OK);
    }
}

static void set_grads(nb_optim *o, pset *s) { set_grads_n(o, s, s->n); }

/* ---- the cases: one builder per golden case ---------------------------------------------- */
typedef nb_optim *(*builder)(nb_tensor *const *p, int n);

#define MK(name, algo, ...)                                                 \
    static nb_optim *mk_##name(nb_tensor *const *p, int n) {               \
        nb_##algo##_opts o = nb_##algo##_defaults();                         \
        __VA_ARGS__;                                                         \
        return nb_##algo(p, n, &o);                                          \
    }

MK(sgd, sgd, (void)0)
MK(sgd_lr, sgd, o.lr = 0.05)
MK(sgd_momentum, sgd, o.momentum = 0.9)
MK(sgd_dampening, sgd, o.momentum = 0.9; o.dampening = 0.3)
MK(sgd_nesterov, sgd, o.momentum = 0.9; o.nesterov = true)
MK(sgd_weight_decay, sgd, o.weight_decay = 0.1)
MK(sgd_maximize, sgd, o.momentum = 0.5; o.maximize = true)
MK(adam, adam, (void)0)
MK(adam_lr, adam, o.lr = 0.01)
MK(adam_betas, adam, o.beta1 = 0.8; o.beta2 = 0.9)
MK(adam_eps, adam, o.eps = 1e-3)
MK(adam_weight_decay, adam, o.weight_decay = 0.1)
MK(adam_amsgrad, adam, o.amsgrad = true)
MK(adam_maximize, adam, o.maximize = true)
MK(adamw, adamw, (void)0)
MK(adamw_lr, adamw, o.lr = 0.01)
MK(adamw_betas, adamw, o.beta1 = 0.8; o.beta2 = 0.9)
MK(adamw_eps, adamw, o.eps = 1e-3)
MK(adamw_weight_decay, adamw, o.weight_decay = 0.5)
MK(adamw_amsgrad, adamw, o.amsgrad = true)
MK(adamw_maximize, adamw, o.maximize = true)
MK(rmsprop, rmsprop, (void)0)
MK(rmsprop_lr, rmsprop, o.lr = 0.001)
MK(rmsprop_alpha, rmsprop, o.alpha = 0.9)
MK(rmsprop_eps, rmsprop, o.eps = 1e-3)
MK(rmsprop_weight_decay, rmsprop, o.weight_decay = 0.1)
MK(rmsprop_momentum, rmsprop, o.momentum = 0.9)
MK(rmsprop_centered, rmsprop, o.centered = true)
MK(rmsprop_centered_momentum, rmsprop, o.centered = true; o.momentum = 0.5)
MK(rmsprop_maximize, rmsprop, o.maximize = true)
MK(adagrad, adagrad, (void)0)
MK(adagrad_lr, adagrad, o.lr = 0.1)
MK(adagrad_lr_decay, adagrad, o.lr_decay = 0.1)
MK(adagrad_weight_decay, adagrad, o.weight_decay = 0.1)
MK(adagrad_initial_accumulator_value, adagrad, o.initial_accumulator_value = 0.5)
MK(adagrad_eps, adagrad, o.eps = 1e-3)
MK(adagrad_maximize, adagrad, o.maximize = true)
MK(adadelta, adadelta, (void)0)
MK(adadelta_lr, adadelta, o.lr = 0.5)
MK(adadelta_rho, adadelta, o.rho = 0.5)
MK(adadelta_eps, adadelta, o.eps = 1e-3)
MK(adadelta_weight_decay, adadelta, o.weight_decay = 0.1)
MK(adadelta_maximize, adadelta, o.maximize = true)
MK(adamax, adamax, (void)0)
MK(adamax_lr, adamax, o.lr = 0.01)
MK(adamax_betas, adamax, o.beta1 = 0.8; o.beta2 = 0.9)
MK(adamax_eps, adamax, o.eps = 1e-2)
MK(adamax_weight_decay, adamax, o.weight_decay = 0.1)
MK(adamax_maximize, adamax, o.maximize = true)
MK(nadam, nadam, (void)0)
MK(nadam_lr, nadam, o.lr = 0.01)
MK(nadam_betas, nadam, o.beta1 = 0.8; o.beta2 = 0.9)
MK(nadam_eps, nadam, o.eps = 1e-3)
MK(nadam_weight_decay, nadam, o.weight_decay = 0.1)
MK(nadam_momentum_decay, nadam, o.momentum_decay = 0.05)
MK(nadam_decoupled_weight_decay, nadam, o.weight_decay = 0.1; o.decoupled_weight_decay = true)
MK(nadam_maximize, nadam, o.maximize = true)
MK(radam, radam, (void)0)
MK(radam_lr, radam, o.lr = 0.01)
MK(radam_betas, radam, o.beta1 = 0.8; o.beta2 = 0.9)
MK(radam_eps, radam, o.eps = 1e-3)
MK(radam_weight_decay, radam, o.weight_decay = 0.1)
MK(radam_decoupled_weight_decay, radam, o.weight_decay = 0.1; o.decoupled_weight_decay = true)
MK(radam_maximize, radam, o.maximize = true)
MK(asgd, asgd, (void)0)
MK(asgd_lr, asgd, o.lr = 0.05)
MK(asgd_lambd, asgd, o.lambd = 0.01)
MK(asgd_alpha, asgd, o.alpha = 0.5)
MK(asgd_t0, asgd, o.t0 = 5.0)
MK(asgd_weight_decay, asgd, o.weight_decay = 0.1)
MK(asgd_maximize, asgd, o.maximize = true)
MK(rprop, rprop, (void)0)
MK(rprop_lr, rprop, o.lr = 0.05)
MK(rprop_etas, rprop, o.eta_minus = 0.3; o.eta_plus = 1.5)
MK(rprop_step_sizes, rprop, o.step_size_min = 1e-3; o.step_size_max = 0.02)
MK(rprop_maximize, rprop, o.maximize = true)
MK(adafactor, adafactor, (void)0)
MK(adafactor_lr, adafactor, o.lr = 0.05)
MK(adafactor_beta2_decay, adafactor, o.beta2_decay = -0.5)
MK(adafactor_eps1, adafactor, o.eps1 = 1e-3)
MK(adafactor_eps2, adafactor, o.eps2 = 0.1)
MK(adafactor_d, adafactor, o.d = 1.5)
MK(adafactor_weight_decay, adafactor, o.weight_decay = 0.1)
MK(adafactor_maximize, adafactor, o.maximize = true)
MK(muon, muon, (void)0)
MK(muon_lr, muon, o.lr = 0.05)
MK(muon_nesterov, muon, o.lr = 0.02; o.nesterov = false)
MK(muon_momentum, muon, o.lr = 0.02; o.momentum = 0.8)
MK(muon_weight_decay, muon, o.lr = 0.02; o.weight_decay = 0.5)
MK(muon_match_rms, muon, o.lr = 0.01; o.adjust_lr_fn = "match_rms_adamw")
MK(muon_ns, muon, o.lr = 0.02; o.ns_steps = 3; o.ns_coefficients[0] = 2.0; o.ns_coefficients[1] = -1.5;
   o.ns_coefficients[2] = 0.5)
MK(muon_eps, muon, o.lr = 0.02; o.eps = 10.0)
MK(sgd_clip, sgd, o.lr = 0.05; o.momentum = 0.9)
MK(sgd_base, sgd, o.lr = 1e-2; o.momentum = 0.9)

typedef struct tcase {
    const char *name;
    builder make;
    double group_lr; /* > 0: W (and K) in group 0, b in group 1 with this lr */
    double clip;     /* > 0: clip_grad_norm_ (or _value_) before each step */
    double norm;     /* its norm type (0: clip_grad_value_) */
} tcase;

#define C(name) {#name, mk_##name, 0, 0, 0}
#define GR(algo, lr) {#algo "_groups", mk_##algo, lr, 0, 0}
static const tcase cases[] = {
    C(sgd), C(sgd_lr), C(sgd_momentum), C(sgd_dampening), C(sgd_nesterov), C(sgd_weight_decay),
    C(sgd_maximize), C(adam), C(adam_lr), C(adam_betas), C(adam_eps), C(adam_weight_decay),
    C(adam_amsgrad), C(adam_maximize), C(adamw), C(adamw_lr), C(adamw_betas), C(adamw_eps),
    C(adamw_weight_decay), C(adamw_amsgrad), C(adamw_maximize), C(rmsprop), C(rmsprop_lr),
    C(rmsprop_alpha), C(rmsprop_eps), C(rmsprop_weight_decay), C(rmsprop_momentum),
    C(rmsprop_centered), C(rmsprop_centered_momentum), C(rmsprop_maximize), C(adagrad),
    C(adagrad_lr), C(adagrad_lr_decay), C(adagrad_weight_decay),
    C(adagrad_initial_accumulator_value), C(adagrad_eps), C(adagrad_maximize), C(adadelta),
    C(adadelta_lr), C(adadelta_rho), C(adadelta_eps), C(adadelta_weight_decay),
    C(adadelta_maximize), C(adamax), C(adamax_lr), C(adamax_betas), C(adamax_eps),
    C(adamax_weight_decay), C(adamax_maximize), C(nadam), C(nadam_lr), C(nadam_betas),
    C(nadam_eps), C(nadam_weight_decay), C(nadam_momentum_decay),
    C(nadam_decoupled_weight_decay), C(nadam_maximize), C(radam), C(radam_lr), C(radam_betas),
    C(radam_eps), C(radam_weight_decay), C(radam_decoupled_weight_decay), C(radam_maximize),
    C(asgd), C(asgd_lr), C(asgd_lambd), C(asgd_alpha), C(asgd_t0), C(asgd_weight_decay),
    C(asgd_maximize), C(rprop), C(rprop_lr), C(rprop_etas), C(rprop_step_sizes),
    C(rprop_maximize), C(adafactor), C(adafactor_lr), C(adafactor_beta2_decay),
    C(adafactor_eps1), C(adafactor_eps2), C(adafactor_d), C(adafactor_weight_decay),
    C(adafactor_maximize),
    GR(sgd, 0.05), GR(adam, 0.01), GR(adamw, 0.01), GR(rmsprop, 0.001), GR(adagrad, 0.1),
    GR(adadelta, 0.5), GR(adamax, 0.01), GR(nadam, 0.01), GR(radam, 0.01), GR(asgd, 0.05),
    GR(rprop, 0.05), GR(adafactor, 0.05),
    {"sgd_base_head", mk_sgd_base, 1e-3, 0, 0},
    {"clip_norm2", mk_sgd_clip, 0, 0.5, 2.0},
    {"clip_norm1", mk_sgd_clip, 0, 0.5, 1.0},
    {"clip_norminf", mk_sgd_clip, 0, 0.3, INFINITY},
    {"clip_norm3", mk_sgd_clip, 0, 0.5, 3.0},
    {"clip_norm2_large", mk_sgd_clip, 0, 100.0, 2.0},
    {"clip_value", mk_sgd_clip, 0, 0.3, 0},
    /* Muon (PyTorch 2.9): its goldens come from a reference written from PyTorch's documented
     * algorithm and source (tools/golden/gen_optim.py), as PyTorch 1.13 has no Muon */
    C(muon), C(muon_lr), C(muon_nesterov), C(muon_momentum), C(muon_weight_decay), C(muon_match_rms),
    C(muon_ns), C(muon_eps),
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static int uses_k(const tcase *c) {
    return !strncmp(c->name, "adafactor", 9) ? PARAMS_WBK : !strncmp(c->name, "muon", 4) ? PARAMS_2D : PARAMS_WB;
}

/* The optimizer of a case over s: one group, or (W, K) + (b with its own lr). */
static nb_optim *build(const tcase *c, pset *s) {
    if (c->group_lr <= 0) return c->make(s->p, s->n);
    nb_tensor *body[MAXP];
    int nb = 0;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], "b")) body[nb++] = s->p[i];
    nb_optim *o = c->make(body, nb);
    ck_assert_msg(o, "%s: %s", c->name, nb_last_error());
    nb_value lr = nb_num("lr", c->group_lr);
    ck_assert_int_eq(nb_optim_add_param_group(o, &s->p[1], 1, &lr, 1), NB_OK);
    return o;
}

/* One training step of a case: gradients, clipping, update. Returns the clip total norm. */
static double step(const tcase *c, nb_optim *o, pset *s) {
    set_grads(o, s);
    double total = NAN;
    if (c->clip > 0) {
        if (c->norm == 0) ck_assert_int_eq(nb_clip_grad_value(s->p, s->n, c->clip), NB_OK);
        else ck_assert_int_eq(nb_clip_grad_norm(s->p, s->n, c->clip, c->norm, false, &total), NB_OK);
    }
    ck_assert_msg(nb_optim_step(o) == NB_OK, "%s: %s", c->name, nb_last_error());
    return total;
}

/* ---- golden trajectories ------------------------------------------------------------------ */
START_TEST(test_trajectories) {
    const tcase *c = &cases[_i];
    int steps = ((int32_t *)golden_get(gold(), "steps")->data)[0];
    pset s = params_new(uses_k(c));
    nb_optim *o = build(c, &s);
    ck_assert_msg(o, "%s: %s", c->name, nb_last_error());
    double worst = 0;
    char name[96];
    const float *norms = NULL;
    snprintf(name, sizeof name, "%s/total_norm", c->name);
    if (golden_has(gold(), name)) norms = golden_get(gold(), name)->data;
    for (int t = 0; t < steps; t++) {
        double total = step(c, o, &s);
        if (norms) {
            ck_assert_msg(fabs(total - norms[t]) <= 1e-6 * fabs(norms[t]),
                          "%s: total norm at step %d is %.9g, PyTorch %.9g", c->name, t + 1, total,
                          (double)norms[t]);
        }
        for (int i = 0; i < s.n; i++) {
            snprintf(name, sizeof name, "%s/%s", c->name, s.names[i]);
            const gold_entry *e = golden_get(gold(), name);
            const float *want = (const float *)e->data + (int64_t)t * s.p[i]->numel;
            double err = max_rel_err(nb_f32(s.p[i]), want, s.p[i]->numel, 1e-3, NULL);
            if (err > worst) worst = err;
            char what[128];
            snprintf(what, sizeof what, "%s step %d param %s", c->name, t + 1, s.names[i]);
            assert_close(what, nb_f32(s.p[i]), want, s.p[i]->numel, 1e-5, 1e-7);
        }
    }
    fprintf(stderr, "%-36s max rel err %.2e\n", c->name, worst);
    nb_optim_free(o);
    params_free(&s);
}
END_TEST

/* ---- the engine: every optimizer gives the same bits on 1 and 2 threads ------------------- */
/* A model's parameters (in its slab: a [300, 70] weight that is split across threads, its bias,
 * a second layer) plus a heap tensor in a second group; some steps leave a gradient out. */
static void run_threads(const tcase *c, int threads, float *out, int64_t nout) {
    ck_assert_int_eq(nb_set_num_threads(threads), NB_OK);
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_module *m = nb_sequential(2, (nb_module *[]){nb_linear_new(70, 300, true, &rng), nb_linear_new(300, 5, true, &rng)});
    nb_tensor *p[5], *g[5];
    int n = nb_module_parameters(m, p, 4);
    p[n] = nb_uniform(NULL, 3, (int64_t[]){2, 4, 3}, -1, 1, &rng);
    nb_requires_grad(p[n++], true);
    nb_optim *o = c->make(p, n - 1);
    ck_assert_msg(o, "%s: %s", c->name, nb_last_error());
    nb_value lr = nb_num("lr", 0.003);
    ck_assert_int_eq(nb_optim_add_param_group(o, &p[n - 1], 1, &lr, 1), NB_OK);
    for (int i = 0; i < n; i++) g[i] = nb_zeros(NULL, p[i]->ndim, p[i]->shape);
    for (int t = 0; t < 6; t++) {
        nb_optim_zero_grad(o, true);
        for (int i = 0; i < n; i++) {
            if ((t == 2 && i == 1) || (t == 4 && i == 0)) continue;
            const float *x = nb_f32(p[i]);
            float *gg = nb_f32(g[i]);
            for (int64_t j = 0; j < p[i]->numel; j++) gg[j] = (x[j] * x[j] - 0.5f) * x[j] + 0.01f * (float)((j + t) % 7);
            nb_backward_grad(p[i], g[i]);
        }
        ck_assert_msg(nb_optim_step(o) == NB_OK, "%s: %s", c->name, nb_last_error());
    }
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        ck_assert(at + p[i]->numel <= nout);
        memcpy(out + at, p[i]->data, sizeof(float) * (size_t)p[i]->numel);
        at += p[i]->numel;
        nb_tensor_free(g[i]);
    }
    nb_optim_free(o);
    nb_tensor_free(p[n - 1]);
    nb_module_free(m);
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
}

START_TEST(test_threads_bit_identical) {
    const tcase *c = &cases[_i];
    enum { N = 70 * 300 + 300 + 300 * 5 + 5 + 24 };
    float *one = malloc(sizeof(float) * N), *two = malloc(sizeof(float) * N);
    run_threads(c, 1, one, N);
    run_threads(c, 2, two, N);
    ck_assert_msg(!memcmp(one, two, sizeof(float) * N), "%s: 2 threads differ from 1", c->name);
    free(one);
    free(two);
}
END_TEST

/* ---- by name: nb_optim_new("Adam", ..., kwargs) ------------------------------------------- */
/* The case's optimizer built again by its class name from its own group values as keyword
 * arguments: the same hyperparameters, the same trajectory to the bit. */
START_TEST(test_by_name) {
    const tcase *c = &cases[_i];
    pset a = params_new(uses_k(c)), b = params_copy(&a);
    nb_optim *oa = c->make(a.p, a.n);
    int nd;
    const nb_value *defs = nb_optim_defaults_of(nb_optim_type(oa), &nd);
    ck_assert_ptr_nonnull(defs);
    nb_value kw[16];
    for (int i = 0; i < nd; i++) kw[i] = *nb_optim_get_value(oa, 0, defs[i].name);
    nb_optim *ob = nb_optim_new(nb_optim_type(oa), b.p, b.n, kw, nd);
    ck_assert_msg(ob, "%s: %s", c->name, nb_last_error());
    ck_assert_str_eq(nb_optim_type(ob), nb_optim_type(oa));
    for (int t = 0; t < 8; t++) {
        step(c, oa, &a);
        step(c, ob, &b);
    }
    for (int i = 0; i < a.n; i++)
        ck_assert_msg(!memcmp(a.p[i]->data, b.p[i]->data, sizeof(float) * (size_t)a.p[i]->numel),
                      "%s: by name differs from the typed constructor", c->name);
    nb_optim_free(oa);
    nb_optim_free(ob);
    params_free(&a);
    params_free(&b);
}
END_TEST

START_TEST(test_by_name_errors) {
    pset s = params_new(PARAMS_WB);
    const char *names[32];
    int n = nb_optim_names(names, 32);
    ck_assert_int_eq(n, 15);
    ck_assert_str_eq(names[0], "SGD");
    for (int i = 0; i < n; i++) { /* every name builds with PyTorch's defaults (lr where 1.13 required it) */
        if (!strcmp(names[i], "Muon")) continue; /* 2-D parameters only: its own test */
        nb_optim *o = nb_optim_new(names[i], s.p, 2, NULL, 0);
        ck_assert_msg(o, "%s: %s", names[i], nb_last_error());
        ck_assert_str_eq(nb_optim_type(o), names[i]);
        ck_assert_int_eq(nb_optim_requires_closure(o), !strcmp(names[i], "LBFGS"));
        nb_optim_free(o);
    }
    nb_optim *o = nb_optim_new("adamw", s.p, 2, NULL, 0); /* any case */
    ck_assert_str_eq(nb_optim_type(o), "AdamW");
    ck_assert_double_eq(nb_optim_get(o, 0, "weight_decay"), 1e-2);
    nb_optim_free(o);
    nb_value kw[] = {nb_num("lr", 0.1), nb_int("max_iter", 4), nb_str("line_search_fn", "strong_wolfe")};
    o = nb_optim_new("LBFGS", s.p, 2, kw, 3);
    ck_assert_double_eq(nb_optim_get(o, 0, "max_eval"), 5); /* max_iter * 5 // 4 */
    ck_assert_str_eq(nb_optim_get_value(o, 0, "line_search_fn")->str, "strong_wolfe");
    nb_optim_free(o);
    ck_assert_ptr_null(nb_optim_new("Adamm", s.p, 2, NULL, 0));
    ck_assert_str_eq(nb_last_error(), "torch.optim has no optimizer 'Adamm' (nabla has SGD, Adam, AdamW, RMSprop, "
                                      "Adagrad, Adadelta, Adamax, NAdam, RAdam, ASGD, Rprop, LBFGS, SparseAdam, "
                                      "Adafactor, Muon)");
    nb_value mom = nb_num("momentum", 0.9);
    ck_assert_ptr_null(nb_optim_new("Adam", s.p, 2, &mom, 1));
    ck_assert_str_eq(nb_last_error(), "Adam.__init__() got an unexpected keyword argument 'momentum'");
    nb_value two[] = {nb_num("lr", 0.1), nb_num("lr", 0.2)};
    ck_assert_ptr_null(nb_optim_new("SGD", s.p, 2, two, 2));
    ck_assert_str_eq(nb_last_error(), "SGD.__init__() got multiple values for argument 'lr'");
    nb_value betas = nb_num("betas", 0.9);
    ck_assert_ptr_null(nb_optim_new("Adam", s.p, 2, &betas, 1));
    ck_assert_str_eq(nb_last_error(), "Adam: argument 'betas' has the wrong kind of value");
    nb_value lr = nb_num("lr", -1);
    ck_assert_ptr_null(nb_optim_new("RMSprop", s.p, 2, &lr, 1));
    ck_assert_str_eq(nb_last_error(), "Invalid learning rate: -1.0");
    ck_assert_ptr_null(nb_optim_new("SGD", s.p, 2, NULL, 1));
    int nd;
    const nb_value *d = nb_optim_defaults_of("rmsprop", &nd);
    ck_assert_int_eq(nd, 7);
    ck_assert_str_eq(d[2].name, "alpha");
    ck_assert_double_eq(d[2].num, 0.99);
    ck_assert_ptr_null(nb_optim_defaults_of("nope", &nd));
    ck_assert_int_eq(nd, 0);
    params_free(&s);
}
END_TEST

/* ---- LBFGS on Rosenbrock ------------------------------------------------------------------- */
typedef struct rosen {
    nb_optim *o;
    nb_tensor *x, *g;
    int calls;
} rosen;

/* (1-x0)^2 + 100 (x1-x0^2)^2 and its gradient, float32 op by op as the generator. */
static double rosen_closure(void *user) {
    rosen *r = user;
    nb_optim_zero_grad(r->o, true);
    float x0 = nb_f32(r->x)[0], x1 = nb_f32(r->x)[1];
    float a = 1.0f - x0, b = x1 - x0 * x0;
    float f = a * a + 100.0f * (b * b);
    nb_f32(r->g)[0] = -2.0f * a - (400.0f * x0) * b;
    nb_f32(r->g)[1] = 200.0f * b;
    r->calls++;
    if (nb_backward_grad(r->x, r->g)) return NAN;
    return f;
}

static const char *lbfgs_cases[] = {"lbfgs", "lbfgs_wolfe", "lbfgs_wolfe_history",
                                    "lbfgs_max_eval", "lbfgs_tolerance"};

static nb_lbfgs_opts lbfgs_case_opts(int k) {
    nb_lbfgs_opts o = nb_lbfgs_defaults();
    switch (k) {
    case 0: o.lr = 0.2; break;
    case 1: o.line_search_fn = "strong_wolfe"; break;
    case 2: o.line_search_fn = "strong_wolfe"; o.history_size = 3; o.max_iter = 7; break;
    case 3: o.lr = 0.2; o.max_iter = 30; o.max_eval = 9; o.history_size = 4; break;
    case 4: o.line_search_fn = "strong_wolfe"; o.tolerance_grad = 1e-2; o.tolerance_change = 1e-4; break;
    }
    return o;
}

static rosen rosen_new(int k) {
    rosen r = {0};
    r.x = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){2}, (float[]){-1.5f, 2.0f});
    r.g = nb_zeros(NULL, 1, (int64_t[]){2});
    nb_requires_grad(r.x, true);
    nb_lbfgs_opts o = lbfgs_case_opts(k);
    r.o = nb_lbfgs(&r.x, 1, &o);
    ck_assert_msg(r.o, "%s", nb_last_error());
    return r;
}

static void rosen_free(rosen *r) {
    nb_optim_free(r->o);
    nb_tensor_free(r->x);
    nb_tensor_free(r->g);
}

static double state_num(nb_optim *o, int index, const char *name) {
    nb_optim_dict *sd = nb_optim_state_dict(o);
    double v = NAN;
    for (int i = 0; i < sd->nstates; i++)
        if (sd->states[i].index == index)
            for (int j = 0; j < sd->states[i].nvalues; j++)
                if (!strcmp(sd->states[i].values[j].name, name)) v = sd->states[i].values[j].num;
    nb_optim_dict_free(sd);
    return v;
}

START_TEST(test_lbfgs_rosenbrock) {
    const char *name = lbfgs_cases[_i];
    int steps = ((int32_t *)golden_get(gold(), "lbfgs_steps")->data)[0];
    char key[96];
    snprintf(key, sizeof key, "%s/x", name);
    const float *xs = golden_get(gold(), key)->data;
    snprintf(key, sizeof key, "%s/loss", name);
    const double *losses = golden_get(gold(), key)->data;
    snprintf(key, sizeof key, "%s/func_evals", name);
    const int32_t *evals = golden_get(gold(), key)->data;
    snprintf(key, sizeof key, "%s/n_iter", name);
    const int32_t *iters = golden_get(gold(), key)->data;
    rosen r = rosen_new(_i);
    double worst = 0;
    for (int t = 0; t < steps; t++) {
        double loss;
        ck_assert_msg(nb_optim_step_closure(r.o, rosen_closure, &r, &loss) == NB_OK, "%s", nb_last_error());
        ck_assert_msg(loss == losses[t] || fabs(loss - losses[t]) <= 1e-5 * fabs(losses[t]),
                      "%s step %d: loss %.9g, PyTorch %.9g", name, t + 1, loss, losses[t]);
        char what[96];
        snprintf(what, sizeof what, "%s step %d x", name, t + 1);
        double err = max_rel_err(nb_f32(r.x), xs + 2 * t, 2, 1e-3, NULL);
        if (err > worst) worst = err;
        assert_close(what, nb_f32(r.x), xs + 2 * t, 2, 1e-5, 1e-7);
        ck_assert_int_eq((int)state_num(r.o, 0, "func_evals"), evals[t]);
        ck_assert_int_eq((int)state_num(r.o, 0, "n_iter"), iters[t]);
    }
    fprintf(stderr, "%-36s max rel err %.2e (%d closure calls)\n", name, worst, r.calls);
    rosen_free(&r);
}
END_TEST

/* ---- state_dict round trips ----------------------------------------------------------------- */
/* 10 steps, state_dict, a new optimizer on a copy of the parameters, load, 10 more steps: the
 * parameters are bit-identical to 20 uninterrupted steps. */
START_TEST(test_state_dict_round_trip) {
    const tcase *c = &cases[_i];
    pset a = params_new(uses_k(c));
    nb_optim *oa = build(c, &a);
    for (int t = 0; t < 10; t++) step(c, oa, &a);
    pset b = params_copy(&a);
    nb_optim_dict *sd = nb_optim_state_dict(oa);
    ck_assert_ptr_nonnull(sd);
    nb_optim *ob = build(c, &b);
    ck_assert_msg(nb_optim_load_state_dict(ob, sd) == NB_OK, "%s: %s", c->name, nb_last_error());
    nb_optim_dict_free(sd);
    for (int t = 0; t < 10; t++) {
        step(c, oa, &a);
        step(c, ob, &b);
    }
    for (int i = 0; i < a.n; i++)
        ck_assert_msg(!memcmp(a.p[i]->data, b.p[i]->data, sizeof(float) * (size_t)a.p[i]->numel),
                      "%s: parameter %s differs after the round trip", c->name, a.names[i]);
    nb_optim_free(oa);
    nb_optim_free(ob);
    params_free(&a);
    params_free(&b);
}
END_TEST

START_TEST(test_lbfgs_round_trip) {
    rosen a = rosen_new(_i), b = rosen_new(_i);
    for (int t = 0; t < 4; t++) ck_assert_int_eq(nb_optim_step_closure(a.o, rosen_closure, &a, NULL), NB_OK);
    memcpy(b.x->data, a.x->data, 2 * sizeof(float));
    nb_optim_dict *sd = nb_optim_state_dict(a.o);
    /* PyTorch's layout: the history oldest first as [k, n] tensors, no ring bookkeeping */
    for (int j = 0; j < sd->states[0].nvalues; j++) {
        const nb_value *v = &sd->states[0].values[j];
        ck_assert_msg(strcmp(v->name, "hist_len") && strcmp(v->name, "hist_start"), "%s saved", v->name);
        if (!strcmp(v->name, "old_dirs") && v->kind == NB_VALUE_TENSOR) {
            ck_assert_int_eq(v->tensor->ndim, 2);
            ck_assert_int_eq(v->tensor->shape[1], 2);
            ck_assert_int_le(v->tensor->shape[0], (int64_t)nb_optim_get(a.o, 0, "history_size"));
        }
    }
    ck_assert_int_eq(nb_optim_load_state_dict(b.o, sd), NB_OK);
    nb_optim_dict_free(sd);
    for (int t = 0; t < 4; t++) {
        double la, lb;
        ck_assert_int_eq(nb_optim_step_closure(a.o, rosen_closure, &a, &la), NB_OK);
        ck_assert_int_eq(nb_optim_step_closure(b.o, rosen_closure, &b, &lb), NB_OK);
        ck_assert(la == lb);
    }
    ck_assert(!memcmp(a.x->data, b.x->data, 2 * sizeof(float)));
    rosen_free(&a);
    rosen_free(&b);
}
END_TEST

/* Deep equality of two state dicts (tensors bit for bit). */
static bool value_eq(const nb_value *a, const nb_value *b) {
    if (strcmp(a->name, b->name) || a->kind != b->kind) return false;
    switch (a->kind) {
    case NB_VALUE_NUMBER: case NB_VALUE_INT: case NB_VALUE_BOOL:
        return a->num == b->num || (isnan(a->num) && isnan(b->num));
    case NB_VALUE_LIST:
        return a->len == b->len && !memcmp(nb_value_elems(a), nb_value_elems(b), sizeof(double) * (size_t)a->len);
    case NB_VALUE_STRING: return !strcmp(a->str, b->str);
    case NB_VALUE_TENSOR:
        return nb_same_shape(a->tensor, b->tensor) &&
               !memcmp(a->tensor->data, b->tensor->data, sizeof(float) * (size_t)a->tensor->numel);
    default: return true;
    }
}

static bool dict_eq(const nb_optim_dict *a, const nb_optim_dict *b) {
    if (strcmp(a->type, b->type) || a->nstates != b->nstates || a->ngroups != b->ngroups) return false;
    for (int i = 0; i < a->nstates; i++) {
        if (a->states[i].index != b->states[i].index || a->states[i].nvalues != b->states[i].nvalues)
            return false;
        for (int j = 0; j < a->states[i].nvalues; j++)
            if (!value_eq(&a->states[i].values[j], &b->states[i].values[j])) return false;
    }
    for (int g = 0; g < a->ngroups; g++) {
        if (a->groups[g].nparams != b->groups[g].nparams || a->groups[g].nvalues != b->groups[g].nvalues)
            return false;
        if (memcmp(a->groups[g].params, b->groups[g].params, sizeof(int) * (size_t)a->groups[g].nparams))
            return false;
        for (int j = 0; j < a->groups[g].nvalues; j++)
            if (!value_eq(&a->groups[g].values[j], &b->groups[g].values[j])) return false;
    }
    return true;
}

static nb_value *dict_find(nb_optim_dict *sd, int state, const char *name) {
    nb_value *vals = state < 0 ? sd->groups[0].values : sd->states[state].values;
    int n = state < 0 ? sd->groups[0].nvalues : sd->states[state].nvalues;
    for (int j = 0; j < n; j++)
        if (!strcmp(vals[j].name, name)) return &vals[j];
    return NULL;
}

/* Load sd into o, expect msg, and check that o is unchanged. */
static void expect_load_fails(nb_optim *o, const nb_optim_dict *sd, const char *msg) {
    nb_optim_dict *before = nb_optim_state_dict(o);
    ck_assert_int_ne(nb_optim_load_state_dict(o, sd), NB_OK);
    ck_assert_msg(strstr(nb_last_error(), msg), "got '%s', expected '%s'", nb_last_error(), msg);
    nb_optim_dict *after = nb_optim_state_dict(o);
    ck_assert_msg(dict_eq(before, after), "a failed load changed the optimizer (%s)", msg);
    nb_optim_dict_free(before);
    nb_optim_dict_free(after);
}

START_TEST(test_state_dict_layout_and_load_failures) {
    pset s = params_new(PARAMS_WB);
    nb_adam_opts ao = nb_adam_defaults();
    nb_optim *o = nb_adam(&s.p[0], 1, &ao);
    nb_value lr = nb_num("lr", 0.01);
    ck_assert_int_eq(nb_optim_add_param_group(o, &s.p[1], 1, &lr, 1), NB_OK);
    set_grads(o, &s);
    ck_assert_int_eq(nb_optim_step(o), NB_OK);
    nb_optim_dict *sd = nb_optim_state_dict(o);
    /* PyTorch's layout: state by index across groups, groups with index lists and every option */
    ck_assert_str_eq(sd->type, "Adam");
    ck_assert_int_eq(sd->nstates, 2);
    ck_assert_int_eq(sd->states[1].index, 1);
    ck_assert_int_eq(sd->ngroups, 2);
    ck_assert_int_eq(sd->groups[1].params[0], 1);
    ck_assert_double_eq(dict_find(sd, 0, "step")->num, 1.0);
    ck_assert_int_eq(dict_find(sd, 0, "exp_avg")->tensor->shape[0], 4);
    ck_assert_ptr_null(dict_find(sd, 0, "max_exp_avg_sq")); /* only with amsgrad */
    const char *keys[] = {"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"};
    for (int k = 0; k < 6; k++) ck_assert_str_eq(sd->groups[0].values[k].name, keys[k]);
    ck_assert_double_eq(sd->groups[1].values[0].num, 0.01);

    /* wrong optimizer type */
    nb_sgd_opts so = nb_sgd_defaults();
    nb_optim *sgd = nb_sgd(s.p, 2, &so);
    expect_load_fails(sgd, sd, "loaded state dict is for optimizer Adam, not SGD");
    nb_optim_free(sgd);
    /* group count and size (PyTorch's messages) */
    nb_optim *one = nb_adam(s.p, 2, &ao);
    expect_load_fails(one, sd, "loaded state dict has a different number of parameter groups");
    nb_optim_free(one);
    nb_optim *sizes = nb_adam(&s.p[0], 1, &ao);
    nb_tensor *extra = nb_zeros(NULL, 1, (int64_t[]){5});
    nb_tensor *pair[2] = {s.p[1], extra};
    ck_assert_int_eq(nb_optim_add_param_group(sizes, pair, 2, NULL, 0), NB_OK);
    expect_load_fails(sizes, sd, "loaded state dict contains a parameter group that doesn't match "
                                 "the size of optimizer's group");
    nb_optim_free(sizes);
    /* a parameter of another shape */
    nb_tensor *wt = nb_zeros(NULL, 2, (int64_t[]){3, 4});
    nb_optim *shape = nb_adam(&wt, 1, &ao);
    ck_assert_int_eq(nb_optim_add_param_group(shape, &s.p[1], 1, NULL, 0), NB_OK);
    expect_load_fails(shape, sd, "parameter 0 has shape [4, 3], the optimizer's parameter has shape [3, 4]");
    nb_optim_free(shape);
    nb_tensor_free(wt);
    nb_tensor_free(extra);

    /* the target: an Adam with state after 2 steps; each corrupted dict leaves it as it is */
    nb_optim *t = nb_adam(&s.p[0], 1, &ao);
    ck_assert_int_eq(nb_optim_add_param_group(t, &s.p[1], 1, NULL, 0), NB_OK);
    for (int k = 0; k < 2; k++) {
        set_grads(t, &s);
        nb_optim_step(t);
    }
    nb_value *v = dict_find(sd, 0, "step");
    v->kind = NB_VALUE_STRING;
    expect_load_fails(t, sd, "state 'step' of parameter 0 must be a number");
    v->kind = NB_VALUE_NUMBER;
    v = dict_find(sd, 0, "exp_avg");
    ck_assert_ptr_nonnull(v);
    snprintf(v->name, sizeof v->name, "momentum");
    expect_load_fails(t, sd, "Adam has no state 'momentum' (parameter 0)");
    snprintf(v->name, sizeof v->name, "exp_avg");
    nb_tensor *good = v->tensor;
    v->tensor = nb_zeros(NULL, 1, (int64_t[]){12});
    expect_load_fails(t, sd, "state 'exp_avg' of parameter 0 has shape [12], parameter has shape [4, 3]");
    nb_tensor_free(v->tensor);
    v->tensor = good;
    v = dict_find(sd, -1, "lr");
    v->num = -1;
    expect_load_fails(t, sd, "Invalid learning rate: -1.0");
    v->num = 1e-3;
    v = dict_find(sd, -1, "betas");
    snprintf(v->name, sizeof v->name, "beta");
    expect_load_fails(t, sd, "param group 0 has keys that Adam does not know: 'beta'");
    snprintf(v->name, sizeof v->name, "betas");
    sd->states[1].index = 7;
    expect_load_fails(t, sd, "state for parameter 7, which is in no parameter group");
    sd->states[1].index = 1;
    /* and the repaired dict loads */
    ck_assert_int_eq(nb_optim_load_state_dict(t, sd), NB_OK);
    nb_optim_dict *back = nb_optim_state_dict(t);
    ck_assert(dict_eq(sd, back));
    nb_optim_dict_free(back);
    nb_optim_free(t);
    nb_optim_dict_free(sd);
    nb_optim_free(o);
    params_free(&s);
}
END_TEST

/* PyTorch's state dicts of other versions: an older one lacks keys (filled as __setstate__
 * fills them), a newer one has implementation switches (kept) and numbers as float32 tensors
 * (taken as numbers); keys nabla does not know are refused by name. (Files that PyTorch 1.13
 * wrote are loaded in test_io.c.) */
/* Append a value to a group of a state dict (its table is malloc'd by nabla's default allocator). */
static void group_add(nb_optim_group_dict *gd, nb_value v) {
    gd->values = realloc(gd->values, sizeof(nb_value) * (size_t)(gd->nvalues + 1));
    gd->values[gd->nvalues++] = v;
}

START_TEST(test_state_dict_versions) {
    pset s = params_new(PARAMS_WB);
    nb_nadam_opts no = nb_nadam_defaults();
    nb_optim *o = nb_nadam(s.p, 2, &no);
    set_grads(o, &s);
    ck_assert_int_eq(nb_optim_step(o), NB_OK);
    nb_optim_dict *sd = nb_optim_state_dict(o);
    /* 1.13's NAdam: no maximize, no decoupled_weight_decay; step and mu_product as tensors */
    nb_optim_group_dict *gd = &sd->groups[0];
    for (int j = 0; j < gd->nvalues;) {
        if (!strcmp(gd->values[j].name, "maximize") || !strcmp(gd->values[j].name, "decoupled_weight_decay"))
            gd->values[j] = gd->values[--gd->nvalues];
        else j++;
    }
    nb_value *step = dict_find(sd, 0, "step");
    double t = step->num;
    step->kind = NB_VALUE_TENSOR;
    step->tensor = nb_full(NULL, 0, NULL, (float)t);
    group_add(gd, nb_none("foreach"));
    group_add(gd, nb_bool("differentiable", false));
    pset s2 = params_copy(&s);
    nb_optim *o2 = nb_optim_new("NAdam", s2.p, 2, NULL, 0);
    ck_assert_msg(nb_optim_load_state_dict(o2, sd) == NB_OK, "%s", nb_last_error());
    ck_assert_int_eq(nb_optim_get_value(o2, 0, "maximize")->kind, NB_VALUE_BOOL);
    ck_assert_int_eq(nb_optim_get_value(o2, 0, "foreach")->kind, NB_VALUE_NONE);
    nb_optim_dict *back = nb_optim_state_dict(o2);
    ck_assert_int_eq(dict_find(back, 0, "step")->kind, NB_VALUE_NUMBER);
    ck_assert_double_eq(dict_find(back, 0, "step")->num, t);
    nb_optim_dict_free(back);
    for (int k = 0; k < 3; k++) { /* and it continues as the original */
        set_grads(o, &s);
        set_grads(o2, &s2);
        nb_optim_step(o);
        nb_optim_step(o2);
    }
    ck_assert(!memcmp(s.p[0]->data, s2.p[0]->data, sizeof(float) * (size_t)s.p[0]->numel));
    /* a key nabla does not know, a switch of the wrong kind, an option PyTorch never omitted */
    group_add(gd, nb_num("foo", 1));
    group_add(gd, nb_num("bar", 2));
    expect_load_fails(o2, sd, "loaded state dict: param group 0 has keys that NAdam does not know: 'foo', 'bar'");
    gd->nvalues -= 2;
    gd->values[gd->nvalues - 1] = nb_num("differentiable", 3);
    expect_load_fails(o2, sd, "param group 0: 'differentiable' must be None, True or False");
    gd->values[gd->nvalues - 1] = nb_bool("differentiable", false);
    for (int j = 0; j < gd->nvalues; j++)
        if (!strcmp(gd->values[j].name, "eps")) gd->values[j] = gd->values[--gd->nvalues];
    expect_load_fails(o2, sd, "loaded state dict: param group 0 lacks 'eps'");
    nb_optim_dict_free(sd);
    nb_optim_free(o);
    nb_optim_free(o2);
    /* Adam and AdamW of PyTorch >= 2.7 carry decoupled_weight_decay: the one value each does */
    o = nb_optim_new("Adam", s.p, 2, NULL, 0);
    sd = nb_optim_state_dict(o);
    group_add(&sd->groups[0], nb_bool("decoupled_weight_decay", false));
    ck_assert_int_eq(nb_optim_load_state_dict(o, sd), NB_OK);
    sd->groups[0].values[sd->groups[0].nvalues - 1] = nb_bool("decoupled_weight_decay", true);
    expect_load_fails(o, sd, "param group 0 has decoupled_weight_decay=True, which Adam does not do: load it into an AdamW");
    nb_optim_dict_free(sd);
    nb_optim_free(o);
    params_free(&s);
    params_free(&s2);
}
END_TEST

/* ---- hooks --------------------------------------------------------------------------------- */
typedef struct hook_log {
    char calls[64];
    int n;
    pset *s;
    float w0; /* W[0] when the hook ran */
    int fail; /* a hook of this letter fails */
} hook_log;

static int log_hook(nb_optim *o, nb_optim_dict *sd, void *user, char letter) {
    (void)o;
    hook_log *h = user;
    h->calls[h->n++] = letter;
    h->calls[h->n] = '\0';
    h->w0 = nb_f32(h->s->p[0])[0];
    if (sd && letter == 'S') dict_find(sd, -1, "lr")->num = 0.5; /* a post hook edits the dict */
    if (sd && letter == 'L') dict_find(sd, -1, "lr")->num = 0.25; /* a load pre hook edits its copy */
    return h->fail == letter ? NB_EINVAL : 0;
}
#define HOOK(L) static int hook_##L(nb_optim *o, nb_optim_dict *sd, void *u) { return log_hook(o, sd, u, #L[0]); }
HOOK(A) HOOK(B) HOOK(C) HOOK(P) HOOK(Q) HOOK(S) HOOK(L) HOOK(M)

/* a pre hook that doubles every gradient */
static int double_grads(nb_optim *o, nb_optim_dict *sd, void *u) {
    (void)sd;
    (void)u;
    for (int g = 0; g < nb_optim_num_groups(o); g++)
        for (int i = 0; i < nb_optim_group_size(o, g); i++) {
            nb_tensor *p = nb_optim_group_param(o, g, i);
            for (int64_t j = 0; p->grad && j < p->numel; j++) nb_f32(p->grad)[j] *= 2;
        }
    return 0;
}

static nb_hook_handle self_removing;
static int remove_self(nb_optim *o, nb_optim_dict *sd, void *u) {
    (void)o;
    (void)sd;
    ++*(int *)u;
    nb_hook_remove(&self_removing);
    return 0;
}

START_TEST(test_hooks) {
    pset s = params_new(PARAMS_WB), t = params_copy(&s);
    nb_adam_opts ao = nb_adam_defaults();
    nb_optim *o = nb_adam(s.p, 2, &ao), *ref = nb_adam(t.p, 2, &ao);
    hook_log h = {.s = &s};
    /* step hooks in order, pre before the update, post after it */
    nb_hook_handle a = nb_optim_register_step_pre_hook(o, hook_A, &h);
    nb_hook_handle b = nb_optim_register_step_pre_hook(o, hook_B, &h);
    nb_hook_handle c = nb_optim_register_step_post_hook(o, hook_C, &h);
    ck_assert(a.id && b.id && c.id && a.id != b.id);
    float w = nb_f32(s.p[0])[0];
    set_grads(o, &s);
    ck_assert_int_eq(nb_optim_step(o), NB_OK);
    ck_assert_str_eq(h.calls, "ABC");
    ck_assert_float_ne(h.w0, w); /* C saw the updated parameter */
    /* removal: B no longer runs; removing twice is a no-op */
    nb_hook_remove(&b);
    ck_assert(b.id == 0);
    nb_hook_remove(&b);
    h.n = 0;
    set_grads(o, &s);
    ck_assert_int_eq(nb_optim_step(o), NB_OK);
    ck_assert_str_eq(h.calls, "AC");
    /* a failing pre hook stops the step: nothing changes, its error is returned */
    h.n = 0;
    h.fail = 'A';
    nb_optim_dict *before = nb_optim_state_dict(o);
    w = nb_f32(s.p[0])[0];
    set_grads(o, &s);
    ck_assert_int_eq(nb_optim_step(o), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "Adam: a step pre hook failed (invalid argument)");
    ck_assert_str_eq(h.calls, "A");
    ck_assert_float_eq(nb_f32(s.p[0])[0], w);
    nb_optim_dict *after = nb_optim_state_dict(o);
    ck_assert(dict_eq(before, after));
    nb_optim_dict_free(before);
    nb_optim_dict_free(after);
    h.fail = 0;
    nb_hook_remove(&a);
    nb_hook_remove(&c);
    /* a pre hook that changes the gradients: the step sees the changed ones */
    nb_optim_free(o);
    params_free(&s);
    s = params_copy(&t);
    h.s = &s;
    o = nb_adam(s.p, 2, &ao);
    nb_optim_register_step_pre_hook(o, double_grads, NULL);
    for (int k = 0; k < 3; k++) {
        set_grads(o, &s);
        ck_assert_int_eq(nb_optim_step(o), NB_OK);
        set_grads(ref, &t);
        for (int i = 0; i < t.n; i++)
            for (int64_t j = 0; j < t.p[i]->numel; j++) nb_f32(t.p[i]->grad)[j] *= 2;
        ck_assert_int_eq(nb_optim_step(ref), NB_OK);
    }
    for (int i = 0; i < s.n; i++)
        ck_assert(!memcmp(s.p[i]->data, t.p[i]->data, sizeof(float) * (size_t)s.p[i]->numel));
    /* state_dict hooks: pre, then post, which may edit the dict; prepend puts one first */
    h.n = 0;
    nb_optim_register_state_dict_pre_hook(o, hook_P, &h, false);
    nb_optim_register_state_dict_pre_hook(o, hook_Q, &h, true);
    nb_hook_handle sp = nb_optim_register_state_dict_post_hook(o, hook_S, &h, false);
    nb_optim_dict *sd = nb_optim_state_dict(o);
    ck_assert_str_eq(h.calls, "QPS");
    ck_assert_double_eq(dict_find(sd, -1, "lr")->num, 0.5);
    ck_assert_double_eq(nb_optim_get(o, 0, "lr"), 1e-3); /* the optimizer is untouched */
    h.fail = 'S'; /* a failing post hook: no dict */
    ck_assert_ptr_null(nb_optim_state_dict(o));
    h.fail = 0;
    nb_hook_remove(&sp);
    /* load_state_dict hooks: pre on a copy (what loads), post after */
    h.n = 0;
    nb_hook_handle lp = nb_optim_register_load_state_dict_pre_hook(ref, hook_L, &h, false);
    nb_optim_register_load_state_dict_post_hook(ref, hook_M, &h, false);
    ck_assert_int_eq(nb_optim_load_state_dict(ref, sd), NB_OK);
    ck_assert_str_eq(h.calls, "LM");
    ck_assert_double_eq(nb_optim_get(ref, 0, "lr"), 0.25);
    ck_assert_double_eq(dict_find(sd, -1, "lr")->num, 0.5); /* the caller's dict is untouched */
    h.fail = 'L';
    ck_assert_int_ne(nb_optim_load_state_dict(ref, sd), NB_OK);
    ck_assert_double_eq(nb_optim_get(ref, 0, "lr"), 0.25);
    h.fail = 0;
    nb_hook_remove(&lp);
    nb_optim_dict_free(sd);
    /* a hook may remove itself while hooks run */
    int ran = 0;
    self_removing = nb_optim_register_step_post_hook(o, remove_self, &ran);
    for (int k = 0; k < 2; k++) {
        set_grads(o, &s);
        ck_assert_int_eq(nb_optim_step(o), NB_OK);
    }
    ck_assert_int_eq(ran, 1);
    /* step(closure): the pre hooks run before the closure */
    nb_lbfgs_opts lo = nb_lbfgs_defaults();
    rosen r = rosen_new(0);
    h.n = 0;
    h.s = &s;
    nb_optim_register_step_pre_hook(r.o, hook_A, &h);
    nb_optim_register_step_post_hook(r.o, hook_C, &h);
    r.calls = 0;
    ck_assert_int_eq(nb_optim_step_closure(r.o, rosen_closure, &r, NULL), NB_OK);
    ck_assert_str_eq(h.calls, "AC");
    ck_assert_int_gt(r.calls, 0);
    (void)lo;
    ck_assert_int_eq(nb_optim_register_step_pre_hook(o, NULL, NULL).id, 0);
    rosen_free(&r);
    nb_optim_free(o);
    nb_optim_free(ref);
    params_free(&s);
    params_free(&t);
}
END_TEST

/* ---- row-sparse gradients (a sparse Embedding's) against PyTorch 1.13 (gen_sparse.py) ------- */
static golden *GS;

static golden *sparse_gold(void) {
    if (!GS) GS = golden_load("sparse.nbg.gz");
    return GS;
}

typedef struct sparse_rig {
    nb_module *m;
    nb_tensor *w;
    nb_arena *ar;
} sparse_rig;

static sparse_rig sparse_rig_new(int64_t padding_idx) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    sparse_rig r = {nb_embedding_sparse_new(20, 4, padding_idx, &rng), NULL, nb_arena_new(0)};
    ck_assert_ptr_nonnull(r.m);
    nb_tensor *p[1];
    ck_assert_int_eq(nb_module_parameters(r.m, p, 1), 1);
    r.w = p[0];
    memcpy(r.w->data, golden_get(sparse_gold(), "init")->data, sizeof(float) * 80);
    return r;
}

static void sparse_rig_free(sparse_rig *r) {
    nb_module_free(r->m);
    nb_arena_free(r->ar);
}

/* emb(idx_t) with the gradient target_t flowing back */
static void sparse_backward(sparse_rig *r, int t) {
    char key[32];
    snprintf(key, sizeof key, "idx.%d", t);
    const gold_entry *ie = golden_get(sparse_gold(), key);
    snprintf(key, sizeof key, "target.%d", t);
    const gold_entry *te = golden_get(sparse_gold(), key);
    nb_arena_reset(r->ar);
    nb_tensor *idx = nb_from_array(r->ar, NB_INT32, 1, ie->shape, ie->data);
    nb_tensor *y = nb_forward(r->m, r->ar, idx);
    nb_tensor *gy = nb_from_array(r->ar, NB_FLOAT32, te->ndim, te->shape, te->data);
    ck_assert_msg(y && gy && nb_backward_grad(y, gy) == NB_OK, "%s", nb_last_error());
}

static void assert_rows(const char *what, const nb_tensor *g, const char *ikey, const char *vkey) {
    const gold_entry *ie = golden_get(sparse_gold(), ikey), *ve = golden_get(sparse_gold(), vkey);
    ck_assert_msg(nb_is_sparse(g), "%s: the gradient is not sparse", what);
    ck_assert_int_eq(nb_sparse_nnz(g), ie->numel);
    ck_assert_msg(!memcmp(nb_sparse_indices(g), ie->data, sizeof(int32_t) * (size_t)ie->numel), "%s: indices", what);
    ck_assert_msg(!memcmp(nb_sparse_values(g), ve->data, sizeof(float) * (size_t)ve->numel), "%s: values", what);
}

START_TEST(test_sparse_gradients) {
    /* one backward: the rows in the batch's order, repeats kept (uncoalesced, as PyTorch) */
    sparse_rig r = sparse_rig_new(NB_NO_PADDING);
    sparse_backward(&r, 0);
    assert_rows("one backward", r.w->grad, "grad1.indices", "grad1.values");
    ck_assert_int_eq(r.w->grad->ndim, 2);
    ck_assert_ptr_null(r.w->grad->data);
    /* zero_grad(set_to_none=false) empties it (zero_() of a sparse tensor), set_to_none drops it */
    nb_module_zero_grad(r.m, false);
    ck_assert_int_eq(nb_sparse_nnz(r.w->grad), 0);
    /* a dense contribution after a sparse one makes it dense, the sum of both */
    sparse_backward(&r, 0);
    nb_tensor *dense = nb_zeros(NULL, 2, (int64_t[]){20, 4});
    ck_assert_int_eq(nb_sparse_to_dense(r.w->grad, dense), NB_OK);
    nb_arena_reset(r.ar);
    ck_assert_int_eq(nb_backward(nb_sum(r.ar, r.w)), NB_OK);
    ck_assert(!nb_is_sparse(r.w->grad) && r.w->grad->data);
    for (int i = 0; i < 80; i++) ck_assert_float_eq(nb_f32(r.w->grad)[i], nb_f32(dense)[i] + 1.0f);
    nb_module_zero_grad(r.m, true);
    ck_assert_ptr_null(r.w->grad);
    sparse_rig_free(&r);
    /* two backwards accumulate (concatenated), the padding row left out */
    int32_t pad = ((const int32_t *)golden_get(sparse_gold(), "grad2.padding_idx")->data)[0];
    r = sparse_rig_new(pad);
    sparse_backward(&r, 1);
    sparse_backward(&r, 2);
    /* the rows of both, padding left out; PyTorch merges the two lists when the incoming
     * gradient is contiguous and concatenates them when not (nabla: always concatenated), so
     * what is compared is the count and the sum */
    ck_assert_int_eq(nb_sparse_nnz(r.w->grad), golden_get(sparse_gold(), "grad2.indices")->numel);
    for (int k = 0; k < nb_sparse_nnz(r.w->grad); k++) ck_assert_int_ne(nb_sparse_indices(r.w->grad)[k], pad);
    ck_assert_int_eq(nb_sparse_to_dense(r.w->grad, dense), NB_OK);
    ck_assert(!memcmp(dense->data, golden_get(sparse_gold(), "grad2.dense")->data, sizeof(float) * 80));
    ck_assert_int_ne(nb_sparse_to_dense(dense, dense), NB_OK);
    nb_tensor_free(dense);
    sparse_rig_free(&r);
}
END_TEST

#define KNUM(n, v) {.name = n, .kind = NB_VALUE_NUMBER, .num = v}
#define KBOOL(n) {.name = n, .kind = NB_VALUE_BOOL, .num = 1}
#define KPAIR(n, a, b) {.name = n, .kind = NB_VALUE_LIST, .len = 2, .inl = {a, b}}
static const struct {
    const char *name, *optim;
    nb_value kw[3];
    int nkw;
} sparse_cases[] = {
    {"sparse_adam", "SparseAdam", {KNUM("lr", 1e-3)}, 0}, /* PyTorch's defaults */
    {"sparse_adam_opts", "SparseAdam", {KNUM("lr", 0.01), KPAIR("betas", 0.8, 0.95),
                                        KNUM("eps", 1e-6)}, 3},
    {"sparse_adam_maximize", "SparseAdam", {KNUM("lr", 0.01), KBOOL("maximize")}, 2},
    {"sgd", "SGD", {KNUM("lr", 0.1)}, 1},
    {"sgd_momentum", "SGD", {KNUM("lr", 0.1), KNUM("momentum", 0.9),
                             KNUM("dampening", 0.1)}, 3},
    {"sgd_nesterov", "SGD", {KNUM("lr", 0.1), KNUM("momentum", 0.9),
                             KBOOL("nesterov")}, 3},
    {"sgd_maximize", "SGD", {KNUM("lr", 0.1), KNUM("momentum", 0.5),
                             KBOOL("maximize")}, 3},
    {"adagrad", "Adagrad", {KNUM("lr", 0.1)}, 1},
    {"adagrad_opts", "Adagrad", {KNUM("lr", 0.1), KNUM("lr_decay", 0.05),
                                 KNUM("initial_accumulator_value", 0.1)}, 3},
    {"adagrad_maximize", "Adagrad", {KNUM("lr", 0.1), KBOOL("maximize")}, 2},
};

START_TEST(test_sparse_optimizers) {
    int steps = ((const int32_t *)golden_get(sparse_gold(), "steps")->data)[0];
    double worst = 0;
    for (size_t c = 0; c < sizeof sparse_cases / sizeof sparse_cases[0]; c++) {
        sparse_rig r = sparse_rig_new(NB_NO_PADDING);
        nb_value kw[4];
        int nkw = sparse_cases[c].nkw;
        memcpy(kw, sparse_cases[c].kw, sizeof(nb_value) * (size_t)nkw);
        if (!strcmp(sparse_cases[c].name, "adagrad_opts")) kw[nkw++] = nb_num("eps", 1e-6);
        nb_optim *o = nb_optim_new(sparse_cases[c].optim, &r.w, 1, kw, nkw);
        ck_assert_msg(o, "%s: %s", sparse_cases[c].name, nb_last_error());
        for (int t = 0; t < steps; t++) {
            nb_optim_zero_grad(o, true);
            sparse_backward(&r, t);
            ck_assert_msg(nb_optim_step(o) == NB_OK, "%s: %s", sparse_cases[c].name, nb_last_error());
            char key[64];
            snprintf(key, sizeof key, "%s.%d", sparse_cases[c].name, t);
            const gold_entry *e = golden_get(sparse_gold(), key);
            double err = max_rel_err(nb_f32(r.w), e->data, 80, 1e-3, NULL);
            if (err > worst) worst = err;
            assert_close(key, nb_f32(r.w), e->data, 80, 1e-5, 1e-7);
        }
        nb_optim_free(o);
        sparse_rig_free(&r);
    }
    fprintf(stderr, "sparse gradients (SparseAdam, SGD, Adagrad): max rel err %.2e\n", worst);
}
END_TEST

/* SparseAdam leaves rows the gradients never had untouched, their moments too; it refuses a
 * dense gradient, and the other optimizers (and clipping) do what PyTorch 1.13 does with a
 * sparse one: support or its refusal. */
START_TEST(test_sparse_rules) {
    sparse_rig r = sparse_rig_new(NB_NO_PADDING);
    nb_optim *o = nb_optim_new("SparseAdam", &r.w, 1, NULL, 0);
    bool used[20] = {false};
    for (int t = 0; t < 3; t++) {
        char key[32];
        snprintf(key, sizeof key, "idx.%d", t);
        const gold_entry *ie = golden_get(sparse_gold(), key);
        for (int k = 0; k < ie->numel; k++) used[((const int32_t *)ie->data)[k]] = true;
        nb_optim_zero_grad(o, true);
        sparse_backward(&r, t);
        ck_assert_int_eq(nb_optim_step(o), NB_OK);
    }
    nb_optim_dict *sd = nb_optim_state_dict(o);
    const float *init = golden_get(sparse_gold(), "init")->data;
    int untouched = 0;
    for (int row = 0; row < 20; row++) {
        if (used[row]) continue;
        untouched++;
        for (int j = 0; j < 4; j++) {
            ck_assert_float_eq(nb_f32(r.w)[row * 4 + j], init[row * 4 + j]);
            ck_assert_float_eq(nb_f32(dict_find(sd, 0, "exp_avg")->tensor)[row * 4 + j], 0);
            ck_assert_float_eq(nb_f32(dict_find(sd, 0, "exp_avg_sq")->tensor)[row * 4 + j], 0);
        }
    }
    ck_assert_int_gt(untouched, 5);
    ck_assert_int_eq(dict_find(sd, 0, "step")->kind, NB_VALUE_INT); /* a Python int, as 1.13's */
    nb_optim_dict_free(sd);
    /* a dense gradient is refused before anything changes */
    nb_optim_zero_grad(o, true);
    nb_arena_reset(r.ar);
    ck_assert_int_eq(nb_backward(nb_sum(r.ar, r.w)), NB_OK);
    ck_assert_int_eq(nb_optim_step(o), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "SparseAdam does not support dense gradients, please consider Adam instead");
    nb_optim_free(o);
    nb_value zero_lr = nb_num("lr", 0);
    ck_assert_ptr_null(nb_optim_new("SparseAdam", &r.w, 1, &zero_lr, 1));
    ck_assert_str_eq(nb_last_error(), "Invalid learning rate: 0.0");
    /* the others, with a sparse gradient */
    static const struct {
        const char *optim, *msg;
        nb_value kw;
    } others[] = {
        {"Adam", "Adam does not support sparse gradients, please consider SparseAdam instead", {.name = ""}},
        {"AdamW", "AdamW does not support sparse gradients", {.name = ""}},
        {"RMSprop", "RMSprop does not support sparse gradients", {.name = ""}},
        {"Adadelta", "Adadelta does not support sparse gradients", {.name = ""}},
        {"Adamax", "Adamax does not support sparse gradients", {.name = ""}},
        {"NAdam", "NAdam does not support sparse gradients", {.name = ""}},
        {"RAdam", "RAdam does not support sparse gradients", {.name = ""}},
        {"ASGD", "ASGD does not support sparse gradients", {.name = ""}},
        {"Rprop", "Rprop does not support sparse gradients", {.name = ""}},
        {"Adafactor", "Adafactor does not support sparse gradients", {.name = ""}},
        {"Muon", "Muon does not support sparse gradients", {.name = ""}},
        {"SGD", "add(sparse, dense) is not supported. Use add(dense, sparse) instead.", KNUM("weight_decay", 0.1)},
        {"Adagrad", "weight_decay option is not compatible with sparse gradients", KNUM("weight_decay", 0.1)},
    };
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++) {
        nb_optim *x = nb_optim_new(others[k].optim, &r.w, 1, &others[k].kw, others[k].kw.name[0] ? 1 : 0);
        ck_assert_msg(x, "%s: %s", others[k].optim, nb_last_error());
        nb_optim_zero_grad(x, true);
        sparse_backward(&r, 0);
        float w0 = nb_f32(r.w)[0];
        ck_assert_int_eq(nb_optim_step(x), NB_EINVAL);
        ck_assert_str_eq(nb_last_error(), others[k].msg);
        ck_assert_float_eq(nb_f32(r.w)[0], w0);
        nb_optim_free(x);
    }
    sparse_rig_free(&r);
}
END_TEST

/* LBFGS takes the sparse gradient as to_dense(): the same run as with the dense one. */
typedef struct sparse_closure {
    sparse_rig *r;
    nb_optim *o;
    bool dense;
} sparse_closure;

static double sparse_loss(void *user) {
    sparse_closure *c = user;
    nb_optim_zero_grad(c->o, true);
    sparse_backward(c->r, 0);
    if (c->dense) { /* the same gradient made dense first */
        nb_tensor *d = nb_zeros(NULL, 2, (int64_t[]){20, 4});
        nb_sparse_to_dense(c->r->w->grad, d);
        c->r->w->grad = NULL;
        nb_backward_grad(c->r->w, d);
        nb_tensor_free(d);
    }
    double loss = 0;
    for (int i = 0; i < 80; i++) loss += (double)nb_f32(c->r->w)[i] * nb_f32(c->r->w)[i];
    return loss;
}

START_TEST(test_sparse_lbfgs_and_clip) {
    sparse_rig a = sparse_rig_new(NB_NO_PADDING), b = sparse_rig_new(NB_NO_PADDING);
    nb_value kw[] = {nb_num("lr", 0.1), nb_int("max_iter", 3)};
    nb_optim *oa = nb_optim_new("LBFGS", &a.w, 1, kw, 2), *ob = nb_optim_new("LBFGS", &b.w, 1, kw, 2);
    sparse_closure ca = {&a, oa, false}, cb = {&b, ob, true};
    for (int t = 0; t < 2; t++) {
        ck_assert_int_eq(nb_optim_step_closure(oa, sparse_loss, &ca, NULL), NB_OK);
        ck_assert_int_eq(nb_optim_step_closure(ob, sparse_loss, &cb, NULL), NB_OK);
    }
    ck_assert(!memcmp(a.w->data, b.w->data, sizeof(float) * 80));
    ck_assert_float_ne(nb_f32(a.w)[64], golden_get(sparse_gold(), "init")->data ? ((const float *)golden_get(sparse_gold(), "init")->data)[64] : 0);
    nb_optim_free(oa);
    nb_optim_free(ob);
    sparse_rig_free(&b);
    /* clip_grad_norm_: the norm of the coalesced values; the values scaled */
    const double types[] = {2, 1, 3};
    for (int k = 0; k < 3; k++) {
        nb_module_zero_grad(a.m, true);
        sparse_backward(&a, 0);
        nb_tensor *dense = nb_zeros(NULL, 1, (int64_t[]){5}), *dg = nb_zeros(NULL, 1, (int64_t[]){5});
        nb_requires_grad(dense, true);
        for (int i = 0; i < 5; i++) nb_f32(dg)[i] = (float)(-1.0 + 0.5 * i);
        nb_backward_grad(dense, dg);
        nb_tensor *ps[2] = {a.w, dense};
        double total;
        ck_assert_int_eq(nb_clip_grad_norm(ps, 2, 0.5, types[k], false, &total), NB_OK);
        char key[32];
        snprintf(key, sizeof key, "clip%d.total", (int)types[k]);
        double want = ((const double *)golden_get(sparse_gold(), key)->data)[0];
        ck_assert_msg(fabs(total - want) <= 1e-6 * want, "norm %g: %.9g, PyTorch %.9g", types[k], total, want);
        snprintf(key, sizeof key, "clip%d.values", (int)types[k]);
        const gold_entry *ve = golden_get(sparse_gold(), key);
        assert_close(key, nb_sparse_values(a.w->grad), ve->data, ve->numel, 1e-6, 1e-8);
        snprintf(key, sizeof key, "clip%d.dense", (int)types[k]);
        assert_close(key, nb_f32(dense->grad), golden_get(sparse_gold(), key)->data, 5, 1e-6, 1e-8);
        if (k == 0) { /* PyTorch 1.13 has no max or clamp of a sparse tensor */
            float v0 = nb_sparse_values(a.w->grad)[0];
            ck_assert_int_eq(nb_clip_grad_norm(ps, 2, 0.5, INFINITY, false, &total), NB_EINVAL);
            ck_assert_str_eq(nb_last_error(), "Could not run 'aten::max' with arguments from the 'SparseCPU' backend.");
            ck_assert_int_eq(nb_clip_grad_value(ps, 2, 0.1), NB_EINVAL);
            ck_assert_str_eq(nb_last_error(), "Could not run 'aten::clamp_' with arguments from the 'SparseCPU' backend.");
            ck_assert_float_eq(nb_sparse_values(a.w->grad)[0], v0);
            ck_assert_float_ne(nb_f32(dense->grad)[0], -0.1f); /* nothing clipped */
        }
        nb_tensor_free(dense);
        nb_tensor_free(dg);
    }
    sparse_rig_free(&a);
}
END_TEST

START_TEST(test_lbfgs_load_failures) {
    rosen a = rosen_new(1), b = rosen_new(1);
    for (int t = 0; t < 2; t++) nb_optim_step_closure(a.o, rosen_closure, &a, NULL);
    nb_optim_step_closure(b.o, rosen_closure, &b, NULL);
    nb_optim_dict *sd = nb_optim_state_dict(a.o);
    nb_value *v = dict_find(sd, 0, "old_dirs");
    ck_assert_ptr_nonnull(v);
    nb_tensor *good = v->tensor;
    v->tensor = nb_zeros(NULL, 2, (int64_t[]){good->shape[0], 3});
    expect_load_fails(b.o, sd, "LBFGS history 'old_dirs' has the wrong shape");
    nb_tensor_free(v->tensor);
    v->tensor = good;
    v = dict_find(sd, 0, "d");
    good = v->tensor;
    v->tensor = nb_zeros(NULL, 1, (int64_t[]){3});
    expect_load_fails(b.o, sd, "LBFGS state 'd' must be a float32 tensor of shape [2]");
    nb_tensor_free(v->tensor);
    v->tensor = good;
    v = dict_find(sd, 0, "ro");
    good = v->tensor;
    v->kind = NB_VALUE_NONE;
    expect_load_fails(b.o, sd, "LBFGS history is incomplete");
    v->kind = NB_VALUE_TENSOR;
    ck_assert_int_eq(nb_optim_load_state_dict(b.o, sd), NB_OK);
    nb_optim_dict_free(sd);
    rosen_free(&a);
    rosen_free(&b);
}
END_TEST

/* ---- validation: PyTorch's rules, order and messages; nothing changes on failure ---------- */
static void expect_null(nb_optim *o, const char *msg) {
    ck_assert_ptr_null(o);
    ck_assert_msg(!strcmp(nb_last_error(), msg), "got '%s', expected '%s'", nb_last_error(), msg);
    ck_assert_int_eq(nb_last_status(), NB_EINVAL);
}

START_TEST(test_constructor_validation) {
    pset s = params_new(PARAMS_WB);
    nb_tensor **p = s.p;
    float w0 = nb_f32(p[0])[0];
    { nb_sgd_opts o = nb_sgd_defaults(); o.lr = -0.1; expect_null(nb_sgd(p, 2, &o), "Invalid learning rate: -0.1"); }
    { nb_sgd_opts o = nb_sgd_defaults(); o.momentum = -0.5; expect_null(nb_sgd(p, 2, &o), "Invalid momentum value: -0.5"); }
    { nb_sgd_opts o = nb_sgd_defaults(); o.weight_decay = -1e-4; expect_null(nb_sgd(p, 2, &o), "Invalid weight_decay value: -0.0001"); }
    { nb_sgd_opts o = nb_sgd_defaults(); o.nesterov = true; expect_null(nb_sgd(p, 2, &o), "Nesterov momentum requires a momentum and zero dampening"); }
    { nb_sgd_opts o = nb_sgd_defaults(); o.nesterov = true; o.momentum = 0.9; o.dampening = 0.1;
      expect_null(nb_sgd(p, 2, &o), "Nesterov momentum requires a momentum and zero dampening"); }
    { nb_sgd_opts o = nb_sgd_defaults(); o.lr = -1; o.momentum = -1; expect_null(nb_sgd(p, 2, &o), "Invalid learning rate: -1.0"); }
    /* the Adam family: lr, eps, betas[0], betas[1], weight_decay, in that order */
    { nb_adam_opts o = nb_adam_defaults(); o.lr = -1e-3; expect_null(nb_adam(p, 2, &o), "Invalid learning rate: -0.001"); }
    { nb_adam_opts o = nb_adam_defaults(); o.eps = -1e-8; expect_null(nb_adam(p, 2, &o), "Invalid epsilon value: -1e-08"); }
    { nb_adam_opts o = nb_adam_defaults(); o.beta1 = 1.0; expect_null(nb_adam(p, 2, &o), "Invalid beta parameter at index 0: 1.0"); }
    { nb_adam_opts o = nb_adam_defaults(); o.beta2 = -0.1; expect_null(nb_adam(p, 2, &o), "Invalid beta parameter at index 1: -0.1"); }
    { nb_adam_opts o = nb_adam_defaults(); o.weight_decay = -0.1; expect_null(nb_adam(p, 2, &o), "Invalid weight_decay value: -0.1"); }
    { nb_adam_opts o = nb_adam_defaults(); o.eps = -1; o.beta1 = 2; expect_null(nb_adam(p, 2, &o), "Invalid epsilon value: -1.0"); }
    { nb_adam_opts o = nb_adam_defaults(); o.lr = NAN; expect_null(nb_adam(p, 2, &o), "Invalid learning rate: nan"); }
    { nb_adamw_opts o = nb_adamw_defaults(); o.beta1 = 1.5; expect_null(nb_adamw(p, 2, &o), "Invalid beta parameter at index 0: 1.5"); }
    { nb_adamw_opts o = nb_adamw_defaults(); o.weight_decay = -0.01; expect_null(nb_adamw(p, 2, &o), "Invalid weight_decay value: -0.01"); }
    { nb_adamax_opts o = nb_adamax_defaults(); o.eps = -1; expect_null(nb_adamax(p, 2, &o), "Invalid epsilon value: -1.0"); }
    { nb_adamax_opts o = nb_adamax_defaults(); o.beta2 = 1; expect_null(nb_adamax(p, 2, &o), "Invalid beta parameter at index 1: 1.0"); }
    { nb_nadam_opts o = nb_nadam_defaults(); o.momentum_decay = -0.1; expect_null(nb_nadam(p, 2, &o), "Invalid momentum_decay value: -0.1"); }
    { nb_nadam_opts o = nb_nadam_defaults(); o.weight_decay = -1; o.momentum_decay = -1; expect_null(nb_nadam(p, 2, &o), "Invalid weight_decay value: -1.0"); }
    { nb_radam_opts o = nb_radam_defaults(); o.lr = -2; expect_null(nb_radam(p, 2, &o), "Invalid learning rate: -2.0"); }
    { nb_radam_opts o = nb_radam_defaults(); o.beta1 = -0.5; expect_null(nb_radam(p, 2, &o), "Invalid beta parameter at index 0: -0.5"); }
    /* RMSprop: lr, eps, momentum, weight_decay, alpha */
    { nb_rmsprop_opts o = nb_rmsprop_defaults(); o.eps = -1e-3; expect_null(nb_rmsprop(p, 2, &o), "Invalid epsilon value: -0.001"); }
    { nb_rmsprop_opts o = nb_rmsprop_defaults(); o.momentum = -0.9; expect_null(nb_rmsprop(p, 2, &o), "Invalid momentum value: -0.9"); }
    { nb_rmsprop_opts o = nb_rmsprop_defaults(); o.weight_decay = -0.1; expect_null(nb_rmsprop(p, 2, &o), "Invalid weight_decay value: -0.1"); }
    { nb_rmsprop_opts o = nb_rmsprop_defaults(); o.alpha = -0.99; expect_null(nb_rmsprop(p, 2, &o), "Invalid alpha value: -0.99"); }
    { nb_rmsprop_opts o = nb_rmsprop_defaults(); o.alpha = -1; o.momentum = -1; expect_null(nb_rmsprop(p, 2, &o), "Invalid momentum value: -1.0"); }
    /* Adagrad: lr, lr_decay, weight_decay, initial_accumulator_value, eps */
    { nb_adagrad_opts o = nb_adagrad_defaults(); o.lr_decay = -0.1; expect_null(nb_adagrad(p, 2, &o), "Invalid lr_decay value: -0.1"); }
    { nb_adagrad_opts o = nb_adagrad_defaults(); o.weight_decay = -0.1; expect_null(nb_adagrad(p, 2, &o), "Invalid weight_decay value: -0.1"); }
    { nb_adagrad_opts o = nb_adagrad_defaults(); o.initial_accumulator_value = -0.1;
      expect_null(nb_adagrad(p, 2, &o), "Invalid initial_accumulator_value value: -0.1"); }
    { nb_adagrad_opts o = nb_adagrad_defaults(); o.eps = -1e-10; expect_null(nb_adagrad(p, 2, &o), "Invalid epsilon value: -1e-10"); }
    /* Adadelta: lr, rho in [0, 1], eps, weight_decay */
    { nb_adadelta_opts o = nb_adadelta_defaults(); o.lr = -1; expect_null(nb_adadelta(p, 2, &o), "Invalid learning rate: -1.0"); }
    { nb_adadelta_opts o = nb_adadelta_defaults(); o.rho = 1.5; expect_null(nb_adadelta(p, 2, &o), "Invalid rho value: 1.5"); }
    { nb_adadelta_opts o = nb_adadelta_defaults(); o.eps = -1e-6; expect_null(nb_adadelta(p, 2, &o), "Invalid epsilon value: -1e-06"); }
    { nb_adadelta_opts o = nb_adadelta_defaults(); o.weight_decay = -1; expect_null(nb_adadelta(p, 2, &o), "Invalid weight_decay value: -1.0"); }
    /* ASGD: lr, weight_decay */
    { nb_asgd_opts o = nb_asgd_defaults(); o.lr = -0.01; expect_null(nb_asgd(p, 2, &o), "Invalid learning rate: -0.01"); }
    { nb_asgd_opts o = nb_asgd_defaults(); o.weight_decay = -0.01; expect_null(nb_asgd(p, 2, &o), "Invalid weight_decay value: -0.01"); }
    /* Rprop: lr, 0 < eta_minus < 1 < eta_plus */
    { nb_rprop_opts o = nb_rprop_defaults(); o.lr = -0.01; expect_null(nb_rprop(p, 2, &o), "Invalid learning rate: -0.01"); }
    { nb_rprop_opts o = nb_rprop_defaults(); o.eta_minus = 1.5; expect_null(nb_rprop(p, 2, &o), "Invalid eta values: 1.5, 1.2"); }
    { nb_rprop_opts o = nb_rprop_defaults(); o.eta_plus = 1.0; expect_null(nb_rprop(p, 2, &o), "Invalid eta values: 0.5, 1.0"); }
    /* LBFGS (PyTorch 2.x's lr check; the others are nabla's, where PyTorch would crash later) */
    { nb_lbfgs_opts o = nb_lbfgs_defaults(); o.lr = -1; expect_null(nb_lbfgs(p, 2, &o), "Invalid learning rate: -1.0"); }
    { nb_lbfgs_opts o = nb_lbfgs_defaults(); o.line_search_fn = "armijo"; expect_null(nb_lbfgs(p, 2, &o), "only 'strong_wolfe' is supported"); }
    { nb_lbfgs_opts o = nb_lbfgs_defaults(); o.history_size = 0; expect_null(nb_lbfgs(p, 2, &o), "Invalid history_size value: 0"); }
    { nb_lbfgs_opts o = nb_lbfgs_defaults(); o.max_iter = -1; expect_null(nb_lbfgs(p, 2, &o), "Invalid max_iter value: -1"); }
    /* Adafactor (PyTorch 2.5's messages) */
    { nb_adafactor_opts o = nb_adafactor_defaults(); o.lr = -0.01; expect_null(nb_adafactor(p, 2, &o), "Learning rate should be >= 0 but is: -0.01"); }
    { nb_adafactor_opts o = nb_adafactor_defaults(); o.beta2_decay = 0.5; expect_null(nb_adafactor(p, 2, &o), "beta2_decay should be <= 0 but is: 0.5"); }
    { nb_adafactor_opts o = nb_adafactor_defaults(); o.eps1 = -1; expect_null(nb_adafactor(p, 2, &o), "epsilon1 should be >= 0 but is: -1.0"); }
    { nb_adafactor_opts o = nb_adafactor_defaults(); o.eps2 = -1e-3; expect_null(nb_adafactor(p, 2, &o), "epsilon2 should be >= 0 but is: -0.001"); }
    { nb_adafactor_opts o = nb_adafactor_defaults(); o.d = 0.5; expect_null(nb_adafactor(p, 2, &o), "Clipping threshold d should be >= 1 but is: 0.5"); }
    { nb_adafactor_opts o = nb_adafactor_defaults(); o.weight_decay = -0.1; expect_null(nb_adafactor(p, 2, &o), "weight_decay should be >= 0 but is: -0.1"); }
    /* nothing happened to the parameters */
    ck_assert(nb_f32(p[0])[0] == w0);
    ck_assert_ptr_null(p[0]->grad);
    params_free(&s);
}
END_TEST

/* Setting an option at run time is validated like construction; a failure changes nothing. */
static void expect_set_fails(nb_optim *o, int g, const char *name, int elem, double v, const char *msg) {
    const nb_value *cur = nb_optim_get_value(o, g, name);
    nb_value before = *cur;
    int rc = elem < 0 ? nb_optim_set(o, g, name, v) : nb_optim_set_elem(o, g, name, elem, v);
    ck_assert_int_eq(rc, NB_EINVAL);
    ck_assert_msg(!strcmp(nb_last_error(), msg), "got '%s', expected '%s'", nb_last_error(), msg);
    cur = nb_optim_get_value(o, g, name);
    ck_assert(cur->num == before.num && cur->kind == before.kind);
    if (cur->kind == NB_VALUE_LIST)
        ck_assert(!memcmp(nb_value_elems(cur), nb_value_elems(&before), sizeof(double) * (size_t)cur->len));
}

/* Every validation rule again, through nb_optim_set on a valid optimizer (what schedulers and
 * users do at run time): the same message, and the group keeps its value. */
static nb_optim *mk_lbfgs(nb_tensor *const *p, int n) {
    nb_lbfgs_opts o = nb_lbfgs_defaults();
    return nb_lbfgs(p, n, &o);
}

START_TEST(test_set_validation) {
    static const struct {
        builder make;
        const char *name;
        int elem;
        double bad;
        const char *msg;
    } rules[] = {
        {mk_sgd, "lr", -1, -0.1, "Invalid learning rate: -0.1"},
        {mk_sgd, "momentum", -1, -0.5, "Invalid momentum value: -0.5"},
        {mk_sgd, "weight_decay", -1, -1e-4, "Invalid weight_decay value: -0.0001"},
        {mk_sgd, "nesterov", -1, 1, "Nesterov momentum requires a momentum and zero dampening"},
        {mk_sgd_nesterov, "dampening", -1, 0.1, "Nesterov momentum requires a momentum and zero dampening"},
        {mk_sgd_nesterov, "momentum", -1, 0, "Nesterov momentum requires a momentum and zero dampening"},
        {mk_adam, "lr", -1, -1e-3, "Invalid learning rate: -0.001"},
        {mk_adam, "eps", -1, -1e-8, "Invalid epsilon value: -1e-08"},
        {mk_adam, "betas", 0, 1.0, "Invalid beta parameter at index 0: 1.0"},
        {mk_adam, "betas", 1, -0.1, "Invalid beta parameter at index 1: -0.1"},
        {mk_adam, "weight_decay", -1, -0.1, "Invalid weight_decay value: -0.1"},
        {mk_adamw, "lr", -1, -1, "Invalid learning rate: -1.0"},
        {mk_adamw, "eps", -1, -1, "Invalid epsilon value: -1.0"},
        {mk_adamw, "betas", 0, 1.5, "Invalid beta parameter at index 0: 1.5"},
        {mk_adamw, "betas", 1, 1.0, "Invalid beta parameter at index 1: 1.0"},
        {mk_adamw, "weight_decay", -1, -0.01, "Invalid weight_decay value: -0.01"},
        {mk_adamax, "lr", -1, -1, "Invalid learning rate: -1.0"},
        {mk_adamax, "eps", -1, -1, "Invalid epsilon value: -1.0"},
        {mk_adamax, "betas", 0, -1, "Invalid beta parameter at index 0: -1.0"},
        {mk_adamax, "betas", 1, 2, "Invalid beta parameter at index 1: 2.0"},
        {mk_adamax, "weight_decay", -1, -1, "Invalid weight_decay value: -1.0"},
        {mk_nadam, "lr", -1, -1, "Invalid learning rate: -1.0"},
        {mk_nadam, "eps", -1, -1, "Invalid epsilon value: -1.0"},
        {mk_nadam, "betas", 0, 1, "Invalid beta parameter at index 0: 1.0"},
        {mk_nadam, "betas", 1, 1, "Invalid beta parameter at index 1: 1.0"},
        {mk_nadam, "weight_decay", -1, -1, "Invalid weight_decay value: -1.0"},
        {mk_nadam, "momentum_decay", -1, -0.1, "Invalid momentum_decay value: -0.1"},
        {mk_radam, "lr", -1, -1, "Invalid learning rate: -1.0"},
        {mk_radam, "eps", -1, -1, "Invalid epsilon value: -1.0"},
        {mk_radam, "betas", 0, 1, "Invalid beta parameter at index 0: 1.0"},
        {mk_radam, "betas", 1, 1, "Invalid beta parameter at index 1: 1.0"},
        {mk_radam, "weight_decay", -1, -1, "Invalid weight_decay value: -1.0"},
        {mk_rmsprop, "lr", -1, -1, "Invalid learning rate: -1.0"},
        {mk_rmsprop, "eps", -1, -1, "Invalid epsilon value: -1.0"},
        {mk_rmsprop, "momentum", -1, -1, "Invalid momentum value: -1.0"},
        {mk_rmsprop, "weight_decay", -1, -1, "Invalid weight_decay value: -1.0"},
        {mk_rmsprop, "alpha", -1, -1, "Invalid alpha value: -1.0"},
        {mk_adagrad, "lr", -1, -1, "Invalid learning rate: -1.0"},
        {mk_adagrad, "lr_decay", -1, -1, "Invalid lr_decay value: -1.0"},
        {mk_adagrad, "weight_decay", -1, -1, "Invalid weight_decay value: -1.0"},
        {mk_adagrad, "initial_accumulator_value", -1, -1, "Invalid initial_accumulator_value value: -1.0"},
        {mk_adagrad, "eps", -1, -1, "Invalid epsilon value: -1.0"},
        {mk_adadelta, "lr", -1, -1, "Invalid learning rate: -1.0"},
        {mk_adadelta, "rho", -1, 1.5, "Invalid rho value: 1.5"},
        {mk_adadelta, "rho", -1, -0.5, "Invalid rho value: -0.5"},
        {mk_adadelta, "eps", -1, -1, "Invalid epsilon value: -1.0"},
        {mk_adadelta, "weight_decay", -1, -1, "Invalid weight_decay value: -1.0"},
        {mk_asgd, "lr", -1, -1, "Invalid learning rate: -1.0"},
        {mk_asgd, "weight_decay", -1, -1, "Invalid weight_decay value: -1.0"},
        {mk_rprop, "lr", -1, -1, "Invalid learning rate: -1.0"},
        {mk_rprop, "etas", 0, 0, "Invalid eta values: 0.0, 1.2"},
        {mk_rprop, "etas", 1, 0.9, "Invalid eta values: 0.5, 0.9"},
        {mk_lbfgs, "lr", -1, -1, "Invalid learning rate: -1.0"},
        {mk_lbfgs, "max_iter", -1, -1, "Invalid max_iter value: -1"},
        {mk_lbfgs, "max_eval", -1, 2.5, "Invalid max_eval value: 2.5"},
        {mk_lbfgs, "history_size", -1, 0, "Invalid history_size value: 0"},
        {mk_lbfgs, "tolerance_grad", -1, -1, "Invalid tolerance_grad value: -1.0"},
        {mk_lbfgs, "tolerance_change", -1, -1, "Invalid tolerance_change value: -1.0"},
        {mk_adafactor, "lr", -1, -1, "Learning rate should be >= 0 but is: -1.0"},
        {mk_adafactor, "beta2_decay", -1, 0.5, "beta2_decay should be <= 0 but is: 0.5"},
        {mk_adafactor, "eps", 0, -1, "epsilon1 should be >= 0 but is: -1.0"},
        {mk_adafactor, "eps", 1, -1, "epsilon2 should be >= 0 but is: -1.0"},
        {mk_adafactor, "d", -1, 0.5, "Clipping threshold d should be >= 1 but is: 0.5"},
        {mk_adafactor, "weight_decay", -1, -1, "weight_decay should be >= 0 but is: -1.0"},
    };
    pset s = params_new(PARAMS_WB);
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++) {
        nb_optim *o = rules[k].make(s.p, s.n);
        ck_assert_ptr_nonnull(o);
        expect_set_fails(o, 0, rules[k].name, rules[k].elem, rules[k].bad, rules[k].msg);
        nb_optim_free(o);
    }
    params_free(&s);
}
END_TEST

START_TEST(test_runtime_get_set) {
    pset s = params_new(PARAMS_WB);
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = 1e-2;
    so.momentum = 0.9;
    nb_optim *o = nb_sgd(&s.p[0], 1, &so);
    nb_value head = nb_num("lr", 1e-3);
    ck_assert_int_eq(nb_optim_add_param_group(o, &s.p[1], 1, &head, 1), NB_OK);
    ck_assert_int_eq(nb_optim_num_groups(o), 2);
    ck_assert_double_eq(nb_optim_get(o, 0, "lr"), 1e-2);
    ck_assert_double_eq(nb_optim_get(o, 1, "lr"), 1e-3);
    ck_assert_double_eq(nb_optim_get(o, 1, "momentum"), 0.9); /* the optimizer's default */
    ck_assert(isnan(nb_optim_get(o, 0, "betas")));
    ck_assert_ptr_eq(nb_optim_group_param(o, 1, 0), s.p[1]);
    ck_assert_int_eq(nb_optim_group_size(o, 2), -1);
    /* run-time changes (what schedulers do) act on the next step */
    ck_assert_int_eq(nb_optim_set(o, 1, "lr", 0.5), NB_OK);
    set_grads(o, &s);
    float b0 = nb_f32(s.p[1])[0], g0 = nb_f32(s.p[1]->grad)[0];
    nb_optim_step(o);
    ck_assert_float_eq(nb_f32(s.p[1])[0], fmaf(g0, -0.5f, b0));
    expect_set_fails(o, 0, "lr", -1, -0.1, "Invalid learning rate: -0.1");
    expect_set_fails(o, 0, "momentum", -1, -1, "Invalid momentum value: -1.0");
    ck_assert_int_eq(nb_optim_set(o, 0, "nesterov", 1), NB_OK);
    expect_set_fails(o, 0, "dampening", -1, 0.5, "Nesterov momentum requires a momentum and zero dampening");
    ck_assert_int_eq(nb_optim_set(o, 5, "lr", 0.1), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "SGD: no param group 5 (it has 2)");
    ck_assert_int_eq(nb_optim_set(o, 0, "betas", 0.1), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "SGD: param group has no option 'betas'");
    /* entries that are not options (schedulers' initial_lr) */
    nb_value init = nb_num("initial_lr", 0.1);
    ck_assert_int_eq(nb_optim_put(o, 0, &init), NB_OK);
    ck_assert_double_eq(nb_optim_get(o, 0, "initial_lr"), 0.1);
    ck_assert_int_eq(nb_optim_put(o, 0, &head), NB_EINVAL);
    nb_optim_free(o);
    /* list options and values of other kinds */
    nb_adam_opts ao = nb_adam_defaults();
    o = nb_adam(s.p, 2, &ao);
    ck_assert_int_eq(nb_optim_set_elem(o, 0, "betas", 0, 0.85), NB_OK);
    ck_assert_double_eq(nb_value_elems(nb_optim_get_value(o, 0, "betas"))[0], 0.85);
    expect_set_fails(o, 0, "betas", 1, 1.0, "Invalid beta parameter at index 1: 1.0");
    expect_set_fails(o, 0, "eps", -1, -1, "Invalid epsilon value: -1.0");
    nb_value betas = nb_pair("betas", 0.5, 1.5);
    ck_assert_int_eq(nb_optim_set_value(o, 0, &betas), NB_EINVAL);
    ck_assert_double_eq(nb_value_elems(nb_optim_get_value(o, 0, "betas"))[1], 0.999);
    betas = nb_pair("betas", 0.5, 0.6);
    ck_assert_int_eq(nb_optim_set_value(o, 0, &betas), NB_OK);
    ck_assert_double_eq(nb_value_elems(nb_optim_get_value(o, 0, "betas"))[1], 0.6);
    nb_value str = nb_str("eps", "x");
    ck_assert_int_eq(nb_optim_set_value(o, 0, &str), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "Adam: option 'eps' has the wrong kind of value");
    ck_assert(nb_optim_has_default(o, "amsgrad") && !nb_optim_has_default(o, "momentum"));
    nb_optim_free(o);
    nb_lbfgs_opts lo = nb_lbfgs_defaults();
    o = nb_lbfgs(s.p, 2, &lo);
    ck_assert_double_eq(nb_optim_get(o, 0, "max_eval"), 25); /* max_iter * 5 / 4 */
    ck_assert_int_eq(nb_optim_get_value(o, 0, "line_search_fn")->kind, NB_VALUE_NONE);
    nb_value ls = nb_str("line_search_fn", "strong_wolfe");
    ck_assert_int_eq(nb_optim_set_value(o, 0, &ls), NB_OK);
    ck_assert_str_eq(nb_optim_get_value(o, 0, "line_search_fn")->str, "strong_wolfe");
    ls = nb_str("line_search_fn", "backtracking");
    ck_assert_int_eq(nb_optim_set_value(o, 0, &ls), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "only 'strong_wolfe' is supported");
    ck_assert_str_eq(nb_optim_get_value(o, 0, "line_search_fn")->str, "strong_wolfe");
    ck_assert_int_eq(nb_optim_step(o), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "LBFGS: step requires a closure (nb_optim_step_closure)");
    ck_assert_int_eq(nb_optim_step_closure(o, NULL, NULL, NULL), NB_EINVAL);
    nb_optim_free(o);
    params_free(&s);
}
END_TEST

START_TEST(test_param_groups) {
    pset s = params_new(PARAMS_WBK);
    nb_adam_opts ao = nb_adam_defaults();
    nb_optim *o = nb_adam(&s.p[0], 1, &ao);
    /* rejections, each leaving the optimizer as it was */
    nb_value lr = nb_num("lr", 0.5);
    ck_assert_int_eq(nb_optim_add_param_group(o, &s.p[0], 1, &lr, 1), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "some parameters appear in more than one parameter group");
    nb_tensor *dup[2] = {s.p[1], s.p[1]};
    ck_assert_int_eq(nb_optim_add_param_group(o, dup, 2, NULL, 0), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "optimizer contains a parameter group with duplicate parameters");
    ck_assert_int_eq(nb_optim_add_param_group(o, dup, 0, NULL, 0), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "optimizer got an empty parameter list");
    nb_value bad = nb_num("lr", -1);
    ck_assert_int_eq(nb_optim_add_param_group(o, &s.p[1], 1, &bad, 1), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "Invalid learning rate: -1.0");
    nb_value unknown = nb_num("momentum", 0.9);
    ck_assert_int_eq(nb_optim_add_param_group(o, &s.p[1], 1, &unknown, 1), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "Adam: unknown option 'momentum'");
    nb_value kind = nb_str("lr", "fast");
    ck_assert_int_eq(nb_optim_add_param_group(o, &s.p[1], 1, &kind, 1), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "Adam: option 'lr' has the wrong kind of value");
    nb_tensor *withnull[2] = {s.p[1], NULL};
    ck_assert_int_eq(nb_optim_add_param_group(o, withnull, 2, NULL, 0), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "optimizer can only optimize Tensors, but one of the params is NULL");
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *y = nb_relu(ar, s.p[1]);
    ck_assert_int_eq(nb_optim_add_param_group(o, &y, 1, NULL, 0), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "can't optimize a non-leaf Tensor");
    nb_arena_free(ar);
    ck_assert_int_eq(nb_optim_num_groups(o), 1);
    ck_assert_int_eq(nb_optim_group_size(o, 0), 1);
    /* then a valid one: the override wins, the rest are the defaults */
    ck_assert_int_eq(nb_optim_add_param_group(o, &s.p[1], 2, &lr, 1), NB_OK);
    ck_assert_int_eq(nb_optim_num_groups(o), 2);
    ck_assert_double_eq(nb_optim_get(o, 1, "lr"), 0.5);
    ck_assert_double_eq(nb_optim_get(o, 1, "eps"), 1e-8);
    /* parameters whose grad is None are skipped (no state, no change) */
    set_grads_n(o, &s, 2);
    float k0 = nb_f32(s.p[2])[0];
    ck_assert_int_eq(nb_optim_step(o), NB_OK);
    ck_assert(nb_f32(s.p[2])[0] == k0);
    nb_optim_dict *sd = nb_optim_state_dict(o);
    ck_assert_int_eq(sd->nstates, 2); /* params 0 and 1 only */
    ck_assert_int_eq(sd->groups[1].nparams, 2);
    ck_assert_int_eq(sd->groups[1].params[1], 2);
    nb_optim_dict_free(sd);
    /* zero_grad: set_to_none, or fill with zeros */
    set_grads(o, &s);
    nb_optim_zero_grad(o, false);
    ck_assert_ptr_nonnull(s.p[0]->grad);
    ck_assert(nb_f32(s.p[0]->grad)[3] == 0.0f);
    nb_optim_zero_grad(o, true);
    ck_assert_ptr_null(s.p[0]->grad);
    nb_optim_free(o);
    /* LBFGS keeps one group, with PyTorch's message */
    nb_lbfgs_opts lo = nb_lbfgs_defaults();
    o = nb_lbfgs(&s.p[0], 1, &lo);
    ck_assert_int_eq(nb_optim_add_param_group(o, &s.p[1], 1, NULL, 0), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "LBFGS doesn't support per-parameter options (parameter groups)");
    nb_optim_free(o);
    /* Adagrad's state exists from the moment a parameter joins, later groups included */
    nb_adagrad_opts go = nb_adagrad_defaults();
    go.initial_accumulator_value = 0.25;
    o = nb_adagrad(&s.p[0], 1, &go);
    nb_value init = nb_num("initial_accumulator_value", 0.75);
    ck_assert_int_eq(nb_optim_add_param_group(o, &s.p[1], 1, &init, 1), NB_OK);
    sd = nb_optim_state_dict(o);
    ck_assert_int_eq(sd->nstates, 2);
    ck_assert_float_eq(nb_f32(dict_find(sd, 0, "sum")->tensor)[0], 0.25f);
    ck_assert_float_eq(nb_f32(dict_find(sd, 1, "sum")->tensor)[0], 0.75f);
    ck_assert_double_eq(dict_find(sd, 1, "step")->num, 0);
    nb_optim_dict_free(sd);
    nb_optim_free(o);
    params_free(&s);
}
END_TEST

/* ---- SGD's momentum step among denormals ------------------------------------------------- */
/* A float of one of the kinds the denormal kernel treats apart: zeros, denormals, tiny normals,
 * ordinary values, huge ones, infinities, NaN. */
static float odd_float(uint64_t *st) {
    *st = *st * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t r = (uint32_t)(*st >> 32), sign = r & 0x80000000u, mant = r & 0x7fffff, bits;
    switch (r >> 8 & 7) {
    case 0: bits = 0; break;
    case 1: case 2: bits = mant; break;                                  /* denormal */
    case 3: bits = (1 + (r >> 11 & 31)) << 23 | mant; break;             /* 2^-126 .. 2^-95 */
    case 4: bits = (96 + (r >> 11 & 31)) << 23 | mant; break;            /* 2^-31 .. 2^0 */
    case 5: bits = (100 + (r >> 11 & 63)) << 23 | mant; break;           /* up to 2^36 */
    case 6: bits = (r >> 11 & 63) == 0 ? 0x7f800000u : (r >> 11 & 63) == 1 ? 0x7fc00000u : (110 + (r >> 11 & 15)) << 23 | mant; break;
    default: bits = (60 + (r >> 11 & 63)) << 23 | mant; break;           /* 2^-67 .. 2^-4 */
    }
    bits |= sign;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static bool same_float(float a, float b) { return (isnan(a) && isnan(b)) || !memcmp(&a, &b, sizeof a); }

/* nb_k_sgd_momentum512 against SGD's rule in plain IEEE arithmetic (fmaf is correctly rounded,
 * denormals kept), bit for bit, over every kind of operand and a range of hyperparameters. */
START_TEST(test_sgd_denormal_kernel) {
#if NB_HAVE_DENORMAL512
    if (!nb_k_denormal512_available()) NB_SKIP("this CPU has no AVX-512 F and DQ: the kernel is not used here");
    enum { N = 4099 };
    float *p = malloc(N * sizeof *p), *g = malloc(N * sizeof *g), *buf = malloc(N * sizeof *buf);
    float *rp = malloc(N * sizeof *rp), *rbuf = malloc(N * sizeof *rbuf);
    ck_assert(p && g && buf && rp && rbuf);
    /* the kernel takes multipliers from 2^-100 to 2^100; it declines the others (a zero momentum,
     * 1e-31 and 1e31 below), touching nothing */
    const float moms[] = {0.9f, 0.5f, 0.99f, 1.0f, 0.0f, 1e-3f, 3.0f, 0x1p-100f, 0x1p100f, 1e-31f};
    const float lrs[] = {-0.1f, -1e-3f, -3.0f, -1e-30f, 0.5f, -0x1p100f, -1e31f};
    uint64_t st = 42;
    long checked = 0, tiny_results = 0;
    for (size_t a = 0; a < sizeof moms / sizeof moms[0]; a++)
        for (size_t b = 0; b < sizeof lrs / sizeof lrs[0]; b++)
            for (int v = 0; v < 16; v++) {
                float mom = moms[a], neg_lr = lrs[b], sign = v & 1 ? -1.0f : 1.0f;
                float wd = v & 2 ? 1e-4f : 0.0f, damp = v & 4 ? 0.9f : 1.0f;
                bool nesterov = v & 8;
                for (int i = 0; i < N; i++) {
                    rp[i] = p[i] = odd_float(&st);
                    g[i] = odd_float(&st);
                    rbuf[i] = buf[i] = odd_float(&st);
                }
                int n = N - (int)(st >> 60); /* a few lengths, most not a multiple of 16 */
                bool in_range = mom != 0.0f && mom != 1e-31f && neg_lr != -1e31f;
                ck_assert_int_eq(nb_k_sgd_momentum512(p, g, buf, n, sign, wd, mom, damp, neg_lr, nesterov), in_range);
                if (!in_range) {
                    ck_assert(!memcmp(p, rp, N * sizeof *p) && !memcmp(buf, rbuf, N * sizeof *buf));
                    continue;
                }
                for (int i = 0; i < n; i++) {
                    float d = wd != 0.0f ? fmaf(rp[i], wd, sign * g[i]) : sign * g[i];
                    rbuf[i] = fmaf(d, damp, rbuf[i] * mom);
                    rp[i] = fmaf(nesterov ? fmaf(rbuf[i], mom, d) : rbuf[i], neg_lr, rp[i]);
                    if (!same_float(buf[i], rbuf[i]) || !same_float(p[i], rp[i]))
                        ck_abort_msg("mom %g lr %g sign %g wd %g 1-damp %g nesterov %d, element %d: buf %a p %a, "
                                     "IEEE gives buf %a p %a", mom, -neg_lr, sign, wd, damp, nesterov, i, buf[i], p[i],
                                     rbuf[i], rp[i]);
                    tiny_results += fabsf(rbuf[i]) < 0x1p-126f && rbuf[i] != 0;
                    checked++;
                }
                ck_assert(same_float(p[N - 1], rp[N - 1]) || n == N); /* nothing written past n */
            }
    ck_assert_int_gt(tiny_results, checked / 20); /* the denormal paths were exercised */
    free(p), free(g), free(buf), free(rp), free(rbuf);
#else
    NB_SKIP("this build has no AVX-512 code (clang or NB_NO_TARGET_CLONES): the kernel is not built");
#endif
}
END_TEST

/* Under flush-to-zero (a -ffast-math program's mode) the kernels stand aside: the plain loops
 * follow the mode, the kernels reproduce only the default one. */
START_TEST(test_denormal_kernels_default_mode_only) {
#if NB_HAVE_DENORMAL512 && defined(__x86_64__)
    if (!nb_k_denormal512_available()) NB_SKIP("this CPU has no AVX-512 F and DQ: the kernels are not used here");
    unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040); /* FTZ, DAZ */
    bool on = nb_k_denormal512_available();
    _mm_setcsr(csr | 0x2000); /* round down */
    bool on_round = nb_k_denormal512_available();
    _mm_setcsr(csr);
    ck_assert(!on && !on_round);
    ck_assert(nb_k_denormal512_available());
#else
    NB_SKIP("this build has no AVX-512 code (clang or NB_NO_TARGET_CLONES): the kernels are not built");
#endif
}
END_TEST

/* The kernels of the rules with running averages (nb_k_adam512 with and without AMSGrad,
 * nb_k_adamax512, nb_k_nadam512, nb_k_adadelta512, nb_k_radam512) against those rules in plain
 * IEEE arithmetic (the optimizers' loops), bit for bit, as above. Adadelta takes b1 as rho, m as
 * square_avg and v as acc_delta; RAdam takes -step as lr, bc2 as its bc1 too, and rectifies
 * (rect 0.7) where wd is zero; x is AMSGrad's max_exp_avg_sq. */
#if NB_HAVE_DENORMAL512
enum { RULE_ADAM, RULE_AMSGRAD, RULE_ADAMAX, RULE_NADAM, RULE_ADADELTA, RULE_RADAM };

static bool adam_family_kernel(int rule, float *p, const float *g, float *m, float *v, float *x, int n,
                               const float *h) {
    /* h: sign, wd, decay, b1, b2, bc2, eps, step */
    float sign = h[0], wd = h[1], decay = h[2], b1 = h[3], b2 = h[4], bc2 = h[5], eps = h[6], step = h[7];
    if (rule == RULE_ADAM || rule == RULE_AMSGRAD)
        return nb_k_adam512(p, g, m, v, rule == RULE_AMSGRAD ? x : NULL, n,
                            &(nb_k_adam_coef){sign, wd, decay, b1, 1 - b1, b2, 1 - b2, sqrtf(bc2), eps, step});
    if (rule == RULE_ADAMAX) return nb_k_adamax512(p, g, m, v, n, &(nb_k_adamax_coef){sign, wd, b1, 1 - b1, b2, eps, step});
    if (rule == RULE_ADADELTA) return nb_k_adadelta512(p, g, m, v, n, &(nb_k_adadelta_coef){sign, wd, b1, 1 - b1, eps, step});
    if (rule == RULE_RADAM)
        return nb_k_radam512(p, g, m, v, n, &(nb_k_radam_coef){sign, wd, decay, b1, 1 - b1, b2, 1 - b2, bc2, -step,
                                                               sqrtf(bc2), eps, 0.7f, wd == 0.0f});
    return nb_k_nadam512(p, g, m, v, n, &(nb_k_nadam_coef){sign, wd, decay, b1, 1 - b1, b2, 1 - b2, bc2, eps, step / 3, step});
}

static void adam_family_ref(int rule, float *p, float g, float *m, float *v, float *x, const float *h) {
    float sign = h[0], wd = h[1], decay = h[2], b1 = h[3], b2 = h[4], bc2 = h[5], eps = h[6], step = h[7];
    float d = wd != 0.0f ? fmaf(*p, wd, sign * g) : sign * g;
    if (rule == RULE_ADADELTA) {
        *m = fmaf((1 - b1) * d, d, *m * b1);
        float delta = sqrtf(*v + eps) / sqrtf(*m + eps) * d;
        *v = fmaf((1 - b1) * delta, delta, *v * b1);
        *p = fmaf(delta, step, *p);
        return;
    }
    *m = fmaf(d, 1 - b1, *m * b1);
    if (rule == RULE_ADAMAX) {
        float a = *v * b2, b = fabsf(d) + eps;
        *v = a > b || a != a ? a : b;
        *p = *p + (step * *m) / *v;
        return;
    }
    *v = fmaf((1 - b2) * d, d, *v * b2);
    if (rule == RULE_RADAM) {
        float upd = *m / bc2 * -step;
        if (wd == 0.0f) upd = upd * ((1.0f / (sqrtf(*v) + eps)) * sqrtf(bc2)) * 0.7f;
        *p = *p * decay - upd;
        return;
    }
    if (rule == RULE_AMSGRAD) {
        *x = *x > *v || *x != *x ? *x : *v;
        *p = *p * decay + (step * *m) / (sqrtf(*x) / sqrtf(bc2) + eps);
    } else if (rule == RULE_ADAM) {
        *p = *p * decay + (step * *m) / (sqrtf(*v) / sqrtf(bc2) + eps);
    } else {
        float den = sqrtf(*v / bc2) + eps;
        *p = (*p * decay + (step / 3 * d) / den) + (step * *m) / den;
    }
}
#endif

START_TEST(test_moment_denormal_kernels) {
#if NB_HAVE_DENORMAL512
    if (!nb_k_denormal512_available()) NB_SKIP("this CPU has no AVX-512 F and DQ: the kernel is not used here");
    enum { N = 2053 };
    float *p = malloc(N * sizeof *p), *g = malloc(N * sizeof *g), *m = malloc(N * sizeof *m);
    float *v = malloc(N * sizeof *v), *rp = malloc(N * sizeof *rp), *rm = malloc(N * sizeof *rm);
    float *rv = malloc(N * sizeof *rv), *x = malloc(N * sizeof *x), *rx = malloc(N * sizeof *rx);
    ck_assert(p && g && m && v && rp && rm && rv && x && rx);
    const float b1s[] = {0.9f, 0.5f, 0.0f}, b2s[] = {0.999f, 0.9f}, steps[] = {-1e-3f, -0.1f, -3.0f, 2e-4f, -40.0f};
    const float epss[] = {1e-8f, 0.0f, 1e-30f}, bc2s[] = {1.0f, 0.002f};
    uint64_t st = 99;
    for (int rule = RULE_ADAM; rule <= RULE_RADAM; rule++) {
        long checked = 0, tiny_m = 0;
        for (size_t a = 0; a < 3; a++)
            for (size_t b = 0; b < 2; b++)
                for (size_t s = 0; s < 5; s++)
                    for (size_t e = 0; e < 3; e++)
                        for (int w = 0; w < 8; w++) {
                            const float h[8] = {w & 1 ? -1.0f : 1.0f, w & 2 ? 1e-2f : 0.0f, w & 4 ? 0.99999f : 1.0f,
                                                b1s[a], b2s[b], bc2s[w & 1], epss[e], steps[s]};
                            for (int i = 0; i < N; i++) {
                                rp[i] = p[i] = odd_float(&st);
                                g[i] = odd_float(&st);
                                rm[i] = m[i] = odd_float(&st);
                                rv[i] = v[i] = fabsf(odd_float(&st));
                                rx[i] = x[i] = fabsf(odd_float(&st));
                            }
                            int n = N - (int)(st >> 61);
                            ck_assert(adam_family_kernel(rule, p, g, m, v, x, n, h));
                            for (int i = 0; i < n; i++) {
                                adam_family_ref(rule, &rp[i], g[i], &rm[i], &rv[i], &rx[i], h);
                                if (!same_float(p[i], rp[i]) || !same_float(m[i], rm[i]) || !same_float(v[i], rv[i]) ||
                                    !same_float(x[i], rx[i]))
                                    ck_abort_msg("rule %d b1 %g b2 %g step %g eps %g w %d, element %d: p %a m %a v %a, "
                                                 "IEEE gives p %a m %a v %a", rule, h[3], h[4], h[7], h[6], w, i, p[i],
                                                 m[i], v[i], rp[i], rm[i], rv[i]);
                                tiny_m += fabsf(rm[i]) < 0x1p-126f && rm[i] != 0;
                                checked++;
                            }
                        }
        ck_assert_int_gt(tiny_m, checked / 20);
    }
    free(p), free(g), free(m), free(v), free(rp), free(rm), free(rv), free(x), free(rx);
#else
    NB_SKIP("this build has no AVX-512 code (clang or NB_NO_TARGET_CLONES): the kernel is not built");
#endif
}
END_TEST

/* nb_k_rmsprop512 against RMSprop's rule in plain IEEE arithmetic, bit for bit, in its four
 * forms (centered or not, with a momentum buffer or not). */
START_TEST(test_rmsprop_denormal_kernel) {
#if NB_HAVE_DENORMAL512
    if (!nb_k_denormal512_available()) NB_SKIP("this CPU has no AVX-512 F and DQ: the kernel is not used here");
    enum { N = 1031 };
    float *a[5], *r[5]; /* p, g, sq, ga, buf */
    for (int k = 0; k < 5; k++) ck_assert((a[k] = malloc(N * sizeof(float))) && (r[k] = malloc(N * sizeof(float))));
    const float alphas[] = {0.99f, 0.9f, 0.0f}, moms[] = {0.0f, 0.9f, 3.0f}, lrs[] = {-1e-2f, -0.1f, -3.0f, 2e-4f};
    const float epss[] = {1e-8f, 0.0f, 1e-30f};
    uint64_t st = 5;
    long checked = 0, tiny_state = 0;
    for (size_t al = 0; al < 3; al++)
        for (size_t mo = 0; mo < 3; mo++)
            for (size_t l = 0; l < 4; l++)
                for (size_t e = 0; e < 3; e++)
                    for (int w = 0; w < 8; w++) {
                        float sign = w & 1 ? -1.0f : 1.0f, wd = w & 2 ? 1e-2f : 0.0f, alpha = alphas[al];
                        float mom = moms[mo], neg_lr = lrs[l], eps = epss[e];
                        bool centered = w & 4, momentum = mom > 0;
                        for (int i = 0; i < N; i++)
                            for (int k = 0; k < 5; k++) r[k][i] = a[k][i] = k == 2 ? fabsf(odd_float(&st)) : odd_float(&st);
                        int n = N - (int)(st >> 61);
                        nb_k_rmsprop_coef c = {sign, wd, alpha, 1 - alpha, eps, mom, neg_lr};
                        ck_assert(nb_k_rmsprop512(a[0], a[1], a[2], centered ? a[3] : NULL, momentum ? a[4] : NULL, n, &c));
                        for (int i = 0; i < n; i++) {
                            float *p = &r[0][i], g = r[1][i], *sq = &r[2][i], *ga = &r[3][i], *buf = &r[4][i];
                            float d = wd != 0.0f ? fmaf(*p, wd, sign * g) : sign * g, avg;
                            *sq = fmaf((1 - alpha) * d, d, *sq * alpha);
                            if (centered) {
                                *ga = fmaf(d, 1 - alpha, *ga * alpha);
                                avg = sqrtf(fmaf(-*ga, *ga, *sq)) + eps;
                            } else {
                                avg = sqrtf(*sq) + eps;
                            }
                            if (momentum) {
                                *buf = *buf * mom + d / avg;
                                *p = fmaf(*buf, neg_lr, *p);
                            } else {
                                *p = *p + (neg_lr * d) / avg;
                            }
                            for (int k = 0; k < 5; k++)
                                if (!same_float(a[k][i], r[k][i]))
                                    ck_abort_msg("alpha %g mom %g lr %g eps %g w %d, element %d: array %d is %a, IEEE "
                                                 "gives %a", alpha, mom, -neg_lr, eps, w, i, k, a[k][i], r[k][i]);
                            tiny_state += (fabsf(*sq) < 0x1p-126f && *sq != 0) || (fabsf(*buf) < 0x1p-126f && *buf != 0);
                            checked++;
                        }
                    }
    ck_assert_int_gt(tiny_state, checked / 20);
    for (int k = 0; k < 5; k++) free(a[k]), free(r[k]);
#else
    NB_SKIP("this build has no AVX-512 code (clang or NB_NO_TARGET_CLONES): the kernel is not built");
#endif
}
END_TEST

/* Through nb_sgd: a momentum buffer decaying through the denormals, against the same rule. */
START_TEST(test_sgd_denormal_steps) {
    enum { N = 70 };
    nb_tensor *w = nb_zeros(NULL, 1, (int64_t[]){N});
    float *wp = nb_f32(w), ref[N], rbuf[N], grad[N];
    uint64_t st = 7;
    for (int i = 0; i < N; i++) {
        ref[i] = wp[i] = odd_float(&st);
        if (!isfinite(ref[i])) ref[i] = wp[i] = 0.25f;
        grad[i] = i % 3 ? 0x1p-120f * (float)(i + 1) : odd_float(&st);
        if (!isfinite(grad[i])) grad[i] = 1e-3f;
    }
    ck_assert_int_eq(nb_requires_grad(w, true), NB_OK);
    nb_sgd_opts o = nb_sgd_defaults();
    o.lr = 0.1;
    o.momentum = 0.9;
    nb_optim *opt = nb_sgd(&w, 1, &o);
    ck_assert_ptr_nonnull(opt);
    nb_arena *ar = nb_arena_new(0);
    for (int step = 0; step < 120; step++) {
        nb_arena_reset(ar);
        nb_optim_zero_grad(opt, true);
        nb_tensor *gt = nb_zeros(NULL, 1, (int64_t[]){N});
        for (int i = 0; i < N; i++) nb_f32(gt)[i] = step < 3 ? grad[i] : 0.0f; /* then only decay */
        ck_assert_int_eq(nb_backward_grad(nb_sum(ar, nb_mul(ar, w, gt)), nb_scalar(ar, 1.0f)), NB_OK);
        ck_assert_int_eq(nb_optim_step(opt), NB_OK);
        for (int i = 0; i < N; i++) {
            float g = nb_f32(gt)[i];
            rbuf[i] = step == 0 ? g : fmaf(g, 1.0f, rbuf[i] * 0.9f);
            ref[i] = fmaf(rbuf[i], -0.1f, ref[i]);
        }
        nb_tensor_free(gt);
    }
    nb_optim_dict *sd = nb_optim_state_dict(opt);
    const nb_tensor *mb = NULL;
    for (int j = 0; sd && j < sd->states[0].nvalues; j++)
        if (!strcmp(sd->states[0].values[j].name, "momentum_buffer")) mb = sd->states[0].values[j].tensor;
    ck_assert_ptr_nonnull(mb);
    int denormal = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_msg(same_float(wp[i], ref[i]), "p[%d] %a, IEEE %a", i, wp[i], ref[i]);
        ck_assert_msg(same_float(nb_f32(mb)[i], rbuf[i]), "buf[%d] %a, IEEE %a", i, nb_f32(mb)[i], rbuf[i]);
        denormal += fabsf(rbuf[i]) < 0x1p-126f && rbuf[i] != 0;
    }
    ck_assert_int_gt(denormal, 10);
    nb_optim_dict_free(sd);
    nb_arena_free(ar);
    nb_optim_free(opt);
    nb_tensor_free(w);
}
END_TEST

START_TEST(test_asgd_average) {
    pset s = params_new(PARAMS_WB);
    nb_asgd_opts ao = nb_asgd_defaults();
    ao.t0 = 2;
    nb_optim *o = nb_asgd(s.p, 2, &ao);
    ck_assert_ptr_null(nb_asgd_average(o, s.p[0]));
    for (int t = 0; t < 3; t++) {
        set_grads(o, &s);
        nb_optim_step(o);
    }
    const nb_tensor *ax = nb_asgd_average(o, s.p[0]);
    ck_assert_ptr_nonnull(ax);
    ck_assert(nb_same_shape(ax, s.p[0]));
    ck_assert_ptr_null(nb_asgd_average(o, s.g[0]));
    nb_optim_free(o);
    params_free(&s);
}
END_TEST

/* ---- clipping -------------------------------------------------------------------------------- */
START_TEST(test_clip_grad) {
    pset s = params_new(PARAMS_WB);
    nb_sgd_opts so = nb_sgd_defaults();
    nb_optim *o = nb_sgd(s.p, 2, &so);
    set_grads(o, &s);
    float g0 = nb_f32(s.p[0]->grad)[0];
    double total;
    /* norm type must be > 0 */
    ck_assert_int_eq(nb_clip_grad_norm(s.p, 2, 1.0, 0.0, false, &total), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "clip_grad_norm_: norm_type must be > 0, got 0.0");
    ck_assert(nb_f32(s.p[0]->grad)[0] == g0);
    /* the returned total norm is the norm before clipping; a large max_norm scales by 1 */
    ck_assert_int_eq(nb_clip_grad_norm(s.p, 2, 1e6, 2.0, false, &total), NB_OK);
    double want = 0;
    for (int i = 0; i < 2; i++)
        for (int64_t j = 0; j < s.p[i]->numel; j++) want += (double)nb_f32(s.g[i])[j] * nb_f32(s.g[i])[j];
    ck_assert_double_eq_tol(total, sqrt(want), 1e-6 * sqrt(want));
    ck_assert(nb_f32(s.p[0]->grad)[0] == g0);
    /* after clipping the norm is max_norm * total / (total + 1e-6) */
    ck_assert_int_eq(nb_clip_grad_norm(s.p, 2, 0.1, 2.0, false, &total), NB_OK);
    double after;
    ck_assert_int_eq(nb_clip_grad_norm(s.p, 2, 1e6, 2.0, false, &after), NB_OK);
    ck_assert_double_eq_tol(after, 0.1, 1e-6);
    /* a non-finite norm: an error (grads unchanged) or, without error_if_nonfinite, NaN grads */
    nb_f32(s.p[1]->grad)[1] = INFINITY;
    float g00 = nb_f32(s.p[0]->grad)[0];
    ck_assert_int_eq(nb_clip_grad_norm(s.p, 2, 1.0, 2.0, true, &total), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "The total norm of order 2.0 for gradients from `parameters` is "
                     "non-finite, so it cannot be clipped. To disable this error and scale the "
                     "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`");
    ck_assert(nb_f32(s.p[0]->grad)[0] == g00);
    ck_assert(isinf(total));
    ck_assert_int_eq(nb_clip_grad_norm(s.p, 2, 1.0, INFINITY, false, &total), NB_OK);
    ck_assert(isinf(total));
    ck_assert(nb_f32(s.p[0]->grad)[0] == 0.0f && isnan(nb_f32(s.p[1]->grad)[1]));
    /* no grads: total 0, nothing to do */
    nb_optim_zero_grad(o, false); /* (clears the inf/NaN left in the grad buffers) */
    nb_optim_zero_grad(o, true);
    ck_assert_int_eq(nb_clip_grad_norm(s.p, 2, 1.0, 2.0, true, &total), NB_OK);
    ck_assert_double_eq(total, 0);
    /* clip_grad_value_ clamps each element */
    set_grads(o, &s);
    ck_assert_int_eq(nb_clip_grad_value(s.p, 2, 0.05), NB_OK);
    for (int i = 0; i < 2; i++)
        for (int64_t j = 0; j < s.p[i]->numel; j++) {
            float g = nb_f32(s.g[i])[j], c = nb_f32(s.p[i]->grad)[j];
            ck_assert(c == (g > 0.05f ? 0.05f : g < -0.05f ? -0.05f : g));
        }
    nb_optim_free(o);
    params_free(&s);
}
END_TEST

/* ---- allocation-free steady state ----------------------------------------------------------- */
typedef struct poly_user {
    nb_optim *o;
    pset *s;
} poly_user;

static double poly_closure(void *user) {
    poly_user *u = user;
    set_grads(u->o, u->s);
    double f = 0; /* sum(p^4/4 - p^2/4 + c p): its gradient is (p*p - 0.5)*p + c */
    for (int i = 0; i < u->s->n; i++)
        for (int64_t j = 0; j < u->s->p[i]->numel; j++) {
            double x = nb_f32(u->s->p[i])[j];
            f += x * x * x * x / 4 - x * x / 4 + nb_f32(u->s->c[i])[j] * x;
        }
    return f;
}

START_TEST(test_steady_state_allocates_nothing) {
    static const char *algos[] = {"sgd_nesterov", "adam_amsgrad", "adamw", "rmsprop_centered_momentum",
                                  "adagrad", "adadelta", "adamax", "nadam_decoupled_weight_decay",
                                  "radam", "asgd_t0", "rprop", "adafactor", "clip_norm2", "clip_norm3"};
    for (size_t k = 0; k < sizeof algos / sizeof algos[0]; k++) {
        const tcase *c = NULL;
        for (int i = 0; i < NCASES; i++)
            if (!strcmp(cases[i].name, algos[k])) c = &cases[i];
        pset s = params_new(uses_k(c));
        nb_optim *o = build(c, &s);
        for (int t = 0; t < 3; t++) step(c, o, &s);
        long before = n_alloc;
        for (int t = 0; t < 5; t++) step(c, o, &s);
        ck_assert_msg(n_alloc == before, "%s: %ld allocations in 5 steady-state steps", c->name,
                      n_alloc - before);
        nb_optim_free(o);
        params_free(&s);
    }
    /* LBFGS: once its history ring is full */
    for (int ls = 0; ls < 2; ls++) {
        pset s = params_new(PARAMS_WB);
        nb_lbfgs_opts lo = nb_lbfgs_defaults();
        lo.history_size = 2;
        lo.max_iter = 4;
        lo.line_search_fn = ls ? "strong_wolfe" : NULL;
        lo.lr = 0.1;
        nb_optim *o = nb_lbfgs(s.p, 2, &lo);
        poly_user u = {o, &s};
        for (int t = 0; t < 3; t++) ck_assert_int_eq(nb_optim_step_closure(o, poly_closure, &u, NULL), NB_OK);
        long before = n_alloc;
        for (int t = 0; t < 5; t++) ck_assert_int_eq(nb_optim_step_closure(o, poly_closure, &u, NULL), NB_OK);
        ck_assert_msg(n_alloc == before, "LBFGS: %ld allocations in 5 steady-state steps", n_alloc - before);
        nb_optim_free(o);
        params_free(&s);
    }
}
END_TEST

static double nan_closure(void *user) {
    (void)user;
    return NAN;
}

/* A closure that fails (NaN) stops LBFGS with an error and leaves the parameters as they were. */
START_TEST(test_lbfgs_closure_failure) {
    rosen r = rosen_new(1);
    double loss = 0;
    ck_assert_int_eq(nb_optim_step_closure(r.o, nan_closure, NULL, &loss), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "LBFGS: the closure returned NaN");
    ck_assert(nb_f32(r.x)[0] == -1.5f && nb_f32(r.x)[1] == 2.0f);
    rosen_free(&r);
}
END_TEST

/* ---- the generic step(closure) --------------------------------------------------------------- */
START_TEST(test_step_closure_generic) {
    pset s = params_new(PARAMS_WB);
    nb_adam_opts ao = nb_adam_defaults();
    nb_optim *o = nb_adam(s.p, 2, &ao);
    poly_user u = {o, &s};
    double loss = 0;
    ck_assert_int_eq(nb_optim_step_closure(o, poly_closure, &u, &loss), NB_OK);
    ck_assert(loss != 0 && isfinite(loss));
    ck_assert_double_eq(state_num(o, 0, "step"), 1);
    nb_optim_free(o);
    params_free(&s);
}
END_TEST

/* add_param_group rejects what would corrupt or dangle (nothing changes), and a state dict
 * naming a parameter index outside the optimizer is malformed. */
START_TEST(test_group_argument_errors) {
    nb_tensor *a = nb_ones(NULL, 1, (int64_t[]){3}), *b = nb_ones(NULL, 1, (int64_t[]){2});
    nb_optim *o = nb_sgd(&a, 1, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(nb_optim_add_param_group(o, &b, 1, NULL, 2), NB_EINVAL);
    ck_assert_msg(strstr(nb_last_error(), "2 overrides given but the list is NULL"), "%s", nb_last_error());
    ck_assert_int_eq(nb_optim_add_param_group(o, &b, 1, NULL, -1), NB_EINVAL);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *t = nb_ones(ar, 1, (int64_t[]){2});
    ck_assert_int_eq(nb_optim_add_param_group(o, &t, 1, NULL, 0), NB_EINVAL);
    ck_assert_msg(strstr(nb_last_error(), "lives in an arena"), "%s", nb_last_error());
    ck_assert_int_eq(nb_optim_num_groups(o), 1);
    nb_optim_dict *sd = nb_optim_state_dict(o);
    sd->groups[0].params[0] = 7;
    ck_assert_int_eq(nb_optim_load_state_dict(o, sd), NB_EFORMAT);
    ck_assert_msg(strstr(nb_last_error(), "parameter index 7 is outside 0..0"), "%s", nb_last_error());
    nb_optim_dict_free(sd);
    nb_arena_free(ar);
    nb_optim_free(o);
    nb_tensor_free(a);
    nb_tensor_free(b);
}
END_TEST

/* ---- LBFGS over long vectors: the same bits on 1 and 2 threads ---------------------------- */
/* f(x) = sum a_i x_i^2 / 2 + x_i^4 / 4 over 34,150 elements in three tensors: the flat vectors
 * span several of nb__optim_reduce's chunks, so the dot products, norms and elementwise passes
 * are split across the pool. */
typedef struct quartic {
    nb_tensor *p[3];
} quartic;

static double quartic_closure(void *user) {
    quartic *q = user;
    double f = 0;
    for (int k = 0; k < 3; k++) {
        const float *x = nb_f32(q->p[k]);
        float *g = nb_f32(q->p[k]->grad);
        for (int64_t i = 0; i < q->p[k]->numel; i++) {
            float a = 0.5f + (float)((i * 7 + k) % 13) * 0.25f;
            f += 0.5 * a * x[i] * x[i] + 0.25 * (double)x[i] * x[i] * x[i] * x[i];
            g[i] = a * x[i] + x[i] * x[i] * x[i];
        }
    }
    return f;
}

static void lbfgs_run(bool wolfe, int threads, float *out) {
    ck_assert_int_eq(nb_set_num_threads(threads), NB_OK);
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    int64_t shapes[3][2] = {{200, 150}, {150, 1}, {40, 100}};
    quartic q;
    for (int k = 0; k < 3; k++) {
        q.p[k] = nb_uniform(NULL, 2, shapes[k], -1, 1, &rng);
        nb_requires_grad(q.p[k], true);
        nb_tensor *z = nb_zeros(NULL, 2, shapes[k]);
        nb_backward_grad(q.p[k], z); /* a gradient tensor for the closure to write */
        nb_tensor_free(z);
    }
    nb_lbfgs_opts lo = nb_lbfgs_defaults();
    lo.history_size = 5;
    lo.max_iter = 8;
    lo.line_search_fn = wolfe ? "strong_wolfe" : NULL;
    lo.lr = wolfe ? 1 : 0.2;
    nb_optim *o = nb_lbfgs(q.p, 3, &lo);
    ck_assert_ptr_nonnull(o);
    double f0 = quartic_closure(&q);
    for (int t = 0; t < 3; t++) ck_assert_int_eq(nb_optim_step_closure(o, quartic_closure, &q, NULL), NB_OK);
    double f1 = quartic_closure(&q);
    ck_assert_msg(f1 < 0.1 * f0, "LBFGS did not descend: %g -> %g", f0, f1);
    ck_assert_int_ge((int)state_num(o, 0, "n_iter"), 6); /* several iterations: the history is used */
    int64_t at = 0;
    for (int k = 0; k < 3; k++) {
        memcpy(out + at, q.p[k]->data, sizeof(float) * (size_t)q.p[k]->numel);
        at += q.p[k]->numel;
        nb_tensor_free(q.p[k]);
    }
    ck_assert_int_eq(at, 34150);
    nb_optim_free(o);
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
}

START_TEST(test_lbfgs_threads) {
    for (int wolfe = 0; wolfe < 2; wolfe++) {
        float *one = malloc(sizeof(float) * 34150), *two = malloc(sizeof(float) * 34150);
        lbfgs_run(wolfe, 1, one);
        lbfgs_run(wolfe, 2, two);
        ck_assert_msg(!memcmp(one, two, sizeof(float) * 34150), "LBFGS%s: 2 threads differ from 1",
                      wolfe ? " (strong_wolfe)" : "");
        free(one);
        free(two);
    }
}
END_TEST

/* ---- Muon: its rules, and the same bits on 1 and 2 threads ------------------------------- */
START_TEST(test_muon_rules) {
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *w = nb_uniform(NULL, 2, (int64_t[]){300, 70}, -1, 1, &rng), *v = nb_uniform(NULL, 2, (int64_t[]){5, 300}, -1, 1, &rng);
    nb_tensor *b = nb_zeros(NULL, 1, (int64_t[]){3}), *k = nb_zeros(NULL, 3, (int64_t[]){2, 4, 3});
    nb_tensor *all[] = {w, v, b, k};
    for (int i = 0; i < 4; i++) nb_requires_grad(all[i], true);
    /* 2-D parameters only, at construction and in a later group, with PyTorch's message */
    ck_assert_ptr_null(nb_optim_new("Muon", (nb_tensor *[]){w, b}, 2, NULL, 0));
    ck_assert_str_eq(nb_last_error(), "Muon only supports 2D parameters whereas we found a parameter with size: torch.Size([3])");
    ck_assert_ptr_null(nb_optim_new("Muon", &k, 1, NULL, 0));
    ck_assert_str_eq(nb_last_error(), "Muon only supports 2D parameters whereas we found a parameter with size: torch.Size([2, 4, 3])");
    nb_optim *o = nb_optim_new("Muon", &w, 1, NULL, 0);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(nb_optim_add_param_group(o, &b, 1, NULL, 0), NB_EINVAL);
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "torch.Size([3])"));
    nb_optim_free(o);
    /* PyTorch's validation */
    static const struct {
        nb_value kw;
        const char *msg;
    } bad[] = {
        {KNUM("lr", -1), "Learning rate should be >= 0 but is: -1.0"},
        {KNUM("momentum", -0.5), "momentum should be >= 0 but is: -0.5"},
        {KNUM("weight_decay", -0.1), "weight decay should be >= 0 but is: -0.1"},
        {{.name = "adjust_lr_fn", .kind = NB_VALUE_STRING, .str = "spectral"},
         "Adjust learning rate function spectral is not supported"},
        {KNUM("ns_steps", 100), "Number of steps must be less than 100 for computational efficiency"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_ptr_null(nb_optim_new("Muon", &w, 1, &bad[i].kw, 1));
        ck_assert_str_eq(nb_last_error(), bad[i].msg);
    }
    /* the Newton-Schulz GEMMs and the update: the same bits on any number of threads, for a
     * wide and a tall matrix in two groups */
    float *out[2];
    for (int threads = 1; threads <= 2; threads++) {
        ck_assert_int_eq(nb_set_num_threads(threads), NB_OK);
        nb_tensor *p[2] = {nb_clone(NULL, w), nb_clone(NULL, v)};
        nb_requires_grad(p[0], true);
        nb_requires_grad(p[1], true);
        nb_value lr = nb_num("lr", 0.02);
        o = nb_optim_new("Muon", &p[0], 1, NULL, 0);
        ck_assert_int_eq(nb_optim_add_param_group(o, &p[1], 1, &lr, 1), NB_OK);
        for (int t = 0; t < 3; t++) {
            nb_optim_zero_grad(o, true);
            for (int i = 0; i < 2; i++) {
                nb_tensor *g = nb_clone(NULL, p[i]);
                float *gg = nb_f32(g);
                for (int64_t j = 0; j < g->numel; j++) gg[j] = gg[j] * gg[j] - 0.3f + 0.01f * (float)((j + t) % 5);
                nb_backward_grad(p[i], g);
                nb_tensor_free(g);
            }
            ck_assert_msg(nb_optim_step(o) == NB_OK, "%s", nb_last_error());
        }
        out[threads - 1] = malloc(sizeof(float) * (size_t)(w->numel + v->numel));
        memcpy(out[threads - 1], p[0]->data, sizeof(float) * (size_t)w->numel);
        memcpy(out[threads - 1] + w->numel, p[1]->data, sizeof(float) * (size_t)v->numel);
        nb_optim_free(o);
        nb_tensor_free(p[0]);
        nb_tensor_free(p[1]);
    }
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
    /* Newton-Schulz runs on GEMMs: the AVX-512 kernel sums each element in k order whatever the
     * split, so 2 threads give 1 thread's bits; OpenBLAS (builds without it, e.g. the sanitizer
     * builds) makes no such promise, and 5 iterations keep its last-bit differences small. */
    if (nb_k_gemm512_available())
        ck_assert_msg(!memcmp(out[0], out[1], sizeof(float) * (size_t)(w->numel + v->numel)),
                      "Muon: 2 threads differ from 1");
    else
        assert_close("Muon: 2 threads against 1", out[1], out[0], w->numel + v->numel, 1e-5, 1e-6);
    free(out[0]);
    free(out[1]);
    for (int i = 0; i < 4; i++) nb_tensor_free(all[i]);
}
END_TEST

int main(void) {
    /* count every allocation nabla makes (must come before anything allocates) */
    if (nb_set_allocator(count_malloc, count_realloc, free)) return 1;
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_trajectories, 0, NCASES);
    int nplain = 0; /* the one-group cases: the others reuse their builders */
    while (cases[nplain].group_lr <= 0 && cases[nplain].clip <= 0) nplain++;
    tcase_add_loop_test(tc, test_threads_bit_identical, 0, nplain);
    tcase_add_loop_test(tc, test_by_name, 0, NCASES);
    tcase_add_test(tc, test_by_name_errors);
    tcase_add_loop_test(tc, test_lbfgs_rosenbrock, 0, 5);
    tcase_add_loop_test(tc, test_state_dict_round_trip, 0, NCASES);
    tcase_add_loop_test(tc, test_lbfgs_round_trip, 0, 5);
    tcase_add_test(tc, test_state_dict_layout_and_load_failures);
    tcase_add_test(tc, test_lbfgs_load_failures);
    tcase_add_test(tc, test_state_dict_versions);
    tcase_add_test(tc, test_hooks);
    tcase_add_test(tc, test_sparse_gradients);
    tcase_add_test(tc, test_sparse_optimizers);
    tcase_add_test(tc, test_sparse_rules);
    tcase_add_test(tc, test_sparse_lbfgs_and_clip);
    tcase_add_test(tc, test_muon_rules);
    tcase_add_test(tc, test_lbfgs_threads);
    tcase_add_test(tc, test_constructor_validation);
    tcase_add_test(tc, test_set_validation);
    tcase_add_test(tc, test_runtime_get_set);
    tcase_add_test(tc, test_param_groups);
    tcase_add_test(tc, test_asgd_average);
    tcase_add_test(tc, test_sgd_denormal_kernel);
    tcase_add_test(tc, test_sgd_denormal_steps);
    tcase_add_test(tc, test_moment_denormal_kernels);
    tcase_add_test(tc, test_rmsprop_denormal_kernel);
    tcase_add_test(tc, test_denormal_kernels_default_mode_only);
    tcase_add_test(tc, test_clip_grad);
    tcase_add_test(tc, test_steady_state_allocates_nothing);
    tcase_add_test(tc, test_step_closure_generic);
    tcase_add_test(tc, test_lbfgs_closure_failure);
    tcase_add_test(tc, test_group_argument_errors);
    suite_add_tcase(s, tc);
    int failed = run_suite(s);
    golden_free(G);
    return failed ? 1 : 0;
}
