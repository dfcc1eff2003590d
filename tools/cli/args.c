/* args.c - command-line flags: every flag is declared once, in a table, with its help. */
#include "args.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_value(const arg_spec *s, const char *v, char *err, size_t errn) {
    char *end;
    const char *why = NULL; /* what is wrong with v */
    errno = 0;
    switch (s->kind) {
    case ARG_INT: {
        long x = strtol(v, &end, 10);
        if (!*v || *end) why = "expected an integer";
        else if (errno) why = "out of range";
        else *(long *)s->dst = x;
        break;
    }
    case ARG_DOUBLE: {
        double x = strtod(v, &end);
        if (!*v || *end) why = "expected a number";
        else if (errno) why = "out of range";
        else if (isnan(x)) why = "NaN is not allowed";
        else *(double *)s->dst = x;
        break;
    }
    case ARG_STRING: *(const char **)s->dst = v; break;
    case ARG_FLAG:
        if (!strcmp(v, "true") || !strcmp(v, "1")) *(bool *)s->dst = true;
        else if (!strcmp(v, "false") || !strcmp(v, "0")) *(bool *)s->dst = false;
        else why = "expected true, false, 1 or 0";
        break;
    }
    if (why) {
        snprintf(err, errn, "invalid value '%s' for --%s (%s)", v, s->name, why);
        return -1;
    }
    if (s->given) *s->given = true;
    return 0;
}

int args_parse(int argc, char **argv, int first, const arg_spec *specs, int n, char *err, size_t errn) {
    return args_parse_marking(argc, argv, first, specs, n, NULL, err, errn);
}

int args_parse_marking(int argc, char **argv, int first, const arg_spec *specs, int n, bool *set,
                       char *err, size_t errn) {
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errn, "unexpected argument '%s'", a);
            return -1;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const arg_spec *s = NULL;
        for (int k = 0; k < n; k++)
            if (strlen(specs[k].name) == len && !strncmp(specs[k].name, a, len)) s = &specs[k];
        if (!s) {
            snprintf(err, errn, "unknown option '--%.*s' (see --help)", (int)len, a);
            return -1;
        }
        const char *v;
        if (eq) v = eq + 1;
        else if (s->kind == ARG_FLAG) v = "true";
        else if (i + 1 < argc) v = argv[++i];
        else {
            snprintf(err, errn, "option --%s needs a value", s->name);
            return -1;
        }
        if (set_value(s, v, err, errn)) return -1;
        if (set) set[s - specs] = true;
    }
    return 0;
}

void args_usage(const arg_spec *specs, int n) {
    for (int k = 0; k < n; k++) {
        const char *meta = specs[k].kind == ARG_INT ? " N" : specs[k].kind == ARG_DOUBLE ? " X"
                           : specs[k].kind == ARG_STRING ? " S" : "";
        char left[64];
        snprintf(left, sizeof left, "--%s%s", specs[k].name, meta);
        printf("  %-22s %s\n", left, specs[k].help);
    }
}

const char *args_value(const arg_spec *s, char *buf, size_t n) {
    switch (s->kind) {
    case ARG_INT: snprintf(buf, n, "%ld", *(long *)s->dst); return buf;
    case ARG_DOUBLE: {
        double v = *(double *)s->dst;
        if (isnan(v)) return NULL;
        snprintf(buf, n, "%.15g", v); /* shortest that reads back */
        if (strtod(buf, NULL) != v) snprintf(buf, n, "%.17g", v);
        return buf;
    }
    case ARG_STRING: return *(const char **)s->dst;
    case ARG_FLAG: return *(bool *)s->dst ? "true" : "false";
    }
    return NULL;
}

int args_list(const char *s, double *out, int max) {
    int n = 0;
    while (s && *s) {
        char *end;
        errno = 0;
        double x = strtod(s, &end);
        if (end == s || errno || n >= max) return -1;
        out[n++] = x;
        if (*end == '\0') break;
        if (*end != ',' || end[1] == '\0') return -1; /* "128,": a size is missing */
        s = end + 1;
    }
    return n;
}
