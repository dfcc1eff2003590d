/* dataset.c - the dataset base: its description, the checked gather with standardisation,
 * subsets and random_split (torch.utils.data.Subset / random_split), and the per-feature
 * statistics of standardisation. The sources are in images.c, arrays.c, csv.c and npy.c. */
#include <math.h>
#include "data_internal.h"

enum { CHUNK = 256 }; /* samples per step when a function walks a dataset */

static const char *task_name(nb_task t) {
    return t == NB_CLASSIFY ? "classification" : t == NB_REGRESS ? "regression" : "unlabeled";
}

nb_dataset *nb_dataset_alloc(size_t size, const nb_dataset_ops *ops, int64_t len, int ndim,
                             const int64_t *shape, nb_task task, int64_t k) {
    if (!ops || !ops->gather) return nb__null(NB_EINVAL, "dataset: ops or ops->gather is NULL");
    if (size < sizeof(nb_dataset))
        return nb__null(NB_EINVAL, "dataset: size %zu is smaller than nb_dataset", size);
    if (len < 0) return nb__null(NB_EINVAL, "dataset: length %lld is negative", (long long)len);
    if (ndim < 1 || ndim > NB_MAX_DIMS - 1 || !shape)
        return nb__null(NB_EINVAL, "dataset: a sample has rank %d; it must be 1..%d", ndim, NB_MAX_DIMS - 1);
    int64_t full[NB_MAX_DIMS] = {len};
    memcpy(full + 1, shape, sizeof(int64_t) * (size_t)ndim);
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 1)
            return nb__null(NB_EINVAL, "dataset: a sample of shape %s has an empty dimension",
                            nb__shape_of(ndim, shape, 0));
    if (nb__check_shape("dataset", NB_FLOAT32, ndim + 1, full)) return NULL;
    if (task != NB_CLASSIFY && task != NB_REGRESS && task != NB_UNLABELED)
        return nb__null(NB_EINVAL, "dataset: unknown task %d", (int)task);
    if (task != NB_UNLABELED && (k < 1 || k > (int64_t)1 << 24))
        return nb__null(NB_EINVAL, "dataset: %s needs %s in 1..%d, got %lld", task_name(task),
                        task == NB_CLASSIFY ? "a class count" : "a target width", 1 << 24, (long long)k);
    nb_dataset *ds = nb__calloc(1, size);
    if (!ds) return NULL;
    ds->ops = ops;
    ds->len = len;
    ds->ndim = ndim;
    memcpy(ds->shape, shape, sizeof(int64_t) * (size_t)ndim);
    ds->features = nb__numel(ndim, shape);
    ds->task = task;
    if (task == NB_CLASSIFY) ds->classes = k;
    if (task == NB_REGRESS) ds->targets = k;
    return ds;
}

int64_t nb_dataset_len(const nb_dataset *ds) { return ds ? ds->len : 0; }

void nb_dataset_free(nb_dataset *ds) {
    if (!ds) return;
    nb__free(ds->mean);
    nb__free(ds->std);
    if (ds->ops->free) ds->ops->free(ds);
    nb__free(ds);
}

/* Bytes of one sample's target in a y buffer. */
static size_t y_size(const nb_dataset *ds) {
    return ds->task == NB_CLASSIFY ? sizeof(int32_t) : ds->task == NB_REGRESS ? sizeof(float) * (size_t)ds->targets : 0;
}

int nb_dataset_get(const nb_dataset *ds, const int64_t *idx, int64_t n, float *x, void *y) {
    if (!ds || (n > 0 && (!idx || !x || (!y && ds->task != NB_UNLABELED))))
        return nb__error(NB_EINVAL, "dataset_get: %s is NULL", !ds ? "the dataset" : !idx ? "idx" : !x ? "x" : "y");
    if (n < 0) return nb__error(NB_EINVAL, "dataset_get: n is negative (%lld)", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= ds->len)
            return nb__error(NB_EINVAL, "dataset_get: index %lld is out of range for a dataset of %lld samples",
                             (long long)idx[i], (long long)ds->len);
    int rc = n ? ds->ops->gather(ds, idx, n, x, ds->task == NB_UNLABELED ? NULL : y) : NB_OK;
    if (rc || !ds->mean) return rc;
    const int64_t F = ds->features;
    for (int64_t i = 0; i < n; i++) { /* (x - mean) / std: what transforms.Normalize computes */
        float *r = x + i * F;
        for (int64_t j = 0; j < F; j++) r[j] = (r[j] - ds->mean[j]) / ds->std[j];
    }
    return NB_OK;
}

/* ---- standardisation ------------------------------------------------------------------------- */

int nb_dataset_normalize(nb_dataset *ds, const float *mean, const float *std) {
    if (!ds) return nb__error(NB_EINVAL, "dataset_normalize: the dataset is NULL");
    if (!mean != !std) return nb__error(NB_EINVAL, "dataset_normalize: give both mean and std, or neither");
    if (!mean) {
        nb__free(ds->mean);
        nb__free(ds->std);
        ds->mean = ds->std = NULL;
        return NB_OK;
    }
    for (int64_t j = 0; j < ds->features; j++)
        if (!isfinite(mean[j]) || !(std[j] > 0) || !isfinite(std[j]))
            return nb__error(NB_EINVAL, "dataset_normalize: feature %lld has mean %g and std %g (a finite mean "
                             "and a positive finite std are needed)", (long long)j, (double)mean[j], (double)std[j]);
    size_t bytes = sizeof(float) * (size_t)ds->features;
    float *m = nb__malloc(bytes), *s = nb__malloc(bytes);
    if (!m || !s) {
        nb__free(m);
        nb__free(s);
        return NB_ENOMEM;
    }
    memcpy(m, mean, bytes);
    memcpy(s, std, bytes);
    nb__free(ds->mean);
    nb__free(ds->std);
    ds->mean = m;
    ds->std = s;
    return NB_OK;
}

/* Calls fn(ctx, rows, count) over every sample of ds, CHUNK at a time (scratch: CHUNK rows). */
static int walk(const nb_dataset *ds, float *scratch, void *yscratch, void (*fn)(void *, const float *, int64_t),
                void *ctx) {
    int64_t idx[CHUNK];
    for (int64_t b = 0; b < ds->len; b += CHUNK) {
        int64_t n = ds->len - b < CHUNK ? ds->len - b : CHUNK;
        for (int64_t i = 0; i < n; i++) idx[i] = b + i;
        int rc = nb_dataset_get(ds, idx, n, scratch, yscratch);
        if (rc) return rc;
        fn(ctx, scratch, n);
    }
    return NB_OK;
}

typedef struct moments {
    int64_t F;
    double *sum, *mean; /* pass 1: sum; pass 2: sum of squared deviations from mean */
} moments;

static void add_sum(void *ctx, const float *x, int64_t n) {
    moments *m = ctx;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m->F; j++) m->sum[j] += x[i * m->F + j];
}

static void add_dev(void *ctx, const float *x, int64_t n) {
    moments *m = ctx;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m->F; j++) {
            double d = x[i * m->F + j] - m->mean[j];
            m->sum[j] += d * d;
        }
}

int nb_dataset_fit_standardize(const nb_dataset *ds, float *mean, float *std) {
    if (!ds || !mean || !std)
        return nb__error(NB_EINVAL, "dataset_fit_standardize: %s is NULL", !ds ? "the dataset" : !mean ? "mean" : "std");
    if (ds->len == 0) return nb__error(NB_EINVAL, "dataset_fit_standardize: the dataset is empty");
    const int64_t F = ds->features;
    float *scratch = nb__malloc(sizeof(float) * (size_t)(CHUNK * F));
    void *ys = nb__malloc(y_size(ds) * CHUNK + 1);
    double *acc = nb__calloc((size_t)(2 * F), sizeof(double));
    int rc = NB_ENOMEM;
    if (scratch && ys && acc) { /* two passes: the mean, then the deviations from it */
        moments m = {F, acc, acc + F};
        rc = walk(ds, scratch, ys, add_sum, &m);
        for (int64_t j = 0; j < F; j++) m.mean[j] = m.sum[j] / (double)ds->len, m.sum[j] = 0;
        if (!rc) rc = walk(ds, scratch, ys, add_dev, &m);
        for (int64_t j = 0; !rc && j < F; j++) {
            double sd = sqrt(m.sum[j] / (double)ds->len);
            mean[j] = (float)m.mean[j];
            std[j] = sd > 0 && (float)sd > 0 ? (float)sd : 1.0f; /* no spread: leave the feature as is */
            if (!isfinite(mean[j]) || !isfinite(std[j]))
                rc = nb__error(NB_EINVAL, "dataset_fit_standardize: feature %lld has no finite mean or std", (long long)j);
        }
    }
    nb__free(scratch);
    nb__free(ys);
    nb__free(acc);
    return rc;
}

/* ---- Subset and random_split ------------------------------------------------------------------ */
typedef struct subset {
    nb_dataset base;
    nb_dataset *parent;
    int64_t *idx;
} subset;

/* The parent's samples for idx[0..n) mapped through the subset, CHUNK at a time (no heap). */
static int subset_gather(const nb_dataset *ds, const int64_t *idx, int64_t n, float *x, void *y) {
    const subset *s = (const subset *)ds;
    int64_t map[CHUNK];
    size_t ys = y_size(ds);
    for (int64_t b = 0; b < n; b += CHUNK) {
        int64_t k = n - b < CHUNK ? n - b : CHUNK;
        for (int64_t i = 0; i < k; i++) map[i] = s->idx[idx[b + i]];
        int rc = nb_dataset_get(s->parent, map, k, x + b * ds->features, y ? (char *)y + (size_t)b * ys : NULL);
        if (rc) return rc;
    }
    return NB_OK;
}

static void subset_prefetch(const nb_dataset *ds, const int64_t *idx, int64_t n) {
    const subset *s = (const subset *)ds;
    if (!s->parent->ops->prefetch) return;
    int64_t map[CHUNK];
    if (n > CHUNK) n = CHUNK;
    for (int64_t i = 0; i < n; i++) map[i] = s->idx[idx[i]];
    s->parent->ops->prefetch(s->parent, map, n);
}

static void subset_free(nb_dataset *ds) { nb__free(((subset *)ds)->idx); }

static const nb_dataset_ops subset_ops = {"subset", subset_gather, subset_prefetch, subset_free};

nb_dataset *nb_dataset_subset(nb_dataset *ds, const int64_t *indices, int64_t n) {
    if (!ds || (!indices && n > 0)) return nb__null(NB_EINVAL, "dataset_subset: %s is NULL", ds ? "indices" : "the dataset");
    if (n < 0) return nb__null(NB_EINVAL, "dataset_subset: n is negative (%lld)", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= ds->len)
            return nb__null(NB_EINVAL, "dataset_subset: index %lld (at %lld) is out of range for a dataset of "
                            "%lld samples", (long long)indices[i], (long long)i, (long long)ds->len);
    subset *s = (subset *)nb_dataset_alloc(sizeof(subset), &subset_ops, n, ds->ndim, ds->shape, ds->task,
                                           ds->task == NB_CLASSIFY ? ds->classes : ds->targets);
    if (!s) return NULL;
    s->parent = ds;
    if (!(s->idx = nb__malloc(sizeof(int64_t) * (size_t)(n ? n : 1)))) {
        nb_dataset_free(&s->base);
        return NULL;
    }
    if (n) memcpy(s->idx, indices, sizeof(int64_t) * (size_t)n);
    return &s->base;
}

int nb_split_lengths(int64_t n, const double *fractions, int k, int64_t *lengths) {
    if (!fractions || !lengths) return nb__error(NB_EINVAL, "split_lengths: %s is NULL", fractions ? "lengths" : "fractions");
    if (k < 1) return nb__error(NB_EINVAL, "split_lengths: k must be at least 1, got %d", k);
    if (n < 0) return nb__error(NB_EINVAL, "split_lengths: n is negative (%lld)", (long long)n);
    double sum = 0;
    for (int i = 0; i < k; i++) {
        if (!(fractions[i] >= 0 && fractions[i] <= 1))
            return nb__error(NB_EINVAL, "Fraction at index %d is not between 0 and 1", i);
        sum += fractions[i]; /* in order, as Python's sum() */
    }
    /* math.isclose(sum, 1) (relative tolerance 1e-9) and sum <= 1, as torch requires */
    if (!(fabs(sum - 1) <= 1e-9 * fmax(fabs(sum), 1.0) && sum <= 1))
        return nb__error(NB_EINVAL, "split_lengths: the fractions sum to %s, not 1", nb__pyfloat(sum, 0));
    int64_t total = 0;
    for (int i = 0; i < k; i++) total += lengths[i] = (int64_t)floor((double)n * fractions[i]);
    for (int64_t r = 0; r < n - total; r++) lengths[r % k]++; /* the remainder, round-robin */
    return NB_OK;
}

int nb_random_split(nb_dataset *ds, const int64_t *lengths, int k, nb_rng *gen, nb_dataset **parts) {
    if (!ds || !lengths || !gen || !parts)
        return nb__error(NB_EINVAL, "random_split: %s is NULL", !ds ? "the dataset" : !lengths ? "lengths"
                         : !gen ? "the generator" : "parts");
    if (k < 1) return nb__error(NB_EINVAL, "random_split: k must be at least 1, got %d", k);
    int64_t sum = 0;
    for (int i = 0; i < k; i++) {
        if (lengths[i] < 0 || lengths[i] > ds->len)
            return nb__error(NB_EINVAL, "random_split: length %lld of part %d is out of range", (long long)lengths[i], i);
        sum += lengths[i];
    }
    if (sum != ds->len) return nb__error(NB_EINVAL, "Sum of input lengths does not equal the length of the input dataset!");
    int64_t *perm = nb__malloc(sizeof(int64_t) * (size_t)(sum ? sum : 1));
    if (!perm) return NB_ENOMEM;
    nb_randperm(gen, sum, perm); /* randperm(sum(lengths), generator), sliced in order */
    int64_t at = 0;
    int made = 0;
    for (; made < k; made++) {
        if (!(parts[made] = nb_dataset_subset(ds, perm + at, lengths[made]))) break;
        at += lengths[made];
    }
    nb__free(perm);
    if (made == k) return NB_OK;
    int rc = nb_last_status();
    for (int i = 0; i < made; i++) {
        nb_dataset_free(parts[i]);
        parts[i] = NULL;
    }
    return rc;
}
