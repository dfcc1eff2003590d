/* loader.c - the DataLoader: the order a sampler gives for each epoch, consecutive batches of
 * it (the last one partial unless drop_last), gathered by the dataset into the arena. While
 * the step computes, the first rows of the next batch are already on their way to the cache. */
#include "data_internal.h"

struct nb_loader {
    nb_dataset *ds;
    nb_sampler *sampler;
    nb_dataset *own_ds;      /* nb_loader_new's images dataset */
    nb_sampler *own_sampler; /* the sampler made from the options when none is given */
    nb_loader_opts o;
    int64_t n; /* indices per epoch */
    int64_t *perm;
    int64_t *rows; /* one batch's indices in interleaved order (o.interleave > 1) */
    int64_t epoch, batch; /* batch -1: no epoch in progress */
    nb_rng rng_epoch;     /* the sampler's generator before this epoch's order */
};

nb_loader_opts nb_loader_defaults(void) {
    return (nb_loader_opts){.batch_size = 64, .shuffle = true, .drop_last = false, .seed = 0,
                            .flatten = false};
}

nb_loader *nb_loader_over(nb_dataset *ds, nb_sampler *sampler, const nb_loader_opts *opts) {
    nb_loader_opts o = opts ? *opts : nb_loader_defaults();
    if (!ds) return nb__null(NB_EINVAL, "loader: the dataset is NULL");
    if (o.batch_size <= 0)
        return nb__null(NB_EINVAL, "loader: batch_size should be a positive integer value, but got "
                        "batch_size=%lld", (long long)o.batch_size);
    if (o.interleave < 0 || o.interleave > 64)
        return nb__null(NB_EINVAL, "loader: interleave must be 0..64, got %d", o.interleave);
    if (sampler && nb__sampler_bound(sampler) > ds->len)
        return nb__null(NB_EINVAL, "loader: the sampler gives indices up to %lld, the dataset has %lld samples",
                        (long long)nb__sampler_bound(sampler) - 1, (long long)ds->len);
    nb_loader *ld = nb__calloc(1, sizeof *ld);
    if (!ld) return NULL;
    ld->ds = ds;
    ld->o = o;
    if (!sampler) { /* DataLoader(shuffle=..., generator=manual_seed(seed)) */
        sampler = ld->own_sampler = o.shuffle ? nb_random_sampler(ds->len, o.seed) : nb_sequential_sampler(ds->len);
        if (sampler) nb_rng_seed(nb__sampler_rng(sampler), o.seed); /* saved as the loader's generator */
    }
    ld->sampler = sampler;
    ld->n = nb_sampler_len(sampler);
    ld->perm = sampler ? nb__malloc(sizeof(int64_t) * (size_t)(ld->n ? ld->n : 1)) : NULL;
    if (o.interleave > 1) ld->rows = nb__malloc(sizeof(int64_t) * (size_t)o.batch_size);
    if (!ld->perm || (o.interleave > 1 && !ld->rows)) {
        nb_loader_free(ld);
        return NULL;
    }
    ld->batch = -1;
    return ld;
}

nb_loader *nb_loader_new(const nb_tensor *x, const nb_tensor *y, const nb_loader_opts *opts) {
    nb_dataset *ds = nb__dataset_images(x, y, 0, "loader");
    nb_loader *ld = ds ? nb_loader_over(ds, NULL, opts) : NULL;
    if (!ld) {
        nb_dataset_free(ds);
        return NULL;
    }
    ld->own_ds = ds;
    return ld;
}

int64_t nb_loader_num_samples(const nb_loader *ld) {
    if (!ld) return 0;
    return ld->o.drop_last ? ld->n / ld->o.batch_size * ld->o.batch_size : ld->n;
}

int64_t nb_loader_num_batches(const nb_loader *ld) {
    if (!ld) return 0;
    int64_t b = ld->o.batch_size;
    return ld->o.drop_last ? ld->n / b : ld->n ? (ld->n - 1) / b + 1 : 0; /* ceil, no overflow */
}

const nb_dataset *nb_loader_dataset(const nb_loader *ld) { return ld ? ld->ds : NULL; }

/* This epoch's order from the sampler, remembering its generator's state before the draw. */
static int draw_order(nb_loader *ld) {
    ld->rng_epoch = *nb__sampler_rng(ld->sampler);
    return nb_sampler_indices(ld->sampler, ld->perm);
}

int nb_loader_next(nb_loader *ld, nb_arena *ar, nb_tensor **x, nb_tensor **y) {
    if (!ld || !ar || !x || !y)
        return nb__error(NB_EINVAL, "loader_next: %s is NULL", !ld ? "the loader"
                         : !ar ? "the arena (batches are written in an arena)" : !x ? "x" : "y");
    if (ld->batch < 0) {
        int rc = draw_order(ld);
        if (rc) return rc;
        ld->epoch++;
        ld->batch = 0;
    }
    if (ld->batch >= nb_loader_num_batches(ld)) {
        ld->batch = -1;
        return 0;
    }
    const nb_dataset *ds = ld->ds;
    int64_t b0 = ld->batch * ld->o.batch_size;
    int64_t B = ld->n - b0 < ld->o.batch_size ? ld->n - b0 : ld->o.batch_size;
    int64_t shape[NB_MAX_DIMS] = {B};
    int nd = ld->o.flatten ? 2 : ds->ndim + 1;
    if (ld->o.flatten) shape[1] = ds->features;
    else memcpy(shape + 1, ds->shape, sizeof(int64_t) * (size_t)ds->ndim);
    nb_tensor *xb = nb__tensor(ar, NB_FLOAT32, nd, shape), *yb = NULL;
    if (ds->task == NB_CLASSIFY) yb = nb__tensor(ar, NB_INT32, 1, &B);
    else if (ds->task == NB_REGRESS) yb = nb__tensor(ar, NB_FLOAT32, 2, (int64_t[]){B, ds->targets});
    if (!xb || (!yb && ds->task != NB_UNLABELED)) return NB_ENOMEM;
    const int64_t *idx = ld->perm + b0;
    if (ld->rows) { /* residue classes one after the other */
        int64_t r = 0;
        for (int64_t p = 0; p < ld->o.interleave; p++)
            for (int64_t i = p; i < B; i += ld->o.interleave) ld->rows[r++] = idx[i];
        idx = ld->rows;
    }
    int rc = nb_dataset_get(ds, idx, B, nb_f32(xb), yb ? yb->data : NULL);
    if (rc) return rc;
    /* the next batch's first rows arrive while this step computes */
    int64_t next = b0 + B, left = nb_loader_num_samples(ld) - next;
    if (ds->ops->prefetch && left > 0) ds->ops->prefetch(ds, ld->perm + next, left);
    ld->batch++;
    *x = xb;
    *y = yb;
    return 1;
}

int nb_loader_inputs(void *loader, nb_arena *ar, nb_tensor **x) {
    nb_tensor *y;
    return nb_loader_next(loader, ar, x, &y);
}

nb_loader_state nb_loader_get_state(const nb_loader *ld) {
    nb_loader_state st;
    memset(&st, 0, sizeof st);
    st.batch = -1;
    if (!ld) return st;
    st.epoch = ld->epoch;
    st.batch = ld->batch;
    st.rng = ld->batch >= 0 ? ld->rng_epoch : *nb__sampler_rng(ld->sampler);
    return st;
}

int nb_loader_set_state(nb_loader *ld, const nb_loader_state *st) {
    if (!ld || !st) return nb__error(NB_EINVAL, "loader_set_state: %s is NULL", ld ? "the state" : "the loader");
    if (st->epoch < 0 || st->batch < -1 || st->batch > nb_loader_num_batches(ld))
        return nb__error(NB_EINVAL, "loader_set_state: position epoch %lld batch %lld is out of range",
                         (long long)st->epoch, (long long)st->batch);
    *nb__sampler_rng(ld->sampler) = st->rng;
    ld->epoch = st->epoch;
    ld->batch = st->batch;
    if (st->batch >= 0) return draw_order(ld); /* same generator state, same order */
    return NB_OK;
}

void nb_loader_free(nb_loader *ld) {
    if (!ld) return;
    nb__free(ld->perm);
    nb__free(ld->rows);
    nb_sampler_free(ld->own_sampler);
    nb_dataset_free(ld->own_ds);
    nb__free(ld);
}
