/* softmax.h - softmax loops over a [outer, C, inner] layout (the dim of size C in the middle;
 * inner == 1 is the common contiguous-rows case). */
#ifndef NABLA_K_SOFTMAX_H
#define NABLA_K_SOFTMAX_H
#include <stdint.h>

/* p[i,:] = softmax(x[i,:]) over contiguous rows; lse[i] = logsumexp(x[i,:]) (in double, so
 * x - lse keeps the digits of large logits) if lse != NULL. */
void nb_k_softmax_rows(float *p, double *lse, const float *x, int64_t rows, int64_t cols);
/* y = softmax or log_softmax of x along the middle dim. */
void nb_k_softmax(float *y, const float *x, int64_t outer, int64_t C, int64_t inner, int log);
/* Backward: softmax gx = y (gy - sum gy y); log_softmax gx = gy - exp(y) sum gy.
 * gx = beta*gx + that. */
void nb_k_softmax_backward(float *gx, const float *gy, const float *y, int64_t outer, int64_t C,
                           int64_t inner, int log, float beta);

#endif
