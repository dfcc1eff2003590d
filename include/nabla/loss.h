/* nabla/loss.h - loss functions with PyTorch's arguments, defaults and numbers. */
#ifndef NABLA_LOSS_H
#define NABLA_LOSS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nb_reduction {
    NB_REDUCTION_MEAN = 0, /* PyTorch's default */
    NB_REDUCTION_SUM = 1,
    NB_REDUCTION_NONE = 2,
} nb_reduction;

typedef struct nb_cross_entropy_opts {
    nb_reduction reduction;  /* default mean */
    int32_t ignore_index;    /* default -100 */
    double label_smoothing;  /* default 0.0, in [0, 1] */
    const nb_tensor *weight; /* per-class weights [C], or NULL (default) */
} nb_cross_entropy_opts;

/* PyTorch's defaults: mean, ignore_index -100, label_smoothing 0, no weight. */
nb_cross_entropy_opts nb_cross_entropy_defaults(void);

/* F.cross_entropy(logits [N,C], target int32 [N]) fused with log_softmax. opts NULL: defaults.
 * Class index out of [0, C) (other than ignore_index) is an error. */
nb_tensor *nb_cross_entropy(nb_arena *ar, nb_tensor *logits, const nb_tensor *target,
                            const nb_cross_entropy_opts *opts);
/* F.nll_loss(logp [N,C], target int32 [N]); uses reduction, ignore_index and weight of opts. */
nb_tensor *nb_nll_loss(nb_arena *ar, nb_tensor *logp, const nb_tensor *target,
                       const nb_cross_entropy_opts *opts);
/* F.mse_loss(input, target) (same shapes). */
nb_tensor *nb_mse_loss(nb_arena *ar, nb_tensor *input, nb_tensor *target, nb_reduction red);

#ifdef __cplusplus
}
#endif
#endif
