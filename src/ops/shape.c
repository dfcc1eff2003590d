/* shape.c - transpose, cat, stack, slice, split. Tensors stay contiguous, so each of these
 * copies; the backward copies the gradient back into place. */
#include "ops_internal.h"
#include "../kernels/layout.h"

/* ---- transpose: swap dims d0 < d1, viewing the tensor as [A, I, B, J, C] ----------------- */
static void transpose_dims(const nb_tensor *t, int d0, int d1, int64_t v[5]) {
    v[0] = nb__numel(d0, t->shape);
    v[1] = t->shape[d0];
    v[2] = nb__numel(d1 - d0 - 1, t->shape + d0 + 1);
    v[3] = t->shape[d1];
    v[4] = nb__numel(t->ndim - d1 - 1, t->shape + d1 + 1);
    if (d0 == d1) v[0] *= v[1], v[1] = v[2] = v[3] = 1; /* a plain copy */
}

static void transpose_backward(nb_node *n) {
    int64_t v[5];
    transpose_dims(n->in[0], (int)n->arg.i[0], (int)n->arg.i[1], v);
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_transpose(g, nb_f32(n->out->grad), v[0], v[3], v[2], v[1], v[4], beta);
}

nb_tensor *nb_transpose(nb_arena *ar, nb_tensor *x, int dim0, int dim1) {
    if (!x) return NULL;
    if (nb__check_f32("transpose", x, "input")) return NULL;
    int d0 = nb__dim("transpose", dim0, x->ndim);
    int d1 = d0 < 0 ? -1 : nb__dim("transpose", dim1, x->ndim);
    if (d0 < 0 || d1 < 0) return NULL;
    if (d0 > d1) {
        int t = d0;
        d0 = d1;
        d1 = t;
    }
    int64_t shape[NB_MAX_DIMS], v[5];
    memcpy(shape, x->shape, sizeof shape);
    shape[d0] = x->shape[d1];
    shape[d1] = x->shape[d0];
    nb_tensor *y = nb__out(ar, NB_FLOAT32, x->ndim, shape);
    if (!y) return NULL;
    transpose_dims(x, d0, d1, v);
    nb_k_transpose(nb_f32(y), nb_f32(x), v[0], v[1], v[2], v[3], v[4], 0.0f);
    nb_node *n = nb__record(ar, y, "transpose", transpose_backward, 1, &x);
    if (n) n->arg.i[0] = d0, n->arg.i[1] = d1;
    return y;
}

/* ---- cat / stack: the output is [outer, total, inner] along dim d, input i fills a block
 * of ext_i (its size along d; 1 for stack) at offset sum_{j<i} ext_j ------------------------ */
static void join_backward(nb_node *n) {
    nb_tensor *y = n->out;
    int d = (int)n->arg.i[0];
    bool stack = n->arg.i[1];
    int64_t outer, total, inner, off = 0;
    nb__around(y, d, &outer, &total, &inner);
    for (int i = 0; i < n->nin; i++) {
        nb_tensor *x = n->in[i];
        int64_t ext = stack ? 1 : x->shape[d];
        float beta, *g;
        if (nb__wants_grad(x) && (g = nb__grad(x, &beta)))
            nb_k_copy_rows(g, ext * inner, nb_f32(y->grad) + off * inner, total * inner, outer,
                           ext * inner, beta);
        off += ext;
    }
}

static nb_tensor *join(nb_arena *ar, const char *op, int n, nb_tensor *const *ts, int dim,
                       bool stack) {
    if (n <= 0 || !ts) return nb__null(NB_EINVAL, "%s: expected a non-empty list of tensors", op);
    for (int i = 0; i < n; i++)
        if (!ts[i]) return NULL;
    const nb_tensor *t0 = ts[0];
    if (!stack && t0->ndim == 0)
        return nb__null(NB_EINVAL, "%s: zero-dimensional tensor (at position 0) cannot be "
                                   "concatenated", op);
    int d = nb__dim(op, dim, t0->ndim + (stack ? 1 : 0));
    if (d < 0) return NULL;
    int64_t shape[NB_MAX_DIMS + 1];
    int nd = t0->ndim + (stack ? 1 : 0);
    if (nd > NB_MAX_DIMS)
        return nb__null(NB_EINVAL, "%s: the result would have rank %d > %d", op, nd, NB_MAX_DIMS);
    for (int i = 0; i < n; i++) {
        const nb_tensor *t = ts[i];
        if (nb__check_f32(op, t, "every tensor")) return NULL;
        if (stack && !nb_same_shape(t, t0))
            return nb__null(NB_ESHAPE, "%s: expects each tensor to be equal size, but got %s at "
                            "entry 0 and %s at entry %d", op, nb__shape(t0, 0), nb__shape(t, 1), i);
        if (!stack && t->ndim != t0->ndim)
            return nb__null(NB_ESHAPE, "%s: tensors must have the same rank, got %s at entry 0 "
                            "and %s at entry %d", op, nb__shape(t0, 0), nb__shape(t, 1), i);
        for (int k = 0; !stack && k < t0->ndim; k++)
            if (k != d && t->shape[k] != t0->shape[k])
                return nb__null(NB_ESHAPE, "%s: sizes of tensors must match except in dimension "
                                "%d. Expected size %lld but got size %lld for tensor number %d "
                                "in the list (shapes %s and %s)", op, d, (long long)t0->shape[k],
                                (long long)t->shape[k], i, nb__shape(t0, 0), nb__shape(t, 1));
    }
    for (int k = 0, j = 0; k < nd; k++) /* output shape */
        shape[k] = stack && k == d ? n : t0->shape[j++];
    if (!stack) {
        shape[d] = 0;
        for (int i = 0; i < n; i++) shape[d] += ts[i]->shape[d];
    }
    nb_tensor *y = nb__out(ar, NB_FLOAT32, nd, shape);
    if (!y) return NULL;
    int64_t outer, total, inner, off = 0;
    nb__around(y, d, &outer, &total, &inner);
    for (int i = 0; i < n; i++) {
        int64_t ext = stack ? 1 : ts[i]->shape[d];
        nb_k_copy_rows(nb_f32(y) + off * inner, total * inner, nb_f32(ts[i]), ext * inner, outer,
                       ext * inner, 0.0f);
        off += ext;
    }
    nb_node *node = nb__record(ar, y, op, join_backward, n, ts);
    if (node) node->arg.i[0] = d, node->arg.i[1] = stack;
    return y;
}

nb_tensor *nb_cat(nb_arena *ar, int n, nb_tensor *const *ts, int dim) {
    return join(ar, "cat", n, ts, dim, false);
}

nb_tensor *nb_stack(nb_arena *ar, int n, nb_tensor *const *ts, int dim) {
    return join(ar, "stack", n, ts, dim, true);
}

/* ---- slice: elements start..end-1 along d; the gradient goes back into that window ------- */
static void slice_backward(nb_node *n) {
    nb_tensor *x = n->in[0];
    int64_t outer, size, inner, start = n->arg.i[1], len = n->out->shape[n->arg.i[0]];
    nb__around(x, (int)n->arg.i[0], &outer, &size, &inner);
    float *g = nb__grad_zeroed(x);
    if (g) nb_k_copy_rows(g + start * inner, size * inner, nb_f32(n->out->grad), len * inner,
                          outer, len * inner, 1.0f);
}

nb_tensor *nb_slice(nb_arena *ar, nb_tensor *x, int dim, int64_t start, int64_t end) {
    if (!x) return NULL;
    if (nb__check_f32("slice", x, "input")) return NULL;
    int d = nb__dim("slice", dim, x->ndim);
    if (d < 0) return NULL;
    int64_t size = x->shape[d];
    int64_t s = start < 0 ? start + size : start, e = end < 0 ? end + size : end;
    if (!(0 <= s && s <= e && e <= size))
        return nb__null(NB_EINVAL, "slice: start %lld and end %lld are out of range for dim %d "
                        "of size %lld (shape %s)", (long long)start, (long long)end, d,
                        (long long)size, nb__shape(x, 0));
    int64_t shape[NB_MAX_DIMS], outer, C, inner;
    memcpy(shape, x->shape, sizeof shape);
    shape[d] = e - s;
    nb_tensor *y = nb__out(ar, NB_FLOAT32, x->ndim, shape);
    if (!y) return NULL;
    nb__around(x, d, &outer, &C, &inner);
    nb_k_copy_rows(nb_f32(y), (e - s) * inner, nb_f32(x) + s * inner, size * inner, outer,
                   (e - s) * inner, 0.0f);
    nb_node *n = nb__record(ar, y, "slice", slice_backward, 1, &x);
    if (n) n->arg.i[0] = d, n->arg.i[1] = s;
    return y;
}

/* ---- split: consecutive slices of split_size (as torch.split with an int) ----------------- */
int nb_split(nb_arena *ar, nb_tensor *x, int64_t split_size, int dim, nb_tensor **out, int max) {
    if (!x) return NB_EINVAL; /* a NULL input keeps the error that produced it */
    if (max < 0 || (max > 0 && !out))
        return nb__error(NB_EINVAL, "split: out is NULL or max (%d) is negative", max);
    int d = nb__dim("split", dim, x->ndim);
    if (d < 0) return NB_EINVAL;
    int64_t size = x->shape[d];
    if (split_size < 0)
        return nb__error(NB_EINVAL, "split: split_size must be non-negative, got %lld",
                         (long long)split_size);
    if (split_size == 0 && size != 0)
        return nb__error(NB_EINVAL, "split: split_size can only be 0 if dimension size is 0, "
                         "but got dimension size of %lld", (long long)size);
    int64_t count = size == 0 ? 1 : (size - 1) / split_size + 1; /* ceil, without overflow */
    if (count > INT32_MAX)
        return nb__error(NB_EINVAL, "split: too many chunks (%lld)", (long long)count);
    for (int64_t i = 0; i < count && i < max; i++) {
        int64_t s = i * split_size, e = split_size < size - s ? s + split_size : size;
        out[i] = nb_slice(ar, x, d, s, e);
        if (!out[i]) return nb_last_status();
    }
    return (int)count;
}
