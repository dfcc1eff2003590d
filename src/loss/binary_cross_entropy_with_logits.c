/* binary_cross_entropy_with_logits.c - F.binary_cross_entropy_with_logits on logits x, with
 * sp(-x) = log(1 + e^-x) computed stably as log1p(e^-|x|) + max(-x, 0) and p = pos_weight:
 *   l     = w ((1-t) x + (1 + (p-1) t) sp(-x))
 *   dl/dx = w ((p t + 1 - t) sigmoid(x) - p t)
 *   dl/dt = w (-x + (p-1) sp(-x))
 * Without pos_weight the p terms are left out rather than computed with p = 1, as PyTorch does:
 * (p-1) t is NaN for an infinite t. */
#include <math.h>
#include "pointwise.h"

nb_tensor *nb_binary_cross_entropy_with_logits(nb_arena *ar, nb_tensor *x, nb_tensor *t,
                                               const nb_tensor *weight,
                                               const nb_tensor *pos_weight, nb_reduction red) {
    if (!x || !t) return NULL;
    const char *op = "binary_cross_entropy_with_logits";
    nb_ploss p;
    if (nb__ploss_begin(ar, op, x, t, red, false, &p)) return NULL;
    const float *w = weight ? nb__ploss_expand(ar, op, "weight", weight, x) : NULL;
    if (weight && !w) return NULL;
    const float *pw = pos_weight ? nb__ploss_expand(ar, op, "pos_weight", pos_weight, x) : NULL;
    if (pos_weight && !pw) return NULL;
    const float *xs = nb_f32(x), *ts = nb_f32(t);
    for (int64_t i = 0; i < p.n; i++) {
        double xi = xs[i], ti = ts[i], wi = w ? w[i] : 1.0;
        double sp = log1p(exp(-fabs(xi))) + fmax(-xi, 0.0);
        double sig = 1.0 / (1.0 + exp(-xi));
        if (pw) {
            double pi = pw[i];
            p.l[i] = (float)(wi * ((1 - ti) * xi + (1 + (pi - 1) * ti) * sp));
            p.dx[i] = (float)(wi * ((pi * ti + 1 - ti) * sig - pi * ti));
            if (p.dt) p.dt[i] = (float)(wi * (-xi + (pi - 1) * sp));
        } else {
            p.l[i] = (float)(wi * ((1 - ti) * xi + sp));
            p.dx[i] = (float)(wi * (sig - ti));
            if (p.dt) p.dt[i] = (float)(wi * -xi);
        }
    }
    return nb__ploss_finish(ar, op, x, t, red, &p);
}
