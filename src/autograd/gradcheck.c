/* gradcheck.c - compare analytic gradients with central finite differences.
 *
 * The scalar checked is s = sum(w * f(inputs)) with w a fixed random tensor in [-1, 1), so a
 * non-scalar output is checked along a random direction (every output element contributes).
 * The analytic gradient is ds/dx from one backward pass with upstream gradient w. The numeric
 * one perturbs each input element by +-eps, evaluates s in double from the float outputs, and
 * divides by the step actually taken in float: (s(x+) - s(x-)) / (x+ - x-).
 *
 * Why the defaults (eps 1e-2, atol 1e-2, rtol 1e-2) are reliable in float32 for inputs of
 * order 1: the truncation error is eps^2/6 |f'''| ~ 2e-5 |f'''|, and the rounding error of a
 * float32 output (~1e-7 relative, more after long sums) divided by 2 eps stays near 1e-5 of
 * the output's scale. Both are far below 1e-2, while a wrong derivative (a missing term,
 * factor or sign) is off by O(1). Keep inputs eps away from kinks (relu at 0, abs at 0,
 * clamp bounds, ties of max), where no finite difference is meaningful. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "autograd_internal.h"

nb_gradcheck_opts nb_gradcheck_defaults(void) {
    return (nb_gradcheck_opts){.eps = 1e-2, .atol = 1e-2, .rtol = 1e-2, .seed = 0};
}

typedef struct check {
    nb_gradcheck_fn f;
    nb_tensor *const *inputs;
    void *user;
    nb_arena *ar;
    const float *w;
    int64_t numel;
} check;

static int fn_failed(void) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", nb_last_error());
    return nb__error(NB_EINVAL, "gradcheck: the function failed: %s", msg);
}

/* *s = sum(w * f(inputs)) in double. */
static int eval(const check *c, double *s) {
    nb_arena_reset(c->ar);
    nb_tensor *y = c->f(c->ar, c->inputs, c->user);
    if (!y) return fn_failed();
    if (y->dtype != NB_FLOAT32 || y->numel != c->numel)
        return nb__error(NB_EINVAL, "gradcheck: the function's output changed to %s",
                         nb__shape(y, 0));
    *s = 0.0;
    for (int64_t i = 0; i < y->numel; i++) *s += (double)c->w[i] * nb_f32(y)[i];
    return NB_OK;
}

/* The analytic gradients of s into ana[i] for the inputs that require grad. Their own .grad
 * (pointer and contents) is set aside and restored afterwards. Makes c->w. */
static int analytic(check *c, int n, float **ana, uint64_t seed) {
    nb_tensor *const *in = c->inputs;
    nb_tensor *old[64] = {0};
    float *keep[64] = {0};
    int rc = NB_OK;
    for (int i = 0; i < n; i++)
        if (nb__wants_grad(in[i]) && in[i]->grad && (in[i]->grad->flags & NB_TENSOR_SPARSE))
            return nb__error(NB_EINVAL, "gradcheck: input %d has a sparse gradient: zero_grad it first", i);
    for (int i = 0; i < n; i++)
        if (nb__wants_grad(in[i]) && in[i]->grad) {
            size_t bytes = sizeof(float) * (size_t)in[i]->numel;
            if (!(keep[i] = nb__malloc(bytes ? bytes : 1))) {
                for (int j = 0; j < i; j++) nb__free(keep[j]);
                return NB_ENOMEM;
            }
            memcpy(keep[i], in[i]->grad->data, bytes);
        }
    for (int i = 0; i < n; i++)
        if (nb__wants_grad(in[i])) old[i] = in[i]->grad, in[i]->grad = NULL;
    nb_arena_reset(c->ar);
    nb_tensor *y = c->f(c->ar, in, c->user), *wt = NULL;
    float *w = NULL;
    if (!y) rc = fn_failed();
    else if (y->dtype != NB_FLOAT32)
        rc = nb__error(NB_EINVAL, "gradcheck: the function's output must be float32");
    else if (!(w = nb__malloc(sizeof(float) * (size_t)(y->numel ? y->numel : 1))))
        rc = NB_ENOMEM;
    if (rc == NB_OK) {
        c->numel = y->numel;
        c->w = w;
        nb_rng rng;
        nb_rng_seed(&rng, seed);
        for (int64_t k = 0; k < y->numel; k++) w[k] = 2.0f * nb_rng_uniform(&rng) - 1.0f;
        if (nb_tensor_requires_grad(y)) { /* else nothing depends on the inputs: all zero */
            wt = nb_from_array(c->ar, NB_FLOAT32, y->ndim, y->shape, w);
            rc = wt ? nb_backward_grad(y, wt) : NB_ENOMEM;
        }
    }
    for (int i = 0; i < n; i++) {
        if (!nb__wants_grad(in[i])) continue;
        size_t bytes = sizeof(float) * (size_t)in[i]->numel;
        if (rc == NB_OK && in[i]->grad && (in[i]->grad->flags & NB_TENSOR_SPARSE)) nb__sparse_dense(in[i]->grad, ana[i]);
        else if (rc == NB_OK && in[i]->grad) memcpy(ana[i], in[i]->grad->data, bytes);
        else if (rc == NB_OK) memset(ana[i], 0, bytes);
        in[i]->grad = old[i];
        if (keep[i]) memcpy(old[i]->data, keep[i], bytes);
        nb__free(keep[i]);
    }
    return rc;
}

int nb_gradcheck(nb_gradcheck_fn f, int n, nb_tensor *const *inputs, void *user,
                 const nb_gradcheck_opts *opts) {
    nb_gradcheck_opts o = opts ? *opts : nb_gradcheck_defaults();
    if (!f || !inputs || n <= 0 || n > 64)
        return nb__error(NB_EINVAL, "gradcheck: need a function and 1..64 inputs (got %d)", n);
    if (!(o.eps > 0) || !(o.atol >= 0) || !(o.rtol >= 0))
        return nb__error(NB_EINVAL, "gradcheck: eps must be > 0 and atol, rtol >= 0, got eps %g, "
                         "atol %g, rtol %g", o.eps, o.atol, o.rtol);
    int wanting = 0;
    for (int i = 0; i < n; i++) {
        if (!inputs[i]) return nb__error(NB_EINVAL, "gradcheck: input %d is NULL", i);
        if (!nb__wants_grad(inputs[i])) continue;
        if (inputs[i]->internal.node || inputs[i]->dtype != NB_FLOAT32)
            return nb__error(NB_EINVAL, "gradcheck: input %d must be a float32 leaf tensor", i);
        wanting++;
    }
    if (!wanting)
        return nb__error(NB_EINVAL, "gradcheck: expects at least one input to require grad");
    float *ana[64] = {0};
    check c = {f, inputs, user, nb_arena_new(0), NULL, 0};
    int rc = c.ar ? NB_OK : NB_ENOMEM;
    for (int i = 0; i < n && rc == NB_OK; i++) {
        size_t bytes = sizeof(float) * (size_t)inputs[i]->numel;
        if (nb__wants_grad(inputs[i]) && !(ana[i] = nb__malloc(bytes ? bytes : 1))) rc = NB_ENOMEM;
    }
    bool prev = nb_set_grad_enabled(true);
    if (rc == NB_OK) rc = analytic(&c, n, ana, o.seed);
    nb_set_grad_enabled(false); /* the finite differences need no tape */
    double worst = 0.0, worst_a = 0.0, worst_n = 0.0;
    int64_t worst_k = -1;
    int worst_i = -1;
    for (int i = 0; i < n && rc == NB_OK; i++) {
        if (!nb__wants_grad(inputs[i])) continue;
        float *x = nb_f32(inputs[i]);
        for (int64_t k = 0; k < inputs[i]->numel && rc == NB_OK; k++) {
            float x0 = x[k], xp = (float)(x0 + o.eps), xm = (float)(x0 - o.eps);
            double sp = 0.0, sm = 0.0;
            x[k] = xp;
            rc = eval(&c, &sp);
            x[k] = xm;
            if (rc == NB_OK) rc = eval(&c, &sm);
            x[k] = x0;
            double num = (sp - sm) / ((double)xp - (double)xm), a = ana[i][k];
            double r = fabs(a - num) / (o.atol + o.rtol * fabs(num));
            if (worst_k < 0 || !(r <= worst)) { /* a NaN on either side is the worst */
                worst = isnan(r) ? INFINITY : r;
                worst_i = i, worst_k = k, worst_a = a, worst_n = num;
            }
        }
    }
    nb_set_grad_enabled(prev);
    for (int i = 0; i < n; i++) nb__free(ana[i]);
    nb__free((void *)c.w);
    nb_arena_free(c.ar);
    if (rc != NB_OK) return rc;
    if (worst > 1.0)
        return nb__error(NB_EINVAL, "gradcheck: input %d element %lld: analytic %.7g, numeric "
                         "%.7g (|diff| %.3g > atol %g + rtol %g * |numeric|)", worst_i,
                         (long long)worst_k, worst_a, worst_n, fabs(worst_a - worst_n), o.atol,
                         o.rtol);
    return NB_OK;
}
