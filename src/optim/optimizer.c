/* optimizer.c - the optimizer base: param groups, per-parameter state, state_dict, zero_grad.
 * PyTorch's optimizer.py in C; an algorithm file only adds its update rule and validation. */
#include <math.h>
#include <stdio.h>
#include "optimizer.h"

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

NB_OPTIM_CLONES
float nb__norm2(const float *x, int64_t n) {
    float lane[8] = {0};
    int64_t m = n - n % 8, i = 0;
    for (; i < m; i += 8)
        for (int j = 0; j < 8; j++) lane[j] = fmaf(x[i + j], x[i + j], lane[j]);
    float s = lane[0];
    for (int j = 1; j < 8; j++) s = s + lane[j];
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s = s + x[i + j] * x[i + j];
    for (; i < n; i++) s = fmaf(x[i], x[i], s);
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

/* ---- construction and groups ------------------------------------------------------------- */
nb_optim *nb__optim_new(const nb_optim_algo *algo, const nb_value *defaults, int ndefaults,
                        nb_tensor *const *params, int n) {
    if (algo->validate(defaults, ndefaults)) return NULL;
    nb_optim *o = nb__calloc(1, sizeof *o);
    if (!o) return NULL;
    if (!(o->life = nb__life_new())) {
        nb__free(o);
        return NULL;
    }
    o->algo = algo;
    o->defaults = nb__values_copy(defaults, ndefaults);
    o->ndefaults = ndefaults;
    if (!o->defaults || nb_optim_add_param_group(o, params, n, NULL, 0)) {
        nb_optim_free(o);
        return NULL;
    }
    return o;
}

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
        if (t->node) return nb__error(NB_EINVAL, "can't optimize a non-leaf Tensor");
        if (t->arena)
            return nb__error(NB_EINVAL, "optimizer can only optimize heap tensors: param %d lives in "
                             "an arena and dies at its next reset", i);
        for (int j = 0; j < i; j++)
            if (params[j] == t)
                return nb__error(NB_EINVAL, "optimizer contains a parameter group with duplicate parameters");
        if (in_optimizer(o, t))
            return nb__error(NB_EINVAL, "some parameters appear in more than one parameter group");
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
    int rc = (!hp || !ps || !groups || !st) ? NB_ENOMEM : NB_OK;
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
        if (nb__lives_add(&o->borrowed, params[i]->owner)) {
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
    for (int i = 0; i < n; i++) o->state[o->nparams + i] = (nb_param_state){NULL, 0, 0};
    o->ngroups++;
    o->nparams += n;
    for (int i = 0; i < n && o->algo->on_add_param && !rc; i++) rc = o->algo->on_add_param(o, g, g->first + i);
    if (rc) { /* roll the group back: a failed add changes nothing */
        for (int i = 0; i < n; i++) nb__values_free(o->state[g->first + i].values, o->state[g->first + i].nvalues);
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

/* Change one value in place, validate the group, and put the old value back on failure. */
static int set_checked(nb_optim *o, int g, const char *name, int elem, double v) {
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
    int rc = o->algo->validate(gr->hp, o->ndefaults);
    if (rc) {
        *slot = old;
        val->kind = old_kind;
    }
    return rc;
}

int nb_optim_set(nb_optim *o, int g, const char *name, double v) { return set_checked(o, g, name, -1, v); }

int nb_optim_set_elem(nb_optim *o, int g, const char *name, int i, double v) {
    if (i < 0) return nb__error(NB_EINVAL, "optimizer: negative element index %d", i);
    return set_checked(o, g, name, i, v);
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
            else memset(p->grad->data, 0, sizeof(float) * (size_t)p->numel);
        }
}

int nb_optim_step(nb_optim *o) {
    if (!o) return nb__error(NB_EINVAL, "step: optimizer is NULL");
    if (nb__optim_usable(o, "step")) return NB_ESTATE;
    if (o->algo->step_closure)
        return nb__error(NB_EINVAL, "%s: step requires a closure (nb_optim_step_closure)", o->algo->name);
    for (int g = 0; g < o->ngroups; g++) {
        int rc = o->algo->step_group(o, &o->groups[g]);
        if (rc) return rc;
    }
    return NB_OK;
}

int nb_optim_step_closure(nb_optim *o, nb_closure_fn closure, void *user, double *loss) {
    if (!o) return nb__error(NB_EINVAL, "step: optimizer is NULL");
    if (nb__optim_usable(o, "step")) return NB_ESTATE;
    if (o->algo->step_closure) {
        if (!closure) return nb__error(NB_EINVAL, "%s: step requires a closure", o->algo->name);
        bool prev = nb_set_grad_enabled(true);
        int rc = o->algo->step_closure(o, closure, user, loss);
        nb_set_grad_enabled(prev);
        return rc;
    }
    if (closure) {
        bool prev = nb_set_grad_enabled(true);
        double l = closure(user);
        nb_set_grad_enabled(prev);
        if (loss) *loss = l;
    }
    return nb_optim_step(o);
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
    nb__free(o);
}

/* ---- state_dict -------------------------------------------------------------------------- */
nb_tensor *nb__optim_param(const nb_optim *o, int index) {
    for (int g = 0; g < o->ngroups; g++)
        if (index < o->groups[g].first + o->groups[g].nparams)
            return o->groups[g].params[index - o->groups[g].first];
    return NULL;
}

nb_optim_dict *nb_optim_state_dict(const nb_optim *o) {
    if (!o) return nb__null(NB_EINVAL, "state_dict: optimizer is NULL");
    if (nb__optim_usable(o, "state_dict")) return NULL; /* it reads the parameters' shapes */
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

/* The loaded state of one parameter against the algorithm's state spec (and its hook). */
static int check_state(const nb_optim *o, const nb_tensor *p, const nb_optim_param_state *ps) {
    const nb_optim_algo *a = o->algo;
    for (int j = 0; j < ps->nvalues; j++) {
        const nb_value *v = &ps->values[j];
        const nb_state_spec *sp = NULL;
        for (int k = 0; k < a->nstate_spec; k++)
            if (!strcmp(a->state_spec[k].name, v->name)) sp = &a->state_spec[k];
        if (!sp && a->nstate_spec)
            return nb__error(NB_EFORMAT, "loaded state dict: %s has no state '%s' (parameter %d)",
                             a->name, v->name, ps->index);
        nb_state_kind kind = sp ? sp->kind : NB_STATE_LIKE_OR_NONE;
        if (kind == NB_STATE_OTHER) continue;
        if (kind == NB_STATE_NUMBER) {
            if (v->kind != NB_VALUE_NUMBER && v->kind != NB_VALUE_INT)
                return nb__error(NB_EFORMAT, "loaded state dict: state '%s' of parameter %d must be "
                                 "a number", v->name, ps->index);
            continue;
        }
        if (v->kind == NB_VALUE_NONE && kind == NB_STATE_LIKE_OR_NONE) continue;
        if (v->kind != NB_VALUE_TENSOR || !v->tensor || v->tensor->dtype != NB_FLOAT32)
            return nb__error(NB_EFORMAT, "loaded state dict: state '%s' of parameter %d must be a "
                             "float32 tensor", v->name, ps->index);
        if (!nb_same_shape(v->tensor, p))
            return nb__error(NB_ESHAPE, "loaded state dict: state '%s' of parameter %d has shape "
                             "%s, parameter has shape %s", v->name, ps->index,
                             nb__shape(v->tensor, 0), nb__shape(p, 1));
    }
    return a->check_state ? a->check_state(o, ps->index, ps->values, ps->nvalues) : NB_OK;
}

int nb_optim_load_state_dict(nb_optim *o, const nb_optim_dict *sd) {
    if (!o || !sd) return nb__error(NB_EINVAL, "load_state_dict: %s is NULL", !o ? "optimizer" : "state dict");
    if (nb__optim_usable(o, "load_state_dict")) return NB_ESTATE;
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
        if (!rc) rc = check_state(o, p, ps);
        if (!rc && st[live].values) rc = nb__error(NB_EFORMAT, "loaded state dict: parameter %d has two states", ps->index);
        int cap = state_room(o, ps->nvalues);
        if (!rc && !(st[live].values = nb__calloc((size_t)cap, sizeof(nb_value)))) rc = NB_ENOMEM;
        for (int j = 0; !rc && j < ps->nvalues; j++, st[live].nvalues++)
            rc = nb__value_copy(&st[live].values[j], &ps->values[j]);
        if (!rc) st[live].cap = cap;
    }
    for (int g = 0; !rc && g < o->ngroups; g++) {
        const nb_optim_group_dict *d = &sd->groups[g];
        for (int j = 0; !rc && j < o->ndefaults; j++)
            if (!nb__value_cfind(d->values, d->nvalues, o->defaults[j].name))
                rc = nb__error(NB_EFORMAT, "loaded state dict: param group %d lacks '%s'", g,
                               o->defaults[j].name);
        /* defaults first, in the optimizer's order, so validation and lookups see them there */
        nb_value *hp = rc ? NULL : nb__calloc((size_t)(d->nvalues ? d->nvalues : 1), sizeof *hp);
        if (!rc && !hp) rc = NB_ENOMEM;
        int n = 0;
        for (int j = 0; !rc && j < o->ndefaults; j++)
            rc = nb__value_copy(&hp[n++], nb__value_cfind(d->values, d->nvalues, o->defaults[j].name));
        for (int j = 0; !rc && j < d->nvalues; j++)
            if (!nb__value_cfind(o->defaults, o->ndefaults, d->values[j].name))
                rc = nb__value_copy(&hp[n++], &d->values[j]);
        hps[g] = hp;
        nhps[g] = n;
        if (!rc) rc = o->algo->validate(hp, o->ndefaults);
    }
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
            if (hps[g]) nb__values_free(hps[g], sd->groups[g].nvalues);
    }
    nb__free(nhps);
    nb__free(st);
    nb__free(hps);
    nb__free(map);
    return rc;
}
