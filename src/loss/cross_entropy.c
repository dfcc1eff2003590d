/* cross_entropy.c - F.cross_entropy fused with log_softmax.
 *
 * With class weights w, smoothing eps and C classes, row i with target t has coefficients
 *   a_c = (1-eps) w_t [c == t] + (eps/C) w_c,   loss_i = -sum_c a_c log p_c,
 * and d loss_i / d x_k = p_k sum_c a_c - a_k. Mean reduction divides by sum_i w_{t_i} over
 * rows that are not ignored (PyTorch uses that one denominator for both terms). Probability
 * targets (float [N, C]) use a_c = w_c ((1-eps) t_c + eps/C) and mean divides by N. */
#include <math.h>
#include "loss.h"
#include "../kernels/softmax.h"

typedef struct xent {
    float *p;       /* softmax of the logits [N, C] */
    double scale;   /* 1/denominator for mean, 1 for sum/none */
    double eps;
    int32_t ignore;
    const float *w; /* class weights or NULL (copied into the arena) */
    nb_reduction red;
} xent;

nb_cross_entropy_opts nb_cross_entropy_defaults(void) {
    return (nb_cross_entropy_opts){NB_REDUCTION_MEAN, -100, 0.0, NULL};
}

static double wt(const xent *s, int64_t c) { return s->w ? s->w[c] : 1.0; }

static void xent_backward(nb_node *n) {
    const xent *s = n->saved;
    nb_tensor *logits = n->in[0], *target = n->in[1];
    int64_t N = logits->shape[0], C = logits->shape[1];
    float beta, *g = nb__grad(logits, &beta);
    if (!g) return;
    const float *gy = nb_f32(n->out->grad);
    bool soft = target->dtype == NB_FLOAT32;
    double sw = 0; /* sum of class weights */
    for (int64_t c = 0; c < C; c++) sw += wt(s, c);
    for (int64_t i = 0; i < N; i++) {
        float *gi = g + i * C;
        const float *pi = s->p + i * C;
        double up = (s->red == NB_REDUCTION_NONE ? gy[i] : gy[0]) * s->scale;
        int32_t t = soft ? 0 : nb_i32(target)[i];
        if (!soft && t == s->ignore) up = 0.0;
        double asum; /* sum_c a_c */
        if (soft) {
            const float *ti = nb_f32(target) + i * C;
            asum = 0;
            for (int64_t c = 0; c < C; c++) asum += wt(s, c) * ((1 - s->eps) * ti[c] + s->eps / C);
            for (int64_t c = 0; c < C; c++) {
                double a = wt(s, c) * ((1 - s->eps) * ti[c] + s->eps / C);
                float v = (float)(up * (pi[c] * asum - a));
                gi[c] = beta == 0.0f ? v : gi[c] + v; /* beta 0: gi is garbage */
            }
            continue;
        }
        asum = up == 0.0 ? 0.0 : (1 - s->eps) * wt(s, t) + s->eps / C * sw;
        for (int64_t c = 0; c < C; c++) {
            double a = (s->eps / C) * wt(s, c) + (c == t ? (1 - s->eps) * wt(s, t) : 0.0);
            float v = up == 0.0 ? 0.0f : (float)(up * (pi[c] * asum - a));
            gi[c] = beta == 0.0f ? v : gi[c] + v; /* beta 0: gi is garbage */
        }
    }
}

nb_tensor *nb_cross_entropy(nb_arena *ar, nb_tensor *logits, const nb_tensor *target,
                            const nb_cross_entropy_opts *opts) {
    if (!logits || !target) return NULL;
    nb_cross_entropy_opts o = opts ? *opts : nb_cross_entropy_defaults();
    if (nb__check_class_target("cross_entropy", logits, target, &o, true)) return NULL;
    int64_t N = logits->shape[0], C = logits->shape[1];
    bool soft = target->dtype == NB_FLOAT32;
    xent *s = nb__arena_alloc(ar, sizeof *s);
    double *lse = nb__arena_alloc(ar, sizeof(double) * (size_t)(N ? N : 1));
    if (!s || !lse) return NULL;
    s->p = nb__arena_alloc(ar, sizeof(float) * (size_t)(N * C > 0 ? N * C : 1));
    if (!s->p) return NULL;
    s->eps = o.label_smoothing;
    s->ignore = o.ignore_index;
    s->red = o.reduction;
    s->w = o.weight ? nb_f32(o.weight) : NULL;
    nb_k_softmax_rows(s->p, lse, nb_f32(logits), N, C);
    nb_tensor *out = o.reduction == NB_REDUCTION_NONE ? nb__out(ar, NB_FLOAT32, 1, &N)
                                                      : nb__out(ar, NB_FLOAT32, 0, NULL);
    if (!out) return NULL;
    const float *x = nb_f32(logits);
    double total = 0, denom = 0;
    for (int64_t i = 0; i < N; i++) {
        const float *xi = x + i * C;
        double li = 0; /* -sum_c a_c (x_c - lse) */
        if (soft) {
            const float *ti = nb_f32(target) + i * C;
            for (int64_t c = 0; c < C; c++)
                li -= wt(s, c) * ((1 - s->eps) * ti[c] + s->eps / C) * ((double)xi[c] - lse[i]);
            denom += 1;
        } else {
            int32_t t = nb_i32(target)[i];
            if (t != s->ignore) {
                li = -(1 - s->eps) * wt(s, t) * ((double)xi[t] - lse[i]);
                if (s->eps > 0)
                    for (int64_t c = 0; c < C; c++)
                        li -= s->eps / C * wt(s, c) * ((double)xi[c] - lse[i]);
                denom += wt(s, t);
            }
        }
        if (o.reduction == NB_REDUCTION_NONE) nb_f32(out)[i] = (float)li;
        total += li;
    }
    s->scale = o.reduction == NB_REDUCTION_MEAN ? 1.0 / denom : 1.0;
    if (o.reduction != NB_REDUCTION_NONE) nb_f32(out)[0] = (float)(total * s->scale);
    if (s->w) { /* the caller's weight tensor may change before backward: keep a copy */
        float *w = nb__arena_alloc(ar, sizeof(float) * (size_t)C);
        if (!w) return NULL;
        memcpy(w, s->w, sizeof(float) * (size_t)C);
        s->w = w;
    }
    nb_node *n = nb__record(ar, out, "cross_entropy", xent_backward, 2,
                            NB_INPUTS(logits, (nb_tensor *)target));
    if (n) n->saved = s;
    return out;
}
