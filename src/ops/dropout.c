/* dropout.c - inverted dropout: in training, zero each element with probability p and scale
 * the rest by 1/(1-p); the backward applies the same mask. Identity in eval mode. */
#include "../core/internal.h"
#include "../kernels/kernels.h"

static void dropout_backward(nb_node *n) {
    const float *mask = n->saved, *gy = nb_f32(n->out->grad);
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_mul_acc(g, gy, mask, n->out->numel, beta);
}

nb_tensor *nb_dropout(nb_arena *ar, nb_tensor *x, float p, bool training, nb_rng *rng) {
    if (!x) return NULL;
    if (nb__check_f32("dropout", x, "input")) return NULL;
    if (!(p >= 0.0f && p <= 1.0f))
        return nb__null(NB_EINVAL, "dropout probability has to be between 0 and 1, but got %s",
                        nb__pyfloat32(p, 0));
    if (!training || p == 0.0f) return x; /* identity: no copy, no node */
    if (!rng) return nb__null(NB_EINVAL, "dropout: rng is NULL");
    nb_tensor *y = nb__out_like(ar, x);
    float *mask = nb__arena_alloc(ar, sizeof(float) * (size_t)(x->numel ? x->numel : 1));
    if (!y || !mask) return NULL;
    float scale = p == 1.0f ? 0.0f : 1.0f / (1.0f - p);
    for (int64_t i = 0; i < x->numel; i++) mask[i] = nb_rng_uniform(rng) < p ? 0.0f : scale;
    nb_k_mul_acc(nb_f32(y), nb_f32(x), mask, x->numel, 0.0f);
    nb_node *n = nb__record(ar, y, "dropout", dropout_backward, 1, &x);
    if (n) n->saved = mask;
    return y;
}
