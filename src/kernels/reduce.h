/* reduce.h - reductions over all elements or over the middle dim of an [outer, C, inner]
 * layout (inner == 1: contiguous rows), and their broadcasting backward. */
#ifndef NABLA_K_REDUCE_H
#define NABLA_K_REDUCE_H
#include <stdbool.h>
#include <stdint.h>

/* Sum of n floats: vectorisable float lanes per block of 4096, blocks added in double. */
double nb_k_sum(const float *x, int64_t n);
/* y[o, i] = sum_c x[o, c, i] / div (div 1 for a sum, C for a mean). */
void nb_k_sum_dim(float *y, const float *x, int64_t outer, int64_t C, int64_t inner, float div);
/* gx[o, c, i] = beta*gx[o, c, i] + gy[o, i] / div (the backward of nb_k_sum_dim). */
void nb_k_expand_dim(float *gx, const float *gy, int64_t outer, int64_t C, int64_t inner,
                     float div, float beta);
/* Max along the middle dim (C > 0): value (val may be NULL) and index of the first maximum;
 * a NaN is the maximum (the first NaN), as PyTorch. */
void nb_k_max_dim(float *val, int32_t *idx, const float *x, int64_t outer, int64_t C,
                  int64_t inner);
/* No element of x is infinite or NaN. */
bool nb_k_all_finite(const float *x, int64_t n);
/* Max of n > 0 floats (NaN if any is NaN). */
float nb_k_max(const float *x, int64_t n);
/* Backward of nb_k_max: gx = beta*gx + (x == m ? gy / count : 0), count = number of such x
 * (NaN matches a NaN maximum), as PyTorch's evenly_distribute_backward. */
void nb_k_max_backward(float *gx, const float *x, int64_t n, float m, float gy, float beta);
/* Backward of nb_k_max_dim: gx[o, idx[o, i], i] += gy[o, i] (gx already holds its old value). */
void nb_k_max_dim_backward(float *gx, const float *gy, const int32_t *idx, int64_t outer,
                           int64_t C, int64_t inner);

#endif
