/* checkpoint.c - training state <-> checkpoint container.
 *
 * Everything goes through the generic state: nb_module_state for the model, nb_optim_dict for
 * any optimizer, nb_sched_dict for any schedule, nb_averaged_dict for the averaged (SWA/EMA)
 * weights, stored as "swa.<model name>", and the caller's parts (nb_ckpt_part) as
 * "<part>.<tensor>", listed in the metadata entry "parts". Named values become JSON in __metadata__
 * (NUMBER as Python's repr, INT as an integer, BOOL, null, lists, strings); tensor values
 * become container tensors referenced as {"tensor": "<name>"}; optimizer state scalars are
 * 0-d F64/I64/BOOL tensors (PyTorch keeps `step` as a tensor too), so their kinds survive.
 *
 * Loading stages everything first (parse, check against the live objects), then commits:
 * optimizer, scheduler and loader each load atomically and are rolled back from a backup if a
 * later one fails; the model copy, RNG and position cannot fail. Staging works from the header:
 * every tensor the load will use is matched (name, dtype, shape or size bound) and given a
 * destination before any tensor data is inflated; then nb__ck_read inflates each one straight
 * into its destination and the rest through a small buffer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "io_internal.h"

#define MAX_SAFE 9007199254740992.0 /* 2^53: doubles hold integers exactly up to here */
#define FAIL(st, ...) do { rc = nb__error(st, __VA_ARGS__); goto done; } while (0)

static const char OPT_PREFIX[] = "optimizer.", SCHED_PREFIX[] = "scheduler.";
/* reserved only in files whose metadata has "averaged" / "swa_scheduler" (older files may hold
 * model tensors named so) */
static const char AVG_PREFIX[] = "swa.", SWA_SCHED_PREFIX[] = "swa_scheduler.";

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* ================================ saving ================================================== */
typedef struct outs {
    nb__ck_out *t;
    int n, cap;
    char **names; /* owned names of generated entries */
    int nnames;
    uint64_t *slots; /* storage of 0-d scalar tensors (preallocated: pointers stay valid) */
    int nslots, capslots;
    bool oom;
} outs;

static const char *own_name(outs *o, const char *fmt, ...) NB_PRINTF(2, 3);
static const char *own_name(outs *o, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **nn = nb__realloc(o->names, sizeof *nn * (size_t)(o->nnames + 1));
    char *s = nn ? nb__strdup(buf) : NULL;
    if (nn) o->names = nn;
    if (!s) {
        o->oom = true;
        return NULL;
    }
    o->names[o->nnames++] = s;
    return s;
}

static void add_out(outs *o, const char *name, int dtype, int ndim, const int64_t *shape,
                    const void *data, size_t nbytes) {
    if (!name) return;
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 64;
        nb__ck_out *t = nb__realloc(o->t, sizeof *t * (size_t)cap);
        if (!t) {
            o->oom = true;
            return;
        }
        o->t = t;
        o->cap = cap;
    }
    nb__ck_out *e = &o->t[o->n++];
    memset(e, 0, sizeof *e);
    e->name = name;
    e->dtype = dtype;
    e->ndim = ndim;
    if (ndim) memcpy(e->shape, shape, sizeof(int64_t) * (size_t)ndim);
    e->data = data;
    e->nbytes = nbytes;
}

static void outs_free(outs *o) {
    for (int i = 0; i < o->nnames; i++) nb__free(o->names[i]);
    nb__free(o->names);
    nb__free(o->t);
    nb__free(o->slots);
}

static cJSON *num_json(double v) {
    if (isfinite(v)) return cJSON_CreateRaw(nb__pyfloat(v, 0));
    return cJSON_CreateString(isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
}

static cJSON *int_json(double v) {
    if (!(fabs(v) <= MAX_SAFE) || v != floor(v)) return num_json(v);
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return cJSON_CreateRaw(b);
}

static void put(outs *o, cJSON *obj, const char *key, cJSON *item) {
    if (!item || !obj || !cJSON_AddItemToObject(obj, key, item)) {
        o->oom = true;
        cJSON_Delete(item);
    }
}

static void push(outs *o, cJSON *arr, cJSON *item) {
    if (!item || !arr || !cJSON_AddItemToArray(arr, item)) {
        o->oom = true;
        cJSON_Delete(item);
    }
}

static cJSON *tensor_ref(outs *o, const char *name) {
    cJSON *r = cJSON_CreateObject();
    put(o, r, "tensor", name ? cJSON_CreateString(name) : NULL);
    return r;
}

/* A named value as JSON; tensors (and, with scalars_as_tensors, numbers and bools) become
 * container entries named prefix + v->name. */
static cJSON *value_json(outs *o, const nb_value *v, const char *prefix, bool scalars_as_tensors) {
    if (scalars_as_tensors &&
        (v->kind == NB_VALUE_NUMBER || v->kind == NB_VALUE_INT || v->kind == NB_VALUE_BOOL)) {
        if (o->nslots == o->capslots) {
            o->oom = true;
            return NULL;
        }
        uint64_t *slot = &o->slots[o->nslots++];
        const char *dt = v->kind == NB_VALUE_NUMBER ? "F64" : v->kind == NB_VALUE_INT ? "I64" : "BOOL";
        if (v->kind == NB_VALUE_NUMBER) memcpy(slot, &v->num, 8);
        else if (v->kind == NB_VALUE_INT) {
            int64_t i = fabs(v->num) <= MAX_SAFE ? (int64_t)v->num : 0;
            memcpy(slot, &i, 8);
        } else *(unsigned char *)slot = v->num != 0.0;
        const char *name = own_name(o, "%s%s", prefix, v->name);
        add_out(o, name, nb__ck_dtype(dt), 0, NULL, slot, nb__ck_dtype_size(nb__ck_dtype(dt)));
        return tensor_ref(o, name);
    }
    switch (v->kind) {
    case NB_VALUE_NONE: return cJSON_CreateNull();
    case NB_VALUE_BOOL: return cJSON_CreateBool(v->num != 0.0);
    case NB_VALUE_NUMBER: return num_json(v->num);
    case NB_VALUE_INT: return int_json(v->num);
    case NB_VALUE_STRING: return cJSON_CreateString(v->str);
    case NB_VALUE_LIST: {
        cJSON *a = cJSON_CreateArray();
        const double *e = nb_value_elems(v);
        for (int i = 0; a && i < v->len; i++) push(o, a, num_json(e[i]));
        return a;
    }
    case NB_VALUE_TENSOR: {
        if (!v->tensor) return cJSON_CreateNull();
        const nb_tensor *t = v->tensor;
        const char *name = own_name(o, "%s%s", prefix, v->name);
        add_out(o, name, nb__ck_dtype_of(t->dtype), t->ndim, t->shape, t->data,
                nb_dtype_size(t->dtype) * (size_t)t->numel);
        return tensor_ref(o, name);
    }
    }
    return NULL;
}

/* The generator (MT19937, as PyTorch's): its 624 state words as one hex string, and where it
 * stands in them. */
static cJSON *rng_json(outs *o, const nb_rng *r) {
    char *hex = nb__malloc(8 * NB_RNG_STATE_N + 1);
    if (!hex) {
        o->oom = true;
        return NULL;
    }
    for (int i = 0; i < NB_RNG_STATE_N; i++) snprintf(hex + 8 * i, 9, "%08x", (unsigned)r->state[i]);
    cJSON *j = cJSON_CreateObject();
    put(o, j, "kind", cJSON_CreateString("mt19937"));
    put(o, j, "state", cJSON_CreateString(hex));
    put(o, j, "left", int_json(r->left));
    put(o, j, "next", int_json(r->next));
    nb__free(hex);
    return j;
}

static cJSON *shape_json(outs *o, int ndim, const int64_t *shape) {
    cJSON *a = cJSON_CreateArray();
    for (int d = 0; a && d < ndim; d++) push(o, a, int_json((double)shape[d]));
    return a;
}

/* Add a JSON document to the metadata as text. */
static void put_text(outs *o, cJSON *meta, const char *key, cJSON *doc) {
    char *txt = doc && !o->oom ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    put(o, meta, key, txt ? cJSON_CreateString(txt) : NULL);
    cJSON_free(txt);
}

static cJSON *optim_json(outs *o, const nb_optim *opt, const nb_optim_dict *sd, const nb_module *m) {
    cJSON *j = cJSON_CreateObject(), *names = cJSON_CreateArray(), *shapes = cJSON_CreateArray();
    cJSON *groups = cJSON_CreateArray(), *state = cJSON_CreateObject();
    put(o, j, "type", cJSON_CreateString(sd->type));
    put(o, j, "param_names", names);
    put(o, j, "param_shapes", shapes);
    put(o, j, "param_groups", groups);
    put(o, j, "state", state);
    int np = nb_module_num_params(m);
    for (int g = 0; g < nb_optim_num_groups(opt); g++)
        for (int i = 0; i < nb_optim_group_size(opt, g); i++) {
            const nb_tensor *p = nb_optim_group_param(opt, g, i);
            const char *name = NULL;
            for (int k = 0; k < np && !name; k++)
                if (nb_module_param(m, k).tensor == p) name = nb_module_param(m, k).name;
            push(o, names, name ? cJSON_CreateString(name) : cJSON_CreateNull());
            push(o, shapes, shape_json(o, p->ndim, p->shape));
        }
    for (int g = 0; g < sd->ngroups; g++) {
        const nb_optim_group_dict *d = &sd->groups[g];
        cJSON *gj = cJSON_CreateObject(), *params = cJSON_CreateArray();
        push(o, groups, gj);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%sparam_groups.%d.", OPT_PREFIX, g);
        for (int k = 0; k < d->nvalues; k++) put(o, gj, d->values[k].name, value_json(o, &d->values[k], prefix, false));
        for (int i = 0; i < d->nparams; i++) push(o, params, int_json(d->params[i]));
        put(o, gj, "params", params);
    }
    for (int s = 0; s < sd->nstates; s++) {
        const nb_optim_param_state *ps = &sd->states[s];
        char key[24], prefix[64];
        snprintf(key, sizeof key, "%d", ps->index);
        snprintf(prefix, sizeof prefix, "%sstate.%d.", OPT_PREFIX, ps->index);
        cJSON *sj = cJSON_CreateObject();
        put(o, state, key, sj);
        for (int k = 0; k < ps->nvalues; k++) put(o, sj, ps->values[k].name, value_json(o, &ps->values[k], prefix, true));
    }
    return j;
}

static cJSON *sched_json(outs *o, const nb_sched_dict *sd, const char *prefix) {
    cJSON *j = cJSON_CreateObject(), *state = cJSON_CreateObject();
    put(o, j, "type", cJSON_CreateString(sd->type));
    put(o, j, "state", state);
    for (int k = 0; k < sd->nvalues; k++) put(o, state, sd->values[k].name, value_json(o, &sd->values[k], prefix, false));
    return j;
}

static const char *avg_kind_name(nb_avg_kind k) { return k == NB_AVG_SWA ? "SWA" : k == NB_AVG_EMA ? "EMA" : "custom"; }

/* The averaged copy must cover the model's parameters, or its parameters and buffers, in the
 * order of nb_module_state (its first n entries). */
static int check_covers(const nb_averaged *a, const nb_named_tensor *named, int nt, int np) {
    int n = nb_averaged_num(a);
    if (n != np && n != nt)
        return nb__error(NB_EINVAL, "checkpoint: the averaged copy has %d tensors; it must average the "
                         "model's %d parameters (or those and its %d buffers)", n, np, nt - np);
    for (int i = 0; i < n; i++) {
        const nb_tensor *t = nb_averaged_tensor(a, i);
        if (!nb_same_shape(t, named[i].tensor) || t->dtype != named[i].tensor->dtype)
            return nb__error(NB_ESHAPE, "checkpoint: averaged tensor %d has shape %s, but model tensor "
                             "\"%s\" has %s", i, nb__ck_shape(t->ndim, t->shape, 0), named[i].name,
                             nb__ck_shape(named[i].tensor->ndim, named[i].tensor->shape, 1));
    }
    return NB_OK;
}

/* {"kind": "EMA", "decay": 0.999, "n_averaged": 12, "names": ["0.weight", ...]}; the tensors
 * are "swa.<name>". */
static cJSON *averaged_json(outs *o, const nb_averaged_dict *ad, const nb_named_tensor *named) {
    cJSON *j = cJSON_CreateObject(), *names = cJSON_CreateArray();
    put(o, j, "kind", cJSON_CreateString(avg_kind_name(ad->kind)));
    if (ad->kind == NB_AVG_EMA) put(o, j, "decay", num_json(ad->decay));
    put(o, j, "n_averaged", int_json((double)ad->n_averaged));
    put(o, j, "names", names);
    for (int i = 0; i < ad->n; i++) {
        const nb_tensor *t = ad->tensors[i];
        const char *name = own_name(o, "%s%s", AVG_PREFIX, named[i].name);
        push(o, names, cJSON_CreateString(named[i].name));
        add_out(o, name, nb__ck_dtype_of(t->dtype), t->ndim, t->shape, t->data,
                nb_dtype_size(t->dtype) * (size_t)t->numel);
    }
    return j;
}

/* ---- parts ----------------------------------------------------------------------------------- */
static bool part_name_ok(const char *s) {
    if (!s || !*s || strlen(s) >= 64) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_')) return false;
    return true;
}

/* The parts are well formed and their names clash with nothing. */
static int check_parts(const nb_train_state *st) {
    static const char *const reserved[] = {"optimizer", "scheduler", "swa", "swa_scheduler"};
    if (st->nparts < 0 || (st->nparts && !st->parts))
        return nb__error(NB_EINVAL, "checkpoint: %d parts at %p", st->nparts, (const void *)st->parts);
    for (int i = 0; i < st->nparts; i++) {
        const nb_ckpt_part *p = &st->parts[i];
        if (!part_name_ok(p->name))
            return nb__error(NB_EINVAL, "checkpoint: part %d: a name of letters, digits and '_' is needed", i);
        for (size_t r = 0; r < sizeof reserved / sizeof *reserved; r++)
            if (!strcmp(p->name, reserved[r])) return nb__error(NB_EINVAL, "checkpoint: part name \"%s\" is reserved", p->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(st->parts[j].name, p->name)) return nb__error(NB_EINVAL, "checkpoint: two parts \"%s\"", p->name);
        if (p->ntensors < 0 || (p->ntensors && !p->tensors))
            return nb__error(NB_EINVAL, "checkpoint: part \"%s\" has no tensors array", p->name);
        for (int k = 0; k < p->ntensors; k++) {
            const nb_named_tensor *t = &p->tensors[k];
            if (!t->tensor || !part_name_ok(t->name))
                return nb__error(NB_EINVAL, "checkpoint: part \"%s\": tensor %d needs a name of letters, digits and "
                                 "'_' and a tensor", p->name, k);
            for (int j = 0; j < k; j++)
                if (!strcmp(p->tensors[j].name, t->name))
                    return nb__error(NB_EINVAL, "checkpoint: part \"%s\" has two tensors \"%s\"", p->name, t->name);
        }
    }
    return NB_OK;
}

/* The name of a tensor of part p in the file ("normalize.mean"). */
static bool in_part_prefix(const char *name, const char *part) {
    size_t n = strlen(part);
    return !strncmp(name, part, n) && name[n] == '.';
}

/* {"normalize": ["mean", "std"], ...} */
static cJSON *parts_json(outs *o, const nb_train_state *st) {
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; i < st->nparts; i++) {
        const nb_ckpt_part *p = &st->parts[i];
        cJSON *names = cJSON_CreateArray();
        put(o, j, p->name, names);
        for (int k = 0; k < p->ntensors; k++) {
            const nb_tensor *t = p->tensors[k].tensor;
            push(o, names, cJSON_CreateString(p->tensors[k].name));
            add_out(o, own_name(o, "%s.%s", p->name, p->tensors[k].name), nb__ck_dtype_of(t->dtype), t->ndim,
                    t->shape, t->data, nb_dtype_size(t->dtype) * (size_t)t->numel);
        }
    }
    return j;
}

static int save(const char *path, const nb_train_state *st, bool weights_only) {
    if (!st || !st->model) return nb__error(NB_EINVAL, "checkpoint: the model is NULL");
    if (st->level < -1 || st->level > 9) return nb__error(NB_EINVAL, "checkpoint: gzip level %d is outside -1..9", st->level);
    if (st->nmeta < 0) return nb__error(NB_EINVAL, "checkpoint: nmeta must be >= 0, got %d", st->nmeta);
    if (st->nmeta && !st->meta)
        return nb__error(NB_EINVAL, "checkpoint: meta is NULL but nmeta is %d", st->nmeta);
    int nparts = weights_only ? 0 : st->nparts;
    if (nparts && check_parts(st)) return nb_last_status();
    outs o = {0};
    nb_optim_dict *osd = NULL;
    nb_sched_dict *ssd = NULL, *wsd = NULL;
    nb_averaged_dict *asd = NULL;
    cJSON *meta = cJSON_CreateObject();
    char *repr = NULL;
    int rc = NB_OK;
    if (!weights_only && st->optim && !(osd = nb_optim_state_dict(st->optim))) {
        cJSON_Delete(meta);
        return nb_last_status() ? nb_last_status() : NB_ENOMEM;
    }
    if (!weights_only && ((st->sched && !(ssd = nb_sched_state_dict(st->sched))) ||
                          (st->swa_sched && !(wsd = nb_sched_state_dict(st->swa_sched))) ||
                          (st->averaged && !(asd = nb_averaged_state_dict(st->averaged))))) {
        rc = nb_last_status() ? nb_last_status() : NB_ENOMEM;
        goto done;
    }
    int nslots = 0;
    for (int s = 0; osd && s < osd->nstates; s++) nslots += osd->states[s].nvalues;
    if (nslots && !(o.slots = nb__calloc((size_t)nslots, sizeof *o.slots))) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    o.capslots = nslots;

    /* model tensors, by their state_dict names */
    const nb_named_tensor *named;
    int nt = nb_module_state(st->model, &named);
    if (nt < 0) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    if (asd && (rc = check_covers(st->averaged, named, nt, nb_module_num_params(st->model)))) goto done;
    for (int i = 0; i < nt; i++) {
        const char *nm = named[i].name;
        if (has_prefix(nm, OPT_PREFIX) || has_prefix(nm, SCHED_PREFIX) || !strcmp(nm, "__metadata__") ||
            (asd && has_prefix(nm, AVG_PREFIX)) || (wsd && has_prefix(nm, SWA_SCHED_PREFIX)))
            FAIL(NB_EINVAL, "checkpoint: model tensor \"%s\" uses a reserved name", nm);
        for (int p = 0; p < nparts; p++)
            if (in_part_prefix(nm, st->parts[p].name))
                FAIL(NB_EINVAL, "checkpoint: model tensor \"%s\" clashes with the tensors of part \"%s\"", nm,
                     st->parts[p].name);
        const nb_tensor *t = named[i].tensor;
        add_out(&o, nm, nb__ck_dtype_of(t->dtype), t->ndim, t->shape, t->data,
                nb_dtype_size(t->dtype) * (size_t)t->numel);
    }
    put(&o, meta, "format", cJSON_CreateString(NB_CKPT_FORMAT));
    char ver[16];
    snprintf(ver, sizeof ver, "%d", NB_CKPT_VERSION);
    put(&o, meta, "format_version", cJSON_CreateString(ver));
    put(&o, meta, "content", cJSON_CreateString(weights_only ? "weights" : "checkpoint"));
    put(&o, meta, "nabla_version", cJSON_CreateString(nb_version()));
    char probe[1];
    int rn = nb_module_repr(st->model, probe, sizeof probe); /* (a NULL buffer trips UBSan there) */
    if (rn >= 0 && (repr = nb__malloc((size_t)rn + 1))) nb_module_repr(st->model, repr, (size_t)rn + 1);
    cJSON *mj = cJSON_CreateObject();
    put(&o, mj, "type", cJSON_CreateString(st->model->ops->type));
    put(&o, mj, "repr", repr ? cJSON_CreateString(repr) : cJSON_CreateNull());
    put(&o, mj, "tensors", int_json(nt));
    put_text(&o, meta, "model", mj);
    if (!weights_only) {
        cJSON *pos = cJSON_CreateObject();
        put(&o, pos, "epoch", int_json((double)st->epoch));
        put(&o, pos, "step", int_json((double)st->step));
        put_text(&o, meta, "position", pos);
        if (osd) put_text(&o, meta, "optimizer", optim_json(&o, st->optim, osd, st->model));
        if (ssd) put_text(&o, meta, "scheduler", sched_json(&o, ssd, SCHED_PREFIX));
        if (wsd) put_text(&o, meta, "swa_scheduler", sched_json(&o, wsd, SWA_SCHED_PREFIX));
        if (asd) put_text(&o, meta, "averaged", averaged_json(&o, asd, named));
        if (st->rng) put_text(&o, meta, "rng", rng_json(&o, st->rng));
        if (nparts) put_text(&o, meta, "parts", parts_json(&o, st));
        if (st->loader) {
            nb_loader_state ls = nb_loader_get_state(st->loader);
            cJSON *lj = cJSON_CreateObject();
            put(&o, lj, "epoch", int_json((double)ls.epoch));
            put(&o, lj, "batch", int_json((double)ls.batch));
            put(&o, lj, "rng", rng_json(&o, &ls.rng));
            put_text(&o, meta, "loader", lj);
        }
    }
    for (int i = 0; i < st->nmeta; i++) {
        const nb_meta *m = &st->meta[i];
        if (!m->key || !*m->key || !m->value) FAIL(NB_EINVAL, "checkpoint: user metadata entry %d has no key or value", i);
        char key[512];
        if (snprintf(key, sizeof key, "user.%s", m->key) >= (int)sizeof key)
            FAIL(NB_EINVAL, "checkpoint: user metadata key \"%.32s...\" is too long", m->key);
        if (cJSON_GetObjectItemCaseSensitive(meta, key))
            FAIL(NB_EINVAL, "checkpoint: user metadata key \"%s\" appears twice", m->key);
        put(&o, meta, key, cJSON_CreateString(m->value));
    }
    if (o.oom || !meta) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    if (o.n > NB_CKPT_MAX_TENSORS)
        FAIL(NB_EINVAL, "checkpoint: %d tensors exceed the limit of %d", o.n, NB_CKPT_MAX_TENSORS);
    rc = nb__ck_write(path, o.t, o.n, meta, st->level);
    meta = NULL; /* taken over */
done:
    cJSON_Delete(meta);
    nb__free(repr);
    outs_free(&o);
    nb_optim_dict_free(osd);
    nb_sched_dict_free(ssd);
    nb_sched_dict_free(wsd);
    nb_averaged_dict_free(asd);
    return rc;
}

int nb_checkpoint_save(const char *path, const nb_train_state *st) { return save(path, st, false); }

int nb_weights_save(const char *path, const nb_module *m, const nb_meta *meta, int nmeta) {
    nb_train_state st = {.model = (nb_module *)m, .meta = meta, .nmeta = nmeta};
    return save(path, &st, true);
}

/* ================================ loading ================================================= */
/* A value whose data comes from a container tensor: decoded once the data is read. */
typedef struct pending {
    nb_value *v;
    int ti;
    uint64_t raw; /* destination of a 0-d F64 / I64 / BOOL tensor */
} pending;

typedef struct stage {
    const nb_ckpt *c;
    unsigned char *used; /* per container tensor: referenced by the state being loaded */
    unsigned char **dst; /* per container tensor: where its data is read to (NULL: skipped) */
    pending *pend;       /* scalar values read from 0-d tensors (at most one per tensor) */
    int npend;
    int64_t max_numel;   /* elements a value tensor (optimizer or scheduler state) may have */
    int64_t value_numel; /* elements of the value tensors so far (at most 4 * max_numel) */
    unsigned char *model; /* the model's tensors, read before they are copied in */
    unsigned char *parts; /* the caller's parts' tensors, likewise */
    nb_optim_dict *osd;
    nb_sched_dict *ssd, *wsd; /* scheduler, swa_scheduler */
    nb_averaged_dict *asd;
    nb_rng rng;
    nb_loader_state ls;
    int64_t epoch, step;
} stage;

static cJSON *parse_meta(const nb_ckpt *c, const char *key, bool required, int *rc) {
    const char *txt = nb_ckpt_meta(c, key);
    if (!txt) {
        if (required) *rc = nb__error(NB_EFORMAT, "checkpoint: the file has no %s state (metadata "
                                      "\"%s\" is missing)", key, key);
        return NULL;
    }
    cJSON *j = nb__json_parse(txt, strlen(txt), NULL);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        *rc = nb__error(NB_EFORMAT, "checkpoint: metadata \"%s\" is not a JSON object", key);
        return NULL;
    }
    return j;
}

static bool get_int(const cJSON *j, double lo, double hi, int64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= lo && d <= hi) || d != floor(d)) return false;
    *out = (int64_t)d;
    return true;
}

static bool nonfinite_str(const cJSON *j, double *out) {
    if (!cJSON_IsString(j)) return false;
    if (!strcmp(j->valuestring, "NaN")) *out = NAN;
    else if (!strcmp(j->valuestring, "Infinity")) *out = INFINITY;
    else if (!strcmp(j->valuestring, "-Infinity")) *out = -INFINITY;
    else return false;
    return true;
}

static bool get_num(const cJSON *j, double *out) {
    if (cJSON_IsNumber(j)) {
        *out = j->valuedouble;
        return true;
    }
    return nonfinite_str(j, out);
}

static int hexdigit(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int parse_rng(const cJSON *j, const char *what, nb_rng *r) {
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(j, "state");
    int64_t left, next;
    bool ok = cJSON_IsString(kind) && !strcmp(kind->valuestring, "mt19937") && cJSON_IsString(state) &&
              strlen(state->valuestring) == 8 * NB_RNG_STATE_N &&
              get_int(cJSON_GetObjectItemCaseSensitive(j, "left"), 1, NB_RNG_STATE_N, &left) &&
              get_int(cJSON_GetObjectItemCaseSensitive(j, "next"), 0, NB_RNG_STATE_N, &next);
    for (int i = 0; ok && i < NB_RNG_STATE_N; i++) {
        uint32_t w = 0;
        for (int k = 0; ok && k < 8; k++) {
            int d = hexdigit(state->valuestring[8 * i + k]);
            ok = d >= 0;
            w = w << 4 | (uint32_t)(d & 15);
        }
        r->state[i] = w;
    }
    if (!ok)
        return nb__error(NB_EFORMAT, "checkpoint: %s generator state is malformed (expected "
                         "{\"kind\": \"mt19937\", \"state\": %d hex digits, \"left\": 1..%d, "
                         "\"next\": 0..%d})", what, 8 * NB_RNG_STATE_N, NB_RNG_STATE_N, NB_RNG_STATE_N);
    bool zero = !(r->state[0] & 0x80000000u); /* the bits the twist reads: none set, no output ever */
    for (int i = 1; zero && i < NB_RNG_STATE_N; i++) zero = r->state[i] == 0;
    if (zero)
        return nb__error(NB_EFORMAT, "checkpoint: %s generator state is all zeros: MT19937 would draw "
                         "nothing but zeros from it", what);
    r->left = (int32_t)left;
    r->next = (uint32_t)next;
    return NB_OK;
}

/* A value from the file: j is its JSON, schema (may be NULL) the live value of that name, whose
 * kind decides between INT and NUMBER. Tensor references must lie under prefix. */
static int value_from_json(stage *sg, const cJSON *j, const char *name, const nb_value *schema,
                           const char *prefix, const char *where, nb_value *out) {
    if (strlen(name) >= NB_VALUE_NAME_MAX)
        return nb__error(NB_EFORMAT, "checkpoint: %s: name \"%.40s\" is longer than %d bytes", where,
                         name, NB_VALUE_NAME_MAX - 1);
    *out = nb__value(name, NB_VALUE_NONE, 0);
    double d = 0;
    nb_value_kind want = schema ? schema->kind : NB_VALUE_NONE;
    if (cJSON_IsNull(j)) return NB_OK;
    if (cJSON_IsBool(j)) {
        out->kind = NB_VALUE_BOOL;
        out->num = cJSON_IsTrue(j) ? 1.0 : 0.0;
        return NB_OK;
    }
    if (cJSON_IsNumber(j) || (want != NB_VALUE_STRING && nonfinite_str(j, &d))) {
        if (cJSON_IsNumber(j)) d = j->valuedouble;
        bool integral = fabs(d) <= MAX_SAFE && d == floor(d);
        if (want == NB_VALUE_INT && !integral)
            return nb__error(NB_EFORMAT, "checkpoint: %s \"%s\" must be an integer of at most 2^53, "
                             "not %s", where, name, nb__pyfloat(d, 0));
        /* the live value's kind decides; without one, integers are INT */
        out->kind = want == NB_VALUE_NUMBER || !integral || cJSON_IsString(j) ? NB_VALUE_NUMBER : NB_VALUE_INT;
        out->num = d;
        return NB_OK;
    }
    if (cJSON_IsString(j)) {
        if (strlen(j->valuestring) >= NB_VALUE_NAME_MAX)
            return nb__error(NB_EFORMAT, "checkpoint: %s \"%s\": string is longer than %d bytes", where,
                             name, NB_VALUE_NAME_MAX - 1);
        out->kind = NB_VALUE_STRING;
        snprintf(out->str, sizeof out->str, "%s", j->valuestring);
        return NB_OK;
    }
    if (cJSON_IsArray(j)) {
        int n = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, j) {
            if (!get_num(e, &d))
                return nb__error(NB_EFORMAT, "checkpoint: %s \"%s\": a list may hold numbers only", where, name);
            if (++n > (1 << 20)) return nb__error(NB_EFORMAT, "checkpoint: %s \"%s\": list is too long", where, name);
        }
        out->kind = NB_VALUE_LIST;
        out->len = n;
        double *dst = out->inl;
        if (n > NB_VALUE_INLINE && !(dst = out->list = nb__malloc(sizeof(double) * (size_t)n))) return NB_ENOMEM;
        n = 0;
        cJSON_ArrayForEach(e, j) get_num(e, &dst[n++]);
        return NB_OK;
    }
    /* {"tensor": "<name>"} */
    const cJSON *ref = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "tensor") : NULL;
    if (!cJSON_IsString(ref) || cJSON_GetArraySize(j) != 1)
        return nb__error(NB_EFORMAT, "checkpoint: %s \"%s\" has a value of an unknown kind", where, name);
    const char *tn = ref->valuestring;
    int ti = has_prefix(tn, prefix) ? nb__ck_lookup(sg->c, tn) : -1;
    if (ti < 0)
        return nb__error(NB_EFORMAT, "checkpoint: %s \"%s\" refers to tensor \"%s\", which is not "
                         "in the file%s", where, name, tn, has_prefix(tn, prefix) ? "" : " section it belongs to");
    if (sg->used[ti])
        return nb__error(NB_EFORMAT, "checkpoint: tensor \"%s\" is referenced twice", tn);
    sg->used[ti] = 1;
    const nb__ck_entry *te = &sg->c->t[ti];
    const char *dt = nb__ck_dtype_name(te->dtype);
    if (!strcmp(dt, "F64") || !strcmp(dt, "I64") || !strcmp(dt, "BOOL")) {
        if (te->ndim != 0)
            return nb__error(NB_EFORMAT, "checkpoint: tensor \"%s\" has dtype %s, which nabla holds "
                             "only as a scalar (shape [])", tn, dt);
        out->kind = !strcmp(dt, "F64") ? NB_VALUE_NUMBER : !strcmp(dt, "I64") ? NB_VALUE_INT : NB_VALUE_BOOL;
        pending *pe = &sg->pend[sg->npend++]; /* decoded by read_staged */
        *pe = (pending){.v = out, .ti = ti};
        sg->dst[ti] = (unsigned char *)&pe->raw;
        return NB_OK;
    }
    nb_dtype ndt = !strcmp(dt, "F32") ? NB_FLOAT32 : !strcmp(dt, "I32") ? NB_INT32 : NB_UINT8;
    if (strcmp(dt, "F32") && strcmp(dt, "I32") && strcmp(dt, "U8"))
        return nb__error(NB_EFORMAT, "checkpoint: tensor \"%s\" has dtype %s, which nabla cannot hold", tn, dt);
    /* before a byte is allocated or inflated: shapes are < 2^53 and their product too */
    int64_t numel = (int64_t)((te->end - te->begin) / nb__ck_dtype_size(te->dtype));
    if (numel > sg->max_numel)
        return nb__error(NB_EFORMAT, "checkpoint: tensor \"%s\" has shape %s, larger than all the "
                         "optimizer's parameters together (%lld elements)", tn,
                         nb__ck_shape(te->ndim, te->shape, 0), (long long)sg->max_numel);
    if ((sg->value_numel += numel) > 4 * sg->max_numel) /* Adam with amsgrad holds 3 per parameter */
        return nb__error(NB_EFORMAT, "checkpoint: the optimizer and scheduler tensors of the file hold "
                         "more than 4 times as many elements as all the optimizer's parameters (%lld)",
                         (long long)sg->max_numel);
    nb_tensor *t = nb_empty(NULL, ndt, te->ndim, te->shape);
    if (!t) return nb_last_status();
    sg->dst[ti] = t->data;
    out->kind = NB_VALUE_TENSOR;
    out->tensor = t;
    return NB_OK;
}

/* Where the kinds of loaded values come from: the live object's value of the same name. */
typedef const nb_value *(*schema_fn)(const void *ctx, int g, const char *name);

static const nb_value *group_schema(const void *o, int g, const char *name) {
    return nb_optim_get_value(o, g, name);
}

static const nb_value *dict_schema(const void *sd, int g, const char *name) {
    (void)g;
    const nb_sched_dict *d = sd;
    return nb__value_cfind(d->values, d->nvalues, name);
}

enum { MAX_VALUES = 256 }; /* named values per table */

/* A JSON object of named values -> a table (kinds from schema(ctx, g, name) when given). */
static int values_from_json(stage *sg, const cJSON *obj, schema_fn schema, const void *ctx, int g,
                            const char *skip, const char *prefix, const char *where,
                            nb_value **out, int *nout) {
    int n = 0, rc = NB_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        if (++n > MAX_VALUES)
            return nb__error(NB_EFORMAT, "checkpoint: %s has more than %d entries", where, MAX_VALUES);
    }
    nb_value *v = nb__calloc((size_t)(n ? n : 1), sizeof *v);
    if (!v) return NB_ENOMEM;
    n = 0;
    cJSON_ArrayForEach(it, obj) {
        if (skip && !strcmp(it->string, skip)) continue;
        for (int k = 0; k < n; k++)
            if (!strcmp(v[k].name, it->string))
                FAIL(NB_EFORMAT, "checkpoint: %s has two entries \"%s\"", where, it->string);
        const nb_value *sch = schema ? schema(ctx, g, it->string) : NULL;
        if ((rc = value_from_json(sg, it, it->string, sch, prefix, where, &v[n]))) goto done;
        n++;
    }
done:
    if (rc) {
        nb__values_free(v, n);
        return rc;
    }
    *out = v;
    *nout = n;
    return NB_OK;
}

static int total_params(const nb_optim *o) {
    int n = 0;
    for (int g = 0; g < nb_optim_num_groups(o); g++) n += nb_optim_group_size(o, g);
    return n;
}

static const nb_tensor *optim_param(const nb_optim *o, int index) {
    for (int g = 0; g < nb_optim_num_groups(o); g++) {
        if (index < nb_optim_group_size(o, g)) return nb_optim_group_param(o, g, index);
        index -= nb_optim_group_size(o, g);
    }
    return NULL;
}

static bool shape_from_json(const cJSON *j, int *ndim, int64_t *shape) {
    if (!cJSON_IsArray(j)) return false;
    const cJSON *e;
    *ndim = 0;
    cJSON_ArrayForEach(e, j) {
        if (*ndim == NB_MAX_DIMS || !get_int(e, 0, MAX_SAFE, &shape[*ndim])) return false;
        (*ndim)++;
    }
    return true;
}

static int stage_optim(stage *sg, const nb_optim *o, const nb_module *m) {
    int rc = NB_OK;
    cJSON *j = parse_meta(sg->c, "optimizer", true, &rc);
    if (!j) return rc;
    const int P = total_params(o), G = nb_optim_num_groups(o);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(j, "param_names");
    const cJSON *shapes = cJSON_GetObjectItemCaseSensitive(j, "param_shapes");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(j, "param_groups");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(j, "state");
    const cJSON *it;
    if (!cJSON_IsString(type)) FAIL(NB_EFORMAT, "checkpoint: optimizer state has no type");
    if (strcmp(type->valuestring, nb_optim_type(o)) != 0)
        FAIL(NB_EINVAL, "checkpoint: optimizer is %s, but the checkpoint holds %s state",
             nb_optim_type(o), type->valuestring);
    if (!cJSON_IsArray(groups)) FAIL(NB_EFORMAT, "checkpoint: optimizer state has no param_groups list");
    if (cJSON_GetArraySize(groups) != G)
        FAIL(NB_EINVAL, "checkpoint: the checkpoint's optimizer has %d param groups, the live "
             "optimizer has %d", cJSON_GetArraySize(groups), G);
    if (!cJSON_IsObject(state)) FAIL(NB_EFORMAT, "checkpoint: optimizer state has no state object");
    /* parameters: names and shapes as saved, against the live optimizer */
    if (shapes && (!cJSON_IsArray(shapes) || cJSON_GetArraySize(shapes) != P))
        FAIL(NB_EINVAL, "checkpoint: the checkpoint's optimizer has %d parameters, the live one %d",
             cJSON_IsArray(shapes) ? cJSON_GetArraySize(shapes) : -1, P);
    if (names && (!cJSON_IsArray(names) || cJSON_GetArraySize(names) != P))
        FAIL(NB_EINVAL, "checkpoint: optimizer param_names has %d entries, the live optimizer has "
             "%d parameters", cJSON_IsArray(names) ? cJSON_GetArraySize(names) : -1, P);
    int idx = 0;
    const cJSON *nj = names ? names->child : NULL;
    const int np = nb_module_num_params(m);
    for (const cJSON *sj = shapes ? shapes->child : NULL; sj; sj = sj->next, idx++) {
        const nb_tensor *p = optim_param(o, idx);
        const char *live = NULL;
        for (int k = 0; k < np && !live; k++)
            if (nb_module_param(m, k).tensor == p) live = nb_module_param(m, k).name;
        int nd;
        int64_t sh[NB_MAX_DIMS];
        if (!shape_from_json(sj, &nd, sh)) FAIL(NB_EFORMAT, "checkpoint: optimizer param_shapes[%d] is malformed", idx);
        if (nd != p->ndim || memcmp(sh, p->shape, sizeof(int64_t) * (size_t)nd))
            FAIL(NB_ESHAPE, "checkpoint: optimizer parameter %d (\"%s\") has shape %s in the "
                 "checkpoint, the live optimizer's has shape %s", idx, live ? live : "?",
                 nb__ck_shape(nd, sh, 0), nb__ck_shape(p->ndim, p->shape, 1));
        if (nj) {
            if (cJSON_IsString(nj) && live && strcmp(nj->valuestring, live) != 0)
                FAIL(NB_EINVAL, "checkpoint: optimizer parameter %d is \"%s\" in the checkpoint but "
                     "\"%s\" in the live optimizer", idx, nj->valuestring, live);
            nj = nj->next;
        }
    }
    nb_optim_dict *sd = sg->osd = nb__calloc(1, sizeof *sd);
    if (!sd || !(sd->groups = nb__calloc((size_t)G, sizeof *sd->groups)) ||
        !(sd->states = nb__calloc((size_t)(P ? P : 1), sizeof *sd->states)))
        FAIL(NB_ENOMEM, "checkpoint: out of memory");
    snprintf(sd->type, sizeof sd->type, "%s", nb_optim_type(o));
    int first = 0;
    cJSON_ArrayForEach(it, groups) {
        int g = sd->ngroups, n = nb_optim_group_size(o, g);
        char where[64];
        snprintf(where, sizeof where, "optimizer param_groups[%d]", g);
        if (!cJSON_IsObject(it)) FAIL(NB_EFORMAT, "checkpoint: %s is not an object", where);
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(it, "params"), *e;
        if (!cJSON_IsArray(params)) FAIL(NB_EFORMAT, "checkpoint: %s has no params list", where);
        if (cJSON_GetArraySize(params) != n)
            FAIL(NB_EINVAL, "checkpoint: %s has %d parameters, the live optimizer's group has %d",
                 where, cJSON_GetArraySize(params), n);
        nb_optim_group_dict *gd = &sd->groups[g];
        if (!(gd->params = nb__malloc(sizeof(int) * (size_t)(n ? n : 1)))) FAIL(NB_ENOMEM, "checkpoint: out of memory");
        sd->ngroups++;
        gd->nparams = n;
        int k = 0;
        cJSON_ArrayForEach(e, params) {
            int64_t v;
            if (!get_int(e, 0, P, &v) || v != first + k)
                FAIL(NB_EFORMAT, "checkpoint: %s params must be the indices %d..%d in order", where,
                     first, first + n - 1);
            gd->params[k++] = (int)v;
        }
        first += n;
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%sparam_groups.%d.", OPT_PREFIX, g);
        if ((rc = values_from_json(sg, it, group_schema, o, g, "params", prefix, where, &gd->values,
                                   &gd->nvalues)))
            goto done;
    }
    unsigned char *seen = nb__calloc((size_t)(P ? P : 1), 1);
    if (!seen) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    cJSON_ArrayForEach(it, state) {
        char *endp;
        const char *key = it->string;
        long v = strtol(key, &endp, 10);
        if (!*key || *endp || key[0] == '-' || key[0] == '+' || (key[0] == '0' && key[1]) || v < 0 || v >= P) {
            nb__free(seen);
            FAIL(NB_EFORMAT, "checkpoint: optimizer state key \"%s\" is not a parameter index "
                 "0..%d", key, P - 1);
        }
        if (seen[v]++) {
            nb__free(seen);
            FAIL(NB_EFORMAT, "checkpoint: optimizer state has two entries for parameter %ld", v);
        }
        if (!cJSON_IsObject(it)) {
            nb__free(seen);
            FAIL(NB_EFORMAT, "checkpoint: optimizer state of parameter %ld is not an object", v);
        }
        nb_optim_param_state *ps = &sd->states[sd->nstates];
        const nb_tensor *p = optim_param(o, (int)v);
        ps->index = (int)v;
        ps->ndim = p->ndim;
        memcpy(ps->shape, p->shape, sizeof ps->shape);
        char where[64], prefix[64];
        snprintf(where, sizeof where, "optimizer state of parameter %ld", v);
        snprintf(prefix, sizeof prefix, "%sstate.%ld.", OPT_PREFIX, v);
        if ((rc = values_from_json(sg, it, NULL, NULL, 0, NULL, prefix, where, &ps->values, &ps->nvalues))) {
            nb__free(seen);
            goto done;
        }
        sd->nstates++;
    }
    nb__free(seen);
    /* every optimizer tensor of the file must belong to the state */
    for (int i = 0; i < sg->c->ntensors; i++)
        if (has_prefix(sg->c->t[i].name, OPT_PREFIX) && !sg->used[i])
            FAIL(NB_EFORMAT, "checkpoint: tensor \"%s\" belongs to no optimizer state entry", sg->c->t[i].name);
done:
    cJSON_Delete(j);
    return rc;
}

/* The schedule under metadata key ("scheduler" or "swa_scheduler"), its tensors under prefix. */
static int stage_sched(stage *sg, const nb_sched *s, const char *key, const char *prefix, nb_sched_dict **out) {
    int rc = NB_OK;
    nb_sched_dict *live = NULL;
    cJSON *j = parse_meta(sg->c, key, true, &rc);
    if (!j) return rc;
    char where[64];
    snprintf(where, sizeof where, "%s state", key);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(j, "state");
    if (!cJSON_IsString(type) || !cJSON_IsObject(state))
        FAIL(NB_EFORMAT, "checkpoint: %s must be {\"type\": ..., \"state\": {...}}", where);
    if (strcmp(type->valuestring, nb_sched_type(s)) != 0)
        FAIL(NB_EINVAL, "checkpoint: %s is %s, but the checkpoint holds %s state", key,
             nb_sched_type(s), type->valuestring);
    if (!(live = nb_sched_state_dict(s))) { rc = nb_last_status(); goto done; }
    if (!(*out = nb__calloc(1, sizeof **out))) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    snprintf((*out)->type, sizeof (*out)->type, "%s", nb_sched_type(s));
    if ((rc = values_from_json(sg, state, dict_schema, live, 0, NULL, prefix, where, &(*out)->values,
                               &(*out)->nvalues)))
        goto done;
    for (int i = 0; i < sg->c->ntensors; i++)
        if (has_prefix(sg->c->t[i].name, prefix) && !sg->used[i])
            FAIL(NB_EFORMAT, "checkpoint: tensor \"%s\" belongs to no %s entry", sg->c->t[i].name, where);
done:
    nb_sched_dict_free(live);
    cJSON_Delete(j);
    return rc;
}

/* format and format_version; *weights_only: the file holds a model's weights and nothing to
 * resume from (no "format": a plain safetensors file; or content "weights"). */
static int check_format(const nb_ckpt *c, bool *weights_only) {
    const char *fmt = nb_ckpt_meta(c, "format"), *ver = nb_ckpt_meta(c, "format_version");
    const char *content = nb_ckpt_meta(c, "content");
    *weights_only = true;
    if (!fmt) return NB_OK; /* a plain safetensors file: weights only */
    if (strcmp(fmt, NB_CKPT_FORMAT) != 0)
        return nb__error(NB_EFORMAT, "checkpoint: format \"%s\" is not %s", fmt, NB_CKPT_FORMAT);
    char *end;
    long v = ver ? strtol(ver, &end, 10) : 0;
    if (!ver || !*ver || *end || v < 1)
        return nb__error(NB_EFORMAT, "checkpoint: format_version \"%s\" is not a positive integer",
                         ver ? ver : "(missing)");
    if (v > NB_CKPT_VERSION)
        return nb__error(NB_EFORMAT, "checkpoint: the file has format version %ld, newer than the "
                         "%d this nabla (%s) reads: upgrade nabla", v, NB_CKPT_VERSION, nb_version());
    if (content && strcmp(content, "checkpoint") && strcmp(content, "weights"))
        return nb__error(NB_EFORMAT, "checkpoint: content \"%s\" is neither \"checkpoint\" nor "
                         "\"weights\"", content);
    *weights_only = content && !strcmp(content, "weights");
    return NB_OK;
}

/* A file of weights only gives a model, never a training state, whatever else its metadata
 * says (docs/checkpoint-format.md). */
static int weights_only_refusal(const nb_ckpt *c, const char *part) {
    if (!nb_ckpt_meta(c, "format"))
        return nb__error(NB_EINVAL, "checkpoint: the file has no \"format\" metadata (a plain "
                         "safetensors file): it holds weights only, not %s", part);
    return nb__error(NB_EINVAL, "checkpoint: the file holds weights only (content \"weights\"), "
                     "not %s", part);
}

/* A tensor the file's metadata "parts" lists ("<part>.<tensor>"). */
static bool in_parts(const nb_ckpt *c, const char *name) {
    const char *txt = nb_ckpt_meta(c, "parts");
    if (!txt || !strchr(name, '.')) return false;
    cJSON *j = nb__json_parse(txt, strlen(txt), NULL);
    const cJSON *parts = cJSON_IsObject(j) ? j : NULL, *p, *t;
    bool found = false;
    cJSON_ArrayForEach(p, parts) {
        if (!cJSON_IsArray(p) || !in_part_prefix(name, p->string)) continue;
        cJSON_ArrayForEach(t, p) found |= cJSON_IsString(t) && !strcmp(t->valuestring, name + strlen(p->string) + 1);
    }
    cJSON_Delete(j);
    return found;
}

/* A tensor of the file outside the model's section (optimizer, schedulers, averaged weights,
 * parts). */
static bool not_model(const nb_ckpt *c, const char *name) {
    return has_prefix(name, OPT_PREFIX) || has_prefix(name, SCHED_PREFIX) ||
           (has_prefix(name, AVG_PREFIX) && nb_ckpt_meta(c, "averaged")) ||
           (has_prefix(name, SWA_SCHED_PREFIX) && nb_ckpt_meta(c, "swa_scheduler")) || in_parts(c, name);
}

/* The file's entry e has the dtype and shape of the live tensor t (who: "model", ...). */
static int check_fits(const nb__ck_entry *e, const nb_tensor *t, const char *who) {
    if (e->dtype != nb__ck_dtype_of(t->dtype))
        return nb__error(NB_EINVAL, "checkpoint: tensor \"%s\" has dtype %s, %s expects %s", e->name,
                         nb__ck_dtype_name(e->dtype), who, nb__ck_dtype_name(nb__ck_dtype_of(t->dtype)));
    if (e->ndim != t->ndim || memcmp(e->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim))
        return nb__error(NB_ESHAPE, "checkpoint: tensor \"%s\" has shape %s, %s expects %s", e->name,
                         nb__ck_shape(e->ndim, e->shape, 0), who, nb__ck_shape(t->ndim, t->shape, 1));
    return NB_OK;
}

static int stage_model(const nb_ckpt *c, const nb_module *m) {
    const nb_named_tensor *named;
    int nt = nb_module_state(m, &named);
    if (nt < 0) return nb__error(NB_ENOMEM, "checkpoint: out of memory");
    for (int i = 0; i < nt; i++) {
        int k = nb__ck_lookup(c, named[i].name), rc;
        if (k < 0)
            return nb__error(NB_EINVAL, "checkpoint: model tensor \"%s\" is missing from the "
                             "checkpoint", named[i].name);
        if ((rc = check_fits(&c->t[k], named[i].tensor, "model"))) return rc;
    }
    /* names are unique and all the model's were found: any other model-section tensor is extra */
    int nmodel = 0;
    for (int i = 0; i < c->ntensors; i++) nmodel += !not_model(c, c->t[i].name);
    for (int i = 0; nmodel > nt && i < c->ntensors; i++) {
        const char *name = c->t[i].name;
        if (not_model(c, name)) continue;
        if (!nb_module_find(m, name))
            return nb__error(NB_EINVAL, "checkpoint: tensor \"%s\" is not in the model", name);
    }
    return NB_OK;
}

static int with_prefix(int rc) {
    if (rc && strncmp(nb_last_error(), "checkpoint: ", 12) != 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", nb_last_error());
        nb__error(nb_last_status(), "checkpoint: %s", msg);
    }
    return rc;
}

/* The "averaged" metadata, checked against the model (see averaged_json): the names are the
 * model's first n state names (n: its parameters, or its parameters and buffers), each
 * "swa.<name>" is an F32 tensor of that model tensor's shape, and every "swa." tensor is one of
 * them. entry[i] receives the container index of averaged tensor i (caller frees). */
typedef struct avg_meta {
    nb_avg_kind kind;
    double decay;
    int64_t n_averaged;
    int n;
    int *entry;
} avg_meta;

static int parse_averaged(const nb_ckpt *c, const nb_module *m, avg_meta *am) {
    int rc = NB_OK;
    memset(am, 0, sizeof *am);
    cJSON *j = parse_meta(c, "averaged", true, &rc);
    if (!j) return rc;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(j, "names"), *it;
    const nb_named_tensor *named;
    int nt = nb_module_state(m, &named), np = nb_module_num_params(m);
    if (nt < 0) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    if (!cJSON_IsString(kind) || (strcmp(kind->valuestring, "SWA") && strcmp(kind->valuestring, "EMA") &&
                                  strcmp(kind->valuestring, "custom")))
        FAIL(NB_EFORMAT, "checkpoint: averaged state needs a kind \"SWA\", \"EMA\" or \"custom\"");
    am->kind = kind->valuestring[0] == 'S' ? NB_AVG_SWA : kind->valuestring[0] == 'E' ? NB_AVG_EMA : NB_AVG_CUSTOM;
    am->decay = NAN;
    if (am->kind == NB_AVG_EMA &&
        (!get_num(cJSON_GetObjectItemCaseSensitive(j, "decay"), &am->decay) || !(am->decay >= 0 && am->decay <= 1)))
        FAIL(NB_EFORMAT, "checkpoint: averaged EMA state needs a decay in [0, 1]");
    if (!get_int(cJSON_GetObjectItemCaseSensitive(j, "n_averaged"), 0, MAX_SAFE, &am->n_averaged))
        FAIL(NB_EFORMAT, "checkpoint: averaged state needs an integer n_averaged >= 0");
    if (!cJSON_IsArray(names)) FAIL(NB_EFORMAT, "checkpoint: averaged state needs a list of names");
    int n = cJSON_GetArraySize(names);
    if (n != np && n != nt)
        FAIL(NB_EINVAL, "checkpoint: the checkpoint averages %d tensors, the model has %d parameters (%d "
             "with its buffers)", n, np, nt);
    if (!(am->entry = nb__malloc(sizeof(int) * (size_t)(n ? n : 1)))) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    int i = 0;
    cJSON_ArrayForEach(it, names) {
        if (!cJSON_IsString(it) || strcmp(it->valuestring, named[i].name))
            FAIL(NB_EINVAL, "checkpoint: averaged tensor %d is %s%s%s in the checkpoint but \"%s\" in the "
                 "model", i, cJSON_IsString(it) ? "\"" : "", cJSON_IsString(it) ? it->valuestring : "not a name",
                 cJSON_IsString(it) ? "\"" : "", named[i].name);
        char tn[512];
        snprintf(tn, sizeof tn, "%s%s", AVG_PREFIX, named[i].name);
        int k = nb__ck_lookup(c, tn);
        if (k < 0) FAIL(NB_EINVAL, "checkpoint: averaged tensor \"%s\" is missing from the checkpoint", tn);
        if ((rc = check_fits(&c->t[k], named[i].tensor, "the averaged copy"))) goto done;
        am->entry[i++] = k;
    }
    am->n = n;
    /* every "swa." tensor is one of those */
    unsigned char *mine = nb__calloc((size_t)(c->ntensors ? c->ntensors : 1), 1);
    if (!mine) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    for (int q = 0; q < n; q++) mine[am->entry[q]] = 1;
    for (int k = 0; k < c->ntensors && !rc; k++)
        if (has_prefix(c->t[k].name, AVG_PREFIX) && !mine[k])
            rc = nb__error(NB_EFORMAT, "checkpoint: tensor \"%s\" belongs to no averaged tensor", c->t[k].name);
    nb__free(mine);
done:
    if (rc) {
        nb__free(am->entry);
        am->entry = NULL;
    }
    cJSON_Delete(j);
    return rc;
}

/* The averaged copy: the file's, checked against the live one and the model, as a dict. */
static int stage_averaged(stage *sg, const nb_averaged *a, const nb_module *m) {
    const nb_named_tensor *named;
    int nt = nb_module_state(m, &named), rc;
    if (nt < 0) return nb__error(NB_ENOMEM, "checkpoint: out of memory");
    if ((rc = check_covers(a, named, nt, nb_module_num_params(m)))) return rc;
    avg_meta am;
    if ((rc = parse_averaged(sg->c, m, &am))) return rc;
    nb_averaged_dict *live = nb_averaged_state_dict(a);
    if (!live) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    if (am.kind != live->kind)
        FAIL(NB_EINVAL, "checkpoint: the averaged copy does %s averaging, but the checkpoint holds %s state",
             avg_kind_name(live->kind), avg_kind_name(am.kind));
    if (am.kind == NB_AVG_EMA && am.decay != live->decay)
        FAIL(NB_EINVAL, "checkpoint: the averaged copy has EMA decay %s, but the checkpoint's has decay %s",
             nb__pyfloat(live->decay, 0), nb__pyfloat(am.decay, 1));
    if (am.n != live->n)
        FAIL(NB_EINVAL, "checkpoint: the checkpoint averages %d tensors, the live averaged copy %d", am.n, live->n);
    for (int i = 0; i < am.n; i++) sg->dst[am.entry[i]] = live->tensors[i]->data; /* read there */
    live->n_averaged = am.n_averaged;
    sg->asd = live;
    live = NULL;
done:
    nb_averaged_dict_free(live);
    nb__free(am.entry);
    return rc;
}

/* ---- loaded values that would corrupt training without an error -------------------------
 * Checked on the staged data, before anything is applied. By PyTorch's names: they are the
 * state_dict keys every implementation shares. */
static bool name_is(const char *name, const char *key) { /* key, or a full name ending in .key */
    size_t n = strlen(name), k = strlen(key);
    return n >= k && !strcmp(name + n - k, key) && (n == k || name[n - k - 1] == '.');
}

/* The first element of x[0..n) that is negative or NaN, or -1. */
static int64_t first_negative(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!(x[i] >= 0.0f)) return i;
    return -1;
}

/* BatchNorm's running_var (a variance) and num_batches_tracked (a count) are never negative:
 * a negative variance makes evaluation take the square root of it. The staged model state as
 * copy_model copies it (the first navg tensors from the averaged entries avg[]). */
static int check_model_values(const stage *sg, const nb_module *m, const int *avg, int navg) {
    const nb_named_tensor *named;
    int nt = nb_module_state(m, &named);
    for (int i = 0; i < nt; i++) {
        const nb_tensor *t = named[i].tensor;
        const void *d = sg->dst[i < navg ? avg[i] : nb__ck_lookup(sg->c, named[i].name)];
        if (name_is(named[i].name, "running_var") && t->dtype == NB_FLOAT32) {
            int64_t k = first_negative(d, t->numel);
            if (k >= 0)
                return nb__error(NB_EFORMAT, "checkpoint: tensor \"%s\" (a variance) holds %s at "
                                 "index %lld: it must be >= 0", named[i].name,
                                 nb__pyfloat(((const float *)d)[k], 0), (long long)k);
        } else if (name_is(named[i].name, "num_batches_tracked") && t->dtype == NB_INT32 && t->numel == 1) {
            int32_t v;
            memcpy(&v, d, 4);
            if (v < 0)
                return nb__error(NB_EFORMAT, "checkpoint: tensor \"%s\" (a count) holds %d: it must "
                                 "be >= 0", named[i].name, (int)v);
        }
    }
    return NB_OK;
}

/* Optimizer state: the counts (Adam's step, ...) are integers >= 0, every other number is finite
 * (a NaN step count or scalar turns every later update into NaN, silently), and the second
 * moments are >= 0 (their square roots divide the updates). */
static int check_optim_values(const nb_optim_dict *sd) {
    static const char *const counts[] = {"step", "n_iter", "func_evals"};
    static const char *const moments[] = {"exp_avg_sq", "max_exp_avg_sq", "square_avg", "acc_delta",
                                          "sum", "exp_inf", "row_var", "col_var"};
    for (int k = 0; k < sd->nstates; k++)
        for (int j = 0; j < sd->states[k].nvalues; j++) {
            const nb_value *v = &sd->states[k].values[j];
            bool count = false, moment = false;
            for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) count |= !strcmp(v->name, counts[i]);
            for (size_t i = 0; i < sizeof moments / sizeof moments[0]; i++) moment |= !strcmp(v->name, moments[i]);
            if (v->kind == NB_VALUE_NUMBER || v->kind == NB_VALUE_INT) {
                if (count ? !(v->num >= 0 && v->num <= MAX_SAFE && v->num == floor(v->num)) : !isfinite(v->num))
                    return nb__error(NB_EFORMAT, "checkpoint: optimizer state '%s' of parameter %d is %s: "
                                     "it must be %s", v->name, sd->states[k].index, nb__pyfloat(v->num, 0),
                                     count ? "an integer >= 0" : "a finite number");
            } else if (moment && v->kind == NB_VALUE_TENSOR && v->tensor && v->tensor->dtype == NB_FLOAT32) {
                int64_t i = first_negative(nb_f32(v->tensor), v->tensor->numel);
                if (i >= 0)
                    return nb__error(NB_EFORMAT, "checkpoint: optimizer state '%s' of parameter %d holds "
                                     "%s at index %lld: it must be >= 0", v->name, sd->states[k].index,
                                     nb__pyfloat(nb_f32(v->tensor)[i], 0), (long long)i);
            }
        }
    return NB_OK;
}

/* Where the model's tensors are read: one block of their size (what the caller expects). */
static int want_model(stage *sg, const nb_module *m) {
    const nb_named_tensor *named;
    int nt = nb_module_state(m, &named);
    size_t total = 0;
    for (int i = 0; i < nt; i++) total += nb_dtype_size(named[i].tensor->dtype) * (size_t)named[i].tensor->numel;
    if (!(sg->model = nb__malloc(total))) return NB_ENOMEM;
    total = 0;
    for (int i = 0; i < nt; i++) {
        sg->dst[nb__ck_lookup(sg->c, named[i].name)] = sg->model + total;
        total += nb_dtype_size(named[i].tensor->dtype) * (size_t)named[i].tensor->numel;
    }
    return NB_OK;
}

/* Read the data of every tensor given a destination (the rest is inflated and dropped), put it
 * in host order and decode the scalars. */
static int read_staged(stage *sg) {
    const nb_ckpt *c = sg->c;
    int rc = nb__ck_read(c, sg->dst);
    if (rc) return rc;
    for (int k = 0; k < c->ntensors; k++)
        if (sg->dst[k]) {
            size_t sz = nb__ck_dtype_size(c->t[k].dtype);
            nb__ck_le_inplace(sg->dst[k], (size_t)(c->t[k].end - c->t[k].begin) / sz, sz);
        }
    for (int i = 0; i < sg->npend; i++) {
        pending *pe = &sg->pend[i];
        if (pe->v->kind == NB_VALUE_NUMBER) {
            memcpy(&pe->v->num, &pe->raw, 8);
        } else if (pe->v->kind == NB_VALUE_INT) {
            int64_t v;
            memcpy(&v, &pe->raw, 8);
            if (v > (int64_t)MAX_SAFE || v < -(int64_t)MAX_SAFE)
                return nb__error(NB_EFORMAT, "checkpoint: tensor \"%s\" holds %lld, beyond 2^53",
                                 c->t[pe->ti].name, (long long)v);
            pe->v->num = (double)v;
        } else {
            pe->v->num = *(const unsigned char *)&pe->raw != 0;
        }
    }
    return NB_OK;
}

/* The caller's parts: each in the file's "parts" with the same tensor names, each tensor of
 * the live one's dtype and shape; their data is read into sg->parts (one block, in order),
 * copied in at the commit. */
static int stage_parts(stage *sg, const nb_ckpt_part *parts, int nparts) {
    int rc = NB_OK;
    size_t total = 0;
    cJSON *j = parse_meta(sg->c, "parts", true, &rc);
    if (!j) return rc;
    for (int i = 0; i < nparts; i++) {
        const nb_ckpt_part *p = &parts[i];
        const cJSON *names = cJSON_GetObjectItemCaseSensitive(j, p->name), *e;
        if (!names) FAIL(NB_EINVAL, "checkpoint: the file has no part \"%s\"", p->name);
        if (!cJSON_IsArray(names) || cJSON_GetArraySize(names) != p->ntensors)
            FAIL(NB_EINVAL, "checkpoint: part \"%s\" has %d tensors in the file, %d live", p->name,
                 cJSON_IsArray(names) ? cJSON_GetArraySize(names) : -1, p->ntensors);
        for (int k = 0; k < p->ntensors; k++) {
            bool listed = false;
            cJSON_ArrayForEach(e, names) listed |= cJSON_IsString(e) && !strcmp(e->valuestring, p->tensors[k].name);
            char tn[160], who[96];
            snprintf(tn, sizeof tn, "%s.%s", p->name, p->tensors[k].name);
            snprintf(who, sizeof who, "part \"%s\"", p->name);
            int entry = listed ? nb__ck_lookup(sg->c, tn) : -1;
            if (entry < 0) FAIL(NB_EINVAL, "checkpoint: part \"%s\" has no tensor \"%s\" in the file", p->name, tn);
            if ((rc = check_fits(&sg->c->t[entry], p->tensors[k].tensor, who))) goto done;
            total += nb_dtype_size(p->tensors[k].tensor->dtype) * (size_t)p->tensors[k].tensor->numel;
        }
    }
    if (!(sg->parts = nb__malloc(total ? total : 1))) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    total = 0;
    for (int i = 0; i < nparts; i++)
        for (int k = 0; k < parts[i].ntensors; k++) {
            char tn[160];
            snprintf(tn, sizeof tn, "%s.%s", parts[i].name, parts[i].tensors[k].name);
            sg->dst[nb__ck_lookup(sg->c, tn)] = sg->parts + total; /* read there */
            total += nb_dtype_size(parts[i].tensors[k].tensor->dtype) * (size_t)parts[i].tensors[k].tensor->numel;
        }
done:
    cJSON_Delete(j);
    return rc;
}

/* The parts' tensors from the staged data (after stage_parts and read_staged). */
static void copy_parts(const stage *sg, const nb_ckpt_part *parts, int nparts) {
    size_t at = 0;
    for (int i = 0; i < nparts; i++)
        for (int k = 0; k < parts[i].ntensors; k++) {
            const nb_tensor *t = parts[i].tensors[k].tensor;
            size_t n = nb_dtype_size(t->dtype) * (size_t)t->numel;
            memcpy(t->data, sg->parts + at, n);
            at += n;
        }
}

/* The model's state from the staged data; its first navg tensors from the averaged entries avg[]. */
static void copy_model(const stage *sg, nb_module *m, const int *avg, int navg) {
    const nb_named_tensor *named;
    int nt = nb_module_state(m, &named);
    for (int i = 0; i < nt; i++) {
        const nb_tensor *t = named[i].tensor;
        memcpy(t->data, sg->dst[i < navg ? avg[i] : nb__ck_lookup(sg->c, named[i].name)],
               nb_dtype_size(t->dtype) * (size_t)t->numel);
    }
}

/* The largest value tensor the live objects can hold: all the optimizer's parameters together
 * (per-parameter state is shaped like its parameter; a flat history like LBFGS's covers all of
 * them), times the rows of the one optimizer that keeps rows of such vectors (LBFGS's
 * history_size). Without an optimizer, the model's parameters. */
static int64_t value_bound(const nb_train_state *st) {
    int64_t n = 0;
    if (st->optim) {
        for (int g = 0; g < nb_optim_num_groups(st->optim); g++)
            for (int i = 0; i < nb_optim_group_size(st->optim, g); i++)
                n += nb_optim_group_param(st->optim, g, i)->numel;
        const nb_value *h = nb_optim_get_value(st->optim, 0, "history_size");
        if (h && (h->kind == NB_VALUE_INT || h->kind == NB_VALUE_NUMBER) && h->num > 1 && h->num < 1e9)
            n *= (int64_t)h->num;
    } else {
        const nb_named_tensor *named;
        int np = nb_module_num_params(st->model), nt = nb_module_state(st->model, &named);
        for (int i = 0; i < np && i < nt; i++) n += named[i].tensor->numel;
    }
    return n;
}

static void stage_free(stage *sg) {
    nb__free(sg->used);
    nb__free(sg->dst);
    nb__free(sg->pend);
    nb__free(sg->model);
    nb__free(sg->parts);
}

static int stage_begin(stage *sg, const nb_ckpt *c) {
    size_t n = (size_t)(c->ntensors ? c->ntensors : 1);
    memset(sg, 0, sizeof *sg);
    sg->c = c;
    sg->used = nb__calloc(n, 1);
    sg->dst = nb__calloc(n, sizeof *sg->dst);
    sg->pend = nb__calloc(n, sizeof *sg->pend);
    if (!sg->used || !sg->dst || !sg->pend) {
        stage_free(sg);
        return nb__error(NB_ENOMEM, "checkpoint: out of memory");
    }
    return NB_OK;
}

int nb_ckpt_apply(const nb_ckpt *c, nb_train_state *st) {
    if (!c || !st || !st->model) return nb__error(NB_EINVAL, "checkpoint: NULL checkpoint, state or model");
    stage sg;
    nb_optim_dict *obak = NULL;
    nb_sched_dict *sbak = NULL, *wbak = NULL;
    nb_loader_state lbak = {0};
    cJSON *pos = NULL;
    bool weights_only;
    int rc = st->optim ? nb__optim_usable(st->optim, "checkpoint") : NB_OK;
    if (!rc) rc = check_format(c, &weights_only);
    if (!rc && weights_only && (st->optim || st->sched || st->rng || st->loader || st->averaged || st->swa_sched))
        rc = weights_only_refusal(c, st->optim ? "an optimizer's state" : st->sched ? "a schedule's state"
                                     : st->averaged ? "averaged weights" : "a training position");
    if (rc || (rc = stage_model(c, st->model)) || (rc = stage_begin(&sg, c))) return rc;
    sg.max_numel = value_bound(st);
    if ((rc = want_model(&sg, st->model))) goto done;
    if (st->optim && (rc = stage_optim(&sg, st->optim, st->model))) goto done;
    if (st->sched && (rc = stage_sched(&sg, st->sched, "scheduler", SCHED_PREFIX, &sg.ssd))) goto done;
    if (st->averaged && (rc = stage_averaged(&sg, st->averaged, st->model))) goto done;
    if (st->swa_sched && (rc = stage_sched(&sg, st->swa_sched, "swa_scheduler", SWA_SCHED_PREFIX, &sg.wsd))) goto done;
    if (st->nparts < 0 || (st->nparts && !st->parts)) FAIL(NB_EINVAL, "checkpoint: %d parts at NULL", st->nparts);
    if (st->nparts && (rc = stage_parts(&sg, st->parts, st->nparts))) goto done;
    if (st->rng) {
        cJSON *j = parse_meta(c, "rng", true, &rc);
        if (!j || (rc = parse_rng(j, "the", &sg.rng))) {
            cJSON_Delete(j);
            goto done;
        }
        cJSON_Delete(j);
    }
    if (st->loader) {
        cJSON *j = parse_meta(c, "loader", true, &rc);
        if (!j) goto done;
        if (!get_int(cJSON_GetObjectItemCaseSensitive(j, "epoch"), 0, MAX_SAFE, &sg.ls.epoch) ||
            !get_int(cJSON_GetObjectItemCaseSensitive(j, "batch"), -1, MAX_SAFE, &sg.ls.batch))
            rc = nb__error(NB_EFORMAT, "checkpoint: loader state needs integer epoch >= 0 and batch >= -1");
        if (!rc) rc = parse_rng(cJSON_GetObjectItemCaseSensitive(j, "rng"), "the loader's", &sg.ls.rng);
        cJSON_Delete(j);
        if (rc) goto done;
    }
    if ((pos = parse_meta(c, "position", false, &rc))) {
        if (!get_int(cJSON_GetObjectItemCaseSensitive(pos, "epoch"), 0, MAX_SAFE, &sg.epoch) ||
            !get_int(cJSON_GetObjectItemCaseSensitive(pos, "step"), 0, MAX_SAFE, &sg.step))
            FAIL(NB_EFORMAT, "checkpoint: position needs integer epoch and step >= 0");
    } else if (rc) {
        goto done;
    }
    /* everything matched from the header: now the data, straight into its destinations */
    if ((rc = read_staged(&sg)) || (rc = check_model_values(&sg, st->model, NULL, 0)) ||
        (sg.osd && (rc = check_optim_values(sg.osd))))
        goto done;

    /* commit: the fallible loads in this order, each rolled back (from a backup taken when a
     * later one may fail) if a later one fails; the model copy, RNG and position cannot fail */
    bool after_sched = sg.wsd || st->loader || sg.asd, after_wsched = st->loader || sg.asd;
    if (sg.osd && (sg.ssd || after_sched) && !(obak = nb__optim_snapshot(st->optim))) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    if (sg.ssd && after_sched && !(sbak = nb_sched_state_dict(st->sched))) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    if (sg.wsd && after_wsched && !(wbak = nb_sched_state_dict(st->swa_sched))) FAIL(NB_ENOMEM, "checkpoint: out of memory");
    if (st->loader) lbak = nb_loader_get_state(st->loader);
    int stage_failed = 0; /* 1: optimizer, 2: scheduler, 3: swa_scheduler, 4: loader, 5: averaged */
    if (sg.osd && (rc = with_prefix(nb_optim_load_state_dict(st->optim, sg.osd)))) stage_failed = 1;
    else if (sg.ssd && (rc = with_prefix(nb_sched_load_state_dict(st->sched, sg.ssd)))) stage_failed = 2;
    else if (sg.wsd && (rc = with_prefix(nb_sched_load_state_dict(st->swa_sched, sg.wsd)))) stage_failed = 3;
    else if (st->loader && (rc = with_prefix(nb_loader_set_state(st->loader, &sg.ls)))) stage_failed = 4;
    else if (sg.asd && (rc = with_prefix(nb_averaged_load_state_dict(st->averaged, sg.asd)))) stage_failed = 5;
    if (stage_failed) { /* undo what was applied, newest first, keeping the error */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", nb_last_error());
        if (st->loader && stage_failed >= 4) nb_loader_set_state(st->loader, &lbak);
        if (wbak && stage_failed > 3) nb_sched_load_state_dict(st->swa_sched, wbak);
        if (sbak && stage_failed > 2) nb_sched_load_state_dict(st->sched, sbak);
        if (obak && stage_failed > 1) nb__optim_restore(st->optim, obak);
        nb__error((nb_status)rc, "%s", msg);
        goto done;
    }
    copy_model(&sg, st->model, NULL, 0);
    copy_parts(&sg, st->parts, st->nparts);
    if (st->rng) *st->rng = sg.rng;
    st->epoch = sg.epoch;
    st->step = sg.step;
done:
    cJSON_Delete(pos);
    nb_optim_dict_free(obak);
    nb_sched_dict_free(sbak);
    nb_sched_dict_free(wbak);
    nb_optim_dict_free(sg.osd);
    nb_sched_dict_free(sg.ssd);
    nb_sched_dict_free(sg.wsd);
    nb_averaged_dict_free(sg.asd);
    stage_free(&sg);
    return rc;
}

int nb_checkpoint_load(const char *path, nb_train_state *st) {
    if (!st || !st->model) return nb__error(NB_EINVAL, "checkpoint: NULL state or model");
    nb_ckpt *c = nb_ckpt_open(path);
    if (!c) return nb_last_status();
    int rc = nb_ckpt_apply(c, st);
    nb_ckpt_close(c);
    return rc;
}

int nb_weights_load(const char *path, nb_module *m) {
    if (!m) return nb__error(NB_EINVAL, "checkpoint: the model is NULL");
    nb_train_state st = {.model = m};
    return nb_checkpoint_load(path, &st);
}

int nb_weights_load_averaged(const char *path, nb_module *m) {
    if (!m) return nb__error(NB_EINVAL, "checkpoint: the model is NULL");
    nb_ckpt *c = nb_ckpt_open(path);
    if (!c) return nb_last_status();
    int rc = nb_ckpt_apply_averaged(c, m);
    nb_ckpt_close(c);
    return rc;
}

int nb_ckpt_apply_averaged(const nb_ckpt *c, nb_module *m) {
    if (!c || !m) return nb__error(NB_EINVAL, "checkpoint: NULL checkpoint or model");
    avg_meta am = {.entry = NULL};
    stage sg;
    bool weights_only;
    int rc = check_format(c, &weights_only);
    if (!rc && weights_only) rc = weights_only_refusal(c, "averaged weights");
    if (!rc) rc = stage_model(c, m);
    if (!rc && !nb_ckpt_meta(c, "averaged"))
        rc = nb__error(NB_EINVAL, "checkpoint: the file has no averaged weights (metadata \"averaged\" is missing)");
    if (!rc) rc = parse_averaged(c, m, &am);
    if (rc || (rc = stage_begin(&sg, c))) {
        nb__free(am.entry);
        return rc;
    }
    rc = want_model(&sg, m);
    const nb_named_tensor *named;
    nb_module_state(m, &named);
    for (int i = 0; !rc && i < am.n; i++) { /* averaged tensor i takes model tensor i's place */
        int k = nb__ck_lookup(c, named[i].name);
        sg.dst[am.entry[i]] = sg.dst[k];
        sg.dst[k] = NULL;
    }
    if (!rc) rc = read_staged(&sg);
    if (!rc) rc = check_model_values(&sg, m, am.entry, am.n);
    if (!rc) copy_model(&sg, m, am.entry, am.n);
    nb__free(am.entry);
    stage_free(&sg);
    return rc;
}
