/* step_lr.c - StepLR(step_size, gamma=0.1): lr *= gamma every step_size epochs.
 *   chainable:   e == 0 or e % step_size != 0 ? lr : lr * gamma
 *   closed form: base_lr * gamma ^ (e // step_size) */
#include <math.h>
#include "scheduler.h"

typedef struct step_lr {
    nb_sched base;
    int64_t step_size;
    double gamma;
} step_lr;

static int step_lr_get(nb_sched *s, double *lrs) {
    const step_lr *k = (const step_lr *)s;
    bool decay = s->last_epoch != 0 && nb__floormod(s->last_epoch, k->step_size) == 0;
    for (int g = 0; g < s->ngroups; g++)
        lrs[g] = decay ? nb__sched_group_lr(s, g) * k->gamma : nb__sched_group_lr(s, g);
    return NB_OK;
}

static int step_lr_closed(nb_sched *s, double *lrs) {
    const step_lr *k = (const step_lr *)s;
    for (int g = 0; g < s->ngroups; g++)
        lrs[g] = s->base_lrs[g] * pow(k->gamma, (double)nb__floordiv(s->last_epoch, k->step_size));
    return NB_OK;
}

static int step_lr_check(const nb_sched *s) {
    const step_lr *k = (const step_lr *)s;
    if (k->step_size <= 0)
        return nb__error(NB_EINVAL, "StepLR: step_size must be a positive integer, got %lld",
                         (long long)k->step_size);
    if (!(k->gamma > 0) || !isfinite(k->gamma))
        return nb__error(NB_EINVAL, "StepLR: gamma must be > 0, got %s", nb__pyfloat(k->gamma, 0));
    return NB_OK;
}

static const nb_sched_field step_lr_fields[] = {
    {"step_size", NB_VALUE_INT, offsetof(step_lr, step_size)},
    {"gamma", NB_VALUE_NUMBER, offsetof(step_lr, gamma)},
};

static nb_sched *make(nb_optim *o, int64_t step_size, double gamma, int64_t last_epoch) {
    step_lr tmp = {.step_size = step_size, .gamma = gamma};
    if (step_lr_check(&tmp.base)) return NULL;
    step_lr *k = (step_lr *)nb__sched_alloc(&nb__step_lr_algo, o);
    if (!k) return NULL;
    k->step_size = step_size;
    k->gamma = gamma;
    return nb__sched_start(&k->base, last_epoch);
}

nb_sched *nb_step_lr(nb_optim *o, int64_t step_size, double gamma) { return make(o, step_size, gamma, -1); }

static nb_sched *build(nb_optim *o, const nb_value *kw) {
    int64_t step_size, last_epoch;
    double gamma;
    if (nb__kw_int(&nb__step_lr_algo, &kw[0], &step_size) || nb__kw_num(&nb__step_lr_algo, &kw[1], &gamma) ||
        nb__kw_int(&nb__step_lr_algo, &kw[2], &last_epoch))
        return NULL;
    return make(o, step_size, gamma, last_epoch);
}

static const nb_value kwargs[] = {NB_DEF_NONE("step_size"), NB_DEF_NUM("gamma", 0.1), NB_DEF_INT("last_epoch", -1)};

const nb_sched_algo nb__step_lr_algo = {
    .name = "StepLR", .size = sizeof(step_lr), .get_lr = step_lr_get, .closed_form = step_lr_closed,
    .check = step_lr_check, .fields = step_lr_fields, .nfields = 2, .kwargs = kwargs, .nkwargs = 3,
    .nrequired = 1, .build = build};
