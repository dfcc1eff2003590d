/* softmax.c - softmax and log_softmax along a dim, forward and backward. */
#include "ops_internal.h"
#include "../kernels/softmax.h"

static void softmax_backward(nb_node *n) {
    int64_t outer, C, inner;
    nb__around(n->out, (int)n->arg.i[0], &outer, &C, &inner);
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_softmax_backward(g, nb_f32(n->out->grad), nb_f32(n->out), outer, C, inner,
                                 (int)n->arg.i[1], beta);
}

static nb_tensor *softmax_op(nb_arena *ar, nb_tensor *x, int dim, int log) {
    const char *op = log ? "log_softmax" : "softmax";
    if (!x) return NULL;
    if (nb__check_f32(op, x, "input")) return NULL;
    int d = x->ndim == 0 && (dim == 0 || dim == -1) ? 0 : nb__dim(op, dim, x->ndim);
    if (d < 0) return NULL;
    nb_tensor *y = nb__out_like(ar, x);
    if (!y) return NULL;
    int64_t outer, C, inner;
    nb__around(x, d, &outer, &C, &inner);
    nb_k_softmax(nb_f32(y), nb_f32(x), outer, C, inner, log);
    nb_node *n = nb__record(ar, y, op, softmax_backward, 1, &x);
    if (n) {
        n->arg.i[0] = d;
        n->arg.i[1] = log;
    }
    return y;
}

nb_tensor *nb_softmax(nb_arena *ar, nb_tensor *x, int dim) { return softmax_op(ar, x, dim, 0); }
nb_tensor *nb_log_softmax(nb_arena *ar, nb_tensor *x, int dim) { return softmax_op(ar, x, dim, 1); }
