/* arrays.c - float32 samples in memory as a dataset: the caller's arrays (borrowed, as
 * TensorDataset) or the arrays a reader loaded (owned). The gather copies whole rows, on
 * nabla's pool, prefetching a few rows ahead (random rows of a large array are cache misses). */
#include "data_internal.h"

typedef struct arrays {
    nb_dataset base;
    const float *x;
    const void *y;
    bool owns;
} arrays;

enum { AHEAD = 4 };

static inline void prefetch_row(const arrays *a, int64_t s) {
    const char *p = (const char *)(a->x + s * a->base.features);
    for (int64_t k = 0; k < a->base.features * (int64_t)sizeof(float); k += 64) __builtin_prefetch(p + k);
}

typedef struct copy_job {
    const arrays *a;
    const int64_t *idx;
    float *dst;
} copy_job;

static void copy_part(void *ctx, int64_t b, int64_t e) {
    const copy_job *j = ctx;
    const int64_t F = j->a->base.features;
    for (int64_t i = b; i < e && i < b + AHEAD; i++) prefetch_row(j->a, j->idx[i]);
    for (int64_t i = b; i < e; i++) {
        if (i + AHEAD < e) prefetch_row(j->a, j->idx[i + AHEAD]);
        memcpy(j->dst + i * F, j->a->x + j->idx[i] * F, sizeof(float) * (size_t)F);
    }
}

static int arrays_gather(const nb_dataset *ds, const int64_t *idx, int64_t n, float *x, void *y) {
    const arrays *a = (const arrays *)ds;
    nb__parallel_for(n, ds->features >= 64 ? 16 : 1024, copy_part, &(copy_job){a, idx, x});
    if (ds->task == NB_CLASSIFY)
        for (int64_t i = 0; i < n; i++) ((int32_t *)y)[i] = ((const int32_t *)a->y)[idx[i]];
    else if (ds->task == NB_REGRESS)
        for (int64_t i = 0; i < n; i++)
            memcpy((float *)y + i * ds->targets, (const float *)a->y + idx[i] * ds->targets,
                   sizeof(float) * (size_t)ds->targets);
    return NB_OK;
}

static void arrays_prefetch(const nb_dataset *ds, const int64_t *idx, int64_t n) {
    for (int64_t i = 0; i < n && i < AHEAD; i++) prefetch_row((const arrays *)ds, idx[i]);
}

static void arrays_free(nb_dataset *ds) {
    arrays *a = (arrays *)ds;
    if (!a->owns) return;
    nb__free_aligned((void *)a->x);
    nb__free((void *)a->y);
}

static const nb_dataset_ops arrays_ops = {"arrays", arrays_gather, arrays_prefetch, arrays_free};

static arrays *make(const char *type, int ndim, const int64_t *shape, nb_task task, int64_t k) {
    static const nb_dataset_ops csv_ops = {"csv", arrays_gather, arrays_prefetch, arrays_free};
    static const nb_dataset_ops npy_ops = {"npy", arrays_gather, arrays_prefetch, arrays_free};
    const nb_dataset_ops *ops = !strcmp(type, "csv") ? &csv_ops : !strcmp(type, "npy") ? &npy_ops : &arrays_ops;
    if (!shape || ndim < 2) return nb__null(NB_EINVAL, "dataset_arrays: x must have a shape [N, ...] of rank 2 or more");
    return (arrays *)nb_dataset_alloc(sizeof(arrays), ops, shape[0], ndim - 1, shape + 1, task, k);
}

nb_dataset *nb_dataset_arrays(const float *x, int ndim, const int64_t *shape, const void *y, nb_task task, int64_t k) {
    if (!x || !shape || (!y && task != NB_UNLABELED))
        return nb__null(NB_EINVAL, "dataset_arrays: %s is NULL", !x ? "x" : !shape ? "shape" : "y");
    if (task == NB_CLASSIFY) { /* labels must be class indices; k 0: the largest + 1 */
        if (k < 0) return nb__null(NB_EINVAL, "dataset_arrays: the class count is negative (%lld)", (long long)k);
        int64_t top = -1, n = ndim >= 1 ? shape[0] : 0;
        for (int64_t i = 0; i < n; i++) {
            int32_t v = ((const int32_t *)y)[i];
            if (v < 0 || (k && v >= k))
                return nb__null(NB_EINVAL, "dataset_arrays: label %d of sample %lld is not a class index 0..%lld", v,
                                (long long)i, (long long)(k ? k : INT32_MAX) - 1);
            if (v > top) top = v;
        }
        if (!k) k = top + 1 > 0 ? top + 1 : 1;
    }
    arrays *a = make("arrays", ndim, shape, task, k);
    if (!a) return NULL;
    a->x = x;
    a->y = y;
    return &a->base;
}

nb_dataset *nb_dataset_tensors(const nb_tensor *x, const nb_tensor *y, int64_t classes) {
    if (!x || !y) return nb__null(NB_EINVAL, "dataset_tensors: %s is NULL", x ? "y" : "x");
    if (x->dtype != NB_FLOAT32 || x->ndim < 2)
        return nb__null(NB_EINVAL, "dataset_tensors: x must be float32 [N, ...], got %s %s", nb__dtype_name(x->dtype),
                        nb__shape(x, 0));
    bool cls = y->dtype == NB_INT32;
    if ((!cls && y->dtype != NB_FLOAT32) || y->ndim < 1 || y->ndim > 2 - cls || y->shape[0] != x->shape[0])
        return nb__null(NB_ESHAPE, "dataset_tensors: y has %s %s; expected int32 [%lld] (class ids) or float32 [%lld] "
                        "or [%lld, k] (regression targets)", nb__dtype_name(y->dtype), nb__shape(y, 0),
                        (long long)x->shape[0], (long long)x->shape[0], (long long)x->shape[0]);
    return nb_dataset_arrays(nb_f32(x), x->ndim, x->shape, y->data, cls ? NB_CLASSIFY : NB_REGRESS,
                             cls ? classes : y->ndim == 2 ? y->shape[1] : 1);
}

nb_dataset *nb__dataset_owning(const char *type, float *x, int ndim, const int64_t *shape, void *y,
                               nb_task task, int64_t k) {
    arrays *a = make(type, ndim, shape, task, k);
    if (!a) {
        nb__free_aligned(x);
        nb__free(y);
        return NULL;
    }
    a->x = x;
    a->y = y;
    a->owns = true;
    return &a->base;
}

size_t nb__max_bytes(const nb_read_opts *o) { return o->max_bytes ? o->max_bytes : NB_DATA_MAX_BYTES; }
