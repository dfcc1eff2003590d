/* multiplicative_lr.c - MultiplicativeLR(lr_lambda): lr *= fn(e, g) for e > 0.
 * The function (with its user pointer) is not part of the state_dict, as in PyTorch. */
#include "scheduler.h"

typedef struct multiplicative_lr {
    nb_sched base;
    nb_lr_lambda fn;
    void *user;
} multiplicative_lr;

static int multiplicative_get(nb_sched *s, double *lrs) {
    const multiplicative_lr *k = (const multiplicative_lr *)s;
    for (int g = 0; g < s->ngroups; g++)
        lrs[g] = s->last_epoch > 0 ? nb__sched_group_lr(s, g) * k->fn(s->last_epoch, g, k->user)
                                   : nb__sched_group_lr(s, g);
    return NB_OK;
}

const nb_sched_algo nb__multiplicative_algo = {
    .name = "MultiplicativeLR", .size = sizeof(multiplicative_lr), .get_lr = multiplicative_get};

nb_sched *nb_multiplicative_lr(nb_optim *o, nb_lr_lambda fn, void *user) {
    if (!fn) return nb__null(NB_EINVAL, "lr_lambda should be a function, but got NoneType");
    multiplicative_lr *k = (multiplicative_lr *)nb__sched_alloc(&nb__multiplicative_algo, o);
    if (!k) return NULL;
    k->fn = fn;
    k->user = user;
    return nb__sched_start(&k->base, -1);
}
