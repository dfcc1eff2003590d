/* dot.c - the graph that produced a tensor, as Graphviz DOT (`dot -Tsvg graph.dot`).
 *
 * One box per op output (op name and shape), one ellipse per leaf (shape; filled when it
 * requires grad, dtype shown when not float32), one edge from each input to the op that read
 * it (twice when an op reads the same tensor twice). The tensor itself has a double border. */
#include <errno.h>
#include <stdio.h>
#include "../core/internal.h"

typedef struct tlist {
    const nb_tensor **t;
    int64_t n, cap;
} tlist;

static int64_t find(const tlist *l, const nb_tensor *t) {
    for (int64_t i = 0; i < l->n; i++)
        if (l->t[i] == t) return i;
    return -1;
}

static int push(tlist *l, const nb_tensor *t) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 64;
        const nb_tensor **p = nb__realloc(l->t, sizeof *p * (size_t)cap);
        if (!p) return NB_ENOMEM;
        l->t = p;
        l->cap = cap;
    }
    l->t[l->n++] = t;
    return NB_OK;
}

/* Every tensor the graph of t reaches, t first (a tensor's index is its DOT id). */
static int collect(const nb_tensor *t, tlist *seen) {
    tlist todo = {0};
    int rc = push(&todo, t);
    while (rc == NB_OK && todo.n) {
        const nb_tensor *x = todo.t[--todo.n];
        if (find(seen, x) >= 0) continue;
        rc = push(seen, x);
        for (int i = 0; x->node && i < x->node->nin && rc == NB_OK; i++)
            rc = push(&todo, x->node->in[x->node->nin - 1 - i]);
    }
    nb__free(todo.t);
    return rc;
}

int nb_graph_dot(const nb_tensor *t, FILE *f) {
    if (!t || !f) return nb__error(NB_EINVAL, "graph_dot: tensor or FILE is NULL");
    tlist seen = {0};
    int rc = collect(t, &seen);
    if (rc != NB_OK) {
        nb__free(seen.t);
        return nb__error(NB_ENOMEM, "graph_dot: out of memory");
    }
    int bad = fprintf(f, "digraph nabla {\n  rankdir=BT;\n"
                         "  node [fontname=\"Helvetica\", fontsize=10];\n") < 0;
    for (int64_t i = 0; i < seen.n && !bad; i++) {
        const nb_tensor *x = seen.t[i];
        const char *border = i == 0 ? ", peripheries=2" : "";
        if (x->node)
            bad = fprintf(f, "  t%lld [label=\"%s\\n%s\", shape=box%s];\n", (long long)i,
                          x->node->op, nb__shape(x, 0), border) < 0;
        else
            bad = fprintf(f, "  t%lld [label=\"leaf\\n%s%s%s\", shape=ellipse%s%s];\n",
                          (long long)i, nb__shape(x, 0), x->dtype == NB_FLOAT32 ? "" : "\\n",
                          x->dtype == NB_FLOAT32 ? "" : nb__dtype_name(x->dtype),
                          nb__wants_grad(x) ? ", style=filled, fillcolor=lightblue" : "",
                          border) < 0;
    }
    for (int64_t i = 0; i < seen.n && !bad; i++) {
        const nb_node *n = seen.t[i]->node;
        for (int k = 0; n && k < n->nin && !bad; k++)
            bad = fprintf(f, "  t%lld -> t%lld;\n", (long long)find(&seen, n->in[k]),
                          (long long)i) < 0;
    }
    if (!bad) bad = fprintf(f, "}\n") < 0;
    nb__free(seen.t);
    if (bad) return nb__error(NB_EIO, "graph_dot: cannot write the graph: %s", strerror(errno));
    return NB_OK;
}
