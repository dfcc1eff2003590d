/* mse_loss.c - F.mse_loss: (input - target)^2, then mean / sum / none. Both sides get a
 * gradient: d/dinput = norm (input - target) dy, d/dtarget = its negative, norm = 2/numel
 * for mean and 2 otherwise (PyTorch's order of operations). */
#include "loss.h"

static void mse_backward(nb_node *n) {
    nb_tensor *x = n->in[0], *t = n->in[1];
    const float *gy = nb_f32(n->out->grad), *xs = nb_f32(x), *ts = nb_f32(t);
    bool each = n->arg.i[0] == NB_REDUCTION_NONE;
    float norm = (float)n->arg.f[1];
    for (int w = 0; w < 2; w++) {
        float beta, *g;
        if (!nb__wants_grad(n->in[w]) || !(g = nb__grad(n->in[w], &beta))) continue;
        float sign = w ? -1.0f : 1.0f;
        for (int64_t i = 0; i < x->numel; i++) {
            float v = sign * (norm * (xs[i] - ts[i]) * gy[each ? i : 0]);
            g[i] = beta == 0.0f ? v : g[i] + v;
        }
    }
}

nb_tensor *nb_mse_loss(nb_arena *ar, nb_tensor *input, nb_tensor *target, nb_reduction red) {
    if (!input || !target) return NULL;
    if (nb__check_f32("mse_loss", input, "input") || nb__check_f32("mse_loss", target, "target"))
        return NULL;
    if (!nb_same_shape(input, target))
        return nb__null(NB_ESHAPE, "mse_loss: target has shape %s but input has shape %s",
                        nb__shape(target, 0), nb__shape(input, 1));
    if ((unsigned)red > NB_REDUCTION_NONE)
        return nb__null(NB_EINVAL, "mse_loss: unknown reduction %d", (int)red);
    nb_tensor *out = red == NB_REDUCTION_NONE ? nb__out_like(ar, input)
                                              : nb__out(ar, NB_FLOAT32, 0, NULL);
    if (!out) return NULL;
    const float *x = nb_f32(input), *t = nb_f32(target);
    double total = 0.0;
    for (int64_t i = 0; i < input->numel; i++) {
        float d = x[i] - t[i], sq = d * d;
        if (red == NB_REDUCTION_NONE) nb_f32(out)[i] = sq;
        total += sq;
    }
    if (red == NB_REDUCTION_SUM) nb_f32(out)[0] = (float)total;
    if (red == NB_REDUCTION_MEAN) nb_f32(out)[0] = (float)(total / (double)input->numel);
    nb_node *n = nb__record(ar, out, "mse_loss", mse_backward, 2, NB_INPUTS(input, target));
    if (n) {
        n->arg.i[0] = red;
        n->arg.f[1] = red == NB_REDUCTION_MEAN ? 2.0 / (double)input->numel : 2.0;
    }
    return out;
}
