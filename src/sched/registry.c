/* registry.c - torch.optim.lr_scheduler (and swa_utils.SWALR) by name: PyTorch's class name ->
 * the schedule, built from PyTorch's keyword arguments. Adding a schedule adds one line here. */
#include <stdio.h>
#include <strings.h>
#include "scheduler.h"

static const nb_sched_algo *const algos[] = {
    &nb__lambda_algo, &nb__multiplicative_algo, &nb__step_lr_algo, &nb__multistep_algo, &nb__constant_algo,
    &nb__linear_algo, &nb__exponential_algo, &nb__sequential_algo, &nb__cosine_algo, &nb__chained_algo,
    &nb__plateau_algo, &nb__cyclic_algo, &nb__wr_algo, &nb__onecycle_algo, &nb__polynomial_algo,
    &nb__swalr_algo,
};

const nb_sched_algo *nb__sched_algo(const char *name) {
    for (int i = 0; name && i < NB_COUNT(algos); i++)
        if (!strcmp(algos[i]->name, name)) return algos[i];
    for (int i = 0; name && i < NB_COUNT(algos); i++)
        if (!strcasecmp(algos[i]->name, name)) return algos[i];
    return NULL;
}

nb_sched *nb_sched_new(const char *name, nb_optim *o, const nb_value *kwargs, int nkwargs) {
    const nb_sched_algo *a = nb__sched_algo(name);
    if (!a) {
        char known[512] = "";
        for (int i = 0; i < NB_COUNT(algos); i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", algos[i]->name);
        return nb__null(NB_EINVAL, "torch.optim.lr_scheduler has no scheduler '%s' (nabla has %s)",
                        name ? name : "(null)", known);
    }
    if (!a->build)
        return nb__null(NB_EINVAL, "%s takes functions or other schedulers, which keyword arguments cannot "
                        "carry: build it with its constructor", a->name);
    if (!o) return nb__null(NB_EINVAL, "%s: optimizer is NULL", a->name);
    nb_value *kw = nb__kwargs_apply(a->name, a->kwargs, a->nkwargs, kwargs, nkwargs, true);
    if (!kw) return NULL;
    char missing[128] = "";
    int nmissing = 0;
    for (int i = 0; i < a->nrequired; i++)
        if (kw[i].kind == NB_VALUE_NONE) nmissing++;
    for (int i = 0, k = 0; i < a->nrequired; i++)
        if (kw[i].kind == NB_VALUE_NONE)
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s'%s'",
                     k++ ? (k == nmissing ? " and " : ", ") : "", kw[i].name);
    nb_sched *s = NULL;
    if (nmissing)
        nb__error(NB_EINVAL, "%s.__init__() missing %d required positional argument%s: %s", a->name, nmissing,
                  nmissing > 1 ? "s" : "", missing);
    else
        s = a->build(o, kw);
    nb__values_free(kw, a->nkwargs);
    return s;
}

int nb_sched_names(const char **names, int max) {
    for (int i = 0; names && i < max && i < NB_COUNT(algos); i++) names[i] = algos[i]->name;
    return NB_COUNT(algos);
}

const nb_value *nb_sched_defaults_of(const char *name, int *n) {
    static const nb_value none[1] = {NB_DEF_NONE("")};
    const nb_sched_algo *a = nb__sched_algo(name);
    if (n) *n = a ? a->nkwargs : 0;
    return a ? (a->kwargs ? a->kwargs : none) : NULL;
}
