/* kl_div.c - F.kl_div(input, target): input holds log-probabilities.
 *   l = xlogy(t, t) - t x          dl/dx = -t     dl/dt = log t + 1 - x
 *   (xlogy(0, y) = 0; at t == 0 dl/dt is NaN, as PyTorch's autograd gives)
 * with log_target (target holds log-probabilities):
 *   l = e^t (t - x)                dl/dx = -e^t   dl/dt = e^t (t - x + 1) */
#include <math.h>
#include "pointwise.h"

nb_tensor *nb_kl_div(nb_arena *ar, nb_tensor *x, nb_tensor *t, nb_reduction red, bool log_target) {
    if (!x || !t) return NULL;
    nb_ploss p;
    if (nb__ploss_begin(ar, "kl_div", x, t, red, true, &p)) return NULL;
    const float *xs = nb_f32(x), *ts = nb_f32(t);
    for (int64_t i = 0; i < p.n; i++) {
        double xi = xs[i], ti = ts[i];
        if (log_target) {
            double e = exp(ti);
            p.l[i] = (float)(e * (ti - xi));
            p.dx[i] = (float)-e;
            if (p.dt) p.dt[i] = (float)(e * (ti - xi + 1));
        } else {
            double xl = ti == 0 && !isnan(ti) ? 0.0 : ti * log(ti);
            p.l[i] = (float)(xl - ti * xi);
            p.dx[i] = (float)-ti;
            if (p.dt) p.dt[i] = (float)((ti != 0 ? log(ti) + 1 : NAN) - xi);
        }
    }
    return nb__ploss_finish(ar, "kl_div", x, t, red, &p);
}
