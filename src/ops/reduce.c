/* reduce.c - reductions: sum, mean, max (all or along a dim), argmax. */
#include "../core/internal.h"

/* ---- argmax (not differentiable): index of the first maximum along dim ------------------- */
nb_tensor *nb_argmax(nb_arena *ar, nb_tensor *x, int dim, bool keepdim) {
    if (!x) return NULL;
    if (nb__check_f32("argmax", x, "input")) return NULL;
    int d = nb__dim("argmax", dim, x->ndim);
    if (d < 0) return NULL;
    if (x->shape[d] == 0) return nb__null(NB_EINVAL, "argmax: cannot reduce an empty dim");
    int64_t shape[NB_MAX_DIMS], nd = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != d) shape[nd++] = x->shape[i];
        else if (keepdim) shape[nd++] = 1;
    nb_tensor *y = nb__tensor(ar, NB_INT32, (int)nd, shape);
    if (!y) return NULL;
    int64_t outer = nb__numel(d, x->shape), C = x->shape[d];
    int64_t inner = nb__numel(x->ndim - d - 1, x->shape + d + 1);
    const float *xs = nb_f32(x);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            const float *p = xs + o * C * inner + in;
            int64_t best = 0;
            for (int64_t c = 1; c < C; c++) /* NaN wins, as in PyTorch */
                if (p[c * inner] > p[best * inner] || (p[c * inner] != p[c * inner] && p[best * inner] == p[best * inner]))
                    best = c;
            nb_i32(y)[o * inner + in] = (int32_t)best;
        }
    return y;
}
