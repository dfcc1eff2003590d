/* reduce.c - reductions: sum, mean, max (all or along a dim), argmax. */
#include "ops_internal.h"
#include "../kernels/reduce.h"

/* A dim for a reduction: as PyTorch, a 0-d tensor accepts dim 0 and -1. */
static int reduce_dim(const char *op, int dim, int ndim) {
    return ndim == 0 && (dim == 0 || dim == -1) ? 0 : nb__dim(op, dim, ndim);
}

/* Shape of x reduced over d (kept as size 1 with keepdim); returns the rank. */
static int reduced_shape(const nb_tensor *x, int d, bool keepdim, int64_t *shape) {
    int nd = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != d) shape[nd++] = x->shape[i];
        else if (keepdim) shape[nd++] = 1;
    return nd;
}

/* ---- sum / mean of everything: dx = dy (/ numel) ----------------------------------------- */
static void sum_backward(nb_node *n) {
    nb_tensor *x = n->in[0];
    float beta, *g = nb__grad(x, &beta);
    if (g) nb_k_expand_dim(g, nb_f32(n->out->grad), 1, x->numel, 1, (float)n->arg.f[0], beta);
}

static nb_tensor *sum_all(nb_arena *ar, const char *op, nb_tensor *x, bool mean) {
    if (!x) return NULL;
    if (nb__check_f32(op, x, "input")) return NULL;
    nb_tensor *y = nb__out(ar, NB_FLOAT32, 0, NULL);
    if (!y) return NULL;
    float div = mean ? (float)x->numel : 1.0f;
    nb_f32(y)[0] = (float)nb_k_sum(nb_f32(x), x->numel) / div;
    nb_node *n = nb__record(ar, y, op, sum_backward, 1, &x);
    if (n) n->arg.f[0] = div;
    return y;
}

nb_tensor *nb_sum(nb_arena *ar, nb_tensor *x) { return sum_all(ar, "sum", x, false); }
nb_tensor *nb_mean(nb_arena *ar, nb_tensor *x) { return sum_all(ar, "mean", x, true); }

/* ---- sum / mean along a dim: dx[o, c, i] = dy[o, i] (/ C) -------------------------------- */
static void sum_dim_backward(nb_node *n) {
    nb_tensor *x = n->in[0];
    int64_t outer, C, inner;
    nb__around(x, (int)n->arg.i[0], &outer, &C, &inner);
    float beta, *g = nb__grad(x, &beta);
    if (g) nb_k_expand_dim(g, nb_f32(n->out->grad), outer, C, inner, (float)n->arg.f[1], beta);
}

static nb_tensor *sum_dim(nb_arena *ar, const char *op, nb_tensor *x, int dim, bool keepdim,
                          bool mean) {
    if (!x) return NULL;
    if (nb__check_f32(op, x, "input")) return NULL;
    int d = reduce_dim(op, dim, x->ndim);
    if (d < 0) return NULL;
    int64_t shape[NB_MAX_DIMS], outer, C, inner;
    nb_tensor *y = nb__out(ar, NB_FLOAT32, reduced_shape(x, d, keepdim, shape), shape);
    if (!y) return NULL;
    nb__around(x, d, &outer, &C, &inner);
    float div = mean ? (float)C : 1.0f;
    nb_k_sum_dim(nb_f32(y), nb_f32(x), outer, C, inner, div);
    nb_node *n = nb__record(ar, y, op, sum_dim_backward, 1, &x);
    if (n) n->arg.i[0] = d, n->arg.f[1] = div;
    return y;
}

nb_tensor *nb_sum_dim(nb_arena *ar, nb_tensor *x, int dim, bool keepdim) {
    return sum_dim(ar, "sum_dim", x, dim, keepdim, false);
}

nb_tensor *nb_mean_dim(nb_arena *ar, nb_tensor *x, int dim, bool keepdim) {
    return sum_dim(ar, "mean_dim", x, dim, keepdim, true);
}

/* ---- max of everything: the gradient is shared evenly by the maximal elements ------------ */
static void max_backward(nb_node *n) {
    nb_tensor *x = n->in[0];
    float beta, *g = nb__grad(x, &beta);
    if (g) nb_k_max_backward(g, nb_f32(x), x->numel, nb_f32(n->out)[0], nb_f32(n->out->grad)[0],
                             beta);
}

nb_tensor *nb_max(nb_arena *ar, nb_tensor *x) {
    if (!x) return NULL;
    if (nb__check_f32("max", x, "input")) return NULL;
    if (x->numel == 0)
        return nb__null(NB_EINVAL, "max: expected reduction dim to be specified for "
                                   "input.numel() == 0 (shape %s)", nb__shape(x, 0));
    nb_tensor *y = nb__out(ar, NB_FLOAT32, 0, NULL);
    if (!y) return NULL;
    nb_f32(y)[0] = nb_k_max(nb_f32(x), x->numel);
    nb__record(ar, y, "max", max_backward, 1, &x);
    return y;
}

/* ---- max along a dim: the gradient goes to the first maximal element --------------------- */
static void max_dim_backward(nb_node *n) {
    nb_tensor *x = n->in[0];
    int64_t outer, C, inner;
    nb__around(x, (int)n->arg.i[0], &outer, &C, &inner);
    float *g = nb__grad_zeroed(x);
    if (g) nb_k_max_dim_backward(g, nb_f32(n->out->grad), n->saved, outer, C, inner);
}

/* Values (float) or indices (int32) of the max along dim. */
static nb_tensor *max_along(nb_arena *ar, const char *op, nb_tensor *x, int dim, bool keepdim,
                            bool values) {
    if (!x) return NULL;
    if (nb__check_f32(op, x, "input")) return NULL;
    int d = reduce_dim(op, dim, x->ndim);
    if (d < 0) return NULL;
    int64_t shape[NB_MAX_DIMS], outer, C, inner;
    nb__around(x, d, &outer, &C, &inner);
    if (C == 0) return nb__null(NB_EINVAL, "%s: cannot reduce an empty dim", op);
    int nd = reduced_shape(x, d, keepdim, shape);
    nb_tensor *y = nb__out(ar, values ? NB_FLOAT32 : NB_INT32, nd, shape);
    if (!y) return NULL;
    if (!values) {
        nb_k_max_dim(NULL, nb_i32(y), nb_f32(x), outer, C, inner);
        return y;
    }
    int32_t *idx = nb__arena_alloc(ar, sizeof(int32_t) * (size_t)(y->numel ? y->numel : 1));
    if (!idx) return NULL;
    nb_k_max_dim(nb_f32(y), idx, nb_f32(x), outer, C, inner);
    nb_node *n = nb__record(ar, y, op, max_dim_backward, 1, &x);
    if (n) n->arg.i[0] = d, n->saved = idx;
    return y;
}

nb_tensor *nb_max_dim(nb_arena *ar, nb_tensor *x, int dim, bool keepdim) {
    return max_along(ar, "max_dim", x, dim, keepdim, true);
}

/* ---- argmax (not differentiable): index of the first maximum along dim ------------------- */
nb_tensor *nb_argmax(nb_arena *ar, nb_tensor *x, int dim, bool keepdim) {
    return max_along(ar, "argmax", x, dim, keepdim, false);
}
