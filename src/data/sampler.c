/* sampler.c - the order of indices for an epoch (torch.utils.data's samplers): sequential,
 * a fresh randperm per epoch, a shuffled subset, and DistributedSampler's per-process shard.
 * Each sampler keeps the generator the loader saves for exact resume: a random sampler's
 * advances with every epoch; a distributed sampler's is seeded with seed + epoch by set_epoch
 * and only copied when drawing, so the order depends on the epoch alone, as in PyTorch. */
#include "data_internal.h"

typedef enum { SEQUENTIAL, RANDOM, SUBSET_RANDOM, DISTRIBUTED } kind;

struct nb_sampler {
    kind k;
    int64_t n;       /* indices of the dataset it draws from (subset: of the subset) */
    int64_t len;     /* indices per epoch */
    int64_t *idx;    /* SUBSET_RANDOM: the subset; DISTRIBUTED: scratch for the full order */
    nb_distributed_opts d;
    nb_rng rng;
};

static nb_sampler *make(kind k, int64_t n, int64_t len, uint64_t seed, int64_t scratch) {
    if (n < 0) return nb__null(NB_EINVAL, "sampler: the number of samples is negative (%lld)", (long long)n);
    nb_sampler *s = nb__calloc(1, sizeof *s);
    if (!s) return NULL;
    if (scratch && !(s->idx = nb__malloc(sizeof(int64_t) * (size_t)scratch))) {
        nb__free(s);
        return NULL;
    }
    s->k = k;
    s->n = n;
    s->len = len;
    nb_rng_seed(&s->rng, seed);
    return s;
}

nb_sampler *nb_sequential_sampler(int64_t n) { return make(SEQUENTIAL, n, n, 0, 0); }

nb_sampler *nb_random_sampler(int64_t n, uint64_t seed) { return make(RANDOM, n, n, seed, 0); }

nb_sampler *nb_subset_random_sampler(const int64_t *indices, int64_t n, uint64_t seed) {
    if (!indices && n > 0) return nb__null(NB_EINVAL, "subset_random_sampler: indices is NULL");
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0)
            return nb__null(NB_EINVAL, "subset_random_sampler: index %lld (at %lld) is negative", (long long)indices[i],
                            (long long)i);
    nb_sampler *s = make(SUBSET_RANDOM, n, n, seed, n > 0 ? n : 1);
    if (s && n) memcpy(s->idx, indices, sizeof(int64_t) * (size_t)n);
    return s;
}

nb_distributed_opts nb_distributed_defaults(void) {
    return (nb_distributed_opts){.num_replicas = 1, .rank = 0, .shuffle = true, .seed = 0, .drop_last = false};
}

nb_sampler *nb_distributed_sampler(int64_t n, const nb_distributed_opts *opts) {
    nb_distributed_opts d = opts ? *opts : nb_distributed_defaults();
    if (d.num_replicas < 1)
        return nb__null(NB_EINVAL, "distributed_sampler: num_replicas should be a positive integer, got %lld",
                        (long long)d.num_replicas);
    if (d.rank < 0 || d.rank >= d.num_replicas)
        return nb__null(NB_EINVAL, "Invalid rank %lld, rank should be in the interval [0, %lld]", (long long)d.rank,
                        (long long)d.num_replicas - 1);
    /* PyTorch's num_samples: ceil((n - R) / R) with drop_last and a remainder, else ceil(n / R) */
    int64_t R = d.num_replicas;
    int64_t per = d.drop_last ? n / R : n / R + (n % R != 0);
    nb_sampler *s = make(DISTRIBUTED, n, per, d.seed, n > 0 ? n : 1);
    if (s) s->d = d;
    return s;
}

int nb_sampler_set_epoch(nb_sampler *s, int64_t epoch) {
    if (!s) return nb__error(NB_EINVAL, "sampler_set_epoch: the sampler is NULL");
    if (s->k == DISTRIBUTED) nb_rng_seed(&s->rng, s->d.seed + (uint64_t)epoch); /* manual_seed(seed + epoch) */
    return NB_OK;
}

int64_t nb_sampler_len(const nb_sampler *s) { return s ? s->len : 0; }

int nb_sampler_indices(nb_sampler *s, int64_t *out) {
    if (!s || (!out && s->len > 0)) return nb__error(NB_EINVAL, "sampler_indices: %s is NULL", s ? "out" : "the sampler");
    switch (s->k) {
    case SEQUENTIAL:
        for (int64_t i = 0; i < s->n; i++) out[i] = i;
        break;
    case RANDOM: nb_randperm(&s->rng, s->n, out); break;
    case SUBSET_RANDOM: /* indices[randperm(len(indices))] */
        nb_randperm(&s->rng, s->n, out);
        for (int64_t i = 0; i < s->n; i++) out[i] = s->idx[out[i]];
        break;
    case DISTRIBUTED: {
        if (s->d.shuffle) {
            nb_rng g = s->rng; /* a generator seeded with seed + epoch, fresh for every draw */
            nb_randperm(&g, s->n, s->idx);
        } else {
            for (int64_t i = 0; i < s->n; i++) s->idx[i] = i;
        }
        /* padding repeats the order from its start (position p >= n holds order[p mod n]);
         * drop_last cuts the tail; then every num_replicas-th from rank */
        for (int64_t j = 0; j < s->len; j++) out[j] = s->idx[(s->d.rank + j * s->d.num_replicas) % s->n];
        break;
    }
    }
    return NB_OK;
}

nb_rng *nb__sampler_rng(nb_sampler *s) { return &s->rng; }

int64_t nb__sampler_bound(const nb_sampler *s) {
    if (s->k != SUBSET_RANDOM) return s->n;
    int64_t top = -1;
    for (int64_t i = 0; i < s->n; i++) top = s->idx[i] > top ? s->idx[i] : top;
    return top + 1;
}

void nb_sampler_free(nb_sampler *s) {
    if (!s) return;
    nb__free(s->idx);
    nb__free(s);
}
