/* kernels.h - the raw float loops: no autograd, no allocation, no error reporting.
 * Everything hot in nabla ends up here. Row-major throughout. */
#ifndef NABLA_KERNELS_H
#define NABLA_KERNELS_H

#include <stdbool.h>
#include <stdint.h>
#include "nabla/tensor.h" /* nb_dtype */

/* ---- matrix products: one dispatch point, the element type a parameter ---------------------
 * C[M,N] = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T (BLAS sgemm, row-major).
 * beta == 0 means C is write-only (its old content, even NaN, is ignored). C is float32.
 *
 * ct is the type the products are formed in:
 *   NB_FLOAT32  float32 operands, float32 products and sums (sgemm);
 *   NB_BF16     the operands rounded to bfloat16 (as PyTorch rounds, kernels/bf16.h; bfloat16
 *               operands as they are), each product exact, the sums in float32: what PyTorch's
 *               CPU autocast does in a matmul, and what AVX512_BF16 and AMX compute natively.
 * The kernel is chosen by ct, the shape and the CPU, never by the thread count; products are
 * split across nabla's pool by rows or columns of C, so splitting never changes a bit (with
 * nabla's own kernels). */
typedef struct nb_k_operand {
    const void *p; /* row-major elements of type dt */
    nb_dtype dt;   /* NB_FLOAT32 or NB_BF16 (then ct must be NB_BF16) */
    int64_t ld;    /* row stride, in elements */
} nb_k_operand;

static inline nb_k_operand nb_k_f32_operand(const float *p, int64_t ld) {
    return (nb_k_operand){p, NB_FLOAT32, ld};
}
/* The elements of tensor t (float32 or bfloat16) from element `at` on, rows ld apart. */
static inline nb_k_operand nb_k_tensor_operand(const nb_tensor *t, int64_t at, int64_t ld) {
    return (nb_k_operand){(const char *)t->data + (size_t)at * nb_dtype_size(t->dtype), t->dtype, ld};
}

void nb_k_gemm_ex(nb_dtype ct, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, nb_k_operand A, nb_k_operand B, float beta, float *C, int64_t ldc);
/* nb_k_gemm_ex on float32 operands, products in type ct. */
void nb_k_gemm_as(nb_dtype ct, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                  float *C, int64_t ldc);
/* The float32 product (sgemm): nb_k_gemm_as(NB_FLOAT32, ...). */
void nb_k_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
               int64_t ldc);
/* The bfloat16 kernel nb_k_gemm_ex uses on this CPU: "amx" (Intel AMX tiles), "avx512bf16"
 * (vdpbf16ps) or "emulated" (float32 arithmetic on the rounded operands: the same products and
 * sums, slower). The first one the CPU (and, for AMX, the OS) supports, unless the environment
 * variable NABLA_BF16_KERNEL names another that it supports. */
const char *nb_k_bf16_kernel(void);
/* Tests: use kernel `name` from now on (NULL: back to the automatic choice). Returns false,
 * changing nothing, if this CPU cannot run it. Not thread-safe against running products. */
bool nb__k_bf16_force(const char *name);

/* y = beta*y + x (beta 0: y = x). */
void nb_k_acc(float *y, const float *x, int64_t n, float beta);
/* y = beta*y + a*b elementwise (beta 0: y = a*b). */
void nb_k_mul_acc(float *y, const float *a, const float *b, int64_t n, float beta);
/* y = beta*y + x[0] + x[ld] + ... + x[(rows - 1) ld] over n elements, added in that order
 * (beta 0: y is write-only). */
void nb_k_add_rows(float *y, const float *x, int64_t ld, int64_t rows, int64_t n, float beta);
/* out[i, j] = bias[j] for an [rows, cols] matrix. */
void nb_k_bcast_rows(float *out, const float *bias, int64_t rows, int64_t cols);
/* out[j] = beta*out[j] + sum_i x[i, j] over an [rows, cols] matrix. */
void nb_k_sum_rows(float *out, const float *x, int64_t rows, int64_t cols, float beta);

#endif
