/* index.c - index_select and gather along dim 0; their backward scatter-adds. */
#include "ops_internal.h"
#include "../kernels/layout.h"

/* Every index in [0, size), or an error naming op and the first bad one. */
static int check_indices(const char *op, const nb_tensor *index, int64_t size) {
    const int32_t *ix = nb_i32(index);
    for (int64_t i = 0; i < index->numel; i++)
        if (ix[i] < 0 || ix[i] >= size)
            return nb__error(NB_EINVAL, "%s: index %d is out of bounds for dimension 0 with "
                             "size %lld", op, (int)ix[i], (long long)size);
    return NB_OK;
}

/* ---- index_select: y[i] = a[index[i]] ---------------------------------------------------- */
static void index_select_backward(nb_node *n) {
    nb_tensor *a = n->in[0], *index = n->in[1];
    float *g = nb__grad_zeroed(a);
    if (g) nb_k_index_rows_add(g, nb_f32(n->out->grad), nb_i32(index), index->numel,
                               nb__numel(a->ndim - 1, a->shape + 1));
}

nb_tensor *nb_index_select(nb_arena *ar, nb_tensor *a, nb_tensor *index) {
    if (!a || !index) return NULL;
    if (nb__check_f32("index_select", a, "input")) return NULL;
    if (index->dtype != NB_INT32 || index->ndim != 1)
        return nb__null(NB_EINVAL, "index_select: index must be a 1-D int32 tensor, got %s %s",
                        nb__dtype_name(index->dtype), nb__shape(index, 0));
    if (a->ndim == 0)
        return nb__null(NB_ESHAPE, "index_select: input must have at least one dim");
    if (check_indices("index_select", index, a->shape[0])) return NULL;
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[0] = index->numel;
    nb_tensor *y = nb__out(ar, NB_FLOAT32, a->ndim, shape);
    if (!y) return NULL;
    nb_k_index_rows(nb_f32(y), nb_f32(a), nb_i32(index), index->numel,
                    nb__numel(a->ndim - 1, a->shape + 1));
    nb__record(ar, y, "index_select", index_select_backward, 2, NB_INPUTS(a, index));
    return y;
}

/* ---- gather (dim 0): y[i, k...] = a[index[i, k...], k...] -------------------------------- */
typedef struct gather_plan {
    int64_t R, S;       /* elements of one index slice / of one input slice along dim 0 */
    const int64_t *off; /* offset in an input slice of each index position (NULL: identity) */
} gather_plan;

static void gather_backward(nb_node *n) {
    const gather_plan *p = n->saved;
    nb_tensor *a = n->in[0], *index = n->in[1];
    float *g = nb__grad_zeroed(a);
    if (g) nb_k_gather0_add(g, nb_f32(n->out->grad), nb_i32(index), index->shape[0], p->R, p->S,
                            p->off);
}

nb_tensor *nb_gather(nb_arena *ar, nb_tensor *a, nb_tensor *index) {
    if (!a || !index) return NULL;
    if (nb__check_f32("gather", a, "input")) return NULL;
    if (index->dtype != NB_INT32)
        return nb__null(NB_EINVAL, "gather: index must be int32, got %s", nb__dtype_name(index->dtype));
    if (a->ndim == 0 || index->ndim != a->ndim)
        return nb__null(NB_ESHAPE, "gather: index %s must have the same number of dimensions "
                        "(at least 1) as input %s", nb__shape(index, 0), nb__shape(a, 1));
    bool same = true;
    for (int d = 1; d < a->ndim; d++) {
        if (index->shape[d] > a->shape[d])
            return nb__null(NB_ESHAPE, "gather: size does not match at dimension %d: expected "
                            "index %s to be smaller than self %s apart from dimension 0", d,
                            nb__shape(index, 0), nb__shape(a, 1));
        same = same && index->shape[d] == a->shape[d];
    }
    if (check_indices("gather", index, a->shape[0])) return NULL;
    gather_plan *p = nb__arena_alloc(ar, sizeof *p);
    nb_tensor *y = nb__out(ar, NB_FLOAT32, index->ndim, index->shape);
    if (!p || !y) return NULL;
    p->R = nb__numel(index->ndim - 1, index->shape + 1);
    p->S = nb__numel(a->ndim - 1, a->shape + 1);
    p->off = NULL;
    if (!same) { /* offsets of the index positions inside a smaller-or-equal input slice */
        int64_t *off = nb__arena_alloc(ar, sizeof(int64_t) * (size_t)(p->R ? p->R : 1));
        if (!off) return NULL;
        for (int64_t k = 0; k < p->R; k++) {
            int64_t rem = k, o = 0, stride = 1;
            for (int d = a->ndim - 1; d >= 1; d--) {
                o += (rem % index->shape[d]) * stride;
                rem /= index->shape[d];
                stride *= a->shape[d];
            }
            off[k] = o;
        }
        p->off = off;
    }
    nb_k_gather0(nb_f32(y), nb_f32(a), nb_i32(index), index->shape[0], p->R, p->S, p->off);
    nb_node *n = nb__record(ar, y, "gather", gather_backward, 2, NB_INPUTS(a, index));
    if (n) n->saved = p;
    return y;
}
