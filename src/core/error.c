/* error.c - the thread-local last error. */
#include <stdio.h>
#include "internal.h"

static _Thread_local char last_msg[512];
static _Thread_local nb_status last_st = NB_OK;

static void set_error(nb_status st, const char *fmt, va_list ap) {
    last_st = st;
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
}

int nb__error(nb_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error(st, fmt, ap);
    va_end(ap);
    return st;
}

void *nb__null(nb_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error(st, fmt, ap);
    va_end(ap);
    return NULL;
}

const char *nb_last_error(void) { return last_msg; }
nb_status nb_last_status(void) { return last_st; }

void nb_clear_error(void) {
    last_st = NB_OK;
    last_msg[0] = '\0';
}

const char *nb_status_str(nb_status s) {
    switch (s) {
    case NB_OK: return "ok";
    case NB_EINVAL: return "invalid argument";
    case NB_ESHAPE: return "shape mismatch";
    case NB_ENOMEM: return "out of memory";
    case NB_EIO: return "I/O error";
    case NB_EFORMAT: return "malformed file";
    case NB_ESTATE: return "invalid state";
    }
    return "unknown error";
}
