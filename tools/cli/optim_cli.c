/* optim_cli.c - `--optim NAME` (the torch.optim optimizers that can train a whole model:
 * PyTorch's class name, any case; not SparseAdam or Muon) and its keyword arguments as flags,
 * built by name (nb_optim_new).
 *
 * A flag stands for the keyword argument of the same name (dashes for underscores, a few
 * shortened). It applies to the optimizers whose PyTorch signature has that argument (the
 * registry says which), and giving it to another one is refused (exit 2), as an unexpected
 * keyword argument is in PyTorch; so is a malformed value. A flag counts as given when it
 * appears (on the command line or in the flags a resumed checkpoint stored). Arguments not
 * given keep PyTorch's defaults, except the CLI's SGD recipe: lr 0.1, momentum 0.9. LBFGS
 * re-evaluates the current batch through a closure (forward, loss, backward, clipping) up to
 * max_eval times per batch. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cli.h"

static const char *name = "sgd";
static bool name_given;
static double lr = NAN, momentum = NAN, dampening = NAN, weight_decay = NAN, alpha = NAN;
static double lr_decay = NAN, init_acc = NAN, rho = NAN, momentum_decay = NAN, lambd = NAN, t0 = NAN;
static double tol_grad = NAN, tol_change = NAN, beta2_decay = NAN, dclip = NAN;
static double clip = 0, clip_norm = 2.0, clip_value = 0;
static long max_iter = -1, max_eval = -1, history = -1;
static const char *betas, *eps, *etas, *step_sizes, *line_search;
static bool nesterov, maximize, amsgrad, centered, decoupled;

/* flag -> keyword argument; what each option is, the optimizers it applies to come from the
 * registry */
static kw_flag flags[] = {
    KW_DOUBLE("lr", "lr", &lr, "learning rate (sgd 0.1, otherwise PyTorch's default)"),
    KW_DOUBLE("momentum", "momentum", &momentum, "momentum (sgd 0.9, otherwise PyTorch's default)"),
    KW_DOUBLE("dampening", "dampening", &dampening, "dampening of the momentum (0)"),
    KW_FLAG("nesterov", "nesterov", &nesterov, "Nesterov momentum"),
    KW_DOUBLE("weight-decay", "weight_decay", &weight_decay,
      "weight decay (L2; decoupled for adamw, adafactor and --decoupled-weight-decay)"),
    KW_FLAG("maximize", "maximize", &maximize, "maximize the objective"),
    KW_STRING("betas", "betas", &betas, "B1,B2 (0.9,0.999)"),
    KW_STRING("eps", "eps", &eps, "epsilon (1e-8; adagrad 1e-10, adadelta 1e-6); adafactor EPS1,EPS2 (none,1e-3)"),
    KW_FLAG("amsgrad", "amsgrad", &amsgrad, "AMSGrad variant"),
    KW_DOUBLE("alpha", "alpha", &alpha, "rmsprop smoothing (0.99); asgd eta power (0.75)"),
    KW_FLAG("centered", "centered", &centered, "centered RMSprop"),
    KW_DOUBLE("lr-decay", "lr_decay", &lr_decay, "lr decay (0)"),
    KW_DOUBLE("initial-accumulator-value", "initial_accumulator_value", &init_acc, "initial accumulator (0)"),
    KW_DOUBLE("rho", "rho", &rho, "running average coefficient (0.9)"),
    KW_DOUBLE("momentum-decay", "momentum_decay", &momentum_decay, "momentum decay (4e-3)"),
    KW_FLAG("decoupled-weight-decay", "decoupled_weight_decay", &decoupled, "NAdamW / RAdamW weight decay"),
    KW_DOUBLE("lambd", "lambd", &lambd, "decay term (1e-4)"),
    KW_DOUBLE("t0", "t0", &t0, "point where averaging starts (1e6)"),
    KW_STRING("etas", "etas", &etas, "ETA_MINUS,ETA_PLUS (0.5,1.2)"),
    KW_STRING("step-sizes", "step_sizes", &step_sizes, "MIN,MAX step sizes (1e-6,50)"),
    KW_INT("max-iter", "max_iter", &max_iter, "iterations per batch (20)"),
    KW_INT("max-eval", "max_eval", &max_eval, "closure evaluations per batch (max-iter * 5 / 4)"),
    KW_DOUBLE("tolerance-grad", "tolerance_grad", &tol_grad, "first-order optimality tolerance (1e-7)"),
    KW_DOUBLE("tolerance-change", "tolerance_change", &tol_change, "loss/parameter change tolerance (1e-9)"),
    KW_INT("history-size", "history_size", &history, "history (100)"),
    KW_STRING("line-search", "line_search_fn", &line_search, "none | strong_wolfe (none)"),
    KW_DOUBLE("beta2-decay", "beta2_decay", &beta2_decay, "beta2 decay rate (-0.8)"),
    KW_DOUBLE("d", "d", &dclip, "update clipping threshold (1.0)"),
};
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))
static bool given[NFLAGS];
static char helps[NFLAGS][192];

/* The CLI's recipe where it differs from PyTorch's defaults. */
static const struct {
    const char *optim, *kwarg;
    double v;
} recipe[] = {{"SGD", "lr", 0.1}, {"SGD", "momentum", 0.9}};

static const char *cls; /* the chosen optimizer's class name, after optim_cli_check */
static nb_value kwargs[NFLAGS + 2];
static int nkwargs;

/* Optimizers of the registry that cannot train the CLI's models alone: not offered (they are
 * for programs; see docs/optim.md). */
static const struct {
    const char *optim, *why;
} library_only[] = {
    {"SparseAdam", "it takes only row-sparse gradients (a sparse Embedding); the CLI's models have dense ones"},
    {"Muon", "it takes only 2-D parameters and the CLI's models have biases (in C: Muon for the weights, "
             "AdamW for the rest, as models/muon_mlp.c does)"},
};

static const char *library_only_why(const char *optim) {
    for (size_t i = 0; i < sizeof library_only / sizeof library_only[0]; i++)
        if (!strcasecmp(optim, library_only[i].optim)) return library_only[i].why;
    return NULL;
}

/* The registry's class names the CLI offers, in its order. */
static int cli_names(const char **out, int cap) {
    const char *all[32];
    int k = nb_optim_names(all, 32), n = 0;
    for (int i = 0; i < k && i < 32; i++)
        if (!library_only_why(all[i]) && n < cap) out[n++] = all[i];
    return n;
}

/* "adamw" for "AdamW" (a static buffer per call site is enough for messages) */
static const char *lower(const char *s, char *buf, size_t n) {
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++) buf[i] = (char)tolower((unsigned char)s[i]);
    buf[i] = '\0';
    return buf;
}

static const nb_value *find(const nb_value *d, int n, const char *kwarg) {
    for (int i = 0; d && i < n; i++)
        if (!strcmp(d[i].name, kwarg)) return &d[i];
    return NULL;
}

static bool takes(const char *optim, const char *kwarg) {
    int n;
    const nb_value *d = nb_optim_defaults_of(optim, &n);
    return find(d, n, kwarg) != NULL;
}

/* ", "-separated lower-case names of the optimizers that take kwarg */
static void takers(const char *kwarg, char *out, size_t n) {
    const char *names[32];
    int k = cli_names(names, 32);
    out[0] = '\0';
    for (int i = 0; i < k && i < 32; i++) {
        char b[32];
        if (takes(names[i], kwarg))
            snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? ", " : "", lower(names[i], b, sizeof b));
    }
}

void optim_cli_optimizer_flags(cli_flags *f) {
    char names[256] = "";
    const char *list[32];
    int k = cli_names(list, 32);
    for (int i = 0; i < k && i < 32; i++) {
        char b[32];
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? " | " : "", lower(list[i], b, sizeof b));
    }
    static char optim_help[320];
    snprintf(optim_help, sizeof optim_help, "%s (default sgd)", names);
    cli_add(f, (arg_spec){"optim", ARG_STRING, &name, optim_help, &name_given});
    cli_add_kw_flags(f, flags, NFLAGS, given, helps[0], sizeof helps[0], takers);
}

void optim_cli_flags(cli_flags *f) {
    optim_cli_optimizer_flags(f);
    cli_add(f, (arg_spec){"clip", ARG_DOUBLE, &clip, "clip_grad_norm_ max norm before each step (0: off)", NULL});
    cli_add(f, (arg_spec){"clip-norm-type", ARG_DOUBLE, &clip_norm, "its norm type: 2, 1, inf or any p > 0 (2)", NULL});
    cli_add(f, (arg_spec){"clip-value", ARG_DOUBLE, &clip_value, "clip_grad_value_ before each step (0: off)", NULL});
}

const char *optim_cli_name(void) { return name; }

bool optim_cli_hides(const arg_spec *s) {
    for (int i = 0; name_given && nb_optim_defaults_of(name, NULL) && i < NFLAGS; i++)
        if (s->dst == flags[i].spec.dst) return !takes(name, flags[i].kwarg);
    return false;
}

/* A string flag as the kind of the optimizer's argument: a list of its length (first element
 * "none" allowed when the default's is None: Adafactor's eps), a number, or a string/None. */
static int string_kwarg(const kw_flag *fl, const nb_value *def, nb_value *out) {
    const char *v = *(const char **)fl->spec.dst;
    if (def->kind == NB_VALUE_LIST) {
        double x[8] = {0};
        int n, none = !strncmp(v, "none,", 5) && isnan(def->inl[0]);
        n = none ? args_list(v + 5, x + 1, 7) + 1 : args_list(v, x, 8);
        if (none) x[0] = NAN;
        if (n != def->len || n > NB_VALUE_INLINE) {
            if (def->len == 2) fprintf(stderr, "%s: --%s expects X,Y (got '%s')\n", cli_prog, fl->spec.name, v);
            else fprintf(stderr, "%s: --%s expects %d comma-separated values (got '%s')\n", cli_prog, fl->spec.name,
                         def->len, v);
            return 2;
        }
        *out = nb_pair(def->name, x[0], x[1]);
        out->len = n;
        memcpy(out->inl, x, sizeof(double) * (size_t)n);
        return 0;
    }
    if (def->kind == NB_VALUE_NUMBER) {
        double x;
        if (args_list(v, &x, 1) != 1) {
            fprintf(stderr, "%s: invalid value '%s' for --%s (expected a number)\n", cli_prog, v, fl->spec.name);
            return 2;
        }
        *out = nb_num(def->name, x);
        return 0;
    }
    *out = !strcmp(v, "none") ? nb_none(def->name) : nb_str(def->name, v);
    return 0;
}

int optim_cli_check(void) {
    int nd;
    const nb_value *defs = nb_optim_defaults_of(name, &nd);
    const char *why = library_only_why(name);
    if (!defs || why) {
        char known[256];
        takers("lr", known, sizeof known);
        if (why) fprintf(stderr, "%s: --optim %s is not offered here: %s; the CLI offers %s\n", cli_prog, name, why, known);
        else fprintf(stderr, "%s: unknown optimizer '%s' (%s)\n", cli_prog, name, known);
        return 2;
    }
    const char *list[32];
    int k = nb_optim_names(list, 32);
    for (int i = 0; i < k && i < 32; i++)
        if (!strcasecmp(list[i], name)) cls = list[i];
    nkwargs = 0;
    for (int i = 0; i < NFLAGS; i++) {
        if (!given[i]) continue;
        const kw_flag *fl = &flags[i];
        const nb_value *def = find(defs, nd, fl->kwarg);
        if (!def) {
            char who[160];
            takers(fl->kwarg, who, sizeof who);
            fprintf(stderr, "%s: --%s does not apply to %s (it is an option of %s)\n", cli_prog, fl->spec.name,
                    name, who);
            return 2;
        }
        nb_value v;
        if (!cli_kw_value(fl, &v) && string_kwarg(fl, def, &v)) return 2;
        kwargs[nkwargs++] = v;
    }
    for (size_t r = 0; r < sizeof recipe / sizeof recipe[0]; r++) {
        bool set = false;
        for (int i = 0; i < nkwargs; i++) set |= !strcmp(kwargs[i].name, recipe[r].kwarg);
        if (!strcmp(cls, recipe[r].optim) && !set) kwargs[nkwargs++] = nb_num(recipe[r].kwarg, recipe[r].v);
    }
    if (!(clip_norm > 0)) {
        fprintf(stderr, "%s: --clip-norm-type must be > 0\n", cli_prog);
        return 2;
    }
    return 0;
}

nb_optim *optim_cli_build(nb_tensor *const *params, int n) {
    return cls ? nb_optim_new(cls, params, n, kwargs, nkwargs) : NULL;
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
    if (!nb_optim_requires_closure(opt)) return nb_optim_step(opt);
    if (!closure_arena) {
        if (!(closure_arena = nb_arena_new(0))) return -1;
        atexit(free_closure_arena);
    }
    batch_closure c = {opt, model, x, y, params, n};
    return nb_optim_step_closure(opt, eval_batch, &c, NULL);
}
