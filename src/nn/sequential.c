/* sequential.c - nn.Sequential: children "0", "1", ... applied in order. */
#include <stdio.h>
#include "nn_internal.h"

static nb_tensor *sequential_forward(nb_module *m, nb_arena *ar, nb_tensor *x) {
    for (int i = 0; i < m->nchildren && x; i++) x = nb_forward(m->children[i], ar, x);
    return x;
}

static const nb_module_ops sequential_ops = {"Sequential", sequential_forward, NULL, NULL};

nb_module *nb_sequential(int n, nb_module *const *mods) {
    if (n < 0) return nb__null(NB_EINVAL, "Sequential: n must be >= 0, got %d", n);
    int bad = -1, twice = -1, owned = -1;
    for (int i = 0; i < n; i++) {
        if (!mods || !mods[i]) bad = i;
        else if (mods[i]->parent) owned = i;
        for (int j = 0; mods && mods[i] && j < i; j++)
            if (mods[j] == mods[i]) twice = i;
    }
    nb_module *s = bad < 0 && twice < 0 && owned < 0 ? nb_module_alloc(sizeof *s, &sequential_ops) : NULL;
    if (!s) { /* take ownership even on failure (each module once, none that has a parent) */
        for (int i = 0; mods && i < n; i++) {
            bool seen = false;
            for (int j = 0; j < i; j++) seen = seen || mods[j] == mods[i];
            if (mods[i] && !seen && !mods[i]->parent) nb_module_free(mods[i]);
        }
        if (bad >= 0 && nb_last_status() == NB_OK)
            nb__error(NB_EINVAL, "Sequential: module %d is NULL", bad);
        else if (bad < 0 && twice >= 0)
            nb__error(NB_EINVAL, "Sequential: module %d appears twice (a module has one parent; "
                      "nabla shares no module between places)", twice);
        else if (bad < 0 && owned >= 0)
            nb__error(NB_EINVAL, "Sequential: module %d already belongs to a module", owned);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "%d", i);
        if (nb_module_add_child(s, name, mods[i])) {
            for (int j = i + 1; j < n; j++) nb_module_free(mods[j]);
            nb_module_free(s);
            return NULL;
        }
    }
    if (nb_module_pack(s)) {
        nb_module_free(s);
        return NULL;
    }
    return s;
}
