/* life.c - lifetime tokens: how a borrower (an optimizer, a scheduler) learns that what it
 * borrows (a module's parameters, an optimizer) was freed, without reading freed memory. */
#include "internal.h"

nb_life *nb__life_new(void) {
    nb_life *l = nb__malloc(sizeof *l);
    if (!l) return NULL;
    atomic_init(&l->refs, 1);
    atomic_init(&l->alive, true);
    return l;
}

nb_life *nb__life_ref(nb_life *l) {
    if (l) atomic_fetch_add(&l->refs, 1);
    return l;
}

void nb__life_unref(nb_life *l) {
    if (l && atomic_fetch_sub(&l->refs, 1) == 1) nb__free(l);
}

void nb__life_end(nb_life *l) {
    if (!l) return;
    atomic_store(&l->alive, false);
    nb__life_unref(l);
}

int nb__lives_add(nb__lives *s, nb_life *l) {
    if (!l) return NB_OK;
    for (int i = 0; i < s->n; i++)
        if (s->v[i] == l) return NB_OK;
    nb_life **v = nb__realloc(s->v, sizeof *v * (size_t)(s->n + 1));
    if (!v) return NB_ENOMEM;
    s->v = v;
    s->v[s->n++] = nb__life_ref(l);
    return NB_OK;
}

bool nb__lives_alive(const nb__lives *s) {
    for (int i = 0; i < s->n; i++)
        if (!nb__life_alive(s->v[i])) return false;
    return true;
}

void nb__lives_free(nb__lives *s) {
    for (int i = 0; i < s->n; i++) nb__life_unref(s->v[i]);
    nb__free(s->v);
    s->v = NULL;
    s->n = 0;
}
