/* cosine_warm_restarts.c - CosineAnnealingWarmRestarts(T_0, T_mult=1, eta_min=0) (SGDR):
 *   lr = eta_min + (base - eta_min) * (1 + cos(pi T_cur / T_i)) / 2
 * step():       T_cur += 1; at T_cur >= T_i: T_cur -= T_i, T_i *= T_mult
 * step(epoch):  T_cur and T_i from the epoch (fractional epochs allowed: call
 *               step(epoch + i / iters) after each batch), last_epoch = floor(epoch). */
#include <math.h>
#include "scheduler.h"

typedef struct warm_restarts {
    nb_sched base;
    int64_t T_0, T_i, T_mult;
    double eta_min;
    double T_cur;
} warm_restarts;

static int wr_get(nb_sched *s, double *lrs) {
    const warm_restarts *k = (const warm_restarts *)s;
    double eta = k->eta_min;
    for (int g = 0; g < s->ngroups; g++)
        lrs[g] = eta + (s->base_lrs[g] - eta) * (1 + cos(M_PI * k->T_cur / (double)k->T_i)) / 2;
    return NB_OK;
}

static int wr_step(nb_sched *s, double epoch) {
    warm_restarts *k = (warm_restarts *)s;
    if (isnan(epoch) && s->last_epoch < 0) epoch = 0;
    if (isnan(epoch)) {
        epoch = (double)(s->last_epoch + 1);
        k->T_cur = k->T_cur + 1;
        if (k->T_cur >= (double)k->T_i) {
            k->T_cur = k->T_cur - (double)k->T_i;
            k->T_i = k->T_i * k->T_mult;
        }
    } else {
        if (epoch < 0) { /* an integral epoch prints as Python prints an int */
            if (epoch == floor(epoch))
                return nb__error(NB_EINVAL, "Expected non-negative epoch, but got %.0f", epoch);
            return nb__error(NB_EINVAL, "Expected non-negative epoch, but got %s", nb__pyfloat(epoch, 0));
        }
        if (epoch >= (double)k->T_0) {
            if (k->T_mult == 1) {
                k->T_cur = fmod(epoch, (double)k->T_0);
            } else {
                double tm = (double)k->T_mult;
                int64_t n = (int64_t)(log(epoch / (double)k->T_0 * (tm - 1) + 1) / log(tm));
                double p = pow(tm, (double)n);
                k->T_cur = epoch - (double)k->T_0 * (p - 1) / (tm - 1);
                k->T_i = k->T_0 * (int64_t)p;
            }
        } else {
            k->T_i = k->T_0;
            k->T_cur = epoch;
        }
    }
    s->last_epoch = (int64_t)floor(epoch);
    for (int g = 0; g < s->ngroups; g++) s->moms[g] = NAN;
    wr_get(s, s->lrs);
    return nb__sched_apply(s, s->lrs);
}

static int wr_check(const nb_sched *s) {
    const warm_restarts *k = (const warm_restarts *)s;
    if (k->T_0 <= 0) return nb__error(NB_EINVAL, "Expected positive integer T_0, but got %lld", (long long)k->T_0);
    if (k->T_mult < 1)
        return nb__error(NB_EINVAL, "Expected integer T_mult >= 1, but got %lld", (long long)k->T_mult);
    if (!isfinite(k->eta_min))
        return nb__error(NB_EINVAL, "CosineAnnealingWarmRestarts: eta_min must be finite, got %s",
                         nb__pyfloat(k->eta_min, 0));
    if (k->T_i <= 0 || !isfinite(k->T_cur))
        return nb__error(NB_EINVAL, "CosineAnnealingWarmRestarts: T_i %lld / T_cur %s out of range",
                         (long long)k->T_i, nb__pyfloat(k->T_cur, 0));
    return NB_OK;
}

static const nb_sched_field wr_fields[] = {
    {"T_0", NB_VALUE_INT, offsetof(warm_restarts, T_0)},
    {"T_i", NB_VALUE_INT, offsetof(warm_restarts, T_i)},
    {"T_mult", NB_VALUE_INT, offsetof(warm_restarts, T_mult)},
    {"eta_min", NB_VALUE_NUMBER, offsetof(warm_restarts, eta_min)},
    {"T_cur", NB_VALUE_NUMBER, offsetof(warm_restarts, T_cur)},
};

static nb_sched *make(nb_optim *o, int64_t T_0, int64_t T_mult, double eta_min, int64_t last_epoch) {
    warm_restarts tmp = {.T_0 = T_0, .T_i = T_0, .T_mult = T_mult, .eta_min = eta_min, .T_cur = -1};
    if (wr_check(&tmp.base)) return NULL;
    warm_restarts *k = (warm_restarts *)nb__sched_alloc(&nb__wr_algo, o);
    if (!k) return NULL;
    k->T_0 = k->T_i = T_0;
    k->T_mult = T_mult;
    k->eta_min = eta_min;
    k->T_cur = (double)last_epoch; /* as PyTorch */
    return nb__sched_start(&k->base, last_epoch);
}

nb_sched *nb_cosine_annealing_warm_restarts(nb_optim *o, int64_t T_0, int64_t T_mult, double eta_min) {
    return make(o, T_0, T_mult, eta_min, -1);
}

static nb_sched *build(nb_optim *o, const nb_value *kw) {
    double eta_min;
    int64_t T_0, T_mult, last_epoch;
    if (nb__kw_int(&nb__wr_algo, &kw[0], &T_0) || nb__kw_int(&nb__wr_algo, &kw[1], &T_mult) ||
        nb__kw_num(&nb__wr_algo, &kw[2], &eta_min) || nb__kw_int(&nb__wr_algo, &kw[3], &last_epoch))
        return NULL;
    return make(o, T_0, T_mult, eta_min, last_epoch);
}

static const nb_value kwargs[] = {NB_DEF_NONE("T_0"), NB_DEF_INT("T_mult", 1), NB_DEF_NUM("eta_min", 0),
                                  NB_DEF_INT("last_epoch", -1)};

const nb_sched_algo nb__wr_algo = {
    .name = "CosineAnnealingWarmRestarts", .size = sizeof(warm_restarts), .get_lr = wr_get,
    .step = wr_step, .check = wr_check, .fields = wr_fields, .nfields = 5, .fractional_epoch = true,
    .kwargs = kwargs, .nkwargs = 4, .nrequired = 1, .build = build};
