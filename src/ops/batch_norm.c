/* batch_norm.c - F.batch_norm over the channel dim 1 of [N, C, ...].
 *   y = (x - mean) invstd w + b, computed as x a + (b - mean a) with a = invstd w.
 * Training uses the batch mean and biased variance and updates the running statistics in
 * place (unbiased variance, as PyTorch); eval uses the running statistics. Backward:
 *   training: dx = (dy - mean(dy) - xhat mean(dy xhat)) invstd w   (means over N*S)
 *   eval:     dx = dy invstd w
 *   dw = sum dy xhat, db = sum dy. */
#include <math.h>
#include "ops_internal.h"
#include "../kernels/norm.h"

typedef struct bn_saved {
    float *mean, *invstd;
    int64_t N, C, S;
    bool training, has_w, has_b;
} bn_saved;

static void bn_backward(nb_node *n) {
    const bn_saved *s = n->saved;
    nb_tensor *x = n->in[0], *w = s->has_w ? n->in[1] : NULL;
    nb_tensor *b = s->has_b ? n->in[s->has_w ? 2 : 1] : NULL;
    const float *gy = nb_f32(n->out->grad);
    double *sdy = nb__arena_alloc(n->out->internal.arena, sizeof(double) * (size_t)(2 * s->C + 1));
    if (!sdy) {
        nb__backward_fail();
        return;
    }
    double *sdyx = sdy + s->C;
    nb_k_channel_grad_sums(sdy, sdyx, gy, nb_f32(x), s->mean, s->N, s->C, s->S);
    float beta, *g;
    if (nb__wants_grad(x) && (g = nb__grad(x, &beta)))
        nb_k_batch_norm_backward(g, gy, nb_f32(x), s->mean, s->invstd, w ? nb_f32(w) : NULL, sdy,
                                 sdyx, s->N, s->C, s->S, s->training, beta);
    if (nb__wants_grad(w) && (g = nb__grad(w, &beta)))
        for (int64_t c = 0; c < s->C; c++) { /* beta 0: g is garbage (maybe NaN), never read it */
            float v = (float)(sdyx[c] * s->invstd[c]);
            g[c] = beta == 0.0f ? v : g[c] + v;
        }
    if (nb__wants_grad(b) && (g = nb__grad(b, &beta)))
        for (int64_t c = 0; c < s->C; c++) g[c] = beta == 0.0f ? (float)sdy[c] : g[c] + (float)sdy[c];
}

static int check_vec(const nb_tensor *t, const char *name, int64_t C) {
    if (t && (t->dtype != NB_FLOAT32 || t->numel != C))
        return nb__error(NB_ESHAPE, "batch_norm: %s should contain %lld elements not %lld", name,
                         (long long)C, (long long)t->numel);
    return NB_OK;
}

nb_tensor *nb_batch_norm(nb_arena *ar, nb_tensor *x, nb_tensor *rm, nb_tensor *rv, nb_tensor *w,
                         nb_tensor *b, bool training, double momentum, double eps) {
    if (!x) return NULL;
    if (nb__check_f32("batch_norm", x, "input")) return NULL;
    if (x->ndim < 2)
        return nb__null(NB_ESHAPE, "batch_norm: input must be [N, C, ...], got %s", nb__shape(x, 0));
    int64_t N = x->shape[0], C = x->shape[1], S = nb__numel(x->ndim - 2, x->shape + 2);
    if (check_vec(rm, "running_mean", C) || check_vec(rv, "running_var", C) ||
        check_vec(w, "weight", C) || check_vec(b, "bias", C))
        return NULL;
    if (!training && (!rm || !rv))
        return nb__null(NB_EINVAL, "batch_norm: running_mean must be defined in evaluation mode");
    if (training && N * S == 1)
        return nb__null(NB_EINVAL, "batch_norm: Expected more than 1 value per channel when "
                        "training, got input size %s", nb__shape(x, 0));
    if (!(eps > 0) && !(eps == 0))
        return nb__null(NB_EINVAL, "batch_norm: eps must be a number >= 0, got %s", nb__pyfloat(eps, 0));
    nb_tensor *y = nb__out_like(ar, x);
    if (!y) return NULL;
    bn_saved *s = nb__arena_alloc(ar, sizeof *s);
    float *buf = nb__arena_alloc(ar, sizeof(float) * (size_t)(4 * C + 1));
    double *st = nb__arena_alloc(ar, sizeof(double) * (size_t)(2 * C + 1));
    if (!s || !buf || !st) return NULL;
    *s = (bn_saved){buf, buf + C, N, C, S, training, w != NULL, b != NULL};
    float *a = buf + 2 * C, *shift = buf + 3 * C;
    if (training) {
        double *mean = st, *var = st + C, M = (double)(N * S);
        nb_k_channel_stats(mean, var, nb_f32(x), N, C, S);
        for (int64_t c = 0; c < C; c++) {
            s->mean[c] = (float)mean[c];
            s->invstd[c] = (float)(1.0 / sqrt(var[c] + eps));
            if (rm) nb_f32(rm)[c] = (float)(momentum * mean[c] + (1 - momentum) * nb_f32(rm)[c]);
            if (rv)
                nb_f32(rv)[c] = (float)(momentum * var[c] * M / (M - 1) + (1 - momentum) * nb_f32(rv)[c]);
        }
    } else {
        for (int64_t c = 0; c < C; c++) {
            s->mean[c] = nb_f32(rm)[c];
            s->invstd[c] = (float)(1.0 / sqrt((double)nb_f32(rv)[c] + eps));
        }
    }
    for (int64_t c = 0; c < C; c++) {
        a[c] = s->invstd[c] * (w ? nb_f32(w)[c] : 1.0f);
        shift[c] = (b ? nb_f32(b)[c] : 0.0f) - s->mean[c] * a[c];
    }
    nb_k_channel_affine(nb_f32(y), nb_f32(x), a, shift, N, C, S);
    nb_tensor *in[3] = {x};
    int nin = 1;
    if (w) in[nin++] = w;
    if (b) in[nin++] = b;
    nb_node *n = nb__record(ar, y, "batch_norm", bn_backward, nin, in);
    if (n) n->saved = s;
    return y;
}
