/* select.c - x.select(dim, index) as a module, so a Sequential can classify a sequence from its
 * last step: Sequential(LSTM(..., batch_first), Select(1, -1), Linear(H, classes)). */
#include <stdio.h>
#include "nn_internal.h"

typedef struct select_mod {
    nb_module base;
    int dim;
    int64_t index;
} select_mod;

static nb_tensor *select_forward(nb_module *m, nb_arena *ar, nb_tensor *x) {
    const select_mod *s = (const select_mod *)m;
    return nb_select(ar, x, s->dim, s->index);
}

static void select_repr(const nb_module *m, char *buf, size_t n) {
    const select_mod *s = (const select_mod *)m;
    snprintf(buf, n, "dim=%d, index=%lld", s->dim, (long long)s->index);
}

static const nb_module_ops select_ops = {"Select", select_forward, select_repr, NULL};

nb_module *nb_select_new(int dim, int64_t index) {
    select_mod *s = (select_mod *)nb_module_alloc(sizeof *s, &select_ops);
    if (!s) return NULL;
    s->dim = dim;
    s->index = index;
    return &s->base;
}
