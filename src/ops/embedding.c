/* embedding.c - F.embedding: out[..., :] = weight[indices[...], :]; the backward adds each row
 * of the gradient into the weight row it came from (except the padding row). With sparse=true
 * (a heap leaf weight whose gradient is not already dense) the rows are appended to the
 * weight's row-sparse gradient instead, as PyTorch's embedding_sparse_backward does: indices
 * in the input's order, repeats kept, padding rows left out. */
#include "ops_internal.h"
#include "../kernels/kernels.h"

static void embedding_backward(nb_node *n) {
    nb_tensor *idx = n->in[0], *w = n->in[1];
    int64_t dim = w->shape[1], pad = n->arg.i[0];
    if (n->arg.i[1] && !w->internal.node && !w->internal.arena && (!w->grad || (w->grad->flags & NB_TENSOR_SPARSE))) {
        if (nb__sparse_append(w, nb_i32(idx), nb_f32(n->out->grad), idx->numel, pad)) nb__backward_fail();
        return;
    }
    float *g = nb__grad_zeroed(w);
    if (!g) return;
    const float *gy = nb_f32(n->out->grad);
    for (int64_t i = 0; i < idx->numel; i++) {
        int64_t r = nb_i32(idx)[i];
        if (r != pad) nb_k_acc(g + r * dim, gy + i * dim, dim, 1.0f);
    }
}

static nb_tensor *embedding(nb_arena *ar, nb_tensor *indices, nb_tensor *weight, int64_t padding_idx,
                            bool sparse) {
    if (!indices || !weight) return NULL;
    if (indices->dtype != NB_INT32)
        return nb__null(NB_EINVAL, "embedding: indices must be int32, got %s",
                        nb__dtype_name(indices->dtype));
    if (nb__check_f32("embedding", weight, "weight")) return NULL;
    if (weight->ndim != 2)
        return nb__null(NB_ESHAPE, "embedding: weight must be 2-D [num_embeddings, embedding_dim], "
                        "got %s", nb__shape(weight, 0));
    if (indices->ndim >= NB_MAX_DIMS)
        return nb__null(NB_ESHAPE, "embedding: indices of rank %d give an output of rank > %d",
                        indices->ndim, NB_MAX_DIMS);
    int64_t num = weight->shape[0], dim = weight->shape[1];
    for (int64_t i = 0; i < indices->numel; i++) {
        int32_t r = nb_i32(indices)[i];
        if (r < 0 || r >= num)
            return nb__null(NB_EINVAL, "embedding: index %d is out of range for %lld embeddings",
                            (int)r, (long long)num);
    }
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, indices->shape, sizeof(int64_t) * (size_t)indices->ndim);
    shape[indices->ndim] = dim;
    nb_tensor *y = nb__out(ar, NB_FLOAT32, indices->ndim + 1, shape);
    if (!y) return NULL;
    for (int64_t i = 0; i < indices->numel; i++)
        memcpy(nb_f32(y) + i * dim, nb_f32(weight) + nb_i32(indices)[i] * dim, sizeof(float) * (size_t)dim);
    nb_node *n = nb__record(ar, y, "embedding", embedding_backward, 2, NB_INPUTS(indices, weight));
    if (n) {
        n->arg.i[0] = padding_idx < 0 ? -1 : padding_idx;
        n->arg.i[1] = sparse;
    }
    return y;
}

nb_tensor *nb_embedding(nb_arena *ar, nb_tensor *indices, nb_tensor *weight, int64_t padding_idx) {
    return embedding(ar, indices, weight, padding_idx, false);
}

nb_tensor *nb_embedding_sparse(nb_arena *ar, nb_tensor *indices, nb_tensor *weight, int64_t padding_idx) {
    return embedding(ar, indices, weight, padding_idx, true);
}
