/* nabla/sched.h - torch.optim.lr_scheduler in C.
 *
 * A scheduler sees only its optimizer's param groups: it writes "lr" (and for some schedules
 * "momentum" or "betas") into them. As in PyTorch, construction sets "initial_lr" in every
 * group and takes the first step (last_epoch -1 -> 0), and each schedule uses PyTorch's
 * recursive ("chainable") form where PyTorch does, so lr sequences match to float rounding.
 *
 *   nb_sched *s = nb_step_lr(opt, 30, 0.1);
 *   for (epoch...) { train...; nb_sched_step(s); }
 */
#ifndef NABLA_SCHED_H
#define NABLA_SCHED_H

#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_sched nb_sched;

/* Advance one epoch (or one batch for per-batch schedules) and write the new lrs. */
int nb_sched_step(nb_sched *s);
/* PyTorch's step(epoch): jump to an epoch (closed form where PyTorch has one; fractional
 * epochs for CosineAnnealingWarmRestarts). */
int nb_sched_step_epoch(nb_sched *s, double epoch);
/* The lr each group got at the last step (get_last_lr()[g]); NAN if g is out of range. */
double nb_sched_last_lr(const nb_sched *s, int g);
int nb_sched_num_groups(const nb_sched *s);
/* last_epoch as PyTorch counts it (0 right after construction). */
int64_t nb_sched_last_epoch(const nb_sched *s);
/* Name of the schedule ("StepLR"). */
const char *nb_sched_type(const nb_sched *s);
/* The optimizer it drives. */
nb_optim *nb_sched_optimizer(const nb_sched *s);
void nb_sched_free(nb_sched *s);

/* state_dict: PyTorch's fields (base_lrs, last_epoch, _step_count, _last_lr and the
 * schedule's own arguments) as named values. */
typedef struct nb_sched_dict {
    char type[NB_VALUE_NAME_MAX];
    int nvalues;
    nb_value *values;
} nb_sched_dict;

nb_sched_dict *nb_sched_state_dict(const nb_sched *s);
/* Restore a saved state; checks the type and group count; on error nothing changes. */
int nb_sched_load_state_dict(nb_sched *s, const nb_sched_dict *sd);
void nb_sched_dict_free(nb_sched_dict *sd);

/* ---- schedules --------------------------------------------------------------------------- */
/* StepLR(step_size, gamma=0.1): lr *= gamma every step_size epochs. */
nb_sched *nb_step_lr(nb_optim *o, int64_t step_size, double gamma);

#ifdef __cplusplus
}
#endif
#endif
