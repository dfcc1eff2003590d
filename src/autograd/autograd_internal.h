/* autograd_internal.h - the autograd layer's internal header: the tape (nodes and their
 * recording), gradient buffers and grad hooks, for the ops, losses and dist that build on it.
 * Includes core and autograd's public header only (docs/DESIGN.md, "Layers"). */
#ifndef NABLA_AUTOGRAD_INTERNAL_H
#define NABLA_AUTOGRAD_INTERNAL_H

#include "../core/internal.h"
#include "nabla/autograd.h"

/* ---- autograd (src/autograd/engine.c) ---------------------------------------------------- */
typedef struct nb_node nb_node;
typedef void (*nb_backward_fn)(nb_node *n);

struct nb_node {
    nb_backward_fn backward;
    const char *op;      /* op name, for errors and DOT */
    nb_tensor *out;
    nb_tensor **in;      /* nin inputs (in the arena) */
    int nin;
    nb_node *prev;       /* previous node of the arena's tape */
    union {
        double f[4];
        int64_t i[4];
    } arg;               /* small saved scalars */
    void *saved;         /* op-specific saved data in the arena */
};

/* True if grad mode is on and any input requires grad. */
bool nb__should_record(int nin, nb_tensor *const *in);
/* Record out as produced by op from inputs (if nb__should_record): marks out as requiring
 * grad and returns the node, or NULL when nothing is recorded (or on OOM: then returns NULL
 * and sets *failed... callers check out->node only through the backward). */
nb_node *nb__record(nb_arena *ar, nb_tensor *out, const char *op, nb_backward_fn fn, int nin,
                    nb_tensor *const *in);
/* Internal tensor flag: marks the tensors reached by a walk of the tape (cleared after it). */
#define NB__TENSOR_REACHED 0x80000000u
/* True if t takes part in the backward (requires grad). */
static inline bool nb__wants_grad(const nb_tensor *t) {
    return t && (t->flags & NB_TENSOR_REQUIRES_GRAD);
}
/* The grad buffer of t to accumulate into. *beta is 0 when the buffer is new (its content is
 * undefined: write, do not add) and 1 when it must be added to. NULL on OOM. */
float *nb__grad(nb_tensor *t, float *beta);
/* Same, but a new buffer is zero-filled (for scatter-style backward): always add. */
float *nb__grad_zeroed(nb_tensor *t);
/* A thread's private gradients of a model's parameters (a split step, src/nn/split.c): while
 * set on a thread, nb__grad of a leaf whose grad_slot lies in the model's gradient slab
 * [slab, slab + n) returns the same offset in priv instead, with beta 0 the first time since
 * `written` (one flag per 16 floats, the slab's padding unit) was cleared; the tensor itself
 * is not touched, so parts of a batch on several threads never write the same memory. */
typedef struct nb__grad_redirect {
    const float *slab;
    int64_t n;
    float *priv;
    uint8_t *written;
} nb__grad_redirect;
/* Set (NULL: clear) the calling thread's redirect; returns the previous one. */
nb__grad_redirect *nb__set_grad_redirect(nb__grad_redirect *r);
/* Record a backward error (OOM during backward); nb_backward reports it. */
void nb__backward_fail(void);
/* A leaf's grad hook (nb_set_grad_hook) and its count for the backward that is running. */
struct nb_grad_hook {
    nb_grad_hook_fn fn;
    void *user;
    uint64_t backward; /* the backward that counted pending (each backward has its number) */
    int64_t pending;   /* nodes of that backward that have still to add to the leaf's grad */
};

/* Convenience to declare inputs for nb__record. */
#define NB_INPUTS(...) ((nb_tensor *[]){__VA_ARGS__})
#define NB_NIN(...) ((int)(sizeof((nb_tensor *[]){__VA_ARGS__}) / sizeof(nb_tensor *)))

#endif
