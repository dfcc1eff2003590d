/* nabla/autograd.h - define-by-run reverse-mode autodiff.
 *
 * Each differentiable op, when grad mode is on and an input requires grad, records a node in
 * the arena of its output. nb_backward(loss) walks those nodes in reverse creation order (a
 * reverse topological order) and accumulates (+=) into the .grad of every leaf that requires
 * grad, so gradients of several backward calls add up until zero_grad.
 */
#ifndef NABLA_AUTOGRAD_H
#define NABLA_AUTOGRAD_H

#include <stdio.h>
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Backward from a one-element loss: d loss / d leaf is added to each leaf's grad. Fails with
 * NB_ESTATE if loss has more than one element or does not require grad.
 * Where gradients live: a parameter's grad is a view into its module's gradient slab (owned by
 * the module), a heap leaf's a buffer the leaf keeps until nb_tensor_free, an intermediate's
 * is in the arena of the graph (until its reset). Read t->grad after the backward: it is NULL
 * again after zero_grad(set_to_none). */
int nb_backward(nb_tensor *loss);
/* Backward from any tensor with an explicit upstream gradient of its shape (vector-Jacobian). */
int nb_backward_grad(nb_tensor *out, const nb_tensor *grad_out);

/* Mark a leaf tensor as requiring grad (or not). Fails on a tensor produced by an op. */
int nb_requires_grad(nb_tensor *t, bool requires_grad);
/* True if t requires grad (leaf flag, or produced by a recorded op). */
bool nb_tensor_requires_grad(const nb_tensor *t);
/* A tensor sharing t's data with no history and requires_grad false: a new struct in ar
 * (until its reset), or with ar NULL on the heap (nb_tensor_free frees the struct, never t's
 * data). t's data must outlive it. */
nb_tensor *nb_detach(nb_arena *ar, nb_tensor *t);

/* Grad mode (thread-local, default on). Returns the previous mode, so a no-grad scope is
 *   bool prev = nb_set_grad_enabled(false); ... ; nb_set_grad_enabled(prev); */
bool nb_set_grad_enabled(bool enabled);
bool nb_is_grad_enabled(void);

/* ---- hooks: what data-parallel training (nabla/dist.h) builds on -------------------------
 * A grad hook of a leaf runs during a backward as soon as that backward has finished the
 * leaf's gradient: right after the last op on the path from the output that reads the leaf
 * has added to leaf->grad (torch's register_post_accumulate_grad_hook). Leaves the backward
 * does not reach are not called. The hook runs on the thread of the backward, between two
 * ops' backwards; it may read leaf->grad, not change the graph. */
typedef void (*nb_grad_hook_fn)(nb_tensor *leaf, void *user);
/* Set (fn != NULL) or remove (fn == NULL) the grad hook of a heap leaf tensor (made with a
 * NULL arena, not by an op): one per tensor, a new one replaces the old. user is borrowed and
 * must outlive the hook. NB_EINVAL for other tensors; NB_ENOMEM. */
int nb_set_grad_hook(nb_tensor *leaf, nb_grad_hook_fn fn, void *user);
/* The end of a backward: fn(user, status) runs once after the running backward has walked its
 * graph, with the backward's result so far (NB_OK, or the error it is about to return); what
 * fn returns becomes the backward's result. Callbacks run in the order they were queued, also
 * when the backward failed. Call it from a grad hook (torch's
 * Variable._execution_engine.queue_callback); NB_ESTATE when no backward is running on this
 * thread, NB_ENOMEM beyond 16 callbacks per backward. */
typedef int (*nb_backward_end_fn)(void *user, int status);
int nb_backward_queue_callback(nb_backward_end_fn fn, void *user);

/* ---- gradcheck -------------------------------------------------------------------------- */
/* The function under test: builds its output from inputs in arena ar. */
typedef nb_tensor *(*nb_gradcheck_fn)(nb_arena *ar, nb_tensor *const *inputs, void *user);

typedef struct nb_gradcheck_opts {
    double eps;        /* finite-difference step (default 1e-2 for float32 inputs scaled ~1) */
    double atol, rtol; /* |analytic - numeric| <= atol + rtol*|numeric| (defaults 1e-2, 1e-2) */
    uint64_t seed;     /* seed for the random projection of a non-scalar output */
} nb_gradcheck_opts;

/* The defaults above (eps 1e-2, atol 1e-2, rtol 1e-2, seed 0). */
nb_gradcheck_opts nb_gradcheck_defaults(void);

/* Compare analytic gradients of sum(w * f(inputs)) (w a fixed random tensor) with central
 * differences, for every input that requires grad. Returns NB_OK or NB_EINVAL with the worst
 * element named in nb_last_error(). Inputs that require grad must be float32 leaves; others
 * (e.g. int32 indices) are passed through. Input values and existing grads are restored. f,
 * inputs, user and opts are used during the call only. */
int nb_gradcheck(nb_gradcheck_fn f, int n, nb_tensor *const *inputs, void *user,
                 const nb_gradcheck_opts *opts);

/* ---- inspection ------------------------------------------------------------------------- */
/* Write the graph that produced t as Graphviz DOT to f (the caller's FILE, left open): one box
 * per op output (op name and shape), one ellipse per leaf ("leaf" and its shape, filled blue
 * when it requires grad), t with a double border. t and its graph are read during the call. */
int nb_graph_dot(const nb_tensor *t, FILE *f);

/* What a leaf is, for the colours of nb_graph_dot_opts. */
typedef enum nb_graph_role {
    NB_GRAPH_PARAMETER = 1, /* a weight the optimizer updates (blue) */
    NB_GRAPH_INPUT,         /* the batch fed to the model (yellow) */
    NB_GRAPH_TARGET,        /* labels or targets the loss compares with (pink) */
    NB_GRAPH_BUFFER         /* running statistics and other state (grey) */
} nb_graph_role;

/* A name and role for one leaf ("0.weight", NB_GRAPH_PARAMETER). */
typedef struct nb_graph_label {
    const nb_tensor *tensor;
    const char *name;
    nb_graph_role role;
} nb_graph_label;

typedef struct nb_graph_opts {
    const nb_graph_label *labels; /* leaves named by their role and name (borrowed for the call) */
    int nlabels;
    bool legend; /* a legend of the shapes and colours (default false) */
    bool values; /* each tensor's L2 norm, and its gradient's when it has one (after backward;
                  * default false) */
} nb_graph_opts;

/* No labels, no legend, no values: nb_graph_dot's drawing. */
nb_graph_opts nb_graph_defaults(void);
/* nb_graph_dot with names and roles for the leaves in opts->labels (a labelled leaf shows
 * "name (role)" in its role's colour; an unlabelled one is drawn as by nb_graph_dot), and the
 * legend and norms when asked. opts NULL: the defaults. */
int nb_graph_dot_opts(const nb_tensor *t, FILE *f, const nb_graph_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
