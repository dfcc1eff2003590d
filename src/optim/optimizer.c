/* optimizer.c - the optimizer base: construction, param groups, per-parameter state, the step
 * loop (state from the algorithm's spec, one job of the pool per group), zero_grad and
 * state_dict. PyTorch's optimizer.py in C; an algorithm file adds its rule (optimizer.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "optimizer.h"
#include "access.h"
#include "../kernels/kernels.h"

double nb__hp(const nb_value *hp, int n, const char *name) {
    const nb_value *v = nb__value_cfind(hp, n, name);
    if (!v || (v->kind != NB_VALUE_NUMBER && v->kind != NB_VALUE_INT && v->kind != NB_VALUE_BOOL))
        return NAN;
    return v->num;
}

bool nb__hp_bool(const nb_value *hp, int n, const char *name) {
    const nb_value *v = nb__value_cfind(hp, n, name);
    return v && v->kind == NB_VALUE_BOOL && v->num != 0.0;
}

double nb__hp_elem(const nb_value *hp, int n, const char *name, int i) {
    const nb_value *v = nb__value_cfind(hp, n, name);
    if (!v || v->kind != NB_VALUE_LIST || i < 0 || i >= v->len) return NAN;
    return nb_value_elems(v)[i];
}

int nb__check_ge0(const nb_value *hp, int n, const char *name, const char *what) {
    double v = nb__hp(hp, n, name);
    if (!(0.0 <= v)) return nb__error(NB_EINVAL, "Invalid %s: %s", what, nb__pyfloat(v, 0));
    return NB_OK;
}

int nb__check_betas(const nb_value *hp, int n) {
    for (int i = 0; i < 2; i++) {
        double b = nb__hp_elem(hp, n, "betas", i);
        if (!(0.0 <= b && b < 1.0))
            return nb__error(NB_EINVAL, "Invalid beta parameter at index %d: %s", i, nb__pyfloat(b, 0));
    }
    return NB_OK;
}

float *nb__optim_scratch(nb_optim *o, size_t n) {
    if (n > o->scratch_len) {
        float *s = nb__realloc(o->scratch, sizeof(float) * n);
        if (!s) return NULL;
        o->scratch = s;
        o->scratch_len = n;
    }
    return o->scratch;
}

int64_t nb__optim_numel(const nb_optim *o) {
    int64_t n = 0;
    for (int g = 0; g < o->ngroups; g++)
        for (int i = 0; i < o->groups[g].nparams; i++) n += o->groups[g].params[i]->numel;
    return n;
}

/* The sum of squares of nb__norm2 (before its square root). */
NB_OPTIM_CLONES
static float sumsq(const float *x, int64_t n) {
    float lane[8] = {0};
    int64_t m = n - n % 8, i = 0;
    for (; i < m; i += 8)
        for (int j = 0; j < 8; j++) lane[j] = fmaf(x[i + j], x[i + j], lane[j]);
    float s = lane[0];
    for (int j = 1; j < 8; j++) s = s + lane[j];
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s = s + x[i + j] * x[i + j];
    for (; i < n; i++) s = fmaf(x[i], x[i], s);
    return s;
}

float nb__norm2(const float *x, int64_t n) { return sqrtf(sumsq(x, n)); }

/* ---- deterministic reductions across the pool ----------------------------------------------- */
typedef struct reduce_job {
    nb__reduce_fn fn;
    void *ctx;
    int64_t n, chunk;
    double *part;
} reduce_job;

static void reduce_chunks(void *ctx, int64_t cb, int64_t ce) {
    reduce_job *j = ctx;
    for (int64_t c = cb; c < ce; c++) {
        int64_t b = c * j->chunk, e = b + j->chunk < j->n ? b + j->chunk : j->n;
        j->part[c] = j->fn(j->ctx, b, e);
    }
}

int nb__optim_reduce(int64_t n, nb__reduce_fn fn, void *ctx, double *part) {
    int64_t chunk = NB_OPTIM_CHUNK;
    while ((n + chunk - 1) / chunk > NB_OPTIM_MAX_CHUNKS) chunk *= 2;
    int64_t count = n > 0 ? (n + chunk - 1) / chunk : 1;
    if (count == 1) {
        part[0] = fn(ctx, 0, n);
        return 1;
    }
    reduce_job j = {fn, ctx, n, chunk, part};
    nb__parallel_for(count, 1, reduce_chunks, &j);
    return (int)count;
}

static double sumsq_chunk(void *ctx, int64_t b, int64_t e) { return sumsq((const float *)ctx + b, e - b); }

float nb__norm2_chunked(const float *x, int64_t n) {
    double part[NB_OPTIM_MAX_CHUNKS];
    int k = nb__optim_reduce(n, sumsq_chunk, (void *)x, part);
    float s = (float)part[0];
    for (int c = 1; c < k; c++) s = s + (float)part[c];
    return sqrtf(s);
}

/* The bits of a non-negative float order like unsigned integers, NaN above inf: an integer
 * max (which vectorises) is the float max with NaN winning. */
NB_OPTIM_CLONES
float nb__abs_max(const float *x, float t, int64_t n) {
    uint32_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i] * t);
        uint32_t u;
        memcpy(&u, &a, sizeof u);
        m = u > m ? u : m;
    }
    float r;
    memcpy(&r, &m, sizeof r);
    return r;
}

typedef struct abs_max_job {
    const float *x;
    float t;
} abs_max_job;

static double abs_max_chunk(void *ctx, int64_t b, int64_t e) {
    const abs_max_job *j = ctx;
    return nb__abs_max(j->x + b, j->t, e - b);
}

float nb__abs_max_par(const float *x, float t, int64_t n) {
    double part[NB_OPTIM_MAX_CHUNKS];
    abs_max_job j = {x, t};
    int k = nb__optim_reduce(n, abs_max_chunk, &j, part);
    uint32_t m = 0; /* the chunks' maxima compared as nb__abs_max compares: the same result */
    for (int c = 0; c < k; c++) {
        float f = (float)part[c];
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        m = u > m ? u : m;
    }
    float r;
    memcpy(&r, &m, sizeof r);
    return r;
}

/* ---- row-sparse gradients ------------------------------------------------------------------ */
int nb__sparse_coalesced(nb_optim *o, const nb_tensor *grad, float sign, int64_t *nnz, const int32_t **rows,
                         const float **vals) {
    float *w = nb__optim_scratch(o, nb__sparse_coalesce_size(grad) / sizeof(float) + 1);
    if (!w) return NB_ENOMEM;
    *nnz = nb__sparse_coalesce(grad, sign, w, rows, vals);
    return NB_OK;
}

/* ---- construction and groups ------------------------------------------------------------- */
nb_optim *nb__optim_create(const nb_optim_algo *algo, nb_tensor *const *params, int n,
                           const nb_value *kwargs, int nkwargs) {
    nb_value *hp = nb__kwargs_apply(algo->name, algo->defaults, algo->ndefaults, kwargs, nkwargs, false);
    if (!hp) return NULL;
    if (algo->prepare) algo->prepare(hp, algo->ndefaults);
    if (algo->validate(hp, algo->ndefaults)) {
        nb__values_free(hp, algo->ndefaults);
        return NULL;
    }
    nb_optim *o = nb__calloc(1, sizeof *o);
    if (!o || !(o->life = nb__life_new())) {
        nb__free(o);
        nb__values_free(hp, algo->ndefaults);
        return NULL;
    }
    o->algo = algo;
    o->defaults = hp;
    o->ndefaults = algo->ndefaults;
    if (nb_optim_add_param_group(o, params, n, NULL, 0)) {
        nb_optim_free(o);
        return NULL;
    }
    return o;
}

/* Room for the step's working memory of n parameters (slots, coefficients, fresh bits). */
static size_t coef_stride(const nb_optim_algo *a) { return (a->coef_size + 15) & ~(size_t)15; }

static int reserve_step(nb_optim *o, int n) {
    nb_optim_slot *slots = nb__realloc(o->slots, sizeof *slots * (size_t)n);
    if (slots) o->slots = slots;
    unsigned char *c = slots ? nb__realloc(o->coefs, coef_stride(o->algo) * (size_t)(n + 1) + 16) : NULL;
    if (c) o->coefs = c;
    uint32_t *f = c ? nb__realloc(o->fresh, sizeof *f * (size_t)n) : NULL;
    if (!f) return NB_ENOMEM;
    o->fresh = f;
    return NB_OK;
}

static int ensure_state(nb_optim *o, const nb_group *g, int index);

static bool in_optimizer(const nb_optim *o, const nb_tensor *t) {
    for (int g = 0; g < o->ngroups; g++)
        for (int i = 0; i < o->groups[g].nparams; i++)
            if (o->groups[g].params[i] == t) return true;
    return false;
}

int nb_optim_add_param_group(nb_optim *o, nb_tensor *const *params, int n,
                             const nb_value *overrides, int noverrides) {
    if (!o) return nb__error(NB_EINVAL, "add_param_group: optimizer is NULL");
    if (n <= 0 || !params) return nb__error(NB_EINVAL, "optimizer got an empty parameter list");
    if (o->algo->max_groups && o->ngroups >= o->algo->max_groups)
        return nb__error(NB_EINVAL, "%s doesn't support per-parameter options (parameter groups)",
                         o->algo->name);
    for (int i = 0; i < n; i++) {
        nb_tensor *t = params[i];
        if (!t) return nb__error(NB_EINVAL, "optimizer can only optimize Tensors, but one of the params is NULL");
        if (t->dtype != NB_FLOAT32)
            return nb__error(NB_EINVAL, "optimizer can only optimize float32 Tensors (param %d)", i);
        if (t->internal.node) return nb__error(NB_EINVAL, "can't optimize a non-leaf Tensor");
        if (t->internal.arena)
            return nb__error(NB_EINVAL, "optimizer can only optimize heap tensors: param %d lives in "
                             "an arena and dies at its next reset", i);
        for (int j = 0; j < i; j++)
            if (params[j] == t)
                return nb__error(NB_EINVAL, "optimizer contains a parameter group with duplicate parameters");
        if (in_optimizer(o, t))
            return nb__error(NB_EINVAL, "some parameters appear in more than one parameter group");
        if (o->algo->check_param) {
            int rc = o->algo->check_param(t);
            if (rc) return rc;
        }
    }
    if (noverrides < 0 || (noverrides > 0 && !overrides))
        return nb__error(NB_EINVAL, "add_param_group: %d overrides given but the list is %s",
                         noverrides, overrides ? "not NULL" : "NULL");
    for (int i = 0; i < noverrides; i++)
        if (!nb__value_cfind(o->defaults, o->ndefaults, overrides[i].name))
            return nb__error(NB_EINVAL, "%s: unknown option '%s'", o->algo->name, overrides[i].name);
    /* group = defaults (in PyTorch's order) with the overrides applied */
    nb_value *hp = nb__values_copy(o->defaults, o->ndefaults);
    nb_tensor **ps = nb__malloc(sizeof *ps * (size_t)n);
    nb_group *groups = nb__realloc(o->groups, sizeof *groups * (size_t)(o->ngroups + 1));
    if (groups) o->groups = groups;
    nb_param_state *st = groups ? nb__realloc(o->state, sizeof *st * (size_t)(o->nparams + n)) : NULL;
    if (st) o->state = st;
    int rc = (!hp || !ps || !groups || !st || reserve_step(o, o->nparams + n)) ? NB_ENOMEM : NB_OK;
    for (int i = 0; !rc && i < noverrides; i++) {
        nb_value *v = nb__value_find(hp, o->ndefaults, overrides[i].name);
        nb_value nv;
        if (v->kind != overrides[i].kind &&
            !(v->kind == NB_VALUE_NUMBER && overrides[i].kind == NB_VALUE_INT) &&
            !(v->kind == NB_VALUE_NONE || overrides[i].kind == NB_VALUE_NONE))
            rc = nb__error(NB_EINVAL, "%s: option '%s' has the wrong kind of value", o->algo->name,
                           v->name);
        else if (!(rc = nb__value_copy(&nv, &overrides[i]))) {
            nb__value_clear(v);
            *v = nv;
            if (v->kind == NB_VALUE_INT && o->defaults[v - hp].kind == NB_VALUE_NUMBER)
                v->kind = NB_VALUE_NUMBER;
        }
    }
    if (!rc) rc = o->algo->validate(hp, o->ndefaults);
    if (rc) {
        nb__values_free(hp, o->ndefaults);
        nb__free(ps);
        return rc;
    }
    for (int i = 0; i < n; i++)
        if (nb__lives_add(&o->borrowed, params[i]->internal.owner)) {
            nb__values_free(hp, o->ndefaults);
            nb__free(ps);
            return NB_ENOMEM;
        }
    memcpy(ps, params, sizeof *ps * (size_t)n);
    nb_group *g = &o->groups[o->ngroups];
    g->params = ps;
    g->nparams = n;
    g->first = o->nparams;
    g->hp = hp;
    g->nhp = o->ndefaults;
    for (int i = 0; i < n; i++) {
        o->state[o->nparams + i] = (nb_param_state){NULL, 0, 0};
        o->fresh[o->nparams + i] = 0;
    }
    o->ngroups++;
    o->nparams += n;
    for (int i = 0; i < n && o->algo->eager_state && !rc; i++) rc = ensure_state(o, g, g->first + i);
    if (rc) { /* roll the group back: a failed add changes nothing */
        for (int i = 0; i < n; i++) {
            nb_param_state *ps = &o->state[g->first + i];
            nb__values_free(ps->values, ps->nvalues);
            *ps = (nb_param_state){NULL, 0, 0};
        }
        o->ngroups--;
        o->nparams -= n;
        nb__values_free(hp, o->ndefaults);
        nb__free(ps);
    }
    return rc;
}

const char *nb_optim_type(const nb_optim *o) { return o ? o->algo->name : NULL; }
int nb_optim_num_groups(const nb_optim *o) { return o ? o->ngroups : 0; }

int nb_optim_group_size(const nb_optim *o, int g) {
    return o && g >= 0 && g < o->ngroups ? o->groups[g].nparams : -1;
}

nb_tensor *nb_optim_group_param(const nb_optim *o, int g, int i) {
    if (!o || g < 0 || g >= o->ngroups || i < 0 || i >= o->groups[g].nparams) return NULL;
    return o->groups[g].params[i];
}

const nb_value *nb_optim_get_value(const nb_optim *o, int g, const char *name) {
    if (!o || !name || g < 0 || g >= o->ngroups) return NULL;
    return nb__value_cfind(o->groups[g].hp, o->groups[g].nhp, name);
}

double nb_optim_get(const nb_optim *o, int g, const char *name) {
    if (!o || g < 0 || g >= o->ngroups) return NAN;
    return nb__hp(o->groups[g].hp, o->groups[g].nhp, name);
}

bool nb_optim_has_default(const nb_optim *o, const char *name) {
    return o && name && nb__value_cfind(o->defaults, o->ndefaults, name);
}

/* Change one value in place, validate the group (when asked), and put the old value back on
 * failure. */
static int set_checked(nb_optim *o, int g, const char *name, int elem, double v, bool validate) {
    if (!o) return nb__error(NB_EINVAL, "optim_set: optimizer is NULL");
    if (g < 0 || g >= o->ngroups)
        return nb__error(NB_EINVAL, "%s: no param group %d (it has %d)", o->algo->name, g, o->ngroups);
    nb_group *gr = &o->groups[g];
    nb_value *val = name ? nb__value_find(gr->hp, gr->nhp, name) : NULL;
    if (!val) return nb__error(NB_EINVAL, "%s: param group has no option '%s'", o->algo->name, name ? name : "(null)");
    double *slot;
    if (elem >= 0) {
        if (val->kind != NB_VALUE_LIST || elem >= val->len)
            return nb__error(NB_EINVAL, "%s: option '%s' has no element %d", o->algo->name, name, elem);
        slot = val->len <= NB_VALUE_INLINE ? &val->inl[elem] : &val->list[elem];
    } else {
        if (val->kind == NB_VALUE_LIST || val->kind == NB_VALUE_STRING || val->kind == NB_VALUE_TENSOR)
            return nb__error(NB_EINVAL, "%s: option '%s' is not a number", o->algo->name, name);
        slot = &val->num;
    }
    nb_value_kind old_kind = val->kind;
    double old = *slot;
    *slot = val->kind == NB_VALUE_BOOL ? (v != 0.0) : v;
    if (val->kind == NB_VALUE_NONE) val->kind = NB_VALUE_NUMBER;
    int rc = validate ? o->algo->validate(gr->hp, o->ndefaults) : NB_OK;
    if (rc) {
        *slot = old;
        val->kind = old_kind;
    }
    return rc;
}

int nb_optim_set(nb_optim *o, int g, const char *name, double v) { return set_checked(o, g, name, -1, v, true); }

int nb_optim_set_elem(nb_optim *o, int g, const char *name, int i, double v) {
    if (i < 0) return nb__error(NB_EINVAL, "optimizer: negative element index %d", i);
    return set_checked(o, g, name, i, v, true);
}

int nb__optim_write(nb_optim *o, int g, const char *name, int elem, double v) {
    return set_checked(o, g, name, elem, v, false);
}

int nb_optim_set_value(nb_optim *o, int g, const nb_value *v) {
    if (!o || !v) return nb__error(NB_EINVAL, "optim_set_value: %s is NULL", !o ? "optimizer" : "value");
    if (g < 0 || g >= o->ngroups)
        return nb__error(NB_EINVAL, "%s: no param group %d (it has %d)", o->algo->name, g, o->ngroups);
    nb_group *gr = &o->groups[g];
    nb_value *slot = nb__value_find(gr->hp, o->ndefaults, v->name);
    if (!slot) return nb__error(NB_EINVAL, "%s: param group has no option '%s'", o->algo->name, v->name);
    const nb_value *def = &o->defaults[slot - gr->hp];
    bool ok = v->kind == def->kind || (def->kind == NB_VALUE_NUMBER && v->kind == NB_VALUE_INT) ||
              def->kind == NB_VALUE_NONE || v->kind == NB_VALUE_NONE ||
              (def->kind == NB_VALUE_LIST && v->kind == NB_VALUE_LIST && v->len == def->len);
    if (!ok) return nb__error(NB_EINVAL, "%s: option '%s' has the wrong kind of value", o->algo->name, v->name);
    nb_value nv, old = *slot;
    if (nb__value_copy(&nv, v)) return NB_ENOMEM;
    if (nv.kind == NB_VALUE_INT && def->kind == NB_VALUE_NUMBER) nv.kind = NB_VALUE_NUMBER;
    *slot = nv;
    int rc = o->algo->validate(gr->hp, o->ndefaults);
    if (rc) {
        *slot = old;
        nb__value_clear(&nv);
    } else {
        nb__value_clear(&old);
    }
    return rc;
}

int nb_optim_put(nb_optim *o, int g, const nb_value *v) {
    if (!o || !v) return nb__error(NB_EINVAL, "optim_put: %s is NULL", !o ? "optimizer" : "value");
    if (g < 0 || g >= o->ngroups)
        return nb__error(NB_EINVAL, "optim_put: no param group %d (the optimizer has %d)", g, o->ngroups);
    nb_group *gr = &o->groups[g];
    nb_value nv;
    if (nb__value_copy(&nv, v)) return NB_ENOMEM;
    nb_value *old = nb__value_find(gr->hp, gr->nhp, v->name);
    if (old && old - gr->hp < o->ndefaults) {
        nb__value_clear(&nv);
        return nb__error(NB_EINVAL, "optim_put: '%s' is an option of %s; use nb_optim_set", v->name,
                         o->algo->name);
    }
    if (!old) {
        nb_value *hp = nb__realloc(gr->hp, sizeof *hp * (size_t)(gr->nhp + 1));
        if (!hp) {
            nb__value_clear(&nv);
            return NB_ENOMEM;
        }
        gr->hp = hp;
        old = &gr->hp[gr->nhp++];
    } else {
        nb__value_clear(old);
    }
    *old = nv;
    return NB_OK;
}

/* ---- state ------------------------------------------------------------------------------- */
nb_value *nb__state(nb_optim *o, int index, const char *name) {
    nb_param_state *s = &o->state[index];
    return nb__value_find(s->values, s->nvalues, name);
}

void nb__state_remove(nb_optim *o, int index, const char *name) {
    nb_param_state *s = &o->state[index];
    nb_value *v = nb__value_find(s->values, s->nvalues, name);
    if (!v) return;
    nb__value_clear(v);
    *v = s->values[--s->nvalues];
}

static int state_room(const nb_optim *o, int n) {
    int cap = o->algo->nstate_spec > 4 ? o->algo->nstate_spec : 4;
    return n > cap ? n : cap;
}

static nb_value *state_add(nb_optim *o, int index, nb_value v) {
    nb_param_state *s = &o->state[index];
    if (s->nvalues == s->cap) {
        int cap = state_room(o, 2 * s->cap);
        nb_value *vals = nb__realloc(s->values, sizeof *vals * (size_t)cap);
        if (!vals) return NULL;
        s->values = vals;
        s->cap = cap;
    }
    s->values[s->nvalues] = v;
    return &s->values[s->nvalues++];
}

float *nb__state_tensor(nb_optim *o, int index, const char *name, const nb_tensor *p, float init) {
    nb_value *v = nb__state(o, index, name);
    if (v && v->kind == NB_VALUE_TENSOR) return nb_f32(v->tensor);
    nb_tensor *t = nb_full(NULL, p->ndim, p->shape, init);
    if (!t) return NULL;
    if (v) { /* a None entry (e.g. momentum_buffer) becomes a tensor */
        v->kind = NB_VALUE_TENSOR;
        v->tensor = t;
        return nb_f32(t);
    }
    nb_value nv = nb__value(name, NB_VALUE_TENSOR, 0);
    nv.tensor = t;
    if (!state_add(o, index, nv)) {
        nb_tensor_free(t);
        return NULL;
    }
    return nb_f32(t);
}

nb_value *nb__state_scalar(nb_optim *o, int index, const char *name, nb_value_kind kind, double init) {
    nb_value *v = nb__state(o, index, name);
    return v ? v : state_add(o, index, nb__value(name, kind, init));
}

int nb__state_set_tensor(nb_optim *o, int index, const char *name, nb_tensor *t) {
    nb_value *v = nb__state(o, index, name);
    if (v) {
        nb__value_clear(v);
    } else if (!(v = state_add(o, index, nb__value(name, NB_VALUE_TENSOR, 0)))) {
        nb_tensor_free(t);
        return NB_ENOMEM;
    }
    v->kind = NB_VALUE_TENSOR;
    v->tensor = t;
    return NB_OK;
}

/* ---- lifetimes: an optimizer borrows its parameters from their modules -------------------- */
nb_life *nb__optim_life(const nb_optim *o) { return o ? o->life : NULL; }

/* Refused once a module whose parameters o holds was freed: never a write into freed memory. */
int nb__optim_usable(const nb_optim *o, const char *op) {
    if (nb__lives_alive(&o->borrowed)) return NB_OK;
    return nb__error(NB_ESTATE, "%s: the module that owns this %s optimizer's parameters was freed "
                     "(free the optimizer before its module)", op, o->algo->name);
}

/* ---- the loop ---------------------------------------------------------------------------- */
void nb_optim_zero_grad(nb_optim *o, bool set_to_none) {
    if (!o || nb__optim_usable(o, "zero_grad")) return;
    for (int g = 0; g < o->ngroups; g++)
        for (int i = 0; i < o->groups[g].nparams; i++) {
            nb_tensor *p = o->groups[g].params[i];
            if (!p->grad) continue;
            if (set_to_none) p->grad = NULL;
            else if (p->grad->flags & NB_TENSOR_SPARSE) nb__sparse_clear(p->grad); /* zero_(): no rows */
            else memset(p->grad->data, 0, sizeof(float) * (size_t)p->numel);
        }
}

/* ---- state from the spec -------------------------------------------------------------------- */
static bool spec_on(const nb_state_spec *sp, const nb_group *g) {
    return !sp->when || nb__g(g, sp->when) != 0.0;
}

static double spec_init(const nb_state_spec *sp, const nb_group *g) {
    return sp->init_hp ? (double)(float)nb__g(g, sp->init_hp) : sp->init;
}

/* Create what parameter index lacks of its state (PyTorch's "if len(state) == 0" and the
 * entries an option turns on later), recording which entries are new. */
static int ensure_state(nb_optim *o, const nb_group *g, int index) {
    const nb_optim_algo *a = o->algo;
    const nb_tensor *p = g->params[index - g->first];
    for (int k = 0; k < a->nstate_spec; k++) {
        const nb_state_spec *sp = &a->state_spec[k];
        nb_param_state *ps = &o->state[index];
        nb_value *v = k < ps->nvalues && !strcmp(ps->values[k].name, sp->name) ? &ps->values[k]
                                                                                : nb__state(o, index, sp->name);
        bool made = false;
        if (sp->kind == NB_STATE_NUMBER || sp->kind == NB_STATE_INT) {
            made = !v;
            if (made && !state_add(o, index, nb__value(sp->name, sp->kind == NB_STATE_INT ? NB_VALUE_INT
                                                                                         : NB_VALUE_NUMBER,
                                                       spec_init(sp, g))))
                return NB_ENOMEM;
        } else if (sp->kind != NB_STATE_OTHER && spec_on(sp, g)) {
            made = !v || v->kind != NB_VALUE_TENSOR;
            if (made && !nb__state_tensor(o, index, sp->name, p, (float)spec_init(sp, g))) return NB_ENOMEM;
        } else if (sp->kind == NB_STATE_LIKE_OR_NONE && !v) { /* PyTorch keeps the key, with None */
            if (!state_add(o, index, nb__value(sp->name, NB_VALUE_NONE, 0))) return NB_ENOMEM;
        }
        if (made) o->fresh[index] |= UINT32_C(1) << k;
    }
    return a->init_state ? a->init_state(o, g, index) : NB_OK;
}

/* ---- the step -------------------------------------------------------------------------------- */
/* Every gradient is one the algorithm takes (checked before anything changes). */
static int check_grads(const nb_optim *o) {
    const nb_optim_algo *a = o->algo;
    for (int g = 0; g < o->ngroups; g++)
        for (int i = 0; i < o->groups[g].nparams; i++) {
            const nb_tensor *gr = o->groups[g].params[i]->grad;
            if (!gr) continue;
            bool sparse = gr->flags & NB_TENSOR_SPARSE;
            if (sparse && !a->update_sparse) {
                if (a->grad_error) return nb__error(NB_EINVAL, "%s", a->grad_error);
                return nb__error(NB_EINVAL, "%s does not support sparse gradients", a->name);
            }
            if (sparse && a->sparse_check) {
                int rc = a->sparse_check(&o->groups[g]);
                if (rc) return rc;
            }
            if (!sparse && a->sparse_only) return nb__error(NB_EINVAL, "%s", a->grad_error);
        }
    return NB_OK;
}

static void fill_slot(nb_optim *o, const nb_group *g, int i, nb_optim_slot *s) {
    const nb_optim_algo *a = o->algo;
    nb_tensor *p = g->params[i];
    int index = g->first + i;
    nb_param_state *ps = &o->state[index];
    s->param = p;
    s->p = nb_f32(p);
    s->grad = p->grad;
    s->g = p->grad->flags & NB_TENSOR_SPARSE ? NULL : nb_f32(p->grad);
    s->n = p->numel;
    s->index = index;
    s->group = g;
    s->fresh = o->fresh[index];
    o->fresh[index] = 0;
    for (int k = 0; k < a->nstate_spec; k++) {
        const char *name = a->state_spec[k].name;
        nb_value *v = k < ps->nvalues && !strcmp(ps->values[k].name, name) ? &ps->values[k]
                                                                            : nb__state(o, index, name);
        s->v[k] = v;
        s->t[k] = v && v->kind == NB_VALUE_TENSOR ? nb_f32(v->tensor) : NULL;
    }
}

/* The group's ranges as one job: its n elements (the parameters one after the other) cut into
 * `parts` equal parts, each boundary moved down to a multiple of 16 elements of its parameter
 * (64 bytes: no cache line is written by two threads). */
typedef struct range_job {
    void (*update)(const nb_optim_slot *s, int64_t b, int64_t e);
    const nb_optim_slot *s;
    int n, parts;
    int64_t total;
} range_job;

static void locate(const range_job *j, int64_t pos, int *si, int64_t *off) {
    int i = 0;
    while (i < j->n - 1 && pos >= j->s[i].n) pos -= j->s[i++].n;
    *si = i;
    *off = pos >= j->s[i].n ? j->s[i].n : pos & ~(int64_t)15;
}

static void run_parts(void *ctx, int64_t pb, int64_t pe) {
    const range_job *j = ctx;
    for (int64_t k = pb; k < pe; k++) {
        int a, b;
        int64_t oa, ob;
        locate(j, j->total * k / j->parts, &a, &oa);
        locate(j, j->total * (k + 1) / j->parts, &b, &ob);
        for (int i = a; i <= b; i++) {
            int64_t lo = i == a ? oa : 0, hi = i == b ? ob : j->s[i].n;
            if (lo < hi) j->update(&j->s[i], lo, hi);
        }
    }
}

static int step_group(nb_optim *o, const nb_group *g) {
    const nb_optim_algo *a = o->algo;
    size_t stride = coef_stride(a);
    unsigned char *gc = o->coefs + stride * (size_t)o->nparams;
    if (a->group_coef) a->group_coef(g, gc);
    int n = 0;
    int64_t total = 0;
    for (int i = 0; i < g->nparams; i++) {
        if (!g->params[i]->grad) continue;
        nb_optim_slot *s = &o->slots[n];
        fill_slot(o, g, i, s);
        s->coef = gc;
        for (int k = 0; k < a->nstate_spec; k++)
            if (a->state_spec[k].counter) {
                nb_value *c = s->v[k];
                c->num = c->kind == NB_VALUE_INT ? c->num + 1 : (double)(float)(c->num + 1.0);
            }
        if (a->param_coef) {
            void *pc = o->coefs + stride * (size_t)s->index;
            memcpy(pc, gc, a->coef_size);
            a->param_coef(s, pc);
            s->coef = pc;
        }
        int rc = !s->g ? a->update_sparse(o, s) : a->update_tensor ? a->update_tensor(o, s) : -1;
        if (rc > 0 || rc < -1) return rc;
        if (rc == -1) { /* a range update: joins the group's job */
            total += s->n;
            n++;
        }
    }
    if (!n) return NB_OK;
    int64_t parts = total / NB_OPTIM_GRAIN, threads = nb__num_threads();
    range_job j = {a->update, o->slots, n, (int)(parts < 1 ? 1 : parts > threads ? threads : parts), total};
    if (j.parts > 1) nb__parallel_for(j.parts, 1, run_parts, &j);
    else run_parts(&j, 0, 1);
    return NB_OK;
}

/* ---- hooks ------------------------------------------------------------------------------ */
typedef struct nb_optim_hook {
    nb_optim_hook_kind kind;
    uint64_t id;
    nb_optim_hook_fn fn; /* NULL: removed while hooks were running */
    void *user;
} nb_optim_hook;

static nb_hook_handle add_hook(nb_optim *o, nb_optim_hook_kind kind, nb_optim_hook_fn fn, void *user, bool prepend) {
    nb_hook_handle h = {o, 0};
    if (!o || !fn) {
        nb__error(NB_EINVAL, "register hook: %s is NULL", !o ? "optimizer" : "hook");
        return h;
    }
    if (o->nhooks == o->caphooks) {
        int cap = o->caphooks ? 2 * o->caphooks : 4;
        nb_optim_hook *hk = nb__realloc(o->hooks, sizeof *hk * (size_t)cap);
        if (!hk) return h;
        o->hooks = hk;
        o->caphooks = cap;
    }
    int at = o->nhooks;
    if (prepend)
        for (at = 0; at < o->nhooks && o->hooks[at].kind != kind; at++)
            ;
    memmove(&o->hooks[at + 1], &o->hooks[at], sizeof *o->hooks * (size_t)(o->nhooks - at));
    h.id = ++o->next_hook;
    o->hooks[at] = (nb_optim_hook){kind, h.id, fn, user};
    o->nhooks++;
    return h;
}

nb_hook_handle nb_optim_register_step_pre_hook(nb_optim *o, nb_optim_hook_fn fn, void *user) {
    return add_hook(o, NB_HOOK_STEP_PRE, fn, user, false);
}
nb_hook_handle nb_optim_register_step_post_hook(nb_optim *o, nb_optim_hook_fn fn, void *user) {
    return add_hook(o, NB_HOOK_STEP_POST, fn, user, false);
}
nb_hook_handle nb_optim_register_state_dict_pre_hook(nb_optim *o, nb_optim_hook_fn fn, void *user, bool prepend) {
    return add_hook(o, NB_HOOK_STATE_DICT_PRE, fn, user, prepend);
}
nb_hook_handle nb_optim_register_state_dict_post_hook(nb_optim *o, nb_optim_hook_fn fn, void *user, bool prepend) {
    return add_hook(o, NB_HOOK_STATE_DICT_POST, fn, user, prepend);
}
nb_hook_handle nb_optim_register_load_state_dict_pre_hook(nb_optim *o, nb_optim_hook_fn fn, void *user,
                                                          bool prepend) {
    return add_hook(o, NB_HOOK_LOAD_STATE_DICT_PRE, fn, user, prepend);
}
nb_hook_handle nb_optim_register_load_state_dict_post_hook(nb_optim *o, nb_optim_hook_fn fn, void *user,
                                                           bool prepend) {
    return add_hook(o, NB_HOOK_LOAD_STATE_DICT_POST, fn, user, prepend);
}

static void compact_hooks(nb_optim *o) {
    int n = 0;
    for (int i = 0; i < o->nhooks; i++)
        if (o->hooks[i].fn) o->hooks[n++] = o->hooks[i];
    o->nhooks = n;
}

void nb_hook_remove(nb_hook_handle *h) {
    if (!h || !h->owner || !h->id) return;
    nb_optim *o = h->owner;
    for (int i = 0; i < o->nhooks; i++)
        if (o->hooks[i].id == h->id) o->hooks[i].fn = NULL;
    if (!o->running_hooks) compact_hooks(o);
    h->id = 0;
}

/* Run the hooks of a kind in order; the first error stops them and is returned. */
static int run_hooks(nb_optim *o, nb_optim_hook_kind kind, nb_optim_dict *sd) {
    int rc = NB_OK;
    o->running_hooks++;
    for (int i = 0; !rc && i < o->nhooks; i++) { /* a hook may add or remove hooks: by index */
        nb_optim_hook h = o->hooks[i];
        if (h.kind == kind && h.fn) {
            static const char *const names[] = {"step pre", "step post", "state_dict pre", "state_dict post",
                                                "load_state_dict pre", "load_state_dict post"};
            nb_clear_error();
            rc = h.fn(o, sd, h.user);
            if (rc > 0 || rc < NB_ESTATE) rc = NB_EINVAL; /* a status, whatever the hook returned */
            if (rc && !nb_last_status())
                nb__error(rc, "%s: a %s hook failed (%s)", o->algo->name, names[kind], nb_status_str(rc));
        }
    }
    if (!--o->running_hooks) compact_hooks(o);
    return rc;
}

/* The update of every parameter with a gradient, without the hooks. */
static int update(nb_optim *o) {
    int rc = check_grads(o);
    /* the state every parameter with a gradient needs, before any parameter changes */
    for (int g = 0; !rc && g < o->ngroups; g++)
        for (int i = 0; !rc && i < o->groups[g].nparams; i++)
            if (o->groups[g].params[i]->grad) rc = ensure_state(o, &o->groups[g], o->groups[g].first + i);
    for (int g = 0; !rc && g < o->ngroups; g++) rc = step_group(o, &o->groups[g]);
    return rc;
}

int nb_optim_step(nb_optim *o) {
    if (!o) return nb__error(NB_EINVAL, "step: optimizer is NULL");
    if (nb__optim_usable(o, "step")) return NB_ESTATE;
    if (o->algo->step_closure)
        return nb__error(NB_EINVAL, "%s: step requires a closure (nb_optim_step_closure)", o->algo->name);
    int rc = run_hooks(o, NB_HOOK_STEP_PRE, NULL);
    if (!rc) rc = update(o);
    return rc ? rc : run_hooks(o, NB_HOOK_STEP_POST, NULL);
}

/* step(closure): the pre hooks, the closure (inside the algorithm's step for LBFGS), the
 * update, the post hooks - PyTorch's order. */
int nb_optim_step_closure(nb_optim *o, nb_closure_fn closure, void *user, double *loss) {
    if (!o) return nb__error(NB_EINVAL, "step: optimizer is NULL");
    if (nb__optim_usable(o, "step")) return NB_ESTATE;
    if (o->algo->step_closure && !closure) return nb__error(NB_EINVAL, "%s: step requires a closure", o->algo->name);
    int rc = run_hooks(o, NB_HOOK_STEP_PRE, NULL);
    if (rc) return rc;
    bool prev = nb_set_grad_enabled(true);
    if (o->algo->step_closure) {
        rc = o->algo->step_closure(o, closure, user, loss);
    } else if (closure) {
        double l = closure(user);
        if (loss) *loss = l;
    }
    nb_set_grad_enabled(prev);
    if (!rc && !o->algo->step_closure) rc = update(o);
    return rc ? rc : run_hooks(o, NB_HOOK_STEP_POST, NULL);
}

void nb_optim_free(nb_optim *o) {
    if (!o) return;
    nb__life_end(o->life);
    nb__lives_free(&o->borrowed);
    for (int g = 0; g < o->ngroups; g++) {
        nb__free(o->groups[g].params);
        nb__values_free(o->groups[g].hp, o->groups[g].nhp);
    }
    for (int i = 0; i < o->nparams; i++) nb__values_free(o->state[i].values, o->state[i].nvalues);
    nb__free(o->groups);
    nb__free(o->state);
    nb__values_free(o->defaults, o->ndefaults);
    nb__free(o->scratch);
    nb__free(o->slots);
    nb__free(o->coefs);
    nb__free(o->fresh);
    nb__free(o->hooks);
    nb__free(o);
}

/* ---- state_dict -------------------------------------------------------------------------- */
nb_tensor *nb__optim_param(const nb_optim *o, int index) {
    for (int g = 0; g < o->ngroups; g++)
        if (index < o->groups[g].first + o->groups[g].nparams)
            return o->groups[g].params[index - o->groups[g].first];
    return NULL;
}

static nb_optim_dict *dict_of(const nb_optim *o) {
    nb_optim_dict *sd = nb__calloc(1, sizeof *sd);
    if (!sd) return NULL;
    snprintf(sd->type, sizeof sd->type, "%s", o->algo->name);
    sd->groups = nb__calloc((size_t)o->ngroups, sizeof *sd->groups);
    sd->states = nb__calloc((size_t)(o->nparams ? o->nparams : 1), sizeof *sd->states);
    if (!sd->groups || !sd->states) goto oom;
    for (int g = 0; g < o->ngroups; g++, sd->ngroups++) {
        const nb_group *gr = &o->groups[g];
        nb_optim_group_dict *d = &sd->groups[g];
        d->params = nb__malloc(sizeof(int) * (size_t)gr->nparams);
        d->values = nb__values_copy(gr->hp, gr->nhp);
        if (!d->params || !d->values) goto oom;
        d->nvalues = gr->nhp;
        d->nparams = gr->nparams;
        for (int i = 0; i < gr->nparams; i++) d->params[i] = gr->first + i;
    }
    for (int i = 0; i < o->nparams; i++) {
        const nb_param_state *s = &o->state[i];
        if (!s->nvalues) continue;
        nb_optim_param_state *d = &sd->states[sd->nstates];
        const nb_tensor *p = nb__optim_param(o, i);
        d->index = i;
        d->ndim = p->ndim;
        memcpy(d->shape, p->shape, sizeof d->shape);
        if (!(d->values = nb__values_copy(s->values, s->nvalues))) goto oom;
        d->nvalues = s->nvalues;
        sd->nstates++;
        if (o->algo->export_state && o->algo->export_state(o, i, &d->values, &d->nvalues)) goto oom;
    }
    return sd;
oom:
    nb_optim_dict_free(sd);
    return NULL;
}


/* state_dict(): the pre hooks, the dict, the post hooks (which may change it in place). The
 * hooks get the optimizer as registered (not const), as PyTorch's get self. */
nb_optim_dict *nb_optim_state_dict(const nb_optim *o) {
    if (!o) return nb__null(NB_EINVAL, "state_dict: optimizer is NULL");
    if (nb__optim_usable(o, "state_dict")) return NULL; /* it reads the parameters' shapes */
    nb_optim *h = (nb_optim *)o;
    if (run_hooks(h, NB_HOOK_STATE_DICT_PRE, NULL)) return NULL;
    nb_optim_dict *sd = dict_of(o);
    if (sd && run_hooks(h, NB_HOOK_STATE_DICT_POST, sd)) {
        nb_optim_dict_free(sd);
        return NULL;
    }
    return sd;
}

/* A deep copy of a state dict (what load pre hooks may change). */
static nb_optim_dict *dict_copy(const nb_optim_dict *src) {
    nb_optim_dict *sd = nb__calloc(1, sizeof *sd);
    if (!sd) return NULL;
    memcpy(sd->type, src->type, sizeof sd->type);
    sd->groups = nb__calloc((size_t)(src->ngroups ? src->ngroups : 1), sizeof *sd->groups);
    sd->states = nb__calloc((size_t)(src->nstates ? src->nstates : 1), sizeof *sd->states);
    if (!sd->groups || !sd->states) goto oom;
    for (int g = 0; g < src->ngroups; g++, sd->ngroups++) {
        const nb_optim_group_dict *s = &src->groups[g];
        nb_optim_group_dict *d = &sd->groups[g];
        if (!(d->params = nb__malloc(sizeof(int) * (size_t)(s->nparams ? s->nparams : 1))) ||
            !(d->values = nb__values_copy(s->values, s->nvalues)))
            goto oom;
        if (s->nparams) memcpy(d->params, s->params, sizeof(int) * (size_t)s->nparams);
        d->nparams = s->nparams;
        d->nvalues = s->nvalues;
    }
    for (int i = 0; i < src->nstates; i++, sd->nstates++) {
        sd->states[i] = src->states[i];
        if (!(sd->states[i].values = nb__values_copy(src->states[i].values, src->states[i].nvalues))) goto oom;
    }
    return sd;
oom:
    nb_optim_dict_free(sd);
    return NULL;
}

void nb_optim_dict_free(nb_optim_dict *sd) {
    if (!sd) return;
    for (int g = 0; g < sd->ngroups; g++) {
        nb__free(sd->groups[g].params);
        nb__values_free(sd->groups[g].values, sd->groups[g].nvalues);
    }
    for (int i = 0; i < sd->nstates; i++) nb__values_free(sd->states[i].values, sd->states[i].nvalues);
    nb__free(sd->groups);
    nb__free(sd->states);
    nb__free(sd);
}

static const nb_state_spec *spec_of(const nb_optim_algo *a, const char *name) {
    for (int k = 0; k < a->nstate_spec; k++)
        if (!strcmp(a->state_spec[k].name, name)) return &a->state_spec[k];
    return NULL;
}

/* A number PyTorch keeps as a one-element float32 tensor (1.13's and 2.x's `step`, ASGD's eta
 * and mu, LBFGS's H_diag) becomes the number nabla keeps, an int where the spec says so. */
static void to_number(const nb_optim_algo *a, nb_value *v) {
    const nb_state_spec *sp = spec_of(a, v->name);
    if (!sp || v->kind != NB_VALUE_TENSOR || !v->tensor || v->tensor->dtype != NB_FLOAT32 ||
        v->tensor->numel != 1 ||
        (sp->kind != NB_STATE_NUMBER && sp->kind != NB_STATE_INT && sp->kind != NB_STATE_NUMBER_OR_NONE))
        return;
    double x = nb_f32(v->tensor)[0];
    nb__value_clear(v);
    v->kind = sp->kind == NB_STATE_INT && x == floor(x) ? NB_VALUE_INT : NB_VALUE_NUMBER;
    v->num = x;
}

/* The loaded state of one parameter against the algorithm's state spec (and its hook). */
static int check_state(const nb_optim *o, const nb_tensor *p, int index, const nb_value *vals, int n) {
    const nb_optim_algo *a = o->algo;
    for (int j = 0; j < n; j++) {
        const nb_value *v = &vals[j];
        const nb_state_spec *sp = spec_of(a, v->name);
        if (!sp && a->nstate_spec)
            return nb__error(NB_EFORMAT, "loaded state dict: %s has no state '%s' (parameter %d)",
                             a->name, v->name, index);
        nb_state_kind kind = sp ? sp->kind : NB_STATE_LIKE_OR_NONE;
        if (kind == NB_STATE_OTHER) continue;
        if (kind == NB_STATE_NUMBER || kind == NB_STATE_INT || kind == NB_STATE_NUMBER_OR_NONE) {
            if (v->kind != NB_VALUE_NUMBER && v->kind != NB_VALUE_INT &&
                !(v->kind == NB_VALUE_NONE && kind == NB_STATE_NUMBER_OR_NONE))
                return nb__error(NB_EFORMAT, "loaded state dict: state '%s' of parameter %d must be "
                                 "a number", v->name, index);
            continue;
        }
        if (v->kind == NB_VALUE_NONE && kind == NB_STATE_LIKE_OR_NONE) continue;
        if (v->kind != NB_VALUE_TENSOR || !v->tensor || v->tensor->dtype != NB_FLOAT32)
            return nb__error(NB_EFORMAT, "loaded state dict: state '%s' of parameter %d must be a "
                             "float32 tensor", v->name, index);
        if (!nb_same_shape(v->tensor, p))
            return nb__error(NB_ESHAPE, "loaded state dict: state '%s' of parameter %d has shape "
                             "%s, parameter has shape %s", v->name, index,
                             nb__shape(v->tensor, 0), nb__shape(p, 1));
    }
    return a->check_state ? a->check_state(o, index, vals, n) : NB_OK;
}

/* Keys of a param group beyond the optimizer's options that a state dict may hold: PyTorch
 * 2.x's implementation switches (kept, without effect: nabla has one CPU path), and the keys
 * schedulers add. */
static const char *const switches[] = {"foreach", "capturable", "differentiable", "fused", NULL};
static const char *const sched_keys[] = {"initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum",
                                         "swa_lr", NULL};

static bool listed(const char *const *list, const char *name) {
    for (int i = 0; list && list[i]; i++)
        if (!strcmp(list[i], name)) return true;
    return false;
}

/* A loaded group's table: the optimizer's options first, in its order (those an older PyTorch
 * did not write filled with their defaults, as PyTorch's __setstate__ does), then the other
 * keys, each of which nabla must know. */
static int load_group(const nb_optim *o, int g, const nb_optim_group_dict *d, nb_value **out, int *nout) {
    const nb_optim_algo *a = o->algo;
    char unknown[256] = "";
    for (int j = 0; j < d->nvalues; j++) {
        const nb_value *v = &d->values[j], *fixed = nb__value_cfind(a->fixed, a->nfixed, v->name);
        if (nb__value_cfind(a->defaults, a->ndefaults, v->name)) continue;
        if (fixed) {
            if (v->kind != fixed->kind || v->num != fixed->num)
                return nb__error(NB_EINVAL, "loaded state dict: param group %d has %s=%s, which %s does not "
                                 "do%s", g, v->name, v->num != 0 ? "True" : "False", a->name,
                                 a->fixed_hint ? a->fixed_hint : "");
            continue;
        }
        if (listed(switches, v->name)) {
            if (v->kind != NB_VALUE_NONE && v->kind != NB_VALUE_BOOL)
                return nb__error(NB_EFORMAT, "loaded state dict: param group %d: '%s' must be None, True or "
                                 "False", g, v->name);
            continue;
        }
        if (listed(sched_keys, v->name) || nb__value_cfind(o->groups[g].hp, o->groups[g].nhp, v->name)) continue;
        snprintf(unknown + strlen(unknown), sizeof unknown - strlen(unknown), "%s'%s'", unknown[0] ? ", " : "",
                 v->name);
    }
    if (unknown[0])
        return nb__error(NB_EFORMAT, "loaded state dict: param group %d has keys that %s does not know: %s", g,
                         a->name, unknown);
    nb_value *hp = nb__calloc((size_t)(d->nvalues + o->ndefaults), sizeof *hp);
    if (!hp) return NB_ENOMEM;
    int n = 0, rc = NB_OK;
    for (int j = 0; !rc && j < o->ndefaults; j++) {
        const nb_value *v = nb__value_cfind(d->values, d->nvalues, o->defaults[j].name);
        if (!v && listed(a->added, o->defaults[j].name)) v = &a->defaults[j]; /* __setstate__'s setdefault */
        if (!v) rc = nb__error(NB_EFORMAT, "loaded state dict: param group %d lacks '%s'", g, o->defaults[j].name);
        else rc = nb__value_copy(&hp[n++], v);
    }
    for (int j = 0; !rc && j < d->nvalues; j++)
        if (!nb__value_cfind(o->defaults, o->ndefaults, d->values[j].name)) rc = nb__value_copy(&hp[n++], &d->values[j]);
    if (!rc) rc = a->validate(hp, o->ndefaults);
    if (rc) {
        nb__values_free(hp, n);
        return rc;
    }
    *out = hp;
    *nout = n;
    return NB_OK;
}

static int load(nb_optim *o, const nb_optim_dict *sd) {
    if (strcmp(sd->type, o->algo->name) != 0)
        return nb__error(NB_EINVAL, "loaded state dict is for optimizer %s, not %s", sd->type,
                         o->algo->name);
    if (sd->ngroups != o->ngroups)
        return nb__error(NB_EINVAL, "loaded state dict has a different number of parameter groups");
    for (int g = 0; g < o->ngroups; g++)
        if (sd->groups[g].nparams != o->groups[g].nparams)
            return nb__error(NB_EINVAL, "loaded state dict contains a parameter group that doesn't "
                                        "match the size of optimizer's group");
    /* saved index -> live index, by position in the groups (as PyTorch zips them); the saved
     * indices are 0..nparams-1 in any order (each once), so the map has nparams entries */
    for (int g = 0; g < sd->ngroups; g++)
        for (int i = 0; i < sd->groups[g].nparams; i++) {
            int idx = sd->groups[g].params[i];
            if (idx < 0 || idx >= o->nparams)
                return nb__error(NB_EFORMAT, "loaded state dict: parameter index %d is outside 0..%d",
                                 idx, o->nparams - 1);
        }
    int *map = nb__malloc(sizeof(int) * (size_t)o->nparams);
    nb_param_state *st = nb__calloc((size_t)o->nparams, sizeof *st);
    nb_value **hps = nb__calloc((size_t)o->ngroups, sizeof *hps);
    int *nhps = nb__calloc((size_t)o->ngroups, sizeof *nhps);
    int rc = (!map || !st || !hps || !nhps) ? NB_ENOMEM : NB_OK;
    for (int i = 0; !rc && i < o->nparams; i++) map[i] = -1;
    for (int g = 0, live = 0; !rc && g < sd->ngroups; g++)
        for (int i = 0; i < sd->groups[g].nparams; i++, live++) {
            int s = sd->groups[g].params[i];
            if (map[s] >= 0) {
                rc = nb__error(NB_EFORMAT, "loaded state dict: bad parameter index %d", s);
                break;
            }
            map[s] = live;
        }
    for (int k = 0; !rc && k < sd->nstates; k++) {
        const nb_optim_param_state *ps = &sd->states[k];
        int live = ps->index >= 0 && ps->index < o->nparams ? map[ps->index] : -1;
        if (live < 0) {
            rc = nb__error(NB_EFORMAT, "loaded state dict has state for parameter %d, which is "
                           "in no parameter group", ps->index);
            break;
        }
        const nb_tensor *p = nb__optim_param(o, live);
        if (ps->ndim != p->ndim || memcmp(ps->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim)) {
            rc = nb__error(NB_ESHAPE, "loaded state dict: parameter %d has shape %s, the "
                           "optimizer's parameter has shape %s", ps->index,
                           nb__shape_of(ps->ndim, ps->shape, 0), nb__shape(p, 1));
            break;
        }
        if (!rc && st[live].values) rc = nb__error(NB_EFORMAT, "loaded state dict: parameter %d has two states", ps->index);
        int cap = state_room(o, ps->nvalues);
        if (!rc && !(st[live].values = nb__calloc((size_t)cap, sizeof(nb_value)))) rc = NB_ENOMEM;
        for (int j = 0; !rc && j < ps->nvalues; j++, st[live].nvalues++) {
            rc = nb__value_copy(&st[live].values[j], &ps->values[j]);
            if (!rc) to_number(o->algo, &st[live].values[j]);
        }
        if (!rc) st[live].cap = cap;
        if (!rc) rc = check_state(o, p, ps->index, st[live].values, st[live].nvalues);
    }
    for (int g = 0; !rc && g < o->ngroups; g++) rc = load_group(o, g, &sd->groups[g], &hps[g], &nhps[g]);
    if (!rc) { /* commit */
        for (int i = 0; i < o->nparams; i++) {
            nb__values_free(o->state[i].values, o->state[i].nvalues);
            o->state[i] = st[i];
        }
        for (int g = 0; g < o->ngroups; g++) {
            nb__values_free(o->groups[g].hp, o->groups[g].nhp);
            o->groups[g].hp = hps[g];
            o->groups[g].nhp = nhps[g];
        }
    } else {
        for (int i = 0; st && i < o->nparams; i++) nb__values_free(st[i].values, st[i].nvalues);
        for (int g = 0; hps && g < o->ngroups; g++)
            if (hps[g]) nb__values_free(hps[g], nhps[g]);
    }
    nb__free(nhps);
    nb__free(st);
    nb__free(hps);
    nb__free(map);
    return rc;
}

/* load_state_dict(sd): the pre hooks (on a copy of sd, which they may change: the copy is what
 * loads), the load (all or nothing), the post hooks. */
int nb_optim_load_state_dict(nb_optim *o, const nb_optim_dict *sd) {
    if (!o || !sd) return nb__error(NB_EINVAL, "load_state_dict: %s is NULL", !o ? "optimizer" : "state dict");
    if (nb__optim_usable(o, "load_state_dict")) return NB_ESTATE;
    bool pre = false;
    for (int i = 0; i < o->nhooks; i++) pre |= o->hooks[i].kind == NB_HOOK_LOAD_STATE_DICT_PRE && o->hooks[i].fn;
    nb_optim_dict *copy = pre ? dict_copy(sd) : NULL;
    if (pre && !copy) return NB_ENOMEM;
    int rc = copy ? run_hooks(o, NB_HOOK_LOAD_STATE_DICT_PRE, copy) : NB_OK;
    if (!rc) rc = load(o, copy ? copy : sd);
    nb_optim_dict_free(copy);
    return rc ? rc : run_hooks(o, NB_HOOK_LOAD_STATE_DICT_POST, NULL);
}

nb_optim_dict *nb__optim_snapshot(const nb_optim *o) { return dict_of(o); }

int nb__optim_restore(nb_optim *o, const nb_optim_dict *sd) { return load(o, sd); }
