/* dropout2d.c - nn.Dropout2d(p=0.5): nb_dropout2d in training mode, identity in eval mode. */
#include <stdio.h>
#include "../core/internal.h"

typedef struct dropout2d {
    nb_module base;
    float p;
    nb_rng *rng; /* borrowed, as nn.Dropout's */
} dropout2d;

static nb_tensor *dropout2d_forward(nb_module *m, nb_arena *ar, nb_tensor *x) {
    dropout2d *d = (dropout2d *)m;
    return nb_dropout2d(ar, x, d->p, m->training, d->rng);
}

static void dropout2d_repr(const nb_module *m, char *buf, size_t n) {
    snprintf(buf, n, "p=%s, inplace=False", nb__pyfloat32(((const dropout2d *)m)->p, 0));
}

static const nb_module_ops dropout2d_ops = {"Dropout2d", dropout2d_forward, dropout2d_repr, NULL};

nb_module *nb_dropout2d_new(float p, nb_rng *rng) {
    if (!(p >= 0.0f && p <= 1.0f))
        return nb__null(NB_EINVAL, "dropout probability has to be between 0 and 1, but got %s",
                        nb__pyfloat32(p, 0));
    if (!rng) return nb__null(NB_EINVAL, "Dropout2d: rng is NULL");
    dropout2d *d = (dropout2d *)nb_module_alloc(sizeof *d, &dropout2d_ops);
    if (!d) return NULL;
    d->p = p;
    d->rng = rng;
    return &d->base;
}
