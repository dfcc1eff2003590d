/* sched_cli.c - `--sched NAME` and each schedule's keyword arguments as flags (PyTorch's
 * argument names with dashes), built by name (nb_sched_new). Per-epoch schedules step after
 * each epoch, onecycle and cyclic after each batch (as in PyTorch's recipes), plateau after each
 * epoch on the test loss.
 *
 * A flag applies to the schedules whose PyTorch signature has its argument (the registry says
 * which); giving it to another schedule, or with no schedule, is refused (exit 2). Arguments not
 * given keep PyTorch's defaults, and where PyTorch requires one the CLI has its own: step_size
 * 1, exponential's gamma 0.9, T_0 10, T_max the epochs (after the warmup), onecycle's epochs and
 * steps_per_epoch the run's, cyclic's base_lr the optimizer's lr. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const char *name = "none";
static bool name_given;
static long step_size, total_iters, T_max, T_0, T_mult, total_steps, patience, cooldown, warmup;
static double warmup_factor = 0.1, gamma_, factor, start_factor, end_factor, power, eta_min;
static double max_lr, base_lr, pct_start, div_factor, final_div_factor, base_momentum, max_momentum;
static double step_size_up, step_size_down, threshold, min_lr, eps;
static const char *milestones, *anneal_strategy, *mode, *threshold_mode;
static bool three_phase, no_cycle_momentum;

/* the CLI's names; per_batch: stepped after each batch; metric: stepped with the test loss */
static const struct {
    const char *cli, *cls;
    bool per_batch, metric;
} scheds[] = {{"step", "StepLR", false, false},
              {"multistep", "MultiStepLR", false, false},
              {"constant", "ConstantLR", false, false},
              {"linear", "LinearLR", false, false},
              {"exponential", "ExponentialLR", false, false},
              {"polynomial", "PolynomialLR", false, false},
              {"cosine", "CosineAnnealingLR", false, false},
              {"cosine-restarts", "CosineAnnealingWarmRestarts", false, false},
              {"onecycle", "OneCycleLR", true, false},
              {"cyclic", "CyclicLR", true, false},
              {"plateau", "ReduceLROnPlateau", false, true}};
#define NSCHEDS ((int)(sizeof scheds / sizeof scheds[0]))

/* flag -> keyword argument (NULL: the warmup, which the CLI adds to per-epoch schedules but
 * plateau) */
static kw_flag flags[] = {
    KW_INT("step-size", "step_size", &step_size, "decay every N epochs (1)"),
    KW_DOUBLE("gamma", "gamma", &gamma_, "decay (0.1; exponential 0.9; cyclic exp_range 1.0)"),
    KW_STRING("milestones", "milestones", &milestones, "epochs, e.g. 30,80"),
    KW_DOUBLE("factor", "factor", &factor, "lr factor (constant 1/3; plateau's decay 0.1)"),
    KW_INT("total-iters", "total_iters", &total_iters, "epochs (5)"),
    KW_DOUBLE("start-factor", "start_factor", &start_factor, "first factor (1/3)"),
    KW_DOUBLE("end-factor", "end_factor", &end_factor, "last factor (1.0)"),
    KW_DOUBLE("power", "power", &power, "power (1.0)"),
    KW_INT("T-max", "T_max", &T_max, "half period in epochs (default: all epochs)"),
    KW_DOUBLE("eta-min", "eta_min", &eta_min, "lowest lr (0)"),
    KW_INT("T-0", "T_0", &T_0, "epochs to the first restart (10)"),
    KW_INT("T-mult", "T_mult", &T_mult, "period growth (1)"),
    KW_DOUBLE("max-lr", "max_lr", &max_lr, "peak lr (required)"),
    KW_INT("total-steps", "total_steps", &total_steps, "batches (default: epochs x batches per epoch)"),
    KW_DOUBLE("pct-start", "pct_start", &pct_start, "fraction of the cycle spent rising (0.3)"),
    KW_STRING("anneal-strategy", "anneal_strategy", &anneal_strategy, "cos | linear (cos)"),
    KW_DOUBLE("div-factor", "div_factor", &div_factor, "initial lr = max-lr / this (25)"),
    KW_DOUBLE("final-div-factor", "final_div_factor", &final_div_factor, "min lr = initial lr / this (1e4)"),
    KW_FLAG("three-phase", "three_phase", &three_phase, "three phases (paper's version)"),
    KW_FLAG("no-cycle-momentum", "cycle_momentum", &no_cycle_momentum, "leave momentum alone"),
    KW_DOUBLE("base-momentum", "base_momentum", &base_momentum, "lowest momentum (onecycle 0.85, cyclic 0.8)"),
    KW_DOUBLE("max-momentum", "max_momentum", &max_momentum, "highest momentum (onecycle 0.95, cyclic 0.9)"),
    KW_DOUBLE("base-lr", "base_lr", &base_lr, "lowest lr (default: --lr)"),
    KW_DOUBLE("step-size-up", "step_size_up", &step_size_up, "batches rising (2000)"),
    KW_DOUBLE("step-size-down", "step_size_down", &step_size_down, "batches falling (= up)"),
    KW_STRING("mode", "mode", &mode, "cyclic: triangular | triangular2 | exp_range; plateau: min | max"),
    KW_INT("patience", "patience", &patience, "epochs without improvement (10)"),
    KW_DOUBLE("threshold", "threshold", &threshold, "improvement threshold (1e-4)"),
    KW_STRING("threshold-mode", "threshold_mode", &threshold_mode, "rel | abs (rel)"),
    KW_INT("cooldown", "cooldown", &cooldown, "epochs to wait after a decay (0)"),
    KW_DOUBLE("min-lr", "min_lr", &min_lr, "lowest lr (0)"),
    KW_DOUBLE("plateau-eps", "eps", &eps, "smallest decay applied (1e-8)"),
    KW_INT("warmup", NULL, &warmup, "ramp the lr up linearly over N epochs first, then run the schedule (SequentialLR)"),
    KW_DOUBLE("warmup-factor", NULL, &warmup_factor, "lr factor at the start of the warmup (0.1)"),
};
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))
static bool given[NFLAGS];
static char helps[NFLAGS][224];

/* The CLI's defaults where PyTorch requires a value. */
static const struct {
    const char *sched, *kwarg;
    double v;
} recipe[] = {{"StepLR", "step_size", 1}, {"ExponentialLR", "gamma", 0.9}, {"CosineAnnealingWarmRestarts", "T_0", 10}};

static int chosen = -1; /* index in scheds, after sched_cli_check */
static nb_value kwargs[NFLAGS + 4];
static int nkwargs;

static bool takes(int k, const char *kwarg) {
    int n;
    const nb_value *d = nb_sched_defaults_of(scheds[k].cls, &n);
    if (!kwarg) return !scheds[k].per_batch && !scheds[k].metric; /* warmup */
    for (int i = 0; d && i < n; i++)
        if (!strcmp(d[i].name, kwarg)) return true;
    return false;
}

static void takers(const char *kwarg, char *out, size_t n) {
    out[0] = '\0';
    for (int k = 0; k < NSCHEDS; k++)
        if (takes(k, kwarg)) snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? ", " : "", scheds[k].cli);
}

void sched_cli_flags(cli_flags *f) {
    static char help[256];
    snprintf(help, sizeof help, "none");
    for (int k = 0; k < NSCHEDS; k++) snprintf(help + strlen(help), sizeof help - strlen(help), " | %s", scheds[k].cli);
    snprintf(help + strlen(help), sizeof help - strlen(help), " (default none)");
    cli_add(f, (arg_spec){"sched", ARG_STRING, &name, help, &name_given});
    cli_add_kw_flags(f, flags, NFLAGS, given, helps[0], sizeof helps[0], takers);
}

bool sched_cli_per_batch(void) { return chosen >= 0 && scheds[chosen].per_batch; }

bool sched_cli_hides(const arg_spec *s) {
    int k = -1;
    for (int j = 0; j < NSCHEDS; j++)
        if (!strcmp(name, scheds[j].cli)) k = j;
    for (int i = 0; i < NFLAGS; i++)
        if (s->dst == flags[i].spec.dst)
            return name_given && (!strcmp(name, "none") || (k >= 0 && !takes(k, flags[i].kwarg)));
    return false;
}

static bool has(const char *kwarg) {
    for (int i = 0; i < nkwargs; i++)
        if (!strcmp(kwargs[i].name, kwarg)) return true;
    return false;
}

int sched_cli_check(void) {
    chosen = -1;
    for (int k = 0; k < NSCHEDS; k++)
        if (!strcmp(name, scheds[k].cli)) chosen = k;
    if (chosen < 0 && strcmp(name, "none")) {
        char known[256] = "none";
        for (int k = 0; k < NSCHEDS; k++) snprintf(known + strlen(known), sizeof known - strlen(known), ", %s", scheds[k].cli);
        fprintf(stderr, "%s: unknown schedule '%s' (%s)\n", cli_prog, name, known);
        return 2;
    }
    nkwargs = 0;
    for (int i = 0; i < NFLAGS; i++) {
        if (!given[i]) continue;
        const kw_flag *fl = &flags[i];
        char who[160];
        takers(fl->kwarg, who, sizeof who);
        if (chosen < 0) {
            fprintf(stderr, "%s: --%s is an option of a schedule (--sched %s)\n", cli_prog, fl->spec.name, who);
            return 2;
        }
        if (!takes(chosen, fl->kwarg)) {
            fprintf(stderr, "%s: --%s does not apply to %s (it is an option of %s)\n", cli_prog, fl->spec.name,
                    name, who);
            return 2;
        }
        if (!fl->kwarg) continue;
        nb_value v;
        if (fl->spec.dst == (void *)&milestones) {
            double m[64];
            int n = args_list(milestones, m, 64);
            for (int j = 0; j < n; j++)
                if (!(m[j] >= 0 && m[j] <= 1e15 && m[j] == floor(m[j]))) n = -1;
            if (n < 1) {
                fprintf(stderr, "%s: --milestones: a list of epochs like 30,80, got '%s'\n", cli_prog, milestones);
                return 2;
            }
            v = nb_pair(fl->kwarg, 0, 0);
            v.len = n;
            v.list = NULL;
            if (n <= NB_VALUE_INLINE) memcpy(v.inl, m, sizeof(double) * (size_t)n);
            else {
                static double keep[64];
                memcpy(keep, m, sizeof keep);
                v.list = keep;
            }
        } else if (fl->spec.dst == (void *)&no_cycle_momentum) {
            v = nb_bool(fl->kwarg, !no_cycle_momentum);
        } else if (!cli_kw_value(fl, &v)) {
            v = nb_str(fl->kwarg, *(const char **)fl->spec.dst);
        }
        kwargs[nkwargs++] = v;
    }
    if (warmup < 0) {
        fprintf(stderr, "%s: --warmup must be >= 0\n", cli_prog);
        return 2;
    }
    for (size_t r = 0; chosen >= 0 && r < sizeof recipe / sizeof recipe[0]; r++)
        if (!strcmp(scheds[chosen].cls, recipe[r].sched) && !has(recipe[r].kwarg))
            kwargs[nkwargs++] = nb_num(recipe[r].kwarg, recipe[r].v);
    return 0;
}

nb_sched *sched_cli_build(nb_optim *opt, int64_t steps_per_epoch, int64_t epochs, bool *failed) {
    *failed = sched_cli_check() != 0; /* again: a caller may not have checked */
    if (*failed || chosen < 0) return NULL;
    /* the run's values for what PyTorch requires */
    nb_value kw[NFLAGS + 8];
    int n = nkwargs;
    memcpy(kw, kwargs, sizeof(nb_value) * (size_t)n);
    if (takes(chosen, "T_max") && !has("T_max")) kw[n++] = nb_int("T_max", epochs - warmup > 0 ? epochs - warmup : 1);
    if (takes(chosen, "steps_per_epoch") && !has("total_steps")) {
        kw[n++] = nb_int("epochs", epochs);
        kw[n++] = nb_int("steps_per_epoch", steps_per_epoch);
    }
    if (takes(chosen, "base_lr") && !has("base_lr")) kw[n++] = nb_num("base_lr", nb_optim_get(opt, 0, "lr"));
    nb_clear_error();
    nb_sched *s = nb_sched_new(scheds[chosen].cls, opt, kw, n);
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
    return scheds[chosen].metric ? nb_sched_step_metric(s, test_loss) : nb_sched_step(s);
}
