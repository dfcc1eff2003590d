/* config.c - what distributed training needs without MPI: the launcher check, the defaults,
 * and the text that the start-up checks compare across processes (a model's tensors, an
 * optimizer's groups and hyperparameters, one item a line). */
#include <stdio.h>
#include <stdlib.h>
#include "dist_internal.h"

bool nb_dist_launched(void) {
    /* Open MPI's mpirun, PMIx launchers (srun, prterun), MPICH's hydra */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return true;
    return false;
}

nb_ddp_opts nb_ddp_defaults(void) {
    return (nb_ddp_opts){.bucket_bytes = 256 << 10, .broadcast_buffers = true, .shared_memory = true};
}

/* A growing heap string. */
typedef struct text {
    char *s;
    size_t len, cap;
    bool failed;
} text;

static void add(text *t, const char *fmt, ...) NB_PRINTF(2, 3);
static void add(text *t, const char *fmt, ...) {
    if (t->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->len + (size_t)k + 1 > t->cap) {
        size_t cap = 2 * (t->len + (size_t)k + 1);
        char *s = nb__realloc(t->s, cap);
        if (!s) {
            t->failed = true;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)k;
}

static char *done(text *t) {
    if (!t->failed && !t->s) add(t, "%s", "");
    if (t->failed) {
        nb__free(t->s);
        return NULL;
    }
    return t->s;
}

char *nb__describe_model(const nb_module *m) {
    const nb_named_tensor *st;
    int n = nb_module_state(m, &st);
    if (n < 0) return NULL;
    text t = {0};
    for (int i = 0; i < n; i++)
        add(&t, "%s %s %s\n", st[i].name, nb__dtype_name(st[i].tensor->dtype),
            nb__shape(st[i].tensor, 0));
    return done(&t);
}

static void add_value(text *t, const nb_value *v) {
    switch (v->kind) {
    case NB_VALUE_NONE: add(t, "None"); break;
    case NB_VALUE_NUMBER: add(t, "%s", nb__pyfloat(v->num, 0)); break;
    case NB_VALUE_INT: add(t, "%.0f", v->num); break;
    case NB_VALUE_BOOL: add(t, "%s", v->num != 0 ? "True" : "False"); break;
    case NB_VALUE_LIST:
        for (int i = 0; i < v->len; i++)
            add(t, "%s%s", i ? "," : "(", nb__pyfloat(nb_value_elems(v)[i], 0));
        add(t, ")");
        break;
    case NB_VALUE_STRING: add(t, "'%s'", v->str); break;
    case NB_VALUE_TENSOR: add(t, "tensor %s", v->tensor ? nb__shape(v->tensor, 0) : "?"); break;
    }
}

char *nb__describe_optim(const nb_optim *o) {
    nb_optim_dict *sd = nb_optim_state_dict(o);
    if (!sd) return NULL;
    text t = {0};
    add(&t, "type=%s\n", sd->type);
    for (int g = 0; g < sd->ngroups; g++) {
        const nb_optim_group_dict *gd = &sd->groups[g];
        add(&t, "group %d: %d parameters\n", g, gd->nparams);
        for (int i = 0; i < gd->nvalues; i++) {
            add(&t, "group %d: %s=", g, gd->values[i].name);
            add_value(&t, &gd->values[i]);
            add(&t, "\n");
        }
    }
    nb_optim_dict_free(sd);
    return done(&t);
}

/* Copy the line at s (up to its newline) into out. */
static void line(const char *s, char *out, size_t n) {
    size_t k = 0;
    if (!*s) {
        snprintf(out, n, "(nothing)");
        return;
    }
    while (s[k] && s[k] != '\n') k++;
    snprintf(out, n, "%.*s", (int)(k < n ? k : n - 1), s);
}

void nb__first_difference(const char *a, const char *b, char *la, char *lb, size_t n) {
    const char *ha = a, *hb = b; /* heads of the current lines */
    while (*a && *a == *b) {
        if (*a == '\n') {
            ha = a + 1;
            hb = b + 1;
        }
        a++;
        b++;
    }
    line(ha, la, n);
    line(hb, lb, n);
}

uint64_t nb__text_hash(const char *s) {
    uint64_t h = 1469598103934665603u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}
