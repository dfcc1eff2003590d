/* pointwise.h - the shared part of the elementwise losses (l1, smooth_l1, huber, bce,
 * bce_with_logits, kl_div). A loss file computes, in one loop over the elements, each loss
 * value l[i] and its derivatives dx[i] = dl/dinput and dt[i] = dl/dtarget (dt only when the
 * target requires grad). nb__ploss_finish reduces l and records a backward that scales dx
 * and dt by the upstream gradient: the math of each loss stays in its own file. */
#ifndef NABLA_LOSS_POINTWISE_H
#define NABLA_LOSS_POINTWISE_H
#include "loss.h"

typedef struct nb_ploss {
    float *l, *dx, *dt; /* numel each, in the arena; dt NULL when the target needs no grad */
    int64_t n;
} nb_ploss;

/* Check input/target (float32, same shape) and reduction (batchmean only if allowed), then
 * allocate the arrays. */
int nb__ploss_begin(nb_arena *ar, const char *op, const nb_tensor *input,
                    const nb_tensor *target, nb_reduction red, bool allow_batchmean, nb_ploss *p);
/* Reduce and record; returns the loss (a scalar, or input-shaped for none). */
nb_tensor *nb__ploss_finish(nb_arena *ar, const char *op, nb_tensor *input, nb_tensor *target,
                            nb_reduction red, const nb_ploss *p);
/* w broadcast to the shape of like, as an arena array (NULL + error if not broadcastable). */
float *nb__ploss_expand(nb_arena *ar, const char *op, const char *what, const nb_tensor *w,
                        const nb_tensor *like);

#endif
