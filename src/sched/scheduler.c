/* scheduler.c - the scheduler base: initial_lr, base_lrs, the step (with rollback),
 * get_last_lr, state_dict. PyTorch's _LRScheduler in C; a schedule file only adds its rule. */
#include <math.h>
#include <stdio.h>
#include "scheduler.h"

nb_sched *nb__sched_alloc(const nb_sched_algo *algo, nb_optim *o) {
    if (!o) return nb__null(NB_EINVAL, "%s: optimizer is NULL", algo->name);
    nb_sched *s = nb__calloc(1, algo->size);
    if (!s) return NULL;
    s->algo = algo;
    s->opt = o;
    s->opt_life = nb__life_ref(nb__optim_life(o));
    s->ngroups = nb_optim_num_groups(o);
    s->last_epoch = -1;
    /* one block of doubles: base_lrs, last_lr, lrs, moms, then the snapshot's 4 * ngroups */
    size_t n = (size_t)s->ngroups;
    double *d = nb__calloc(8 * n + 1, sizeof(double));
    s->snap = nb__malloc(algo->size);
    if (!d || !s->snap) {
        nb__free(d);
        nb__free(s->snap);
        nb__life_unref(s->opt_life);
        nb__free(s);
        return NULL;
    }
    s->base_lrs = d;
    s->last_lr = d + n;
    s->lrs = d + 2 * n;
    s->moms = d + 3 * n;
    s->snap_vals = d + 4 * n;
    return s;
}

double nb__sched_group_lr(const nb_sched *s, int g) { return nb_optim_get(s->opt, g, "lr"); }

double nb__sched_group_mom(const nb_sched *s, int g) {
    if (s->mom == NB_SCHED_MOM_MOMENTUM) return nb_optim_get(s->opt, g, "momentum");
    if (s->mom == NB_SCHED_MOM_BETA1) {
        const nb_value *v = nb_optim_get_value(s->opt, g, "betas");
        return v && v->kind == NB_VALUE_LIST && v->len > 0 ? nb_value_elems(v)[0] : NAN;
    }
    return NAN;
}

static int set_mom(nb_sched *s, int g, double m) {
    return s->mom == NB_SCHED_MOM_BETA1 ? nb__optim_write(s->opt, g, "betas", 0, m)
                                        : nb__optim_write(s->opt, g, "momentum", -1, m);
}

bool nb__sched_groups_have(const nb_optim *o, const char *name, int *missing) {
    for (int g = 0; g < nb_optim_num_groups(o); g++)
        if (!nb_optim_get_value(o, g, name)) {
            if (missing) *missing = g;
            return false;
        }
    return true;
}

int nb__sched_per_group(const nb_sched *s, const char *name, double scalar, const double *list,
                        int n, double *out) {
    if (list || n) {
        if (!list || n != s->ngroups)
            return nb__error(NB_EINVAL, "expected %d values for %s, got %d", s->ngroups, name, n);
        memcpy(out, list, sizeof(double) * (size_t)n);
    } else {
        for (int g = 0; g < s->ngroups; g++) out[g] = scalar;
    }
    return NB_OK;
}

double *nb__sched_group_array(const nb_sched *s) {
    return nb__calloc((size_t)s->ngroups + 1, sizeof(double));
}

int nb__sched_choice(char *dst, const char *v, const char *const *choices, const char *msg) {
    for (int i = 0; v && choices[i]; i++)
        if (!strcmp(v, choices[i])) {
            snprintf(dst, NB_VALUE_NAME_MAX, "%s", v);
            return NB_OK;
        }
    return nb__error(NB_EINVAL, msg, v ? v : "None");
}

/* ---- construction ------------------------------------------------------------------------ */
int nb__sched_backup(nb_sched *s) {
    if (!s->backup && !(s->backup = nb__optim_snapshot(s->opt))) return NB_ENOMEM;
    return NB_OK;
}

nb_sched *nb__sched_fail(nb_sched *s) {
    if (!s) return NULL;
    if (s->backup) { /* put the optimizer back as it was, keeping the error that got us here */
        char msg[512];
        nb_status st = nb_last_status();
        snprintf(msg, sizeof msg, "%s", nb_last_error());
        nb__optim_restore(s->opt, s->backup);
        nb__error(st ? st : NB_EINVAL, "%s", msg);
    }
    nb_sched_free(s);
    return NULL;
}

nb_sched *nb__sched_start(nb_sched *s, int64_t last_epoch) {
    if (!s) return NULL;
    if (last_epoch < -1) {
        nb__error(NB_EINVAL, "%s: last_epoch must be >= -1, got %lld", s->algo->name, (long long)last_epoch);
        return nb__sched_fail(s);
    }
    if (nb__sched_backup(s)) return nb__sched_fail(s);
    for (int g = 0; g < s->ngroups; g++) {
        const nb_value *init = nb_optim_get_value(s->opt, g, "initial_lr");
        if (!init && last_epoch == -1) { /* group.setdefault('initial_lr', group['lr']) */
            nb_value v = nb_num("initial_lr", nb__sched_group_lr(s, g));
            if (nb_optim_put(s->opt, g, &v)) return nb__sched_fail(s);
            init = nb_optim_get_value(s->opt, g, "initial_lr");
        }
        if (!init) {
            nb__error(NB_EINVAL, "param 'initial_lr' is not specified in param_groups[%d] when "
                      "resuming an optimizer", g);
            return nb__sched_fail(s);
        }
        if (init->kind != NB_VALUE_NUMBER && init->kind != NB_VALUE_INT) {
            nb__error(NB_EINVAL, "%s: param_groups[%d]['initial_lr'] is not a number", s->algo->name, g);
            return nb__sched_fail(s);
        }
        s->base_lrs[g] = init->num;
    }
    s->last_epoch = last_epoch;
    if (nb__sched_initial_step(s)) return nb__sched_fail(s);
    nb_optim_dict_free(s->backup);
    s->backup = NULL;
    return s;
}

int nb__sched_initial_step(nb_sched *s) {
    s->step_count = 0;
    return nb_sched_step(s);
}

/* ---- the step ---------------------------------------------------------------------------- */
int nb__sched_apply(nb_sched *s, const double *lrs) {
    for (int g = 0; g < s->ngroups; g++) {
        int rc = nb__optim_write(s->opt, g, "lr", -1, lrs[g]);
        if (!rc && s->mom && !isnan(s->moms[g])) rc = set_mom(s, g, s->moms[g]);
        if (rc) return rc;
    }
    memcpy(s->last_lr, lrs, sizeof(double) * (size_t)s->ngroups);
    return NB_OK;
}

void nb__sched_save(nb_sched *s) {
    int n = s->ngroups;
    memcpy(s->snap, s, s->algo->size);
    memcpy(s->snap_vals, s->base_lrs, sizeof(double) * (size_t)n);
    memcpy(s->snap_vals + n, s->last_lr, sizeof(double) * (size_t)n);
    for (int g = 0; g < n; g++) {
        s->snap_vals[2 * n + g] = nb__sched_group_lr(s, g);
        s->snap_vals[3 * n + g] = nb__sched_group_mom(s, g);
    }
}

void nb__sched_undo(nb_sched *s) {
    int n = s->ngroups;
    if (s->algo->undo) s->algo->undo(s);
    for (int g = 0; g < n; g++) { /* values that were valid before: setting them back succeeds */
        double lr = s->snap_vals[2 * n + g], m = s->snap_vals[3 * n + g];
        if (!isnan(lr) && nb__sched_group_lr(s, g) != lr) nb__optim_write(s->opt, g, "lr", -1, lr);
        if (s->mom && !isnan(m) && nb__sched_group_mom(s, g) != m) set_mom(s, g, m);
    }
    memcpy(s, s->snap, s->algo->size);
    memcpy(s->base_lrs, s->snap_vals, sizeof(double) * (size_t)n);
    memcpy(s->last_lr, s->snap_vals + n, sizeof(double) * (size_t)n);
}

static int base_step(nb_sched *s, double epoch) {
    s->step_count++;
    for (int g = 0; g < s->ngroups; g++) s->moms[g] = NAN;
    int rc;
    if (isnan(epoch)) {
        s->last_epoch++;
        rc = s->algo->get_lr(s, s->lrs);
    } else {
        s->last_epoch = (int64_t)epoch;
        rc = s->algo->closed_form ? s->algo->closed_form(s, s->lrs) : s->algo->get_lr(s, s->lrs);
    }
    return rc ? rc : nb__sched_apply(s, s->lrs);
}

/* One step (fn: the schedule's step, the base step or step_metric) wrapped in a snapshot: if it
 * fails, the schedule and the groups are put back as they were. */
int nb__sched_check_opt(const nb_sched *s) {
    if (nb__life_alive(s->opt_life)) return NB_OK;
    return nb__error(NB_ESTATE, "%s: its optimizer was freed (free the scheduler before its "
                     "optimizer)", s->algo->name);
}

static int guarded_step(nb_sched *s, int (*fn)(nb_sched *, double), double arg) {
    int rc = nb__sched_check_opt(s);
    if (rc) return rc;
    s->nstepped = 0;
    nb__sched_save(s);
    rc = fn(s, arg);
    if (rc) nb__sched_undo(s);
    return rc;
}

static int run_step(nb_sched *s, double epoch) {
    return guarded_step(s, s->algo->step ? s->algo->step : base_step, epoch);
}

int nb_sched_step(nb_sched *s) {
    if (!s) return nb__error(NB_EINVAL, "scheduler is NULL");
    if (s->algo->step_metric)
        return nb__error(NB_EINVAL, "%s: step needs the metric (nb_sched_step_metric)", s->algo->name);
    return run_step(s, NAN);
}

int nb_sched_step_epoch(nb_sched *s, double epoch) {
    if (!s) return nb__error(NB_EINVAL, "scheduler is NULL");
    if (s->algo->step_metric)
        return nb__error(NB_EINVAL, "%s: step needs the metric (nb_sched_step_metric)", s->algo->name);
    if (s->algo->no_epoch)
        return nb__error(NB_EINVAL, "%s: step() takes no epoch", s->algo->name);
    if (!isfinite(epoch) || fabs(epoch) > 9007199254740992.0)
        return nb__error(NB_EINVAL, "%s: epoch must be a finite number, got %s", s->algo->name,
                         nb__pyfloat(epoch, 0));
    if (!s->algo->fractional_epoch && epoch != floor(epoch))
        return nb__error(NB_EINVAL, "%s: step(epoch) takes an integer epoch, got %s", s->algo->name,
                         nb__pyfloat(epoch, 0));
    return run_step(s, epoch);
}

int nb_sched_step_metric(nb_sched *s, double metric) {
    if (!s) return nb__error(NB_EINVAL, "scheduler is NULL");
    if (!s->algo->step_metric)
        return nb__error(NB_EINVAL, "%s: step(metrics) is for ReduceLROnPlateau; use nb_sched_step",
                         s->algo->name);
    return guarded_step(s, s->algo->step_metric, metric);
}

double nb_sched_last_lr(const nb_sched *s, int g) {
    return s && g >= 0 && g < s->ngroups ? s->last_lr[g] : NAN;
}

int nb_sched_get_last_lr(const nb_sched *s, double *out, int n) {
    for (int g = 0; s && out && g < n && g < s->ngroups; g++) out[g] = s->last_lr[g];
    return s ? s->ngroups : 0;
}

int nb_sched_num_groups(const nb_sched *s) { return s ? s->ngroups : 0; }
int64_t nb_sched_last_epoch(const nb_sched *s) { return s ? s->last_epoch : 0; }
const char *nb_sched_type(const nb_sched *s) { return s ? s->algo->name : NULL; }
nb_optim *nb_sched_optimizer(const nb_sched *s) { return s ? s->opt : NULL; }

void nb_sched_free(nb_sched *s) {
    if (!s) return;
    if (s->algo->free) s->algo->free(s);
    for (int i = 0; i < s->algo->nfields; i++)
        if (s->algo->fields[i].kind == NB_VALUE_LIST)
            nb__free(*(double **)((char *)s + s->algo->fields[i].offset));
    nb_optim_dict_free(s->backup);
    nb__life_unref(s->opt_life);
    nb__free(s->base_lrs);
    nb__free(s->snap);
    nb__free(s);
}

/* ---- containers -------------------------------------------------------------------------- */
nb_sched_container *nb__container_new(const nb_sched_algo *algo, nb_optim *o, nb_sched *const *scheds, int n) {
    int rc = NB_OK;
    if (n < 1 || !scheds)
        rc = nb__error(NB_EINVAL, "%s expects at least one scheduler%s, but got no scheduler.", algo->name,
                       strcmp(algo->name, "ChainedScheduler") ? "" : " to be chained");
    for (int i = 0; !rc && i < n; i++) {
        if (!scheds[i]) { /* keep the error of the constructor that returned NULL */
            rc = nb_last_status() ? (int)nb_last_status()
                                  : nb__error(NB_EINVAL, "%s: scheduler at index %d is NULL", algo->name, i);
        } else if (scheds[i]->algo->step_metric) {
            rc = nb__error(NB_EINVAL, "%s does not support `ReduceLROnPlateau` scheduler as it requires "
                           "additional kwargs to be specified when calling `step`, but got one at index %d "
                           "in the given schedulers sequence.", algo->name, i);
        }
        for (int j = 0; !rc && j < i; j++)
            if (scheds[j] == scheds[i])
                rc = nb__error(NB_EINVAL, "%s: scheduler at index %d appears twice", algo->name, i);
    }
    nb_sched_container *c = rc ? NULL : (nb_sched_container *)nb__sched_alloc(algo, o);
    if (c && !(c->subs = nb__malloc(sizeof(nb_sched *) * (size_t)n))) {
        nb_sched_free(&c->base);
        c = NULL;
    }
    if (!c) {
        for (int i = 0; scheds && i < n; i++) nb_sched_free(scheds[i]);
        return NULL;
    }
    memcpy(c->subs, scheds, sizeof(nb_sched *) * (size_t)n);
    c->nsubs = n;
    return c;
}

nb_sched **nb__container_subs(const nb_sched *s, int *n) {
    const nb_sched_container *c = (const nb_sched_container *)s;
    *n = c->nsubs;
    return c->subs;
}

void nb__container_free(nb_sched *s) {
    nb_sched_container *c = (nb_sched_container *)s;
    for (int i = 0; i < c->nsubs; i++) nb_sched_free(c->subs[i]);
    nb__free(c->subs);
}

int nb__container_save(const nb_sched *s, nb_sched_dict *sd) {
    const nb_sched_container *c = (const nb_sched_container *)s;
    for (int i = 0; i < c->nsubs; i++) {
        nb_sched_dict *sub = nb_sched_state_dict(c->subs[i]);
        if (!sub || nb__sd_add_sub(sd, sub)) return NB_ENOMEM;
    }
    return NB_OK;
}

int nb__container_load(nb_sched *s, const nb_sched_dict *sd, bool commit) {
    nb_sched_container *c = (nb_sched_container *)s;
    if (sd->nsubs != c->nsubs)
        return nb__error(NB_EFORMAT, "%s state_dict has %d schedulers, this one has %d", sd->type,
                         sd->nsubs, c->nsubs);
    for (int i = 0; i < c->nsubs; i++) {
        int rc = nb__sched_load(c->subs[i], &sd->subs[i], commit);
        if (rc) return rc;
    }
    return NB_OK;
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
    nb_value lv = nb__value(name, NB_VALUE_LIST, 0);
    lv.len = n;
    if (n <= NB_VALUE_INLINE) {
        if (n > 0) memcpy(lv.inl, v, sizeof(double) * (size_t)n);
    } else {
        lv.list = (double *)v; /* copied by nb__sd_add */
    }
    return nb__sd_add(sd, &lv);
}

int nb__sd_add_sub(nb_sched_dict *sd, nb_sched_dict *sub) {
    nb_sched_dict *subs = nb__realloc(sd->subs, sizeof *subs * (size_t)(sd->nsubs + 1));
    if (!subs) {
        nb_sched_dict_free(sub);
        return NB_ENOMEM;
    }
    sd->subs = subs;
    subs[sd->nsubs++] = *sub; /* the entry takes over sub's contents */
    nb__free(sub);
    return NB_OK;
}

const nb_value *nb__sd_find(const nb_sched_dict *sd, const char *name) {
    for (int i = 0; i < sd->nvalues; i++)
        if (strcmp(sd->values[i].name, name) == 0) return &sd->values[i];
    return NULL;
}

int nb__sd_want(const nb_sched_dict *sd, const char *name, nb_value_kind kind, int len,
                const nb_value **out) {
    const nb_value *v = nb__sd_find(sd, name);
    bool ok = v && (v->kind == kind || (kind == NB_VALUE_NUMBER && v->kind == NB_VALUE_INT) ||
                    (kind == NB_VALUE_INT && v->kind == NB_VALUE_NUMBER));
    if (ok && kind == NB_VALUE_INT) ok = v->num == floor(v->num) && fabs(v->num) <= 9007199254740992.0;
    if (ok && kind == NB_VALUE_LIST) ok = v->len >= 0 && (len < 0 || v->len == len) &&
                                          (v->len <= NB_VALUE_INLINE || v->list);
    if (!ok)
        return nb__error(NB_EFORMAT, "%s state_dict: '%s' is missing or has the wrong kind or "
                         "length", sd->type, name);
    *out = v;
    return NB_OK;
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
        nb_value v;
        switch (f->kind) {
        case NB_VALUE_INT: v = nb_int(f->name, *(const int64_t *)p); break;
        case NB_VALUE_BOOL: v = nb_bool(f->name, *(const bool *)p); break;
        case NB_VALUE_STRING: v = nb_str(f->name, p); break;
        case NB_VALUE_LIST: rc = nb__sd_add_list(sd, f->name, *(double *const *)p, s->ngroups); continue;
        default: v = nb_num(f->name, *(const double *)p); break;
        }
        rc = nb__sd_add(sd, &v);
    }
    if (!rc && s->algo->save) rc = s->algo->save(s, sd);
    if (rc) {
        nb_sched_dict_free(sd);
        return NULL;
    }
    return sd;
}

int nb__sched_load(nb_sched *s, const nb_sched_dict *sd, bool commit) {
    if (strcmp(sd->type, s->algo->name) != 0)
        return nb__error(NB_EINVAL, "scheduler state_dict is for %s, not %s", sd->type, s->algo->name);
    const nb_value *base, *le, *sc, *last;
    if (nb__sd_want(sd, "base_lrs", NB_VALUE_LIST, s->ngroups, &base) ||
        nb__sd_want(sd, "last_epoch", NB_VALUE_INT, 0, &le) ||
        nb__sd_want(sd, "_step_count", NB_VALUE_INT, 0, &sc) ||
        nb__sd_want(sd, "_last_lr", NB_VALUE_LIST, s->ngroups, &last))
        return NB_EFORMAT;
    if (le->num < -1 || sc->num < 0)
        return nb__error(NB_EFORMAT, "%s state_dict: last_epoch %.0f or _step_count %.0f out of range",
                         sd->type, le->num, sc->num);
    /* a candidate: the schedule with the loaded scalars written in, for algo->check */
    char *cand = s->snap;
    memcpy(cand, s, s->algo->size);
    ((nb_sched *)cand)->last_epoch = (int64_t)le->num;
    ((nb_sched *)cand)->step_count = (int64_t)sc->num;
    for (int i = 0; i < s->algo->nfields; i++) {
        const nb_sched_field *f = &s->algo->fields[i];
        const nb_value *v;
        if (nb__sd_want(sd, f->name, f->kind, f->kind == NB_VALUE_LIST ? s->ngroups : 0, &v))
            return NB_EFORMAT;
        char *p = cand + f->offset;
        switch (f->kind) {
        case NB_VALUE_INT: *(int64_t *)p = (int64_t)v->num; break;
        case NB_VALUE_BOOL: *(bool *)p = v->num != 0.0; break;
        case NB_VALUE_STRING:
            memcpy(p, v->str, NB_VALUE_NAME_MAX);
            p[NB_VALUE_NAME_MAX - 1] = '\0';
            break;
        case NB_VALUE_LIST: break; /* checked for length; copied at commit */
        default: *(double *)p = v->num; break;
        }
    }
    int rc = s->algo->check ? s->algo->check((const nb_sched *)cand) : NB_OK;
    if (!rc && s->algo->load) rc = s->algo->load(s, sd, false);
    if (rc || !commit) return rc;
    /* commit: every check passed */
    memcpy(s->base_lrs, nb_value_elems(base), sizeof(double) * (size_t)s->ngroups);
    memcpy(s->last_lr, nb_value_elems(last), sizeof(double) * (size_t)s->ngroups);
    s->last_epoch = (int64_t)le->num;
    s->step_count = (int64_t)sc->num;
    for (int i = 0; i < s->algo->nfields; i++) {
        const nb_sched_field *f = &s->algo->fields[i];
        char *p = (char *)s + f->offset;
        if (f->kind == NB_VALUE_LIST)
            memcpy(*(double **)p, nb_value_elems(nb__sd_find(sd, f->name)), sizeof(double) * (size_t)s->ngroups);
        else
            memcpy(p, cand + f->offset, f->kind == NB_VALUE_STRING ? NB_VALUE_NAME_MAX
                                        : f->kind == NB_VALUE_BOOL ? sizeof(bool) : 8);
    }
    return s->algo->load ? s->algo->load(s, sd, true) : NB_OK;
}

int nb_sched_load_state_dict(nb_sched *s, const nb_sched_dict *sd) {
    if (!s || !sd) return nb__error(NB_EINVAL, "load_state_dict: the %s is NULL", s ? "state dict" : "scheduler");
    int rc = nb__sched_check_opt(s);
    if (rc) return rc;
    rc = nb__sched_load(s, sd, false);
    return rc ? rc : nb__sched_load(s, sd, true);
}

static void dict_clear(nb_sched_dict *sd) {
    for (int i = 0; i < sd->nvalues; i++) nb__value_clear(&sd->values[i]);
    nb__free(sd->values);
    for (int i = 0; i < sd->nsubs; i++) dict_clear(&sd->subs[i]);
    nb__free(sd->subs);
}

void nb_sched_dict_free(nb_sched_dict *sd) {
    if (!sd) return;
    dict_clear(sd);
    nb__free(sd);
}

int nb__sched_check_beta1(const nb_sched *s, const char *who, bool use_beta1) {
    if (use_beta1 == nb_optim_has_default(s->opt, "betas")) return NB_OK;
    return nb__error(NB_EINVAL, "%s: the state cycles %s, but the optimizer %s", who,
                     use_beta1 ? "beta1" : "momentum", use_beta1 ? "has no betas" : "has betas");
}

/* ---- keyword arguments ------------------------------------------------------------------- */
int nb__kw_int(const nb_sched_algo *a, const nb_value *kw, int64_t *out) {
    if ((kw->kind != NB_VALUE_INT && kw->kind != NB_VALUE_NUMBER) || kw->num != floor(kw->num) ||
        fabs(kw->num) > 9007199254740992.0)
        return nb__error(NB_EINVAL, "%s: %s must be an integer", a->name, kw->name);
    *out = (int64_t)kw->num;
    return NB_OK;
}

int nb__kw_num(const nb_sched_algo *a, const nb_value *kw, double *out) {
    if (kw->kind != NB_VALUE_INT && kw->kind != NB_VALUE_NUMBER)
        return nb__error(NB_EINVAL, "%s: %s must be a number", a->name, kw->name);
    *out = kw->num;
    return NB_OK;
}

const char *nb__kw_str(const nb_value *kw) { return kw->kind == NB_VALUE_STRING ? kw->str : NULL; }

int nb__kw_per_group(const nb_sched_algo *a, const nb_value *kw, double *scalar, const double **list, int *n) {
    if (kw->kind == NB_VALUE_LIST) {
        *list = nb_value_elems(kw);
        *n = kw->len;
        return NB_OK;
    }
    if (kw->kind != NB_VALUE_INT && kw->kind != NB_VALUE_NUMBER)
        return nb__error(NB_EINVAL, "%s: %s must be a number or a list of one per param group", a->name, kw->name);
    *scalar = kw->num;
    return NB_OK;
}
