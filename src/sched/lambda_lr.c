/* lambda_lr.c - LambdaLR(lr_lambda): lr = base_lr * fn(e, g).
 * A C function pointer plus a user pointer replaces PyTorch's lambda (or list of lambdas: the
 * function gets the group index). As in PyTorch the function is not part of the state_dict. */
#include "scheduler.h"

typedef struct lambda_lr {
    nb_sched base;
    nb_lr_lambda fn;
    void *user;
} lambda_lr;

static int lambda_get(nb_sched *s, double *lrs) {
    const lambda_lr *k = (const lambda_lr *)s;
    for (int g = 0; g < s->ngroups; g++) lrs[g] = s->base_lrs[g] * k->fn(s->last_epoch, g, k->user);
    return NB_OK;
}

const nb_sched_algo nb__lambda_algo = {.name = "LambdaLR", .size = sizeof(lambda_lr), .get_lr = lambda_get};

nb_sched *nb_lambda_lr(nb_optim *o, nb_lr_lambda fn, void *user) {
    if (!fn) return nb__null(NB_EINVAL, "lr_lambda should be a function, but got NoneType");
    lambda_lr *k = (lambda_lr *)nb__sched_alloc(&nb__lambda_algo, o);
    if (!k) return NULL;
    k->fn = fn;
    k->user = user;
    return nb__sched_start(&k->base, -1);
}
