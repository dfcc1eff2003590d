/* optimizer.h - the contract between the optimizer base (optimizer.c) and an algorithm file.
 *
 * The base owns the loop. For every step it skips parameters without a gradient, refuses
 * gradients the algorithm cannot take (sparse ones, with PyTorch's message), creates each
 * parameter's state from the algorithm's state spec, and then runs the algorithm's update:
 *   - group_coef: once per group, the hyperparameters the update needs (as float32 where
 *     PyTorch rounds them so);
 *   - param_coef (optional): once per parameter, what depends on its own state (step counts,
 *     bias corrections), advancing that state;
 *   - update: the rule over a range [b, e) of one parameter's elements. The base runs all
 *     the ranges of a group as one job of nabla's pool, the group's elements cut into equal
 *     contiguous parts (the group as one flat vector, PyTorch's foreach idea without its
 *     copies): parameters that live in a module's slab are then walked in address order, one
 *     pass over the slab, its gradients and the state. An elementwise rule gives the same bits
 *     on any number of threads;
 *   - or update_tensor: a rule that needs the whole tensor (norms, matrix products: Adafactor,
 *     Muon), run per parameter, which may use the pool itself in bit-reproducible ways;
 *   - update_sparse (optional): the rule for a row-sparse gradient (SGD, Adagrad, SparseAdam).
 * LBFGS, which re-evaluates a closure, gives step_closure instead and uses the state helpers.
 *
 * Adding an optimizer: its file (defaults, validation, state spec, coefficients, update), one
 * line in registry.c, its goldens in tools/golden/gen_optim.py and its section of
 * docs/optim.md (docs/DESIGN.md has the recipe). */
#ifndef NABLA_OPTIM_INTERNAL_H
#define NABLA_OPTIM_INTERNAL_H

#include <math.h>
#include "../core/internal.h"
#include "nabla/autograd.h"
#include "nabla/optim.h"
#include "../kernels/simd.h" /* NB_SIMD_CLONES, NB_ALWAYS_INLINE */
#include "../kernels/denormal512.h" /* nb_k_adam_coef */

typedef struct nb_group {
    nb_tensor **params;
    int nparams;
    int first;   /* index of params[0] across all groups */
    nb_value *hp; /* hyperparameters: defaults merged with overrides (+ keys schedulers add) */
    int nhp;
} nb_group;

typedef struct nb_param_state {
    nb_value *values; /* named state, created by the base from the spec (and by the algorithm) */
    int nvalues;
    int cap;          /* room for the algorithm's whole state spec from the first entry on, so
                       * pointers to entries stay valid while a step adds more */
} nb_param_state;

/* What a state entry is: how the base creates it and what a loaded state dict must hold. */
typedef enum nb_state_kind {
    NB_STATE_NUMBER,       /* a number (PyTorch's 0-dim float32 tensor), created as a NUMBER */
    NB_STATE_INT,          /* a number kept as a Python int (Adadelta's step), created as INT */
    NB_STATE_LIKE,         /* a tensor shaped like the parameter */
    NB_STATE_LIKE_OR_NONE, /* the same, or None while `when` is off (SGD's momentum_buffer) */
    NB_STATE_NUMBER_OR_NONE, /* a number or None, created by the algorithm (LBFGS's H_diag) */
    NB_STATE_OTHER,        /* anything: the algorithm creates (init_state) and checks it */
} nb_state_kind;

typedef struct nb_state_spec {
    const char *name;
    nb_state_kind kind;
    bool counter;        /* a step count: the base adds 1 before param_coef (in float32 for NUMBER) */
    double init;         /* initial number, or the fill of a tensor */
    const char *init_hp; /* or: this hyperparameter of the group, as float32 (Rprop's lr) */
    const char *when;    /* created only while this hyperparameter is non-zero (amsgrad) */
} nb_state_spec;

#define NB_OPTIM_MAX_STATE 12 /* spec entries of one algorithm */
#define NB_SPEC(n, k) {.name = n, .kind = NB_STATE_##k}
#define NB_SPEC_X(n, k, x) {.name = n, .kind = NB_STATE_##k, x}
#define NB_SPEC_STEP(k) {.name = "step", .kind = NB_STATE_##k, .counter = true}

/* One parameter in one step, as the update sees it. t[k] and v[k] follow the state spec:
 * the data of a tensor entry (NULL if absent or None) and the value of any entry (NULL if
 * absent). fresh has bit k set when entry k was created (or turned from None into a tensor)
 * in this step. coef: the group's coefficients, or this parameter's (param_coef). */
typedef struct nb_optim_slot {
    nb_tensor *param;
    float *p;
    const float *g;           /* the dense gradient (NULL when it is sparse) */
    const nb_tensor *grad;    /* the gradient tensor (dense or sparse) */
    float *t[NB_OPTIM_MAX_STATE];
    nb_value *v[NB_OPTIM_MAX_STATE];
    uint32_t fresh;
    int index;
    int64_t n;
    const nb_group *group;
    const void *coef;
} nb_optim_slot;

typedef struct nb_optim nb_optim;

typedef struct nb_optim_algo {
    const char *name; /* PyTorch's class name */
    /* PyTorch's defaults, in its order (the keys of a param group) */
    const nb_value *defaults;
    int ndefaults;
    /* Check a group's hyperparameters; return nb__error(...) with PyTorch's message. */
    int (*validate)(const nb_value *hp, int nhp);
    /* Optional: fill defaults that depend on others before validation (LBFGS's max_eval). */
    void (*prepare)(nb_value *hp, int nhp);
    /* Optional: refuse a parameter when it joins (Muon: 2-D only). */
    int (*check_param)(const nb_tensor *p);
    /* The state entries a parameter may have, in PyTorch's order; loading rejects others. */
    const nb_state_spec *state_spec;
    int nstate_spec;
    bool eager_state; /* create the state when a parameter joins (Adagrad), not at its first step */
    /* Optional: create entries of kind NB_STATE_OTHER (Adafactor's factored moments). */
    int (*init_state)(nb_optim *o, const nb_group *g, int index);
    /* The step: see the file comment. coef_size bytes of coefficients; param_coef starts from
     * a copy of the group's, with the step counters already advanced. */
    size_t coef_size;
    void (*group_coef)(const nb_group *g, void *coef);
    void (*param_coef)(nb_optim_slot *s, void *coef);
    void (*update)(const nb_optim_slot *s, int64_t b, int64_t e);
    int (*update_tensor)(nb_optim *o, const nb_optim_slot *s);
    int (*update_sparse)(nb_optim *o, const nb_optim_slot *s);
    /* Sparse gradients: with update_sparse, sparse_check may refuse option combinations
     * (PyTorch's message); without, they are refused with grad_error ("<name> does not
     * support sparse gradients" when NULL). sparse_only: dense gradients are refused, with
     * grad_error. */
    int (*sparse_check)(const nb_group *g);
    const char *grad_error;
    bool sparse_only;
    /* Optional: a whole step(closure) of its own (LBFGS). */
    int (*step_closure)(nb_optim *o, nb_closure_fn closure, void *user, double *loss);
    /* Optional: more checks of the state about to be loaded for parameter index (entries of
     * kind NB_STATE_OTHER, consistency between entries). */
    int (*check_state)(const nb_optim *o, int index, const nb_value *vals, int n);
    /* Optional: turn a deep copy of parameter index's state into the saved layout (LBFGS
     * unrolls its history ring); may replace, resize or drop entries of *vals. */
    int (*export_state)(const nb_optim *o, int index, nb_value **vals, int *n);
    /* Optional: group count limit (LBFGS allows one group); 0 means any. */
    int max_groups;
    /* Loading PyTorch's state dicts: added lists (NULL-terminated) the options an older PyTorch
     * did not write, filled with their defaults as PyTorch's __setstate__ does (maximize, ...);
     * fixed the keys of a newer PyTorch that nabla accepts with one value only (Adam's
     * decoupled_weight_decay=False), fixed_hint what to do otherwise. */
    const char *const *added;
    const nb_value *fixed;
    int nfixed;
    const char *fixed_hint;
} nb_optim_algo;


struct nb_optim {
    const nb_optim_algo *algo;
    nb_value *defaults;
    int ndefaults;
    nb_group *groups;
    int ngroups;
    nb_param_state *state; /* one per parameter, by index across groups */
    int nparams;
    float *scratch;        /* workspace of the algorithm (not state: never saved) */
    size_t scratch_len;
    /* the step's working memory, sized when parameters join (a step allocates nothing) */
    nb_optim_slot *slots;
    unsigned char *coefs; /* coef_size per parameter, then one for the group */
    uint32_t *fresh;      /* per parameter: spec entries created in this step */
    /* hooks (nb_optim_register_*), in call order */
    struct nb_optim_hook *hooks;
    int nhooks, caphooks, running_hooks;
    uint64_t next_hook;
    nb_life *life;         /* ended by nb_optim_free (schedulers check it) */
    nb__lives borrowed;    /* the modules that own its parameters (checked before use) */
};

/* The optimizer's lifetime token, for a scheduler to hold (see nb_life in core/internal.h). */
nb_life *nb__optim_life(const nb_optim *o);
/* NB_OK, or NB_ESTATE with the message (op: the caller's name) once a module whose parameters
 * o holds was freed. */
int nb__optim_usable(const nb_optim *o, const char *op);

/* Build an optimizer: the algorithm's defaults with kwargs applied (names must be defaults),
 * prepared and validated, then one group of params. */
nb_optim *nb__optim_create(const nb_optim_algo *algo, nb_tensor *const *params, int n,
                           const nb_value *kwargs, int nkwargs);

/* ---- the registry (registry.c) ----------------------------------------------------------- */
/* The algorithm of a PyTorch class name (exact, then case-insensitive); NULL if unknown. */
const nb_optim_algo *nb__optim_algo(const char *name);
extern const nb_optim_algo nb__sgd_algo, nb__adam_algo, nb__adamw_algo, nb__rmsprop_algo,
    nb__adagrad_algo, nb__adadelta_algo, nb__adamax_algo, nb__nadam_algo, nb__radam_algo,
    nb__asgd_algo, nb__rprop_algo, nb__lbfgs_algo, nb__adafactor_algo, nb__sparse_adam_algo, nb__muon_algo;

/* ---- value tables (see also the nb__value_* helpers in core/internal.h) ------------------ */
/* Number / bool / list element of a table entry (NAN or 0 if missing). */
double nb__hp(const nb_value *hp, int n, const char *name);
bool nb__hp_bool(const nb_value *hp, int n, const char *name);
double nb__hp_elem(const nb_value *hp, int n, const char *name, int i);

/* Group accessors for algorithm step functions. */
static inline double nb__g(const nb_group *g, const char *name) { return nb__hp(g->hp, g->nhp, name); }
static inline bool nb__gb(const nb_group *g, const char *name) { return nb__hp_bool(g->hp, g->nhp, name); }
static inline double nb__ge(const nb_group *g, const char *name, int i) { return nb__hp_elem(g->hp, g->nhp, name, i); }

/* ---- per-parameter state ----------------------------------------------------------------- */
/* State entry `name` of parameter index; NULL if it does not exist. */
nb_value *nb__state(nb_optim *o, int index, const char *name);
/* A tensor state entry of p's shape, created filled with `init` if absent (NULL on OOM). */
float *nb__state_tensor(nb_optim *o, int index, const char *name, const nb_tensor *p, float init);
/* A scalar state entry (NB_VALUE_NUMBER/INT/NONE...), created with kind and init if absent. */
nb_value *nb__state_scalar(nb_optim *o, int index, const char *name, nb_value_kind kind,
                           double init);
/* Replace (or create) a state entry with a tensor of any shape (ownership taken). */
int nb__state_set_tensor(nb_optim *o, int index, const char *name, nb_tensor *t);
/* Remove a state entry of parameter index (no-op if absent). */
void nb__state_remove(nb_optim *o, int index, const char *name);

/* A workspace of at least n floats owned by the optimizer, kept between steps (so a steady
 * state allocates nothing); its content is undefined on return. NULL on OOM. */
float *nb__optim_scratch(nb_optim *o, size_t n);
/* Total number of elements of all parameters (LBFGS's flat vectors). */
int64_t nb__optim_numel(const nb_optim *o);
/* The parameter at an index across all groups. */
nb_tensor *nb__optim_param(const nb_optim *o, int index);
/* Elements per thread's part of an update at least: fewer do not pay for a fork and join. */
enum { NB_OPTIM_GRAIN = 8192 };
/* Run fn(ctx, b, e) over [0, n) in contiguous parts across nabla's pool when n is big enough
 * to pay for it (an elementwise rule inside a whole-tensor update). */
static inline void nb__optim_for(int64_t n, nb__range_fn fn, void *ctx) {
    nb__parallel_for(n, NB_OPTIM_GRAIN, fn, ctx);
}
/* The same over the rows [0, rows) of a matrix with row_len elements a row. */
static inline void nb__optim_rows_for(int64_t rows, int64_t row_len, nb__range_fn fn, void *ctx) {
    nb__parallel_for(rows, NB_OPTIM_GRAIN / row_len + 1, fn, ctx);
}

/* Validation helpers with PyTorch's wording: "Invalid learning rate: -0.1". */
int nb__check_ge0(const nb_value *hp, int n, const char *name, const char *what);
/* "Invalid beta parameter at index i: x" unless 0 <= betas[i] < 1, for i = 0, 1. */
int nb__check_betas(const nb_value *hp, int n);
/* lr, eps, betas, weight_decay checks shared by the Adam family (adam.c). */
int nb__validate_adam_like(const nb_value *hp, int n);

/* The optimizer loops are compiled for AVX-512 (x86-64-v4: twice the speed of AVX2 on the
 * divisions and square roots of the Adam family on Zen 5), AVX2+FMA (x86-64-v3) and the
 * baseline, and the best is picked at load time. IEEE division, square root and fma round the
 * same at every width, so the results are identical. (kernels/simd.h's clones.) */
#define NB_OPTIM_CLONES NB_SIMD_CLONES

/* The gradient an update sees: g (-g when sign = -1: maximize) plus the L2 weight decay wd p,
 * as torch's grad.add(p, alpha=wd): one fma, and none when wd = 0 (PyTorch skips the add). */
NB_ALWAYS_INLINE float nb__l2_grad(float p, float g, float sign, float wd) {
    return wd != 0.0f ? fmaf(p, wd, sign * g) : sign * g;
}

/* torch.maximum (Adam's amsgrad) and torch.amax over a pair (Adamax): NaN wins. */
static inline float nb__max_nan(float a, float b) { return a > b || a != a ? a : b; }

/* ---- the Adam rule, shared by Adam and AdamW (adam.c) ------------------------------------- */
typedef struct nb__adam_coef {
    double lr, b1d, b2d; /* the group's, for the bias corrections */
    /* the rule's: sign (-1: maximize), wd (L2 added to the gradient: Adam), decay (p *= decay
     * first: AdamW's 1 - lr wd, Adam's 1), b1, one_m_b1, b2, one_m_b2, bc2_sqrt, eps,
     * neg_step_size */
    nb_k_adam_coef k;
    bool amsgrad;
} nb__adam_coef;
/* The group's coefficients (decoupled: AdamW's weight decay), a parameter's (its step and
 * bias corrections), the update of a range, and the state spec. */
void nb__adam_group_coef(const nb_group *g, nb__adam_coef *c, bool decoupled);
void nb__adam_param_coef(nb_optim_slot *s, void *c);
void nb__adam_range(const nb_optim_slot *s, int64_t b, int64_t e);
extern const nb_state_spec nb__adam_state[4];

/* ---- row-sparse gradients (optimizer.c) --------------------------------------------------- */
/* The gradient coalesced as torch's coalesce(): rows in increasing order, each once, the
 * values of repeated rows summed in the order they came (sign -1 negates them: maximize).
 * *rows and *vals point into the optimizer's workspace until its next use. */
int nb__sparse_coalesced(nb_optim *o, const nb_tensor *grad, float sign, int64_t *nnz, const int32_t **rows,
                         const float **vals);

/* ---- torch.norm(x, 2) of a float32 vector, in PyTorch's order (optimizer.c) ----------------
 * Its CPU kernel squares into 8 float lanes with fma, sums the lanes in order, then adds the
 * tail (groups of 4 as plain products, the rest with fma) and takes sqrtf. Matching that order
 * makes clip_grad_norm_ and Adafactor agree with PyTorch to the bit on small tensors. */
float nb__norm2(const float *x, int64_t n);
/* max |x t|, NaN winning: torch's x.abs().max() with t = 1 (clip_grad's inf norm, LBFGS), and
 * LBFGS's d.mul(t).abs().max(). */
float nb__abs_max(const float *x, float t, int64_t n);
/* Deterministic reductions across the pool. A vector is cut into chunks of NB_OPTIM_CHUNK
 * elements (more for very long vectors: the chunk size depends on n only, never on the thread
 * count); fn(ctx, b, e) reduces one chunk, the chunks run across the pool, and their results
 * come back in order in part[] (at most NB_OPTIM_MAX_CHUNKS; returns the count), for the
 * caller to combine in order: the same bits on any number of threads. A vector of one chunk
 * gets fn(ctx, 0, n), the serial result. */
enum { NB_OPTIM_CHUNK = 8192, NB_OPTIM_MAX_CHUNKS = 64 };
typedef double (*nb__reduce_fn)(void *ctx, int64_t b, int64_t e);
int nb__optim_reduce(int64_t n, nb__reduce_fn fn, void *ctx, double *part);
/* ||x||_2 with nb__norm2's order within each chunk, the chunks' float sums of squares added in
 * order (nb__norm2 itself up to NB_OPTIM_CHUNK elements); for whole-tensor rules. */
float nb__norm2_chunked(const float *x, int64_t n);
/* nb__abs_max across the pool: the same result (a maximum does not depend on the split). */
float nb__abs_max_par(const float *x, float t, int64_t n);
/* The same, one element at a time (the count n is known in advance). */
typedef struct nb__norm2_acc {
    float lane[8], s;
    int64_t i, n, m, m4;
} nb__norm2_acc;
static inline void nb__norm2_init(nb__norm2_acc *a, int64_t n) {
    memset(a, 0, sizeof *a);
    a->n = n;
    a->m = n - n % 8;
    a->m4 = a->m + (n - a->m) / 4 * 4;
}
static inline void nb__norm2_lanes(nb__norm2_acc *a) {
    a->s = a->lane[0];
    for (int j = 1; j < 8; j++) a->s = a->s + a->lane[j];
}
static inline void nb__norm2_add(nb__norm2_acc *a, float x) {
    if (a->i < a->m) {
        a->lane[a->i & 7] = fmaf(x, x, a->lane[a->i & 7]);
    } else {
        if (a->i == a->m) nb__norm2_lanes(a);
        a->s = a->i < a->m4 ? a->s + x * x : fmaf(x, x, a->s);
    }
    a->i++;
}
static inline float nb__norm2_end(nb__norm2_acc *a) {
    if (a->n == a->m) nb__norm2_lanes(a);
    return sqrtf(a->s);
}

#endif
