/* layer_norm.c - F.layer_norm: each row of the last dims (normalized_shape) is normalised to
 * mean 0, variance 1 (biased), then scaled by w and shifted by b elementwise.
 *   dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w;  dw = sum dy xhat;  db = sum dy. */
#include <math.h>
#include "ops_internal.h"
#include "../kernels/norm.h"

typedef struct ln_saved {
    float *mean, *rstd;
    int64_t R, M;
    bool has_w, has_b;
} ln_saved;

static void ln_backward(nb_node *n) {
    const ln_saved *s = n->saved;
    nb_tensor *x = n->in[0], *w = s->has_w ? n->in[1] : NULL;
    nb_tensor *b = s->has_b ? n->in[s->has_w ? 2 : 1] : NULL;
    const float *gy = nb_f32(n->out->grad);
    float beta, *g;
    if (nb__wants_grad(x) && (g = nb__grad(x, &beta)))
        nb_k_layer_norm_backward(g, gy, nb_f32(x), s->mean, s->rstd, w ? nb_f32(w) : NULL, s->R,
                                 s->M, beta);
    float bw = 0, bb = 0, *gw = NULL, *gb = NULL;
    if (nb__wants_grad(w)) gw = nb__grad(w, &bw);
    if (nb__wants_grad(b)) gb = nb__grad(b, &bb);
    if (gw || gb)
        nb_k_layer_norm_backward_params(gw, gb, gy, nb_f32(x), s->mean, s->rstd, s->R, s->M, bw, bb);
}

static bool shape_is(const nb_tensor *t, int nd, const int64_t *shape) {
    if (t->ndim != nd) return false;
    for (int i = 0; i < nd; i++)
        if (t->shape[i] != shape[i]) return false;
    return true;
}

nb_tensor *nb_layer_norm(nb_arena *ar, nb_tensor *x, int nshape, const int64_t *shape,
                         nb_tensor *w, nb_tensor *b, double eps) {
    if (!x) return NULL;
    if (nb__check_f32("layer_norm", x, "input")) return NULL;
    if (nshape < 1 || !shape)
        return nb__null(NB_EINVAL, "layer_norm: Expected normalized_shape to be at least "
                        "1-dimensional, i.e., containing at least one element, but got "
                        "normalized_shape = []");
    bool ok = nshape <= x->ndim;
    for (int i = 0; ok && i < nshape; i++) ok = x->shape[x->ndim - nshape + i] == shape[i];
    if (!ok)
        return nb__null(NB_ESHAPE, "layer_norm: Given normalized_shape=%s, expected input with "
                        "shape [*, %s, but got input of size%s", nb__shape_of(nshape, shape, 0),
                        nb__shape_of(nshape, shape, 1) + 1, nb__shape(x, 2));
    for (int k = 0; k < 2; k++) {
        const nb_tensor *p = k ? b : w;
        if (p && (p->dtype != NB_FLOAT32 || !shape_is(p, nshape, shape)))
            return nb__null(NB_ESHAPE, "layer_norm: Expected %s to be of same shape as "
                            "normalized_shape, but got %s of shape %s and normalized_shape = %s",
                            k ? "bias" : "weight", k ? "bias" : "weight", nb__shape(p, 0),
                            nb__shape_of(nshape, shape, 1));
    }
    int64_t M = nb__numel(nshape, shape), R = M ? x->numel / M : 0;
    nb_tensor *y = nb__out_like(ar, x);
    if (!y) return NULL;
    ln_saved *s = nb__arena_alloc(ar, sizeof *s);
    float *buf = nb__arena_alloc(ar, sizeof(float) * (size_t)(2 * R + 1));
    if (!s || !buf) return NULL;
    *s = (ln_saved){buf, buf + R, R, M, w != NULL, b != NULL};
    nb_k_layer_norm(nb_f32(y), s->mean, s->rstd, nb_f32(x), w ? nb_f32(w) : NULL,
                    b ? nb_f32(b) : NULL, R, M, eps);
    nb_tensor *in[3] = {x};
    int nin = 1;
    if (w) in[nin++] = w;
    if (b) in[nin++] = b;
    nb_node *n = nb__record(ar, y, "layer_norm", ln_backward, nin, in);
    if (n) n->saved = s;
    return y;
}
