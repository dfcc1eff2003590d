/* fdcheck.h - nb_gradcheck as a Check assertion for the op tests: inputs is a NULL-padded
 * array (an optional bias may be NULL); only the leading non-NULL inputs are checked. */
#ifndef NABLA_TESTS_FDCHECK_H
#define NABLA_TESTS_FDCHECK_H

#include "common.h"

static inline void fd_check(const char *what, nb_gradcheck_fn f, int nin, nb_tensor *const *in,
                            void *ctx, double eps, double atol, double rtol) {
    int n = 0;
    while (n < nin && in[n]) n++;
    nb_gradcheck_opts o = nb_gradcheck_defaults();
    o.eps = eps;
    o.atol = atol;
    o.rtol = rtol;
    ck_assert_msg(nb_gradcheck(f, n, in, ctx, &o) == NB_OK, "%s: %s", what, nb_last_error());
}

#endif
