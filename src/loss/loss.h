/* loss.h - the loss layer's internal header: what the loss files share. Losses build on the
 * ops layer (and so autograd, kernels and core); nothing of nn, optim or above. */
#ifndef NABLA_LOSS_INTERNAL_H
#define NABLA_LOSS_INTERNAL_H
#include "../ops/ops_internal.h"
#include "nabla/loss.h"

/* Check input [N, C] float32, target int32 [N] with classes in [0, C) or ignore_index (or,
 * with allow_soft, float32 probabilities of the input's shape), weight [C], label_smoothing
 * in [0, 1] and the reduction. Sets the error (naming op) and returns it, or NB_OK. */
int nb__check_class_target(const char *op, const nb_tensor *x, const nb_tensor *target,
                           const nb_cross_entropy_opts *o, bool allow_soft);

#endif
