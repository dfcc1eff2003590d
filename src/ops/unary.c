/* unary.c - neg, exp, log, sqrt, abs, pow, clamp: each forward with its backward. */
#include <math.h>
#include "ops_internal.h"
#include "../kernels/kernels.h"
#include "../kernels/unary.h"

/* ---- neg: dx = -dy ----------------------------------------------------------------------- */
static void neg_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_scale(g, nb_f32(n->out->grad), -1.0f, n->out->numel, beta);
}

nb_tensor *nb_neg(nb_arena *ar, nb_tensor *x) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "neg", x);
    if (!y) return NULL;
    nb_k_scale(nb_f32(y), nb_f32(x), -1.0f, x->numel, 0.0f);
    nb__record(ar, y, "neg", neg_backward, 1, &x);
    return y;
}

/* ---- exp: dx = dy y ---------------------------------------------------------------------- */
static void exp_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_mul_acc(g, nb_f32(n->out->grad), nb_f32(n->out), n->out->numel, beta);
}

nb_tensor *nb_exp(nb_arena *ar, nb_tensor *x) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "exp", x);
    if (!y) return NULL;
    nb_k_exp(nb_f32(y), nb_f32(x), x->numel);
    nb__record(ar, y, "exp", exp_backward, 1, &x);
    return y;
}

/* ---- log: dx = dy / x -------------------------------------------------------------------- */
static void log_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_log_backward(g, nb_f32(n->out->grad), nb_f32(n->in[0]), n->out->numel, beta);
}

nb_tensor *nb_log(nb_arena *ar, nb_tensor *x) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "log", x);
    if (!y) return NULL;
    nb_k_log(nb_f32(y), nb_f32(x), x->numel);
    nb__record(ar, y, "log", log_backward, 1, &x);
    return y;
}

/* ---- sqrt: dx = dy / (2 y) --------------------------------------------------------------- */
static void sqrt_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_sqrt_backward(g, nb_f32(n->out->grad), nb_f32(n->out), n->out->numel, beta);
}

nb_tensor *nb_sqrt(nb_arena *ar, nb_tensor *x) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "sqrt", x);
    if (!y) return NULL;
    nb_k_sqrt(nb_f32(y), nb_f32(x), x->numel);
    nb__record(ar, y, "sqrt", sqrt_backward, 1, &x);
    return y;
}

/* ---- abs: dx = dy sign(x) ---------------------------------------------------------------- */
static void abs_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_abs_backward(g, nb_f32(n->out->grad), nb_f32(n->in[0]), n->out->numel, beta);
}

nb_tensor *nb_abs(nb_arena *ar, nb_tensor *x) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "abs", x);
    if (!y) return NULL;
    nb_k_abs(nb_f32(y), nb_f32(x), x->numel);
    nb__record(ar, y, "abs", abs_backward, 1, &x);
    return y;
}

/* ---- pow: y = x^e; dx = dy e x^(e-1) ----------------------------------------------------- */
static void pow_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_pow_backward(g, nb_f32(n->out->grad), nb_f32(n->in[0]), (float)n->arg.f[0],
                             n->out->numel, beta);
}

nb_tensor *nb_pow(nb_arena *ar, nb_tensor *x, float e) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "pow", x);
    if (!y) return NULL;
    nb_k_pow(nb_f32(y), nb_f32(x), e, x->numel);
    nb_node *n = nb__record(ar, y, "pow", pow_backward, 1, &x);
    if (n) n->arg.f[0] = e;
    return y;
}

/* ---- clamp: dx = dy where lo <= x <= hi -------------------------------------------------- */
static void clamp_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_clamp_backward(g, nb_f32(n->out->grad), nb_f32(n->in[0]), (float)n->arg.f[0],
                               (float)n->arg.f[1], n->out->numel, beta);
}

nb_tensor *nb_clamp(nb_arena *ar, nb_tensor *x, float lo, float hi) {
    if (!x) return NULL;
    if (isnan(lo) || isnan(hi))
        return nb__null(NB_EINVAL, "clamp: min and max must not be NaN");
    nb_tensor *y = nb__out_f32(ar, "clamp", x);
    if (!y) return NULL;
    nb_k_clamp(nb_f32(y), nb_f32(x), lo, hi, x->numel);
    nb_node *n = nb__record(ar, y, "clamp", clamp_backward, 1, &x);
    if (n) {
        n->arg.f[0] = lo;
        n->arg.f[1] = hi;
    }
    return y;
}
