/* sequential_lr.c - SequentialLR(schedulers, milestones): scheds[i] drives the lr from epoch
 * milestones[i-1] on. Construction resets every group's lr to initial_lr, undoes the initial
 * step of every sub-scheduler (last_epoch -= 1, recursively into containers as PyTorch 2.x)
 * and redoes the first one's. At a milestone the next scheduler is stepped with step(0),
 * PyTorch 1.13's deprecated epoch path: its closed form at epoch 0 where it has one (so it
 * starts again from its base_lr), else its get_lr at epoch 0. */
#include <math.h>
#include "scheduler.h"

typedef struct sequential_lr {
    nb_sched_container c;
    int64_t *milestones;
    int nm;
} sequential_lr;

static int sequential_step(nb_sched *s, double epoch) {
    (void)epoch;
    sequential_lr *k = (sequential_lr *)s;
    s->last_epoch++;
    int idx = 0; /* bisect_right(milestones, last_epoch) */
    while (idx < k->nm && k->milestones[idx] <= s->last_epoch) idx++;
    nb_sched *sub = k->c.subs[idx];
    s->nstepped = idx + 1;
    int rc = idx > 0 && k->milestones[idx - 1] == s->last_epoch ? nb_sched_step_epoch(sub, 0) : nb_sched_step(sub);
    if (rc) return rc;
    memcpy(s->last_lr, sub->last_lr, sizeof(double) * (size_t)s->ngroups);
    return NB_OK;
}

static void sequential_undo(nb_sched *s) {
    sequential_lr *k = (sequential_lr *)s;
    if (s->nstepped > 0) nb__sched_undo(k->c.subs[s->nstepped - 1]);
}

static void sequential_free(nb_sched *s) {
    nb__container_free(s);
    nb__free(((sequential_lr *)s)->milestones);
}

static int check_milestones(const char *name, const double *m, const int64_t *mi, int n) {
    for (int i = 0; i < n; i++) {
        double v = m ? m[i] : (double)mi[i];
        if (m && (v != floor(v) || fabs(v) > 9007199254740992.0))
            return nb__error(NB_EINVAL, "%s: milestone %s is not an integer", name, nb__pyfloat(v, 0));
        if (i && v < (m ? m[i - 1] : (double)mi[i - 1]))
            return nb__error(NB_EINVAL, "%s: milestones must be increasing", name);
    }
    return NB_OK;
}

static int sequential_save(const nb_sched *s, nb_sched_dict *sd) {
    const sequential_lr *k = (const sequential_lr *)s;
    double m[64] = {0}, *mp = k->nm <= 64 ? m : nb__malloc(sizeof(double) * (size_t)k->nm);
    if (!mp) return NB_ENOMEM;
    for (int i = 0; i < k->nm; i++) mp[i] = (double)k->milestones[i];
    int rc = nb__sd_add_list(sd, "_milestones", mp, k->nm);
    if (mp != m) nb__free(mp);
    return rc ? rc : nb__container_save(s, sd);
}

static int sequential_load(nb_sched *s, const nb_sched_dict *sd, bool commit) {
    sequential_lr *k = (sequential_lr *)s;
    const nb_value *v;
    if (nb__sd_want(sd, "_milestones", NB_VALUE_LIST, k->c.nsubs - 1, &v)) return NB_EFORMAT;
    const double *m = nb_value_elems(v);
    int rc = commit ? NB_OK : check_milestones("SequentialLR", m, NULL, v->len);
    if (!rc) rc = nb__container_load(s, sd, commit);
    if (!rc && commit)
        for (int i = 0; i < k->nm; i++) k->milestones[i] = (int64_t)m[i];
    return rc;
}

const nb_sched_algo nb__sequential_algo = {
    .name = "SequentialLR", .size = sizeof(sequential_lr), .step = sequential_step,
    .subs = nb__container_subs, .undo = sequential_undo, .save = sequential_save,
    .load = sequential_load, .free = sequential_free, .no_epoch = true};

/* last_epoch -= 1 for every leaf schedule (PyTorch 2.x's recursive_undo) */
static void undo_initial(nb_sched *s) {
    int n;
    nb_sched **subs = s->algo->subs ? s->algo->subs(s, &n) : NULL;
    if (!subs) s->last_epoch--;
    for (int i = 0; subs && i < n; i++) undo_initial(subs[i]);
}

nb_sched *nb_sequential_lr(nb_optim *o, nb_sched *const *scheds, int n, const int64_t *milestones, int nm) {
    if (n < 1 || !scheds) return (nb_sched *)nb__container_new(&nb__sequential_algo, o, scheds, n);
    int bad = -1;
    for (int i = 0; scheds && i < n && bad < 0; i++)
        if (scheds[i] && scheds[i]->opt != o) bad = i;
    if (bad >= 0 || nm != n - 1 || (nm > 0 && !milestones) ||
        check_milestones("SequentialLR", NULL, milestones, nm > 0 && milestones ? nm : 0)) {
        if (bad >= 0)
            nb__error(NB_EINVAL, "Sequential Schedulers expects all schedulers to belong to the same "
                      "optimizer, but got schedulers at index %d to be different than the optimizer "
                      "passed in.", bad);
        else if (nm != n - 1 || (nm > 0 && !milestones))
            nb__error(NB_EINVAL, "Sequential Schedulers expects number of schedulers provided to be one "
                      "more than the number of milestone points, but got number of schedulers %d and "
                      "the number of milestones to be equal to %d", n, milestones ? nm : 0);
        for (int i = 0; scheds && i < n; i++) nb_sched_free(scheds[i]);
        return NULL;
    }
    sequential_lr *k = (sequential_lr *)nb__container_new(&nb__sequential_algo, o, scheds, n);
    if (!k) return NULL;
    nb_sched *s = &k->c.base;
    if (!(k->milestones = nb__malloc(sizeof(int64_t) * (size_t)(nm + 1)))) return nb__sched_fail(s);
    if (nm) memcpy(k->milestones, milestones, sizeof(int64_t) * (size_t)nm);
    k->nm = nm;
    if (nb__sched_backup(s)) return nb__sched_fail(s);
    s->last_epoch = 0;
    for (int g = 0; g < s->ngroups; g++) { /* group["lr"] = group["initial_lr"] */
        double init = nb_optim_get(o, g, "initial_lr");
        if (isnan(init)) {
            nb__error(NB_EINVAL, "SequentialLR: param_groups[%d] has no 'initial_lr'", g);
            return nb__sched_fail(s);
        }
        if (nb__optim_write(o, g, "lr", -1, init)) return nb__sched_fail(s);
        s->base_lrs[g] = init;
    }
    for (int i = 0; i < n; i++) undo_initial(k->c.subs[i]);
    if (nb__sched_initial_step(k->c.subs[0])) return nb__sched_fail(s);
    memcpy(s->last_lr, k->c.subs[0]->last_lr, sizeof(double) * (size_t)s->ngroups);
    nb_optim_dict_free(s->backup);
    s->backup = NULL;
    return s;
}
