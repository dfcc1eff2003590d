/* nll_loss.c - F.nll_loss: loss_i = -w_t logp[i, t] for target t (0 when t is ignore_index);
 * mean divides by sum_i w_{t_i} over the rows not ignored (NaN when that is 0, as PyTorch).
 * d loss_i / d logp[i, c] = -w_t [c == t]. */
#include "loss.h"

typedef struct nll {
    double scale;   /* 1/denominator for mean, 1 for sum/none */
    int32_t ignore;
    const float *w; /* class weights (an arena copy) or NULL */
    nb_reduction red;
} nll;

static void nll_backward(nb_node *n) {
    const nll *s = n->saved;
    nb_tensor *logp = n->in[0], *target = n->in[1];
    int64_t N = logp->shape[0], C = logp->shape[1];
    float *g = nb__grad_zeroed(logp);
    if (!g) return;
    const float *gy = nb_f32(n->out->grad);
    for (int64_t i = 0; i < N; i++) {
        int32_t t = nb_i32(target)[i];
        if (t == s->ignore) continue;
        double up = (s->red == NB_REDUCTION_NONE ? gy[i] : gy[0]) * s->scale;
        g[i * C + t] += (float)(-(s->w ? s->w[t] : 1.0) * up);
    }
}

nb_tensor *nb_nll_loss(nb_arena *ar, nb_tensor *logp, const nb_tensor *target,
                       const nb_cross_entropy_opts *opts) {
    if (!logp || !target) return NULL;
    nb_cross_entropy_opts o = opts ? *opts : nb_cross_entropy_defaults();
    o.label_smoothing = 0.0; /* not an argument of nll_loss */
    if (nb__check_class_target("nll_loss", logp, target, &o, false)) return NULL;
    int64_t N = logp->shape[0], C = logp->shape[1];
    nll *s = nb__arena_alloc(ar, sizeof *s);
    float *w = o.weight ? nb__arena_alloc(ar, sizeof(float) * (size_t)(C ? C : 1)) : NULL;
    nb_tensor *out = o.reduction == NB_REDUCTION_NONE ? nb__out(ar, NB_FLOAT32, 1, &N)
                                                      : nb__out(ar, NB_FLOAT32, 0, NULL);
    if (!s || (o.weight && !w) || !out) return NULL;
    if (w) memcpy(w, o.weight->data, sizeof(float) * (size_t)C); /* the caller may change it */
    s->ignore = o.ignore_index;
    s->red = o.reduction;
    s->w = w;
    double total = 0, denom = 0;
    for (int64_t i = 0; i < N; i++) {
        int32_t t = nb_i32(target)[i];
        double li = 0.0, wt = w ? w[t < 0 || t >= C ? 0 : t] : 1.0;
        if (t != s->ignore) {
            li = -wt * nb_f32(logp)[i * C + t];
            denom += wt;
        }
        if (o.reduction == NB_REDUCTION_NONE) nb_f32(out)[i] = (float)li;
        total += li;
    }
    s->scale = o.reduction == NB_REDUCTION_MEAN ? 1.0 / denom : 1.0;
    if (o.reduction != NB_REDUCTION_NONE) nb_f32(out)[0] = (float)(total * s->scale);
    nb_node *n = nb__record(ar, out, "nll_loss", nll_backward, 2,
                            NB_INPUTS(logp, (nb_tensor *)target));
    if (n) n->saved = s;
    return out;
}
