/* loader.c - the DataLoader: a seeded permutation per epoch, consecutive batches of it
 * (the last one partial unless drop_last), gathered and scaled x/255 into the arena.
 * The gather reads random rows of a large array (47 MB for Fashion-MNIST), each a cache miss:
 * it prefetches whole rows a few samples ahead, and the first rows of the next batch while
 * the step computes. */
#include "../core/internal.h"

struct nb_loader {
    const nb_tensor *x, *y;
    nb_loader_opts o;
    int64_t n, row; /* samples, bytes per sample */
    int64_t *perm;
    int64_t epoch, batch; /* batch -1: no epoch in progress */
    nb_rng rng, rng_epoch;
};

nb_loader_opts nb_loader_defaults(void) {
    return (nb_loader_opts){.batch_size = 64, .shuffle = true, .drop_last = false, .seed = 0,
                            .flatten = false};
}

nb_loader *nb_loader_new(const nb_tensor *x, const nb_tensor *y, const nb_loader_opts *opts) {
    nb_loader_opts o = opts ? *opts : nb_loader_defaults();
    if (!x || !y) return nb__null(NB_EINVAL, "loader: %s is NULL", x ? "labels" : "images");
    if (x->dtype != NB_UINT8 || x->ndim < 1)
        return nb__null(NB_EINVAL, "loader: images must be uint8 [N, ...], got %s %s",
                        nb__dtype_name(x->dtype), nb__shape(x, 0));
    if ((y->dtype != NB_UINT8 && y->dtype != NB_INT32) || y->ndim != 1 || y->shape[0] != x->shape[0])
        return nb__null(NB_ESHAPE, "loader: labels have shape %s, expected [%lld] (uint8 or int32)",
                        nb__shape(y, 0), (long long)x->shape[0]);
    if (o.batch_size <= 0)
        return nb__null(NB_EINVAL, "loader: batch_size should be a positive integer value, but got "
                        "batch_size=%lld", (long long)o.batch_size);
    nb_loader *ld = nb__calloc(1, sizeof *ld);
    if (!ld) return NULL;
    ld->x = x;
    ld->y = y;
    ld->o = o;
    ld->n = x->shape[0];
    ld->row = ld->n ? x->numel / ld->n : 0;
    ld->perm = nb__malloc(sizeof(int64_t) * (size_t)(ld->n ? ld->n : 1));
    if (!ld->perm) {
        nb__free(ld);
        return NULL;
    }
    ld->batch = -1;
    nb_rng_seed(&ld->rng, o.seed);
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

/* torch.randperm with the loader's generator: same seed, same order as PyTorch. */
static void draw_permutation(nb_loader *ld) {
    ld->rng_epoch = ld->rng;
    if (ld->o.shuffle) {
        nb_randperm(&ld->rng, ld->n, ld->perm);
    } else {
        for (int64_t i = 0; i < ld->n; i++) ld->perm[i] = i;
    }
}

enum { AHEAD = 4 }; /* rows prefetched ahead of the one being converted */

/* Ask for every cache line of sample s. */
static inline void prefetch_row(const nb_loader *ld, int64_t s) {
    const uint8_t *p = nb_u8(ld->x) + s * ld->row;
    for (int64_t k = 0; k < ld->row; k += 64) __builtin_prefetch(p + k);
}

/* Rows perm[b0..b0+B) into dst as x/255, exactly as torch's x.float() / 255: a true division
 * (x * (1/255.f) differs in 126 of the 256 values), which gcc vectorises. Compiled for
 * x86-64-v3 too (twice as wide), picked at load time. */
NB_FMA_CLONES static void gather_rows(const nb_loader *ld, int64_t b0, int64_t B, float *restrict dst) {
    const uint8_t *src = nb_u8(ld->x);
    int64_t row = ld->row;
    for (int64_t i = 0; i < B; i++) {
        if (i + AHEAD < B) prefetch_row(ld, ld->perm[b0 + i + AHEAD]);
        const uint8_t *restrict r = src + ld->perm[b0 + i] * row;
        float *restrict d = dst + i * row;
        for (int64_t j = 0; j < row; j++) d[j] = (float)r[j] / 255.0f;
    }
}

typedef struct gather_job {
    const nb_loader *ld;
    int64_t b0;
    float *dst;
} gather_job;

/* Rows [b, e) of the batch, on nabla's pool: each thread gathers a part of the rows. */
static void gather_part(void *ctx, int64_t b, int64_t e) {
    const gather_job *j = ctx;
    for (int64_t i = b; i < e && i < b + AHEAD; i++) prefetch_row(j->ld, j->ld->perm[j->b0 + i]);
    gather_rows(j->ld, j->b0 + b, e - b, j->dst + b * j->ld->row);
}

int nb_loader_next(nb_loader *ld, nb_arena *ar, nb_tensor **x, nb_tensor **y) {
    if (!ld || !ar || !x || !y)
        return nb__error(NB_EINVAL, "loader_next: %s is NULL", !ld ? "the loader"
                         : !ar ? "the arena (batches are written in an arena)" : !x ? "x" : "y");
    if (ld->batch < 0) {
        draw_permutation(ld);
        ld->epoch++;
        ld->batch = 0;
    }
    if (ld->batch >= nb_loader_num_batches(ld)) {
        ld->batch = -1;
        return 0;
    }
    int64_t b0 = ld->batch * ld->o.batch_size;
    int64_t B = ld->n - b0 < ld->o.batch_size ? ld->n - b0 : ld->o.batch_size;
    int64_t shape[NB_MAX_DIMS] = {B};
    int nd = ld->o.flatten ? 2 : ld->x->ndim;
    if (ld->o.flatten) shape[1] = ld->row;
    else
        for (int i = 1; i < nd; i++) shape[i] = ld->x->shape[i];
    nb_tensor *xb = nb__tensor(ar, NB_FLOAT32, nd, shape);
    nb_tensor *yb = nb__tensor(ar, NB_INT32, 1, &B);
    if (!xb || !yb) return NB_ENOMEM;
    nb__parallel_for(B, 16, gather_part, &(gather_job){ld, b0, nb_f32(xb)});
    int32_t *dy = nb_i32(yb);
    if (ld->y->dtype == NB_UINT8)
        for (int64_t i = 0; i < B; i++) dy[i] = nb_u8(ld->y)[ld->perm[b0 + i]];
    else
        for (int64_t i = 0; i < B; i++) dy[i] = nb_i32(ld->y)[ld->perm[b0 + i]];
    /* the next batch's first rows arrive while this step computes */
    for (int64_t i = b0 + B; i < b0 + B + AHEAD && i < nb_loader_num_samples(ld); i++) prefetch_row(ld, ld->perm[i]);
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
    st.rng = ld->batch >= 0 ? ld->rng_epoch : ld->rng;
    return st;
}

int nb_loader_set_state(nb_loader *ld, const nb_loader_state *st) {
    if (!ld || !st) return nb__error(NB_EINVAL, "loader_set_state: %s is NULL", ld ? "the state" : "the loader");
    if (st->epoch < 0 || st->batch < -1 || st->batch > nb_loader_num_batches(ld))
        return nb__error(NB_EINVAL, "loader_set_state: position epoch %lld batch %lld is out of range",
                         (long long)st->epoch, (long long)st->batch);
    ld->rng = st->rng;
    ld->epoch = st->epoch;
    ld->batch = st->batch;
    if (st->batch >= 0) draw_permutation(ld); /* same generator state, same permutation */
    return NB_OK;
}

void nb_loader_free(nb_loader *ld) {
    if (!ld) return;
    nb__free(ld->perm);
    nb__free(ld);
}
