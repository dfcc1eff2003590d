/* softplus.c - the worked example of docs/internals.md, "How to add an op".
 *
 * In the tree an op is three pieces: its loops in src/kernels/ (here: activation.c, declared in
 * activation.h), the op itself in src/ops/ (activation.c), and one declaration in
 * include/nabla/tensor.h. Here the three sit in one file and the op is called ex_softplus,
 * so the example never clashes with the library. tests/test_docs.c checks it. */
#include <math.h>
#include "../../src/ops/ops_internal.h" /* nb__record, nb__grad, nb__tensor_like, nb__error */
#include "softplus.h"

/* ---- the kernels: plain loops, no allocation, no autograd ---------------------------------- */
/* y = log(1 + e^(beta x)) / beta, or x where beta x > threshold (PyTorch's formula). */
static void k_softplus(float *y, const float *x, int64_t n, float beta, float threshold) {
    for (int64_t i = 0; i < n; i++) {
        float bx = x[i] * beta;
        y[i] = bx > threshold ? x[i] : log1pf(expf(bx)) / beta;
    }
}

/* gx = acc*gx + gy * sigmoid(beta x) (gy where beta x > threshold). acc is the beta of
 * nb__grad, renamed because softplus has a beta of its own: 0 write, 1 add. */
static void k_softplus_backward(float *gx, const float *gy, const float *x, int64_t n,
                                float beta, float threshold, float acc) {
    for (int64_t i = 0; i < n; i++) {
        float bx = x[i] * beta, z = expf(bx);
        float g = bx > threshold ? gy[i] : gy[i] * z / (z + 1.0f);
        gx[i] = acc == 0.0f ? g : gx[i] + g; /* acc 0: gx holds garbage, never read it */
    }
}

/* ---- the op: the backward, then the forward that records it -------------------------------- */
/* dL/dx = dL/dy * sigmoid(beta x): the chain rule with softplus' derivative. */
static void softplus_backward(nb_node *n) {
    float acc, *g = nb__grad(n->in[0], &acc);
    if (g) k_softplus_backward(g, nb_f32(n->out->grad), nb_f32(n->in[0]), n->out->numel,
                               (float)n->arg.f[0], (float)n->arg.f[1], acc);
}

nb_tensor *ex_softplus(nb_arena *ar, nb_tensor *x, float beta, float threshold) {
    if (!x) return NULL;                                    /* NULL in, NULL out, no error */
    if (nb__check_f32("softplus", x, "input")) return NULL; /* sets the error message */
    nb_tensor *y = nb__tensor_like(ar, x);                  /* the output lives in the arena */
    if (!y) return NULL;
    k_softplus(nb_f32(y), nb_f32(x), x->numel, beta, threshold);
    nb_node *n = nb__record(ar, y, "softplus", softplus_backward, 1, &x);
    if (n) n->arg.f[0] = beta, n->arg.f[1] = threshold;     /* NULL: nothing to save */
    return y;
}
