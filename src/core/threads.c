/* threads.c - one setting for every thread pool nabla uses, and the version. */
#include "internal.h"

#ifdef NB_HAVE_OPENBLAS
void openblas_set_num_threads(int num_threads);
#endif

static _Atomic int num_threads = 1;

int nb_set_num_threads(int n) {
    if (n < 1) return nb__error(NB_EINVAL, "set_num_threads: %d must be >= 1", n);
    num_threads = n;
#ifdef NB_HAVE_OPENBLAS
    openblas_set_num_threads(n);
#endif
    return NB_OK;
}

int nb_get_num_threads(void) { return num_threads; }
int nb__num_threads(void) { return num_threads; }

const char *nb_blas_backend(void) {
#ifdef NB_HAVE_OPENBLAS
    return "openblas";
#else
    return "builtin";
#endif
}

const char *nb_version(void) { return NB_VERSION_STRING; }
