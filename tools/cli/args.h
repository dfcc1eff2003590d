/* args.h - a small table-driven parser for "--name value", "--name=value" and "--flag". */
#ifndef NABLA_CLI_ARGS_H
#define NABLA_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { ARG_INT, ARG_DOUBLE, ARG_STRING, ARG_FLAG } arg_kind;

typedef struct arg_spec {
    const char *name; /* without the leading "--" */
    arg_kind kind;
    void *dst;        /* long *, double *, const char **, bool * */
    const char *help;
    bool *given;      /* optional: set when the flag appears */
} arg_spec;

/* Parse argv[first..argc); on error writes a message to err and returns -1. */
int args_parse(int argc, char **argv, int first, const arg_spec *specs, int n, char *err, size_t errn);
/* Same, also setting set[k] for every spec k that appears (set has n entries). */
int args_parse_marking(int argc, char **argv, int first, const arg_spec *specs, int n, bool *set,
                       char *err, size_t errn);
/* Print "  --name VALUE  help" lines for every spec to stdout. */
void args_usage(const arg_spec *specs, int n);
/* The current value of a flag as its command-line word ("128", "0.001", "true"), in buf (n
 * bytes) or the flag's own string; NULL for an unset string or a NaN number ("the default"). */
const char *args_value(const arg_spec *s, char *buf, size_t n);
/* Parse "a,b,c" into up to max doubles; returns the count or -1. */
int args_list(const char *s, double *out, int max);

#endif
