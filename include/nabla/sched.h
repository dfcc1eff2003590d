/* nabla/sched.h - torch.optim.lr_scheduler and torch.optim.swa_utils in C.
 *
 * A scheduler sees only its optimizer's param groups: it writes "lr" (and, for OneCycleLR and
 * CyclicLR, "momentum" or betas[0]) into them, unchecked, as PyTorch's schedulers assign
 * group['lr']: a schedule may produce a value nb_optim_set would refuse (OneCycleLR's linear
 * anneal gives a negative lr at its last step), and the optimizer steps with it. As in PyTorch, construction sets "initial_lr" in
 * every group and takes the first step (last_epoch -1 -> 0), and each schedule uses PyTorch's
 * recursive ("chainable") form where PyTorch does, so lr sequences match to float rounding.
 *
 *   nb_sched *s = nb_step_lr(opt, 30, 0.1);
 *   for (epoch...) { train...; nb_sched_step(s); }
 *
 * Errors: PyTorch's message where PyTorch checks ("Expected positive integer T_0, but got 0");
 * "<Schedule>: ..." where nabla checks what PyTorch would crash on or silently accept.
 * A failed step changes nothing (neither the schedule nor the optimizer).
 *
 * Lifetimes: a scheduler borrows its optimizer (it never frees it); free the scheduler first.
 * If the optimizer is freed first, every later step and nb_sched_load_state_dict fails with
 * NB_ESTATE instead of writing into freed memory. SequentialLR and ChainedScheduler own the
 * schedulers they are given. nb_averaged (below) borrows nothing: its calls take the
 * parameters each time. A constructor reads its options struct, lists (milestones, per-group
 * values) and strings (mode, anneal_strategy) during the call (copied); it keeps only the
 * functions it is given with their user pointers (LambdaLR's fn, CyclicLR's scale_fn), which
 * must outlive the schedule. The caller owns a schedule until nb_sched_free (or until it gives
 * it to SequentialLR/ChainedScheduler).
 */
#ifndef NABLA_SCHED_H
#define NABLA_SCHED_H

#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_sched nb_sched;

/* A schedule by name: PyTorch's class name ("StepLR", "OneCycleLR", "SWALR", ...;
 * case-insensitive) with its keyword arguments (PyTorch's names; lists for milestones and for
 * per-group values such as max_lr; NULL/0 for none), every other argument PyTorch's default.
 * Errors as PyTorch's ("StepLR.__init__() missing 1 required positional argument:
 * 'step_size'"). LambdaLR, MultiplicativeLR, SequentialLR and ChainedScheduler take functions
 * or other schedules: use their constructors below. The schedule borrows o (see below). */
nb_sched *nb_sched_new(const char *name, nb_optim *o, const nb_value *kwargs, int nkwargs);
/* The class names nb_sched_new knows (those that need functions included), in PyTorch's order:
 * writes up to max of them to names (static strings) and returns how many there are. */
int nb_sched_names(const char **names, int max);
/* The keyword arguments of the schedule called name with PyTorch's defaults, in PyTorch's order
 * (None for required ones; a static table of *n values); NULL if name is unknown, *n 0 when it
 * takes none by name. */
const nb_value *nb_sched_defaults_of(const char *name, int *n);

/* Python's None for an integer option of an options struct. */
#define NB_SCHED_NONE INT64_MIN

/* Advance one epoch (or one batch for per-batch schedules) and write the new lrs. */
int nb_sched_step(nb_sched *s);
/* PyTorch's deprecated step(epoch): jump to an epoch (closed form where PyTorch has one).
 * Integer epochs, except CosineAnnealingWarmRestarts, which takes fractional epochs
 * (step(epoch + i / iters) per batch). */
int nb_sched_step_epoch(nb_sched *s, double epoch);
/* ReduceLROnPlateau's step(metrics). Other schedules refuse it. */
int nb_sched_step_metric(nb_sched *s, double metric);
/* The lr each group got at the last step (get_last_lr()[g]); NAN if g is out of range. */
double nb_sched_last_lr(const nb_sched *s, int g);
/* get_last_lr(): every group's, written to out (up to n values); returns the number of groups.
 * Every schedule has it (ReduceLROnPlateau and the containers too, as in PyTorch 2.x). */
int nb_sched_get_last_lr(const nb_sched *s, double *out, int n);
/* Number of param groups it drives (0 for NULL). */
int nb_sched_num_groups(const nb_sched *s);
/* last_epoch as PyTorch counts it (0 right after construction). */
int64_t nb_sched_last_epoch(const nb_sched *s);
/* Name of the schedule ("StepLR"): a static string. */
const char *nb_sched_type(const nb_sched *s);
/* The optimizer it drives (borrowed: valid while that optimizer is). */
nb_optim *nb_sched_optimizer(const nb_sched *s);
/* Frees the schedule (and the sub-schedules a SequentialLR/ChainedScheduler owns). */
void nb_sched_free(nb_sched *s);

/* ---- state_dict ---------------------------------------------------------------------------
 * PyTorch's fields as named values: base_lrs, last_epoch, _step_count, _last_lr and the
 * schedule's own (step_size, gamma, T_cur, best, num_bad_epochs, mode, milestones...). Values
 * are numbers (may be +-inf: ReduceLROnPlateau's best), ints, bools, lists and strings.
 * SequentialLR and ChainedScheduler keep their sub-schedulers' dicts in subs (PyTorch's
 * "_schedulers" list), in order. LambdaLR/MultiplicativeLR store no function, as PyTorch. */
typedef struct nb_sched_dict {
    char type[NB_VALUE_NAME_MAX];
    int nvalues;
    nb_value *values;
    int nsubs;
    struct nb_sched_dict *subs;
} nb_sched_dict;

/* A deep copy of the schedule's state (free with nb_sched_dict_free): owned by the caller,
 * sharing nothing with s. */
nb_sched_dict *nb_sched_state_dict(const nb_sched *s);
/* Restore a saved state into a schedule built with the same constructor; checks the type,
 * group count, every value's kind and range; on error nothing changes. sd is read during the
 * call (the caller still owns it). */
int nb_sched_load_state_dict(nb_sched *s, const nb_sched_dict *sd);
/* Free a state dict (NULL is a no-op). */
void nb_sched_dict_free(nb_sched_dict *sd);

/* ---- schedules ----------------------------------------------------------------------------- */
/* StepLR(step_size, gamma=0.1): lr *= gamma every step_size epochs. */
nb_sched *nb_step_lr(nb_optim *o, int64_t step_size, double gamma);
/* MultiStepLR(milestones, gamma=0.1): lr *= gamma at each milestone (a repeated milestone
 * multiplies by gamma once per repetition). Milestones must be non-decreasing. */
nb_sched *nb_multistep_lr(nb_optim *o, const int64_t *milestones, int n, double gamma);
/* ConstantLR(factor=1/3, total_iters=5): lr * factor until epoch total_iters. */
nb_sched *nb_constant_lr(nb_optim *o, double factor, int64_t total_iters);
/* LinearLR(start_factor=1/3, end_factor=1.0, total_iters=5): factor goes linearly from
 * start_factor to end_factor over total_iters epochs. */
nb_sched *nb_linear_lr(nb_optim *o, double start_factor, double end_factor, int64_t total_iters);
/* ExponentialLR(gamma): lr *= gamma every epoch. */
nb_sched *nb_exponential_lr(nb_optim *o, double gamma);
/* PolynomialLR(total_iters=5, power=1.0): base_lr * (1 - e/total_iters)^power. */
nb_sched *nb_polynomial_lr(nb_optim *o, int64_t total_iters, double power);
/* CosineAnnealingLR(T_max, eta_min=0): half a cosine from base_lr to eta_min over T_max
 * epochs (and back up, periodically, past T_max, as PyTorch's recursive form does). */
nb_sched *nb_cosine_annealing_lr(nb_optim *o, int64_t T_max, double eta_min);
/* CosineAnnealingWarmRestarts(T_0, T_mult=1, eta_min=0): SGDR; restarts after T_0 epochs,
 * then T_0*T_mult, ... nb_sched_step_epoch takes fractional epochs. */
nb_sched *nb_cosine_annealing_warm_restarts(nb_optim *o, int64_t T_0, int64_t T_mult, double eta_min);

/* lr_lambda(epoch) for group g; user is the pointer given to the constructor. */
typedef double (*nb_lr_lambda)(int64_t epoch, int group, void *user);
/* LambdaLR(lr_lambda): lr = base_lr * fn(epoch, g). One function serves every group (it gets
 * the group index, like PyTorch's list of lambdas). fn and user must outlive the schedule. */
nb_sched *nb_lambda_lr(nb_optim *o, nb_lr_lambda fn, void *user);
/* MultiplicativeLR(lr_lambda): lr *= fn(epoch, g) for epoch > 0. */
nb_sched *nb_multiplicative_lr(nb_optim *o, nb_lr_lambda fn, void *user);

/* OneCycleLR: per-batch 1cycle policy. Lists (max_lrs, ...) give one value per group and
 * override the scalar; NULL/0 uses the scalar for every group. */
typedef struct nb_onecycle_opts {
    double max_lr;                 /* required (NAN: unset) */
    const double *max_lrs;         /* or one per group */
    int n_max_lrs;
    int64_t total_steps;           /* NB_SCHED_NONE: epochs * steps_per_epoch */
    int64_t epochs;                /* NB_SCHED_NONE */
    int64_t steps_per_epoch;       /* NB_SCHED_NONE */
    double pct_start;              /* 0.3 */
    const char *anneal_strategy;   /* "cos" | "linear" */
    bool cycle_momentum;           /* true: SGD's momentum, or Adam's betas[0] */
    double base_momentum;          /* 0.85 */
    const double *base_momentums;
    int n_base_momentums;
    double max_momentum;           /* 0.95 */
    const double *max_momentums;
    int n_max_momentums;
    double div_factor;             /* 25: initial_lr = max_lr / div_factor */
    double final_div_factor;       /* 1e4: min_lr = initial_lr / final_div_factor */
    bool three_phase;              /* false */
    int64_t last_epoch;            /* -1; else resume at that batch (groups must hold the
                                      initial_lr/max_lr/min_lr/... of the earlier run) */
} nb_onecycle_opts;
/* PyTorch's defaults (as above); max_lr unset (NAN) must be given. */
nb_onecycle_opts nb_onecycle_defaults(void);
/* torch.optim.lr_scheduler.OneCycleLR; stepping past total_steps fails as PyTorch does. */
nb_sched *nb_onecycle_lr(nb_optim *o, const nb_onecycle_opts *opts);

/* CyclicLR's custom scale function of the cycle number or of the iteration. */
typedef double (*nb_scale_fn)(double x, void *user);
typedef struct nb_cyclic_opts {
    double base_lr;                /* required (NAN: unset) */
    const double *base_lrs;
    int n_base_lrs;
    double max_lr;                 /* required (NAN: unset) */
    const double *max_lrs;
    int n_max_lrs;
    double step_size_up;           /* 2000 */
    double step_size_down;         /* NAN: = step_size_up */
    const char *mode;              /* "triangular" | "triangular2" | "exp_range" */
    double gamma;                  /* 1.0 (exp_range) */
    nb_scale_fn scale_fn;          /* NULL; when set, mode is ignored */
    void *scale_user;
    const char *scale_mode;        /* "cycle" | "iterations" (with scale_fn) */
    bool cycle_momentum;           /* true: SGD's momentum, or Adam's betas[0] (PyTorch 2.x) */
    double base_momentum;          /* 0.8 */
    const double *base_momentums;
    int n_base_momentums;
    double max_momentum;           /* 0.9 */
    const double *max_momentums;
    int n_max_momentums;
    int64_t last_epoch;            /* -1 */
} nb_cyclic_opts;
/* PyTorch's defaults (as above); base_lr and max_lr unset (NAN) must be given. */
nb_cyclic_opts nb_cyclic_defaults(void);
/* torch.optim.lr_scheduler.CyclicLR (per batch). */
nb_sched *nb_cyclic_lr(nb_optim *o, const nb_cyclic_opts *opts);

typedef struct nb_plateau_opts {
    const char *mode;              /* "min" | "max" */
    double factor;                 /* 0.1 */
    int64_t patience;              /* 10 */
    double threshold;              /* 1e-4 */
    const char *threshold_mode;    /* "rel" | "abs" */
    int64_t cooldown;              /* 0 */
    double min_lr;                 /* 0 */
    const double *min_lrs;         /* or one per group */
    int n_min_lrs;
    double eps;                    /* 1e-8 */
} nb_plateau_opts;
/* PyTorch's defaults (as above). */
nb_plateau_opts nb_plateau_defaults(void);
/* torch.optim.lr_scheduler.ReduceLROnPlateau: step with nb_sched_step_metric(s, val_loss).
 * No initial step and no initial_lr, as PyTorch. */
nb_sched *nb_reduce_lr_on_plateau(nb_optim *o, const nb_plateau_opts *opts);

/* SequentialLR(schedulers, milestones): scheds[i] runs from milestones[i-1] on (nm = n - 1,
 * non-decreasing). Takes ownership of the n schedulers, even when it fails (a NULL entry -
 * a constructor that failed - makes it fail with that constructor's error). */
nb_sched *nb_sequential_lr(nb_optim *o, nb_sched *const *scheds, int n, const int64_t *milestones,
                           int nm);
/* ChainedScheduler(schedulers): every step steps each in order. Takes ownership, as above. */
nb_sched *nb_chained_scheduler(nb_sched *const *scheds, int n);

/* ---- stochastic weight averaging (torch.optim.swa_utils) ---------------------------------- */
typedef struct nb_swalr_opts {
    double swa_lr;                 /* required (NAN: unset) */
    const double *swa_lrs;         /* or one per group */
    int n_swa_lrs;
    int64_t anneal_epochs;         /* 10 */
    const char *anneal_strategy;   /* "cos" | "linear" */
} nb_swalr_opts;
/* PyTorch's defaults (as above); swa_lr unset (NAN) must be given. */
nb_swalr_opts nb_swalr_defaults(void);
/* SWALR: anneals each group's lr to swa_lr over anneal_epochs epochs, then holds it. */
nb_sched *nb_swalr(nb_optim *o, const nb_swalr_opts *opts);

/* An averaged copy of a list of tensors (AveragedModel over model parameters, or parameters
 * and buffers for use_buffers=True). The copy starts as a clone of the tensors; the first
 * update copies, later ones average. */
typedef enum nb_avg_kind {
    NB_AVG_SWA,    /* equal-weight mean: avg += (p - avg) / (n_averaged + 1) */
    NB_AVG_EMA,    /* get_ema_multi_avg_fn(decay): avg = lerp(avg, p, 1 - decay) */
    NB_AVG_CUSTOM, /* fn(avg, p, numel, n_averaged, user) updates avg in place */
} nb_avg_kind;
typedef void (*nb_avg_fn)(float *avg, const float *p, int64_t numel, int64_t n_averaged, void *user);
typedef struct nb_averaged_opts {
    nb_avg_kind kind; /* NB_AVG_SWA */
    double decay;     /* EMA: 0.999 */
    nb_avg_fn fn;     /* CUSTOM */
    void *user;
} nb_averaged_opts;
/* SWA, equal weights (AveragedModel's default). */
nb_averaged_opts nb_averaged_defaults(void);

typedef struct nb_averaged nb_averaged;
/* Clone n float32 tensors (parameters) into an averaged copy, which owns its clones; params
 * and opts are read during the call (opts->fn and opts->user are kept: they must outlive it).
 * Free with nb_averaged_free. */
nb_averaged *nb_averaged_new(nb_tensor *const *params, int n, const nb_averaged_opts *opts);
/* update_parameters(model): fold the current values of the same n tensors in. */
int nb_averaged_update(nb_averaged *a, nb_tensor *const *params, int n);
/* n_averaged: how many updates so far. */
int64_t nb_averaged_count(const nb_averaged *a);
/* Set n_averaged (nb_averaged_load_state_dict restores the whole state at once). */
int nb_averaged_set_count(nb_averaged *a, int64_t n_averaged);
/* Number of averaged tensors (0 for NULL). */
int nb_averaged_num(const nb_averaged *a);
/* The i-th averaged tensor (owned by a; read it, or write it to restore a checkpoint). */
nb_tensor *nb_averaged_tensor(const nb_averaged *a, int i);
/* Exchange the contents of the averaged copy and the tensors: call once to evaluate with the
 * averaged weights, and again to go back. */
int nb_averaged_swap(nb_averaged *a, nb_tensor *const *params, int n);
/* Copy the averaged values into the tensors (at the end of training). */
int nb_averaged_copy_to(const nb_averaged *a, nb_tensor *const *params, int n);
/* Free the averaged copy (not the caller's tensors). NULL is a no-op. */
void nb_averaged_free(nb_averaged *a);

/* state_dict of the averaged copy (AveragedModel's averaged tensors and n_averaged). The
 * averaging function is not state (PyTorch saves no avg_fn); its kind and EMA decay are
 * recorded so that a load can check them. */
typedef struct nb_averaged_dict {
    nb_avg_kind kind;
    double decay;        /* EMA's decay; NAN for SWA and custom */
    int64_t n_averaged;
    int n;
    nb_tensor **tensors; /* n float32 deep copies, owned by the dict */
} nb_averaged_dict;
/* A deep copy of the state (free with nb_averaged_dict_free), owned by the caller. */
nb_averaged_dict *nb_averaged_state_dict(const nb_averaged *a);
/* Restore a saved state into an averaged copy of the same kind (and EMA decay) over as many
 * tensors of the same shapes; n_averaged >= 0. On any error nothing changes. */
int nb_averaged_load_state_dict(nb_averaged *a, const nb_averaged_dict *sd);
/* Free a state dict and its tensors (NULL is a no-op). */
void nb_averaged_dict_free(nb_averaged_dict *sd);

#ifdef __cplusplus
}
#endif
#endif
