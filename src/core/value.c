/* value.c - named values: hyperparameters, optimizer state and scheduler state entries. */
#include <math.h>
#include <stdio.h>
#include "internal.h"

nb_value nb__value(const char *name, nb_value_kind kind, double num) {
    nb_value v;
    memset(&v, 0, sizeof v);
    snprintf(v.name, sizeof v.name, "%s", name ? name : "");
    v.kind = kind;
    v.num = num;
    return v;
}

nb_value nb_num(const char *name, double v) { return nb__value(name, NB_VALUE_NUMBER, v); }
nb_value nb_int(const char *name, int64_t v) { return nb__value(name, NB_VALUE_INT, (double)v); }
nb_value nb_bool(const char *name, bool v) { return nb__value(name, NB_VALUE_BOOL, v ? 1.0 : 0.0); }
nb_value nb_none(const char *name) { return nb__value(name, NB_VALUE_NONE, 0.0); }

nb_value nb_pair(const char *name, double a, double b) {
    nb_value v = nb__value(name, NB_VALUE_LIST, 0.0);
    v.len = 2;
    v.inl[0] = a;
    v.inl[1] = b;
    return v;
}

nb_value nb_str(const char *name, const char *s) {
    nb_value v = nb__value(name, NB_VALUE_STRING, 0.0);
    snprintf(v.str, sizeof v.str, "%s", s ? s : "");
    return v;
}

const double *nb_value_elems(const nb_value *v) {
    if (!v || v->kind != NB_VALUE_LIST) return NULL;
    return v->len <= NB_VALUE_INLINE ? v->inl : v->list;
}

nb_value *nb__value_find(nb_value *vals, int n, const char *name) {
    for (int i = 0; name && i < n; i++)
        if (strcmp(vals[i].name, name) == 0) return &vals[i];
    return NULL;
}

const nb_value *nb__value_cfind(const nb_value *vals, int n, const char *name) {
    return nb__value_find((nb_value *)vals, n, name);
}

int nb__value_copy(nb_value *dst, const nb_value *src) {
    *dst = *src;
    dst->list = NULL;
    dst->tensor = NULL;
    if (src->kind == NB_VALUE_LIST && src->len > NB_VALUE_INLINE) {
        dst->list = nb__malloc(sizeof(double) * (size_t)src->len);
        if (!dst->list) return NB_ENOMEM;
        memcpy(dst->list, src->list, sizeof(double) * (size_t)src->len);
    }
    if (src->kind == NB_VALUE_TENSOR && src->tensor) {
        dst->tensor = nb_clone(NULL, src->tensor);
        if (!dst->tensor) return NB_ENOMEM;
    }
    return NB_OK;
}

void nb__value_clear(nb_value *v) {
    if (v->kind == NB_VALUE_LIST && v->len > NB_VALUE_INLINE) nb__free(v->list);
    if (v->kind == NB_VALUE_TENSOR) nb_tensor_free(v->tensor);
    v->list = NULL;
    v->tensor = NULL;
}

void nb__values_free(nb_value *v, int n) {
    for (int i = 0; v && i < n; i++) nb__value_clear(&v[i]);
    nb__free(v);
}

nb_value *nb__values_copy(const nb_value *src, int n) {
    nb_value *d = nb__calloc((size_t)(n ? n : 1), sizeof *d);
    if (!d) return NULL;
    for (int i = 0; i < n; i++)
        if (nb__value_copy(&d[i], &src[i])) {
            nb__values_free(d, i);
            return NULL;
        }
    return d;
}


nb_value *nb__kwargs_apply(const char *who, const nb_value *defs, int ndefs, const nb_value *kw, int nkw,
                           bool lists_ok) {
    if (nkw < 0 || (nkw > 0 && !kw))
        return nb__null(NB_EINVAL, "%s: %d keyword arguments given but the list is %s", who, nkw,
                        kw ? "not NULL" : "NULL");
    for (int i = 0; i < nkw; i++) {
        const nb_value *d = nb__value_cfind(defs, ndefs, kw[i].name);
        if (!d)
            return nb__null(NB_EINVAL, "%s.__init__() got an unexpected keyword argument '%s'", who, kw[i].name);
        for (int j = 0; j < i; j++)
            if (!strcmp(kw[j].name, kw[i].name))
                return nb__null(NB_EINVAL, "%s.__init__() got multiple values for argument '%s'", who, kw[i].name);
        nb_value_kind dk = d->kind, k = kw[i].kind;
        bool ok = k == dk || dk == NB_VALUE_NONE || k == NB_VALUE_NONE ||
                  (dk == NB_VALUE_NUMBER && (k == NB_VALUE_INT || k == NB_VALUE_BOOL)) ||
                  (dk == NB_VALUE_INT && (k == NB_VALUE_BOOL || (k == NB_VALUE_NUMBER && kw[i].num == floor(kw[i].num)))) ||
                  (dk == NB_VALUE_BOOL && k == NB_VALUE_INT) || (lists_ok && dk == NB_VALUE_NUMBER && k == NB_VALUE_LIST);
        if (ok && dk == NB_VALUE_LIST && k == NB_VALUE_LIST) ok = kw[i].len == d->len;
        if (ok && k == NB_VALUE_LIST) ok = kw[i].len >= 0 && (kw[i].len <= NB_VALUE_INLINE || kw[i].list);
        if (!ok) return nb__null(NB_EINVAL, "%s: argument '%s' has the wrong kind of value", who, kw[i].name);
    }
    nb_value *v = nb__values_copy(defs, ndefs);
    for (int i = 0; v && i < nkw; i++) {
        nb_value *d = nb__value_find(v, ndefs, kw[i].name);
        nb_value_kind want = d->kind;
        nb__value_clear(d);
        if (nb__value_copy(d, &kw[i])) {
            nb__values_free(v, ndefs);
            return NULL;
        }
        if (kw[i].kind != NB_VALUE_NONE && want != NB_VALUE_NONE && kw[i].kind != NB_VALUE_LIST)
            d->kind = want; /* 1 -> 1.0, 1 -> True */
        if (d->kind == NB_VALUE_BOOL) d->num = d->num != 0.0;
    }
    return v;
}
