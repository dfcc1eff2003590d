/* cyclic_lr.c - CyclicLR: the lr cycles between base_lr and max_lr (stepped after every batch).
 *   cycle = floor(1 + e / total),  x = 1 + e / total - cycle       (total = up + down)
 *   sf = x <= up/total ? x / ratio : (x - 1) / (ratio - 1)
 *   lr = base + (max - base) * sf * scale(cycle or e)
 *   momentum = max_m - (max_m - base_m) * sf * scale(cycle or e)    (cycle_momentum)
 * scale: triangular 1, triangular2 1 / 2^(cycle - 1), exp_range gamma^e, or a C function.
 * Construction sets each group's lr to base_lr. Momentum goes to SGD's "momentum" or, as in
 * PyTorch 2.x (1.13 refuses optimizers without "momentum"), to Adam's betas[0]. */
#include <math.h>
#include <stdio.h>
#include "scheduler.h"

typedef struct cyclic_lr {
    nb_sched base;
    double *max_lrs, *base_momentums, *max_momentums; /* one per group */
    double total_size, step_ratio, gamma;
    char mode[NB_VALUE_NAME_MAX], scale_mode[NB_VALUE_NAME_MAX];
    bool cycle_momentum, use_beta1;
    nb_scale_fn scale_fn;
    void *scale_user;
} cyclic_lr;

static double scale(const cyclic_lr *k, double x) {
    if (k->scale_fn) return k->scale_fn(x, k->scale_user);
    if (!strcmp(k->mode, "triangular2")) return 1 / pow(2., x - 1);
    if (!strcmp(k->mode, "exp_range")) return pow(k->gamma, x);
    return 1.;
}

static int cyclic_get(nb_sched *s, double *lrs) {
    const cyclic_lr *k = (const cyclic_lr *)s;
    double e = (double)s->last_epoch;
    double cycle = floor(1 + e / k->total_size);
    double x = 1. + e / k->total_size - cycle;
    double sf = x <= k->step_ratio ? x / k->step_ratio : (x - 1) / (k->step_ratio - 1);
    double sc = scale(k, strcmp(k->scale_mode, "cycle") == 0 ? cycle : e);
    for (int g = 0; g < s->ngroups; g++) {
        double base_height = (k->max_lrs[g] - s->base_lrs[g]) * sf;
        lrs[g] = s->base_lrs[g] + base_height * sc;
        if (k->cycle_momentum) {
            double mh = (k->max_momentums[g] - k->base_momentums[g]) * sf;
            s->moms[g] = k->max_momentums[g] - mh * sc;
        }
    }
    return NB_OK;
}

static int check_momentum_support(const nb_optim *o) {
    if (!nb_optim_has_default(o, "momentum") && !nb_optim_has_default(o, "betas"))
        return nb__error(NB_EINVAL, "optimizer must support momentum or beta1 with `cycle_momentum` option enabled");
    return NB_OK;
}

static int cyclic_check(const nb_sched *s) {
    const cyclic_lr *k = (const cyclic_lr *)s;
    if (!(k->total_size > 0) || !(k->step_ratio > 0 && k->step_ratio <= 1) || !isfinite(k->total_size))
        return nb__error(NB_EINVAL, "CyclicLR: total_size %s / step_ratio %s out of range",
                         nb__pyfloat(k->total_size, 0), nb__pyfloat(k->step_ratio, 1));
    if (!k->scale_fn && strcmp(k->mode, "triangular") && strcmp(k->mode, "triangular2") && strcmp(k->mode, "exp_range"))
        return nb__error(NB_EINVAL, "mode is invalid and scale_fn is None");
    if (k->cycle_momentum && (check_momentum_support(s->opt) ||
                              nb__sched_check_beta1(s, "CyclicLR", k->use_beta1)))
        return NB_EINVAL;
    return NB_OK;
}

static int cyclic_load(nb_sched *s, const nb_sched_dict *sd, bool commit) {
    (void)sd;
    const cyclic_lr *k = (const cyclic_lr *)s;
    if (commit) s->mom = nb__sched_mom_kind(k->cycle_momentum, k->use_beta1);
    return NB_OK;
}

static const nb_sched_field cyclic_fields[] = {
    {"max_lrs", NB_VALUE_LIST, offsetof(cyclic_lr, max_lrs)},
    {"total_size", NB_VALUE_NUMBER, offsetof(cyclic_lr, total_size)},
    {"step_ratio", NB_VALUE_NUMBER, offsetof(cyclic_lr, step_ratio)},
    {"mode", NB_VALUE_STRING, offsetof(cyclic_lr, mode)},
    {"gamma", NB_VALUE_NUMBER, offsetof(cyclic_lr, gamma)},
    {"scale_mode", NB_VALUE_STRING, offsetof(cyclic_lr, scale_mode)},
    {"cycle_momentum", NB_VALUE_BOOL, offsetof(cyclic_lr, cycle_momentum)},
    {"base_momentums", NB_VALUE_LIST, offsetof(cyclic_lr, base_momentums)},
    {"max_momentums", NB_VALUE_LIST, offsetof(cyclic_lr, max_momentums)},
    {"use_beta1", NB_VALUE_BOOL, offsetof(cyclic_lr, use_beta1)},
};

static nb_sched *build(nb_optim *o, const nb_value *kw);

static const nb_value kwargs[] = {
    NB_DEF_NONE("base_lr"), NB_DEF_NONE("max_lr"), NB_DEF_NUM("step_size_up", 2000), NB_DEF_NONE("step_size_down"),
    NB_DEF_STR("mode", "triangular"), NB_DEF_NUM("gamma", 1.0), NB_DEF_STR("scale_mode", "cycle"),
    NB_DEF_BOOL("cycle_momentum", 1), NB_DEF_NUM("base_momentum", 0.8), NB_DEF_NUM("max_momentum", 0.9),
    NB_DEF_INT("last_epoch", -1)};

const nb_sched_algo nb__cyclic_algo = {
    .name = "CyclicLR", .size = sizeof(cyclic_lr), .get_lr = cyclic_get, .check = cyclic_check,
    .load = cyclic_load, .fields = cyclic_fields, .nfields = 10, .kwargs = kwargs,
    .nkwargs = NB_COUNT(kwargs), .nrequired = 2, .build = build};

nb_cyclic_opts nb_cyclic_defaults(void) {
    return (nb_cyclic_opts){.base_lr = NAN, .max_lr = NAN, .step_size_up = 2000, .step_size_down = NAN,
                            .mode = "triangular", .gamma = 1., .scale_mode = "cycle", .cycle_momentum = true,
                            .base_momentum = 0.8, .max_momentum = 0.9, .last_epoch = -1};
}

nb_sched *nb_cyclic_lr(nb_optim *o, const nb_cyclic_opts *opts) {
    nb_cyclic_opts p = opts ? *opts : nb_cyclic_defaults();
    cyclic_lr *k = (cyclic_lr *)nb__sched_alloc(&nb__cyclic_algo, o);
    if (!k) return NULL;
    nb_sched *s = &k->base;
    double *base_lrs = s->lrs; /* scratch until the first step */
    if (!(k->max_lrs = nb__sched_group_array(s)) || !(k->base_momentums = nb__sched_group_array(s)) ||
        !(k->max_momentums = nb__sched_group_array(s)))
        return nb__sched_fail(s);
    if ((isnan(p.base_lr) && !p.base_lrs) || (isnan(p.max_lr) && !p.max_lrs)) {
        nb__error(NB_EINVAL, "CyclicLR: base_lr and max_lr are required");
        return nb__sched_fail(s);
    }
    if (nb__sched_per_group(s, "base_lr", p.base_lr, p.base_lrs, p.n_base_lrs, base_lrs) ||
        nb__sched_per_group(s, "max_lr", p.max_lr, p.max_lrs, p.n_max_lrs, k->max_lrs))
        return nb__sched_fail(s);
    double up = p.step_size_up, down = isnan(p.step_size_down) ? up : p.step_size_down;
    if (!(up > 0) || !(down >= 0) || !isfinite(up) || !isfinite(down)) {
        nb__error(NB_EINVAL, "CyclicLR: step_size_up must be > 0 and step_size_down >= 0, got %s and %s",
                  nb__pyfloat(up, 0), nb__pyfloat(down, 1));
        return nb__sched_fail(s);
    }
    k->total_size = up + down;
    k->step_ratio = up / k->total_size;
    k->gamma = p.gamma;
    k->scale_fn = p.scale_fn;
    k->scale_user = p.scale_user;
    const char *modes[] = {"triangular", "triangular2", "exp_range", NULL};
    if (!p.scale_fn) {
        if (nb__sched_choice(k->mode, p.mode, modes, "mode is invalid and scale_fn is None%.0s"))
            return nb__sched_fail(s);
        snprintf(k->scale_mode, sizeof k->scale_mode, "%s", strcmp(k->mode, "exp_range") ? "cycle" : "iterations");
    } else {
        snprintf(k->mode, sizeof k->mode, "%s", p.mode ? p.mode : "");
        if (nb__sched_choice(k->scale_mode, p.scale_mode, (const char *[]){"cycle", "iterations", NULL},
                             "CyclicLR: scale_mode must be 'cycle' or 'iterations', got %s"))
            return nb__sched_fail(s);
    }
    k->cycle_momentum = p.cycle_momentum;
    k->use_beta1 = nb_optim_has_default(o, "betas");
    if (p.cycle_momentum &&
        (check_momentum_support(o) ||
         nb__sched_per_group(s, "base_momentum", p.base_momentum, p.base_momentums, p.n_base_momentums,
                             k->base_momentums) ||
         nb__sched_per_group(s, "max_momentum", p.max_momentum, p.max_momentums, p.n_max_momentums, k->max_momentums)))
        return nb__sched_fail(s);
    if (nb__sched_backup(s)) return nb__sched_fail(s);
    double keep[64], *kept = s->ngroups <= 64 ? keep : nb__malloc(sizeof(double) * (size_t)s->ngroups);
    if (!kept) return nb__sched_fail(s);
    memcpy(kept, base_lrs, sizeof(double) * (size_t)s->ngroups);
    for (int g = 0; p.last_epoch == -1 && g < s->ngroups; g++)
        if (nb__optim_write(o, g, "lr", -1, kept[g])) {
            if (kept != keep) nb__free(kept);
            return nb__sched_fail(s);
        }
    s->mom = nb__sched_mom_kind(p.cycle_momentum, k->use_beta1);
    /* the base's initial step runs with base_lrs = initial_lr; PyTorch assigns base_lr after */
    s = nb__sched_start(s, p.last_epoch);
    if (s) memcpy(s->base_lrs, kept, sizeof(double) * (size_t)s->ngroups);
    if (kept != keep) nb__free(kept);
    return s;
}

/* scale_fn is a function: not by name (nb_cyclic_lr takes one). */
static nb_sched *build(nb_optim *o, const nb_value *kw) {
    const nb_sched_algo *a = &nb__cyclic_algo;
    nb_cyclic_opts p = nb_cyclic_defaults();
    p.mode = nb__kw_str(&kw[4]);
    p.scale_mode = nb__kw_str(&kw[6]);
    p.cycle_momentum = kw[7].num != 0;
    if (nb__kw_per_group(a, &kw[0], &p.base_lr, &p.base_lrs, &p.n_base_lrs) ||
        nb__kw_per_group(a, &kw[1], &p.max_lr, &p.max_lrs, &p.n_max_lrs) || nb__kw_num(a, &kw[2], &p.step_size_up) ||
        (kw[3].kind != NB_VALUE_NONE && nb__kw_num(a, &kw[3], &p.step_size_down)) ||
        nb__kw_num(a, &kw[5], &p.gamma) ||
        nb__kw_per_group(a, &kw[8], &p.base_momentum, &p.base_momentums, &p.n_base_momentums) ||
        nb__kw_per_group(a, &kw[9], &p.max_momentum, &p.max_momentums, &p.n_max_momentums) ||
        nb__kw_int(a, &kw[10], &p.last_epoch))
        return NULL;
    return nb_cyclic_lr(o, &p);
}
