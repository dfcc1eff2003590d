/* nabla/loss.h - loss functions with PyTorch's arguments, defaults and numbers.
 *
 * A loss is an op (tensor.h): its output lives in the arena it is given, until nb_arena_reset,
 * and it borrows its inputs (input, target and weights) until the backward through it is done
 * or the arena is reset. Options structs are read during the call. */
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
    NB_REDUCTION_BATCHMEAN = 3, /* kl_div only: sum / input.size(0) */
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

/* ---- elementwise losses: input and target of the same shape, float32; reduction mean
 * (over all elements), sum or none (the elementwise losses). Gradients flow to the input and,
 * when it requires grad, to the target, as in PyTorch. ---------------------------------- */
/* F.l1_loss: |input - target|. */
nb_tensor *nb_l1_loss(nb_arena *ar, nb_tensor *input, nb_tensor *target, nb_reduction red);
/* F.smooth_l1_loss(beta=1.0): |d| < beta ? 0.5 d^2 / beta : |d| - 0.5 beta (beta 0: l1). */
nb_tensor *nb_smooth_l1_loss(nb_arena *ar, nb_tensor *input, nb_tensor *target,
                             nb_reduction red, double beta);
/* F.huber_loss(delta=1.0): |d| < delta ? 0.5 d^2 : delta (|d| - 0.5 delta); delta > 0. */
nb_tensor *nb_huber_loss(nb_arena *ar, nb_tensor *input, nb_tensor *target, nb_reduction red,
                         double delta);
/* F.binary_cross_entropy(input in [0, 1], target, weight): -w (t log x + (1-t) log(1-x)),
 * each log clamped to >= -100. weight (NULL: none) broadcasts to the input's shape. */
nb_tensor *nb_binary_cross_entropy(nb_arena *ar, nb_tensor *input, nb_tensor *target,
                                   const nb_tensor *weight, nb_reduction red);
/* F.binary_cross_entropy_with_logits(input, target, weight, pos_weight): the numerically
 * stable -w (p t log s(x) + (1-t) log(1 - s(x))), p = pos_weight (broadcast over the last
 * dims, e.g. [C] for [N, C]); weight and pos_weight may be NULL. */
nb_tensor *nb_binary_cross_entropy_with_logits(nb_arena *ar, nb_tensor *input, nb_tensor *target,
                                               const nb_tensor *weight,
                                               const nb_tensor *pos_weight, nb_reduction red);
/* F.kl_div(input = log-probabilities, target, reduction, log_target): target (log t - input)
 * (0 where target is 0), or exp(t) (t - input) with log_target. Reduction may be
 * NB_REDUCTION_BATCHMEAN (sum / input.size(0), the mathematically correct KL); mean divides
 * by the element count, as PyTorch. */
nb_tensor *nb_kl_div(nb_arena *ar, nb_tensor *input, nb_tensor *target, nb_reduction red,
                     bool log_target);

#ifdef __cplusplus
}
#endif
#endif
