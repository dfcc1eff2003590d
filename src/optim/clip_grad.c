/* clip_grad.c - torch.nn.utils.clip_grad_norm_ and clip_grad_value_.
 *   total = norm of the per-tensor norms (max |g| for inf); coef = max_norm / (total + 1e-6),
 *   clamped to 1; every grad is multiplied by coef (always, as PyTorch does).
 * Norms are computed in float32 in the order of PyTorch's kernels, and the coefficient like
 * PyTorch's 0-dim tensor arithmetic, so the clipped gradients match PyTorch's to the bit.
 * A row-sparse gradient's norm is that of its coalesced values (repeated rows summed first),
 * and scaling it scales its values; PyTorch 1.13 has no sparse max or clamp, so the inf norm
 * and clip_grad_value_ refuse one with its message. */
#include <math.h>
#include "optimizer.h"

/* torch.norm(g, p) of one tensor in PyTorch's order: p = 2 as nb__norm2, p = 1 and other p
 * as float32 sums in order, inf as the largest |g| (NaN wins). */
static float tensor_norm(const float *g, int64_t n, double p) {
    if (isinf(p)) return nb__abs_max(g, 1.0f, n);
    if (p == 2.0) return nb__norm2(g, n);
    float s = 0.0f;
    if (p == 1.0) {
        for (int64_t i = 0; i < n; i++) s = s + fabsf(g[i]);
        return s;
    }
    for (int64_t i = 0; i < n; i++) s = s + (float)pow(fabsf(g[i]), p);
    return powf(s, (float)(1.0 / p));
}

int nb_clip_grad_norm(nb_tensor *const *params, int n, double max_norm, double norm_type,
                      bool error_if_nonfinite, double *total_norm) {
    if (n < 0 || (n && !params)) return nb__error(NB_EINVAL, "clip_grad_norm_: bad parameter list");
    if (!(norm_type > 0)) return nb__error(NB_EINVAL, "clip_grad_norm_: norm_type must be > 0, got %s",
                                          nb__pyfloat(norm_type, 0));
    int ngrads = 0;
    size_t work = 0;
    for (int i = 0; i < n; i++) {
        const nb_tensor *g = params[i] ? params[i]->grad : NULL;
        ngrads += g != NULL;
        if (nb_is_sparse(g) && isinf(norm_type))
            return nb__error(NB_EINVAL, "Could not run 'aten::max' with arguments from the 'SparseCPU' backend.");
        if (nb_is_sparse(g) && nb__sparse_coalesce_size(g) > work) work = nb__sparse_coalesce_size(g);
    }
    if (total_norm) *total_norm = 0.0;
    if (!ngrads) return NB_OK;
    void *buf = work ? nb__malloc(work) : NULL;
    if (work && !buf) return NB_ENOMEM;
    /* the norm of the per-tensor norms, as torch.norm(torch.stack(norms), p) */
    nb__norm2_acc acc;
    nb__norm2_init(&acc, ngrads);
    float total = 0.0f;
    for (int i = 0; i < n; i++) {
        const nb_tensor *g = params[i] ? params[i]->grad : NULL;
        if (!g) continue;
        float tn;
        if (nb_is_sparse(g)) { /* torch.norm of a sparse tensor: of its coalesced values */
            const int32_t *rows;
            const float *vals;
            int64_t m = nb__sparse_coalesce(g, 1.0f, buf, &rows, &vals);
            tn = tensor_norm(vals, m * g->shape[1], norm_type);
        } else {
            tn = tensor_norm(nb_f32(g), params[i]->numel, norm_type);
        }
        if (isinf(norm_type)) total = tn > total || tn != tn ? tn : total;
        else if (norm_type == 2.0) nb__norm2_add(&acc, tn);
        else if (norm_type == 1.0) total = total + tn;
        else total = total + (float)pow(tn, norm_type);
    }
    if (norm_type == 2.0) total = nb__norm2_end(&acc);
    else if (!isinf(norm_type) && norm_type != 1.0) total = powf(total, (float)(1.0 / norm_type));
    nb__free(buf);
    if (total_norm) *total_norm = total;
    if (error_if_nonfinite && !isfinite(total))
        return nb__error(NB_EINVAL, "The total norm of order %s for gradients from `parameters` is "
                         "non-finite, so it cannot be clipped. To disable this error and scale the "
                         "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`",
                         nb__pyfloat(norm_type, 0));
    /* max_norm / (total + 1e-6) with a tensor on the right is reciprocal(total + 1e-6) * max_norm */
    float coef = 1.0f / (total + 1e-6f) * (float)max_norm;
    if (coef > 1.0f) coef = 1.0f;
    for (int i = 0; i < n; i++) {
        nb_tensor *gt = params[i] ? params[i]->grad : NULL;
        if (!gt) continue;
        float *g = nb_is_sparse(gt) ? (float *)nb_sparse_values(gt) : nb_f32(gt);
        int64_t m = nb_is_sparse(gt) ? nb_sparse_nnz(gt) * gt->shape[1] : params[i]->numel;
        for (int64_t j = 0; j < m; j++) g[j] *= coef;
    }
    return NB_OK;
}

int nb_clip_grad_value(nb_tensor *const *params, int n, double clip_value) {
    if (n < 0 || (n && !params)) return nb__error(NB_EINVAL, "clip_grad_value_: bad parameter list");
    float c = (float)clip_value;
    for (int i = 0; i < n; i++)
        if (params[i] && nb_is_sparse(params[i]->grad))
            return nb__error(NB_EINVAL, "Could not run 'aten::clamp_' with arguments from the 'SparseCPU' backend.");
    for (int i = 0; i < n; i++) {
        if (!params[i] || !params[i]->grad) continue;
        float *g = nb_f32(params[i]->grad);
        for (int64_t j = 0; j < params[i]->numel; j++) g[j] = g[j] < -c ? -c : g[j] > c ? c : g[j];
    }
    return NB_OK;
}
