/* nabla/optim.h - torch.optim in C: param groups, per-parameter state, state_dict, clipping.
 *
 * An optimizer holds param groups. Each group is a list of parameters plus a table of named
 * hyperparameters ("lr", "momentum", "betas", ...); values a group does not set come from the
 * optimizer's defaults, as in PyTorch. Per-parameter state ("momentum_buffer", "exp_avg",
 * "step", ...) is created lazily on the first step that sees a gradient. Parameters whose grad
 * is NULL are skipped, as PyTorch skips grad None.
 *
 *   nb_adam_opts o = nb_adam_defaults(); o.lr = 3e-4;
 *   nb_optim *opt = nb_adam(params, n, &o);
 *   ... nb_optim_zero_grad(opt, true); nb_backward(loss); nb_optim_step(opt);
 *
 * The algorithms (each with an nb_<algo>_opts struct, nb_<algo>_defaults() and a constructor):
 * SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam, ASGD, Rprop, LBFGS,
 * SparseAdam, Adafactor and Muon, with PyTorch's defaults, validation and messages. docs/optim.md maps torch.optim
 * to these calls and lists the differences.
 *
 * Lifetimes: an optimizer borrows its parameters (it never frees them) and owns its state.
 * Parameters must outlive it: free the optimizer before the module that owns them. If the
 * module is freed first, every later nb_optim_step, nb_optim_step_closure, nb_optim_zero_grad
 * (a no-op with the error set), nb_optim_state_dict and nb_optim_load_state_dict fails with
 * NB_ESTATE instead of touching freed memory (a module's tensors carry its lifetime token;
 * heap tensors you made and free yourself carry none: they must outlive the optimizer). A
 * scheduler borrows its optimizer the same way (sched.h). The array of parameter pointers a
 * constructor or nb_optim_add_param_group is given is copied (the tensors are borrowed); an
 * options struct, its strings and kwargs are read during the call. What the accessors return
 * is said at each: nb_optim_group_param gives a borrowed parameter, nb_optim_get_value a
 * pointer into a group's table that the next nb_optim_put or state load invalidates.
 */
#ifndef NABLA_OPTIM_H
#define NABLA_OPTIM_H

#include "tensor.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the optimizer ----------------------------------------------------------------------- */
typedef struct nb_optim nb_optim;

/* torch.optim by name: name is PyTorch's class name ("Adam", "SGD", ...; case-insensitive),
 * kwargs (NULL/0 for none) its keyword arguments with PyTorch's names and kinds (lr a number,
 * betas a pair, max_iter an int, line_search_fn a string or None, ...); every argument not
 * given has PyTorch's default. Errors as PyTorch's: "Adam.__init__() got an unexpected keyword
 * argument 'momentum'", "Invalid learning rate: -0.1". The optimizer borrows params (see
 * nb_optim_add_param_group); free it with nb_optim_free. */
nb_optim *nb_optim_new(const char *name, nb_tensor *const *params, int n, const nb_value *kwargs,
                       int nkwargs);
/* The class names nb_optim_new knows, in a fixed order: writes up to max of them to names
 * (static strings) and returns how many there are. */
int nb_optim_names(const char **names, int max);
/* PyTorch's defaults of the optimizer called name: its keyword arguments in PyTorch's order
 * (a static table of *n values, valid for the life of the process); NULL if name is unknown. */
const nb_value *nb_optim_defaults_of(const char *name, int *n);
/* True if the optimizer's step re-evaluates the loss (LBFGS: use nb_optim_step_closure). */
bool nb_optim_requires_closure(const nb_optim *o);

/* Name of the algorithm ("SGD", "Adam", ...): a static string. */
const char *nb_optim_type(const nb_optim *o);
/* Add a group of parameters; overrides (may be NULL/0) replace the optimizer's defaults for
 * this group. Rejects a parameter already in a group, unknown names and invalid values. */
int nb_optim_add_param_group(nb_optim *o, nb_tensor *const *params, int n,
                             const nb_value *overrides, int noverrides);
int nb_optim_num_groups(const nb_optim *o);
/* Number of parameters in group g (-1 if g is out of range), and the i-th one: the caller's
 * tensor the optimizer borrows (valid as long as that tensor, e.g. until its module is freed). */
int nb_optim_group_size(const nb_optim *o, int g);
nb_tensor *nb_optim_group_param(const nb_optim *o, int g, int i);
/* Read a hyperparameter of group g (NAN if absent or not a number/int/bool). */
double nb_optim_get(const nb_optim *o, int g, const char *name);
/* Read a hyperparameter value of any kind (NULL if absent). The pointer is into group g's
 * table, owned by the optimizer: valid until the next nb_optim_put, nb_optim_load_state_dict
 * (also through nb_checkpoint_load, and the construction of most schedulers, which put
 * "initial_lr") or nb_optim_free on o. nb_optim_set, set_elem and set_value change what it
 * points to (set_value replaces a list or string it held). */
const nb_value *nb_optim_get_value(const nb_optim *o, int g, const char *name);
/* Change a hyperparameter of group g at run time (what schedulers do). Validated. */
int nb_optim_set(nb_optim *o, int g, const char *name, double v);
/* Change element i of a list hyperparameter (e.g. betas[0]). */
int nb_optim_set_elem(nb_optim *o, int g, const char *name, int i, double v);
/* Replace a hyperparameter of group g with a value of any kind (a string such as
 * line_search_fn, a whole list such as betas, None). Validated; unchanged on error. */
int nb_optim_set_value(nb_optim *o, int g, const nb_value *v);
/* Add or replace a group entry that is not one of the optimizer's options (schedulers store
 * "initial_lr", "max_lr", ... this way, as in PyTorch's group dicts). Not validated. */
int nb_optim_put(nb_optim *o, int g, const nb_value *v);
/* True if the optimizer's defaults have a hyperparameter of that name. */
bool nb_optim_has_default(const nb_optim *o, const char *name);

/* Clear gradients of every parameter: set_to_none (PyTorch 2's default) or fill with zero.
 * Does nothing (error NB_ESTATE set) once the module owning the parameters was freed. */
void nb_optim_zero_grad(nb_optim *o, bool set_to_none);
/* One update of every parameter that has a gradient. */
int nb_optim_step(nb_optim *o);
/* Closure for optimizers that re-evaluate the loss (LBFGS): zero grads, forward, backward,
 * return the loss (NAN on failure). */
typedef double (*nb_closure_fn)(void *user);
/* step(closure): *loss receives the closure's first loss. Works for every optimizer. */
int nb_optim_step_closure(nb_optim *o, nb_closure_fn closure, void *user, double *loss);
/* Free the optimizer and its state (not the parameters it borrows). A scheduler of it fails
 * with NB_ESTATE from then on. NULL is a no-op. */
void nb_optim_free(nb_optim *o);

/* ---- state_dict: PyTorch's layout --------------------------------------------------------
 * state: one entry per parameter that has state, keyed by its index across all groups in
 * order; each holds named values (tensors are deep copies) and the parameter's shape.
 * param_groups: every hyperparameter plus the list of parameter indices. */
typedef struct nb_optim_param_state {
    int index;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    int nvalues;
    nb_value *values;
} nb_optim_param_state;

typedef struct nb_optim_group_dict {
    int nparams;
    int *params; /* indices */
    int nvalues;
    nb_value *values;
} nb_optim_group_dict;

typedef struct nb_optim_dict {
    char type[NB_VALUE_NAME_MAX];
    int nstates;
    nb_optim_param_state *states;
    int ngroups;
    nb_optim_group_dict *groups;
} nb_optim_dict;

/* A deep copy of the optimizer's state (free with nb_optim_dict_free), after the state_dict
 * hooks (below). The caller owns it and the tensors and lists in it; it shares nothing with o. */
nb_optim_dict *nb_optim_state_dict(const nb_optim *o);
/* Replace the optimizer's state and hyperparameters. Checks type, group count and sizes
 * (PyTorch's messages), parameter shapes and state shapes; on any error nothing changes.
 * Dicts of other PyTorch versions load as PyTorch loads them (docs/optim.md). sd is read during
 * the call (copied; the caller still owns it). */
int nb_optim_load_state_dict(nb_optim *o, const nb_optim_dict *sd);
void nb_optim_dict_free(nb_optim_dict *sd);

/* ---- hooks (PyTorch 2.x's Optimizer.register_*_hook) ---------------------------------------
 * A hook is called with the optimizer, a state dict (for state_dict post hooks: the dict about
 * to be returned; for load_state_dict pre hooks: a copy of the dict being loaded, which is what
 * loads: change it in place) or NULL, and the user pointer. It returns 0, or an error code
 * (set nb_last_error's message with it if you like): a step or load pre hook's error stops the
 * step or load (nothing changes) and is returned; a post hook's is returned after the fact;
 * the dict a hook gets is borrowed for the hook's call (do not keep or free it);
 * a state_dict hook's makes nb_optim_state_dict return NULL. Hooks of one kind run in the
 * order they were registered (prepend: first); a hook may register or remove hooks.
 * Step hooks run around nb_optim_step and nb_optim_step_closure (pre hooks before the
 * closure), as PyTorch's around step(). PyTorch's global hooks (register_optimizer_step_pre_hook)
 * are process-wide state, which nabla does not keep. */
typedef enum nb_optim_hook_kind {
    NB_HOOK_STEP_PRE,
    NB_HOOK_STEP_POST,
    NB_HOOK_STATE_DICT_PRE,
    NB_HOOK_STATE_DICT_POST,
    NB_HOOK_LOAD_STATE_DICT_PRE,
    NB_HOOK_LOAD_STATE_DICT_POST,
} nb_optim_hook_kind;
struct nb_optim_dict;
typedef int (*nb_optim_hook_fn)(nb_optim *o, struct nb_optim_dict *sd, void *user);
/* What a register function returns, to remove the hook with (PyTorch's RemovableHandle); id 0
 * when registering failed (the error is set). owner is borrowed: the handle is only valid
 * while that optimizer is. */
typedef struct nb_hook_handle {
    nb_optim *owner;
    uint64_t id;
} nb_hook_handle;
/* The optimizer keeps fn and user until the hook is removed or the optimizer freed. */
nb_hook_handle nb_optim_register_step_pre_hook(nb_optim *o, nb_optim_hook_fn fn, void *user);
nb_hook_handle nb_optim_register_step_post_hook(nb_optim *o, nb_optim_hook_fn fn, void *user);
nb_hook_handle nb_optim_register_state_dict_pre_hook(nb_optim *o, nb_optim_hook_fn fn, void *user, bool prepend);
nb_hook_handle nb_optim_register_state_dict_post_hook(nb_optim *o, nb_optim_hook_fn fn, void *user, bool prepend);
nb_hook_handle nb_optim_register_load_state_dict_pre_hook(nb_optim *o, nb_optim_hook_fn fn, void *user,
                                                          bool prepend);
nb_hook_handle nb_optim_register_load_state_dict_post_hook(nb_optim *o, nb_optim_hook_fn fn, void *user,
                                                           bool prepend);
/* Remove the hook (handle.remove()): a no-op for a handle already removed (its id becomes 0)
 * or that failed. Call it before freeing the optimizer, or not at all (the optimizer drops its
 * hooks when freed; the handle must not be used then). */
void nb_hook_remove(nb_hook_handle *h);

/* ---- gradient clipping (torch.nn.utils) -------------------------------------------------- */
/* Scale all grads so their total norm_type-norm is at most max_norm (coef max/(norm+1e-6),
 * clamped to 1). norm_type: any p > 0 or INFINITY. *total_norm receives the norm before
 * clipping. error_if_nonfinite: fail (grads unchanged) on a NaN/inf total norm. */
int nb_clip_grad_norm(nb_tensor *const *params, int n, double max_norm, double norm_type,
                      bool error_if_nonfinite, double *total_norm);
/* Clamp every grad element to [-clip_value, clip_value]. Both clipping functions borrow params
 * for the call only. */
int nb_clip_grad_value(nb_tensor *const *params, int n, double clip_value);

/* ---- algorithms: options structs with PyTorch's defaults --------------------------------- */
typedef struct nb_sgd_opts {
    double lr;           /* 1e-3 (PyTorch 2.x; 1.13 required it) */
    double momentum;     /* 0 */
    double dampening;    /* 0 */
    double weight_decay; /* 0 */
    bool nesterov;       /* false */
    bool maximize;       /* false */
} nb_sgd_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_sgd_opts nb_sgd_defaults(void);
/* torch.optim.SGD */
nb_optim *nb_sgd(nb_tensor *const *params, int n, const nb_sgd_opts *opts);

typedef struct nb_adam_opts {
    double lr;           /* 1e-3 */
    double beta1, beta2; /* 0.9, 0.999 */
    double eps;          /* 1e-8 */
    double weight_decay; /* 0 (L2, added to the gradient) */
    bool amsgrad;        /* false */
    bool maximize;       /* false */
} nb_adam_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_adam_opts nb_adam_defaults(void);
/* torch.optim.Adam */
nb_optim *nb_adam(nb_tensor *const *params, int n, const nb_adam_opts *opts);

typedef struct nb_adamw_opts {
    double lr;           /* 1e-3 */
    double beta1, beta2; /* 0.9, 0.999 */
    double eps;          /* 1e-8 */
    double weight_decay; /* 1e-2 (decoupled: p *= 1 - lr * weight_decay) */
    bool amsgrad;        /* false */
    bool maximize;       /* false */
} nb_adamw_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_adamw_opts nb_adamw_defaults(void);
/* torch.optim.AdamW */
nb_optim *nb_adamw(nb_tensor *const *params, int n, const nb_adamw_opts *opts);

typedef struct nb_rmsprop_opts {
    double lr;           /* 1e-2 */
    double alpha;        /* 0.99 (smoothing constant) */
    double eps;          /* 1e-8 (added outside the square root) */
    double weight_decay; /* 0 */
    double momentum;     /* 0 */
    bool centered;       /* false */
    bool maximize;       /* false */
} nb_rmsprop_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_rmsprop_opts nb_rmsprop_defaults(void);
/* torch.optim.RMSprop */
nb_optim *nb_rmsprop(nb_tensor *const *params, int n, const nb_rmsprop_opts *opts);

typedef struct nb_adagrad_opts {
    double lr;                        /* 1e-2 */
    double lr_decay;                  /* 0 */
    double weight_decay;              /* 0 */
    double initial_accumulator_value; /* 0 */
    double eps;                       /* 1e-10 */
    bool maximize;                    /* false */
} nb_adagrad_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_adagrad_opts nb_adagrad_defaults(void);
/* torch.optim.Adagrad (its state exists from construction, as in PyTorch) */
nb_optim *nb_adagrad(nb_tensor *const *params, int n, const nb_adagrad_opts *opts);

typedef struct nb_adadelta_opts {
    double lr;           /* 1.0 */
    double rho;          /* 0.9 */
    double eps;          /* 1e-6 */
    double weight_decay; /* 0 */
    bool maximize;       /* false */
} nb_adadelta_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_adadelta_opts nb_adadelta_defaults(void);
/* torch.optim.Adadelta */
nb_optim *nb_adadelta(nb_tensor *const *params, int n, const nb_adadelta_opts *opts);

typedef struct nb_adamax_opts {
    double lr;           /* 2e-3 */
    double beta1, beta2; /* 0.9, 0.999 */
    double eps;          /* 1e-8 */
    double weight_decay; /* 0 */
    bool maximize;       /* false */
} nb_adamax_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_adamax_opts nb_adamax_defaults(void);
/* torch.optim.Adamax */
nb_optim *nb_adamax(nb_tensor *const *params, int n, const nb_adamax_opts *opts);

typedef struct nb_nadam_opts {
    double lr;                   /* 2e-3 */
    double beta1, beta2;         /* 0.9, 0.999 */
    double eps;                  /* 1e-8 */
    double weight_decay;         /* 0 */
    double momentum_decay;       /* 4e-3 */
    bool decoupled_weight_decay; /* false (PyTorch 2.x: NAdamW) */
    bool maximize;               /* false (PyTorch 2.x) */
} nb_nadam_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_nadam_opts nb_nadam_defaults(void);
/* torch.optim.NAdam */
nb_optim *nb_nadam(nb_tensor *const *params, int n, const nb_nadam_opts *opts);

typedef struct nb_radam_opts {
    double lr;                   /* 1e-3 */
    double beta1, beta2;         /* 0.9, 0.999 */
    double eps;                  /* 1e-8 */
    double weight_decay;         /* 0 */
    bool decoupled_weight_decay; /* false (PyTorch 2.x: RAdamW) */
    bool maximize;               /* false (PyTorch 2.x) */
} nb_radam_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_radam_opts nb_radam_defaults(void);
/* torch.optim.RAdam */
nb_optim *nb_radam(nb_tensor *const *params, int n, const nb_radam_opts *opts);

typedef struct nb_asgd_opts {
    double lr;           /* 1e-2 */
    double lambd;        /* 1e-4 (decay term) */
    double alpha;        /* 0.75 (power for eta update) */
    double t0;           /* 1e6 (step at which averaging starts) */
    double weight_decay; /* 0 */
    bool maximize;       /* false */
} nb_asgd_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_asgd_opts nb_asgd_defaults(void);
/* torch.optim.ASGD; the averaged parameters are the state "ax" (nb_asgd_average). */
nb_optim *nb_asgd(nb_tensor *const *params, int n, const nb_asgd_opts *opts);
/* ASGD's average of parameter p (state "ax"); NULL if p has no state yet or o is not ASGD. */
const nb_tensor *nb_asgd_average(const nb_optim *o, const nb_tensor *p);

typedef struct nb_rprop_opts {
    double lr;                           /* 1e-2 (initial step size, read once per parameter) */
    double eta_minus, eta_plus;          /* 0.5, 1.2 */
    double step_size_min, step_size_max; /* 1e-6, 50 */
    bool maximize;                       /* false */
} nb_rprop_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_rprop_opts nb_rprop_defaults(void);
/* torch.optim.Rprop */
nb_optim *nb_rprop(nb_tensor *const *params, int n, const nb_rprop_opts *opts);

typedef struct nb_lbfgs_opts {
    double lr;               /* 1 */
    int max_iter;            /* 20 iterations per step */
    int max_eval;            /* 0: max_iter * 5 / 4 (PyTorch's None) */
    double tolerance_grad;   /* 1e-7 */
    double tolerance_change; /* 1e-9 */
    int history_size;        /* 100 */
    const char *line_search_fn; /* NULL (None) or "strong_wolfe" */
} nb_lbfgs_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_lbfgs_opts nb_lbfgs_defaults(void);
/* torch.optim.LBFGS: one param group; step with nb_optim_step_closure (the closure zeroes the
 * grads, runs forward and backward and returns the loss), which may call it up to max_eval
 * times. */
nb_optim *nb_lbfgs(nb_tensor *const *params, int n, const nb_lbfgs_opts *opts);

typedef struct nb_adafactor_opts {
    double lr;           /* 1e-2 (caps the relative step size: rho_t = min(lr, 1/sqrt(t))) */
    double beta2_decay;  /* -0.8 */
    double eps1;         /* NAN: None, float32's machine epsilon */
    double eps2;         /* 1e-3 */
    double d;            /* 1.0 (update clipping threshold) */
    double weight_decay; /* 0 (decoupled: p *= 1 - lr * weight_decay) */
    bool maximize;       /* false */
} nb_adafactor_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_adafactor_opts nb_adafactor_defaults(void);
/* torch.optim.Adafactor (PyTorch 2.5): factored second moments for parameters with 2 or more
 * dimensions (over the last two), a full one for vectors. */
nb_optim *nb_adafactor(nb_tensor *const *params, int n, const nb_adafactor_opts *opts);

typedef struct nb_sparse_adam_opts {
    double lr;           /* 1e-3 (> 0) */
    double beta1, beta2; /* 0.9, 0.999 */
    double eps;          /* 1e-8 (> 0) */
    bool maximize;       /* false */
} nb_sparse_adam_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_sparse_adam_opts nb_sparse_adam_defaults(void);
/* torch.optim.SparseAdam: for row-sparse gradients (a sparse Embedding's weight,
 * nb_embedding_sparse_new); rows absent from a gradient are left untouched, their moments too.
 * A dense gradient is refused ("SparseAdam does not support dense gradients, please consider
 * Adam instead"). */
nb_optim *nb_sparse_adam(nb_tensor *const *params, int n, const nb_sparse_adam_opts *opts);

typedef struct nb_muon_opts {
    double lr;                  /* 1e-3 */
    double weight_decay;        /* 0.1 (decoupled: p *= 1 - lr * weight_decay) */
    double momentum;            /* 0.95 */
    bool nesterov;              /* true */
    double ns_coefficients[3];  /* (3.4445, -4.7750, 2.0315): a, b, c of the Newton-Schulz step */
    double eps;                 /* 1e-7 (the update's norm is clamped to it first) */
    int ns_steps;               /* 5 (< 100) */
    const char *adjust_lr_fn;   /* NULL (None: "original", lr sqrt(max(1, rows/cols))) or
                                   "match_rms_adamw" (lr 0.2 sqrt(max(rows, cols))) */
} nb_muon_opts;
/* PyTorch's defaults (the values noted above); override fields, then construct. */
nb_muon_opts nb_muon_defaults(void);
/* torch.optim.Muon (PyTorch 2.9): momentum orthogonalised by a Newton-Schulz iteration, for
 * 2-D parameters only ("Muon only supports 2D parameters whereas we found a parameter with
 * size: torch.Size([10])"); give the others (biases) to another optimizer, e.g. AdamW. The
 * iteration runs in float32 (PyTorch's in bfloat16). */
nb_optim *nb_muon(nb_tensor *const *params, int n, const nb_muon_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
