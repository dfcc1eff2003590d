/* goldcheck.h - comparing ops with PyTorch's golden cases (tools/golden/gen_conv.py): an entry
 * "<case>.<key>" per tensor; "<case>.args" / "<case>.fargs" hold the case's arguments. Static
 * helpers for the test files that include it (one golden file per test process: G). */
#ifndef NABLA_TESTS_GOLDCHECK_H
#define NABLA_TESTS_GOLDCHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>
#include "common.h"

/* Outputs and gradients must match PyTorch (computed in float64) to 1e-5 in the project's
 * parity metric (parity_err in common.h: relative error, elements far below the tensor's
 * scale measured against 10% of its largest magnitude). */
#define GOLD_RTOL 1e-5

static const golden *G;

static inline const gold_entry *entry(const char *c, const char *key) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", c, key);
    return golden_get(G, name);
}

/* A heap tensor of a golden entry, optionally requiring grad. */
static inline nb_tensor *leaf(const char *c, const char *key, bool grad) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", c, key);
    nb_tensor *t = golden_tensor(G, name);
    if (grad) nb_requires_grad(t, true);
    return t;
}

static inline const int32_t *iargs(const char *c) { return entry(c, "args")->data; }
static inline const double *fargs(const char *c) { return entry(c, "fargs")->data; }

static double worst; /* largest relative error seen in this test (printed at its end) */

static inline void expect(const char *c, const char *key, const nb_tensor *t) {
    const gold_entry *e = entry(c, key);
    ck_assert_msg(t != NULL, "%s.%s: no tensor (%s)", c, key, nb_last_error());
    ck_assert_msg(t->numel == e->numel, "%s.%s: %lld elements, expected %lld", c, key,
                  (long long)t->numel, (long long)e->numel);
    const float *b = e->data;
    int64_t w = 0;
    double rel = e->numel ? parity_err(nb_f32(t), b, e->numel, &w) : 0;
    if (rel > worst) worst = rel;
    ck_assert_msg(rel <= GOLD_RTOL, "%s.%s: relative error %.3g at %lld (%.9g vs %.9g)", c, key,
                  rel, (long long)w, (double)nb_f32(t)[w], (double)b[w]);
}

static inline void report(const char *what) { fprintf(stderr, "%s: max relative error %.3g\n", what, worst); }

/* Run backward with the case's gy and compare the gradient of each listed input. */
static inline void expect_grads(const char *c, nb_tensor *y, int n, nb_tensor *const *ins,
                         const char *const *keys) {
    nb_tensor *gy = leaf(c, "gy", false);
    ck_assert_int_eq(nb_backward_grad(y, gy), NB_OK);
    for (int i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof k, "g%s", keys[i]);
        ck_assert_msg(ins[i]->grad != NULL, "%s: no gradient for %s", c, keys[i]);
        expect(c, k, ins[i]->grad);
    }
    nb_tensor_free(gy);
}

/* Every case name in the golden file with a prefix and a given key. */
static inline int cases(const char *prefix, const char *key, const char **out, int max) {
    int n = 0;
    size_t pl = strlen(prefix), kl = strlen(key);
    for (int i = 0; i < G->n && n < max; i++) {
        const char *nm = G->e[i].name;
        size_t l = strlen(nm);
        if (strncmp(nm, prefix, pl) || l <= kl + 1 || strcmp(nm + l - kl, key) || nm[l - kl - 1] != '.')
            continue;
        static char names[64][64];
        snprintf(names[n], sizeof names[n], "%.*s", (int)(l - kl - 1), nm);
        out[n] = names[n];
        n++;
    }
    return n;
}

#endif
