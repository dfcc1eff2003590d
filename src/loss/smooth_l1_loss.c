/* smooth_l1_loss.c - F.smooth_l1_loss(beta): with d = x - t, z = |d|,
 *   l = z < beta ? 0.5 z^2 / beta : z - 0.5 beta,   dl/dx = clamp(d / beta, -1, 1),
 * dl/dt = -dl/dx; beta == 0 is the L1 loss. */
#include "pointwise.h"

nb_tensor *nb_smooth_l1_loss(nb_arena *ar, nb_tensor *x, nb_tensor *t, nb_reduction red,
                             double beta) {
    if (!x || !t) return NULL;
    if (!(beta >= 0))
        return nb__null(NB_EINVAL, "smooth_l1_loss does not support negative values for beta.");
    if (beta == 0) return nb_l1_loss(ar, x, t, red);
    nb_ploss p;
    if (nb__ploss_begin(ar, "smooth_l1_loss", x, t, red, false, &p)) return NULL;
    const float *xs = nb_f32(x), *ts = nb_f32(t);
    float b = (float)beta;
    for (int64_t i = 0; i < p.n; i++) {
        float d = xs[i] - ts[i], z = d < 0 ? -d : d;
        p.l[i] = z < b ? 0.5f * z * z / b : z - 0.5f * b;
        p.dx[i] = d < -b ? -1.0f : d > b ? 1.0f : d / b;
        if (p.dt) p.dt[i] = -p.dx[i];
    }
    return nb__ploss_finish(ar, "smooth_l1_loss", x, t, red, &p);
}
