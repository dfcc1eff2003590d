/* dropout.c - nn.Dropout(p=0.5) and nn.Dropout2d(p=0.5): nb_dropout / nb_dropout2d in
 * training mode, identity in eval mode. */
#include <stdio.h>
#include "nn_internal.h"

typedef struct dropout {
    nb_module base;
    float p;
    nb_rng *rng; /* borrowed: the caller's generator, so one seeded RNG drives the whole run */
} dropout;

static nb_tensor *dropout_forward(nb_module *m, nb_arena *ar, nb_tensor *x) {
    dropout *d = (dropout *)m;
    return nb_dropout(ar, x, d->p, m->training, d->rng);
}

static nb_tensor *dropout2d_forward(nb_module *m, nb_arena *ar, nb_tensor *x) {
    dropout *d = (dropout *)m;
    return nb_dropout2d(ar, x, d->p, m->training, d->rng);
}

static void dropout_repr(const nb_module *m, char *buf, size_t n) {
    snprintf(buf, n, "p=%s, inplace=False", nb__pyfloat32(((const dropout *)m)->p, 0));
}

static const nb_module_ops dropout_ops = {"Dropout", dropout_forward, dropout_repr, NULL};
static const nb_module_ops dropout2d_ops = {"Dropout2d", dropout2d_forward, dropout_repr, NULL};

static nb_module *dropout_new(const nb_module_ops *ops, float p, nb_rng *rng) {
    if (!(p >= 0.0f && p <= 1.0f))
        return nb__null(NB_EINVAL, "dropout probability has to be between 0 and 1, but got %s",
                        nb__pyfloat32(p, 0));
    if (!rng) return nb__null(NB_EINVAL, "%s: rng is NULL", ops->type);
    dropout *d = (dropout *)nb_module_alloc(sizeof *d, ops);
    if (!d) return NULL;
    d->p = p;
    d->rng = rng;
    return &d->base;
}

nb_module *nb_dropout_new(float p, nb_rng *rng) { return dropout_new(&dropout_ops, p, rng); }
nb_module *nb_dropout2d_new(float p, nb_rng *rng) { return dropout_new(&dropout2d_ops, p, rng); }
