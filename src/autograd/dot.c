/* dot.c - the graph that produced a tensor, as Graphviz DOT (`dot -Tsvg graph.dot`).
 *
 * One box per op output (op name and shape), one ellipse per leaf (its name and role when the
 * caller gives them, else "leaf"; its shape; coloured by role, or filled blue when it requires
 * grad; dtype shown when not float32), one edge from each input to the op that read it (twice
 * when an op reads the same tensor twice). The tensor itself has a double border. Optionally a
 * legend of the colours, and each tensor's L2 norm and its gradient's. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "autograd_internal.h"

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
        for (int i = 0; x->internal.node && i < x->internal.node->nin && rc == NB_OK; i++)
            rc = push(&todo, x->internal.node->in[x->internal.node->nin - 1 - i]);
    }
    nb__free(todo.t);
    return rc;
}

static const struct {
    const char *name, *fill;
} roles[] = {{"", ""}, {"parameter", "lightblue"}, {"input", "#fff2a8"}, {"target", "#ffd1dc"},
             {"buffer", "#dddddd"}};

nb_graph_opts nb_graph_defaults(void) { return (nb_graph_opts){.labels = NULL, .nlabels = 0, .legend = false,
                                                                .values = false}; }

static const nb_graph_label *label_of(const nb_graph_opts *o, const nb_tensor *t) {
    for (int i = 0; i < o->nlabels; i++)
        if (o->labels[i].tensor == t) return &o->labels[i];
    return NULL;
}

/* s with " and \\ escaped for a DOT string. */
static const char *escape(const char *s, char *buf, size_t n) {
    size_t k = 0;
    for (; *s && k + 2 < n; s++) {
        if (*s == '"' || *s == '\\') buf[k++] = '\\';
        buf[k++] = *s;
    }
    buf[k] = '\0';
    return buf;
}

static double norm2(const nb_tensor *t) {
    double s = 0;
    for (int64_t i = 0; i < t->numel; i++) s += (double)nb_f32(t)[i] * nb_f32(t)[i];
    return sqrt(s);
}

/* "\n|value| 1.23  |grad| 0.0456" for a float32 tensor, else "". */
static void norms(const nb_tensor *x, bool values, char *buf, size_t n) {
    buf[0] = '\0';
    if (!values || x->dtype != NB_FLOAT32) return;
    int k = snprintf(buf, n, "\\n|value| %.3g", norm2(x));
    if (x->grad && k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, "  |grad| %.3g", norm2(x->grad));
}

static int legend(FILE *f) {
    return fprintf(f, "  subgraph cluster_legend {\n    label=\"legend\"; fontname=\"Helvetica\"; fontsize=10;\n"
                      "    l_param [label=\"parameter\", shape=ellipse, style=filled, fillcolor=lightblue];\n"
                      "    l_input [label=\"input\", shape=ellipse, style=filled, fillcolor=\"#fff2a8\"];\n"
                      "    l_target [label=\"target\", shape=ellipse, style=filled, fillcolor=\"#ffd1dc\"];\n"
                      "    l_buffer [label=\"buffer\", shape=ellipse, style=filled, fillcolor=\"#dddddd\"];\n"
                      "    l_leaf [label=\"other leaf\", shape=ellipse];\n"
                      "    l_op [label=\"op output\", shape=box];\n"
                      "    l_out [label=\"result\", shape=box, peripheries=2];\n"
                      "    l_param -> l_input -> l_target -> l_buffer -> l_leaf -> l_op -> l_out [style=invis];\n"
                      "  }\n") < 0;
}

int nb_graph_dot(const nb_tensor *t, FILE *f) { return nb_graph_dot_opts(t, f, NULL); }

int nb_graph_dot_opts(const nb_tensor *t, FILE *f, const nb_graph_opts *opts) {
    nb_graph_opts o = opts ? *opts : nb_graph_defaults();
    if (!t || !f) return nb__error(NB_EINVAL, "graph_dot: tensor or FILE is NULL");
    if (o.nlabels < 0 || (o.nlabels > 0 && !o.labels))
        return nb__error(NB_EINVAL, "graph_dot: %d labels at NULL", o.nlabels);
    for (int i = 0; i < o.nlabels; i++)
        if (!o.labels[i].tensor || !o.labels[i].name || o.labels[i].role < NB_GRAPH_PARAMETER ||
            o.labels[i].role > NB_GRAPH_BUFFER)
            return nb__error(NB_EINVAL, "graph_dot: label %d needs a tensor, a name and a role", i);
    tlist seen = {0};
    int rc = collect(t, &seen);
    if (rc != NB_OK) {
        nb__free(seen.t);
        return nb__error(NB_ENOMEM, "graph_dot: out of memory");
    }
    int bad = fprintf(f, "digraph nabla {\n  rankdir=BT;\n"
                         "  node [fontname=\"Helvetica\", fontsize=10];\n") < 0;
    if (!bad && o.legend) bad = legend(f);
    char nb[96], name[160];
    for (int64_t i = 0; i < seen.n && !bad; i++) {
        const nb_tensor *x = seen.t[i];
        const char *border = i == 0 ? ", peripheries=2" : "";
        norms(x, o.values, nb, sizeof nb);
        const nb_graph_label *l = x->internal.node ? NULL : label_of(&o, x);
        bool same = l && !strcmp(l->name, roles[l->role].name); /* "input", not "input (input)" */
        if (x->internal.node)
            bad = fprintf(f, "  t%lld [label=\"%s\\n%s%s\", shape=box%s];\n", (long long)i,
                          x->internal.node->op, nb__shape(x, 0), nb, border) < 0;
        else if (l)
            bad = fprintf(f, "  t%lld [label=\"%s%s%s%s\\n%s%s%s%s\", shape=ellipse, style=filled, "
                             "fillcolor=\"%s\"%s];\n", (long long)i, escape(l->name, name, sizeof name),
                          same ? "" : " (", same ? "" : roles[l->role].name, same ? "" : ")",
                          nb__shape(x, 0), x->dtype == NB_FLOAT32 ? "" : "\\n",
                          x->dtype == NB_FLOAT32 ? "" : nb__dtype_name(x->dtype), nb, roles[l->role].fill,
                          border) < 0;
        else
            bad = fprintf(f, "  t%lld [label=\"leaf\\n%s%s%s%s\", shape=ellipse%s%s];\n",
                          (long long)i, nb__shape(x, 0), x->dtype == NB_FLOAT32 ? "" : "\\n",
                          x->dtype == NB_FLOAT32 ? "" : nb__dtype_name(x->dtype), nb,
                          nb__wants_grad(x) ? ", style=filled, fillcolor=lightblue" : "",
                          border) < 0;
    }
    for (int64_t i = 0; i < seen.n && !bad; i++) {
        const nb_node *n = seen.t[i]->internal.node;
        for (int k = 0; n && k < n->nin && !bad; k++)
            bad = fprintf(f, "  t%lld -> t%lld;\n", (long long)find(&seen, n->in[k]),
                          (long long)i) < 0;
    }
    if (!bad) bad = fprintf(f, "}\n") < 0;
    nb__free(seen.t);
    if (bad) return nb__error(NB_EIO, "graph_dot: cannot write the graph: %s", strerror(errno));
    return NB_OK;
}
