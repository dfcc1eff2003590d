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

/* W, b (and K for Adafactor) from the golden file, with their gradient constants. */
static pset params_new(bool with_k) {
    pset s = {.n = with_k ? 3 : 2, .names = {"W", "b", "K"}};
    for (int i = 0; i < s.n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.%s", with_k ? "initk" : "init", s.names[i]);
        s.p[i] = golden_tensor(gold(), name);
        snprintf(name, sizeof name, "%s.c.%s", with_k ? "initk" : "init", s.names[i]);
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
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static bool uses_k(const tcase *c) { return !strncmp(c->name, "adafactor", 9); }

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
    pset s = params_new(false);
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
    expect_load_fails(t, sd, "param group 0 lacks 'betas'");
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
    pset s = params_new(false);
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
    pset s = params_new(false);
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
    pset s = params_new(false);
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
    pset s = params_new(true);
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

START_TEST(test_asgd_average) {
    pset s = params_new(false);
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
    pset s = params_new(false);
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
        pset s = params_new(false);
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
    pset s = params_new(false);
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

int main(void) {
    /* count every allocation nabla makes (must come before anything allocates) */
    if (nb_set_allocator(count_malloc, count_realloc, free)) return 1;
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_trajectories, 0, NCASES);
    tcase_add_loop_test(tc, test_lbfgs_rosenbrock, 0, 5);
    tcase_add_loop_test(tc, test_state_dict_round_trip, 0, NCASES);
    tcase_add_loop_test(tc, test_lbfgs_round_trip, 0, 5);
    tcase_add_test(tc, test_state_dict_layout_and_load_failures);
    tcase_add_test(tc, test_lbfgs_load_failures);
    tcase_add_test(tc, test_constructor_validation);
    tcase_add_test(tc, test_set_validation);
    tcase_add_test(tc, test_runtime_get_set);
    tcase_add_test(tc, test_param_groups);
    tcase_add_test(tc, test_asgd_average);
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
