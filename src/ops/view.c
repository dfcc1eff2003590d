/* view.c - reshape / view / flatten: same data, new shape. The backward hands the gradient
 * back under the input's shape (sharing the buffer when the input has no gradient yet). */
#include "ops_internal.h"
#include "../kernels/kernels.h"

static void view_backward(nb_node *n) {
    nb_tensor *x = n->in[0], *gy = n->out->grad;
    if (!x->grad && (x->internal.node || x->internal.arena) && !x->internal.grad_slot) { /* alias: no copy needed */
        x->grad = nb__alias(x->internal.arena, x, x->ndim, x->shape, gy->data);
        if (!x->grad) nb__backward_fail();
        return;
    }
    float beta, *g = nb__grad(x, &beta);
    if (g) nb_k_acc(g, nb_f32(gy), x->numel, beta);
}

nb_tensor *nb_reshape(nb_arena *ar, nb_tensor *x, int ndim, const int64_t *shape) {
    if (!x) return NULL;
    if (ndim < 0 || ndim > NB_MAX_DIMS || (ndim && !shape))
        return nb__null(NB_EINVAL, "reshape: bad rank %d", ndim);
    int64_t s[NB_MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1) {
            if (infer >= 0) return nb__null(NB_EINVAL, "reshape: only one dimension can be inferred");
            infer = i;
        } else if (s[i] < 0) {
            return nb__null(NB_EINVAL, "reshape: invalid shape dimension %lld", (long long)s[i]);
        } else if (s[i] && known > INT64_MAX / s[i]) {
            known = INT64_MAX; /* saturated: more than any numel, and no overflow */
        } else if (known != INT64_MAX || s[i] == 0) {
            known *= s[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || x->numel % known)
            return nb__null(NB_ESHAPE, "reshape: shape '%s' is invalid for input of size %lld",
                            nb__shape_of(ndim, shape, 0), (long long)x->numel);
        s[infer] = x->numel / known;
    } else if (known != x->numel) {
        return nb__null(NB_ESHAPE, "reshape: shape '%s' is invalid for input of size %lld",
                        nb__shape_of(ndim, shape, 0), (long long)x->numel);
    }
    if (nb__check_shape("reshape", x->dtype, ndim, s)) return NULL; /* e.g. [2^40, 2^40, 0] */
    if (!ar) return nb__null(NB_EINVAL, "reshape: arena is NULL (ops write their output in an arena)");
    nb_tensor *y = nb__alias(ar, x, ndim, s, x->data);
    if (y) nb__record(ar, y, "reshape", view_backward, 1, &x);
    return y;
}

nb_tensor *nb_view(nb_arena *ar, nb_tensor *x, int ndim, const int64_t *shape) {
    return nb_reshape(ar, x, ndim, shape);
}

nb_tensor *nb_flatten(nb_arena *ar, nb_tensor *x, int start_dim, int end_dim) {
    if (!x) return NULL;
    if (x->ndim == 0) return nb_reshape(ar, x, 1, (int64_t[]){1});
    int s = nb__dim("flatten", start_dim, x->ndim), e = nb__dim("flatten", end_dim, x->ndim);
    if (s < 0 || e < 0) return NULL;
    if (s > e) return nb__null(NB_EINVAL, "flatten() has invalid args: start_dim cannot come after end_dim");
    int64_t shape[NB_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < s; i++) shape[nd++] = x->shape[i];
    shape[nd++] = nb__numel(e - s + 1, x->shape + s);
    for (int i = e + 1; i < x->ndim; i++) shape[nd++] = x->shape[i];
    return nb_reshape(ar, x, nd, shape);
}
