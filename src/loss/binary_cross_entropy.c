/* binary_cross_entropy.c - F.binary_cross_entropy on probabilities x in [0, 1]:
 *   l = -w (t max(log x, -100) + (1-t) max(log(1-x), -100))
 *   dl/dx = w (x - t) / max(x (1-x), 1e-12)          (PyTorch's clamped form)
 *   dl/dt = w (log(1-x) - log x)                     (-logit(x), unclamped, as PyTorch) */
#include <math.h>
#include "pointwise.h"

nb_tensor *nb_binary_cross_entropy(nb_arena *ar, nb_tensor *x, nb_tensor *t, const nb_tensor *weight,
                                   nb_reduction red) {
    if (!x || !t) return NULL;
    const char *op = "binary_cross_entropy";
    nb_ploss p;
    if (nb__ploss_begin(ar, op, x, t, red, false, &p)) return NULL;
    const float *xs = nb_f32(x), *ts = nb_f32(t);
    for (int64_t i = 0; i < p.n; i++)
        if (!(xs[i] >= 0.0f && xs[i] <= 1.0f))
            return nb__null(NB_EINVAL, "%s: all elements of input should be between 0 and 1", op);
    const float *w = weight ? nb__ploss_expand(ar, op, "weight", weight, x) : NULL;
    if (weight && !w) return NULL;
    for (int64_t i = 0; i < p.n; i++) {
        double xi = xs[i], ti = ts[i], wi = w ? w[i] : 1.0;
        double lx = fmax(log(xi), -100.0), l1x = fmax(log1p(-xi), -100.0);
        p.l[i] = (float)(-wi * (ti * lx + (1 - ti) * l1x));
        p.dx[i] = (float)(wi * (xi - ti) / fmax(xi * (1 - xi), 1e-12));
        if (p.dt) p.dt[i] = (float)(wi * (log1p(-xi) - log(xi)));
    }
    return nb__ploss_finish(ar, op, x, t, red, &p);
}
