/* ddp.c - DistributedDataParallel on MPI: rank 0's weights everywhere at the start, then every
 * backward averages the gradients across processes, bucket by bucket, while it runs.
 *
 * The model's gradients live in one slab (nn's packing), parameter after parameter. The
 * slab is cut into buckets from its end, because the backward finishes the last layers'
 * gradients first. Each parameter carries a grad hook (autograd) that fires as soon as the
 * backward has finished its gradient; when every gradient of the next bucket is final, that
 * bucket's allreduce starts (nonblocking), and every later hook drives MPI's progress. The
 * first hook of a backward queues a callback for its end, which starts the buckets the
 * backward never completed (parameters it did not reach take part with zero gradients) and
 * waits for all. Buckets always start in index order, so every process issues the same
 * collectives in the same order, whatever reached its hooks first. When every process runs on
 * one machine the sums go through memory they share (node.c) rather than MPI's allreduce. */
#include "dist_internal.h"
#ifdef NB_HAVE_MPI
#include <sched.h>

typedef struct bucket {
    int64_t begin, end; /* floats of the gradient slab */
    int first, last;    /* its parameters, in model order */
    int pending;        /* parameters the running backward has still to finish */
} bucket;

struct nb_ddp {
    nb_dist *d;
    nb_module *model;
    nb_ddp_opts o;
    int np, nbuf;
    nb_tensor **params; /* in the slab's order (nb_module_parameters) */
    const char **pname; /* their full names (owned by the model) */
    nb_tensor **bufs;
    nb_tensor *slots; /* the gradient views of the slab: params[i]->grad_slot == slots + i */
    float *gslab;     /* the gradients: the model's slab, or shared memory (node) */
    int *bucket_of;
    bucket *b;
    int nb;
    MPI_Request *req; /* one per bucket (MPI's allreduce) */
    nb__node *node;   /* or the sums through shared memory (one machine) */
    MPI_Request *breq; /* one per buffer */
    int next;         /* next bucket to start in the running backward */
    int err;          /* an MPI call of the running backward failed */
    bool active, sync;
    nb_ddp_stats st;
};


/* Start bucket k: attach zeroed slots to parameters that have no gradient (so the flat
 * storage is complete), scale by 1/world as DDP does, and start the sum. */
static void start(nb_ddp *dp, int k) {
    bucket *b = &dp->b[k];
    for (int i = b->first; i <= b->last; i++) {
        nb_tensor *p = dp->params[i];
        if (p->grad) continue;
        memset(p->internal.grad_slot->data, 0, sizeof(float) * (size_t)p->numel);
        if (nb__wants_grad(p)) p->grad = p->internal.grad_slot;
    }
    dp->st.allreduces++;
    if (dp->d->size == 1) return;
    float *g = dp->gslab + b->begin;
    int64_t n = b->end - b->begin;
    float scale = 1.0f / (float)dp->d->size;
    double t = MPI_Wtime();
    dp->st.bytes += (int64_t)sizeof(float) * n;
    if (dp->node) {
        nb__node_start(dp->node, k);
    } else {
        for (int64_t i = 0; i < n; i++) g[i] *= scale;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, g, (int)n, MPI_FLOAT, MPI_SUM, dp->d->comm, &dp->req[k]);
        if (rc != MPI_SUCCESS && !dp->err) dp->err = nb__dist_mpi_error(rc, "allreduce of the gradients");
    }
    dp->st.comm_seconds += MPI_Wtime() - t;
}

/* The shared-memory sums of the started buckets, as far as they can go now; true when all are
 * back. */
static bool node_progress(nb_ddp *dp) {
    bool all = true;
    float scale = 1.0f / (float)dp->d->size;
    for (int k = 0; k < dp->next; k++) all &= nb__node_advance(dp->node, k, dp->b[k].begin, dp->b[k].end, scale);
    return all;
}

/* Wait for the shared-memory sums, within the timeout (as nb__dist_wait for MPI's requests). */
static int node_wait(nb_ddp *dp, double *waited) {
    double t0 = MPI_Wtime();
    for (long polls = 0; !node_progress(dp); polls++) {
        if (dp->d->timeout > 0 && MPI_Wtime() - t0 > dp->d->timeout) {
            *waited = MPI_Wtime() - t0;
            return nb__error(NB_EIO, "dist: allreduce of the gradients: no answer from the other processes "
                             "after %g s (a process is lost or stuck)", dp->d->timeout);
        }
        if (polls >= 256) sched_yield(); /* the others may need this core */
    }
    *waited = MPI_Wtime() - t0;
    return NB_OK;
}

static void progress(nb_ddp *dp) {
    if (dp->d->size == 1 || dp->err) return;
    int flag, rc = MPI_SUCCESS;
    double t = MPI_Wtime();
    if (dp->node) node_progress(dp);
    else rc = MPI_Testall(dp->next, dp->req, &flag, MPI_STATUSES_IGNORE);
    dp->st.comm_seconds += MPI_Wtime() - t;
    if (rc != MPI_SUCCESS) dp->err = nb__dist_mpi_error(rc, "allreduce of the gradients");
}

static int broadcast_buffers(nb_ddp *dp) {
    int n = dp->nbuf;
    if (n == 0 || dp->d->size == 1) return NB_OK;
    MPI_Request *r = dp->breq;
    int rc = MPI_SUCCESS;
    for (int i = 0; i < n; i++) {
        const nb_tensor *t = dp->bufs[i];
        r[i] = MPI_REQUEST_NULL;
        if (rc == MPI_SUCCESS)
            rc = MPI_Ibcast(t->data, (int)((size_t)t->numel * nb_dtype_size(t->dtype)), MPI_BYTE, 0,
                            dp->d->comm, &r[i]);
    }
    return rc != MPI_SUCCESS ? nb__dist_mpi_error(rc, "broadcast of the buffers")
                             : nb__dist_wait(dp->d, n, r, "broadcast of the buffers", NULL);
}

/* The end of a synchronised backward (queued by its first hook). */
static int on_end(void *user, int status) {
    nb_ddp *dp = user;
    while (dp->next < dp->nb) start(dp, dp->next++); /* every process starts every bucket */
    double waited = 0, t = MPI_Wtime();
    int rc = dp->err ? dp->err
             : dp->node ? node_wait(dp, &waited)
                        : nb__dist_wait(dp->d, dp->nb, dp->req, "allreduce of the gradients", &waited);
    if (!rc && dp->o.broadcast_buffers) rc = broadcast_buffers(dp);
    dp->st.wait_seconds += waited;
    dp->st.comm_seconds += MPI_Wtime() - t;
    dp->st.backwards++;
    dp->active = false;
    dp->err = NB_OK;
    return status ? status : rc;
}

/* A parameter's gradient is final for this backward. */
static void on_ready(nb_tensor *p, void *user) {
    nb_ddp *dp = user;
    if (!dp->sync) return;
    if (!dp->active) { /* the first hook of this backward */
        if (nb_backward_queue_callback(on_end, dp)) {
            nb__backward_fail(); /* the backward fails rather than leave gradients unaveraged */
            return;
        }
        dp->active = true;
        dp->next = 0;
        if (dp->node) nb__node_round(dp->node);
        for (int k = 0; k < dp->nb; k++) {
            dp->b[k].pending = dp->b[k].last - dp->b[k].first + 1;
            dp->req[k] = MPI_REQUEST_NULL;
        }
    }
    int64_t i = p->internal.grad_slot - dp->slots;
    if (p->grad && (p->grad->flags & NB_TENSOR_SPARSE) && !dp->err) /* its rows are not in the slab */
        dp->err = nb__error(NB_EINVAL, "ddp: parameter %s has a sparse gradient (Embedding with sparse=true): "
                            "only dense gradients are averaged across processes", dp->pname[i]);
    dp->b[dp->bucket_of[i]].pending--;
    while (dp->next < dp->nb && dp->b[dp->next].pending == 0) start(dp, dp->next++);
    progress(dp);
}

/* The parameters (slab order) with their names, and the buffers, of the model. Parameters come
 * in the same order in the state list (each module's own, then its children's). */
static int collect(nb_ddp *dp) {
    const nb_named_tensor *st;
    int n = nb_module_state(dp->model, &st);
    dp->np = nb_module_num_params(dp->model);
    if (n < 0) return NB_ENOMEM;
    dp->params = nb__calloc((size_t)dp->np + 1, sizeof *dp->params);
    dp->pname = nb__calloc((size_t)dp->np + 1, sizeof *dp->pname);
    dp->bufs = nb__calloc((size_t)(n - dp->np) + 1, sizeof *dp->bufs);
    dp->breq = nb__calloc((size_t)(n - dp->np) + 1, sizeof *dp->breq);
    if (!dp->params || !dp->pname || !dp->bufs || !dp->breq) return NB_ENOMEM;
    nb_module_parameters(dp->model, dp->params, dp->np);
    for (int i = 0, k = 0; i < n; i++) {
        if (k < dp->np && st[i].tensor == dp->params[k]) dp->pname[k++] = st[i].name;
        else dp->bufs[dp->nbuf++] = st[i].tensor;
    }
    dp->gslab = dp->model->internal.grad_slab;
    return NB_OK;
}

static void *fail(nb_ddp *dp) {
    nb_ddp_free(dp);
    return NULL;
}

/* Gradient slab offset of parameter i. */
static int64_t offset(const nb_ddp *dp, int i) { return nb_f32(&dp->slots[i]) - dp->gslab; }

/* Point the model's gradient views into to (with the gradients they hold): the shared segment
 * while wrapped, the model's own slab again at the end. */
static void move_gradients(nb_ddp *dp, float *to) {
    memcpy(to, dp->gslab, sizeof(float) * (size_t)dp->model->internal.slab_numel);
    for (int i = 0; i < dp->np; i++) dp->slots[i].data = to + offset(dp, i);
    dp->gslab = to;
}

/* First parameter of the module that owns parameter i (its name's prefix up to the last dot):
 * a module's parameters become final together (one op's backward writes them), so buckets never
 * split them. */
static int module_start(const nb_ddp *dp, int i) {
    const char *name = dp->pname[i], *dot = strrchr(name, '.');
    size_t len = dot ? (size_t)(dot - name) + 1 : 0;
    while (i > 0) {
        const char *prev = dp->pname[i - 1];
        if (strncmp(prev, name, len) || strchr(prev + len, '.')) break;
        i--;
    }
    return i;
}

/* Buckets from the end of the slab, whole modules up to the size cap (a module bigger than the
 * cap is a bucket of its own). */
static int make_buckets(nb_ddp *dp) {
    int64_t cap = dp->o.bucket_bytes ? (int64_t)(dp->o.bucket_bytes / sizeof(float)) : INT32_MAX;
    if (cap > INT32_MAX) cap = INT32_MAX; /* an MPI count */
    dp->b = nb__calloc((size_t)dp->np + 1, sizeof *dp->b);
    dp->req = nb__calloc((size_t)dp->np + 1, sizeof *dp->req);
    dp->bucket_of = nb__calloc((size_t)dp->np + 1, sizeof *dp->bucket_of);
    if (!dp->b || !dp->req || !dp->bucket_of) return NB_ENOMEM;
    for (int i = dp->np - 1; i >= 0;) {
        bucket *b = &dp->b[dp->nb];
        b->last = i;
        b->end = i + 1 < dp->np ? offset(dp, i + 1) : dp->model->internal.slab_numel;
        int j = module_start(dp, i), k;
        while (j > 0 && b->end - offset(dp, k = module_start(dp, j - 1)) <= cap) j = k;
        b->first = j;
        b->begin = offset(dp, j);
        if (b->end - b->begin > INT32_MAX)
            return nb__error(NB_EINVAL, "ddp: module of parameter %s is too large for one allreduce "
                             "(%lld elements)", dp->pname[i],
                             (long long)(b->end - b->begin));
        for (k = j; k <= i; k++) dp->bucket_of[k] = dp->nb;
        dp->req[dp->nb++] = MPI_REQUEST_NULL;
        i = j - 1;
    }
    return NB_OK;
}

nb_ddp *nb_ddp_new(nb_dist *d, nb_module *model, const nb_ddp_opts *opts) {
    if (!d || !model) return nb__null(NB_EINVAL, "ddp: the %s is NULL", d ? "model" : "process group");
    nb_ddp_opts o = opts ? *opts : nb_ddp_defaults();
    if (model->parent)
        return nb__null(NB_EINVAL, "ddp: the model must be the root of its tree (this %s has a "
                        "parent module)", model->ops->type);
    nb_ddp *dp = nb__calloc(1, sizeof *dp);
    if (!dp) return NULL;
    dp->d = d;
    dp->model = model;
    dp->o = o;
    dp->sync = true;
    if (collect(dp)) return fail(dp);
    char *txt = nb__describe_model(model);
    int rc = txt ? nb_dist_check_same(d, "model", txt) : NB_ENOMEM;
    nb__free(txt);
    if (rc) return fail(dp);
    dp->slots = dp->gslab ? (nb_tensor *)(void *)(dp->gslab + model->internal.slab_numel) : NULL;
    for (int i = 0; i < dp->np; i++) {
        nb_tensor *p = dp->params[i];
        if (!dp->slots || p->internal.grad_slot != dp->slots + i || (i && offset(dp, i) <= offset(dp, i - 1))) {
            nb__error(NB_EINVAL, "ddp: parameter %s is not in the model's gradient slab (the root "
                      "must pack its tree: nb_module_pack)", dp->pname[i]);
            return fail(dp);
        }
        if (p->internal.hook) {
            nb__error(NB_EINVAL, "ddp: parameter %s already has a grad hook (is the model wrapped "
                      "twice?)", dp->pname[i]);
            return fail(dp);
        }
    }
    if (make_buckets(dp)) return fail(dp);
    if (o.shared_memory && d->size > 1) { /* one machine: the sums through shared memory */
        int st;
        dp->node = nb__node_new(d, model->internal.slab_numel, dp->nb, &st);
        if (st) return fail(dp);
        if (dp->node) move_gradients(dp, nb__node_gradients(dp->node));
    }
    /* rank 0's weights and buffers everywhere */
    if (dp->np && nb_dist_broadcast(d, model->internal.slab, sizeof(float) * (size_t)model->internal.slab_numel, 0))
        return fail(dp);
    if (broadcast_buffers(dp)) return fail(dp);
    for (int i = 0; i < dp->np; i++)
        if (nb_set_grad_hook(dp->params[i], on_ready, dp)) return fail(dp);
    return dp;
}

bool nb_ddp_set_sync(nb_ddp *dp, bool sync) {
    if (!dp) return true;
    bool prev = dp->sync;
    dp->sync = sync;
    return prev;
}

int nb_ddp_sync_buffers(nb_ddp *dp) {
    if (!dp) return nb__error(NB_EINVAL, "ddp: sync_buffers: the wrapper is NULL");
    double t = MPI_Wtime();
    int rc = broadcast_buffers(dp);
    dp->st.comm_seconds += MPI_Wtime() - t;
    return rc;
}

nb_ddp_stats nb_ddp_get_stats(const nb_ddp *dp) {
    nb_ddp_stats none = {0};
    return dp ? dp->st : none;
}

void nb_ddp_free(nb_ddp *dp) {
    if (!dp) return;
    if (dp->node) move_gradients(dp, dp->model->internal.grad_slab); /* home before the window goes */
    for (int i = 0; dp->params && i < dp->np; i++) {
        nb_tensor *p = dp->params[i];
        if (p->internal.hook && p->internal.hook->user == dp) nb_set_grad_hook(p, NULL, NULL);
    }
    nb__node_free(dp->node);
    nb__free(dp->params);
    nb__free(dp->pname);
    nb__free(dp->bufs);
    nb__free(dp->breq);
    nb__free(dp->b);
    nb__free(dp->req);
    nb__free(dp->bucket_of);
    nb__free(dp);
}

#endif
