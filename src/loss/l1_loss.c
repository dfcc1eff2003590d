/* l1_loss.c - F.l1_loss: l = |x - t|, dl/dx = sign(x - t) (0 at 0), dl/dt = -dl/dx. */
#include "pointwise.h"

nb_tensor *nb_l1_loss(nb_arena *ar, nb_tensor *x, nb_tensor *t, nb_reduction red) {
    if (!x || !t) return NULL;
    nb_ploss p;
    if (nb__ploss_begin(ar, "l1_loss", x, t, red, false, &p)) return NULL;
    const float *xs = nb_f32(x), *ts = nb_f32(t);
    for (int64_t i = 0; i < p.n; i++) {
        float d = xs[i] - ts[i];
        p.l[i] = d < 0 ? -d : d;
        p.dx[i] = (float)((d > 0) - (d < 0));
        if (p.dt) p.dt[i] = -p.dx[i];
    }
    return nb__ploss_finish(ar, "l1_loss", x, t, red, &p);
}
