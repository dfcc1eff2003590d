/* select.c - x.select(dim, index): one slice along a dim, that dim removed (a copy); the
 * backward adds the gradient back into that slice. */
#include "ops_internal.h"
#include "../kernels/kernels.h"

/* x viewed as [outer, C, inner]; the slice is index along C. */
static void select_backward(nb_node *n) {
    nb_tensor *x = n->in[0];
    int64_t outer = n->arg.i[0], C = n->arg.i[1], inner = n->arg.i[2], index = n->arg.i[3];
    float *g = nb__grad_zeroed(x);
    if (!g) return;
    const float *gy = nb_f32(n->out->grad);
    for (int64_t o = 0; o < outer; o++)
        nb_k_acc(g + (o * C + index) * inner, gy + o * inner, inner, 1.0f);
}

nb_tensor *nb_select(nb_arena *ar, nb_tensor *x, int dim, int64_t index) {
    if (!x) return NULL;
    if (nb__check_f32("select", x, "input")) return NULL;
    if (x->ndim == 0) return nb__null(NB_EINVAL, "select() cannot be applied to a 0-dim tensor.");
    int d = nb__dim("select", dim, x->ndim);
    if (d < 0) return NULL;
    int64_t outer, C, inner;
    nb__around(x, d, &outer, &C, &inner);
    if (index < -C || index >= C)
        return nb__null(NB_EINVAL, "select(): index %lld out of range for tensor of size %s at "
                        "dimension %d", (long long)index, nb__shape(x, 0), dim);
    if (index < 0) index += C;
    int64_t shape[NB_MAX_DIMS];
    for (int i = 0, k = 0; i < x->ndim; i++)
        if (i != d) shape[k++] = x->shape[i];
    nb_tensor *y = nb__out(ar, NB_FLOAT32, x->ndim - 1, shape);
    if (!y) return NULL;
    for (int64_t o = 0; o < outer; o++)
        memcpy(nb_f32(y) + o * inner, nb_f32(x) + (o * C + index) * inner, sizeof(float) * (size_t)inner);
    nb_node *n = nb__record(ar, y, "select", select_backward, 1, &x);
    if (n) {
        n->arg.i[0] = outer;
        n->arg.i[1] = C;
        n->arg.i[2] = inner;
        n->arg.i[3] = index;
    }
    return y;
}
