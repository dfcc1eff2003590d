/* constant_lr.c - ConstantLR(factor=1/3, total_iters=5): lr * factor until total_iters.
 *   chainable:   e == 0: lr * factor;  e == total_iters: lr * (1 / factor);  else lr
 *   closed form: base_lr * (factor + (e >= total_iters) * (1 - factor)) */
#include <math.h>
#include "scheduler.h"

typedef struct constant_lr {
    nb_sched base;
    double factor;
    int64_t total_iters;
} constant_lr;

static int constant_get(nb_sched *s, double *lrs) {
    const constant_lr *k = (const constant_lr *)s;
    double f = 1.0;
    if (s->last_epoch == 0) {
        f = k->factor;
    } else if (s->last_epoch == k->total_iters) {
        if (k->factor == 0.0) return nb__error(NB_EINVAL, "ConstantLR: float division by zero");
        f = 1.0 / k->factor;
    }
    for (int g = 0; g < s->ngroups; g++) lrs[g] = f == 1.0 ? nb__sched_group_lr(s, g) : nb__sched_group_lr(s, g) * f;
    return NB_OK;
}

static int constant_closed(nb_sched *s, double *lrs) {
    const constant_lr *k = (const constant_lr *)s;
    double f = k->factor + (double)(s->last_epoch >= k->total_iters) * (1.0 - k->factor);
    for (int g = 0; g < s->ngroups; g++) lrs[g] = s->base_lrs[g] * f;
    return NB_OK;
}

static int constant_check(const nb_sched *s) {
    const constant_lr *k = (const constant_lr *)s;
    if (k->factor > 1.0 || k->factor < 0 || isnan(k->factor))
        return nb__error(NB_EINVAL, "Constant multiplicative factor expected to be between 0 and 1.");
    if (k->total_iters < 0)
        return nb__error(NB_EINVAL, "ConstantLR: total_iters must be >= 0, got %lld", (long long)k->total_iters);
    return NB_OK;
}

static const nb_sched_field constant_fields[] = {
    {"factor", NB_VALUE_NUMBER, offsetof(constant_lr, factor)},
    {"total_iters", NB_VALUE_INT, offsetof(constant_lr, total_iters)},
};

static nb_sched *make(nb_optim *o, double factor, int64_t total_iters, int64_t last_epoch) {
    constant_lr tmp = {.factor = factor, .total_iters = total_iters};
    if (constant_check(&tmp.base)) return NULL;
    constant_lr *k = (constant_lr *)nb__sched_alloc(&nb__constant_algo, o);
    if (!k) return NULL;
    k->factor = factor;
    k->total_iters = total_iters;
    return nb__sched_start(&k->base, last_epoch);
}

nb_sched *nb_constant_lr(nb_optim *o, double factor, int64_t total_iters) {
    return make(o, factor, total_iters, -1);
}

static nb_sched *build(nb_optim *o, const nb_value *kw) {
    double factor;
    int64_t total_iters, last_epoch;
    if (nb__kw_num(&nb__constant_algo, &kw[0], &factor) || nb__kw_int(&nb__constant_algo, &kw[1], &total_iters) ||
        nb__kw_int(&nb__constant_algo, &kw[2], &last_epoch))
        return NULL;
    return make(o, factor, total_iters, last_epoch);
}

static const nb_value kwargs[] = {NB_DEF_NUM("factor", 1.0 / 3), NB_DEF_INT("total_iters", 5),
                                  NB_DEF_INT("last_epoch", -1)};

const nb_sched_algo nb__constant_algo = {
    .name = "ConstantLR", .size = sizeof(constant_lr), .get_lr = constant_get,
    .closed_form = constant_closed, .check = constant_check, .fields = constant_fields, .nfields = 2,
    .kwargs = kwargs, .nkwargs = 3, .build = build};
