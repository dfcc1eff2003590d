/* dropout.c - inverted dropout: in training, zero each element (F.dropout) or each whole
 * channel x[n, c, ...] (F.dropout2d) with probability p and scale the rest by 1/(1-p); one
 * mask value per element or per channel plane, applied again by the backward. Identity in eval
 * mode. F.dropout is the case of planes of one element. */
#include "ops_internal.h"
#include "../kernels/kernels.h"

/* y[p, i] = x[p, i] * mask[p] over planes of S elements (S == 1: elementwise). */
static void apply_mask(float *y, const float *x, const float *mask, int64_t planes, int64_t S,
                       float beta) {
    if (S == 1) {
        nb_k_mul_acc(y, x, mask, planes, beta);
        return;
    }
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < S; i++) {
            float v = x[p * S + i] * mask[p];
            y[p * S + i] = beta == 0.0f ? v : y[p * S + i] + v;
        }
}

static void dropout_backward(nb_node *n) {
    int64_t planes = n->arg.i[0], S = planes ? n->out->numel / planes : 0;
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) apply_mask(g, nb_f32(n->out->grad), n->saved, planes, S, beta);
}

static nb_tensor *dropout(nb_arena *ar, const char *op, nb_tensor *x, float p, bool training,
                          nb_rng *rng, bool channels) {
    if (!x) return NULL;
    if (nb__check_f32(op, x, "input")) return NULL;
    if (!(p >= 0.0f && p <= 1.0f))
        return nb__null(NB_EINVAL, "dropout probability has to be between 0 and 1, but got %s",
                        nb__pyfloat32(p, 0));
    if (channels && x->ndim < 2)
        return nb__null(NB_ESHAPE, "%s: input must be [N, C, ...], got %s", op, nb__shape(x, 0));
    if (!training || p == 0.0f) return x; /* identity: no copy, no node */
    if (!rng) return nb__null(NB_EINVAL, "%s: rng is NULL", op);
    int64_t planes = channels ? x->shape[0] * x->shape[1] : x->numel;
    int64_t S = planes ? x->numel / planes : 0;
    nb_tensor *y = nb__out_like(ar, x);
    float *mask = y ? nb__arena_alloc(ar, sizeof(float) * (size_t)(planes ? planes : 1)) : NULL;
    if (!mask) return NULL;
    float scale = p == 1.0f ? 0.0f : 1.0f / (1.0f - p);
    for (int64_t i = 0; i < planes; i++) mask[i] = nb_rng_uniform(rng) < p ? 0.0f : scale;
    apply_mask(nb_f32(y), nb_f32(x), mask, planes, S, 0.0f);
    nb_node *n = nb__record(ar, y, op, dropout_backward, 1, &x);
    if (n) {
        n->saved = mask;
        n->arg.i[0] = planes;
    }
    return y;
}

nb_tensor *nb_dropout(nb_arena *ar, nb_tensor *x, float p, bool training, nb_rng *rng) {
    return dropout(ar, "dropout", x, p, training, rng, false);
}

nb_tensor *nb_dropout2d(nb_arena *ar, nb_tensor *x, float p, bool training, nb_rng *rng) {
    return dropout(ar, "dropout2d", x, p, training, rng, true);
}
