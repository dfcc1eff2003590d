/* chained_scheduler.c - ChainedScheduler(schedulers): each step() steps every scheduler in
 * order, so chainable forms compose (ConstantLR warm-up times ExponentialLR decay, ...).
 * No initial step of its own: the sub-schedulers took theirs when they were built. */
#include <math.h>
#include "scheduler.h"

static int chained_step(nb_sched *s, double epoch) {
    (void)epoch;
    nb_sched_container *c = (nb_sched_container *)s;
    s->last_epoch++;
    for (int i = 0; i < c->nsubs; i++) {
        s->nstepped = i + 1;
        int rc = nb_sched_step(c->subs[i]);
        if (rc) return rc;
    }
    for (int g = 0; g < s->ngroups; g++) s->last_lr[g] = nb__sched_group_lr(s, g);
    return NB_OK;
}

static void chained_undo(nb_sched *s) { /* newest first */
    nb_sched_container *c = (nb_sched_container *)s;
    for (int i = s->nstepped - 1; i >= 0; i--) nb__sched_undo(c->subs[i]);
}

const nb_sched_algo nb__chained_algo = {
    .name = "ChainedScheduler", .size = sizeof(nb_sched_container), .step = chained_step,
    .subs = nb__container_subs, .undo = chained_undo, .save = nb__container_save,
    .load = nb__container_load, .free = nb__container_free, .no_epoch = true};

nb_sched *nb_chained_scheduler(nb_sched *const *scheds, int n) {
    for (int i = 1; scheds && scheds[0] && i < n; i++)
        if (scheds[i] && scheds[i]->opt != scheds[0]->opt) {
            nb__error(NB_EINVAL, "ChainedScheduler expects all schedulers to belong to the same optimizer, "
                      "but got schedulers at index %d and %d to be different", 0, i);
            for (int j = 0; j < n; j++) nb_sched_free(scheds[j]);
            return NULL;
        }
    nb_optim *o = scheds && n > 0 && scheds[0] ? scheds[0]->opt : NULL;
    if (!o && scheds && n > 0) { /* scheds[0] is NULL: report its constructor's error */
        nb__container_new(&nb__chained_algo, NULL, scheds, n);
        return NULL;
    }
    nb_sched_container *c = nb__container_new(&nb__chained_algo, o, scheds, n);
    if (!c) return NULL;
    nb_sched *s = &c->base;
    s->last_epoch = 0;
    for (int g = 0; g < s->ngroups; g++) {
        double init = nb_optim_get(o, g, "initial_lr");
        s->base_lrs[g] = isnan(init) ? nb__sched_group_lr(s, g) : init;
        s->last_lr[g] = nb__sched_group_lr(s, g);
    }
    return s;
}
