/* scheduler.h - the contract between the scheduler base (scheduler.c) and a schedule file.
 * A schedule embeds nb_sched as its first member, gives get_lr (PyTorch's chainable form) and
 * optionally a closed form, and lists its own fields so the base can save and load them. */
#ifndef NABLA_SCHED_INTERNAL_H
#define NABLA_SCHED_INTERNAL_H

#include <stddef.h>
#include "../core/internal.h"

/* A field of a schedule saved in its state_dict: a double or int64_t at an offset. */
typedef struct nb_sched_field {
    const char *name;
    nb_value_kind kind; /* NB_VALUE_NUMBER (double), NB_VALUE_INT (int64_t), NB_VALUE_BOOL (bool) */
    size_t offset;
} nb_sched_field;

typedef struct nb_sched_algo {
    const char *name;
    size_t size; /* sizeof the schedule's struct */
    /* Fill lrs[ngroups] for s->last_epoch (already advanced) from the groups' current lrs. */
    int (*get_lr)(nb_sched *s, double *lrs);
    /* Optional: lrs at s->last_epoch from base_lrs alone (used by step(epoch)). */
    int (*closed_form)(nb_sched *s, double *lrs);
    /* Optional: replaces the base step (ReduceLROnPlateau, CosineAnnealingWarmRestarts). epoch
     * is NAN for a plain step(). */
    int (*step)(nb_sched *s, double epoch);
    const nb_sched_field *fields;
    int nfields;
    /* Optional: extra state (lists, nested schedulers) beyond fields. */
    int (*save)(const nb_sched *s, nb_sched_dict *sd);
    int (*load)(nb_sched *s, const nb_sched_dict *sd);
    void (*free)(nb_sched *s);
} nb_sched_algo;

struct nb_sched {
    const nb_sched_algo *algo;
    nb_optim *opt;
    int ngroups;
    double *base_lrs;
    double *last_lr;
    int64_t last_epoch;
    int64_t step_count;
};

/* Allocate a schedule of algo->size bytes bound to o (no step taken). */
nb_sched *nb__sched_alloc(const nb_sched_algo *algo, nb_optim *o);
/* PyTorch's _LRScheduler.__init__ with last_epoch -1: setdefault initial_lr, base_lrs, then
 * the initial step. Frees s and returns NULL on failure. */
nb_sched *nb__sched_start(nb_sched *s);
/* Write lrs into the groups and last_lr. */
int nb__sched_apply(nb_sched *s, const double *lrs);
/* Current lr of group g. */
double nb__sched_group_lr(const nb_sched *s, int g);
/* Append a value to a state dict (copied). */
int nb__sd_add(nb_sched_dict *sd, const nb_value *v);
/* Find a value in a state dict (NULL if absent). */
const nb_value *nb__sd_find(const nb_sched_dict *sd, const char *name);
/* A LIST value with n elements (heap list if needed); NULL-safe on OOM (returns NB_ENOMEM). */
int nb__sd_add_list(nb_sched_dict *sd, const char *name, const double *v, int n);

#endif
