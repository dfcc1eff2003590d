/* module.c - the module base: registration, names, the parameter slab, train/eval, free. */
#include <stdarg.h>
#include <stdio.h>
#include "nn_internal.h"

nb_module *nb_module_alloc(size_t size, const nb_module_ops *ops) {
    if (size < sizeof(nb_module))
        return nb__null(NB_EINVAL, "module_alloc: size %zu is smaller than an nb_module (%zu)", size,
                        sizeof(nb_module));
    if (!ops || !ops->type) return nb__null(NB_EINVAL, "module_alloc: ops or ops->type is NULL");
    nb_module *m = nb__calloc(1, size);
    if (!m) return NULL;
    if (!(m->internal.life = nb__life_new())) {
        nb__free(m);
        return NULL;
    }
    m->ops = ops;
    m->training = true;
    return m;
}

static int grow(void **arr, int n, size_t elem) {
    void *p = nb__realloc(*arr, elem * (size_t)(n + 1));
    if (!p) return NB_ENOMEM;
    *arr = p;
    return NB_OK;
}

/* Registering changes the full names of m and of every module above it. */
static void forget_names(nb_module *m) {
    for (; m; m = m->parent) {
        if (!m->internal.named) continue;
        for (int i = 0; i < m->internal.nnamed; i++) nb__free((char *)m->internal.named[i].name);
        nb__free(m->internal.named);
        m->internal.named = NULL;
        m->internal.nnamed = 0;
    }
}

static int add_tensor(nb_module *m, const char *name, nb_tensor *t, bool param) {
    if (!m || !name || !t) {
        nb_tensor_free(t);
        return nb__error(NB_EINVAL, "module: registering %s \"%s\": the %s is NULL",
                         param ? "parameter" : "buffer", name ? name : "?",
                         !m ? "module" : !name ? "name" : "tensor");
    }
    /* the module owns it for its whole life: a heap leaf; parameters go in the float slab */
    const char *kind = param ? "parameter" : "buffer";
    int bad = NB_OK;
    if (t->internal.arena || t->internal.node)
        bad = nb__error(NB_EINVAL, "module: %s \"%s\" must be a heap leaf tensor (made with a NULL "
                        "arena, not by an op)", kind, name);
    else if (param && t->dtype != NB_FLOAT32)
        bad = nb__error(NB_EINVAL, "module: parameter \"%s\" must be float32, got %s", name,
                        nb__dtype_name(t->dtype));
    if (bad) {
        nb_tensor_free(t);
        return bad;
    }
    char *nm = nb__strdup(name);
    int *count = param ? &m->nparams : &m->nbuffers;
    char ***names = param ? &m->param_names : &m->buffer_names;
    nb_tensor ***ts = param ? &m->params : &m->buffers;
    if (!nm || grow((void **)names, *count, sizeof(char *)) ||
        grow((void **)ts, *count, sizeof(nb_tensor *))) {
        nb__free(nm);
        nb_tensor_free(t);
        return NB_ENOMEM;
    }
    (*names)[*count] = nm;
    (*ts)[*count] = t;
    (*count)++;
    t->internal.owner = m->internal.life; /* the module frees it: nb_tensor_free refuses it from now on */
    if (param) t->flags |= NB_TENSOR_REQUIRES_GRAD;
    forget_names(m);
    return NB_OK;
}

int nb_module_add_param(nb_module *m, const char *name, nb_tensor *t) {
    return add_tensor(m, name, t, true);
}

int nb_module_add_buffer(nb_module *m, const char *name, nb_tensor *t) {
    return add_tensor(m, name, t, false);
}

int nb_module_add_child(nb_module *m, const char *name, nb_module *child) {
    if (!m || !name || !child) {
        nb_module_free(child);
        return nb__error(NB_EINVAL, "module: adding child \"%s\": the %s is NULL", name ? name : "?",
                         !m ? "module" : !name ? "name" : "child");
    }
    bool cycle = false;
    for (const nb_module *a = m; a && !cycle; a = a->parent) cycle = a == child;
    if (child->parent || cycle) /* not ours to free: it belongs to a tree already */
        return nb__error(NB_EINVAL, "module: child \"%s\" (%s) already %s; a module has one parent",
                         name, child->ops->type, cycle ? "contains this module" : "belongs to a module");
    char *nm = nb__strdup(name);
    if (!nm || grow((void **)&m->child_names, m->nchildren, sizeof(char *)) ||
        grow((void **)&m->children, m->nchildren, sizeof(nb_module *))) {
        nb__free(nm);
        nb_module_free(child);
        return NB_ENOMEM;
    }
    m->child_names[m->nchildren] = nm;
    m->children[m->nchildren++] = child;
    child->parent = m;
    child->training = m->training;
    forget_names(m);
    return NB_OK;
}

/* ---- walking the tree in PyTorch's order: own tensors first, then children ----------------- */
typedef void (*visit_fn)(nb_tensor *t, const char *name, void *ctx);

static void walk(const nb_module *m, const char *prefix, bool params, bool buffers, visit_fn f,
                 void *ctx) {
    char name[512];
    if (params)
        for (int i = 0; i < m->nparams; i++) {
            snprintf(name, sizeof name, "%s%s", prefix, m->param_names[i]);
            f(m->params[i], name, ctx);
        }
    if (buffers)
        for (int i = 0; i < m->nbuffers; i++) {
            snprintf(name, sizeof name, "%s%s", prefix, m->buffer_names[i]);
            f(m->buffers[i], name, ctx);
        }
    for (int i = 0; i < m->nchildren; i++) {
        snprintf(name, sizeof name, "%s%s.", prefix, m->child_names[i]);
        walk(m->children[i], name, params, buffers, f, ctx);
    }
}

typedef struct collect {
    nb_tensor **ts;
    int n, cap;
    int64_t numel;
    nb_named_tensor *named;
    bool failed;
} collect;

static void collect_fn(nb_tensor *t, const char *name, void *ctx) {
    collect *c = ctx;
    if (c->ts && c->n < c->cap) c->ts[c->n] = t;
    if (c->named && !c->failed) {
        c->named[c->n].tensor = t;
        c->named[c->n].name = nb__strdup(name);
        if (!c->named[c->n].name) c->failed = true;
    }
    c->n++;
    c->numel += t->numel;
}

int nb_module_parameters(const nb_module *m, nb_tensor **out, int cap) {
    if (!m) return 0;
    collect c = {out, 0, cap, 0, NULL, false};
    walk(m, "", true, false, collect_fn, &c);
    return c.n;
}

int nb_module_num_params(const nb_module *m) { return nb_module_parameters(m, NULL, 0); }

int64_t nb_module_numel(const nb_module *m) {
    if (!m) return 0;
    collect c = {NULL, 0, 0, 0, NULL, false};
    walk(m, "", true, false, collect_fn, &c);
    return c.numel;
}

/* Full names are built once per tree shape and cached (on the module asked). */
static int ensure_names(const nb_module *cm) {
    nb_module *m = (nb_module *)cm;
    if (m->internal.named) return NB_OK;
    collect c = {NULL, 0, 0, 0, NULL, false};
    walk(m, "", true, true, collect_fn, &c);
    c.named = nb__calloc((size_t)(c.n ? c.n : 1), sizeof *c.named);
    if (!c.named) return NB_ENOMEM;
    c.n = 0;
    walk(m, "", true, true, collect_fn, &c);
    m->internal.named = c.named;
    m->internal.nnamed = c.n;
    if (c.failed) {
        forget_names(m);
        return NB_ENOMEM;
    }
    return NB_OK;
}

int nb_module_state(const nb_module *m, const nb_named_tensor **out) {
    if (!m || ensure_names(m)) return m ? NB_ENOMEM : 0;
    if (out) *out = m->internal.named;
    return m->internal.nnamed;
}

nb_named_tensor nb_module_param(const nb_module *m, int i) {
    nb_named_tensor none = {NULL, NULL};
    if (!m || i < 0 || i >= nb_module_num_params(m) || ensure_names(m)) return none;
    return m->internal.named[i];
}

nb_tensor *nb_module_find(const nb_module *m, const char *name) {
    const nb_named_tensor *st;
    int n = name ? nb_module_state(m, &st) : 0;
    for (int i = 0; i < n; i++)
        if (strcmp(st[i].name, name) == 0) return st[i].tensor;
    return NULL;
}

nb_module *nb_module_child(const nb_module *m, int i) {
    return m && i >= 0 && i < m->nchildren ? m->children[i] : NULL;
}

/* ---- the slab ---------------------------------------------------------------------------- */
/* Each parameter starts on a 64-byte boundary inside the slab so kernels see aligned rows. */
static int64_t padded(int64_t n) { return (n + 15) & ~(int64_t)15; }

static void slab_size_fn(nb_tensor *t, const char *name, void *ctx) {
    (void)name;
    *(int64_t *)ctx += padded(t->numel);
}

typedef struct place {
    float *slab, *gslab;
    int64_t off;
    nb_tensor *grads; /* preallocated grad views, one per parameter */
    int i;
} place;

static void place_fn(nb_tensor *t, const char *name, void *ctx) {
    (void)name;
    place *p = ctx;
    float *dst = p->slab + p->off;
    memcpy(dst, t->data, sizeof(float) * (size_t)t->numel);
    if (t->flags & NB_TENSOR_OWNS_DATA) nb__free_aligned(t->data);
    t->flags &= ~NB_TENSOR_OWNS_DATA;
    t->data = dst;
    nb_tensor *g = &p->grads[p->i++];
    memset(g, 0, sizeof *g);
    g->dtype = NB_FLOAT32;
    g->ndim = t->ndim;
    memcpy(g->shape, t->shape, sizeof g->shape);
    g->numel = t->numel;
    g->data = p->gslab + p->off;
    if (t->grad) memcpy(g->data, t->grad->data, sizeof(float) * (size_t)t->numel);
    if ((t->flags & NB_TENSOR_OWNS_GRAD) && t->internal.grad_slot) nb_tensor_free(t->internal.grad_slot);
    t->flags &= ~NB_TENSOR_OWNS_GRAD;
    t->grad = t->grad ? g : NULL;
    t->internal.grad_slot = g;
    p->off += padded(t->numel);
}

static void free_slabs(nb_module *m) {
    nb__free_aligned(m->internal.slab);
    nb__free_aligned(m->internal.grad_slab);
    m->internal.slab = m->internal.grad_slab = NULL;
    m->internal.slab_numel = 0;
}

static void drop_slabs(nb_module *m) { /* children's slabs are replaced by the root's */
    for (int i = 0; i < m->nchildren; i++) {
        drop_slabs(m->children[i]);
        free_slabs(m->children[i]);
    }
}

int nb_module_pack(nb_module *m) {
    if (!m) return nb__error(NB_EINVAL, "module_pack: module is NULL");
    int64_t total = 0;
    walk(m, "", true, false, slab_size_fn, &total);
    int np = nb_module_num_params(m);
    float *slab = nb__malloc_aligned(sizeof(float) * (size_t)(total ? total : 1));
    float *gslab = nb__malloc_aligned(sizeof(float) * (size_t)(total ? total : 1) +
                                      sizeof(nb_tensor) * (size_t)np);
    if (!slab || !gslab) {
        nb__free_aligned(slab);
        nb__free_aligned(gslab);
        return NB_ENOMEM;
    }
    memset(slab, 0, sizeof(float) * (size_t)(total ? total : 1));
    memset(gslab, 0, sizeof(float) * (size_t)(total ? total : 1));
    place p = {slab, gslab, 0, (nb_tensor *)(void *)(gslab + (total ? total : 1)), 0};
    /* total is a multiple of 16 floats, so the grad views after it are 64-byte aligned */
    walk(m, "", true, false, place_fn, &p);
    drop_slabs(m);
    free_slabs(m);
    m->internal.slab = slab;
    m->internal.grad_slab = gslab;
    m->internal.slab_numel = total;
    return NB_OK;
}

/* ---- use --------------------------------------------------------------------------------- */
nb_tensor *nb_forward(nb_module *m, nb_arena *ar, nb_tensor *x) {
    if (!m || !x) return NULL;
    if (!ar) return nb__null(NB_EINVAL, "forward: arena is NULL");
    if (!m->ops->forward)
        return nb__null(NB_EINVAL, "forward: %s has no single-input forward", m->ops->type);
    return m->ops->forward(m, ar, x);
}

void nb_module_train(nb_module *m, bool training) {
    if (!m) return;
    m->training = training;
    for (int i = 0; i < m->nchildren; i++) nb_module_train(m->children[i], training);
}

static void zero_fn(nb_tensor *t, const char *name, void *ctx) {
    (void)name;
    if (!t->grad) return;
    if (*(bool *)ctx) t->grad = NULL;
    else if (t->grad->flags & NB_TENSOR_SPARSE) nb__sparse_clear(t->grad);
    else memset(t->grad->data, 0, sizeof(float) * (size_t)t->numel);
}

void nb_module_zero_grad(nb_module *m, bool set_to_none) {
    if (m) walk(m, "", true, false, zero_fn, &set_to_none);
}

/* Append to buf (capacity n) at offset *len, snprintf-style: *len counts what was needed. */
static void emit(char *buf, size_t n, int *len, const char *fmt, ...) NB_PRINTF(4, 5);
static void emit(char *buf, size_t n, int *len, const char *fmt, ...) {
    size_t off = (size_t)*len < n ? (size_t)*len : n;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf ? buf + off : NULL, buf ? n - off : 0, fmt, ap);
    va_end(ap);
    if (k > 0) *len += k;
}

static void repr(const nb_module *m, char *buf, size_t n, int indent, int *len) {
    char extra[256] = "";
    if (m->ops->extra_repr) m->ops->extra_repr(m, extra, sizeof extra);
    emit(buf, n, len, "%s(%s", m->ops->type, extra);
    for (int i = 0; i < m->nchildren; i++) {
        emit(buf, n, len, "\n%*s(%s): ", indent + 2, "", m->child_names[i]);
        repr(m->children[i], buf, n, indent + 2, len);
    }
    if (m->nchildren) emit(buf, n, len, "\n%*s)", indent, "");
    else emit(buf, n, len, ")");
}

int nb_module_repr(const nb_module *m, char *buf, size_t n) {
    int len = 0;
    if (!m) emit(buf, n, &len, "(null)");
    else repr(m, buf, n, 0, &len);
    return len;
}

void nb_module_free(nb_module *m) {
    if (!m) return;
    if (m->ops && m->ops->free) m->ops->free(m);
    forget_names(m);
    for (int i = 0; i < m->nchildren; i++) {
        m->children[i]->parent = NULL;
        nb_module_free(m->children[i]);
        nb__free(m->child_names[i]);
    }
    nb__life_end(m->internal.life); /* optimizers of its parameters see it gone from now on */
    for (int i = 0; i < m->nparams; i++) {
        m->params[i]->internal.owner = NULL;
        nb_tensor_free(m->params[i]); /* data and grad in a slab are not owned by the tensor */
        nb__free(m->param_names[i]);
    }
    for (int i = 0; i < m->nbuffers; i++) {
        m->buffers[i]->internal.owner = NULL;
        nb_tensor_free(m->buffers[i]);
        nb__free(m->buffer_names[i]);
    }
    nb__free(m->children);
    nb__free(m->child_names);
    nb__free(m->params);
    nb__free(m->param_names);
    nb__free(m->buffers);
    nb__free(m->buffer_names);
    free_slabs(m);
    nb__free(m);
}
