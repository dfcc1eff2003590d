/* reduce_lr_on_plateau.c - ReduceLROnPlateau: lr *= factor when a metric stops improving.
 *   better: min/rel a < best (1 - th), min/abs a < best - th, max/rel a > best (1 + th),
 *           max/abs a > best + th
 *   step(metric): better ? (best = a, bad = 0) : bad++; in cooldown: cooldown--, bad = 0;
 *                 bad > patience: lr = max(lr * factor, min_lr) when that lowers lr by > eps,
 *                 cooldown = cooldown period, bad = 0
 * Not an _LRScheduler in PyTorch 1.13: no initial step, no initial_lr. */
#include <math.h>
#include "scheduler.h"

typedef struct plateau {
    nb_sched base;
    double factor, threshold, eps, best, mode_worse;
    double *min_lrs;
    int64_t patience, cooldown, cooldown_counter, num_bad_epochs;
    char mode[NB_VALUE_NAME_MAX], threshold_mode[NB_VALUE_NAME_MAX];
} plateau;

static bool is_better(const plateau *k, double a) {
    bool rel = k->threshold_mode[0] == 'r';
    if (k->mode[1] == 'i') return rel ? a < k->best * (1. - k->threshold) : a < k->best - k->threshold;
    return rel ? a > k->best * (k->threshold + 1.) : a > k->best + k->threshold;
}

static int plateau_step(nb_sched *s, double metric) {
    plateau *k = (plateau *)s;
    s->last_epoch++;
    if (is_better(k, metric)) {
        k->best = metric;
        k->num_bad_epochs = 0;
    } else {
        k->num_bad_epochs++;
    }
    if (k->cooldown_counter > 0) {
        k->cooldown_counter--;
        k->num_bad_epochs = 0; /* ignore bad epochs in cooldown */
    }
    if (k->num_bad_epochs > k->patience) {
        for (int g = 0; g < s->ngroups; g++) {
            double old = nb__sched_group_lr(s, g), lr = old * k->factor;
            if (k->min_lrs[g] > lr) lr = k->min_lrs[g]; /* max(old * factor, min_lr) */
            if (old - lr > k->eps) {
                int rc = nb__optim_write(s->opt, g, "lr", -1, lr);
                if (rc) return rc;
            }
        }
        k->cooldown_counter = k->cooldown;
        k->num_bad_epochs = 0;
    }
    for (int g = 0; g < s->ngroups; g++) s->last_lr[g] = nb__sched_group_lr(s, g);
    return NB_OK;
}

static int plateau_check(const nb_sched *s) {
    const plateau *k = (const plateau *)s;
    if (k->factor >= 1.0) return nb__error(NB_EINVAL, "Factor should be < 1.0.");
    if (strcmp(k->mode, "min") && strcmp(k->mode, "max"))
        return nb__error(NB_EINVAL, "mode %s is unknown!", k->mode);
    if (strcmp(k->threshold_mode, "rel") && strcmp(k->threshold_mode, "abs"))
        return nb__error(NB_EINVAL, "threshold mode %s is unknown!", k->threshold_mode);
    if (k->num_bad_epochs < 0 || k->cooldown_counter < 0)
        return nb__error(NB_EINVAL, "ReduceLROnPlateau: num_bad_epochs and cooldown_counter must be >= 0");
    return NB_OK;
}

static int plateau_load(nb_sched *s, const nb_sched_dict *sd, bool commit) {
    (void)sd;
    plateau *k = (plateau *)s;
    if (commit) k->mode_worse = k->mode[1] == 'i' ? INFINITY : -INFINITY; /* _init_is_better */
    return NB_OK;
}

static const nb_sched_field plateau_fields[] = {
    {"factor", NB_VALUE_NUMBER, offsetof(plateau, factor)},
    {"min_lrs", NB_VALUE_LIST, offsetof(plateau, min_lrs)},
    {"patience", NB_VALUE_INT, offsetof(plateau, patience)},
    {"cooldown", NB_VALUE_INT, offsetof(plateau, cooldown)},
    {"cooldown_counter", NB_VALUE_INT, offsetof(plateau, cooldown_counter)},
    {"mode", NB_VALUE_STRING, offsetof(plateau, mode)},
    {"threshold", NB_VALUE_NUMBER, offsetof(plateau, threshold)},
    {"threshold_mode", NB_VALUE_STRING, offsetof(plateau, threshold_mode)},
    {"best", NB_VALUE_NUMBER, offsetof(plateau, best)},
    {"num_bad_epochs", NB_VALUE_INT, offsetof(plateau, num_bad_epochs)},
    {"mode_worse", NB_VALUE_NUMBER, offsetof(plateau, mode_worse)},
    {"eps", NB_VALUE_NUMBER, offsetof(plateau, eps)},
};

static nb_sched *build(nb_optim *o, const nb_value *kw);

static const nb_value kwargs[] = {NB_DEF_STR("mode", "min"), NB_DEF_NUM("factor", 0.1), NB_DEF_INT("patience", 10),
                                  NB_DEF_NUM("threshold", 1e-4), NB_DEF_STR("threshold_mode", "rel"),
                                  NB_DEF_INT("cooldown", 0), NB_DEF_NUM("min_lr", 0), NB_DEF_NUM("eps", 1e-8)};

const nb_sched_algo nb__plateau_algo = {
    .name = "ReduceLROnPlateau", .size = sizeof(plateau),
    .step_metric = plateau_step, .check = plateau_check, .load = plateau_load,
    .fields = plateau_fields, .nfields = 12, .no_epoch = true, .kwargs = kwargs,
    .nkwargs = NB_COUNT(kwargs), .build = build};

nb_plateau_opts nb_plateau_defaults(void) {
    return (nb_plateau_opts){.mode = "min", .factor = 0.1, .patience = 10, .threshold = 1e-4,
                             .threshold_mode = "rel", .cooldown = 0, .min_lr = 0, .eps = 1e-8};
}

nb_sched *nb_reduce_lr_on_plateau(nb_optim *o, const nb_plateau_opts *opts) {
    nb_plateau_opts p = opts ? *opts : nb_plateau_defaults();
    if (p.factor >= 1.0) return nb__null(NB_EINVAL, "Factor should be < 1.0.");
    plateau *k = (plateau *)nb__sched_alloc(&nb__plateau_algo, o);
    if (!k) return NULL;
    nb_sched *s = &k->base;
    if (!(k->min_lrs = nb__sched_group_array(s))) return nb__sched_fail(s);
    if (p.min_lrs || p.n_min_lrs) {
        if (!p.min_lrs || p.n_min_lrs != s->ngroups) {
            nb__error(NB_EINVAL, "expected %d min_lrs, got %d", s->ngroups, p.n_min_lrs);
            return nb__sched_fail(s);
        }
    }
    if (nb__sched_per_group(s, "min_lr", p.min_lr, p.min_lrs, p.n_min_lrs, k->min_lrs) ||
        nb__sched_choice(k->mode, p.mode, (const char *[]){"min", "max", NULL}, "mode %s is unknown!") ||
        nb__sched_choice(k->threshold_mode, p.threshold_mode, (const char *[]){"rel", "abs", NULL},
                         "threshold mode %s is unknown!"))
        return nb__sched_fail(s);
    k->factor = p.factor;
    k->patience = p.patience;
    k->cooldown = p.cooldown;
    k->threshold = p.threshold;
    k->eps = p.eps;
    k->mode_worse = k->best = k->mode[1] == 'i' ? INFINITY : -INFINITY;
    s->last_epoch = 0;
    for (int g = 0; g < s->ngroups; g++) s->base_lrs[g] = s->last_lr[g] = nb__sched_group_lr(s, g);
    return s;
}

static nb_sched *build(nb_optim *o, const nb_value *kw) {
    const nb_sched_algo *a = &nb__plateau_algo;
    nb_plateau_opts p = nb_plateau_defaults();
    p.mode = nb__kw_str(&kw[0]);
    p.threshold_mode = nb__kw_str(&kw[4]);
    if (nb__kw_num(a, &kw[1], &p.factor) || nb__kw_int(a, &kw[2], &p.patience) ||
        nb__kw_num(a, &kw[3], &p.threshold) || nb__kw_int(a, &kw[5], &p.cooldown) ||
        nb__kw_per_group(a, &kw[6], &p.min_lr, &p.min_lrs, &p.n_min_lrs) || nb__kw_num(a, &kw[7], &p.eps))
        return NULL;
    return nb_reduce_lr_on_plateau(o, &p);
}
