/* clip_grad.c - torch.nn.utils.clip_grad_norm_ and clip_grad_value_.
 *   total = norm of the per-tensor norms (max |g| for inf); coef = max_norm / (total + 1e-6),
 *   clamped to 1; every grad is multiplied by coef (always, as PyTorch does). */
#include <math.h>
#include "optimizer.h"

static double tensor_norm(const float *g, int64_t n, double p) {
    if (isinf(p)) {
        float m = 0.0f;
        for (int64_t i = 0; i < n; i++) m = fabsf(g[i]) > m || isnan(g[i]) ? fabsf(g[i]) : m;
        return m;
    }
    double s = 0;
    if (p == 2.0)
        for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    else if (p == 1.0)
        for (int64_t i = 0; i < n; i++) s += fabs((double)g[i]);
    else
        for (int64_t i = 0; i < n; i++) s += pow(fabs((double)g[i]), p);
    return p == 2.0 ? sqrt(s) : p == 1.0 ? s : pow(s, 1.0 / p);
}

int nb_clip_grad_norm(nb_tensor *const *params, int n, double max_norm, double norm_type,
                      bool error_if_nonfinite, double *total_norm) {
    if (n < 0 || (n && !params)) return nb__error(NB_EINVAL, "clip_grad_norm_: bad parameter list");
    if (!(norm_type > 0)) return nb__error(NB_EINVAL, "clip_grad_norm_: norm_type must be > 0, got %s",
                                          nb__pyfloat(norm_type, 0));
    double total = 0;
    int ngrads = 0;
    for (int i = 0; i < n; i++) {
        if (!params[i] || !params[i]->grad) continue;
        /* per-tensor norms are rounded to float32, as torch.norm returns them */
        float tn = (float)tensor_norm(nb_f32(params[i]->grad), params[i]->numel, norm_type);
        if (isinf(norm_type)) total = tn > total || isnan(tn) ? tn : total;
        else total += isinf(norm_type) ? 0 : pow(fabs((double)tn), norm_type);
        ngrads++;
    }
    if (!isinf(norm_type)) total = (float)pow(total, 1.0 / norm_type);
    if (total_norm) *total_norm = ngrads ? total : 0.0;
    if (!ngrads) return NB_OK;
    if (error_if_nonfinite && !isfinite(total))
        return nb__error(NB_EINVAL, "The total norm of order %s for gradients from `parameters` is "
                         "non-finite, so it cannot be clipped. To disable this error and scale the "
                         "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`",
                         nb__pyfloat(norm_type, 0));
    float coef = (float)max_norm / ((float)total + 1e-6f);
    if (coef > 1.0f) coef = 1.0f;
    for (int i = 0; i < n; i++) {
        if (!params[i] || !params[i]->grad) continue;
        float *g = nb_f32(params[i]->grad);
        for (int64_t j = 0; j < params[i]->numel; j++) g[j] *= coef;
    }
    return NB_OK;
}

int nb_clip_grad_value(nb_tensor *const *params, int n, double clip_value) {
    if (n < 0 || (n && !params)) return nb__error(NB_EINVAL, "clip_grad_value_: bad parameter list");
    float c = (float)clip_value;
    for (int i = 0; i < n; i++) {
        if (!params[i] || !params[i]->grad) continue;
        float *g = nb_f32(params[i]->grad);
        for (int64_t j = 0; j < params[i]->numel; j++) g[j] = g[j] < -c ? -c : g[j] > c ? c : g[j];
    }
    return NB_OK;
}
