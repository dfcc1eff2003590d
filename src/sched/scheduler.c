/* scheduler.c - the scheduler base: initial_lr, base_lrs, the step, get_last_lr, state_dict. */
#include <math.h>
#include <stdio.h>
#include "scheduler.h"

nb_sched *nb__sched_alloc(const nb_sched_algo *algo, nb_optim *o) {
    if (!o) return nb__null(NB_EINVAL, "%s: optimizer is NULL", algo->name);
    nb_sched *s = nb__calloc(1, algo->size);
    if (!s) return NULL;
    s->algo = algo;
    s->opt = o;
    s->ngroups = nb_optim_num_groups(o);
    s->base_lrs = nb__calloc((size_t)s->ngroups, sizeof(double));
    s->last_lr = nb__calloc((size_t)s->ngroups, sizeof(double));
    s->last_epoch = -1;
    if (!s->base_lrs || !s->last_lr) {
        nb_sched_free(s);
        return NULL;
    }
    return s;
}

double nb__sched_group_lr(const nb_sched *s, int g) { return nb_optim_get(s->opt, g, "lr"); }

nb_sched *nb__sched_start(nb_sched *s) {
    if (!s) return NULL;
    for (int g = 0; g < s->ngroups; g++) {
        const nb_value *init = nb_optim_get_value(s->opt, g, "initial_lr");
        if (!init) {
            nb_value v = nb_num("initial_lr", nb__sched_group_lr(s, g));
            if (nb_optim_put(s->opt, g, &v)) goto fail;
            init = nb_optim_get_value(s->opt, g, "initial_lr");
        }
        s->base_lrs[g] = init->num;
    }
    if (nb_sched_step(s) == NB_OK) return s;
fail:
    nb_sched_free(s);
    return NULL;
}

int nb__sched_apply(nb_sched *s, const double *lrs) {
    for (int g = 0; g < s->ngroups; g++) {
        int rc = nb_optim_set(s->opt, g, "lr", lrs[g]);
        if (rc) return rc;
        s->last_lr[g] = lrs[g];
    }
    return NB_OK;
}

static int base_step(nb_sched *s, double epoch) {
    double stack_lrs[8], *lrs = stack_lrs;
    if (s->ngroups > 8 && !(lrs = nb__malloc(sizeof(double) * (size_t)s->ngroups))) return NB_ENOMEM;
    s->step_count++;
    int rc;
    if (isnan(epoch)) {
        s->last_epoch++;
        rc = s->algo->get_lr(s, lrs);
    } else {
        s->last_epoch = (int64_t)floor(epoch);
        rc = s->algo->closed_form ? s->algo->closed_form(s, lrs) : s->algo->get_lr(s, lrs);
    }
    if (!rc) rc = nb__sched_apply(s, lrs);
    if (lrs != stack_lrs) nb__free(lrs);
    return rc;
}

int nb_sched_step(nb_sched *s) {
    if (!s) return nb__error(NB_EINVAL, "scheduler is NULL");
    return s->algo->step ? s->algo->step(s, NAN) : base_step(s, NAN);
}

int nb_sched_step_epoch(nb_sched *s, double epoch) {
    if (!s) return nb__error(NB_EINVAL, "scheduler is NULL");
    if (isnan(epoch)) return nb__error(NB_EINVAL, "%s: epoch is NaN", s->algo->name);
    return s->algo->step ? s->algo->step(s, epoch) : base_step(s, epoch);
}

double nb_sched_last_lr(const nb_sched *s, int g) {
    return s && g >= 0 && g < s->ngroups ? s->last_lr[g] : NAN;
}

int nb_sched_num_groups(const nb_sched *s) { return s ? s->ngroups : 0; }
int64_t nb_sched_last_epoch(const nb_sched *s) { return s ? s->last_epoch : 0; }
const char *nb_sched_type(const nb_sched *s) { return s ? s->algo->name : NULL; }
nb_optim *nb_sched_optimizer(const nb_sched *s) { return s ? s->opt : NULL; }

void nb_sched_free(nb_sched *s) {
    if (!s) return;
    if (s->algo->free) s->algo->free(s);
    nb__free(s->base_lrs);
    nb__free(s->last_lr);
    nb__free(s);
}

/* ---- state_dict -------------------------------------------------------------------------- */
int nb__sd_add(nb_sched_dict *sd, const nb_value *v) {
    nb_value *vals = nb__realloc(sd->values, sizeof *vals * (size_t)(sd->nvalues + 1));
    if (!vals) return NB_ENOMEM;
    sd->values = vals;
    if (nb__value_copy(&vals[sd->nvalues], v)) return NB_ENOMEM;
    sd->nvalues++;
    return NB_OK;
}

int nb__sd_add_list(nb_sched_dict *sd, const char *name, const double *v, int n) {
    nb_value lv = nb_num(name, 0);
    lv.kind = NB_VALUE_LIST;
    lv.len = n;
    if (n <= NB_VALUE_INLINE) memcpy(lv.inl, v, sizeof(double) * (size_t)n);
    else lv.list = (double *)v; /* copied by nb__sd_add */
    return nb__sd_add(sd, &lv);
}

const nb_value *nb__sd_find(const nb_sched_dict *sd, const char *name) {
    for (int i = 0; i < sd->nvalues; i++)
        if (strcmp(sd->values[i].name, name) == 0) return &sd->values[i];
    return NULL;
}

nb_sched_dict *nb_sched_state_dict(const nb_sched *s) {
    if (!s) return nb__null(NB_EINVAL, "state_dict: scheduler is NULL");
    nb_sched_dict *sd = nb__calloc(1, sizeof *sd);
    if (!sd) return NULL;
    snprintf(sd->type, sizeof sd->type, "%s", s->algo->name);
    nb_value le = nb_int("last_epoch", s->last_epoch), sc = nb_int("_step_count", s->step_count);
    int rc = nb__sd_add_list(sd, "base_lrs", s->base_lrs, s->ngroups);
    if (!rc) rc = nb__sd_add(sd, &le);
    if (!rc) rc = nb__sd_add(sd, &sc);
    if (!rc) rc = nb__sd_add_list(sd, "_last_lr", s->last_lr, s->ngroups);
    for (int i = 0; !rc && i < s->algo->nfields; i++) {
        const nb_sched_field *f = &s->algo->fields[i];
        const char *p = (const char *)s + f->offset;
        nb_value v = f->kind == NB_VALUE_INT    ? nb_int(f->name, *(const int64_t *)p)
                     : f->kind == NB_VALUE_BOOL ? nb_bool(f->name, *(const bool *)p)
                                                : nb_num(f->name, *(const double *)p);
        rc = nb__sd_add(sd, &v);
    }
    if (!rc && s->algo->save) rc = s->algo->save(s, sd);
    if (rc) {
        nb_sched_dict_free(sd);
        return NULL;
    }
    return sd;
}

static int want(const nb_sched_dict *sd, const char *name, nb_value_kind kind, int len,
                const nb_value **out) {
    const nb_value *v = nb__sd_find(sd, name);
    bool ok = v && (v->kind == kind || (kind == NB_VALUE_NUMBER && v->kind == NB_VALUE_INT) ||
                    (kind == NB_VALUE_INT && v->kind == NB_VALUE_NUMBER && v->num == floor(v->num)));
    if (ok && kind == NB_VALUE_LIST && v->len != len) ok = false;
    if (!ok)
        return nb__error(NB_EFORMAT, "scheduler state_dict: '%s' is missing or has the wrong "
                         "kind or length", name);
    *out = v;
    return NB_OK;
}

int nb_sched_load_state_dict(nb_sched *s, const nb_sched_dict *sd) {
    if (!s || !sd) return nb__error(NB_EINVAL, "load_state_dict: NULL argument");
    if (strcmp(sd->type, s->algo->name) != 0)
        return nb__error(NB_EINVAL, "scheduler state_dict is for %s, not %s", sd->type, s->algo->name);
    const nb_value *base = NULL, *le = NULL, *sc = NULL, *last = NULL;
    if (want(sd, "base_lrs", NB_VALUE_LIST, s->ngroups, &base) ||
        want(sd, "last_epoch", NB_VALUE_INT, 0, &le) || want(sd, "_step_count", NB_VALUE_INT, 0, &sc) ||
        want(sd, "_last_lr", NB_VALUE_LIST, s->ngroups, &last))
        return NB_EFORMAT;
    const nb_value *fv[32] = {0};
    for (int i = 0; i < s->algo->nfields && i < 32; i++)
        if (want(sd, s->algo->fields[i].name, s->algo->fields[i].kind, 0, &fv[i])) return NB_EFORMAT;
    /* the schedule's own extras may fail: load them first, on a copy of nothing we changed */
    if (s->algo->load) {
        int rc = s->algo->load(s, sd);
        if (rc) return rc;
    }
    memcpy(s->base_lrs, nb_value_elems(base), sizeof(double) * (size_t)s->ngroups);
    memcpy(s->last_lr, nb_value_elems(last), sizeof(double) * (size_t)s->ngroups);
    s->last_epoch = (int64_t)le->num;
    s->step_count = (int64_t)sc->num;
    for (int i = 0; i < s->algo->nfields && i < 32; i++) {
        const nb_sched_field *f = &s->algo->fields[i];
        char *p = (char *)s + f->offset;
        if (f->kind == NB_VALUE_INT) *(int64_t *)p = (int64_t)fv[i]->num;
        else if (f->kind == NB_VALUE_BOOL) *(bool *)p = fv[i]->num != 0.0;
        else *(double *)p = fv[i]->num;
    }
    return NB_OK;
}

void nb_sched_dict_free(nb_sched_dict *sd) {
    if (!sd) return;
    for (int i = 0; i < sd->nvalues; i++) nb__value_clear(&sd->values[i]);
    nb__free(sd->values);
    nb__free(sd);
}
