/* optim_cli.c - `--optim NAME` (every torch.optim optimizer) and its options as flags.
 *
 * Each flag names the optimizers it applies to; giving it to another one is an error (as an
 * unexpected keyword argument is in PyTorch). Unset options keep PyTorch's defaults, except the
 * CLI's SGD recipe: lr 0.1, momentum 0.9. LBFGS re-evaluates the current batch through a closure
 * (forward, loss, backward, clipping) up to max_eval times per batch. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

enum { SGD = 1 << 0, ADAM = 1 << 1, ADAMW = 1 << 2, RMSPROP = 1 << 3, ADAGRAD = 1 << 4,
       ADADELTA = 1 << 5, ADAMAX = 1 << 6, NADAM = 1 << 7, RADAM = 1 << 8, ASGD = 1 << 9,
       RPROP = 1 << 10, LBFGS = 1 << 11, ADAFACTOR = 1 << 12, ALL = (1 << 13) - 1 };

static const struct {
    const char *name;
    int bit;
} algos[] = {{"sgd", SGD},         {"adam", ADAM},     {"adamw", ADAMW},   {"rmsprop", RMSPROP},
             {"adagrad", ADAGRAD}, {"adadelta", ADADELTA}, {"adamax", ADAMAX}, {"nadam", NADAM},
             {"radam", RADAM},     {"asgd", ASGD},     {"rprop", RPROP},   {"lbfgs", LBFGS},
             {"adafactor", ADAFACTOR}};

static const char *name = "sgd";
static double lr = NAN, momentum = NAN, dampening = NAN, weight_decay = NAN, eps = NAN;
static const char *eps_arg = NULL;
static double alpha = NAN, lr_decay = NAN, init_acc = NAN, rho = NAN, momentum_decay = NAN;
static double lambd = NAN, t0 = NAN, tol_grad = NAN, tol_change = NAN, beta2_decay = NAN, dclip = NAN;
static double clip = 0, clip_norm = 2.0, clip_value = 0;
static long max_iter = -1, max_eval = -1, history = -1; /* -1: PyTorch's default */
static const char *betas = NULL, *etas = NULL, *step_sizes = NULL, *line_search = NULL;
static bool nesterov, maximize, amsgrad, centered, decoupled;

/* flag -> the optimizers it applies to. A flag counts as set when its value differs from
 * "unset" (NAN, -1, NULL, false), not when it merely appears: checkpoints store and replay
 * every flag with its value. */
typedef struct opt_flag {
    arg_spec spec;
    int applies;
} opt_flag;

#define D(n, dst, mask, help) {{n, ARG_DOUBLE, dst, help, NULL}, mask}
#define I(n, dst, mask, help) {{n, ARG_INT, dst, help, NULL}, mask}
#define S(n, dst, mask, help) {{n, ARG_STRING, dst, help, NULL}, mask}
#define F(n, dst, mask, help) {{n, ARG_FLAG, dst, help, NULL}, mask}
static opt_flag flags[] = {
    S("optim", &name, ALL, "sgd | adam | adamw | rmsprop | adagrad | adadelta | adamax | nadam | "
                           "radam | asgd | rprop | lbfgs | adafactor (default sgd)"),
    D("lr", &lr, ALL, "learning rate (default: sgd 0.1, otherwise PyTorch's default)"),
    D("momentum", &momentum, SGD | RMSPROP, "momentum (sgd default 0.9, rmsprop 0)"),
    D("dampening", &dampening, SGD, "SGD dampening (0)"),
    F("nesterov", &nesterov, SGD, "SGD Nesterov momentum"),
    D("weight-decay", &weight_decay, ALL & ~(RPROP | LBFGS),
      "weight decay (L2; decoupled for adamw, adafactor and --decoupled-weight-decay)"),
    F("maximize", &maximize, ALL & ~LBFGS, "maximize the objective"),
    S("betas", &betas, ADAM | ADAMW | ADAMAX | NADAM | RADAM, "B1,B2 (0.9,0.999)"),
    S("eps", &eps_arg, ALL & ~(SGD | ASGD | RPROP | LBFGS),
      "epsilon (1e-8; adagrad 1e-10, adadelta 1e-6); adafactor EPS1,EPS2 (none,1e-3)"),
    F("amsgrad", &amsgrad, ADAM | ADAMW, "AMSGrad variant"),
    D("alpha", &alpha, RMSPROP | ASGD, "rmsprop smoothing (0.99); asgd eta power (0.75)"),
    F("centered", &centered, RMSPROP, "centered RMSprop"),
    D("lr-decay", &lr_decay, ADAGRAD, "Adagrad lr decay (0)"),
    D("initial-accumulator-value", &init_acc, ADAGRAD, "Adagrad initial accumulator (0)"),
    D("rho", &rho, ADADELTA, "Adadelta rho (0.9)"),
    D("momentum-decay", &momentum_decay, NADAM, "NAdam momentum decay (4e-3)"),
    F("decoupled-weight-decay", &decoupled, NADAM | RADAM, "NAdamW / RAdamW weight decay"),
    D("lambd", &lambd, ASGD, "ASGD decay term (1e-4)"),
    D("t0", &t0, ASGD, "ASGD point where averaging starts (1e6)"),
    S("etas", &etas, RPROP, "ETA_MINUS,ETA_PLUS (0.5,1.2)"),
    S("step-sizes", &step_sizes, RPROP, "MIN,MAX Rprop step sizes (1e-6,50)"),
    I("max-iter", &max_iter, LBFGS, "LBFGS iterations per batch (20)"),
    I("max-eval", &max_eval, LBFGS, "LBFGS closure evaluations per batch (max-iter * 5 / 4)"),
    D("tolerance-grad", &tol_grad, LBFGS, "LBFGS first-order optimality tolerance (1e-7)"),
    D("tolerance-change", &tol_change, LBFGS, "LBFGS loss/parameter change tolerance (1e-9)"),
    I("history-size", &history, LBFGS, "LBFGS history (100)"),
    S("line-search", &line_search, LBFGS, "none | strong_wolfe (none)"),
    D("beta2-decay", &beta2_decay, ADAFACTOR, "Adafactor beta2 decay rate (-0.8)"),
    D("d", &dclip, ADAFACTOR, "Adafactor update clipping threshold (1.0)"),
    D("clip", &clip, ALL, "clip_grad_norm_ max norm before each step (0: off)"),
    D("clip-norm-type", &clip_norm, ALL, "its norm type: 2, 1, inf or any p > 0 (2)"),
    D("clip-value", &clip_value, ALL, "clip_grad_value_ before each step (0: off)"),
};
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))

void optim_cli_flags(cli_flags *f) {
    for (int i = 0; i < NFLAGS; i++) cli_add(f, flags[i].spec);
}

const char *optim_cli_name(void) { return name; }

static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    nb_clear_error(); /* the message is printed: train.c must not print another */
    return -1;
}

static bool is_set(const arg_spec *s) {
    switch (s->kind) {
    case ARG_DOUBLE: return !isnan(*(double *)s->dst);
    case ARG_INT: return *(long *)s->dst != -1;
    case ARG_STRING: return *(const char **)s->dst != NULL;
    case ARG_FLAG: return *(bool *)s->dst;
    }
    return false;
}

/* "a,b" into two doubles ("none" allowed for the first when none_ok: NAN). */
static int pair(const char *flag, const char *s, double *a, double *b, bool none_ok) {
    double v[2];
    if (none_ok && !strncmp(s, "none,", 5)) {
        *a = NAN;
        if (args_list(s + 5, v, 1) != 1) return fail("--%s expects X,Y (got '%s')", flag, s);
        *b = v[0];
        return 0;
    }
    if (args_list(s, v, 2) != 2) return fail("--%s expects X,Y (got '%s')", flag, s);
    *a = v[0];
    *b = v[1];
    return 0;
}

/* The --optim algorithm's bit, or 0 (printed) for an unknown name. */
static int algo_bit(void) {
    for (size_t k = 0; k < sizeof algos / sizeof algos[0]; k++)
        if (!strcmp(name, algos[k].name)) return algos[k].bit;
    fail("unknown optimizer '%s' (sgd, adam, adamw, rmsprop, adagrad, adadelta, adamax, "
         "nadam, radam, asgd, rprop, lbfgs, adafactor)", name);
    return 0;
}

int optim_cli_check(void) {
    int bit = algo_bit();
    double a, b;
    if (!bit || (betas && pair("betas", betas, &a, &b, false)) ||
        (etas && pair("etas", etas, &a, &b, false)) ||
        (step_sizes && pair("step-sizes", step_sizes, &a, &b, false)) ||
        (eps_arg && bit == ADAFACTOR && pair("eps", eps_arg, &a, &b, true)))
        return 2;
    if (eps_arg && bit != ADAFACTOR && args_list(eps_arg, &a, 1) != 1) {
        fail("invalid value '%s' for --eps (expected a number)", eps_arg);
        return 2;
    }
    return 0;
}

#define SET(field, v) do { if (!isnan(v)) o.field = (v); } while (0)

nb_optim *optim_cli_build(nb_tensor *const *params, int n) {
    if (optim_cli_check()) return NULL; /* below, the lists parse */
    int bit = algo_bit();
    for (int i = 0; i < NFLAGS; i++)
        if (!(flags[i].applies & bit) && is_set(&flags[i].spec)) {
            fail("--%s does not apply to %s", flags[i].spec.name, name);
            return NULL;
        }
    if (!(clip_norm > 0)) {
        fail("--clip-norm-type must be > 0");
        return NULL;
    }
    double b1 = NAN, b2 = NAN, e1 = NAN, e2 = NAN;
    if (betas) pair("betas", betas, &b1, &b2, false);
    if (eps_arg && bit != ADAFACTOR) args_list(eps_arg, &eps, 1);
    switch (bit) {
    case SGD: {
        nb_sgd_opts o = nb_sgd_defaults();
        o.lr = isnan(lr) ? 0.1 : lr;
        o.momentum = isnan(momentum) ? 0.9 : momentum;
        SET(dampening, dampening);
        SET(weight_decay, weight_decay);
        o.nesterov = nesterov;
        o.maximize = maximize;
        return nb_sgd(params, n, &o);
    }
    case ADAM: {
        nb_adam_opts o = nb_adam_defaults();
        SET(lr, lr); SET(beta1, b1); SET(beta2, b2); SET(eps, eps); SET(weight_decay, weight_decay);
        o.amsgrad = amsgrad;
        o.maximize = maximize;
        return nb_adam(params, n, &o);
    }
    case ADAMW: {
        nb_adamw_opts o = nb_adamw_defaults();
        SET(lr, lr); SET(beta1, b1); SET(beta2, b2); SET(eps, eps); SET(weight_decay, weight_decay);
        o.amsgrad = amsgrad;
        o.maximize = maximize;
        return nb_adamw(params, n, &o);
    }
    case RMSPROP: {
        nb_rmsprop_opts o = nb_rmsprop_defaults();
        SET(lr, lr); SET(alpha, alpha); SET(eps, eps); SET(weight_decay, weight_decay);
        SET(momentum, momentum);
        o.centered = centered;
        o.maximize = maximize;
        return nb_rmsprop(params, n, &o);
    }
    case ADAGRAD: {
        nb_adagrad_opts o = nb_adagrad_defaults();
        SET(lr, lr); SET(lr_decay, lr_decay); SET(weight_decay, weight_decay);
        SET(initial_accumulator_value, init_acc); SET(eps, eps);
        o.maximize = maximize;
        return nb_adagrad(params, n, &o);
    }
    case ADADELTA: {
        nb_adadelta_opts o = nb_adadelta_defaults();
        SET(lr, lr); SET(rho, rho); SET(eps, eps); SET(weight_decay, weight_decay);
        o.maximize = maximize;
        return nb_adadelta(params, n, &o);
    }
    case ADAMAX: {
        nb_adamax_opts o = nb_adamax_defaults();
        SET(lr, lr); SET(beta1, b1); SET(beta2, b2); SET(eps, eps); SET(weight_decay, weight_decay);
        o.maximize = maximize;
        return nb_adamax(params, n, &o);
    }
    case NADAM: {
        nb_nadam_opts o = nb_nadam_defaults();
        SET(lr, lr); SET(beta1, b1); SET(beta2, b2); SET(eps, eps); SET(weight_decay, weight_decay);
        SET(momentum_decay, momentum_decay);
        o.decoupled_weight_decay = decoupled;
        o.maximize = maximize;
        return nb_nadam(params, n, &o);
    }
    case RADAM: {
        nb_radam_opts o = nb_radam_defaults();
        SET(lr, lr); SET(beta1, b1); SET(beta2, b2); SET(eps, eps); SET(weight_decay, weight_decay);
        o.decoupled_weight_decay = decoupled;
        o.maximize = maximize;
        return nb_radam(params, n, &o);
    }
    case ASGD: {
        nb_asgd_opts o = nb_asgd_defaults();
        SET(lr, lr); SET(lambd, lambd); SET(alpha, alpha); SET(t0, t0); SET(weight_decay, weight_decay);
        o.maximize = maximize;
        return nb_asgd(params, n, &o);
    }
    case RPROP: {
        nb_rprop_opts o = nb_rprop_defaults();
        SET(lr, lr);
        if (etas) pair("etas", etas, &o.eta_minus, &o.eta_plus, false);
        if (step_sizes) pair("step-sizes", step_sizes, &o.step_size_min, &o.step_size_max, false);
        o.maximize = maximize;
        return nb_rprop(params, n, &o);
    }
    case LBFGS: {
        nb_lbfgs_opts o = nb_lbfgs_defaults();
        SET(lr, lr); SET(tolerance_grad, tol_grad); SET(tolerance_change, tol_change);
        if (line_search && strcmp(line_search, "none")) o.line_search_fn = line_search;
        if ((max_iter != -1 && (max_iter < 0 || max_iter > 1000000)) ||
            (max_eval != -1 && (max_eval < 1 || max_eval > 1000000)) ||
            (history != -1 && (history < 1 || history > 100000))) {
            fail("--max-iter, --max-eval and --history-size must be positive");
            return NULL;
        }
        if (max_iter != -1) o.max_iter = (int)max_iter;
        if (max_eval != -1) o.max_eval = (int)max_eval;
        if (history != -1) o.history_size = (int)history;
        return nb_lbfgs(params, n, &o);
    }
    case ADAFACTOR: {
        nb_adafactor_opts o = nb_adafactor_defaults();
        SET(lr, lr); SET(beta2_decay, beta2_decay); SET(d, dclip); SET(weight_decay, weight_decay);
        if (eps_arg) {
            pair("eps", eps_arg, &e1, &e2, true);
            o.eps1 = e1;
            o.eps2 = e2;
        }
        o.maximize = maximize;
        return nb_adafactor(params, n, &o);
    }
    }
    return NULL;
}

int optim_cli_clip(nb_tensor *const *params, int n) {
    if (clip_value > 0 && nb_clip_grad_value(params, n, clip_value)) return -1;
    if (clip <= 0) return 0;
    double total;
    return nb_clip_grad_norm(params, n, clip, clip_norm, false, &total);
}

/* ---- LBFGS: a closure over the current batch ------------------------------------------------ */
typedef struct batch_closure {
    nb_optim *opt;
    nb_module *model;
    nb_tensor *x, *y;
    nb_tensor *const *params;
    int n;
} batch_closure;

static nb_arena *closure_arena; /* the closure's graph, reset at every evaluation */

static void free_closure_arena(void) { nb_arena_free(closure_arena); }

static double eval_batch(void *user) {
    batch_closure *c = user;
    nb_arena_reset(closure_arena);
    nb_optim_zero_grad(c->opt, true);
    nb_tensor *loss = cli_loss(closure_arena, nb_forward(c->model, closure_arena, c->x), c->y, false);
    if (!loss || nb_backward(loss) || optim_cli_clip(c->params, c->n)) return NAN;
    return dist_cli_mean(nb_item(loss)); /* under mpirun every process decides on the same loss */
}

int optim_cli_step(nb_optim *opt, nb_module *model, nb_tensor *x, nb_tensor *y,
                   nb_tensor *const *params, int n) {
    if (strcmp(nb_optim_type(opt), "LBFGS")) return nb_optim_step(opt);
    if (!closure_arena) {
        if (!(closure_arena = nb_arena_new(0))) return -1;
        atexit(free_closure_arena);
    }
    batch_closure c = {opt, model, x, y, params, n};
    return nb_optim_step_closure(opt, eval_batch, &c, NULL);
}
