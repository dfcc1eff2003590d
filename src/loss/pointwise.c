/* pointwise.c - reduction, recording and backward shared by the elementwise losses. */
#include "pointwise.h"

typedef struct ploss_saved {
    nb_ploss p;
    nb_reduction red;
    double scale; /* d(reduced)/d(l[i]): 1/n (mean), 1/N (batchmean), 1 (sum, none) */
} ploss_saved;

int nb__ploss_begin(nb_arena *ar, const char *op, const nb_tensor *x, const nb_tensor *t,
                    nb_reduction red, bool allow_batchmean, nb_ploss *p) {
    if (nb__check_f32(op, x, "input") || nb__check_f32(op, t, "target")) return NB_EINVAL;
    if (!nb_same_shape(x, t))
        return nb__error(NB_ESHAPE, "%s: Target size %s must be the same as input size %s", op,
                         nb__shape(t, 0), nb__shape(x, 1));
    if ((unsigned)red > NB_REDUCTION_BATCHMEAN)
        return nb__error(NB_EINVAL, "%s: %d is not a valid value for reduction", op, (int)red);
    if (red == NB_REDUCTION_BATCHMEAN && !allow_batchmean)
        return nb__error(NB_EINVAL, "%s: reduction 'batchmean' is only valid for kl_div", op);
    if (!ar)
        return nb__error(NB_EINVAL, "an op was given a NULL arena: ops write their output in an "
                         "arena (nb_arena_new)");
    p->n = x->numel;
    size_t bytes = sizeof(float) * (size_t)(p->n ? p->n : 1);
    p->l = nb__arena_alloc(ar, bytes);
    p->dx = nb__arena_alloc(ar, bytes);
    p->dt = nb__wants_grad(t) ? nb__arena_alloc(ar, bytes) : NULL;
    if (!p->l || !p->dx || (nb__wants_grad(t) && !p->dt)) return NB_ENOMEM;
    return NB_OK;
}

static void ploss_backward(nb_node *n) {
    const ploss_saved *s = n->saved;
    const float *gy = nb_f32(n->out->grad);
    for (int k = 0; k < 2; k++) {
        nb_tensor *in = n->in[k];
        const float *d = k ? s->p.dt : s->p.dx;
        float beta, *g;
        if (!d || !nb__wants_grad(in) || !(g = nb__grad(in, &beta))) continue;
        for (int64_t i = 0; i < s->p.n; i++) {
            float up = s->red == NB_REDUCTION_NONE ? gy[i] : (float)(gy[0] * s->scale);
            float v = up * d[i];
            g[i] = beta == 0.0f ? v : g[i] + v;
        }
    }
}

nb_tensor *nb__ploss_finish(nb_arena *ar, const char *op, nb_tensor *x, nb_tensor *t,
                            nb_reduction red, const nb_ploss *p) {
    nb_tensor *out = red == NB_REDUCTION_NONE ? nb__out_like(ar, x)
                                              : nb__out(ar, NB_FLOAT32, 0, NULL);
    ploss_saved *s = nb__arena_alloc(ar, sizeof *s);
    if (!out || !s) return NULL;
    s->p = *p;
    s->red = red;
    s->scale = red == NB_REDUCTION_MEAN ? 1.0 / (double)p->n
             : red == NB_REDUCTION_BATCHMEAN ? 1.0 / (double)(x->ndim ? x->shape[0] : 1) : 1.0;
    if (red == NB_REDUCTION_NONE) {
        memcpy(out->data, p->l, sizeof(float) * (size_t)p->n);
    } else {
        double sum = 0;
        for (int64_t i = 0; i < p->n; i++) sum += p->l[i];
        nb_f32(out)[0] = (float)(sum * s->scale);
    }
    nb_node *n = nb__record(ar, out, op, ploss_backward, 2, NB_INPUTS(x, t));
    if (n) n->saved = s;
    return out;
}

float *nb__ploss_expand(nb_arena *ar, const char *op, const char *what, const nb_tensor *w,
                        const nb_tensor *like) {
    bool ok = w->dtype == NB_FLOAT32 && w->ndim <= like->ndim;
    int off = like->ndim - w->ndim;
    for (int d = 0; ok && d < w->ndim; d++)
        ok = w->shape[d] == 1 || w->shape[d] == like->shape[off + d];
    if (!ok)
        return nb__null(NB_ESHAPE, "%s: %s of shape %s cannot be broadcast to the input's shape %s",
                        op, what, nb__shape(w, 0), nb__shape(like, 1));
    float *e = nb__arena_alloc(ar, sizeof(float) * (size_t)(like->numel ? like->numel : 1));
    if (!e) return NULL;
    for (int64_t i = 0; i < like->numel; i++) { /* index of element i in w, dims right-aligned */
        int64_t rem = i, wi = 0, wstride = 1;
        for (int d = like->ndim - 1; d >= off; d--) {
            int64_t c = rem % like->shape[d];
            rem /= like->shape[d];
            int64_t ws = w->shape[d - off];
            if (ws != 1) wi += c * wstride;
            wstride *= ws;
        }
        e[i] = nb_f32(w)[wi];
    }
    return e;
}
