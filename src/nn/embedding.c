/* embedding.c - nn.Embedding(num_embeddings, embedding_dim, padding_idx, sparse): a lookup table
 * initialised N(0, 1), with the padding row zeroed, as PyTorch's reset_parameters(); sparse
 * gives the weight a row-sparse gradient (nb_embedding_sparse). */
#include <stdio.h>
#include "nn_internal.h"

typedef struct embedding {
    nb_module base;
    int64_t num, dim, pad; /* pad: -1 for none, else in [0, num) */
    bool sparse;
} embedding;

static nb_tensor *embedding_forward(nb_module *m, nb_arena *ar, nb_tensor *x) {
    const embedding *e = (const embedding *)m;
    return (e->sparse ? nb_embedding_sparse : nb_embedding)(ar, x, m->params[0], e->pad);
}

static void embedding_repr(const nb_module *m, char *buf, size_t n) {
    const embedding *e = (const embedding *)m;
    int k = snprintf(buf, n, "%lld, %lld", (long long)e->num, (long long)e->dim);
    if (e->pad >= 0 && k >= 0 && (size_t)k < n) k += snprintf(buf + k, n - (size_t)k, ", padding_idx=%lld", (long long)e->pad);
    if (e->sparse && k >= 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, ", sparse=True");
}

static const nb_module_ops embedding_ops = {"Embedding", embedding_forward, embedding_repr, NULL};

static nb_module *make(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx, bool sparse,
                      nb_rng *rng) {
    if (num_embeddings <= 0 || embedding_dim <= 0)
        return nb__null(NB_EINVAL, "Embedding: sizes must be > 0, got num_embeddings=%lld, "
                        "embedding_dim=%lld", (long long)num_embeddings, (long long)embedding_dim);
    if (padding_idx != NB_NO_PADDING && (padding_idx >= num_embeddings || padding_idx < -num_embeddings))
        return nb__null(NB_EINVAL, "Padding_idx must be within num_embeddings");
    if (!rng) return nb__null(NB_EINVAL, "Embedding: rng is NULL");
    embedding *e = (embedding *)nb_module_alloc(sizeof *e, &embedding_ops);
    if (!e) return NULL;
    e->sparse = sparse;
    e->num = num_embeddings;
    e->dim = embedding_dim;
    e->pad = padding_idx == NB_NO_PADDING ? -1 : padding_idx < 0 ? padding_idx + num_embeddings : padding_idx;
    nb_tensor *w = nb_normal(NULL, 2, (int64_t[]){num_embeddings, embedding_dim}, 0.0f, 1.0f, rng);
    if (w && e->pad >= 0) memset(nb_f32(w) + e->pad * embedding_dim, 0, sizeof(float) * (size_t)embedding_dim);
    if (nb_module_add_param(&e->base, "weight", w) || nb_module_pack(&e->base)) {
        nb_module_free(&e->base);
        return NULL;
    }
    return &e->base;
}

nb_module *nb_embedding_new(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx, nb_rng *rng) {
    return make(num_embeddings, embedding_dim, padding_idx, false, rng);
}

nb_module *nb_embedding_sparse_new(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                                   nb_rng *rng) {
    return make(num_embeddings, embedding_dim, padding_idx, true, rng);
}
