/* registry.c - torch.optim by name: PyTorch's class name -> the algorithm. Adding an optimizer
 * adds one line here. */
#include <strings.h>
#include "optimizer.h"

static const nb_optim_algo *const algos[] = {
    &nb__sgd_algo,   &nb__adam_algo,  &nb__adamw_algo, &nb__rmsprop_algo, &nb__adagrad_algo,
    &nb__adadelta_algo, &nb__adamax_algo, &nb__nadam_algo, &nb__radam_algo, &nb__asgd_algo,
    &nb__rprop_algo, &nb__lbfgs_algo, &nb__adafactor_algo,
};

const nb_optim_algo *nb__optim_algo(const char *name) {
    for (int i = 0; name && i < NB_COUNT(algos); i++)
        if (!strcmp(algos[i]->name, name)) return algos[i];
    for (int i = 0; name && i < NB_COUNT(algos); i++)
        if (!strcasecmp(algos[i]->name, name)) return algos[i];
    return NULL;
}
