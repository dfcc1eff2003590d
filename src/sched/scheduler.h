/* scheduler.h - the contract between the scheduler base (scheduler.c) and a schedule file.
 *
 * A schedule embeds nb_sched as its first member and gives get_lr (PyTorch's chainable form),
 * optionally a closed form (used by step(epoch)), and a table of its fields, from which the
 * base builds and loads the state_dict. The base owns everything generic: initial_lr and
 * base_lrs, the step (last_epoch, _step_count), writing lr/momentum into the groups, and the
 * rollback that makes a failed step change nothing. A step never allocates.
 *
 * A minimal schedule file (see step_lr.c):
 *   static int my_get(nb_sched *s, double *lrs) { ...lrs[g] from nb__sched_group_lr(s, g)... }
 *   static const nb_sched_field my_fields[] = {{"gamma", NB_VALUE_NUMBER, offsetof(my, gamma)}};
 *   static const nb_sched_algo my_algo = {.name = "MyLR", .size = sizeof(my), .get_lr = my_get,
 *                                         .fields = my_fields, .nfields = 1};
 *   constructor: validate; k = nb__sched_alloc(&my_algo, o); set fields; return nb__sched_start(&k->base, -1);
 */
#ifndef NABLA_SCHED_INTERNAL_H
#define NABLA_SCHED_INTERNAL_H

#include <stddef.h>
#include "../core/internal.h"
#include "../optim/access.h"
#include "nabla/sched.h"

/* A field of a schedule saved in its state_dict, at an offset in the schedule's struct:
 * NB_VALUE_NUMBER double, NB_VALUE_INT int64_t, NB_VALUE_BOOL bool, NB_VALUE_STRING
 * char[NB_VALUE_NAME_MAX], NB_VALUE_LIST double * with one element per param group. */
typedef struct nb_sched_field {
    const char *name;
    nb_value_kind kind;
    size_t offset;
} nb_sched_field;

/* Which group value get_lr's momentum (s->moms) goes to. */
typedef enum nb_sched_mom {
    NB_SCHED_MOM_NONE = 0,
    NB_SCHED_MOM_MOMENTUM, /* group["momentum"] (SGD, RMSprop) */
    NB_SCHED_MOM_BETA1,    /* group["betas"][0] (Adam family) */
} nb_sched_mom;

typedef struct nb_sched_algo {
    const char *name;
    size_t size; /* sizeof the schedule's struct */
    /* Fill lrs[ngroups] for s->last_epoch (already advanced) from the groups' current lrs;
     * schedules that cycle momentum also fill s->moms[ngroups]. Must not change s on error. */
    int (*get_lr)(nb_sched *s, double *lrs);
    /* Optional: lrs at s->last_epoch from base_lrs alone (PyTorch's _get_closed_form_lr). */
    int (*closed_form)(nb_sched *s, double *lrs);
    /* Optional: replaces the base step (epoch is NAN for a plain step()). The base has taken a
     * snapshot (nb__sched_save) and undoes the schedule on failure. */
    int (*step)(nb_sched *s, double epoch);
    /* Optional: step(metrics) (ReduceLROnPlateau). */
    int (*step_metric)(nb_sched *s, double metric);
    const nb_sched_field *fields;
    int nfields;
    /* Optional: extra state beyond fields (variable lists, sub-schedulers). */
    int (*save)(const nb_sched *s, nb_sched_dict *sd);
    /* Optional: check (commit false) or apply (commit true) that extra state. With commit true
     * it is called only after every check passed, and may fail only on out-of-memory. */
    int (*load)(nb_sched *s, const nb_sched_dict *sd, bool commit);
    /* Optional: check a candidate's field values after a load (the candidate is a copy of the
     * schedule with the loaded fields written in). */
    int (*check)(const nb_sched *candidate);
    /* Optional: the sub-schedulers of a container (SequentialLR, ChainedScheduler). */
    nb_sched **(*subs)(const nb_sched *s, int *n);
    /* Optional: undo what the last step did to other schedules (containers: the sub-schedulers
     * they stepped, newest first). Called by nb__sched_undo before it restores the snapshot. */
    void (*undo)(nb_sched *s);
    void (*free)(nb_sched *s);
    bool fractional_epoch; /* step(epoch) accepts non-integers (CosineAnnealingWarmRestarts) */
    bool no_epoch;         /* step(epoch) is not accepted at all (containers) */
    /* By name (nb_sched_new): PyTorch's keyword arguments with their defaults, the first
     * nrequired required (None here), and the constructor given them all, in that order. NULL
     * for schedules built from functions or other schedules (LambdaLR, SequentialLR, ...). */
    const nb_value *kwargs;
    int nkwargs, nrequired;
    nb_sched *(*build)(nb_optim *o, const nb_value *kw);
} nb_sched_algo;

struct nb_sched {
    const nb_sched_algo *algo;
    nb_optim *opt;       /* borrowed: checked through opt_life before every use */
    nb_life *opt_life;   /* the optimizer's lifetime token (a reference) */
    int ngroups;
    double *base_lrs;
    double *last_lr;
    int64_t last_epoch;
    int64_t step_count;
    nb_sched_mom mom;    /* set by schedules that write momentum */
    double *lrs, *moms;  /* scratch for one step: new lrs and momenta (NAN: leave as is) */
    void *snap;          /* snapshot of the struct (algo->size bytes) ... */
    double *snap_vals;   /* ... base_lrs, last_lr, and the groups' lr and momentum */
    nb_optim_dict *backup; /* the optimizer before construction (restored if it fails) */
    int nstepped;          /* containers: what the last step stepped (0 before each step) */
};

/* SequentialLR and ChainedScheduler: a schedule that owns sub-schedulers. */
typedef struct nb_sched_container {
    nb_sched base;
    nb_sched **subs;
    int nsubs;
} nb_sched_container;

/* The optimizer's lifetime token (src/optim/optimizer.c). */
nb_life *nb__optim_life(const nb_optim *o);
/* Refused once the optimizer a schedule drives was freed (never a write into freed memory). */
int nb__sched_check_opt(const nb_sched *s);

/* Allocate a schedule of algo->size bytes bound to o (no step taken). */
nb_sched *nb__sched_alloc(const nb_sched_algo *algo, nb_optim *o);
/* Keep a copy of the optimizer so a failing constructor can restore it (call before changing
 * the groups; nb__sched_start calls it if needed). */
int nb__sched_backup(nb_sched *s);
/* Restore the optimizer from the backup and free s (constructor failure path). Returns NULL. */
nb_sched *nb__sched_fail(nb_sched *s);
/* PyTorch's _LRScheduler.__init__: last_epoch -1 sets initial_lr where absent (else every group
 * must have it), base_lrs = initial_lr, then the initial step. Frees s, restores the optimizer
 * and returns NULL on failure. */
nb_sched *nb__sched_start(nb_sched *s, int64_t last_epoch);
/* _initial_step(): _step_count = 0, then step(). */
int nb__sched_initial_step(nb_sched *s);
/* Write lrs (and s->moms when s->mom is set) into the groups, unchecked as PyTorch's
 * group['lr'] = lr (nb__optim_write), then last_lr. It fails only on a group without momentum
 * or betas; some groups may be written by then: the step's caller undoes them (nb__sched_undo). */
int nb__sched_apply(nb_sched *s, const double *lrs);
/* Snapshot the schedule (struct, base_lrs, last_lr, the groups' lr and momentum); undo: call
 * algo->undo, then put all of it back. Every step is wrapped in these by the base. */
void nb__sched_save(nb_sched *s);
void nb__sched_undo(nb_sched *s);
/* Current lr of group g, and the current momentum (per s->mom). */
double nb__sched_group_lr(const nb_sched *s, int g);
double nb__sched_group_mom(const nb_sched *s, int g);
/* Per-group values: list (n == ngroups) or the scalar; PyTorch's message otherwise:
 * "expected {ngroups} values for {name}, got {n}". */
int nb__sched_per_group(const nb_sched *s, const char *name, double scalar, const double *list,
                        int n, double *out);
/* True if every group of o has a value of that name. */
bool nb__sched_groups_have(const nb_optim *o, const char *name, int *missing);

/* Python's // and % on integers (floor division, result of % has the divisor's sign). */
static inline int64_t nb__floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
static inline int64_t nb__floormod(int64_t a, int64_t b) {
    int64_t r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
/* The momentum target of a schedule that cycles momentum (or not). */
static inline nb_sched_mom nb__sched_mom_kind(bool cycle, bool beta1) {
    return !cycle ? NB_SCHED_MOM_NONE : beta1 ? NB_SCHED_MOM_BETA1 : NB_SCHED_MOM_MOMENTUM;
}
/* A schedule that cycles beta1 (use_beta1) or momentum, checked against its optimizer, as a
 * loaded state may come from a schedule built on another optimizer. */
int nb__sched_check_beta1(const nb_sched *s, const char *who, bool use_beta1);
/* A heap array of one double per group (a NB_VALUE_LIST field), freed by nb_sched_free. */
double *nb__sched_group_array(const nb_sched *s);
/* Copy a C string option into a fixed field, or fail with PyTorch's message for an unknown
 * choice (msg is printf'd with the string; NULL prints as None). */
int nb__sched_choice(char *dst, const char *v, const char *const *choices, const char *msg);

/* ---- keyword arguments (by-name construction) --------------------------------------------- */
/* kw[i] as an integer / a number / a string (NULL for None) / true-false, with a message naming
 * the schedule and the argument when it is not one. */
int nb__kw_int(const nb_sched_algo *a, const nb_value *kw, int64_t *out);
int nb__kw_num(const nb_sched_algo *a, const nb_value *kw, double *out);
const char *nb__kw_str(const nb_value *kw);
/* A number or a list of one number per group (max_lr=[0.1, 0.01]): *scalar, or *list and *n. */
int nb__kw_per_group(const nb_sched_algo *a, const nb_value *kw, double *scalar, const double **list, int *n);
/* The registry (registry.c): the schedule called name (exact, then case-insensitive). */
const nb_sched_algo *nb__sched_algo(const char *name);
extern const nb_sched_algo nb__step_lr_algo, nb__multistep_algo, nb__constant_algo, nb__linear_algo,
    nb__exponential_algo, nb__polynomial_algo, nb__cosine_algo, nb__wr_algo, nb__lambda_algo,
    nb__multiplicative_algo, nb__onecycle_algo, nb__cyclic_algo, nb__plateau_algo, nb__sequential_algo,
    nb__chained_algo, nb__swalr_algo;

/* ---- state dict helpers ------------------------------------------------------------------ */
/* Append a value to a state dict (deep copy). */
int nb__sd_add(nb_sched_dict *sd, const nb_value *v);
/* A LIST value with n elements. */
int nb__sd_add_list(nb_sched_dict *sd, const char *name, const double *v, int n);
/* Find a value in a state dict (NULL if absent). */
const nb_value *nb__sd_find(const nb_sched_dict *sd, const char *name);
/* Find a value of a kind (INT accepts integral numbers; LIST with len elements unless
 * len < 0); sets PyTorch-style error and returns NB_EFORMAT if missing or wrong. */
int nb__sd_want(const nb_sched_dict *sd, const char *name, nb_value_kind kind, int len,
                const nb_value **out);
/* Append a copy of a sub-scheduler's dict (containers). */
int nb__sd_add_sub(nb_sched_dict *sd, nb_sched_dict *sub);
/* Containers: allocate one owning copies of scheds (all non-NULL, none a ReduceLROnPlateau,
 * which are checked here) bound to o. On failure frees every sched and returns NULL. */
nb_sched_container *nb__container_new(const nb_sched_algo *algo, nb_optim *o, nb_sched *const *scheds, int n);
/* algo hooks shared by containers: subs, free, save and load of the sub-schedulers' dicts. */
nb_sched **nb__container_subs(const nb_sched *s, int *n);
void nb__container_free(nb_sched *s);
int nb__container_save(const nb_sched *s, nb_sched_dict *sd);
int nb__container_load(nb_sched *s, const nb_sched_dict *sd, bool commit);
/* Internal load, for containers: check (commit false) or apply (commit true). */
int nb__sched_load(nb_sched *s, const nb_sched_dict *sd, bool commit);

#endif
