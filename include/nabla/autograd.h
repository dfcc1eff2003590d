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
int nb_requires_grad(nb_tensor *t, bool requires_grad);
/* True if t requires grad (leaf flag, or produced by a recorded op). */
bool nb_tensor_requires_grad(const nb_tensor *t);
/* A tensor sharing t's data with no history and requires_grad false. */
nb_tensor *nb_detach(nb_arena *ar, nb_tensor *t);

/* Grad mode (thread-local, default on). Returns the previous mode, so a no-grad scope is
 *   bool prev = nb_set_grad_enabled(false); ... ; nb_set_grad_enabled(prev); */
bool nb_set_grad_enabled(bool enabled);
bool nb_is_grad_enabled(void);

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
