/* kernels.h - the raw float loops: no autograd, no allocation, no error reporting.
 * Everything hot in nabla ends up here. Row-major throughout. */
#ifndef NABLA_KERNELS_H
#define NABLA_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* C[M,N] = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T (BLAS sgemm, row-major).
 * beta == 0 means C is write-only (its old content, even NaN, is ignored). */
void nb_k_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
               int64_t ldc);

/* y = beta*y + x (beta 0: y = x). */
void nb_k_acc(float *y, const float *x, int64_t n, float beta);
/* y = beta*y + a*b elementwise (beta 0: y = a*b). */
void nb_k_mul_acc(float *y, const float *a, const float *b, int64_t n, float beta);
/* out[i, j] = bias[j] for an [rows, cols] matrix. */
void nb_k_bcast_rows(float *out, const float *bias, int64_t rows, int64_t cols);
/* out[j] = beta*out[j] + sum_i x[i, j] over an [rows, cols] matrix. */
void nb_k_sum_rows(float *out, const float *x, int64_t rows, int64_t cols, float beta);

#endif
