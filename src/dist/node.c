/* node.c - the sum of a gradient bucket over processes that run on one machine, through memory
 * they share (an MPI-3 shared window), instead of MPI's allreduce.
 *
 * MPI moves a message between two processes of one machine through its own buffers, with a
 * handshake per fragment: for the few hundred KiB of a bucket that costs several times the
 * memory traffic of the sum itself. Here each process's gradients live in its segment of a
 * window that every process maps (the wrapper points the model's gradient views there), and
 * for each bucket:
 * 1. start: when its gradients are final, a process raises its "arrived" flag;
 * 2. once every process has arrived, each one computes its slice of the bucket (1/world of it)
 *    as the sum over all segments of gradient / world, in rank order (so the bits never depend
 *    on timing, and are those of scaling then summing, as DDP), into its own segment, and
 *    raises its "reduced" flag;
 * 3. it copies every slice whose owner has reduced it into its own segment, and raises its
 *    "gathered" flag. A process leaves the backward only when every process has gathered from
 *    it: its gradients are written again only after that (by clipping, the next backward).
 * Flags are round numbers (one round per synchronised backward), each written by its owner
 * only, with release/acquire atomics. Nothing here blocks: advance() does what is ready and
 * the caller polls. */
#include "dist_internal.h"
#ifdef NB_HAVE_MPI
#include <stdatomic.h>

enum { ARRIVED, REDUCED, GATHERED, NFLAGS };

struct nb__node {
    MPI_Comm comm; /* the processes of the machine: all of them */
    MPI_Win win;
    int rank, size, nb;
    float **seg;                  /* each process's gradients */
    atomic_uint_fast64_t **flags; /* each process's flags: NFLAGS per bucket */
    uint64_t round;
    int *state;                   /* per bucket: 0 idle, 1 arrived, 2 reduced, 3 gathered */
    unsigned char *back;          /* per bucket and process: that slice is gathered */
};

static size_t flags_bytes(int nb) { return (sizeof(atomic_uint_fast64_t) * NFLAGS * (size_t)nb + 63) / 64 * 64; }

static atomic_uint_fast64_t *flag(const nb__node *n, int r, int k, int which) {
    return &n->flags[r][NFLAGS * k + which];
}

void nb__node_free(nb__node *n) {
    if (!n) return;
    if (n->win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(n->win);
        MPI_Win_free(&n->win);
    }
    if (n->comm != MPI_COMM_NULL) MPI_Comm_free(&n->comm);
    nb__free(n->seg);
    nb__free(n->flags);
    nb__free(n->state);
    nb__free(n->back);
    nb__free(n);
}

nb__node *nb__node_new(nb_dist *d, int64_t numel, int nb, int *status) {
    *status = NB_OK;
    nb__node *n = nb__calloc(1, sizeof *n);
    if (!n) return *status = NB_ENOMEM, NULL;
    n->comm = MPI_COMM_NULL;
    n->win = MPI_WIN_NULL;
    int rc = MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &n->comm), size = 0;
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(n->comm, &size);
    if (rc != MPI_SUCCESS) {
        *status = nb__dist_mpi_error(rc, "ddp: the processes of this machine");
        nb__node_free(n);
        return NULL;
    }
    if (size != d->size) { /* several machines: each sees it (its machine's group is smaller) */
        nb__node_free(n);
        return NULL;
    }
    n->rank = d->rank;
    n->size = size;
    n->nb = nb;
    n->seg = nb__calloc((size_t)size, sizeof *n->seg);
    n->flags = nb__calloc((size_t)size, sizeof *n->flags);
    n->state = nb__calloc((size_t)nb + 1, sizeof *n->state);
    n->back = nb__calloc((size_t)(nb * size) + 1, 1);
    int ok = n->seg && n->flags && n->state && n->back;
    MPI_Info info = MPI_INFO_NULL;
    void *base = NULL;
    if (ok && MPI_Info_create(&info) == MPI_SUCCESS) MPI_Info_set(info, "alloc_shared_noncontig", "true");
    MPI_Aint bytes = (MPI_Aint)(flags_bytes(nb) + sizeof(float) * (size_t)numel + 64);
    /* collective on every process, even one short of memory, so that none waits in vain */
    rc = MPI_Win_allocate_shared(ok ? bytes : 0, 1, info, n->comm, &base, &n->win);
    if (info != MPI_INFO_NULL) MPI_Info_free(&info);
    if (rc != MPI_SUCCESS) n->win = MPI_WIN_NULL;
    else MPI_Win_set_errhandler(n->win, MPI_ERRORS_RETURN);
    ok = ok && rc == MPI_SUCCESS;
    for (int r = 0; ok && r < size; r++) {
        MPI_Aint len;
        int unit;
        void *p;
        ok = MPI_Win_shared_query(n->win, r, &len, &unit, &p) == MPI_SUCCESS && len >= bytes;
        if (ok) { /* a segment starts 64-byte aligned: the same offset in every process's mapping */
            p = (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
            n->flags[r] = p;
            n->seg[r] = (float *)(void *)((char *)p + flags_bytes(nb));
        }
    }
    if (ok) {
        for (int i = 0; i < NFLAGS * nb; i++) atomic_init(&n->flags[n->rank][i], 0);
        ok = MPI_Win_lock_all(MPI_MODE_NOCHECK, n->win) == MPI_SUCCESS;
    }
    int all = 0; /* everyone takes this path, or nobody */
    rc = MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, n->comm);
    if (rc != MPI_SUCCESS || !all) {
        if (ok) MPI_Win_unlock_all(n->win);
        if (n->win != MPI_WIN_NULL) MPI_Win_free(&n->win);
        *status = rc != MPI_SUCCESS ? nb__dist_mpi_error(rc, "ddp: shared memory")
                                    : nb__error(NB_ENOMEM, "ddp: shared memory of %lld bytes for the gradients "
                                                "could not be set up on every process", (long long)bytes);
        nb__node_free(n);
        return NULL;
    }
    return n;
}

float *nb__node_gradients(const nb__node *n) { return n->seg[n->rank]; }

void nb__node_round(nb__node *n) { n->round++; }

/* Slice r of bucket [b, e): 1/size of it, cut on 16-float boundaries (a bucket's ends are). */
static void slice(const nb__node *n, int r, int64_t b, int64_t e, int64_t *lo, int64_t *hi) {
    int64_t chunks = (e - b + 15) / 16;
    *lo = b + 16 * (chunks * r / n->size);
    *hi = r + 1 == n->size ? e : b + 16 * (chunks * (r + 1) / n->size);
}

void nb__node_start(nb__node *n, int k) {
    memset(n->back + (size_t)k * (size_t)n->size, 0, (size_t)n->size);
    n->state[k] = 1;
    atomic_store_explicit(flag(n, n->rank, k, ARRIVED), n->round, memory_order_release);
}

/* Every process has raised flag `which` of bucket k in this round. */
static bool everyone(const nb__node *n, int k, int which) {
    for (int r = 0; r < n->size; r++)
        if (atomic_load_explicit(flag(n, r, k, which), memory_order_acquire) < n->round) return false;
    return true;
}

/* This process's slice: the sum over the segments of gradient * scale, in rank order, by
 * blocks in registers, written over its own gradients. */
static void reduce(nb__node *n, int64_t lo, int64_t hi, float scale) {
    enum { BLOCK = 256 };
    float acc[BLOCK];
    for (int64_t i0 = lo; i0 < hi; i0 += BLOCK) {
        int64_t m = hi - i0 < BLOCK ? hi - i0 : BLOCK;
        const float *s0 = n->seg[0] + i0;
        for (int64_t i = 0; i < m; i++) acc[i] = s0[i] * scale;
        for (int r = 1; r < n->size; r++) {
            const float *s = n->seg[r] + i0;
            for (int64_t i = 0; i < m; i++) acc[i] += s[i] * scale;
        }
        memcpy(n->seg[n->rank] + i0, acc, sizeof(float) * (size_t)m);
    }
}

bool nb__node_advance(nb__node *n, int k, int64_t b, int64_t e, float scale) {
    int64_t lo, hi;
    if (n->state[k] == 1) {
        if (!everyone(n, k, ARRIVED)) return false;
        slice(n, n->rank, b, e, &lo, &hi);
        reduce(n, lo, hi, scale);
        n->back[(size_t)k * (size_t)n->size + (size_t)n->rank] = 1;
        n->state[k] = 2;
        atomic_store_explicit(flag(n, n->rank, k, REDUCED), n->round, memory_order_release);
    }
    if (n->state[k] == 2) {
        unsigned char *back = n->back + (size_t)k * (size_t)n->size;
        int done = 0;
        for (int r = 0; r < n->size; r++) {
            if (!back[r] && atomic_load_explicit(flag(n, r, k, REDUCED), memory_order_acquire) >= n->round) {
                slice(n, r, b, e, &lo, &hi);
                memcpy(n->seg[n->rank] + lo, n->seg[r] + lo, sizeof(float) * (size_t)(hi - lo));
                back[r] = 1;
            }
            done += back[r];
        }
        if (done < n->size) return false;
        n->state[k] = 3;
        atomic_store_explicit(flag(n, n->rank, k, GATHERED), n->round, memory_order_release);
    }
    return n->state[k] == 3 && everyone(n, k, GATHERED); /* nobody reads this bucket of ours now */
}

#endif
