/* registry.c - torch.optim by name: PyTorch's class name -> the algorithm. Adding an optimizer
 * adds one line here. */
#include <stdio.h>
#include <strings.h>
#include "optimizer.h"

static const nb_optim_algo *const algos[] = {
    &nb__sgd_algo,   &nb__adam_algo,  &nb__adamw_algo, &nb__rmsprop_algo, &nb__adagrad_algo,
    &nb__adadelta_algo, &nb__adamax_algo, &nb__nadam_algo, &nb__radam_algo, &nb__asgd_algo,
    &nb__rprop_algo, &nb__lbfgs_algo, &nb__sparse_adam_algo, &nb__adafactor_algo, &nb__muon_algo,
};

const nb_optim_algo *nb__optim_algo(const char *name) {
    for (int i = 0; name && i < NB_COUNT(algos); i++)
        if (!strcmp(algos[i]->name, name)) return algos[i];
    for (int i = 0; name && i < NB_COUNT(algos); i++)
        if (!strcasecmp(algos[i]->name, name)) return algos[i];
    return NULL;
}

nb_optim *nb_optim_new(const char *name, nb_tensor *const *params, int n, const nb_value *kwargs, int nkwargs) {
    const nb_optim_algo *a = nb__optim_algo(name);
    if (!a) {
        char known[256] = "";
        for (int i = 0; i < NB_COUNT(algos); i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", algos[i]->name);
        return nb__null(NB_EINVAL, "torch.optim has no optimizer '%s' (nabla has %s)", name ? name : "(null)", known);
    }
    return nb__optim_create(a, params, n, kwargs, nkwargs);
}

int nb_optim_names(const char **names, int max) {
    for (int i = 0; names && i < max && i < NB_COUNT(algos); i++) names[i] = algos[i]->name;
    return NB_COUNT(algos);
}

const nb_value *nb_optim_defaults_of(const char *name, int *n) {
    const nb_optim_algo *a = nb__optim_algo(name);
    if (n) *n = a ? a->ndefaults : 0;
    return a ? a->defaults : NULL;
}

bool nb_optim_requires_closure(const nb_optim *o) { return o && o->algo->step_closure; }
