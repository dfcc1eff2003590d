/* polynomial_lr.c - PolynomialLR(total_iters=5, power=1.0): polynomial decay to 0.
 *   chainable:   e == 0 or e > T: lr;  else lr * ((1 - e/T) / (1 - (e-1)/T)) ^ power
 *   closed form: base_lr * (1 - min(T, e) / T) ^ power */
#include <math.h>
#include "scheduler.h"

typedef struct polynomial_lr {
    nb_sched base;
    int64_t total_iters;
    double power;
} polynomial_lr;

static int polynomial_get(nb_sched *s, double *lrs) {
    const polynomial_lr *k = (const polynomial_lr *)s;
    int64_t e = s->last_epoch;
    double T = (double)k->total_iters;
    bool keep = e == 0 || e > k->total_iters;
    double f = keep ? 1.0 : pow((1.0 - (double)e / T) / (1.0 - (double)(e - 1) / T), k->power);
    for (int g = 0; g < s->ngroups; g++) lrs[g] = keep ? nb__sched_group_lr(s, g) : nb__sched_group_lr(s, g) * f;
    return NB_OK;
}

static int polynomial_closed(nb_sched *s, double *lrs) {
    const polynomial_lr *k = (const polynomial_lr *)s;
    int64_t e = s->last_epoch < k->total_iters ? s->last_epoch : k->total_iters;
    double f = pow(1.0 - (double)e / (double)k->total_iters, k->power);
    for (int g = 0; g < s->ngroups; g++) lrs[g] = s->base_lrs[g] * f;
    return NB_OK;
}

static int polynomial_check(const nb_sched *s) {
    const polynomial_lr *k = (const polynomial_lr *)s;
    if (k->total_iters <= 0)
        return nb__error(NB_EINVAL, "PolynomialLR: total_iters must be a positive integer, got %lld",
                         (long long)k->total_iters);
    if (!isfinite(k->power) || k->power < 0)
        return nb__error(NB_EINVAL, "PolynomialLR: power must be >= 0, got %s", nb__pyfloat(k->power, 0));
    return NB_OK;
}

static const nb_sched_field polynomial_fields[] = {
    {"total_iters", NB_VALUE_INT, offsetof(polynomial_lr, total_iters)},
    {"power", NB_VALUE_NUMBER, offsetof(polynomial_lr, power)},
};

static nb_sched *make(nb_optim *o, int64_t total_iters, double power, int64_t last_epoch) {
    polynomial_lr tmp = {.total_iters = total_iters, .power = power};
    if (polynomial_check(&tmp.base)) return NULL;
    polynomial_lr *k = (polynomial_lr *)nb__sched_alloc(&nb__polynomial_algo, o);
    if (!k) return NULL;
    k->total_iters = total_iters;
    k->power = power;
    return nb__sched_start(&k->base, last_epoch);
}

nb_sched *nb_polynomial_lr(nb_optim *o, int64_t total_iters, double power) {
    return make(o, total_iters, power, -1);
}

static nb_sched *build(nb_optim *o, const nb_value *kw) {
    double power;
    int64_t total_iters, last_epoch;
    if (nb__kw_int(&nb__polynomial_algo, &kw[0], &total_iters) || nb__kw_num(&nb__polynomial_algo, &kw[1], &power) ||
        nb__kw_int(&nb__polynomial_algo, &kw[2], &last_epoch))
        return NULL;
    return make(o, total_iters, power, last_epoch);
}

static const nb_value kwargs[] = {NB_DEF_INT("total_iters", 5), NB_DEF_NUM("power", 1.0), NB_DEF_INT("last_epoch", -1)};

const nb_sched_algo nb__polynomial_algo = {
    .name = "PolynomialLR", .size = sizeof(polynomial_lr), .get_lr = polynomial_get,
    .closed_form = polynomial_closed, .check = polynomial_check, .fields = polynomial_fields,
    .nfields = 2, .kwargs = kwargs, .nkwargs = 3, .build = build};
