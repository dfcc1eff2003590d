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
 * NB_ESTATE if loss has more than one element or does not require grad. */
int nb_backward(nb_tensor *loss);
/* Backward from any tensor with an explicit upstream gradient of its shape (vector-Jacobian). */
int nb_backward_grad(nb_tensor *out, const nb_tensor *grad_out);

/* Mark a leaf tensor as requiring grad (or not). Fails on a tensor produced by an op. */
int nb_requires_grad(nb_tensor *t, bool requires);
/* True if t requires grad (leaf flag, or produced by a recorded op). */
bool nb_tensor_requires_grad(const nb_tensor *t);
/* A tensor sharing t's data with no history and requires_grad false. */
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
 * (e.g. int32 indices) are passed through. Input values and existing grads are restored. */
int nb_gradcheck(nb_gradcheck_fn f, int n, nb_tensor *const *inputs, void *user,
                 const nb_gradcheck_opts *opts);

/* ---- inspection ------------------------------------------------------------------------- */
/* Write the graph that produced t as Graphviz DOT to f (the caller's FILE, left open). */
int nb_graph_dot(const nb_tensor *t, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
