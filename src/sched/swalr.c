/* swalr.c - SWALR(swa_lr, anneal_epochs=10, anneal_strategy='cos') (torch.optim.swa_utils):
 * anneals each group's lr to its swa_lr over anneal_epochs steps, then holds it.
 *   step = _step_count - 1 (at least 1 when anneal_epochs == 0)
 *   t = clamp(step / max(1, A), 0, 1), alpha = cos: (1 - cos(pi t)) / 2, linear: t
 *   prev_lr = (lr - prev_alpha swa_lr) / (1 - prev_alpha) (swa_lr when prev_alpha == 1)
 *   lr = swa_lr alpha + prev_lr (1 - alpha)
 * swa_lr is kept in each group as "swa_lr", as in PyTorch. */
#include <math.h>
#include <stdio.h>
#include "scheduler.h"

typedef struct swalr {
    nb_sched base;
    int64_t anneal_epochs;
    char anneal[NB_VALUE_NAME_MAX];
} swalr;

static double anneal(const swalr *k, double t) { return k->anneal[0] == 'c' ? (1 - cos(M_PI * t)) / 2 : t; }

static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

static int swalr_get(nb_sched *s, double *lrs) {
    const swalr *k = (const swalr *)s;
    int64_t step = s->step_count - 1;
    if (k->anneal_epochs == 0 && step < 1) step = 1;
    double A = (double)(k->anneal_epochs > 1 ? k->anneal_epochs : 1);
    double prev_alpha = anneal(k, clamp01((double)(step - 1) / A));
    double alpha = anneal(k, clamp01((double)step / A));
    for (int g = 0; g < s->ngroups; g++) {
        double swa = nb_optim_get(s->opt, g, "swa_lr"), lr = nb__sched_group_lr(s, g);
        if (isnan(swa) && !nb_optim_get_value(s->opt, g, "swa_lr"))
            return nb__error(NB_EINVAL, "SWALR: param_groups[%d] has no 'swa_lr'", g);
        double prev = prev_alpha == 1 ? swa : (lr - prev_alpha * swa) / (1 - prev_alpha);
        lrs[g] = swa * alpha + prev * (1 - alpha);
    }
    return NB_OK;
}

static int swalr_check(const nb_sched *s) {
    const swalr *k = (const swalr *)s;
    if (strcmp(k->anneal, "cos") && strcmp(k->anneal, "linear"))
        return nb__error(NB_EINVAL, "anneal_strategy must by one of 'cos' or 'linear', instead got %s", k->anneal);
    if (k->anneal_epochs < 0)
        return nb__error(NB_EINVAL, "anneal_epochs must be equal or greater than 0, got %lld",
                         (long long)k->anneal_epochs);
    return NB_OK;
}

static const nb_sched_field swalr_fields[] = {
    {"anneal_epochs", NB_VALUE_INT, offsetof(swalr, anneal_epochs)},
    {"anneal_strategy", NB_VALUE_STRING, offsetof(swalr, anneal)},
};

static nb_sched *build(nb_optim *o, const nb_value *kw);

static const nb_value kwargs[] = {NB_DEF_NONE("swa_lr"), NB_DEF_INT("anneal_epochs", 10),
                                  NB_DEF_STR("anneal_strategy", "cos"), NB_DEF_INT("last_epoch", -1)};

const nb_sched_algo nb__swalr_algo = {
    .name = "SWALR", .size = sizeof(swalr), .get_lr = swalr_get, .check = swalr_check,
    .fields = swalr_fields, .nfields = 2, .kwargs = kwargs, .nkwargs = 4, .nrequired = 1, .build = build};

nb_swalr_opts nb_swalr_defaults(void) {
    return (nb_swalr_opts){.swa_lr = NAN, .anneal_epochs = 10, .anneal_strategy = "cos"};
}

static nb_sched *make(nb_optim *o, const nb_swalr_opts *opts, int64_t last_epoch) {
    nb_swalr_opts p = opts ? *opts : nb_swalr_defaults();
    swalr *k = (swalr *)nb__sched_alloc(&nb__swalr_algo, o);
    if (!k) return NULL;
    nb_sched *s = &k->base;
    double *swa = s->lrs; /* scratch until the first step */
    if (isnan(p.swa_lr) && !p.swa_lrs) {
        nb__error(NB_EINVAL, "SWALR: swa_lr is required");
        return nb__sched_fail(s);
    }
    if ((p.swa_lrs || p.n_swa_lrs) && (!p.swa_lrs || p.n_swa_lrs != s->ngroups)) {
        nb__error(NB_EINVAL, "swa_lr must have the same length as optimizer.param_groups: swa_lr has %d, "
                  "optimizer.param_groups has %d", p.n_swa_lrs, s->ngroups);
        return nb__sched_fail(s);
    }
    if (nb__sched_per_group(s, "swa_lr", p.swa_lr, p.swa_lrs, p.n_swa_lrs, swa) ||
        nb__sched_choice(k->anneal, p.anneal_strategy, (const char *[]){"cos", "linear", NULL},
                         "anneal_strategy must by one of 'cos' or 'linear', instead got %s"))
        return nb__sched_fail(s);
    k->anneal_epochs = p.anneal_epochs;
    if (swalr_check(s) || nb__sched_backup(s)) return nb__sched_fail(s);
    for (int g = 0; g < s->ngroups; g++) {
        nb_value v = nb_num("swa_lr", swa[g]);
        if (nb_optim_put(o, g, &v)) return nb__sched_fail(s);
    }
    return nb__sched_start(s, last_epoch);
}

nb_sched *nb_swalr(nb_optim *o, const nb_swalr_opts *opts) { return make(o, opts, -1); }

static nb_sched *build(nb_optim *o, const nb_value *kw) {
    const nb_sched_algo *a = &nb__swalr_algo;
    nb_swalr_opts p = nb_swalr_defaults();
    int64_t last_epoch;
    p.anneal_strategy = nb__kw_str(&kw[2]);
    if (nb__kw_per_group(a, &kw[0], &p.swa_lr, &p.swa_lrs, &p.n_swa_lrs) ||
        nb__kw_int(a, &kw[1], &p.anneal_epochs) || nb__kw_int(a, &kw[3], &last_epoch))
        return NULL;
    return make(o, &p, last_epoch);
}
