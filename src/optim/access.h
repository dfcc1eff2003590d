/* access.h - what the layers above (schedulers, checkpoints) may do to an optimizer beyond its
 * public API.
 *
 * A scheduler assigns group values as PyTorch's schedulers assign group['lr'] = lr: the value
 * goes in unchecked. A schedule may produce what a user's nb_optim_set refuses (OneCycleLR's
 * linear anneal extrapolated at its last step gives a negative lr), and PyTorch steps with it.
 * A backup taken to undo a failed operation is not a user's state_dict(): no hooks run. */
#ifndef NABLA_OPTIM_ACCESS_H
#define NABLA_OPTIM_ACCESS_H

#include "nabla/optim.h"

/* Group g's number `name` (elem < 0), or element elem of its list (betas[0]), set to v without
 * the optimizer's validation. Fails only when the group has no such number or element. */
int nb__optim_write(nb_optim *o, int g, const char *name, int elem, double v);

/* nb_optim_state_dict and nb_optim_load_state_dict without the hooks (backups and their
 * restoration). */
nb_optim_dict *nb__optim_snapshot(const nb_optim *o);
int nb__optim_restore(nb_optim *o, const nb_optim_dict *sd);

#endif
