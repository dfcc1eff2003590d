/* images.c - IDX-style images as a dataset: uint8 samples kept as they are in memory and
 * scaled x/255 per batch, labels uint8 or int32.
 * The gather reads random rows of a large array (47 MB for Fashion-MNIST), each a cache miss:
 * it prefetches whole rows a few samples ahead, and the loader asks for the first rows of the
 * next batch while the step computes. */
#include "data_internal.h"

typedef struct images {
    nb_dataset base;
    const nb_tensor *x, *y;
    nb_mnist owned; /* nb_dataset_mnist: the tensors the dataset loaded */
} images;

enum { AHEAD = 4 }; /* rows prefetched ahead of the one being converted */

/* Ask for every cache line of sample s. */
static inline void prefetch_row(const images *im, int64_t s) {
    const uint8_t *p = nb_u8(im->x) + s * im->base.features;
    for (int64_t k = 0; k < im->base.features; k += 64) __builtin_prefetch(p + k);
}

/* Rows idx[0..B) into dst as x/255, exactly as torch's x.float() / 255: a true division
 * (x * (1/255.f) differs in 126 of the 256 values), which gcc vectorises. Compiled for
 * x86-64-v3 too (twice as wide), picked at load time. */
NB_FMA_CLONES static void gather_rows(const images *im, const int64_t *idx, int64_t B, float *restrict dst) {
    const uint8_t *src = nb_u8(im->x);
    int64_t row = im->base.features;
    for (int64_t i = 0; i < B; i++) {
        if (i + AHEAD < B) prefetch_row(im, idx[i + AHEAD]);
        const uint8_t *restrict r = src + idx[i] * row;
        float *restrict d = dst + i * row;
        for (int64_t j = 0; j < row; j++) d[j] = (float)r[j] / 255.0f;
    }
}

typedef struct gather_job {
    const images *im;
    const int64_t *idx;
    float *dst;
} gather_job;

/* Rows [b, e) of the batch, on nabla's pool: each thread gathers a part of the rows. */
static void gather_part(void *ctx, int64_t b, int64_t e) {
    const gather_job *j = ctx;
    for (int64_t i = b; i < e && i < b + AHEAD; i++) prefetch_row(j->im, j->idx[i]);
    gather_rows(j->im, j->idx + b, e - b, j->dst + b * j->im->base.features);
}

static int images_gather(const nb_dataset *ds, const int64_t *idx, int64_t n, float *x, void *y) {
    const images *im = (const images *)ds;
    nb__parallel_for(n, 16, gather_part, &(gather_job){im, idx, x});
    int32_t *dy = y;
    if (im->y->dtype == NB_UINT8)
        for (int64_t i = 0; i < n; i++) dy[i] = nb_u8(im->y)[idx[i]];
    else
        for (int64_t i = 0; i < n; i++) dy[i] = nb_i32(im->y)[idx[i]];
    return NB_OK;
}

static void images_prefetch(const nb_dataset *ds, const int64_t *idx, int64_t n) {
    for (int64_t i = 0; i < n && i < AHEAD; i++) prefetch_row((const images *)ds, idx[i]);
}

static void images_free(nb_dataset *ds) { nb_mnist_free(&((images *)ds)->owned); }

static const nb_dataset_ops images_ops = {"images", images_gather, images_prefetch, images_free};

nb_dataset *nb__dataset_images(const nb_tensor *x, const nb_tensor *y, int64_t classes, const char *who) {
    if (!x || !y) return nb__null(NB_EINVAL, "%s: %s is NULL", who, x ? "labels" : "images");
    if (x->dtype != NB_UINT8 || x->ndim < 2)
        return nb__null(NB_EINVAL, "%s: images must be uint8 [N, ...], got %s %s", who, nb__dtype_name(x->dtype),
                        nb__shape(x, 0));
    if ((y->dtype != NB_UINT8 && y->dtype != NB_INT32) || y->ndim != 1 || y->shape[0] != x->shape[0])
        return nb__null(NB_ESHAPE, "%s: labels have shape %s, expected [%lld] (uint8 or int32)", who, nb__shape(y, 0),
                        (long long)x->shape[0]);
    if (classes < 0) return nb__null(NB_EINVAL, "%s: classes is negative (%lld)", who, (long long)classes);
    int64_t top = -1;
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t v = y->dtype == NB_UINT8 ? nb_u8(y)[i] : nb_i32(y)[i];
        if (v < 0 || (classes && v >= classes))
            return nb__null(NB_EINVAL, "%s: label %lld at sample %lld is not a class index 0..%lld", who,
                            (long long)v, (long long)i, (long long)(classes ? classes : INT32_MAX) - 1);
        if (v > top) top = v;
    }
    images *im = (images *)nb_dataset_alloc(sizeof(images), &images_ops, x->shape[0], x->ndim - 1, x->shape + 1,
                                            NB_CLASSIFY, classes ? classes : top + 1 > 0 ? top + 1 : 1);
    if (!im) return NULL;
    im->x = x;
    im->y = y;
    return &im->base;
}

nb_dataset *nb_dataset_images(const nb_tensor *x, const nb_tensor *y, int64_t classes) {
    return nb__dataset_images(x, y, classes, "dataset_images");
}

nb_dataset *nb_dataset_mnist(const char *dir, const char *prefix) {
    nb_mnist m;
    if (nb_mnist_load(dir, prefix, &m)) return NULL;
    images *im = (images *)nb_dataset_images(m.images, m.labels, 0);
    if (!im) {
        nb_mnist_free(&m);
        return NULL;
    }
    im->owned = m;
    return &im->base;
}
