/* norm.h - batch and layer normalisation loops. Batch norm sees x as [N, C, S] (S = product
 * of the spatial dims, 1 for [N, C]); statistics are per channel c. Layer norm sees x as
 * [R, M] rows normalised on their own. Sums are accumulated in double. */
#ifndef NABLA_K_NORM_H
#define NABLA_K_NORM_H
#include <stdint.h>

/* mean[c] and the biased variance var[c] of channel c over N*S values. */
void nb_k_channel_stats(double *mean, double *var, const float *x, int64_t N, int64_t C, int64_t S);
/* y[n, c, s] = x[n, c, s] * a[c] + b[c]. */
void nb_k_channel_affine(float *y, const float *x, const float *a, const float *b, int64_t N,
                         int64_t C, int64_t S);
/* sdy[c] = sum gy, sdyx[c] = sum gy * (x - mean[c]) over channel c. */
void nb_k_channel_grad_sums(double *sdy, double *sdyx, const float *gy, const float *x,
                            const float *mean, int64_t N, int64_t C, int64_t S);
/* Batch-norm input gradient, gx = beta*gx + ...:
 *   training: (gy - sdy/M - (x - mean) sdyx invstd^2 / M) invstd w   (M = N*S)
 *   eval:     gy invstd w                                            (sdy, sdyx unused)
 * w may be NULL (1). */
void nb_k_batch_norm_backward(float *gx, const float *gy, const float *x, const float *mean,
                              const float *invstd, const float *w, const double *sdy,
                              const double *sdyx, int64_t N, int64_t C, int64_t S, int training,
                              float beta);

/* Layer norm of each row: y = (x - mean) rstd * w + b (w, b [M] or NULL); saves mean, rstd. */
void nb_k_layer_norm(float *y, float *mean, float *rstd, const float *x, const float *w,
                     const float *b, int64_t R, int64_t M, double eps);
/* gx = beta*gx + rstd (g - mean(g) - xhat mean(g xhat)) with g = gy w, xhat = (x-mean) rstd. */
void nb_k_layer_norm_backward(float *gx, const float *gy, const float *x, const float *mean,
                              const float *rstd, const float *w, int64_t R, int64_t M, float beta);
/* gw = bw*gw + sum_rows gy xhat, gb = bb*gb + sum_rows gy (either may be NULL). */
void nb_k_layer_norm_backward_params(float *gw, float *gb, const float *gy, const float *x,
                                     const float *mean, const float *rstd, int64_t R, int64_t M,
                                     float bw, float bb);

#endif
