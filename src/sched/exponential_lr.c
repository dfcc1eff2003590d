/* exponential_lr.c - ExponentialLR(gamma): lr *= gamma every epoch.
 *   chainable:   e == 0 ? lr : lr * gamma
 *   closed form: base_lr * gamma ^ e */
#include <math.h>
#include "scheduler.h"

typedef struct exponential_lr {
    nb_sched base;
    double gamma;
} exponential_lr;

static int exponential_get(nb_sched *s, double *lrs) {
    double gamma = ((const exponential_lr *)s)->gamma;
    for (int g = 0; g < s->ngroups; g++)
        lrs[g] = s->last_epoch == 0 ? nb__sched_group_lr(s, g) : nb__sched_group_lr(s, g) * gamma;
    return NB_OK;
}

static int exponential_closed(nb_sched *s, double *lrs) {
    double gamma = ((const exponential_lr *)s)->gamma;
    for (int g = 0; g < s->ngroups; g++) lrs[g] = s->base_lrs[g] * pow(gamma, (double)s->last_epoch);
    return NB_OK;
}

static int exponential_check(const nb_sched *s) {
    double gamma = ((const exponential_lr *)s)->gamma;
    if (!(gamma > 0) || !isfinite(gamma))
        return nb__error(NB_EINVAL, "ExponentialLR: gamma must be > 0, got %s", nb__pyfloat(gamma, 0));
    return NB_OK;
}

static const nb_sched_field exponential_fields[] = {
    {"gamma", NB_VALUE_NUMBER, offsetof(exponential_lr, gamma)},
};

static const nb_sched_algo exponential_algo = {
    .name = "ExponentialLR", .size = sizeof(exponential_lr), .get_lr = exponential_get,
    .closed_form = exponential_closed, .check = exponential_check, .fields = exponential_fields,
    .nfields = 1};

nb_sched *nb_exponential_lr(nb_optim *o, double gamma) {
    exponential_lr tmp = {.gamma = gamma};
    if (exponential_check(&tmp.base)) return NULL;
    exponential_lr *k = (exponential_lr *)nb__sched_alloc(&exponential_algo, o);
    if (!k) return NULL;
    k->gamma = gamma;
    return nb__sched_start(&k->base, -1);
}
