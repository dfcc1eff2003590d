/* dropout2d.c - channel ("feature") dropout: in training each plane x[n, c, ...] is zeroed
 * with probability p, the others scaled by 1/(1-p); one mask value per plane, applied again
 * by the backward. Identity in eval mode. */
#include "../core/internal.h"

static void dropout2d_backward(nb_node *n) {
    const float *mask = n->saved, *gy = nb_f32(n->out->grad);
    int64_t planes = n->arg.i[0], S = planes ? n->out->numel / planes : 0;
    float beta, *g = nb__grad(n->in[0], &beta);
    if (!g) return;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < S; i++) {
            float v = gy[p * S + i] * mask[p];
            g[p * S + i] = beta == 0.0f ? v : g[p * S + i] + v;
        }
}

nb_tensor *nb_dropout2d(nb_arena *ar, nb_tensor *x, float p, bool training, nb_rng *rng) {
    if (!x) return NULL;
    if (nb__check_f32("dropout2d", x, "input")) return NULL;
    if (!(p >= 0.0f && p <= 1.0f))
        return nb__null(NB_EINVAL, "dropout probability has to be between 0 and 1, but got %s",
                        nb__pyfloat32(p, 0));
    if (x->ndim < 2)
        return nb__null(NB_ESHAPE, "dropout2d: input must be [N, C, ...], got %s", nb__shape(x, 0));
    if (!training || p == 0.0f) return x;
    if (!rng) return nb__null(NB_EINVAL, "dropout2d: rng is NULL");
    int64_t planes = x->shape[0] * x->shape[1], S = planes ? x->numel / planes : 0;
    nb_tensor *y = nb__out_like(ar, x);
    float *mask = y ? nb__arena_alloc(ar, sizeof(float) * (size_t)(planes ? planes : 1)) : NULL;
    if (!mask) return NULL;
    float scale = p == 1.0f ? 0.0f : 1.0f / (1.0f - p);
    for (int64_t i = 0; i < planes; i++) mask[i] = nb_rng_uniform(rng) < p ? 0.0f : scale;
    for (int64_t i = 0; i < planes; i++)
        for (int64_t j = 0; j < S; j++) nb_f32(y)[i * S + j] = nb_f32(x)[i * S + j] * mask[i];
    nb_node *n = nb__record(ar, y, "dropout2d", dropout2d_backward, 1, &x);
    if (n) {
        n->saved = mask;
        n->arg.i[0] = planes;
    }
    return y;
}
