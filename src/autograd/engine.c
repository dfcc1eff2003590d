/* engine.c - the tape and the backward pass.
 *
 * Ops record nodes in the arena of their output, linked newest-to-oldest. Creation order is a
 * topological order, so walking the tape from the loss's node towards older nodes visits
 * every node after all of its consumers: that is the whole of the reverse topological sort. */
#include <math.h>
#include "../core/internal.h"

static _Thread_local bool grad_enabled = true;
static _Thread_local bool backward_failed;

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
    out->node = n;
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
    if (t->grad && (t->grad->flags & NB_TENSOR_SPARSE)) {
        *beta = 1.0f;
        return densify(t);
    }
    if (t->grad) {
        *beta = 1.0f;
        return nb_f32(t->grad);
    }
    *beta = 0.0f;
    if (!t->node && t->grad_slot) { /* parameters: the slot is a view into the grad slab */
        t->grad = t->grad_slot;
        return nb_f32(t->grad);
    }
    if (!t->node && !t->arena) { /* heap leaf: keep one grad buffer for its lifetime */
        t->grad_slot = nb__tensor(NULL, NB_FLOAT32, t->ndim, t->shape);
        if (!t->grad_slot) {
            nb__backward_fail();
            return NULL;
        }
        t->flags |= NB_TENSOR_OWNS_GRAD;
        t->grad = t->grad_slot;
        return nb_f32(t->grad);
    }
    t->grad = nb__tensor(t->arena, NB_FLOAT32, t->ndim, t->shape);
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

/* One graph, one arena: the walk follows the tape of out's arena only, so the inputs of a node
 * recorded in another arena would silently get no gradient. Before anything is written, walk
 * the part of the tape reachable from out (marking tensors as in the backward walk) and fail
 * if it reads a tensor produced by an op in another arena. */
static int check_one_arena(nb_tensor *out) {
    int rc = NB_OK;
    if (out->node) out->flags |= NB__TENSOR_REACHED;
    for (nb_node *n = out->node; n; n = n->prev) {
        if (!(n->out->flags & NB__TENSOR_REACHED)) continue;
        n->out->flags &= ~NB__TENSOR_REACHED; /* every mark is cleared: the walk never stops */
        for (int i = 0; i < n->nin; i++) {
            nb_tensor *in = n->in[i];
            if (!in || !in->node || !nb__wants_grad(in)) continue;
            if (in->arena == out->arena) in->flags |= NB__TENSOR_REACHED;
            else if (rc == NB_OK)
                rc = nb__error(NB_ESTATE, "backward: %s reads the output of %s, which was made in "
                               "another arena (a graph must be built in one arena)", n->op,
                               in->node->op);
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
    nb_arena *ar = out->arena;
    if (ar && ar->record_failed)
        return nb__error(NB_ENOMEM, "backward: the graph is incomplete: recording %s ran out of "
                         "memory", ar->record_failed);
    if (check_one_arena(out)) return NB_ESTATE;
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
    for (nb_node *n = out->node; n; n = n->prev) {
        if (!n->out->grad) continue; /* not on a path from out */
        n->backward(n);
        if (backward_failed)
            return nb__error(NB_ENOMEM, "backward: out of memory in %s", n->op);
    }
    return NB_OK;
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
    if (t->node)
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
