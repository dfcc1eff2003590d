/* optimizer.h - the contract between the optimizer base (optimizer.c) and an algorithm file.
 *
 * An algorithm provides its name, its defaults table, a validation of a group's
 * hyperparameters, and the update of one group. Everything generic (groups, state,
 * state_dict, zero_grad) lives in the base once. */
#ifndef NABLA_OPTIM_INTERNAL_H
#define NABLA_OPTIM_INTERNAL_H

#include "../core/internal.h"

typedef struct nb_group {
    nb_tensor **params;
    int nparams;
    int first;   /* index of params[0] across all groups */
    nb_value *hp; /* hyperparameters: defaults merged with overrides (+ keys schedulers add) */
    int nhp;
} nb_group;

/* Named state of one parameter, created lazily by the algorithm. Room for NB_STATE_MIN values
 * is reserved at once, so pointers returned by nb__state_* stay valid while a step creates
 * its entries (only an algorithm keeping more entries than that, like LBFGS's history, sees
 * the table move, on creation). */
#define NB_STATE_MIN 16
typedef struct nb_param_state {
    nb_value *values;
    int nvalues, cap;
} nb_param_state;

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
    /* Optional: check a state entry about to be loaded for parameter p (default: tensors must
     * have p's shape). */
    int (*check_state)(const nb_tensor *p, const nb_value *v);
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
};

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

/* Validation helpers with PyTorch's wording: "Invalid learning rate: -0.1". */
int nb__check_ge0(const nb_value *hp, int n, const char *name, const char *what);
/* lr, eps, betas, weight_decay checks shared by the Adam family (adam.c). */
int nb__validate_adam_like(const nb_value *hp, int n);

#endif
