/* optimizer.h - the contract between the optimizer base (optimizer.c) and an algorithm file.
 *
 * An algorithm provides its name, its defaults table, a validation of a group's
 * hyperparameters, the update of one group (or a whole step(closure)), and the list of its
 * state entries (checked when a state dict is loaded). Everything generic (groups, state,
 * state_dict, zero_grad, a workspace) lives in the base once; optional hooks let an algorithm
 * add state checks or a saved layout of its own (LBFGS) without fields in the base. */
#ifndef NABLA_OPTIM_INTERNAL_H
#define NABLA_OPTIM_INTERNAL_H

#include <math.h>
#include "../core/internal.h"
#include "../kernels/simd.h" /* NB_SIMD_CLONES, NB_ALWAYS_INLINE */

typedef struct nb_group {
    nb_tensor **params;
    int nparams;
    int first;   /* index of params[0] across all groups */
    nb_value *hp; /* hyperparameters: defaults merged with overrides (+ keys schedulers add) */
    int nhp;
} nb_group;

typedef struct nb_param_state {
    nb_value *values; /* named state, created lazily by the algorithm */
    int nvalues;
    int cap;          /* room for the algorithm's whole state spec from the first entry on, so
                       * pointers to entries stay valid while a step adds more */
} nb_param_state;

/* What a state entry must be when a state dict is loaded (checked before anything changes). */
typedef enum nb_state_kind {
    NB_STATE_NUMBER,       /* a number: PyTorch's 0-dim float32 tensor or Python int */
    NB_STATE_LIKE,         /* a tensor shaped like the parameter */
    NB_STATE_LIKE_OR_NONE, /* the same, or None (SGD's momentum_buffer without momentum) */
    NB_STATE_OTHER,        /* anything: the algorithm's check_state looks at it */
} nb_state_kind;

typedef struct nb_state_spec {
    const char *name;
    nb_state_kind kind;
} nb_state_spec;

typedef struct nb_optim_algo {
    const char *name;
    /* Check a group's hyperparameters; return nb__error(...) with PyTorch's message. */
    int (*validate)(const nb_value *hp, int nhp);
    /* Update every parameter of the group that has a gradient. */
    int (*step_group)(nb_optim *o, nb_group *g);
    /* Optional: a whole step(closure) of its own (LBFGS). */
    int (*step_closure)(nb_optim *o, nb_closure_fn closure, void *user, double *loss);
    /* Optional: called when a parameter joins (Adagrad creates its state eagerly). */
    int (*on_add_param)(nb_optim *o, nb_group *g, int index);
    /* The state entries a parameter may have; loading rejects other names and kinds. */
    const nb_state_spec *state_spec;
    int nstate_spec;
    /* Optional: more checks of the state about to be loaded for parameter index (entries of
     * kind NB_STATE_OTHER, consistency between entries). */
    int (*check_state)(const nb_optim *o, int index, const nb_value *vals, int n);
    /* Optional: turn a deep copy of parameter index's state into the saved layout (LBFGS
     * unrolls its history ring); may replace, resize or drop entries of *vals. */
    int (*export_state)(const nb_optim *o, int index, nb_value **vals, int *n);
    /* Optional: group count limit (LBFGS allows one group); 0 means any. */
    int max_groups;
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
    nb_life *life;         /* ended by nb_optim_free (schedulers check it) */
    nb__lives borrowed;    /* the modules that own its parameters (checked before use) */
};

/* The optimizer's lifetime token, for a scheduler to hold (see nb_life in core/internal.h). */
nb_life *nb__optim_life(const nb_optim *o);
/* NB_OK, or NB_ESTATE with the message (op: the caller's name) once a module whose parameters
 * o holds was freed. */
int nb__optim_usable(const nb_optim *o, const char *op);

/* Build an optimizer: copies the defaults table, validates it, adds one group of params. */
nb_optim *nb__optim_new(const nb_optim_algo *algo, const nb_value *defaults, int ndefaults,
                        nb_tensor *const *params, int n);

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
/* A tensor state entry shaped like p, created filled with `init` if absent (NULL on OOM). */
float *nb__state_tensor(nb_optim *o, int index, const char *name, const nb_tensor *p, float init);
/* A scalar state entry (NB_VALUE_NUMBER/INT/NONE...), created with kind and init if absent. */
nb_value *nb__state_scalar(nb_optim *o, int index, const char *name, nb_value_kind kind,
                           double init);
/* Replace (or create) a state entry with a tensor of any shape (ownership taken). */
int nb__state_set_tensor(nb_optim *o, int index, const char *name, nb_tensor *t);

/* Run an elementwise update of a parameter's n elements, fn(ctx, begin, end) for [begin, end),
 * split across nabla's pool in contiguous parts when the parameter is big enough to pay for
 * it. The parts are the ones in which the GEMMs split the weight's rows (kernels/gemm.c), so
 * each thread updates the rows whose gradient it computed. The result does not depend on the
 * thread count. */
static inline void nb__optim_for(int64_t n, nb__range_fn fn, void *ctx) {
    nb__parallel_for(n, 8192, fn, ctx);
}

/* A workspace of at least n floats owned by the optimizer, kept between steps (so a steady
 * state allocates nothing); its content is undefined on return. NULL on OOM. */
float *nb__optim_scratch(nb_optim *o, size_t n);
/* Total number of elements of all parameters (LBFGS's flat vectors). */
int64_t nb__optim_numel(const nb_optim *o);
/* The parameter at an index across all groups. */
nb_tensor *nb__optim_param(const nb_optim *o, int index);
/* Remove a state entry of parameter index (no-op if absent). */
void nb__state_remove(nb_optim *o, int index, const char *name);

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

/* ---- the Adam loop, shared by Adam and AdamW (adam.c) ------------------------------------ */
typedef struct nb__adam_coef {
    float wd;            /* L2 added to the gradient (Adam) */
    float decay;         /* p *= decay first (AdamW: 1 - lr wd; Adam: 1) */
    float b1, one_m_b1, b2, one_m_b2, bc2_sqrt, eps, neg_step_size;
    bool maximize;
} nb__adam_coef;
void nb__adam_update(float *restrict p, const float *restrict g, float *restrict m,
                     float *restrict v, float *restrict vmax, int64_t n, const nb__adam_coef *c);
/* Adam's step of one group; decoupled: AdamW's weight decay. */
int nb__adam_group(nb_optim *o, nb_group *g, bool decoupled);
extern const nb_state_spec nb__adam_state[4];

/* ---- torch.norm(x, 2) of a float32 vector, in PyTorch's order (optimizer.c) ----------------
 * Its CPU kernel squares into 8 float lanes with fma, sums the lanes in order, then adds the
 * tail (groups of 4 as plain products, the rest with fma) and takes sqrtf. Matching that order
 * makes clip_grad_norm_ and Adafactor agree with PyTorch to the bit on small tensors. */
float nb__norm2(const float *x, int64_t n);
/* max |x t|, NaN winning: torch's x.abs().max() with t = 1 (clip_grad's inf norm, LBFGS), and
 * LBFGS's d.mul(t).abs().max(). */
float nb__abs_max(const float *x, float t, int64_t n);
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

/* Bias corrections and step sizes are Python floats (double); PyTorch rounds such a scalar
 * to float32 when it meets a float32 tensor. The state "step" is a float32 tensor for most
 * algorithms: increment it in float32. */
static inline double nb__step_inc(nb_value *step) {
    step->num = (double)(float)(step->num + 1.0);
    return step->num;
}

#endif
