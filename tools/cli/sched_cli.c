/* sched_cli.c - `--sched NAME` and each schedule's options as flags (PyTorch's argument names
 * with dashes). Per-epoch schedules step after each epoch, onecycle and cyclic after each
 * batch (as in PyTorch's recipes), plateau after each epoch on the test loss. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const char *name = "none";
static long step_size = 1, total_iters = 5, T_max = 0, T_0 = 10, T_mult = 1, total_steps = 0;
static long patience = 10, cooldown = 0, warmup = 0;
static double warmup_factor = 0.1;
static double gamma_ = NAN, factor = NAN, start_factor = 1.0 / 3, end_factor = 1.0, power = 1.0, eta_min = 0;
static double max_lr = NAN, base_lr = NAN, pct_start = 0.3, div_factor = 25, final_div_factor = 1e4;
static double base_momentum = NAN, max_momentum = NAN, step_size_up = 2000, step_size_down = NAN;
static double threshold = 1e-4, min_lr = 0, eps = 1e-8;
static const char *milestones = NULL, *anneal_strategy = "cos", *mode = NULL, *threshold_mode = "rel";
static bool three_phase = false, no_cycle_momentum = false;

void sched_cli_flags(cli_flags *f) {
    cli_add(f, (arg_spec){"sched", ARG_STRING, &name, "none | step | multistep | constant | linear | exponential | "
                          "polynomial | cosine | cosine-restarts | onecycle | cyclic | plateau (default none)", NULL});
    cli_add(f, (arg_spec){"step-size", ARG_INT, &step_size, "step: decay every N epochs (default 1)", NULL});
    cli_add(f, (arg_spec){"gamma", ARG_DOUBLE, &gamma_, "step, multistep: decay (0.1); exponential (0.9); cyclic exp_range (1.0)", NULL});
    cli_add(f, (arg_spec){"milestones", ARG_STRING, &milestones, "multistep: epochs, e.g. 30,80", NULL});
    cli_add(f, (arg_spec){"factor", ARG_DOUBLE, &factor, "constant: lr factor (1/3); plateau: decay (0.1)", NULL});
    cli_add(f, (arg_spec){"total-iters", ARG_INT, &total_iters, "constant, linear, polynomial: epochs (5)", NULL});
    cli_add(f, (arg_spec){"start-factor", ARG_DOUBLE, &start_factor, "linear: first factor (1/3)", NULL});
    cli_add(f, (arg_spec){"end-factor", ARG_DOUBLE, &end_factor, "linear: last factor (1.0)", NULL});
    cli_add(f, (arg_spec){"power", ARG_DOUBLE, &power, "polynomial: power (1.0)", NULL});
    cli_add(f, (arg_spec){"T-max", ARG_INT, &T_max, "cosine: half period in epochs (default: all epochs)", NULL});
    cli_add(f, (arg_spec){"eta-min", ARG_DOUBLE, &eta_min, "cosine, cosine-restarts: lowest lr (0)", NULL});
    cli_add(f, (arg_spec){"T-0", ARG_INT, &T_0, "cosine-restarts: epochs to the first restart (10)", NULL});
    cli_add(f, (arg_spec){"T-mult", ARG_INT, &T_mult, "cosine-restarts: period growth (1)", NULL});
    cli_add(f, (arg_spec){"max-lr", ARG_DOUBLE, &max_lr, "onecycle, cyclic: peak lr (required)", NULL});
    cli_add(f, (arg_spec){"total-steps", ARG_INT, &total_steps, "onecycle: batches (default: epochs x batches per epoch)", NULL});
    cli_add(f, (arg_spec){"pct-start", ARG_DOUBLE, &pct_start, "onecycle: fraction of the cycle spent rising (0.3)", NULL});
    cli_add(f, (arg_spec){"anneal-strategy", ARG_STRING, &anneal_strategy, "onecycle: cos | linear (cos)", NULL});
    cli_add(f, (arg_spec){"div-factor", ARG_DOUBLE, &div_factor, "onecycle: initial lr = max-lr / this (25)", NULL});
    cli_add(f, (arg_spec){"final-div-factor", ARG_DOUBLE, &final_div_factor, "onecycle: min lr = initial lr / this (1e4)", NULL});
    cli_add(f, (arg_spec){"three-phase", ARG_FLAG, &three_phase, "onecycle: three phases (paper's version)", NULL});
    cli_add(f, (arg_spec){"no-cycle-momentum", ARG_FLAG, &no_cycle_momentum, "onecycle, cyclic: leave momentum alone", NULL});
    cli_add(f, (arg_spec){"base-momentum", ARG_DOUBLE, &base_momentum, "onecycle (0.85), cyclic (0.8): lowest momentum", NULL});
    cli_add(f, (arg_spec){"max-momentum", ARG_DOUBLE, &max_momentum, "onecycle (0.95), cyclic (0.9): highest momentum", NULL});
    cli_add(f, (arg_spec){"base-lr", ARG_DOUBLE, &base_lr, "cyclic: lowest lr (default: --lr)", NULL});
    cli_add(f, (arg_spec){"step-size-up", ARG_DOUBLE, &step_size_up, "cyclic: batches rising (2000)", NULL});
    cli_add(f, (arg_spec){"step-size-down", ARG_DOUBLE, &step_size_down, "cyclic: batches falling (= up)", NULL});
    cli_add(f, (arg_spec){"mode", ARG_STRING, &mode, "cyclic: triangular | triangular2 | exp_range; plateau: min | max", NULL});
    cli_add(f, (arg_spec){"patience", ARG_INT, &patience, "plateau: epochs without improvement (10)", NULL});
    cli_add(f, (arg_spec){"threshold", ARG_DOUBLE, &threshold, "plateau: improvement threshold (1e-4)", NULL});
    cli_add(f, (arg_spec){"threshold-mode", ARG_STRING, &threshold_mode, "plateau: rel | abs (rel)", NULL});
    cli_add(f, (arg_spec){"cooldown", ARG_INT, &cooldown, "plateau: epochs to wait after a decay (0)", NULL});
    cli_add(f, (arg_spec){"min-lr", ARG_DOUBLE, &min_lr, "plateau: lowest lr (0)", NULL});
    cli_add(f, (arg_spec){"plateau-eps", ARG_DOUBLE, &eps, "plateau: smallest decay applied (1e-8)", NULL});
    cli_add(f, (arg_spec){"warmup", ARG_INT, &warmup, "ramp the lr up linearly over N epochs first, then run the "
                          "schedule (SequentialLR; per-epoch schedules)", NULL});
    cli_add(f, (arg_spec){"warmup-factor", ARG_DOUBLE, &warmup_factor, "lr factor at the start of the warmup (0.1)", NULL});
}

static double pick(double v, double dflt) { return isnan(v) ? dflt : v; }

/* --milestones as epochs: up to 64 non-negative integers; returns their count, or -1. */
static int parse_milestones(int64_t *out) {
    double m[64];
    int n = milestones ? args_list(milestones, m, 64) : 0;
    for (int i = 0; i < n; i++) {
        if (!(m[i] >= 0 && m[i] <= 1e15 && m[i] == floor(m[i]))) return -1;
        out[i] = (int64_t)m[i];
    }
    return n;
}

int sched_cli_check(void) {
    static const char *const names[] = {"none", "step", "multistep", "constant", "linear", "exponential",
                                        "polynomial", "cosine", "cosine-restarts", "onecycle", "cyclic",
                                        "plateau"};
    bool known = false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) known |= !strcmp(name, names[i]);
    if (!known) {
        fprintf(stderr, "%s: unknown schedule '%s' (none, step, multistep, constant, linear, exponential, "
                        "polynomial, cosine, cosine-restarts, onecycle, cyclic, plateau)\n", cli_prog, name);
        return 2;
    }
    int64_t m[64];
    if (parse_milestones(m) < 0) {
        fprintf(stderr, "%s: --milestones: a list of epochs like 30,80, got '%s'\n", cli_prog, milestones);
        return 2;
    }
    return 0;
}

bool sched_cli_per_batch(void) { return !strcmp(name, "onecycle") || !strcmp(name, "cyclic"); }

static nb_sched *build(nb_optim *opt, int64_t steps_per_epoch, int64_t epochs) {
    if (!strcmp(name, "step")) return nb_step_lr(opt, step_size, pick(gamma_, 0.1));
    if (!strcmp(name, "multistep")) {
        int64_t m[64];
        return nb_multistep_lr(opt, m, parse_milestones(m), pick(gamma_, 0.1));
    }
    if (!strcmp(name, "constant")) return nb_constant_lr(opt, pick(factor, 1.0 / 3), total_iters);
    if (!strcmp(name, "linear")) return nb_linear_lr(opt, start_factor, end_factor, total_iters);
    if (!strcmp(name, "exponential")) return nb_exponential_lr(opt, pick(gamma_, 0.9));
    if (!strcmp(name, "polynomial")) return nb_polynomial_lr(opt, total_iters, power);
    if (!strcmp(name, "cosine"))
        return nb_cosine_annealing_lr(opt, T_max ? T_max : epochs - warmup > 0 ? epochs - warmup : 1, eta_min);
    if (!strcmp(name, "cosine-restarts")) return nb_cosine_annealing_warm_restarts(opt, T_0, T_mult, eta_min);
    if (!strcmp(name, "onecycle")) {
        nb_onecycle_opts o = nb_onecycle_defaults();
        o.max_lr = max_lr;
        if (total_steps) {
            o.total_steps = total_steps;
        } else {
            o.epochs = epochs;
            o.steps_per_epoch = steps_per_epoch;
        }
        o.pct_start = pct_start;
        o.anneal_strategy = anneal_strategy;
        o.div_factor = div_factor;
        o.final_div_factor = final_div_factor;
        o.three_phase = three_phase;
        o.cycle_momentum = !no_cycle_momentum;
        o.base_momentum = pick(base_momentum, o.base_momentum);
        o.max_momentum = pick(max_momentum, o.max_momentum);
        return nb_onecycle_lr(opt, &o);
    }
    if (!strcmp(name, "cyclic")) {
        nb_cyclic_opts o = nb_cyclic_defaults();
        o.base_lr = pick(base_lr, nb_optim_get(opt, 0, "lr"));
        o.max_lr = max_lr;
        o.step_size_up = step_size_up;
        o.step_size_down = step_size_down;
        if (mode) o.mode = mode;
        o.gamma = pick(gamma_, o.gamma);
        o.cycle_momentum = !no_cycle_momentum;
        o.base_momentum = pick(base_momentum, o.base_momentum);
        o.max_momentum = pick(max_momentum, o.max_momentum);
        return nb_cyclic_lr(opt, &o);
    }
    if (!strcmp(name, "plateau")) {
        nb_plateau_opts o = nb_plateau_defaults();
        if (mode) o.mode = mode;
        o.factor = pick(factor, o.factor);
        o.patience = patience;
        o.threshold = threshold;
        o.threshold_mode = threshold_mode;
        o.cooldown = cooldown;
        o.min_lr = min_lr;
        o.eps = eps;
        return nb_reduce_lr_on_plateau(opt, &o);
    }
    return NULL; /* an unknown name: sched_cli_check said so */
}

nb_sched *sched_cli_build(nb_optim *opt, int64_t steps_per_epoch, int64_t epochs, bool *failed) {
    *failed = false;
    if (!strcmp(name, "none")) return NULL;
    if (sched_cli_check()) {
        *failed = true;
        return NULL;
    }
    if (warmup < 0 || (warmup && (sched_cli_per_batch() || !strcmp(name, "plateau")))) {
        fprintf(stderr, "%s: --warmup N (N >= 0) is for the per-epoch schedules other than plateau\n", cli_prog);
        *failed = true;
        return NULL;
    }
    nb_clear_error();
    nb_sched *s = build(opt, steps_per_epoch, epochs);
    if (s && warmup) { /* SequentialLR([LinearLR(warmup_factor, 1, warmup), s], milestones=[warmup]) */
        nb_sched *parts[2] = {nb_linear_lr(opt, warmup_factor, 1.0, warmup), s};
        s = nb_sequential_lr(opt, parts, 2, (int64_t[]){warmup}, 1);
    }
    if (!s) {
        if (nb_last_status()) fprintf(stderr, "%s: scheduler: %s\n", cli_prog, nb_last_error());
        *failed = true;
    }
    return s;
}

/* Value `key` of a state dict (NAN if absent). */
static double dict_num(const nb_sched_dict *sd, const char *key) {
    for (int i = 0; sd && i < sd->nvalues; i++)
        if (!strcmp(sd->values[i].name, key)) return sd->values[i].num;
    return NAN;
}

int sched_cli_check_resumed(nb_sched *s, int64_t steps_left, long epochs_left) {
    if (!s || strcmp(nb_sched_type(s), "OneCycleLR")) return 0;
    nb_sched_dict *sd = nb_sched_state_dict(s);
    double total = dict_num(sd, "total_steps"), taken = dict_num(sd, "last_epoch");
    nb_sched_dict_free(sd);
    if (!(taken + (double)steps_left > total)) return 0;
    fprintf(stderr, "%s: --resume: the checkpoint's OneCycleLR schedule has %.0f steps in all and has "
            "taken %.0f; the %ld epoch(s) left to --epochs need %lld more (one per batch). A one-cycle "
            "schedule cannot be stretched: resume with the --epochs of the saved run, or start a new "
            "run\n", cli_prog, total, taken, epochs_left, (long long)steps_left);
    return -1;
}

int sched_cli_after_batch(nb_sched *s) { return s && sched_cli_per_batch() ? nb_sched_step(s) : 0; }

int sched_cli_after_epoch(nb_sched *s, double test_loss) {
    if (!s || sched_cli_per_batch()) return 0;
    return !strcmp(name, "plateau") ? nb_sched_step_metric(s, test_loss) : nb_sched_step(s);
}
