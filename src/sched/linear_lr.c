/* linear_lr.c - LinearLR(start_factor=1/3, end_factor=1.0, total_iters=5): the factor moves
 * linearly from start_factor to end_factor over total_iters epochs.
 *   chainable:   e == 0: lr * start;  e > T: lr;
 *                else lr * (1 + (end - start) / (T * start + (e - 1) * (end - start)))
 *   closed form: base_lr * (start + (end - start) * min(T, e) / T) */
#include <math.h>
#include "scheduler.h"

typedef struct linear_lr {
    nb_sched base;
    double start_factor, end_factor;
    int64_t total_iters;
} linear_lr;

static int linear_get(nb_sched *s, double *lrs) {
    const linear_lr *k = (const linear_lr *)s;
    double st = k->start_factor, en = k->end_factor, f = 1.0;
    bool keep = s->last_epoch > k->total_iters;
    if (s->last_epoch == 0)
        f = st;
    else if (!keep)
        f = 1.0 + (en - st) / ((double)k->total_iters * st + (double)(s->last_epoch - 1) * (en - st));
    for (int g = 0; g < s->ngroups; g++) lrs[g] = keep ? nb__sched_group_lr(s, g) : nb__sched_group_lr(s, g) * f;
    return NB_OK;
}

static int linear_closed(nb_sched *s, double *lrs) {
    const linear_lr *k = (const linear_lr *)s;
    int64_t e = s->last_epoch < k->total_iters ? s->last_epoch : k->total_iters;
    double f = k->start_factor + (k->end_factor - k->start_factor) * (double)e / (double)k->total_iters;
    for (int g = 0; g < s->ngroups; g++) lrs[g] = s->base_lrs[g] * f;
    return NB_OK;
}

static int linear_check(const nb_sched *s) {
    const linear_lr *k = (const linear_lr *)s;
    /* PyTorch 2.x's rule (1.13 accepts 0, then divides by zero at epoch 1) */
    if (!(k->start_factor > 0 && k->start_factor <= 1.0))
        return nb__error(NB_EINVAL, "Starting multiplicative factor expected to be greater than 0 "
                                    "and less or equal to 1.");
    if (!(k->end_factor >= 0 && k->end_factor <= 1.0))
        return nb__error(NB_EINVAL, "Ending multiplicative factor expected to be between 0 and 1.");
    if (k->total_iters <= 0)
        return nb__error(NB_EINVAL, "LinearLR: total_iters must be a positive integer, got %lld",
                         (long long)k->total_iters);
    return NB_OK;
}

static const nb_sched_field linear_fields[] = {
    {"start_factor", NB_VALUE_NUMBER, offsetof(linear_lr, start_factor)},
    {"end_factor", NB_VALUE_NUMBER, offsetof(linear_lr, end_factor)},
    {"total_iters", NB_VALUE_INT, offsetof(linear_lr, total_iters)},
};

static nb_sched *make(nb_optim *o, double start_factor, double end_factor, int64_t total_iters,
                      int64_t last_epoch) {
    linear_lr tmp = {.start_factor = start_factor, .end_factor = end_factor, .total_iters = total_iters};
    if (linear_check(&tmp.base)) return NULL;
    linear_lr *k = (linear_lr *)nb__sched_alloc(&nb__linear_algo, o);
    if (!k) return NULL;
    k->start_factor = start_factor;
    k->end_factor = end_factor;
    k->total_iters = total_iters;
    return nb__sched_start(&k->base, last_epoch);
}

nb_sched *nb_linear_lr(nb_optim *o, double start_factor, double end_factor, int64_t total_iters) {
    return make(o, start_factor, end_factor, total_iters, -1);
}

static nb_sched *build(nb_optim *o, const nb_value *kw) {
    double start, end;
    int64_t total_iters, last_epoch;
    if (nb__kw_num(&nb__linear_algo, &kw[0], &start) || nb__kw_num(&nb__linear_algo, &kw[1], &end) ||
        nb__kw_int(&nb__linear_algo, &kw[2], &total_iters) || nb__kw_int(&nb__linear_algo, &kw[3], &last_epoch))
        return NULL;
    return make(o, start, end, total_iters, last_epoch);
}

static const nb_value kwargs[] = {NB_DEF_NUM("start_factor", 1.0 / 3), NB_DEF_NUM("end_factor", 1.0),
                                  NB_DEF_INT("total_iters", 5), NB_DEF_INT("last_epoch", -1)};

const nb_sched_algo nb__linear_algo = {
    .name = "LinearLR", .size = sizeof(linear_lr), .get_lr = linear_get, .closed_form = linear_closed,
    .check = linear_check, .fields = linear_fields, .nfields = 3, .kwargs = kwargs, .nkwargs = 4,
    .build = build};
