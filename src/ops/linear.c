/* linear.c - y = x @ W^T + b (nn.functional.linear): one GEMM forward, at most three back. */
#include "ops_internal.h"
#include "../kernels/kernels.h"

/* dx = gy @ W, dW += gy^T @ x, db += sum over rows of gy. */
static void linear_backward(nb_node *n) {
    nb_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    const float *gy = nb_f32(n->out->grad);
    int64_t out_f = w->shape[0], in_f = w->shape[1], rows = nb__numel(x->ndim - 1, x->shape);
    float beta, *g;
    if (nb__wants_grad(x) && (g = nb__grad(x, &beta)))
        nb_k_gemm(false, false, rows, in_f, out_f, 1.0f, gy, out_f, nb_f32(w), in_f, beta, g, in_f);
    if (nb__wants_grad(w) && (g = nb__grad(w, &beta)))
        nb_k_gemm(true, false, out_f, in_f, rows, 1.0f, gy, out_f, nb_f32(x), in_f, beta, g, in_f);
    if (nb__wants_grad(b) && (g = nb__grad(b, &beta))) nb_k_sum_rows(g, gy, rows, out_f, beta);
}

nb_tensor *nb_linear(nb_arena *ar, nb_tensor *x, nb_tensor *w, nb_tensor *b) {
    if (!x || !w) return NULL;
    if (nb__check_f32("linear", x, "input") || nb__check_f32("linear", w, "weight")) return NULL;
    if (w->ndim != 2)
        return nb__null(NB_ESHAPE, "linear: weight must be 2-D [out, in], got %s", nb__shape(w, 0));
    int64_t out_f = w->shape[0], in_f = w->shape[1];
    if (x->ndim < 1 || x->shape[x->ndim - 1] != in_f)
        return nb__null(NB_ESHAPE, "linear: input has %lld features, expected %lld (input shape %s)",
                        x->ndim ? (long long)x->shape[x->ndim - 1] : 0LL, (long long)in_f,
                        nb__shape(x, 0));
    if (b && (b->dtype != NB_FLOAT32 || b->ndim != 1 || b->shape[0] != out_f))
        return nb__null(NB_ESHAPE, "linear: bias has shape %s, expected [%lld]", nb__shape(b, 0),
                        (long long)out_f);
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = out_f;
    nb_tensor *y = nb__out(ar, NB_FLOAT32, x->ndim, shape);
    if (!y) return NULL;
    int64_t rows = nb__numel(x->ndim - 1, x->shape); /* x->numel / in_f, also for in_f 0 */
    if (b) nb_k_bcast_rows(nb_f32(y), nb_f32(b), rows, out_f);
    nb_k_gemm(false, true, rows, out_f, in_f, 1.0f, nb_f32(x), in_f, nb_f32(w), in_f,
              b ? 1.0f : 0.0f, nb_f32(y), out_f);
    if (b) nb__record(ar, y, "linear", linear_backward, 3, NB_INPUTS(x, w, b));
    else nb__record(ar, y, "linear", linear_backward, 2, NB_INPUTS(x, w));
    return y;
}
