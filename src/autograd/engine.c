/* engine.c - the tape and the backward pass.
 *
 * Ops record nodes in the arena of their output, linked newest-to-oldest. Creation order is a
 * topological order, so walking the tape from the loss's node towards older nodes visits
 * every node after all of its consumers: that is the whole of the reverse topological sort. */
#include <math.h>
#include <stdatomic.h>
#include "autograd_internal.h"

static _Thread_local bool grad_enabled = true;
static _Thread_local bool backward_failed;
static _Thread_local nb__grad_redirect *redirect; /* see internal.h */

nb__grad_redirect *nb__set_grad_redirect(nb__grad_redirect *r) {
    nb__grad_redirect *prev = redirect;
    redirect = r;
    return prev;
}

/* The backward running on this thread: its number (for the hooks' counts), whether it reaches
 * a hooked leaf, and the callbacks queued for its end. */
#define MAX_END_CALLBACKS 16
typedef struct backward_run {
    uint64_t id;
    bool hooks;
    int ncb;
    nb_backward_end_fn cb[MAX_END_CALLBACKS];
    void *cb_user[MAX_END_CALLBACKS];
} backward_run;
static _Thread_local backward_run *running;
static atomic_uint_fast64_t backwards_started;

bool nb_set_grad_enabled(bool enabled) {
    bool prev = grad_enabled;
    grad_enabled = enabled;
    return prev;
}

bool nb_is_grad_enabled(void) { return grad_enabled; }

bool nb__should_record(int nin, nb_tensor *const *in) {
    if (!grad_enabled) return false;
    for (int i = 0; i < nin; i++)
        if (nb__wants_grad(in[i])) return true;
    return false;
}

nb_node *nb__record(nb_arena *ar, nb_tensor *out, const char *op, nb_backward_fn fn, int nin,
                    nb_tensor *const *in) {
    if (!out || !nb__should_record(nin, in)) return NULL;
    nb_node *n = nb__arena_alloc(ar, sizeof *n);
    nb_tensor **ins = n ? nb__arena_alloc(ar, sizeof *ins * (size_t)(nin ? nin : 1)) : NULL;
    if (!n || !ins) { /* the op still returns its output: a later backward reports the gap */
        out->flags |= NB_TENSOR_REQUIRES_GRAD;
        if (ar && !ar->record_failed) ar->record_failed = op;
        return NULL;
    }
    memset(n, 0, sizeof *n);
    for (int i = 0; i < nin; i++) ins[i] = in[i];
    n->backward = fn;
    n->op = op;
    n->out = out;
    n->in = ins;
    n->nin = nin;
    n->prev = ar->last_node;
    ar->last_node = n;
    ar->nnodes++;
    out->internal.node = n;
    out->flags |= NB_TENSOR_REQUIRES_GRAD;
    return n;
}

void nb__backward_fail(void) { backward_failed = true; }

/* A dense contribution to a leaf whose gradient is sparse: the sum becomes dense, in the
 * leaf's grad slot, as PyTorch's sparse + dense accumulation does. */
static float *densify(nb_tensor *t) {
    const nb_tensor *sp = t->grad;
    t->grad = NULL;
    float beta;
    float *g = nb__grad(t, &beta);
    if (g) nb__sparse_dense(sp, g);
    return g;
}

float *nb__grad(nb_tensor *t, float *beta) {
    if (redirect && !t->internal.node && t->internal.grad_slot) {
        const float *d = t->internal.grad_slot->data;
        if (d >= redirect->slab && d < redirect->slab + redirect->n) {
            int64_t off = d - redirect->slab;
            *beta = redirect->written[off / 16] ? 1.0f : 0.0f;
            redirect->written[off / 16] = 1;
            return redirect->priv + off;
        }
    }
    if (t->grad && (t->grad->flags & NB_TENSOR_SPARSE)) {
        *beta = 1.0f;
        return densify(t);
    }
    if (t->grad) {
        *beta = 1.0f;
        return nb_f32(t->grad);
    }
    *beta = 0.0f;
    if (!t->internal.node && t->internal.grad_slot) { /* parameters: the slot is a view into the grad slab */
        t->grad = t->internal.grad_slot;
        return nb_f32(t->grad);
    }
    if (!t->internal.node && !t->internal.arena) { /* heap leaf: keep one grad buffer for its lifetime */
        t->internal.grad_slot = nb__tensor(NULL, NB_FLOAT32, t->ndim, t->shape);
        if (!t->internal.grad_slot) {
            nb__backward_fail();
            return NULL;
        }
        t->flags |= NB_TENSOR_OWNS_GRAD;
        t->grad = t->internal.grad_slot;
        return nb_f32(t->grad);
    }
    t->grad = nb__tensor(t->internal.arena, NB_FLOAT32, t->ndim, t->shape);
    if (!t->grad) {
        nb__backward_fail();
        return NULL;
    }
    return nb_f32(t->grad);
}

float *nb__grad_zeroed(nb_tensor *t) {
    float beta;
    float *g = nb__grad(t, &beta);
    if (g && beta == 0.0f) memset(g, 0, sizeof(float) * (size_t)t->numel);
    return g;
}

int nb_set_grad_hook(nb_tensor *leaf, nb_grad_hook_fn fn, void *user) {
    if (!leaf || leaf->internal.node || leaf->internal.arena)
        return nb__error(NB_EINVAL, "set_grad_hook: %s", !leaf ? "tensor is NULL"
                         : "hooks go on heap leaf tensors (made with a NULL arena, not by an op)");
    if (!fn) {
        nb__free(leaf->internal.hook);
        leaf->internal.hook = NULL;
        return NB_OK;
    }
    if (!leaf->internal.hook && !(leaf->internal.hook = nb__calloc(1, sizeof *leaf->internal.hook))) return NB_ENOMEM;
    leaf->internal.hook->fn = fn;
    leaf->internal.hook->user = user;
    leaf->internal.hook->backward = 0;
    return NB_OK;
}

int nb_backward_queue_callback(nb_backward_end_fn fn, void *user) {
    if (!fn) return nb__error(NB_EINVAL, "queue_callback: callback is NULL");
    if (!running) return nb__error(NB_ESTATE, "queue_callback: no backward is running on this thread");
    if (running->ncb == MAX_END_CALLBACKS)
        return nb__error(NB_ENOMEM, "queue_callback: more than %d callbacks for one backward",
                         MAX_END_CALLBACKS);
    running->cb[running->ncb] = fn;
    running->cb_user[running->ncb++] = user;
    return NB_OK;
}

/* A node of run reads the hooked leaf `in`: one more add to wait for before its hook. */
static void count_hook(nb_tensor *in, backward_run *run) {
    struct nb_grad_hook *h = in->internal.hook;
    if (h->backward != run->id) {
        h->backward = run->id;
        h->pending = 0;
    }
    h->pending++;
    run->hooks = true;
}

/* After node n's backward: the hooked leaves it was the last to add to are final. */
static void fire_hooks(const nb_node *n, const backward_run *run) {
    for (int i = 0; i < n->nin; i++) {
        nb_tensor *in = n->in[i];
        struct nb_grad_hook *h = in && !in->internal.node ? in->internal.hook : NULL;
        if (h && h->backward == run->id && --h->pending == 0) h->fn(in, h->user);
    }
}

/* One graph, one arena: the walk follows the tape of out's arena only, so the inputs of a node
 * recorded in another arena would silently get no gradient. Before anything is written, walk
 * the part of the tape reachable from out (marking tensors as in the backward walk) and fail
 * if it reads a tensor produced by an op in another arena. The same walk counts, for every
 * hooked leaf, the nodes that will add to its gradient. */
static int check_one_arena(nb_tensor *out, backward_run *run) {
    int rc = NB_OK;
    if (out->internal.node) out->flags |= NB__TENSOR_REACHED;
    for (nb_node *n = out->internal.node; n; n = n->prev) {
        if (!(n->out->flags & NB__TENSOR_REACHED)) continue;
        n->out->flags &= ~NB__TENSOR_REACHED; /* every mark is cleared: the walk never stops */
        for (int i = 0; i < n->nin; i++) {
            nb_tensor *in = n->in[i];
            if (!in || !nb__wants_grad(in)) continue;
            if (!in->internal.node) {
                if (in->internal.hook) count_hook(in, run);
                continue;
            }
            if (in->internal.arena == out->internal.arena) in->flags |= NB__TENSOR_REACHED;
            else if (rc == NB_OK)
                rc = nb__error(NB_ESTATE, "backward: %s reads the output of %s, which was made in "
                               "another arena (a graph must be built in one arena)", n->op,
                               in->internal.node->op);
        }
    }
    return rc;
}

static int run_backward(nb_tensor *out, const nb_tensor *gout) {
    if (!out) return nb__error(NB_EINVAL, "backward: tensor is NULL");
    if (!nb__wants_grad(out))
        return nb__error(NB_ESTATE,
                         "backward: element 0 of tensors does not require grad and does not "
                         "have a grad_fn");
    if (gout && (gout->dtype != NB_FLOAT32 || gout->numel != out->numel))
        return nb__error(NB_ESHAPE, "backward: grad has shape %s, output has shape %s",
                         nb__shape(gout, 0), nb__shape(out, 1));
    nb_arena *ar = out->internal.arena;
    if (ar && ar->record_failed)
        return nb__error(NB_ENOMEM, "backward: the graph is incomplete: recording %s ran out of "
                         "memory", ar->record_failed);
    backward_run run = {.id = atomic_fetch_add(&backwards_started, 1) + 1};
    if (check_one_arena(out, &run)) return NB_ESTATE;
    /* Gradients of intermediates are per backward call: forget those of an earlier call. */
    if (ar)
        for (nb_node *n = ar->last_node; n; n = n->prev) n->out->grad = NULL;
    backward_failed = false;
    float beta;
    float *g = nb__grad(out, &beta);
    if (!g) return nb__error(NB_ENOMEM, "backward: out of memory");
    for (int64_t i = 0; i < out->numel; i++) { /* beta 0: g holds garbage, never read it */
        float v = gout ? nb_f32(gout)[i] : 1.0f;
        g[i] = beta == 0.0f ? v : g[i] + v;
    }
    backward_run *outer = running; /* a callback may run a backward of its own */
    running = &run;
    int rc = NB_OK;
    if (!out->internal.node && out->internal.hook) out->internal.hook->fn(out, out->internal.hook->user); /* a leaf's own backward */
    for (nb_node *n = out->internal.node; n; n = n->prev) {
        if (!n->out->grad) continue; /* not on a path from out */
        n->backward(n);
        if (backward_failed) {
            rc = nb__error(NB_ENOMEM, "backward: out of memory in %s", n->op);
            break;
        }
        if (run.hooks) fire_hooks(n, &run);
    }
    for (int i = 0; i < run.ncb; i++) rc = run.cb[i](run.cb_user[i], rc);
    running = outer;
    return rc;
}

int nb_backward(nb_tensor *loss) {
    if (loss && loss->numel != 1)
        return nb__error(NB_ESTATE, "backward: grad can be implicitly created only for scalar "
                                    "outputs (got shape %s)", nb__shape(loss, 0));
    return run_backward(loss, NULL);
}

int nb_backward_grad(nb_tensor *out, const nb_tensor *grad_out) {
    if (!grad_out) return nb__error(NB_EINVAL, "backward: grad_out is NULL");
    return run_backward(out, grad_out);
}

int nb_requires_grad(nb_tensor *t, bool requires_grad) {
    if (!t) return nb__error(NB_EINVAL, "requires_grad: tensor is NULL");
    if (t->internal.node)
        return nb__error(NB_ESTATE, "requires_grad: you can only change requires_grad flags of "
                                    "leaf variables");
    if (requires_grad && t->dtype != NB_FLOAT32)
        return nb__error(NB_EINVAL, "requires_grad: only float32 tensors can require gradients");
    if (requires_grad) t->flags |= NB_TENSOR_REQUIRES_GRAD;
    else t->flags &= ~NB_TENSOR_REQUIRES_GRAD;
    return NB_OK;
}

bool nb_tensor_requires_grad(const nb_tensor *t) { return nb__wants_grad(t); }

nb_tensor *nb_detach(nb_arena *ar, nb_tensor *t) {
    if (!t) return NULL;
    return nb__alias(ar, t, t->ndim, t->shape, t->data);
}
