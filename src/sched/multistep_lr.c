/* multistep_lr.c - MultiStepLR(milestones, gamma=0.1): lr *= gamma at each milestone.
 *   chainable:   lr * gamma ^ (number of times e appears in milestones)
 *   closed form: base_lr * gamma ^ bisect_right(milestones, e)
 * PyTorch keeps the milestones in a Counter, so a repeated milestone decays once per
 * repetition; nabla keeps them sorted in an array. */
#include <math.h>
#include <stdio.h>
#include "scheduler.h"

typedef struct multistep_lr {
    nb_sched base;
    int64_t *milestones; /* non-decreasing */
    int n;
    double gamma;
} multistep_lr;

static int count_le(const multistep_lr *k, int64_t e) { /* bisect_right */
    int lo = 0, hi = k->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (e < k->milestones[mid]) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static int multistep_get(nb_sched *s, double *lrs) {
    const multistep_lr *k = (const multistep_lr *)s;
    int hits = 0;
    for (int i = 0; i < k->n; i++) hits += k->milestones[i] == s->last_epoch;
    for (int g = 0; g < s->ngroups; g++)
        lrs[g] = hits ? nb__sched_group_lr(s, g) * pow(k->gamma, hits) : nb__sched_group_lr(s, g);
    return NB_OK;
}

static int multistep_closed(nb_sched *s, double *lrs) {
    const multistep_lr *k = (const multistep_lr *)s;
    double f = pow(k->gamma, count_le(k, s->last_epoch));
    for (int g = 0; g < s->ngroups; g++) lrs[g] = s->base_lrs[g] * f;
    return NB_OK;
}

static int check_gamma(double gamma) {
    if (!(gamma > 0) || !isfinite(gamma))
        return nb__error(NB_EINVAL, "MultiStepLR: gamma must be > 0, got %s", nb__pyfloat(gamma, 0));
    return NB_OK;
}

static int check_milestones(const int64_t *m, int n) {
    if (n <= 0) return nb__error(NB_EINVAL, "MultiStepLR: milestones must not be empty");
    for (int i = 1; i < n; i++)
        if (m[i] < m[i - 1])
            return nb__error(NB_EINVAL, "MultiStepLR: milestones must be increasing, got %lld after %lld",
                             (long long)m[i], (long long)m[i - 1]);
    return NB_OK;
}

static int multistep_check(const nb_sched *s) { return check_gamma(((const multistep_lr *)s)->gamma); }

static int multistep_save(const nb_sched *s, nb_sched_dict *sd) {
    const multistep_lr *k = (const multistep_lr *)s;
    double *m = nb__malloc(sizeof(double) * (size_t)k->n);
    if (!m) return NB_ENOMEM;
    for (int i = 0; i < k->n; i++) m[i] = (double)k->milestones[i];
    int rc = nb__sd_add_list(sd, "milestones", m, k->n);
    nb__free(m);
    return rc;
}

static int multistep_load(nb_sched *s, const nb_sched_dict *sd, bool commit) {
    multistep_lr *k = (multistep_lr *)s;
    const nb_value *v;
    if (nb__sd_want(sd, "milestones", NB_VALUE_LIST, -1, &v)) return NB_EFORMAT;
    const double *m = nb_value_elems(v);
    for (int i = 0; i < v->len; i++)
        if (m[i] != floor(m[i]) || fabs(m[i]) > 9007199254740992.0)
            return nb__error(NB_EFORMAT, "MultiStepLR state_dict: milestone %s is not an integer",
                             nb__pyfloat(m[i], 0));
    int64_t *mi = nb__malloc(sizeof(int64_t) * (size_t)(v->len + 1));
    if (!mi) return NB_ENOMEM;
    for (int i = 0; i < v->len; i++) mi[i] = (int64_t)m[i];
    int rc = check_milestones(mi, v->len);
    if (rc || !commit) {
        nb__free(mi);
        return rc;
    }
    nb__free(k->milestones);
    k->milestones = mi;
    k->n = v->len;
    return NB_OK;
}

static void multistep_free(nb_sched *s) { nb__free(((multistep_lr *)s)->milestones); }

static const nb_sched_field multistep_fields[] = {
    {"gamma", NB_VALUE_NUMBER, offsetof(multistep_lr, gamma)},
};

static nb_sched *make(nb_optim *o, const int64_t *milestones, int n, double gamma, int64_t last_epoch) {
    if (check_milestones(milestones, milestones ? n : 0) || check_gamma(gamma)) return NULL;
    multistep_lr *k = (multistep_lr *)nb__sched_alloc(&nb__multistep_algo, o);
    if (!k) return NULL;
    if (!(k->milestones = nb__malloc(sizeof(int64_t) * (size_t)n))) return nb__sched_fail(&k->base);
    memcpy(k->milestones, milestones, sizeof(int64_t) * (size_t)n);
    k->n = n;
    k->gamma = gamma;
    return nb__sched_start(&k->base, last_epoch);
}

nb_sched *nb_multistep_lr(nb_optim *o, const int64_t *milestones, int n, double gamma) {
    return make(o, milestones, n, gamma, -1);
}

/* milestones: a list of integers */
static nb_sched *build(nb_optim *o, const nb_value *kw) {
    int64_t last_epoch;
    double gamma;
    if (kw[0].kind != NB_VALUE_LIST)
        return nb__null(NB_EINVAL, "MultiStepLR: milestones must be a list of epochs");
    int n = kw[0].len;
    const double *e = nb_value_elems(&kw[0]);
    int64_t *m = nb__malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!m) return NULL;
    for (int i = 0; i < n; i++) {
        if (e[i] != floor(e[i]) || fabs(e[i]) > 9007199254740992.0) {
            nb__free(m);
            return nb__null(NB_EINVAL, "MultiStepLR: milestones must be integers, got %s", nb__pyfloat(e[i], 0));
        }
        m[i] = (int64_t)e[i];
    }
    nb_sched *s = nb__kw_num(&nb__multistep_algo, &kw[1], &gamma) ||
                          nb__kw_int(&nb__multistep_algo, &kw[2], &last_epoch)
                      ? NULL
                      : make(o, m, n, gamma, last_epoch);
    nb__free(m);
    return s;
}

static const nb_value kwargs[] = {NB_DEF_NONE("milestones"), NB_DEF_NUM("gamma", 0.1), NB_DEF_INT("last_epoch", -1)};

const nb_sched_algo nb__multistep_algo = {
    .name = "MultiStepLR", .size = sizeof(multistep_lr), .get_lr = multistep_get,
    .closed_form = multistep_closed, .fields = multistep_fields, .nfields = 1,
    .save = multistep_save, .load = multistep_load, .check = multistep_check, .free = multistep_free,
    .kwargs = kwargs, .nkwargs = 3, .nrequired = 1, .build = build};
