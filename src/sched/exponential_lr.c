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

static nb_sched *make(nb_optim *o, double gamma, int64_t last_epoch) {
    exponential_lr tmp = {.gamma = gamma};
    if (exponential_check(&tmp.base)) return NULL;
    exponential_lr *k = (exponential_lr *)nb__sched_alloc(&nb__exponential_algo, o);
    if (!k) return NULL;
    k->gamma = gamma;
    return nb__sched_start(&k->base, last_epoch);
}

nb_sched *nb_exponential_lr(nb_optim *o, double gamma) { return make(o, gamma, -1); }

static nb_sched *build(nb_optim *o, const nb_value *kw) {
    double gamma;
    int64_t last_epoch;
    if (nb__kw_num(&nb__exponential_algo, &kw[0], &gamma) || nb__kw_int(&nb__exponential_algo, &kw[1], &last_epoch))
        return NULL;
    return make(o, gamma, last_epoch);
}

static const nb_value kwargs[] = {NB_DEF_NONE("gamma"), NB_DEF_INT("last_epoch", -1)};

const nb_sched_algo nb__exponential_algo = {
    .name = "ExponentialLR", .size = sizeof(exponential_lr), .get_lr = exponential_get,
    .closed_form = exponential_closed, .check = exponential_check, .fields = exponential_fields,
    .nfields = 1, .kwargs = kwargs, .nkwargs = 2, .nrequired = 1, .build = build};
