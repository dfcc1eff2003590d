/* linear.c - y = x @ W^T + b (nn.functional.linear): one GEMM forward, at most three back.
 * Under bfloat16 autocast (or with a bfloat16 x or W) the three GEMMs take their operands
 * rounded to bfloat16 and sum in float32, as PyTorch's autocast runs them; the bias is rounded
 * too (PyTorch casts it), y and every gradient stay float32. */
#include "ops_internal.h"
#include "../kernels/bf16.h"
#include "../kernels/kernels.h"

/* dx = gy @ W, dW += gy^T @ x, db += sum over rows of gy; products in the forward's type. */
static void linear_backward(nb_node *n) {
    nb_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    nb_dtype ct = (nb_dtype)n->arg.i[0];
    const float *gy = nb_f32(n->out->grad);
    int64_t out_f = w->shape[0], in_f = w->shape[1], rows = nb__numel(x->ndim - 1, x->shape);
    float beta, *g;
    if (nb__wants_grad(x) && (g = nb__grad(x, &beta)))
        nb_k_gemm_ex(ct, false, false, rows, in_f, out_f, 1.0f, nb_k_f32_operand(gy, out_f),
                     nb_k_tensor_operand(w, 0, in_f), beta, g, in_f);
    if (nb__wants_grad(w) && (g = nb__grad(w, &beta)))
        nb_k_gemm_ex(ct, true, false, out_f, in_f, rows, 1.0f, nb_k_f32_operand(gy, out_f),
                     nb_k_tensor_operand(x, 0, in_f), beta, g, in_f);
    if (nb__wants_grad(b) && (g = nb__grad(b, &beta))) nb_k_sum_rows(g, gy, rows, out_f, beta);
}

nb_tensor *nb_linear(nb_arena *ar, nb_tensor *x, nb_tensor *w, nb_tensor *b) {
    if (!x || !w) return NULL;
    if (nb__check_float("linear", x, "input") || nb__check_float("linear", w, "weight")) return NULL;
    if (w->ndim != 2)
        return nb__null(NB_ESHAPE, "linear: weight must be 2-D [out, in], got %s", nb__shape(w, 0));
    int64_t out_f = w->shape[0], in_f = w->shape[1];
    if (x->ndim < 1 || x->shape[x->ndim - 1] != in_f)
        return nb__null(NB_ESHAPE, "linear: input has %lld features, expected %lld (input shape %s)",
                        x->ndim ? (long long)x->shape[x->ndim - 1] : 0LL, (long long)in_f,
                        nb__shape(x, 0));
    if (b && ((b->dtype != NB_FLOAT32 && b->dtype != NB_BF16) || b->ndim != 1 || b->shape[0] != out_f))
        return nb__null(NB_ESHAPE, "linear: bias has shape %s, expected [%lld]", nb__shape(b, 0),
                        (long long)out_f);
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = out_f;
    nb_tensor *y = nb__out(ar, NB_FLOAT32, x->ndim, shape);
    if (!y) return NULL;
    nb_dtype ct = nb__product_type(ar, x, w);
    int64_t rows = nb__numel(x->ndim - 1, x->shape); /* x->numel / in_f, also for in_f 0 */
    if (b) { /* y starts as rows of b (rounded to bfloat16 under autocast), then += x W^T */
        float *y0 = nb_f32(y);
        if (b->dtype == NB_BF16) nb_k_bf16_to_f32(y0, nb_bf16(b), out_f);
        else if (ct == NB_BF16) nb_k_bf16_round_acc(y0, nb_f32(b), out_f, 0.0f);
        else memcpy(y0, nb_f32(b), sizeof(float) * (size_t)out_f);
        for (int64_t r = 1; r < rows; r++) memcpy(y0 + r * out_f, y0, sizeof(float) * (size_t)out_f);
    }
    nb_k_gemm_ex(ct, false, true, rows, out_f, in_f, 1.0f, nb_k_tensor_operand(x, 0, in_f),
                 nb_k_tensor_operand(w, 0, in_f), b ? 1.0f : 0.0f, nb_f32(y), out_f);
    nb_node *n = b ? nb__record(ar, y, "linear", linear_backward, 3, NB_INPUTS(x, w, b))
                   : nb__record(ar, y, "linear", linear_backward, 2, NB_INPUTS(x, w));
    if (n) n->arg.i[0] = ct;
    return y;
}
