/* onecycle_lr.c - OneCycleLR: the 1cycle policy, stepped after every batch.
 *
 * Construction writes into each group initial_lr = max_lr / div_factor, max_lr, min_lr =
 * initial_lr / final_div_factor and (cycle_momentum) max_momentum, base_momentum. Phases
 * (end steps as PyTorch computes them, in double):
 *   two-phase:   [pct*T - 1: initial -> max, mom max -> base], [T - 1: max -> min, mom base -> max]
 *   three_phase: [pct*T - 1: initial -> max], [2 pct T - 2: max -> initial], [T - 1: initial -> min]
 * Step e uses the first phase with e <= end (or the last), pct = (e - start) / (end - start),
 * start being the previous phase's end, and anneals:
 *   cos:    end + (start - end) / 2 * (cos(pi pct) + 1)      linear: (end - start) pct + start
 * Momentum goes to SGD's "momentum" or Adam's betas[0]. Step T is allowed, step T + 1 fails. */
#include <math.h>
#include <stdio.h>
#include "scheduler.h"

typedef struct onecycle_lr {
    nb_sched base;
    int64_t total_steps;
    double pct_start;
    bool three_phase, cycle_momentum, use_beta1;
    char anneal[NB_VALUE_NAME_MAX];
} onecycle_lr;

typedef struct phase {
    double end_step;
    const char *start_lr, *end_lr, *start_mom, *end_mom;
} phase;

static int phases(const onecycle_lr *k, phase *ph) {
    double T = (double)k->total_steps;
    if (k->three_phase) {
        ph[0] = (phase){k->pct_start * T - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"};
        ph[1] = (phase){2 * k->pct_start * T - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"};
        ph[2] = (phase){T - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"};
        return 3;
    }
    ph[0] = (phase){k->pct_start * T - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"};
    ph[1] = (phase){T - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"};
    return 2;
}

static double anneal(const onecycle_lr *k, double start, double end, double pct) {
    if (k->anneal[0] == 'c') {
        double cos_out = cos(M_PI * pct) + 1;
        return end + (start - end) / 2.0 * cos_out;
    }
    return (end - start) * pct + start;
}

static int group_value(const nb_sched *s, int g, const char *name, double *v) {
    *v = nb_optim_get(s->opt, g, name);
    if (isnan(*v) && !nb_optim_get_value(s->opt, g, name))
        return nb__error(NB_EINVAL, "OneCycleLR: param_groups[%d] has no '%s'", g, name);
    return NB_OK;
}

static int onecycle_get(nb_sched *s, double *lrs) {
    const onecycle_lr *k = (const onecycle_lr *)s;
    int64_t step = s->last_epoch;
    if (step > k->total_steps)
        return nb__error(NB_EINVAL, "Tried to step %lld times. The specified number of total steps is %lld",
                         (long long)(step + 1), (long long)k->total_steps);
    phase ph[3];
    int np = phases(k, ph);
    for (int g = 0; g < s->ngroups; g++) {
        double start_step = 0;
        for (int i = 0; i < np; i++) {
            double end_step = ph[i].end_step;
            if ((double)step <= end_step || i == np - 1) {
                if (end_step - start_step == 0) return nb__error(NB_EINVAL, "OneCycleLR: float division by zero");
                double pct = ((double)step - start_step) / (end_step - start_step), a, b;
                if (group_value(s, g, ph[i].start_lr, &a) || group_value(s, g, ph[i].end_lr, &b)) return NB_EINVAL;
                lrs[g] = anneal(k, a, b, pct);
                if (k->cycle_momentum) {
                    if (group_value(s, g, ph[i].start_mom, &a) || group_value(s, g, ph[i].end_mom, &b))
                        return NB_EINVAL;
                    s->moms[g] = anneal(k, a, b, pct);
                }
                break;
            }
            start_step = end_step;
        }
    }
    return NB_OK;
}

static int check_momentum_support(const nb_optim *o) {
    if (!nb_optim_has_default(o, "momentum") && !nb_optim_has_default(o, "betas"))
        return nb__error(NB_EINVAL, "optimizer must support momentum with `cycle_momentum` option enabled");
    return NB_OK;
}

static int onecycle_check(const nb_sched *s) {
    const onecycle_lr *k = (const onecycle_lr *)s;
    if (k->total_steps <= 0)
        return nb__error(NB_EINVAL, "Expected positive integer total_steps, but got %lld", (long long)k->total_steps);
    if (!(k->pct_start >= 0 && k->pct_start <= 1))
        return nb__error(NB_EINVAL, "Expected float between 0 and 1 pct_start, but got %s",
                         nb__pyfloat(k->pct_start, 0));
    if (strcmp(k->anneal, "cos") && strcmp(k->anneal, "linear"))
        return nb__error(NB_EINVAL, "anneal_strategy must by one of 'cos' or 'linear', instead got %s", k->anneal);
    if (k->cycle_momentum && (check_momentum_support(s->opt) ||
                              nb__sched_check_beta1(s, "OneCycleLR", k->use_beta1)))
        return NB_EINVAL;
    return NB_OK;
}

static int onecycle_load(nb_sched *s, const nb_sched_dict *sd, bool commit) {
    (void)sd;
    const onecycle_lr *k = (const onecycle_lr *)s;
    if (commit) s->mom = nb__sched_mom_kind(k->cycle_momentum, k->use_beta1);
    return NB_OK;
}

static const nb_sched_field onecycle_fields[] = {
    {"total_steps", NB_VALUE_INT, offsetof(onecycle_lr, total_steps)},
    {"pct_start", NB_VALUE_NUMBER, offsetof(onecycle_lr, pct_start)},
    {"three_phase", NB_VALUE_BOOL, offsetof(onecycle_lr, three_phase)},
    {"_anneal_func_type", NB_VALUE_STRING, offsetof(onecycle_lr, anneal)},
    {"cycle_momentum", NB_VALUE_BOOL, offsetof(onecycle_lr, cycle_momentum)},
    {"use_beta1", NB_VALUE_BOOL, offsetof(onecycle_lr, use_beta1)},
};

static nb_sched *build(nb_optim *o, const nb_value *kw);

static const nb_value kwargs[] = {
    NB_DEF_NONE("max_lr"), NB_DEF_NONE("total_steps"), NB_DEF_NONE("epochs"), NB_DEF_NONE("steps_per_epoch"),
    NB_DEF_NUM("pct_start", 0.3), NB_DEF_STR("anneal_strategy", "cos"), NB_DEF_BOOL("cycle_momentum", 1),
    NB_DEF_NUM("base_momentum", 0.85), NB_DEF_NUM("max_momentum", 0.95), NB_DEF_NUM("div_factor", 25.),
    NB_DEF_NUM("final_div_factor", 1e4), NB_DEF_BOOL("three_phase", 0), NB_DEF_INT("last_epoch", -1)};

const nb_sched_algo nb__onecycle_algo = {
    .name = "OneCycleLR", .size = sizeof(onecycle_lr), .get_lr = onecycle_get, .check = onecycle_check,
    .load = onecycle_load, .fields = onecycle_fields, .nfields = 6, .kwargs = kwargs,
    .nkwargs = NB_COUNT(kwargs), .nrequired = 1, .build = build};

nb_onecycle_opts nb_onecycle_defaults(void) {
    return (nb_onecycle_opts){.max_lr = NAN, .total_steps = NB_SCHED_NONE, .epochs = NB_SCHED_NONE,
                              .steps_per_epoch = NB_SCHED_NONE, .pct_start = 0.3, .anneal_strategy = "cos",
                              .cycle_momentum = true, .base_momentum = 0.85, .max_momentum = 0.95,
                              .div_factor = 25., .final_div_factor = 1e4, .three_phase = false,
                              .last_epoch = -1};
}

nb_sched *nb_onecycle_lr(nb_optim *o, const nb_onecycle_opts *opts) {
    nb_onecycle_opts p = opts ? *opts : nb_onecycle_defaults();
    int64_t T;
    if (p.total_steps == NB_SCHED_NONE && p.epochs == NB_SCHED_NONE && p.steps_per_epoch == NB_SCHED_NONE)
        return nb__null(NB_EINVAL, "You must define either total_steps OR (epochs AND steps_per_epoch)");
    if (p.total_steps != NB_SCHED_NONE) {
        if (p.total_steps <= 0)
            return nb__null(NB_EINVAL, "Expected positive integer total_steps, but got %lld", (long long)p.total_steps);
        T = p.total_steps;
    } else {
        if (p.epochs == NB_SCHED_NONE || p.steps_per_epoch == NB_SCHED_NONE) /* PyTorch 2.x's message */
            return nb__null(NB_EINVAL, "You must define either total_steps OR (epochs AND steps_per_epoch)");
        if (p.epochs <= 0)
            return nb__null(NB_EINVAL, "Expected positive integer epochs, but got %lld", (long long)p.epochs);
        if (p.steps_per_epoch <= 0)
            return nb__null(NB_EINVAL, "Expected positive integer steps_per_epoch, but got %lld",
                            (long long)p.steps_per_epoch);
        if (p.epochs > INT64_MAX / p.steps_per_epoch)
            return nb__null(NB_EINVAL, "OneCycleLR: epochs * steps_per_epoch overflows");
        T = p.epochs * p.steps_per_epoch;
    }
    onecycle_lr *k = (onecycle_lr *)nb__sched_alloc(&nb__onecycle_algo, o);
    if (!k) return NULL;
    nb_sched *s = &k->base;
    k->total_steps = T;
    k->pct_start = p.pct_start;
    k->three_phase = p.three_phase;
    k->cycle_momentum = p.cycle_momentum;
    k->use_beta1 = nb_optim_has_default(o, "betas");
    if (!(p.pct_start >= 0 && p.pct_start <= 1)) {
        nb__error(NB_EINVAL, "Expected float between 0 and 1 pct_start, but got %s", nb__pyfloat(p.pct_start, 0));
        return nb__sched_fail(s);
    }
    if (nb__sched_choice(k->anneal, p.anneal_strategy, (const char *[]){"cos", "linear", NULL},
                         "anneal_strategy must by one of 'cos' or 'linear', instead got %s"))
        return nb__sched_fail(s);
    double *max_lrs = s->lrs, *max_m = s->moms, *base_m = s->snap_vals; /* free scratch for now */
    if (isnan(p.max_lr) && !p.max_lrs) {
        nb__error(NB_EINVAL, "OneCycleLR: max_lr is required");
        return nb__sched_fail(s);
    }
    if (!(p.div_factor > 0) || !(p.final_div_factor > 0)) {
        nb__error(NB_EINVAL, "OneCycleLR: div_factor and final_div_factor must be > 0, got %s and %s",
                  nb__pyfloat(p.div_factor, 0), nb__pyfloat(p.final_div_factor, 1));
        return nb__sched_fail(s);
    }
    if (nb__sched_per_group(s, "max_lr", p.max_lr, p.max_lrs, p.n_max_lrs, max_lrs)) return nb__sched_fail(s);
    if (p.cycle_momentum &&
        (check_momentum_support(o) ||
         nb__sched_per_group(s, "max_momentum", p.max_momentum, p.max_momentums, p.n_max_momentums, max_m) ||
         nb__sched_per_group(s, "base_momentum", p.base_momentum, p.base_momentums, p.n_base_momentums, base_m)))
        return nb__sched_fail(s);
    if (nb__sched_backup(s)) return nb__sched_fail(s);
    for (int g = 0; p.last_epoch == -1 && g < s->ngroups; g++) {
        nb_value init = nb_num("initial_lr", max_lrs[g] / p.div_factor), mx = nb_num("max_lr", max_lrs[g]);
        nb_value mn = nb_num("min_lr", init.num / p.final_div_factor);
        if (nb_optim_put(o, g, &init) || nb_optim_put(o, g, &mx) || nb_optim_put(o, g, &mn)) return nb__sched_fail(s);
        if (!p.cycle_momentum) continue;
        nb_value vm = nb_num("max_momentum", max_m[g]), vb = nb_num("base_momentum", base_m[g]);
        int rc = k->use_beta1 ? nb__optim_write(o, g, "betas", 0, max_m[g])
                              : nb__optim_write(o, g, "momentum", -1, max_m[g]);
        if (rc || nb_optim_put(o, g, &vm) || nb_optim_put(o, g, &vb)) return nb__sched_fail(s);
    }
    s->mom = nb__sched_mom_kind(p.cycle_momentum, k->use_beta1);
    return nb__sched_start(s, p.last_epoch);
}

static nb_sched *build(nb_optim *o, const nb_value *kw) {
    const nb_sched_algo *a = &nb__onecycle_algo;
    nb_onecycle_opts p = nb_onecycle_defaults();
    p.anneal_strategy = nb__kw_str(&kw[5]);
    p.cycle_momentum = kw[6].num != 0;
    p.three_phase = kw[11].num != 0;
    int64_t *ints[] = {&p.total_steps, &p.epochs, &p.steps_per_epoch};
    for (int i = 0; i < 3; i++)
        if (kw[1 + i].kind != NB_VALUE_NONE && nb__kw_int(a, &kw[1 + i], ints[i])) return NULL;
    if (nb__kw_per_group(a, &kw[0], &p.max_lr, &p.max_lrs, &p.n_max_lrs) ||
        nb__kw_num(a, &kw[4], &p.pct_start) ||
        nb__kw_per_group(a, &kw[7], &p.base_momentum, &p.base_momentums, &p.n_base_momentums) ||
        nb__kw_per_group(a, &kw[8], &p.max_momentum, &p.max_momentums, &p.n_max_momentums) ||
        nb__kw_num(a, &kw[9], &p.div_factor) || nb__kw_num(a, &kw[10], &p.final_div_factor) ||
        nb__kw_int(a, &kw[12], &p.last_epoch))
        return NULL;
    return nb_onecycle_lr(o, &p);
}
