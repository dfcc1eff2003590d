/* fdcheck.h - a finite-difference gradient check for the tests of individual ops (until
 * nb_gradcheck is in the library): compares the analytic gradient of sum(r * f(inputs)), r a
 * fixed random tensor, with central differences for every element of every input that
 * requires grad. Inputs are heap float tensors; they are restored. */
#ifndef NABLA_TESTS_FDCHECK_H
#define NABLA_TESTS_FDCHECK_H

#include <math.h>
#include "common.h"

typedef nb_tensor *(*fd_fn)(nb_arena *ar, nb_tensor *const *in, void *ctx);

static inline double fd_project(fd_fn f, nb_tensor *const *in, void *ctx, const float *r, nb_arena *ar) {
    nb_arena_reset(ar);
    bool prev = nb_set_grad_enabled(false);
    nb_tensor *y = f(ar, in, ctx);
    nb_set_grad_enabled(prev);
    ck_assert_msg(y != NULL, "fdcheck: forward failed: %s", nb_last_error());
    double s = 0;
    for (int64_t i = 0; i < y->numel; i++) s += (double)r[i] * nb_f32(y)[i];
    return s;
}

/* ck_assert that every gradient element satisfies |analytic - numeric| <= atol + rtol |numeric|. */
static inline void fd_check(const char *what, fd_fn f, int nin, nb_tensor *const *in, void *ctx,
                     double eps, double atol, double rtol) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *y = f(ar, in, ctx);
    ck_assert_msg(y != NULL, "%s: forward failed: %s", what, nb_last_error());
    nb_rng rng;
    nb_rng_seed(&rng, 1234);
    nb_tensor *r = nb_uniform(NULL, y->ndim, y->shape, -1.0f, 1.0f, &rng);
    for (int k = 0; k < nin; k++)
        if (in[k] && in[k]->grad) nb_fill(in[k]->grad, 0.0f);
    ck_assert_msg(nb_backward_grad(y, r) == NB_OK, "%s: backward failed: %s", what, nb_last_error());
    for (int k = 0; k < nin; k++) {
        nb_tensor *t = in[k];
        if (!t || !nb_tensor_requires_grad(t)) continue;
        ck_assert_msg(t->grad != NULL, "%s: input %d has no gradient", what, k);
        nb_tensor *analytic = nb_clone(NULL, t->grad);
        for (int64_t j = 0; j < t->numel; j++) {
            float keep = nb_f32(t)[j];
            nb_f32(t)[j] = keep + (float)eps;
            double hi = (double)nb_f32(t)[j] - keep;
            double lp = fd_project(f, in, ctx, nb_f32(r), ar);
            nb_f32(t)[j] = keep - (float)eps;
            double lo = keep - (double)nb_f32(t)[j];
            double lm = fd_project(f, in, ctx, nb_f32(r), ar);
            nb_f32(t)[j] = keep;
            double num = (lp - lm) / (hi + lo), a = nb_f32(analytic)[j];
            ck_assert_msg(fabs(a - num) <= atol + rtol * fabs(num),
                          "%s: d/d input %d [%lld]: analytic %.6g, numeric %.6g", what, k,
                          (long long)j, a, num);
        }
        nb_tensor_free(analytic);
    }
    nb_tensor_free(r);
    nb_arena_free(ar);
}

#endif
