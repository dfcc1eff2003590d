/* cosine_annealing_lr.c - CosineAnnealingLR(T_max, eta_min=0), PyTorch's recursive form:
 *   e == 0:                      lr
 *   first step with e > 0:       eta_min + (base - eta_min) * (1 + cos(e pi / T)) / 2
 *   (e - 1 - T) % (2T) == 0:     lr + (base - eta_min) * (1 - cos(pi / T)) / 2
 *   else:                        (1 + cos(pi e / T)) / (1 + cos(pi (e-1) / T)) * (lr - eta_min) + eta_min
 *   closed form:                 eta_min + (base - eta_min) * (1 + cos(pi e / T)) / 2
 * Past T_max the recursive form climbs back up to base_lr and repeats (period 2 T_max). */
#include <math.h>
#include "scheduler.h"

typedef struct cosine_lr {
    nb_sched base;
    int64_t T_max;
    double eta_min;
} cosine_lr;

static int cosine_get(nb_sched *s, double *lrs) {
    const cosine_lr *k = (const cosine_lr *)s;
    int64_t e = s->last_epoch, T = k->T_max;
    double eta = k->eta_min, pi = M_PI;
    for (int g = 0; g < s->ngroups; g++) {
        double lr = nb__sched_group_lr(s, g), base = s->base_lrs[g];
        if (e == 0)
            lrs[g] = lr;
        else if (s->step_count == 1 && e > 0)
            lrs[g] = eta + (base - eta) * (1 + cos((double)e * pi / (double)T)) / 2;
        else if (nb__floormod(e - 1 - T, 2 * T) == 0)
            lrs[g] = lr + (base - eta) * (1 - cos(pi / (double)T)) / 2;
        else
            lrs[g] = (1 + cos(pi * (double)e / (double)T)) / (1 + cos(pi * (double)(e - 1) / (double)T)) *
                         (lr - eta) + eta;
    }
    return NB_OK;
}

static int cosine_closed(nb_sched *s, double *lrs) {
    const cosine_lr *k = (const cosine_lr *)s;
    double eta = k->eta_min;
    for (int g = 0; g < s->ngroups; g++)
        lrs[g] = eta + (s->base_lrs[g] - eta) * (1 + cos(M_PI * (double)s->last_epoch / (double)k->T_max)) / 2;
    return NB_OK;
}

static int cosine_check(const nb_sched *s) {
    const cosine_lr *k = (const cosine_lr *)s;
    if (k->T_max <= 0)
        return nb__error(NB_EINVAL, "CosineAnnealingLR: T_max must be a positive integer, got %lld",
                         (long long)k->T_max);
    if (!isfinite(k->eta_min))
        return nb__error(NB_EINVAL, "CosineAnnealingLR: eta_min must be finite, got %s", nb__pyfloat(k->eta_min, 0));
    return NB_OK;
}

static const nb_sched_field cosine_fields[] = {
    {"T_max", NB_VALUE_INT, offsetof(cosine_lr, T_max)},
    {"eta_min", NB_VALUE_NUMBER, offsetof(cosine_lr, eta_min)},
};

static nb_sched *make(nb_optim *o, int64_t T_max, double eta_min, int64_t last_epoch) {
    cosine_lr tmp = {.T_max = T_max, .eta_min = eta_min};
    if (cosine_check(&tmp.base)) return NULL;
    cosine_lr *k = (cosine_lr *)nb__sched_alloc(&nb__cosine_algo, o);
    if (!k) return NULL;
    k->T_max = T_max;
    k->eta_min = eta_min;
    return nb__sched_start(&k->base, last_epoch);
}

nb_sched *nb_cosine_annealing_lr(nb_optim *o, int64_t T_max, double eta_min) { return make(o, T_max, eta_min, -1); }

static nb_sched *build(nb_optim *o, const nb_value *kw) {
    double eta_min;
    int64_t T_max, last_epoch;
    if (nb__kw_int(&nb__cosine_algo, &kw[0], &T_max) || nb__kw_num(&nb__cosine_algo, &kw[1], &eta_min) ||
        nb__kw_int(&nb__cosine_algo, &kw[2], &last_epoch))
        return NULL;
    return make(o, T_max, eta_min, last_epoch);
}

static const nb_value kwargs[] = {NB_DEF_NONE("T_max"), NB_DEF_NUM("eta_min", 0), NB_DEF_INT("last_epoch", -1)};

const nb_sched_algo nb__cosine_algo = {
    .name = "CosineAnnealingLR", .size = sizeof(cosine_lr), .get_lr = cosine_get,
    .closed_form = cosine_closed, .check = cosine_check, .fields = cosine_fields, .nfields = 2,
    .kwargs = kwargs, .nkwargs = 3, .nrequired = 1, .build = build};
