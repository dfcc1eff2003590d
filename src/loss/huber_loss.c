/* huber_loss.c - F.huber_loss(delta): with d = x - t, z = |d|,
 *   l = z < delta ? 0.5 z^2 : delta (z - 0.5 delta),   dl/dx = clamp(d, -delta, delta),
 * dl/dt = -dl/dx. (Huber = delta * smooth_l1 with beta = delta.) */
#include "pointwise.h"

nb_tensor *nb_huber_loss(nb_arena *ar, nb_tensor *x, nb_tensor *t, nb_reduction red,
                         double delta) {
    if (!x || !t) return NULL;
    if (!(delta > 0))
        return nb__null(NB_EINVAL, "huber_loss does not support non-positive values for delta.");
    nb_ploss p;
    if (nb__ploss_begin(ar, "huber_loss", x, t, red, false, &p)) return NULL;
    const float *xs = nb_f32(x), *ts = nb_f32(t);
    float dl = (float)delta;
    for (int64_t i = 0; i < p.n; i++) {
        float d = xs[i] - ts[i], z = d < 0 ? -d : d;
        p.l[i] = z < dl ? 0.5f * z * z : dl * (z - 0.5f * dl);
        p.dx[i] = d < -dl ? -dl : d > dl ? dl : d;
        if (p.dt) p.dt[i] = -p.dx[i];
    }
    return nb__ploss_finish(ar, "huber_loss", x, t, red, &p);
}
