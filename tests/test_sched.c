/* test_sched.c - every lr_scheduler schedule against PyTorch 1.13's lr sequences
 * (tests/golden/sched.nbg.gz from tools/golden/gen_sched.py), state_dict resume, validation
 * messages, rollback of failed steps, the averaged copy (SWA/EMA), and `nabla lr-plot`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"
#include "svgcheck.h"

#define N 120

/* ---- an optimizer with two param groups (SGD lr 0.1/0.05 momentum 0.9, or Adam 0.01/0.002) */
enum { SGD = 0, ADAM = 1, SGD1 = 2 /* one group, lr 0.1 (lr-plot) */ };

typedef struct rig {
    nb_tensor *p[2];
    nb_optim *o;
} rig;

static void rig_new(rig *r, int kind) {
    r->p[0] = nb_zeros(NULL, 1, (int64_t[]){3});
    r->p[1] = nb_zeros(NULL, 1, (int64_t[]){2});
    if (kind == ADAM) {
        nb_adam_opts a = nb_adam_defaults();
        a.lr = 0.01;
        r->o = nb_adam(r->p, 1, &a);
        nb_value lr = nb_num("lr", 0.002);
        ck_assert_int_eq(nb_optim_add_param_group(r->o, &r->p[1], 1, &lr, 1), 0);
    } else {
        nb_sgd_opts s = nb_sgd_defaults();
        s.lr = 0.1;
        s.momentum = 0.9;
        r->o = nb_sgd(r->p, 1, &s);
        nb_value lr = nb_num("lr", 0.05);
        if (kind == SGD) ck_assert_int_eq(nb_optim_add_param_group(r->o, &r->p[1], 1, &lr, 1), 0);
    }
    ck_assert_ptr_nonnull(r->o);
}

static void rig_free(rig *r) {
    nb_optim_free(r->o);
    nb_tensor_free(r->p[0]);
    nb_tensor_free(r->p[1]);
}

static double group_mom(nb_optim *o, int g) {
    const nb_value *b = nb_optim_get_value(o, g, "betas");
    return b ? nb_value_elems(b)[0] : nb_optim_get(o, g, "momentum");
}

/* The optimizer as rig_new left it: lrs, momentum, and no keys a scheduler adds. */
static void assert_rig_unchanged(const rig *r) {
    bool adam = nb_optim_get_value(r->o, 0, "betas") != NULL;
    for (int g = 0; g < nb_optim_num_groups(r->o); g++) {
        double lr = adam ? (g ? 0.002 : 0.01) : (g ? 0.05 : 0.1);
        ck_assert_double_eq(nb_optim_get(r->o, g, "lr"), lr);
        ck_assert_double_eq(group_mom(r->o, g), 0.9);
        const char *added[] = {"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum", "swa_lr"};
        for (int i = 0; i < 6; i++)
            ck_assert_msg(!nb_optim_get_value(r->o, g, added[i]), "group %d gained %s", g, added[i]);
    }
}

/* ---- the cases: constructors and drivers, the same as gen_sched.py ----------------------- */
static double lam_095(int64_t e, int g, void *u) { (void)g; (void)u; return pow(0.95, (double)e); }
static double lam_groups(int64_t e, int g, void *u) {
    (void)u;
    return g == 0 ? 1.0 / (1.0 + 0.1 * (double)e) : pow(0.95, (double)e);
}
static double mul_095(int64_t e, int g, void *u) { (void)e; (void)g; (void)u; return 0.95; }
static double mul_groups(int64_t e, int g, void *u) { (void)u; return g == 0 ? 0.97 : (e % 10 == 0 ? 0.5 : 1.0); }
static double scale_sin(double x, void *u) { (void)u; return 0.5 * (1 + sin(x * M_PI / 2)); }
static double scale_iter(double x, void *u) { (void)u; return 1 / (1 + 0.01 * x); }

static nb_sched *mk_step(nb_optim *o) { return nb_step_lr(o, 30, 0.1); }
static nb_sched *mk_step_g(nb_optim *o) { return nb_step_lr(o, 7, 0.5); }
static nb_sched *mk_multistep(nb_optim *o) { return nb_multistep_lr(o, (int64_t[]){30, 80}, 2, 0.1); }
static nb_sched *mk_multistep_dup(nb_optim *o) { return nb_multistep_lr(o, (int64_t[]){0, 10, 10, 40, 75}, 5, 0.5); }
static nb_sched *mk_constant(nb_optim *o) { return nb_constant_lr(o, 1.0 / 3, 5); }
static nb_sched *mk_constant_40(nb_optim *o) { return nb_constant_lr(o, 0.5, 40); }
static nb_sched *mk_linear(nb_optim *o) { return nb_linear_lr(o, 1.0 / 3, 1.0, 5); }
static nb_sched *mk_linear_40(nb_optim *o) { return nb_linear_lr(o, 0.05, 1.0, 40); }
static nb_sched *mk_linear_down(nb_optim *o) { return nb_linear_lr(o, 1.0, 0.1, 60); }
static nb_sched *mk_exponential(nb_optim *o) { return nb_exponential_lr(o, 0.95); }
static nb_sched *mk_polynomial(nb_optim *o) { return nb_polynomial_lr(o, 5, 1.0); }
static nb_sched *mk_polynomial_50(nb_optim *o) { return nb_polynomial_lr(o, 50, 0.9); }
static nb_sched *mk_polynomial_p2(nb_optim *o) { return nb_polynomial_lr(o, 100, 2.0); }
static nb_sched *mk_cosine(nb_optim *o) { return nb_cosine_annealing_lr(o, 50, 0); }
static nb_sched *mk_cosine_eta(nb_optim *o) { return nb_cosine_annealing_lr(o, 30, 0.001); }
static nb_sched *mk_cosine_40(nb_optim *o) { return nb_cosine_annealing_lr(o, 40, 0); }
static nb_sched *mk_cawr(nb_optim *o) { return nb_cosine_annealing_warm_restarts(o, 10, 1, 0); }
static nb_sched *mk_cawr_mult(nb_optim *o) { return nb_cosine_annealing_warm_restarts(o, 5, 2, 1e-4); }
static nb_sched *mk_cawr_frac(nb_optim *o) { return nb_cosine_annealing_warm_restarts(o, 3, 2, 0.001); }
static nb_sched *mk_cawr_mult_plain(nb_optim *o) { return nb_cosine_annealing_warm_restarts(o, 5, 2, 0); }
static nb_sched *mk_cawr_jump(nb_optim *o) { return nb_cosine_annealing_warm_restarts(o, 10, 2, 0); }
static nb_sched *mk_lambda(nb_optim *o) { return nb_lambda_lr(o, lam_095, NULL); }
static nb_sched *mk_lambda_groups(nb_optim *o) { return nb_lambda_lr(o, lam_groups, NULL); }
static nb_sched *mk_mult(nb_optim *o) { return nb_multiplicative_lr(o, mul_095, NULL); }
static nb_sched *mk_mult_groups(nb_optim *o) { return nb_multiplicative_lr(o, mul_groups, NULL); }

static nb_sched *mk_onecycle(nb_optim *o) {
    nb_onecycle_opts p = nb_onecycle_defaults();
    p.max_lrs = (double[]){0.1, 0.05};
    p.n_max_lrs = 2;
    p.total_steps = N;
    return nb_onecycle_lr(o, &p);
}
static nb_sched *mk_onecycle_lin3(nb_optim *o) {
    nb_onecycle_opts p = nb_onecycle_defaults();
    p.max_lr = 0.2;
    p.epochs = 10;
    p.steps_per_epoch = 12;
    p.pct_start = 0.25;
    p.anneal_strategy = "linear";
    p.div_factor = 10.0;
    p.final_div_factor = 100.0;
    p.three_phase = true;
    p.base_momentums = (double[]){0.8, 0.7};
    p.n_base_momentums = 2;
    p.max_momentums = (double[]){0.9, 0.95};
    p.n_max_momentums = 2;
    return nb_onecycle_lr(o, &p);
}
static nb_sched *mk_onecycle_3cos(nb_optim *o) {
    nb_onecycle_opts p = nb_onecycle_defaults();
    p.max_lrs = (double[]){0.3, 0.1};
    p.n_max_lrs = 2;
    p.total_steps = N + 1;
    p.three_phase = true;
    return nb_onecycle_lr(o, &p);
}
static nb_sched *mk_onecycle_adam(nb_optim *o) {
    nb_onecycle_opts p = nb_onecycle_defaults();
    p.max_lrs = (double[]){0.01, 0.002};
    p.n_max_lrs = 2;
    p.total_steps = N;
    return nb_onecycle_lr(o, &p);
}
static nb_sched *mk_onecycle_nomom(nb_optim *o) {
    nb_onecycle_opts p = nb_onecycle_defaults();
    p.max_lr = 0.01;
    p.total_steps = N - 1;
    p.cycle_momentum = false;
    p.pct_start = 0.4;
    return nb_onecycle_lr(o, &p);
}
static nb_sched *mk_cyclic(nb_optim *o) {
    nb_cyclic_opts p = nb_cyclic_defaults();
    p.base_lrs = (double[]){0.01, 0.005};
    p.n_base_lrs = 2;
    p.max_lrs = (double[]){0.1, 0.05};
    p.n_max_lrs = 2;
    p.step_size_up = 10;
    return nb_cyclic_lr(o, &p);
}
static nb_sched *mk_cyclic_tri2(nb_optim *o) {
    nb_cyclic_opts p = nb_cyclic_defaults();
    p.base_lr = 0.01;
    p.max_lr = 0.1;
    p.step_size_up = 8;
    p.step_size_down = 12;
    p.mode = "triangular2";
    p.base_momentums = (double[]){0.8, 0.85};
    p.n_base_momentums = 2;
    p.max_momentums = (double[]){0.9, 0.99};
    p.n_max_momentums = 2;
    return nb_cyclic_lr(o, &p);
}
static nb_sched *mk_cyclic_exp(nb_optim *o) {
    nb_cyclic_opts p = nb_cyclic_defaults();
    p.base_lr = 0.001;
    p.max_lr = 0.1;
    p.step_size_up = 15;
    p.mode = "exp_range";
    p.gamma = 0.98;
    return nb_cyclic_lr(o, &p);
}
static nb_sched *mk_cyclic_fn(nb_optim *o, nb_scale_fn fn, const char *mode) {
    nb_cyclic_opts p = nb_cyclic_defaults();
    p.base_lr = 0.01;
    p.max_lr = 0.1;
    p.step_size_up = 6;
    p.scale_fn = fn;
    p.scale_mode = mode;
    return nb_cyclic_lr(o, &p);
}
static nb_sched *mk_cyclic_fn_cycle(nb_optim *o) { return mk_cyclic_fn(o, scale_sin, "cycle"); }
static nb_sched *mk_cyclic_fn_iter(nb_optim *o) { return mk_cyclic_fn(o, scale_iter, "iterations"); }
static nb_sched *mk_cyclic_adam_nomom(nb_optim *o) {
    nb_cyclic_opts p = nb_cyclic_defaults();
    p.base_lr = 0.001;
    p.max_lr = 0.01;
    p.step_size_up = 5;
    p.cycle_momentum = false;
    return nb_cyclic_lr(o, &p);
}
static nb_sched *mk_cyclic_beta1(nb_optim *o) {
    nb_cyclic_opts p = nb_cyclic_defaults();
    p.base_lrs = (double[]){0.001, 0.0005};
    p.n_base_lrs = 2;
    p.max_lrs = (double[]){0.01, 0.005};
    p.n_max_lrs = 2;
    p.step_size_up = 9;
    p.base_momentum = 0.85;
    p.max_momentum = 0.95;
    return nb_cyclic_lr(o, &p);
}
static nb_sched *mk_plateau(nb_optim *o) { return nb_reduce_lr_on_plateau(o, NULL); }
static nb_sched *mk_plateau_min_rel(nb_optim *o) {
    nb_plateau_opts p = nb_plateau_defaults();
    p.factor = 0.5;
    p.patience = 3;
    p.cooldown = 2;
    p.min_lrs = (double[]){0.01, 0.004};
    p.n_min_lrs = 2;
    return nb_reduce_lr_on_plateau(o, &p);
}
static nb_sched *mk_plateau_min_abs(nb_optim *o) {
    nb_plateau_opts p = nb_plateau_defaults();
    p.factor = 0.3;
    p.patience = 2;
    p.threshold = 0.01;
    p.threshold_mode = "abs";
    p.cooldown = 4;
    return nb_reduce_lr_on_plateau(o, &p);
}
static nb_sched *mk_plateau_max_rel(nb_optim *o) {
    nb_plateau_opts p = nb_plateau_defaults();
    p.mode = "max";
    p.factor = 0.5;
    p.patience = 4;
    p.threshold = 0.05;
    p.cooldown = 1;
    p.min_lr = 0.001;
    return nb_reduce_lr_on_plateau(o, &p);
}
static nb_sched *mk_plateau_max_abs(nb_optim *o) {
    nb_plateau_opts p = nb_plateau_defaults();
    p.mode = "max";
    p.factor = 0.7;
    p.patience = 0;
    p.threshold = 0.002;
    p.threshold_mode = "abs";
    p.cooldown = 3;
    p.eps = 1e-3;
    return nb_reduce_lr_on_plateau(o, &p);
}
static nb_sched *mk_closed_step(nb_optim *o) { return nb_step_lr(o, 10, 0.5); }
static nb_sched *mk_closed_multistep(nb_optim *o) { return nb_multistep_lr(o, (int64_t[]){10, 10, 40, 75}, 4, 0.5); }
static nb_sched *mk_closed_exponential(nb_optim *o) { return nb_exponential_lr(o, 0.97); }
static nb_sched *mk_closed_polynomial(nb_optim *o) { return nb_polynomial_lr(o, 100, 0.9); }
static nb_sched *mk_closed_cosine(nb_optim *o) { return nb_cosine_annealing_lr(o, 50, 0.001); }
static nb_sched *mk_sequential(nb_optim *o) {
    return nb_sequential_lr(o, (nb_sched *[]){nb_linear_lr(o, 0.1, 1.0, 5), nb_cosine_annealing_lr(o, 50, 0)}, 2,
                            (int64_t[]){5}, 1);
}
static nb_sched *mk_sequential3(nb_optim *o) {
    return nb_sequential_lr(o, (nb_sched *[]){nb_constant_lr(o, 0.1, 10), nb_exponential_lr(o, 0.9), nb_step_lr(o, 10, 0.5)},
                            3, (int64_t[]){10, 40}, 2);
}
static nb_sched *mk_sequential_lambda(nb_optim *o) {
    return nb_sequential_lr(o, (nb_sched *[]){nb_exponential_lr(o, 0.9), nb_lambda_lr(o, lam_095, NULL)}, 2,
                            (int64_t[]){30}, 1);
}
static nb_sched *mk_chained(nb_optim *o) {
    return nb_chained_scheduler((nb_sched *[]){nb_constant_lr(o, 0.1, 20), nb_exponential_lr(o, 0.9)}, 2);
}
static nb_sched *mk_chained3(nb_optim *o) {
    return nb_chained_scheduler((nb_sched *[]){nb_linear_lr(o, 0.2, 1.0, 10), nb_multistep_lr(o, (int64_t[]){40, 80}, 2, 0.3),
                                               nb_cosine_annealing_lr(o, 100, 0.0)}, 3);
}
static nb_sched *mk_swalr(nb_optim *o) {
    nb_swalr_opts p = nb_swalr_defaults();
    p.swa_lr = 0.05;
    return nb_swalr(o, &p);
}
static nb_sched *mk_swalr_lin(nb_optim *o) {
    nb_swalr_opts p = nb_swalr_defaults();
    p.swa_lrs = (double[]){0.02, 0.01};
    p.n_swa_lrs = 2;
    p.anneal_epochs = 5;
    p.anneal_strategy = "linear";
    return nb_swalr(o, &p);
}
static nb_sched *mk_swalr_0(nb_optim *o) {
    nb_swalr_opts p = nb_swalr_defaults();
    p.swa_lr = 0.03;
    p.anneal_epochs = 0;
    return nb_swalr(o, &p);
}

enum { D_STEP, D_EPOCHS, D_FRAC7, D_JUMP26, D_MIXED, D_METRIC_MIN, D_METRIC_MAX };

typedef struct sched_case {
    const char *name;
    int optim;
    nb_sched *(*make)(nb_optim *o);
    int drive;
    int steps;
    bool mom;
} sched_case;

static const sched_case cases[] = {
    {"step", SGD, mk_step, D_STEP, N, false},
    {"step_g", SGD, mk_step_g, D_STEP, N, false},
    {"multistep", SGD, mk_multistep, D_STEP, N, false},
    {"multistep_dup", SGD, mk_multistep_dup, D_STEP, N, false},
    {"constant", SGD, mk_constant, D_STEP, N, false},
    {"constant_40", SGD, mk_constant_40, D_STEP, N, false},
    {"linear", SGD, mk_linear, D_STEP, N, false},
    {"linear_40", SGD, mk_linear_40, D_STEP, N, false},
    {"linear_down", SGD, mk_linear_down, D_STEP, N, false},
    {"exponential", SGD, mk_exponential, D_STEP, N, false},
    {"polynomial", SGD, mk_polynomial, D_STEP, N, false},
    {"polynomial_50", SGD, mk_polynomial_50, D_STEP, N, false},
    {"polynomial_p2", SGD, mk_polynomial_p2, D_STEP, N, false},
    {"cosine", SGD, mk_cosine, D_STEP, N, false},
    {"cosine_eta", SGD, mk_cosine_eta, D_STEP, N, false},
    {"cawr", SGD, mk_cawr, D_STEP, N, false},
    {"cawr_mult", SGD, mk_cawr_mult, D_STEP, N, false},
    {"cawr_frac", SGD, mk_cawr_frac, D_FRAC7, N, false},
    {"cawr_jump", SGD, mk_cawr_jump, D_JUMP26, 40, false},
    {"lambda", SGD, mk_lambda, D_STEP, N, false},
    {"lambda_groups", SGD, mk_lambda_groups, D_STEP, N, false},
    {"multiplicative", SGD, mk_mult, D_STEP, N, false},
    {"multiplicative_groups", SGD, mk_mult_groups, D_STEP, N, false},
    {"onecycle", SGD, mk_onecycle, D_STEP, N, true},
    {"onecycle_lin3", SGD, mk_onecycle_lin3, D_STEP, N, true},
    {"onecycle_3cos", SGD, mk_onecycle_3cos, D_STEP, N, true},
    {"onecycle_adam", ADAM, mk_onecycle_adam, D_STEP, N, true},
    {"onecycle_nomom", ADAM, mk_onecycle_nomom, D_STEP, N, true},
    {"cyclic", SGD, mk_cyclic, D_STEP, N, true},
    {"cyclic_tri2", SGD, mk_cyclic_tri2, D_STEP, N, true},
    {"cyclic_exp", SGD, mk_cyclic_exp, D_STEP, N, true},
    {"cyclic_fn_cycle", SGD, mk_cyclic_fn_cycle, D_STEP, N, true},
    {"cyclic_fn_iter", SGD, mk_cyclic_fn_iter, D_STEP, N, true},
    {"cyclic_adam_nomom", ADAM, mk_cyclic_adam_nomom, D_STEP, N, true},
    {"cyclic_beta1", ADAM, mk_cyclic_beta1, D_STEP, N, true}, /* golden from SGD's momentum */
    {"plateau", SGD, mk_plateau, D_METRIC_MIN, N, false},
    {"plateau_min_rel", SGD, mk_plateau_min_rel, D_METRIC_MIN, N, false},
    {"plateau_min_abs", SGD, mk_plateau_min_abs, D_METRIC_MIN, N, false},
    {"plateau_max_rel", SGD, mk_plateau_max_rel, D_METRIC_MAX, N, false},
    {"plateau_max_abs", SGD, mk_plateau_max_abs, D_METRIC_MAX, N, false},
    {"closed_step", SGD, mk_closed_step, D_EPOCHS, N, false},
    {"closed_multistep", SGD, mk_closed_multistep, D_EPOCHS, N, false},
    {"closed_constant", SGD, mk_constant_40, D_EPOCHS, N, false},
    {"closed_linear", SGD, mk_linear_40, D_EPOCHS, N, false},
    {"closed_exponential", SGD, mk_closed_exponential, D_EPOCHS, N, false},
    {"closed_polynomial", SGD, mk_closed_polynomial, D_EPOCHS, N, false},
    {"closed_cosine", SGD, mk_closed_cosine, D_EPOCHS, N, false},
    {"closed_lambda", SGD, mk_lambda, D_EPOCHS, N, false},
    {"closed_cawr", SGD, mk_cawr_mult_plain, D_EPOCHS, N, false},
    {"cosine_mixed", SGD, mk_cosine_40, D_MIXED, N, false},
    {"sequential", SGD, mk_sequential, D_STEP, N, false},
    {"sequential3", SGD, mk_sequential3, D_STEP, N, false},
    {"sequential_lambda", SGD, mk_sequential_lambda, D_STEP, N, false},
    {"chained", SGD, mk_chained, D_STEP, N, false},
    {"chained3", SGD, mk_chained3, D_STEP, N, false},
    {"swalr", SGD, mk_swalr, D_STEP, N, false},
    {"swalr_lin", SGD, mk_swalr_lin, D_STEP, N, false},
    {"swalr_0", SGD, mk_swalr_0, D_STEP, N, false},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- running a case ---------------------------------------------------------------------- */
static golden *G;

static void load_golden(void) {
    if (!G) G = golden_load("sched.nbg.gz");
}

static const double *gold(const char *name, const char *what, int64_t rows, int64_t cols) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", name, what);
    const gold_entry *e = golden_get(G, key);
    ck_assert_int_eq(e->dtype, 2);
    ck_assert_msg(e->numel == rows * cols, "%s: %lld values, expected %lld", key, (long long)e->numel,
                  (long long)(rows * cols));
    return e->data;
}

/* The i-th step (i >= 1) of a case. */
static int drive(const sched_case *c, nb_sched *s, int i) {
    switch (c->drive) {
    case D_EPOCHS: return nb_sched_step_epoch(s, gold("closed", "epochs", N, 1)[i - 1]);
    case D_FRAC7: return nb_sched_step_epoch(s, (double)(i / 7) + (double)(i % 7) / 7);
    case D_JUMP26: return i == 21 ? nb_sched_step_epoch(s, 26) : nb_sched_step(s);
    case D_MIXED: return i % 25 == 0 ? nb_sched_step_epoch(s, i + 7) : nb_sched_step(s);
    case D_METRIC_MIN: return nb_sched_step_metric(s, gold("plateau", "metric_min", N, 1)[i - 1]);
    case D_METRIC_MAX: return nb_sched_step_metric(s, gold("plateau", "metric_max", N, 1)[i - 1]);
    default: return nb_sched_step(s);
    }
}

/* Values [from, to) of a case into lrs/moms ([step][group]); s is at step from - 1 (or built
 * here when from == 0). */
static void run_case(const sched_case *c, rig *r, nb_sched **sp, int from, int to, double *lrs, double *moms) {
    if (from == 0) {
        nb_clear_error();
        *sp = c->make(r->o);
        ck_assert_msg(*sp != NULL, "%s: %s", c->name, nb_last_error());
    }
    for (int i = from; i < to; i++) {
        if (i > 0) {
            int rc = drive(c, *sp, i);
            ck_assert_msg(rc == 0, "%s step %d: %s", c->name, i, nb_last_error());
        }
        double last[2] = {NAN, NAN};
        ck_assert_int_eq(nb_sched_get_last_lr(*sp, last, 2), 2);
        for (int g = 0; g < 2; g++) {
            lrs[2 * i + g] = nb_optim_get(r->o, g, "lr");
            moms[2 * i + g] = group_mom(r->o, g);
            ck_assert_msg(nb_sched_last_lr(*sp, g) == lrs[2 * i + g], "%s step %d: get_last_lr differs", c->name, i);
            ck_assert_msg(last[g] == lrs[2 * i + g], "%s step %d: get_last_lr() differs", c->name, i);
        }
    }
}

static double rel_err(double a, double b) {
    double d = fabs(a - b);
    return d == 0 ? 0 : d / (fabs(b) > 1e-300 ? fabs(b) : 1e-300);
}

START_TEST(test_golden_lr_sequences) {
    load_golden();
    double worst = 0, worst_mom = 0;
    const char *worst_case = "";
    int values = 0;
    for (int k = 0; k < NCASES; k++) {
        const sched_case *c = &cases[k];
        rig r;
        rig_new(&r, c->optim);
        nb_sched *s = NULL;
        double lrs[2 * N], moms[2 * N];
        run_case(c, &r, &s, 0, c->steps, lrs, moms);
        const double *gl = gold(c->name, "lr", c->steps, 2);
        const double *gm = c->mom ? gold(c->name, "mom", c->steps, 2) : NULL;
        for (int i = 0; i < 2 * c->steps; i++) {
            double e = rel_err(lrs[i], gl[i]);
            ck_assert_msg(e <= 1e-9, "%s: lr[%d][%d] = %.17g, PyTorch %.17g", c->name, i / 2, i % 2, lrs[i], gl[i]);
            if (e > worst) {
                worst = e;
                worst_case = c->name;
            }
            values++;
            if (gm) {
                double em = rel_err(moms[i], gm[i]);
                ck_assert_msg(em <= 1e-9, "%s: momentum[%d][%d] = %.17g, PyTorch %.17g", c->name, i / 2, i % 2,
                              moms[i], gm[i]);
                if (em > worst_mom) worst_mom = em;
                values++;
            }
        }
        nb_sched_free(s);
        rig_free(&r);
    }
    printf("sched golden: %d cases, %d values, max rel err lr %.3g (%s), momentum %.3g\n", NCASES, values, worst,
           worst_case, worst_mom);
}
END_TEST

/* ---- by name: nb_sched_new("StepLR", o, kwargs) gives PyTorch's sequences ------------------ */
static nb_value list_of(const char *name, const double *v, int n) {
    nb_value l = nb_pair(name, 0, 0);
    l.len = n;
    if (n <= NB_VALUE_INLINE) memcpy(l.inl, v, sizeof(double) * (size_t)n);
    else l.list = (double *)v;
    return l;
}
#define BYNAME(fn, cls, ...)                                                                        \
    static nb_sched *fn(nb_optim *o) {                                                              \
        nb_value kw[] = {__VA_ARGS__};                                                              \
        return nb_sched_new(cls, o, kw, (int)(sizeof kw / sizeof kw[0]));                           \
    }
BYNAME(bn_step, "StepLR", nb_int("step_size", 30))
BYNAME(bn_multistep_dup, "MultiStepLR", list_of("milestones", (double[]){0, 10, 10, 40, 75}, 5), nb_num("gamma", 0.5))
BYNAME(bn_constant_40, "ConstantLR", nb_num("factor", 0.5), nb_int("total_iters", 40))
BYNAME(bn_linear_down, "LinearLR", nb_num("start_factor", 1.0), nb_num("end_factor", 0.1), nb_int("total_iters", 60))
BYNAME(bn_exponential, "exponentiallr", nb_num("gamma", 0.95))
BYNAME(bn_polynomial_50, "PolynomialLR", nb_int("total_iters", 50), nb_num("power", 0.9))
BYNAME(bn_cosine_eta, "CosineAnnealingLR", nb_int("T_max", 30), nb_num("eta_min", 0.001))
BYNAME(bn_cawr_mult, "CosineAnnealingWarmRestarts", nb_int("T_0", 5), nb_int("T_mult", 2), nb_num("eta_min", 1e-4))
BYNAME(bn_onecycle, "OneCycleLR", list_of("max_lr", (double[]){0.1, 0.05}, 2), nb_int("total_steps", N))
BYNAME(bn_onecycle_lin3, "OneCycleLR", nb_num("max_lr", 0.2), nb_int("epochs", 10), nb_int("steps_per_epoch", 12),
       nb_num("pct_start", 0.25), nb_str("anneal_strategy", "linear"), nb_num("div_factor", 10),
       nb_num("final_div_factor", 100), nb_bool("three_phase", true),
       list_of("base_momentum", (double[]){0.8, 0.7}, 2), list_of("max_momentum", (double[]){0.9, 0.95}, 2))
BYNAME(bn_cyclic_tri2, "CyclicLR", nb_num("base_lr", 0.01), nb_num("max_lr", 0.1), nb_num("step_size_up", 8),
       nb_num("step_size_down", 12), nb_str("mode", "triangular2"), list_of("base_momentum", (double[]){0.8, 0.85}, 2),
       list_of("max_momentum", (double[]){0.9, 0.99}, 2))
BYNAME(bn_cyclic_exp, "CyclicLR", nb_num("base_lr", 0.001), nb_num("max_lr", 0.1), nb_int("step_size_up", 15),
       nb_str("mode", "exp_range"), nb_num("gamma", 0.98))
BYNAME(bn_plateau_min_rel, "ReduceLROnPlateau", nb_num("factor", 0.5), nb_int("patience", 3), nb_int("cooldown", 2),
       list_of("min_lr", (double[]){0.01, 0.004}, 2))
BYNAME(bn_plateau_max_abs, "ReduceLROnPlateau", nb_str("mode", "max"), nb_num("factor", 0.7), nb_int("patience", 0),
       nb_num("threshold", 0.002), nb_str("threshold_mode", "abs"), nb_int("cooldown", 3), nb_num("eps", 1e-3))
BYNAME(bn_swalr_lin, "SWALR", list_of("swa_lr", (double[]){0.02, 0.01}, 2), nb_int("anneal_epochs", 5),
       nb_str("anneal_strategy", "linear"))

static const sched_case byname_cases[] = {
    {"step", SGD, bn_step, D_STEP, N, false},
    {"multistep_dup", SGD, bn_multistep_dup, D_STEP, N, false},
    {"constant_40", SGD, bn_constant_40, D_STEP, N, false},
    {"linear_down", SGD, bn_linear_down, D_STEP, N, false},
    {"exponential", SGD, bn_exponential, D_STEP, N, false},
    {"polynomial_50", SGD, bn_polynomial_50, D_STEP, N, false},
    {"cosine_eta", SGD, bn_cosine_eta, D_STEP, N, false},
    {"cawr_mult", SGD, bn_cawr_mult, D_STEP, N, false},
    {"onecycle", SGD, bn_onecycle, D_STEP, N, true},
    {"onecycle_lin3", SGD, bn_onecycle_lin3, D_STEP, N, true},
    {"cyclic_tri2", SGD, bn_cyclic_tri2, D_STEP, N, true},
    {"cyclic_exp", SGD, bn_cyclic_exp, D_STEP, N, true},
    {"plateau_min_rel", SGD, bn_plateau_min_rel, D_METRIC_MIN, N, false},
    {"plateau_max_abs", SGD, bn_plateau_max_abs, D_METRIC_MAX, N, false},
    {"swalr_lin", SGD, bn_swalr_lin, D_STEP, N, false},
};

START_TEST(test_by_name_sequences) {
    load_golden();
    for (int k = 0; k < (int)(sizeof byname_cases / sizeof byname_cases[0]); k++) {
        const sched_case *c = &byname_cases[k];
        rig r;
        rig_new(&r, c->optim);
        nb_sched *s = NULL;
        double lrs[2 * N], moms[2 * N];
        run_case(c, &r, &s, 0, c->steps, lrs, moms);
        const double *gl = gold(c->name, "lr", c->steps, 2);
        const double *gm = c->mom ? gold(c->name, "mom", c->steps, 2) : NULL;
        for (int i = 0; i < 2 * c->steps; i++) {
            ck_assert_msg(rel_err(lrs[i], gl[i]) <= 1e-9, "%s by name: lr[%d][%d] = %.17g, PyTorch %.17g", c->name,
                          i / 2, i % 2, lrs[i], gl[i]);
            if (gm) ck_assert_msg(rel_err(moms[i], gm[i]) <= 1e-9, "%s by name: momentum[%d]", c->name, i / 2);
        }
        nb_sched_free(s);
        rig_free(&r);
    }
}
END_TEST

START_TEST(test_by_name_errors) {
    rig r;
    rig_new(&r, SGD);
    const char *names[32];
    ck_assert_int_eq(nb_sched_names(names, 32), 16);
    ck_assert_str_eq(names[0], "LambdaLR");
    ck_assert_ptr_null(nb_sched_new("StepLR", r.o, NULL, 0));
    ck_assert_str_eq(nb_last_error(), "StepLR.__init__() missing 1 required positional argument: 'step_size'");
    ck_assert_ptr_null(nb_sched_new("CyclicLR", r.o, NULL, 0));
    ck_assert_str_eq(nb_last_error(), "CyclicLR.__init__() missing 2 required positional arguments: 'base_lr' and 'max_lr'");
    nb_value kw[] = {nb_int("step_size", 3), nb_num("gama", 0.5)};
    ck_assert_ptr_null(nb_sched_new("StepLR", r.o, kw, 2));
    ck_assert_str_eq(nb_last_error(), "StepLR.__init__() got an unexpected keyword argument 'gama'");
    nb_value frac = nb_num("step_size", 2.5);
    ck_assert_ptr_null(nb_sched_new("StepLR", r.o, &frac, 1));
    ck_assert_str_eq(nb_last_error(), "StepLR: step_size must be an integer");
    nb_value name = nb_str("T_max", "ten");
    ck_assert_ptr_null(nb_sched_new("CosineAnnealingLR", r.o, &name, 1));
    ck_assert_str_eq(nb_last_error(), "CosineAnnealingLR: T_max must be an integer");
    ck_assert_ptr_null(nb_sched_new("LambdaLR", r.o, NULL, 0));
    ck_assert_str_eq(nb_last_error(), "LambdaLR takes functions or other schedulers, which keyword arguments cannot "
                                      "carry: build it with its constructor");
    ck_assert_ptr_null(nb_sched_new("WarmupLR", r.o, NULL, 0));
    ck_assert_msg(strstr(nb_last_error(), "torch.optim.lr_scheduler has no scheduler 'WarmupLR'"), "%s", nb_last_error());
    assert_rig_unchanged(&r);
    int n;
    const nb_value *d = nb_sched_defaults_of("OneCycleLR", &n);
    ck_assert_int_eq(n, 13);
    ck_assert_str_eq(d[0].name, "max_lr");
    ck_assert_int_eq(d[0].kind, NB_VALUE_NONE);
    ck_assert_double_eq(d[4].num, 0.3);
    ck_assert_ptr_nonnull(nb_sched_defaults_of("LambdaLR", &n));
    ck_assert_int_eq(n, 0);
    /* last_epoch: a schedule resumed on groups that hold initial_lr continues the sequence */
    nb_sched *a = nb_step_lr(r.o, 7, 0.5);
    double want[20];
    for (int i = 0; i < 20; i++) {
        if (i) nb_sched_step(a);
        want[i] = nb_optim_get(r.o, 0, "lr");
    }
    nb_sched_free(a);
    rig_free(&r);
    rig_new(&r, SGD);
    a = nb_step_lr(r.o, 7, 0.5);
    for (int i = 1; i < 10; i++) nb_sched_step(a);
    nb_sched_free(a);
    nb_value resume[] = {nb_int("step_size", 7), nb_num("gamma", 0.5), nb_int("last_epoch", 9)};
    nb_sched *b = nb_sched_new("StepLR", r.o, resume, 3);
    ck_assert_msg(b, "%s", nb_last_error());
    ck_assert_int_eq(nb_sched_last_epoch(b), 10);
    for (int i = 10; i < 20; i++) {
        if (i > 10) nb_sched_step(b);
        ck_assert_double_eq(nb_optim_get(r.o, 0, "lr"), want[i]);
    }
    nb_sched_free(b);
    rig_free(&r);
}
END_TEST

/* ---- full loops: every OneCycleLR variant to step == total_steps, CyclicLR over whole cycles --
 * A schedule's write is not a user's set: OneCycleLR's linear anneal extrapolates to a negative
 * lr at its last allowed step, which PyTorch writes unchecked (nabla refused it before). */
START_TEST(test_full_loops) {
    load_golden();
    enum { T = 20 };
    const char *anneals[] = {"cos", "linear"}, *kinds[] = {"sgd", "adam", "nomom"};
    for (int a = 0; a < 2; a++)
        for (int three = 0; three < 2; three++)
            for (int k = 0; k < 3; k++) {
                char name[64];
                snprintf(name, sizeof name, "full_onecycle_%s_%d_%s", anneals[a], three ? 3 : 2, kinds[k]);
                rig r;
                rig_new(&r, k == 1 ? ADAM : SGD);
                nb_onecycle_opts p = nb_onecycle_defaults();
                p.max_lrs = k == 1 ? (double[]){0.01, 0.002} : (double[]){0.1, 0.05};
                p.n_max_lrs = 2;
                p.total_steps = T;
                p.anneal_strategy = anneals[a];
                p.three_phase = three;
                p.cycle_momentum = k != 2;
                nb_sched *s = nb_onecycle_lr(r.o, &p);
                ck_assert_msg(s, "%s: %s", name, nb_last_error());
                const double *gl = gold(name, "lr", T + 1, 2), *gm = gold(name, "mom", T + 1, 2);
                for (int i = 0; i <= T; i++) {
                    if (i) ck_assert_msg(nb_sched_step(s) == 0, "%s step %d: %s", name, i, nb_last_error());
                    for (int g = 0; g < 2; g++) {
                        ck_assert_msg(rel_err(nb_optim_get(r.o, g, "lr"), gl[2 * i + g]) <= 1e-9,
                                      "%s: lr[%d][%d] = %.17g, PyTorch %.17g", name, i, g, nb_optim_get(r.o, g, "lr"),
                                      gl[2 * i + g]);
                        ck_assert_msg(rel_err(group_mom(r.o, g), gm[2 * i + g]) <= 1e-9, "%s: momentum[%d][%d]", name, i, g);
                    }
                }
                if (!strcmp(anneals[a], "linear")) ck_assert(nb_optim_get(r.o, 0, "lr") < 0); /* the extrapolation */
                ck_assert_int_eq(nb_optim_step(r.o), 0);
                ck_assert_int_ne(nb_sched_step(s), 0); /* one more is one too many */
                ck_assert_str_eq(nb_last_error(), "Tried to step 22 times. The specified number of total steps is 20");
                ck_assert_double_eq(nb_optim_get(r.o, 0, "lr"), gl[2 * T]);
                nb_sched_free(s);
                rig_free(&r);
            }
    const char *modes[] = {"triangular", "triangular2", "exp_range"};
    for (int m = 0; m < 3; m++)
        for (int adam = 0; adam < 2; adam++) {
            char name[64];
            snprintf(name, sizeof name, "full_cyclic_%s_%s", modes[m], adam ? "adam" : "sgd");
            rig r;
            rig_new(&r, adam ? ADAM : SGD);
            nb_cyclic_opts p = nb_cyclic_defaults();
            double base[2] = {0.01, 0.005}, top[2] = {0.1, 0.05};
            if (adam) {
                p.base_lr = 0.001;
                p.max_lr = 0.01;
                p.cycle_momentum = false;
            } else {
                p.base_lrs = base;
                p.n_base_lrs = 2;
                p.max_lrs = top;
                p.n_max_lrs = 2;
            }
            p.step_size_up = 4;
            p.step_size_down = 6;
            p.mode = modes[m];
            p.gamma = 0.9;
            nb_sched *s = nb_cyclic_lr(r.o, &p);
            ck_assert_msg(s, "%s: %s", name, nb_last_error());
            const double *gl = gold(name, "lr", 31, 2), *gm = gold(name, "mom", 31, 2);
            for (int i = 0; i < 31; i++) {
                if (i) ck_assert_msg(nb_sched_step(s) == 0, "%s step %d: %s", name, i, nb_last_error());
                for (int g = 0; g < 2; g++) {
                    ck_assert_msg(rel_err(nb_optim_get(r.o, g, "lr"), gl[2 * i + g]) <= 1e-9, "%s: lr[%d][%d] = %.17g, PyTorch %.17g", name, i, g, nb_optim_get(r.o, g, "lr"), gl[2 * i + g]);
                    ck_assert_msg(rel_err(group_mom(r.o, g), gm[2 * i + g]) <= 1e-9, "%s: momentum[%d][%d]", name, i, g);
                }
            }
            nb_sched_free(s);
            rig_free(&r);
        }
}
END_TEST

/* A step allocates nothing (nabla's allocations are counted through nb_set_allocator). */
static long nb_allocs;
static void *count_malloc(size_t n) {
    nb_allocs++;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n) {
    nb_allocs++;
    return realloc(p, n);
}

START_TEST(test_steps_do_not_allocate) {
    load_golden();
    for (int k = 0; k < NCASES; k++) {
        const sched_case *c = &cases[k];
        rig r;
        rig_new(&r, c->optim);
        nb_sched *s = c->make(r.o);
        ck_assert_ptr_nonnull(s);
        long before = nb_allocs;
        int failed = 0;
        for (int i = 1; i < c->steps; i++) failed |= drive(c, s, i);
        long n = nb_allocs - before;
        ck_assert_int_eq(failed, 0);
        ck_assert_msg(n == 0, "%s: %ld allocations in %d steps", c->name, n, c->steps - 1);
        nb_sched_free(s);
        rig_free(&r);
    }
}
END_TEST

/* PyTorch's recipe: CosineAnnealingLR until epoch 60, then SWALR (both built at the start). */
START_TEST(test_golden_swa_recipe) {
    load_golden();
    rig r;
    rig_new(&r, SGD);
    nb_sched *cos = nb_cosine_annealing_lr(r.o, 100, 0);
    nb_swalr_opts p = nb_swalr_defaults();
    p.swa_lr = 0.01;
    p.anneal_epochs = 10;
    nb_sched *swa = nb_swalr(r.o, &p);
    ck_assert_ptr_nonnull(cos);
    ck_assert_ptr_nonnull(swa);
    const double *gl = gold("swa_recipe", "lr", N, 2);
    for (int i = 0; i < N; i++) {
        if (i > 0) ck_assert_int_eq(nb_sched_step(i > 60 ? swa : cos), 0);
        for (int g = 0; g < 2; g++) ck_assert_msg(rel_err(nb_optim_get(r.o, g, "lr"), gl[2 * i + g]) <= 1e-9, "step %d", i);
    }
    nb_sched_free(cos);
    nb_sched_free(swa);
    rig_free(&r);
}
END_TEST

/* ---- state_dict: serialisable, and resume == uninterrupted -------------------------------- */
/* Write a dict as text ("name kind value..." lines, subs nested) and read it back: proves it
 * holds only plain named values, as a checkpoint file would. */
static void dict_write(FILE *f, const nb_sched_dict *sd) {
    fprintf(f, "dict %s %d %d\n", sd->type, sd->nvalues, sd->nsubs);
    for (int i = 0; i < sd->nvalues; i++) {
        const nb_value *v = &sd->values[i];
        ck_assert_msg(v->kind == NB_VALUE_NUMBER || v->kind == NB_VALUE_INT || v->kind == NB_VALUE_BOOL ||
                          v->kind == NB_VALUE_LIST || v->kind == NB_VALUE_STRING,
                      "%s.%s has kind %d", sd->type, v->name, (int)v->kind);
        fprintf(f, "%s %d", v->name, (int)v->kind);
        if (v->kind == NB_VALUE_LIST) {
            fprintf(f, " %d", v->len);
            for (int j = 0; j < v->len; j++) fprintf(f, " %.17g", nb_value_elems(v)[j]);
        } else if (v->kind == NB_VALUE_STRING) {
            ck_assert(strlen(v->str) > 0 && !strchr(v->str, ' '));
            fprintf(f, " %s", v->str);
        } else {
            fprintf(f, " %.17g", v->num);
        }
        fprintf(f, "\n");
    }
    for (int i = 0; i < sd->nsubs; i++) dict_write(f, &sd->subs[i]);
}

static void dict_read(FILE *f, nb_sched_dict *sd) {
    memset(sd, 0, sizeof *sd);
    ck_assert_int_eq(fscanf(f, " dict %31s %d %d", sd->type, &sd->nvalues, &sd->nsubs), 3);
    sd->values = calloc((size_t)sd->nvalues + 1, sizeof *sd->values);
    sd->subs = calloc((size_t)sd->nsubs + 1, sizeof *sd->subs);
    for (int i = 0; i < sd->nvalues; i++) {
        nb_value *v = &sd->values[i];
        int kind;
        ck_assert_int_eq(fscanf(f, " %31s %d", v->name, &kind), 2);
        v->kind = (nb_value_kind)kind;
        if (v->kind == NB_VALUE_LIST) {
            ck_assert_int_eq(fscanf(f, " %d", &v->len), 1);
            double *d = v->len > NB_VALUE_INLINE ? (v->list = calloc((size_t)v->len, sizeof(double))) : v->inl;
            for (int j = 0; j < v->len; j++) {
                char tok[64];
                ck_assert_int_eq(fscanf(f, " %63s", tok), 1);
                d[j] = strtod(tok, NULL);
            }
        } else if (v->kind == NB_VALUE_STRING) {
            ck_assert_int_eq(fscanf(f, " %31s", v->str), 1);
        } else {
            char tok[64];
            ck_assert_int_eq(fscanf(f, " %63s", tok), 1);
            v->num = strtod(tok, NULL); /* reads inf, -inf */
        }
    }
    for (int i = 0; i < sd->nsubs; i++) dict_read(f, &sd->subs[i]);
}

static void dict_release(nb_sched_dict *sd) { /* what dict_read allocated */
    for (int i = 0; i < sd->nvalues; i++)
        if (sd->values[i].kind == NB_VALUE_LIST && sd->values[i].len > NB_VALUE_INLINE) free(sd->values[i].list);
    for (int i = 0; i < sd->nsubs; i++) dict_release(&sd->subs[i]);
    free(sd->values);
    free(sd->subs);
}

START_TEST(test_state_dict_resume) {
    load_golden();
    const int ks[] = {1, 2, 13, 61, 100};
    for (int k = 0; k < NCASES; k++) {
        const sched_case *c = &cases[k];
        rig r;
        rig_new(&r, c->optim);
        nb_sched *s = NULL;
        double ref_lr[2 * N], ref_mom[2 * N], lr[2 * N], mom[2 * N];
        run_case(c, &r, &s, 0, c->steps, ref_lr, ref_mom);
        int64_t ref_last_epoch = nb_sched_last_epoch(s);
        nb_sched_free(s);
        rig_free(&r);
        for (int ki = 0; ki < 5; ki++) {
            int at = ks[ki]; /* values [0, at) before the save */
            if (at >= c->steps) continue;
            rig a, b;
            rig_new(&a, c->optim);
            nb_sched *sa = NULL, *sb = NULL;
            run_case(c, &a, &sa, 0, at, lr, mom);
            nb_optim_dict *od = nb_optim_state_dict(a.o);
            nb_sched_dict *sd = nb_sched_state_dict(sa);
            ck_assert_ptr_nonnull(od);
            ck_assert_ptr_nonnull(sd);
            char *buf = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&buf, &len);
            dict_write(f, sd);
            fclose(f);
            nb_sched_dict_free(sd);
            nb_sched_free(sa);
            rig_free(&a);
            nb_sched_dict back;
            f = fmemopen(buf, len, "r");
            dict_read(f, &back);
            fclose(f);
            free(buf);
            /* a fresh optimizer and schedule, then the saved states, then continue */
            rig_new(&b, c->optim);
            sb = c->make(b.o);
            ck_assert_ptr_nonnull(sb);
            ck_assert_int_eq(nb_optim_load_state_dict(b.o, od), 0);
            int rc = nb_sched_load_state_dict(sb, &back);
            ck_assert_msg(rc == 0, "%s: load: %s", c->name, nb_last_error());
            dict_release(&back);
            nb_optim_dict_free(od);
            for (int g = 0; g < 2; g++)
                ck_assert_msg(nb_sched_last_lr(sb, g) == ref_lr[2 * (at - 1) + g], "%s: last_lr after load", c->name);
            run_case(c, &b, &sb, at, c->steps, lr, mom);
            for (int i = 2 * at; i < 2 * c->steps; i++) {
                ck_assert_msg(lr[i] == ref_lr[i], "%s resumed after %d: lr[%d] %.17g != %.17g", c->name, at, i / 2,
                              lr[i], ref_lr[i]);
                ck_assert_msg(mom[i] == ref_mom[i], "%s resumed after %d: momentum[%d]", c->name, at, i / 2);
            }
            ck_assert_int_eq(nb_sched_last_epoch(sb), ref_last_epoch);
            nb_sched_free(sb);
            rig_free(&b);
        }
    }
}
END_TEST

/* OneCycleLR(last_epoch=k) on an optimizer restored from a run's state continues that run. */
START_TEST(test_onecycle_last_epoch_resume) {
    rig a, b;
    rig_new(&a, SGD);
    rig_new(&b, SGD);
    nb_sched *sa = mk_onecycle(a.o);
    for (int i = 0; i < 30; i++) ck_assert_int_eq(nb_sched_step(sa), 0);
    nb_optim_dict *od = nb_optim_state_dict(a.o);
    ck_assert_int_eq(nb_optim_load_state_dict(b.o, od), 0);
    nb_optim_dict_free(od);
    nb_onecycle_opts p = nb_onecycle_defaults();
    p.max_lrs = (double[]){0.1, 0.05};
    p.n_max_lrs = 2;
    p.total_steps = N;
    p.last_epoch = 30;
    nb_sched *sb = nb_onecycle_lr(b.o, &p); /* its initial step is step 31 */
    ck_assert_ptr_nonnull(sb);
    ck_assert_int_eq(nb_sched_step(sa), 0);
    for (int i = 0; i < 50; i++) {
        for (int g = 0; g < 2; g++) {
            ck_assert_double_eq(nb_optim_get(a.o, g, "lr"), nb_optim_get(b.o, g, "lr"));
            ck_assert_double_eq(nb_optim_get(a.o, g, "momentum"), nb_optim_get(b.o, g, "momentum"));
        }
        ck_assert_int_eq(nb_sched_step(sa), 0);
        ck_assert_int_eq(nb_sched_step(sb), 0);
    }
    nb_sched_free(sa);
    nb_sched_free(sb);
    rig_free(&a);
    rig_free(&b);
    /* without the earlier run's groups: PyTorch's KeyError message, optimizer unchanged */
    rig c;
    rig_new(&c, SGD);
    nb_clear_error();
    ck_assert_ptr_null(nb_onecycle_lr(c.o, &p));
    ck_assert_str_eq(nb_last_error(), "param 'initial_lr' is not specified in param_groups[0] when resuming an optimizer");
    assert_rig_unchanged(&c);
    rig_free(&c);
}
END_TEST

/* SequentialLR over a ChainedScheduler (PyTorch 2.x's recursive undo of the initial steps):
 * the warm-up runs as ConstantLR x ExponentialLR, then StepLR from its base lr; a resumed copy
 * continues identically. */
static nb_sched *mk_nested(nb_optim *o) {
    nb_sched *ch = nb_chained_scheduler((nb_sched *[]){nb_constant_lr(o, 0.1, 5), nb_exponential_lr(o, 0.9)}, 2);
    return nb_sequential_lr(o, (nb_sched *[]){ch, nb_step_lr(o, 4, 0.5)}, 2, (int64_t[]){8}, 1);
}

START_TEST(test_nested_containers) {
    sched_case c = {"nested", SGD, mk_nested, D_STEP, 30, false};
    rig r;
    rig_new(&r, SGD);
    nb_sched *s = NULL;
    double lr[60], mom[60], lr2[60];
    run_case(&c, &r, &s, 0, 30, lr, mom);
    for (int i = 0; i < 30; i++) {
        double want = i < 5 ? 0.01 * pow(0.9, i) : i < 8 ? 0.1 * pow(0.9, i) : 0.1 * pow(0.5, (i - 8) / 4);
        ck_assert_msg(fabs(lr[2 * i] - want) <= 1e-12 * want, "step %d: %.17g, want %.17g", i, lr[2 * i], want);
    }
    nb_sched_free(s);
    rig_free(&r);
    /* resume after 11 values */
    rig a, b;
    rig_new(&a, SGD);
    run_case(&c, &a, &s, 0, 11, lr2, mom);
    nb_optim_dict *od = nb_optim_state_dict(a.o);
    nb_sched_dict *sd = nb_sched_state_dict(s);
    ck_assert_int_eq(sd->nsubs, 2);
    ck_assert_int_eq(sd->subs[0].nsubs, 2);
    nb_sched_free(s);
    rig_free(&a);
    rig_new(&b, SGD);
    s = mk_nested(b.o);
    ck_assert_int_eq(nb_optim_load_state_dict(b.o, od), 0);
    ck_assert_int_eq(nb_sched_load_state_dict(s, sd), 0);
    run_case(&c, &b, &s, 11, 30, lr2, mom);
    for (int i = 22; i < 60; i++) ck_assert_double_eq(lr2[i], lr[i]);
    nb_optim_dict_free(od);
    nb_sched_dict_free(sd);
    nb_sched_free(s);
    rig_free(&b);
}
END_TEST

/* ---- validation: PyTorch's messages, and nothing changed ---------------------------------- */
#define FAILS(r, expr, msg)                                                                           \
    do {                                                                                              \
        nb_clear_error();                                                                             \
        nb_sched *s_ = (expr);                                                                        \
        ck_assert_msg(s_ == NULL, "%s should fail", #expr);                                           \
        ck_assert_str_eq(nb_last_error(), msg);                                                       \
        assert_rig_unchanged(r);                                                                      \
    } while (0)

START_TEST(test_validation_simple_schedules) {
    rig r;
    rig_new(&r, SGD);
    nb_optim *o = r.o;
    FAILS(&r, nb_step_lr(o, 0, 0.1), "StepLR: step_size must be a positive integer, got 0");
    FAILS(&r, nb_step_lr(o, 10, 0), "StepLR: gamma must be > 0, got 0.0");
    FAILS(&r, nb_step_lr(o, 10, -0.5), "StepLR: gamma must be > 0, got -0.5");
    FAILS(&r, nb_step_lr(NULL, 10, 0.5), "StepLR: optimizer is NULL");
    FAILS(&r, nb_multistep_lr(o, NULL, 0, 0.1), "MultiStepLR: milestones must not be empty");
    FAILS(&r, nb_multistep_lr(o, (int64_t[]){80, 30}, 2, 0.1), "MultiStepLR: milestones must be increasing, got 30 after 80");
    FAILS(&r, nb_multistep_lr(o, (int64_t[]){30, 80}, 2, 0), "MultiStepLR: gamma must be > 0, got 0.0");
    FAILS(&r, nb_constant_lr(o, 1.5, 5), "Constant multiplicative factor expected to be between 0 and 1.");
    FAILS(&r, nb_constant_lr(o, -0.1, 5), "Constant multiplicative factor expected to be between 0 and 1.");
    FAILS(&r, nb_constant_lr(o, 0.5, -1), "ConstantLR: total_iters must be >= 0, got -1");
    FAILS(&r, nb_linear_lr(o, 0, 1, 5), "Starting multiplicative factor expected to be greater than 0 and less or equal to 1.");
    FAILS(&r, nb_linear_lr(o, 1.5, 1, 5), "Starting multiplicative factor expected to be greater than 0 and less or equal to 1.");
    FAILS(&r, nb_linear_lr(o, 0.5, 1.5, 5), "Ending multiplicative factor expected to be between 0 and 1.");
    FAILS(&r, nb_linear_lr(o, 0.5, -0.1, 5), "Ending multiplicative factor expected to be between 0 and 1.");
    FAILS(&r, nb_linear_lr(o, 0.5, 1, 0), "LinearLR: total_iters must be a positive integer, got 0");
    FAILS(&r, nb_exponential_lr(o, 0), "ExponentialLR: gamma must be > 0, got 0.0");
    FAILS(&r, nb_exponential_lr(o, -1), "ExponentialLR: gamma must be > 0, got -1.0");
    FAILS(&r, nb_exponential_lr(o, INFINITY), "ExponentialLR: gamma must be > 0, got inf");
    FAILS(&r, nb_polynomial_lr(o, 0, 1), "PolynomialLR: total_iters must be a positive integer, got 0");
    FAILS(&r, nb_polynomial_lr(o, 5, -1), "PolynomialLR: power must be >= 0, got -1.0");
    FAILS(&r, nb_cosine_annealing_lr(o, 0, 0), "CosineAnnealingLR: T_max must be a positive integer, got 0");
    FAILS(&r, nb_cosine_annealing_warm_restarts(o, 0, 1, 0), "Expected positive integer T_0, but got 0");
    FAILS(&r, nb_cosine_annealing_warm_restarts(o, -5, 1, 0), "Expected positive integer T_0, but got -5");
    FAILS(&r, nb_cosine_annealing_warm_restarts(o, 10, 0, 0), "Expected integer T_mult >= 1, but got 0");
    FAILS(&r, nb_lambda_lr(o, NULL, NULL), "lr_lambda should be a function, but got NoneType");
    FAILS(&r, nb_multiplicative_lr(o, NULL, NULL), "lr_lambda should be a function, but got NoneType");
    rig_free(&r);
}
END_TEST

START_TEST(test_validation_onecycle_cyclic) {
    rig r;
    rig_new(&r, SGD);
    nb_optim *o = r.o;
    nb_onecycle_opts p = nb_onecycle_defaults();
    p.max_lr = 0.1;
    FAILS(&r, nb_onecycle_lr(o, &p), "You must define either total_steps OR (epochs AND steps_per_epoch)");
    p.epochs = 10;
    FAILS(&r, nb_onecycle_lr(o, &p), "You must define either total_steps OR (epochs AND steps_per_epoch)");
    p.steps_per_epoch = -1;
    FAILS(&r, nb_onecycle_lr(o, &p), "Expected positive integer steps_per_epoch, but got -1");
    p.epochs = 0;
    FAILS(&r, nb_onecycle_lr(o, &p), "Expected positive integer epochs, but got 0");
    p.total_steps = 0;
    FAILS(&r, nb_onecycle_lr(o, &p), "Expected positive integer total_steps, but got 0");
    p.total_steps = -3;
    FAILS(&r, nb_onecycle_lr(o, &p), "Expected positive integer total_steps, but got -3");
    p.total_steps = 100;
    p.pct_start = 1.5;
    FAILS(&r, nb_onecycle_lr(o, &p), "Expected float between 0 and 1 pct_start, but got 1.5");
    p.pct_start = -0.1;
    FAILS(&r, nb_onecycle_lr(o, &p), "Expected float between 0 and 1 pct_start, but got -0.1");
    p.pct_start = 0.3;
    p.anneal_strategy = "cosine";
    FAILS(&r, nb_onecycle_lr(o, &p), "anneal_strategy must by one of 'cos' or 'linear', instead got cosine");
    p.anneal_strategy = "cos";
    p.max_lrs = (double[]){0.1, 0.2, 0.3};
    p.n_max_lrs = 3;
    FAILS(&r, nb_onecycle_lr(o, &p), "expected 2 values for max_lr, got 3");
    p.max_lrs = NULL;
    p.n_max_lrs = 0;
    p.max_momentums = (double[]){0.9};
    p.n_max_momentums = 1;
    FAILS(&r, nb_onecycle_lr(o, &p), "expected 2 values for max_momentum, got 1");
    p.max_momentums = NULL;
    p.n_max_momentums = 0;
    p.max_lr = NAN;
    FAILS(&r, nb_onecycle_lr(o, &p), "OneCycleLR: max_lr is required");
    p.max_lr = 0.1;
    p.div_factor = 0;
    FAILS(&r, nb_onecycle_lr(o, &p), "OneCycleLR: div_factor and final_div_factor must be > 0, got 0.0 and 10000.0");
    p.div_factor = 25;
    p.max_momentum = -0.5; /* a schedule's write is not checked, as in PyTorch */
    nb_sched *neg = nb_onecycle_lr(o, &p);
    ck_assert_msg(neg, "%s", nb_last_error());
    ck_assert_double_eq(nb_optim_get(o, 0, "momentum"), -0.5000000000000001); /* PyTorch's value */
    nb_sched_free(neg);
    rig_free(&r);
    rig_new(&r, SGD);
    o = r.o;
    /* stepping past the end: PyTorch's message; the failed step changes nothing */
    p = nb_onecycle_defaults();
    p.max_lr = 0.1;
    p.total_steps = 10;
    nb_sched *s = nb_onecycle_lr(o, &p);
    for (int i = 0; i < 10; i++) ck_assert_int_eq(nb_sched_step(s), 0);
    double lr = nb_optim_get(o, 0, "lr"), m = nb_optim_get(o, 0, "momentum");
    nb_clear_error();
    ck_assert_int_ne(nb_sched_step(s), 0);
    ck_assert_str_eq(nb_last_error(), "Tried to step 12 times. The specified number of total steps is 10");
    ck_assert_int_eq(nb_sched_last_epoch(s), 10);
    ck_assert_double_eq(nb_optim_get(o, 0, "lr"), lr);
    ck_assert_double_eq(nb_optim_get(o, 0, "momentum"), m);
    nb_sched_free(s);
    rig_free(&r);

    rig_new(&r, SGD);
    o = r.o;
    nb_cyclic_opts c = nb_cyclic_defaults();
    FAILS(&r, nb_cyclic_lr(o, &c), "CyclicLR: base_lr and max_lr are required");
    c.base_lr = 0.01;
    c.max_lr = 0.1;
    c.mode = "triangle";
    FAILS(&r, nb_cyclic_lr(o, &c), "mode is invalid and scale_fn is None");
    c.mode = "triangular";
    c.base_lrs = (double[]){0.01};
    c.n_base_lrs = 1;
    FAILS(&r, nb_cyclic_lr(o, &c), "expected 2 values for base_lr, got 1");
    c.base_lrs = NULL;
    c.n_base_lrs = 0;
    c.max_momentums = (double[]){0.9, 0.9, 0.9};
    c.n_max_momentums = 3;
    FAILS(&r, nb_cyclic_lr(o, &c), "expected 2 values for max_momentum, got 3");
    c.max_momentums = NULL;
    c.n_max_momentums = 0;
    c.step_size_up = 0;
    FAILS(&r, nb_cyclic_lr(o, &c), "CyclicLR: step_size_up must be > 0 and step_size_down >= 0, got 0.0 and 0.0");
    c.step_size_up = 10;
    c.scale_fn = scale_sin;
    c.scale_mode = "epochs";
    FAILS(&r, nb_cyclic_lr(o, &c), "CyclicLR: scale_mode must be 'cycle' or 'iterations', got epochs");
    rig_free(&r);
}
END_TEST

START_TEST(test_validation_plateau_containers_swa) {
    rig r;
    rig_new(&r, SGD);
    nb_optim *o = r.o;
    nb_plateau_opts p = nb_plateau_defaults();
    p.factor = 1.0;
    FAILS(&r, nb_reduce_lr_on_plateau(o, &p), "Factor should be < 1.0.");
    p.factor = 0.1;
    p.mode = "avg";
    FAILS(&r, nb_reduce_lr_on_plateau(o, &p), "mode avg is unknown!");
    p.mode = "min";
    p.threshold_mode = "pct";
    FAILS(&r, nb_reduce_lr_on_plateau(o, &p), "threshold mode pct is unknown!");
    p.threshold_mode = "rel";
    p.min_lrs = (double[]){0, 0, 0};
    p.n_min_lrs = 3;
    FAILS(&r, nb_reduce_lr_on_plateau(o, &p), "expected 2 min_lrs, got 3");
    nb_sched *pl = nb_reduce_lr_on_plateau(o, NULL), *st = nb_step_lr(o, 10, 0.1);
    nb_clear_error();
    ck_assert_int_ne(nb_sched_step(pl), 0);
    ck_assert_str_eq(nb_last_error(), "ReduceLROnPlateau: step needs the metric (nb_sched_step_metric)");
    ck_assert_int_ne(nb_sched_step_metric(st, 1.0), 0);
    ck_assert_str_eq(nb_last_error(), "StepLR: step(metrics) is for ReduceLROnPlateau; use nb_sched_step");
    ck_assert_int_ne(nb_sched_step_epoch(st, 2.5), 0);
    ck_assert_str_eq(nb_last_error(), "StepLR: step(epoch) takes an integer epoch, got 2.5");
    ck_assert_int_eq(nb_sched_last_epoch(st), 0);
    nb_sched_free(st);
    nb_sched_free(pl);
    rig_free(&r);

    /* containers take ownership of their schedulers even when they fail (ASan checks leaks) */
    rig_new(&r, SGD);
    o = r.o;
    rig other;
    rig_new(&other, SGD);
    nb_clear_error();
    ck_assert_ptr_null(nb_sequential_lr(o, (nb_sched *[]){nb_step_lr(o, 5, 0.1), nb_exponential_lr(o, 0.9)}, 2,
                                        (int64_t[]){5, 10}, 2));
    ck_assert_str_eq(nb_last_error(), "Sequential Schedulers expects number of schedulers provided to be one more than "
                                      "the number of milestone points, but got number of schedulers 2 and the number "
                                      "of milestones to be equal to 2");
    ck_assert_ptr_null(nb_sequential_lr(o, (nb_sched *[]){nb_step_lr(o, 5, 0.1), nb_exponential_lr(other.o, 0.9)}, 2,
                                        (int64_t[]){5}, 1));
    ck_assert_str_eq(nb_last_error(), "Sequential Schedulers expects all schedulers to belong to the same optimizer, "
                                      "but got schedulers at index 1 to be different than the optimizer passed in.");
    ck_assert_ptr_null(nb_sequential_lr(o, (nb_sched *[]){nb_step_lr(o, 5, 0.1), nb_exponential_lr(o, 0.9),
                                                          nb_exponential_lr(o, 0.8)}, 3, (int64_t[]){10, 5}, 2));
    ck_assert_str_eq(nb_last_error(), "SequentialLR: milestones must be increasing");
    ck_assert_ptr_null(nb_sequential_lr(o, (nb_sched *[]){nb_step_lr(o, 5, 0.1), nb_reduce_lr_on_plateau(o, NULL)}, 2,
                                        (int64_t[]){5}, 1));
    ck_assert_str_eq(nb_last_error(), "SequentialLR does not support `ReduceLROnPlateau` scheduler as it requires "
                                      "additional kwargs to be specified when calling `step`, but got one at index 1 "
                                      "in the given schedulers sequence.");
    ck_assert_ptr_null(nb_sequential_lr(o, (nb_sched *[]){nb_step_lr(o, 5, 0.1), nb_exponential_lr(o, -1)}, 2,
                                        (int64_t[]){5}, 1));
    ck_assert_str_eq(nb_last_error(), "ExponentialLR: gamma must be > 0, got -1.0"); /* the sub's own error */
    ck_assert_ptr_null(nb_sequential_lr(o, NULL, 0, NULL, 0));
    ck_assert_str_eq(nb_last_error(), "SequentialLR expects at least one scheduler, but got no scheduler.");
    ck_assert_ptr_null(nb_chained_scheduler((nb_sched *[]){nb_step_lr(o, 5, 0.1), nb_exponential_lr(other.o, 0.9)}, 2));
    ck_assert_str_eq(nb_last_error(), "ChainedScheduler expects all schedulers to belong to the same optimizer, but got "
                                      "schedulers at index 0 and 1 to be different");
    ck_assert_ptr_null(nb_chained_scheduler(NULL, 0));
    ck_assert_str_eq(nb_last_error(), "ChainedScheduler expects at least one scheduler to be chained, but got no scheduler.");
    nb_sched *seq = mk_sequential(o);
    ck_assert_int_ne(nb_sched_step_epoch(seq, 3), 0);
    ck_assert_str_eq(nb_last_error(), "SequentialLR: step() takes no epoch");
    nb_sched_free(seq);
    rig_free(&other);
    rig_free(&r);

    rig_new(&r, SGD);
    o = r.o;
    nb_swalr_opts w = nb_swalr_defaults();
    FAILS(&r, nb_swalr(o, &w), "SWALR: swa_lr is required");
    w.swa_lr = 0.05;
    w.anneal_epochs = -1;
    FAILS(&r, nb_swalr(o, &w), "anneal_epochs must be equal or greater than 0, got -1");
    w.anneal_epochs = 10;
    w.anneal_strategy = "cosine";
    FAILS(&r, nb_swalr(o, &w), "anneal_strategy must by one of 'cos' or 'linear', instead got cosine");
    w.anneal_strategy = "cos";
    w.swa_lrs = (double[]){0.1, 0.2, 0.3};
    w.n_swa_lrs = 3;
    FAILS(&r, nb_swalr(o, &w), "swa_lr must have the same length as optimizer.param_groups: swa_lr has 3, "
                               "optimizer.param_groups has 2");
    nb_sched *cw = mk_cawr(o);
    nb_clear_error();
    ck_assert_int_ne(nb_sched_step_epoch(cw, -1), 0);
    ck_assert_str_eq(nb_last_error(), "Expected non-negative epoch, but got -1");
    ck_assert_int_ne(nb_sched_step_epoch(cw, -0.5), 0);
    ck_assert_str_eq(nb_last_error(), "Expected non-negative epoch, but got -0.5");
    ck_assert_int_eq(nb_sched_last_epoch(cw), 0);
    nb_sched_free(cw);
    nb_averaged_opts ao = nb_averaged_defaults();
    ao.kind = NB_AVG_EMA;
    ao.decay = 1.5;
    nb_clear_error();
    ck_assert_ptr_null(nb_averaged_new(r.p, 2, &ao));
    ck_assert_str_eq(nb_last_error(), "Invalid decay value 1.5 provided. Please provide a value in [0,1] range.");
    rig_free(&r);
}
END_TEST

/* ---- load_state_dict checks, rollback of failed steps and constructors ---------------------- */
static double lam_fails(int64_t e, int g, void *u) { (void)g; (void)u; return e == 5 ? -1.0 : 1.0; }

START_TEST(test_load_state_dict_checks) {
    rig r;
    rig_new(&r, SGD);
    nb_sched *st = nb_step_lr(r.o, 10, 0.5), *ex = nb_exponential_lr(r.o, 0.9), *cw = mk_cawr(r.o);
    for (int i = 0; i < 7; i++) ck_assert_int_eq(nb_sched_step(cw), 0);
    nb_sched_dict *sd = nb_sched_state_dict(st), *cd = nb_sched_state_dict(cw);
    nb_clear_error();
    ck_assert_int_ne(nb_sched_load_state_dict(ex, sd), 0);
    ck_assert_str_eq(nb_last_error(), "scheduler state_dict is for StepLR, not ExponentialLR");
    /* a bad value: nothing changes */
    for (int i = 0; i < cd->nvalues; i++)
        if (!strcmp(cd->values[i].name, "T_0")) cd->values[i].num = 0;
    nb_sched *cw2 = mk_cawr(r.o);
    ck_assert_int_ne(nb_sched_load_state_dict(cw2, cd), 0);
    ck_assert_str_eq(nb_last_error(), "Expected positive integer T_0, but got 0");
    ck_assert_int_eq(nb_sched_last_epoch(cw2), 0);
    /* a missing value */
    int nv = sd->nvalues;
    sd->nvalues = 3; /* drops _last_lr and the fields */
    ck_assert_int_ne(nb_sched_load_state_dict(st, sd), 0);
    ck_assert_str_eq(nb_last_error(), "StepLR state_dict: '_last_lr' is missing or has the wrong kind or length");
    sd->nvalues = nv;
    nb_sched_dict_free(sd);
    nb_sched_dict_free(cd);
    nb_sched_free(st);
    nb_sched_free(ex);
    nb_sched_free(cw);
    nb_sched_free(cw2);
    /* a cyclic schedule's state that cycles beta1 (built on Adam), loaded into one on SGD with
     * momentum, and the other way round: refused by name, nothing changes */
    rig a;
    rig_new(&a, ADAM);
    nb_sched *(*const mk[2])(nb_optim *) = {mk_cyclic, mk_onecycle};
    const char *who[2] = {"CyclicLR", "OneCycleLR"};
    for (int k = 0; k < 2; k++) {
        nb_sched *on_adam = mk[k](a.o), *on_sgd = mk[k](r.o);
        ck_assert_ptr_nonnull(on_adam);
        ck_assert_ptr_nonnull(on_sgd);
        ck_assert_int_eq(nb_sched_step(on_adam), 0);
        nb_sched_dict *from_adam = nb_sched_state_dict(on_adam), *from_sgd = nb_sched_state_dict(on_sgd);
        char want[96];
        snprintf(want, sizeof want, "%s: the state cycles beta1, but the optimizer has no betas", who[k]);
        ck_assert_int_ne(nb_sched_load_state_dict(on_sgd, from_adam), 0);
        ck_assert_str_eq(nb_last_error(), want);
        ck_assert_int_eq(nb_sched_last_epoch(on_sgd), 0);
        snprintf(want, sizeof want, "%s: the state cycles momentum, but the optimizer has betas", who[k]);
        ck_assert_int_ne(nb_sched_load_state_dict(on_adam, from_sgd), 0);
        ck_assert_str_eq(nb_last_error(), want);
        ck_assert_int_eq(nb_sched_last_epoch(on_adam), 1);
        nb_sched_dict_free(from_adam);
        nb_sched_dict_free(from_sgd);
        nb_sched_free(on_adam);
        nb_sched_free(on_sgd);
    }
    rig_free(&a);
    rig_free(&r);
}
END_TEST

START_TEST(test_failed_step_changes_nothing) {
    rig r;
    rig_new(&r, SGD);
    /* a schedule writes what it computes, as PyTorch's group['lr'] = lr, even where a user's
     * nb_optim_set is refused: LambdaLR with a negative factor at epoch 5 */
    nb_sched *s = nb_lambda_lr(r.o, lam_fails, NULL);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(nb_sched_step(s), 0);
    ck_assert_double_eq(nb_optim_get(r.o, 0, "lr"), -0.1);
    ck_assert_double_eq(nb_sched_last_lr(s, 1), -0.05);
    ck_assert_int_eq(nb_optim_set(r.o, 0, "lr", -0.1), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "Invalid learning rate: -0.1");
    ck_assert_int_eq(nb_optim_step(r.o), 0); /* and the optimizer steps with it, as PyTorch's */
    nb_sched_free(s);
    rig_free(&r);

    /* ChainedScheduler: the first scheduler's step is undone when the second one fails
     * (OneCycleLR stepped past its total_steps) */
    rig_new(&r, SGD);
    nb_onecycle_opts p = nb_onecycle_defaults();
    p.max_lr = 0.1;
    p.total_steps = 4;
    nb_sched *ch = nb_chained_scheduler((nb_sched *[]){nb_exponential_lr(r.o, 0.5), nb_onecycle_lr(r.o, &p)}, 2);
    ck_assert_ptr_nonnull(ch);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(nb_sched_step(ch), 0);
    double lr0 = nb_optim_get(r.o, 0, "lr"), m0 = nb_optim_get(r.o, 0, "momentum");
    nb_sched_dict *before = nb_sched_state_dict(ch);
    ck_assert_int_ne(nb_sched_step(ch), 0);
    ck_assert_str_eq(nb_last_error(), "Tried to step 6 times. The specified number of total steps is 4");
    ck_assert_double_eq(nb_optim_get(r.o, 0, "lr"), lr0);
    ck_assert_double_eq(nb_optim_get(r.o, 0, "momentum"), m0);
    nb_sched_dict *after = nb_sched_state_dict(ch);
    ck_assert_int_eq(after->nsubs, 2);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < before->subs[k].nvalues; i++) {
            const nb_value *a = &before->subs[k].values[i], *b = &after->subs[k].values[i];
            ck_assert_str_eq(a->name, b->name);
            ck_assert_msg(a->num == b->num, "sub %d %s changed", k, a->name);
        }
    nb_sched_dict_free(before);
    nb_sched_dict_free(after);
    nb_sched_free(ch);
    rig_free(&r);

    /* a constructor whose first step fails leaves the optimizer as it was (PyTorch leaves the
     * keys it added and the momentum it wrote) */
    rig_new(&r, SGD);
    p = nb_onecycle_defaults();
    p.max_lr = 0.1;
    p.total_steps = 10;
    p.pct_start = 0.1; /* the first phase ends at step 0: PyTorch's ZeroDivisionError */
    nb_clear_error();
    ck_assert_ptr_null(nb_onecycle_lr(r.o, &p));
    ck_assert_str_eq(nb_last_error(), "OneCycleLR: float division by zero");
    assert_rig_unchanged(&r);
    rig_free(&r);
}
END_TEST

/* initial_lr already in a group is kept (setdefault), last_epoch counts, base_lrs from it */
START_TEST(test_initial_lr_and_counters) {
    rig r;
    rig_new(&r, SGD);
    nb_value init = nb_num("initial_lr", 0.2);
    ck_assert_int_eq(nb_optim_put(r.o, 0, &init), 0);
    nb_sched *s = nb_step_lr(r.o, 3, 0.5);
    ck_assert_int_eq(nb_sched_num_groups(s), 2);
    ck_assert_str_eq(nb_sched_type(s), "StepLR");
    ck_assert_ptr_eq(nb_sched_optimizer(s), r.o);
    ck_assert_int_eq(nb_sched_last_epoch(s), 0);
    ck_assert_double_eq(nb_sched_last_lr(s, 0), 0.1);
    ck_assert(isnan(nb_sched_last_lr(s, 2)));
    ck_assert_double_eq(nb_optim_get(r.o, 1, "initial_lr"), 0.05);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(nb_sched_step(s), 0);
    ck_assert_int_eq(nb_sched_last_epoch(s), 3);
    ck_assert_double_eq(nb_sched_last_lr(s, 0), 0.05);
    ck_assert_int_eq(nb_sched_step_epoch(s, 4), 0); /* closed form from base_lr = initial_lr 0.2 */
    ck_assert_double_eq(nb_sched_last_lr(s, 0), 0.1);
    ck_assert_double_eq(nb_sched_last_lr(s, 1), 0.025);
    nb_sched_free(s);
    nb_sched_free(NULL);
    nb_sched_dict_free(NULL);
    ck_assert_ptr_null(nb_sched_state_dict(NULL));
    rig_free(&r);
}
END_TEST

/* ---- the averaged copy: AveragedModel with SWA and EMA averaging ------------------------- */
static void set_from_gold(nb_tensor *t, const char *key) {
    const gold_entry *e = golden_get(G, key);
    ck_assert_int_eq(e->numel, t->numel);
    memcpy(nb_f32(t), e->data, sizeof(float) * (size_t)t->numel);
}

START_TEST(test_averaged_golden) {
    load_golden();
    const char *names[] = {"swa", "ema", "ema_low"};
    double decays[] = {0, 0.9, 0.3};
    double worst = 0;
    for (int v = 0; v < 3; v++) {
        nb_tensor *p[2] = {nb_zeros(NULL, 1, (int64_t[]){5}), nb_zeros(NULL, 2, (int64_t[]){2, 3})};
        set_from_gold(p[0], "avg.p0.0");
        set_from_gold(p[1], "avg.p1.0");
        nb_averaged_opts o = nb_averaged_defaults();
        if (v) {
            o.kind = NB_AVG_EMA;
            o.decay = decays[v];
        }
        nb_averaged *a = nb_averaged_new(p, 2, &o);
        ck_assert_ptr_nonnull(a);
        for (int k = 0; k < 12; k++) {
            char key[64];
            snprintf(key, sizeof key, "avg.p0.%d", k);
            set_from_gold(p[0], key);
            snprintf(key, sizeof key, "avg.p1.%d", k);
            set_from_gold(p[1], key);
            ck_assert_int_eq(nb_averaged_update(a, p, 2), 0);
            for (int i = 0; i < 2; i++) {
                snprintf(key, sizeof key, "avg.%s.%d.%d", names[v], i, k);
                const gold_entry *e = golden_get(G, key);
                assert_close(key, nb_f32(nb_averaged_tensor(a, i)), e->data, e->numel, 0, 0); /* bit-exact */
                double w = max_rel_err(nb_f32(nb_averaged_tensor(a, i)), e->data, e->numel, 1e-3, NULL);
                if (w > worst) worst = w;
            }
        }
        ck_assert_int_eq(nb_averaged_count(a), 12);
        /* swap twice is the identity; once puts the average into the tensors */
        float before = nb_f32(p[0])[0], avg = nb_f32(nb_averaged_tensor(a, 0))[0];
        ck_assert_int_eq(nb_averaged_swap(a, p, 2), 0);
        ck_assert_float_eq(nb_f32(p[0])[0], avg);
        ck_assert_int_eq(nb_averaged_swap(a, p, 2), 0);
        ck_assert_float_eq(nb_f32(p[0])[0], before);
        ck_assert_int_eq(nb_averaged_copy_to(a, p, 2), 0);
        ck_assert_float_eq(nb_f32(p[0])[0], avg);
        nb_tensor *wrong = nb_zeros(NULL, 1, (int64_t[]){4});
        nb_clear_error();
        ck_assert_int_ne(nb_averaged_update(a, (nb_tensor *[]){wrong, p[1]}, 2), 0);
        ck_assert_str_eq(nb_last_error(), "averaged: tensor 0 has shape [4], the averaged copy has [5]");
        ck_assert_int_eq(nb_averaged_count(a), 12);
        nb_tensor_free(wrong);
        nb_averaged_free(a);
        nb_tensor_free(p[0]);
        nb_tensor_free(p[1]);
    }
    printf("averaged golden: max rel err %.3g\n", worst);
}
END_TEST

/* state_dict / load_state_dict of the averaged copy: an exact resume, and every check refuses
 * without changing anything. */
static bool averaged_same(const nb_averaged *a, const nb_averaged *b) {
    if (nb_averaged_count(a) != nb_averaged_count(b) || nb_averaged_num(a) != nb_averaged_num(b)) return false;
    for (int i = 0; i < nb_averaged_num(a); i++)
        if (memcmp(nb_averaged_tensor(a, i)->data, nb_averaged_tensor(b, i)->data,
                   sizeof(float) * (size_t)nb_averaged_tensor(a, i)->numel))
            return false;
    return true;
}

START_TEST(test_averaged_state_dict) {
    nb_rng r;
    nb_rng_seed(&r, 9);
    nb_tensor *p[2] = {nb_zeros(NULL, 1, (int64_t[]){5}), nb_zeros(NULL, 2, (int64_t[]){2, 3})};
    for (int kind = 0; kind < 2; kind++) {
        nb_averaged_opts o = nb_averaged_defaults();
        if (kind) {
            o.kind = NB_AVG_EMA;
            o.decay = 0.75;
        }
        nb_averaged *a = nb_averaged_new(p, 2, &o), *b = nb_averaged_new(p, 2, &o), *c = nb_averaged_new(p, 2, &o);
        /* a: 8 updates; b: 5, then a's state after 5 loaded into c, 3 more each */
        nb_averaged_dict *mid = NULL;
        for (int k = 0; k < 8; k++) {
            for (int i = 0; i < 2; i++)
                for (int64_t j = 0; j < p[i]->numel; j++) nb_f32(p[i])[j] = (float)nb_rng_normal(&r);
            ck_assert_int_eq(nb_averaged_update(a, p, 2), 0);
            if (k < 5) ck_assert_int_eq(nb_averaged_update(b, p, 2), 0);
            else ck_assert_int_eq(nb_averaged_update(c, p, 2), 0);
            if (k == 4) {
                mid = nb_averaged_state_dict(b);
                ck_assert_ptr_nonnull(mid);
                ck_assert_int_eq(mid->n_averaged, 5);
                ck_assert_int_eq(mid->kind, o.kind);
                ck_assert(kind ? mid->decay == 0.75 : isnan(mid->decay));
                ck_assert_int_eq(nb_averaged_load_state_dict(c, mid), 0);
                ck_assert(averaged_same(b, c));
            }
        }
        ck_assert(averaged_same(a, c)); /* bit for bit */
        /* refusals: c must not change */
        nb_averaged_dict *keep = nb_averaged_state_dict(c);
        nb_averaged_opts other = o;
        other.kind = kind ? NB_AVG_SWA : NB_AVG_EMA;
        other.decay = 0.5;
        nb_averaged *d = nb_averaged_new(p, 2, &other);
        nb_clear_error();
        ck_assert_int_eq(nb_averaged_load_state_dict(d, mid), NB_EINVAL);
        ck_assert_str_eq(nb_last_error(), kind ? "averaged: the state is for EMA averaging, this averaged copy does SWA"
                                               : "averaged: the state is for SWA averaging, this averaged copy does EMA");
        if (kind) {
            mid->decay = 0.7;
            ck_assert_int_eq(nb_averaged_load_state_dict(c, mid), NB_EINVAL);
            ck_assert_str_eq(nb_last_error(), "averaged: the state is for EMA decay 0.7, this averaged copy has decay 0.75");
            mid->decay = 0.75;
        }
        mid->n_averaged = -1;
        ck_assert_int_eq(nb_averaged_load_state_dict(c, mid), NB_EINVAL);
        ck_assert_str_eq(nb_last_error(), "averaged: n_averaged must be >= 0, got -1");
        mid->n_averaged = 5;
        mid->n = 1;
        ck_assert_int_eq(nb_averaged_load_state_dict(c, mid), NB_EINVAL);
        ck_assert_str_eq(nb_last_error(), "averaged: the state has 1 tensors, the averaged copy has 2");
        mid->n = 2;
        nb_tensor *t1 = mid->tensors[1], *wrong = nb_zeros(NULL, 2, (int64_t[]){3, 2});
        mid->tensors[1] = wrong;
        nb_f32(mid->tensors[0])[0] = 123.0f; /* tensor 0 fine, tensor 1 wrong: nothing copied */
        ck_assert_int_eq(nb_averaged_load_state_dict(c, mid), NB_ESHAPE);
        ck_assert_str_eq(nb_last_error(), "averaged: state tensor 1 has shape [3, 2], the averaged copy has [2, 3]");
        mid->tensors[1] = nb_empty(NULL, NB_INT32, 2, (int64_t[]){2, 3});
        ck_assert_int_eq(nb_averaged_load_state_dict(c, mid), NB_EINVAL);
        ck_assert_str_eq(nb_last_error(), "averaged: state tensor 1 must be float32, got int32");
        nb_tensor_free(mid->tensors[1]);
        mid->tensors[1] = t1;
        nb_tensor_free(wrong);
        ck_assert_int_eq(nb_averaged_load_state_dict(NULL, mid), NB_EINVAL);
        ck_assert_int_eq(nb_averaged_load_state_dict(c, NULL), NB_EINVAL);
        ck_assert_ptr_null(nb_averaged_state_dict(NULL));
        nb_averaged *check = nb_averaged_new(p, 2, &o);
        ck_assert_int_eq(nb_averaged_load_state_dict(check, keep), 0);
        ck_assert(averaged_same(check, c)); /* c unchanged by every refusal */
        ck_assert(averaged_same(a, c));
        nb_averaged_free(check);
        nb_averaged_dict_free(keep);
        nb_averaged_dict_free(mid);
        nb_averaged_dict_free(NULL);
        nb_averaged_free(a);
        nb_averaged_free(b);
        nb_averaged_free(c);
        nb_averaged_free(d);
    }
    nb_tensor_free(p[0]);
    nb_tensor_free(p[1]);
}
END_TEST

/* ---- nabla lr-plot: the SVG is well-formed XML, one point per step, values = PyTorch ------ */
static void check_plot(const char *golden_name, char *const extra[]) {
    load_golden();
    const char *dir = temp_dir();
    char svg[4200], csv[4200];
    snprintf(svg, sizeof svg, "%s/plot.svg", dir);
    snprintf(csv, sizeof csv, "%s/plot.csv", dir);
    char *argv[40] = {NB_BUILD_DIR "/nabla", "lr-plot", "--optim", "sgd", "--lr", "0.1", "--steps", "100",
                      "--out", svg, "--csv", csv};
    int argc = 12;
    for (int i = 0; extra[i]; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nabla lr-plot failed (status %d)", status);
    const double *gl = gold(golden_name, "lr", 100, 1);

    char *text = slurp_file(svg);
    const char *bad = xml_check(text);
    ck_assert_msg(bad == NULL, "%s: not well-formed near: %.40s", svg, bad);
    ck_assert(strstr(text, "<svg xmlns=\"http://www.w3.org/2000/svg\"") != NULL);
    svg_line *l;
    ck_assert_int_eq(svg_lines(text, &l), 1); /* one line: the schedule */
    ck_assert_int_eq(l->n, 100);
    for (int i = 0; i < 100; i++) {
        ck_assert_msg(fabs(l->x[i] - i) <= l->xres, "%s: point %d is at step %.9g", golden_name, i, l->x[i]);
        ck_assert_msg(fabs(l->y[i] - gl[i]) <= l->yres, "%s: point %d is lr %.9g, want %.9g (rounding %.3g)",
                      golden_name, i, l->y[i], gl[i], l->yres);
    }
    svg_lines_free(l, 1);
    free(text);

    text = slurp_file(csv);
    char *line = strtok(text, "\n");
    ck_assert_str_eq(line, "step,lr,momentum");
    for (int i = 0; i < 100; i++) {
        line = strtok(NULL, "\n");
        ck_assert_ptr_nonnull(line);
        char *end;
        ck_assert_int_eq(strtol(line, &end, 10), i);
        double lr = strtod(end + 1, NULL);
        ck_assert_msg(rel_err(lr, gl[i]) <= 1e-9, "%s csv step %d: %.17g vs %.17g", golden_name, i, lr, gl[i]);
    }
    ck_assert_ptr_null(strtok(NULL, "\n"));
    free(text);
    unlink(svg);
    unlink(csv);
    rmdir(dir);
}

START_TEST(test_lr_plot_onecycle) {
    check_plot("plot_onecycle", (char *[]){"--sched", "onecycle", "--max-lr", "0.1", NULL});
}
END_TEST

START_TEST(test_lr_plot_cosine_restarts) {
    check_plot("plot_cawr", (char *[]){"--sched", "cosine-restarts", "--T-0", "10", "--T-mult", "2", NULL});
}
END_TEST

START_TEST(test_xml_checker) { /* the checker itself rejects what it should */
    ck_assert_ptr_null(xml_check("<a x=\"1\"><b/>t &amp; u</a>"));
    ck_assert_ptr_nonnull(xml_check("<a><b></a></b>"));
    ck_assert_ptr_nonnull(xml_check("<a x=1></a>"));
    ck_assert_ptr_nonnull(xml_check("<a>x & y</a>"));
    ck_assert_ptr_nonnull(xml_check("<a></a><b></b>"));
    ck_assert_ptr_nonnull(xml_check("<a>"));
}
END_TEST

static void free_golden(void) {
    golden_free(G);
    G = NULL;
}

int main(void) {
    if (nb_set_allocator(count_malloc, count_realloc, free)) return 2;
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("sched");
    tcase_add_checked_fixture(tc, NULL, free_golden);
    tcase_add_test(tc, test_golden_lr_sequences);
    tcase_add_test(tc, test_by_name_sequences);
    tcase_add_test(tc, test_full_loops);
    tcase_add_test(tc, test_by_name_errors);
    tcase_add_test(tc, test_golden_swa_recipe);
    tcase_add_test(tc, test_steps_do_not_allocate);
    tcase_add_test(tc, test_state_dict_resume);
    tcase_add_test(tc, test_onecycle_last_epoch_resume);
    tcase_add_test(tc, test_nested_containers);
    tcase_add_test(tc, test_validation_simple_schedules);
    tcase_add_test(tc, test_validation_onecycle_cyclic);
    tcase_add_test(tc, test_validation_plateau_containers_swa);
    tcase_add_test(tc, test_load_state_dict_checks);
    tcase_add_test(tc, test_failed_step_changes_nothing);
    tcase_add_test(tc, test_initial_lr_and_counters);
    tcase_add_test(tc, test_averaged_golden);
    tcase_add_test(tc, test_averaged_state_dict);
    tcase_add_test(tc, test_lr_plot_onecycle);
    tcase_add_test(tc, test_lr_plot_cosine_restarts);
    tcase_add_test(tc, test_xml_checker);
    suite_add_tcase(s, tc);
    int failed = run_suite(s);
    golden_free(G);
    return failed ? 1 : 0;
}
