/* gemm_avx512.h - the AVX-512 GEMM kernels that nb_k_gemm uses on CPUs that have AVX-512
 * (gemm_avx512.c). Compiled on x86-64 with GCC (clang builds use OpenBLAS or the builtin
 * kernel); chosen at run time. */
#ifndef NABLA_K_GEMM_AVX512_H
#define NABLA_K_GEMM_AVX512_H
#include <stdbool.h>
#include <stdint.h>
#include "../core/internal.h" /* NB_NO_TARGET_CLONES (set under clang): no ISA-specific code */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(NB_NO_TARGET_CLONES)
#define NB_HAVE_GEMM512 1
/* True if this CPU (and OS) runs AVX-512. */
bool nb_k_gemm512_available(void);
/* nb_k_gemm's contract (C = alpha op(A) op(B) + beta C, row-major, beta 0 ignores C) on one
 * thread; only call it when nb_k_gemm512_available(). M, N, K > 0. */
void nb_k_gemm512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc);
/* y[j] = alpha dot(B[j, :K], a) + beta y[j], j < N (beta 0 ignores y); K > 0. */
void nb_k_gemv512(int64_t N, int64_t K, float alpha, const float *B, int64_t ldb, const float *a,
                  float beta, float *y);
#else
#define NB_HAVE_GEMM512 0
static inline bool nb_k_gemm512_available(void) { return false; }
#endif

#endif
