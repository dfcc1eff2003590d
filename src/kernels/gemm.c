/* gemm.c - matrix multiply, the one dispatch point of products (kernels.h): float32 products
 * run on nabla's AVX-512 kernel on CPUs that have it (gemm_avx512.c), else OpenBLAS when built
 * with it, else a cache- and register-blocked kernel written so GCC vectorises its inner loop;
 * bfloat16 products on AMX, AVX512_BF16 or an emulation (gemm_bf16.h). Big products are split
 * across nabla's pool. */
#include <string.h>
#include "kernels.h"
#include "simd.h"

/* c = a b + beta c over a row (beta 0: c = a b), b with stride sb. */
NB_ALWAYS_INLINE void outer_row(float *restrict c, const float *restrict b, int64_t sb, float a,
                                float beta, int64_t n) {
    if (sb == 1 && beta == 0.0f) /* the common case, contiguous: vectorised */
        for (int64_t j = 0; j < n; j++) c[j] = a * b[j];
    else if (sb == 1)
        for (int64_t j = 0; j < n; j++) c[j] = beta * c[j] + a * b[j];
    else
        for (int64_t j = 0; j < n; j++) c[j] = beta == 0.0f ? a * b[j * sb] : beta * c[j] + a * b[j * sb];
}

/* K == 1: C = alpha a b^T + beta C, a_i = op(A)[i,0], b_j = op(B)[0,j] (an outer product:
 * the weight gradient of a batch of one, 400 KB for the first layer of a 784-128 MLP). */
NB_SIMD_CLONES
static void outer(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    (void)K; /* 1 */
    int64_t sa = ta ? 1 : lda, sb = tb ? ldb : 1;
    for (int64_t i = 0; i < M; i++) outer_row(C + i * ldc, B, sb, alpha * A[i * sa], beta, N);
}

#include <stdatomic.h>
#include <stdlib.h>
#include "../core/internal.h"
#include "gemm_avx512.h"
#include "gemm_bf16.h"

typedef void gemm_fn(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                     int64_t ldc);

#ifdef NB_HAVE_OPENBLAS
#include <cblas.h>

static void blas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                      float *C, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta,
                C, (blasint)ldc);
}

#else /* builtin */
#include <math.h>

enum { MC = 64, KC = 256, NC = 512 };

/* Pack a KC x NC panel of op(B) so the inner loop reads it contiguously. */
static void pack_b(bool tb, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                   int64_t nc, float *restrict dst) {
    for (int64_t k = 0; k < kc; k++)
        for (int64_t j = 0; j < nc; j++)
            dst[k * nc + j] = tb ? B[(j0 + j) * ldb + k0 + k] : B[(k0 + k) * ldb + j0 + j];
}

/* A cache- and register-blocked kernel written so GCC vectorises its inner loop. */
NB_FMA_CLONES
static void builtin_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                         const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                         float *C, int64_t ldc) {
    static _Thread_local float bpack[KC * NC];
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    if (alpha == 0.0f) return;
    for (int64_t j0 = 0; j0 < N; j0 += NC) {
        int64_t nc = N - j0 < NC ? N - j0 : NC;
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
            int64_t kc = K - k0 < KC ? K - k0 : KC;
            pack_b(tb, B, ldb, k0, kc, j0, nc, bpack);
            for (int64_t i0 = 0; i0 < M; i0 += MC) {
                int64_t mc = M - i0 < MC ? M - i0 : MC;
                for (int64_t i = i0; i < i0 + mc; i++) {
                    float *restrict c = C + i * ldc + j0;
                    for (int64_t k = 0; k < kc; k++) {
                        float a = alpha * (ta ? A[(k0 + k) * lda + i] : A[i * lda + k0 + k]);
                        const float *restrict b = bpack + k * nc;
                        for (int64_t j = 0; j < nc; j++) c[j] = fmaf(a, b[j], c[j]);
                    }
                }
            }
        }
    }
}
#endif

/* M == 1 or N == 1 (a batch of one): a matrix-vector product; sgemm would pack the whole
 * matrix on every call. */
static void gemv(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
#if NB_HAVE_GEMM512
    if (M == 1 && tb && !ta && nb_k_gemm512_available()) { /* C[0,:] = B a, a contiguous */
        nb_k_gemv512(N, K, alpha, B, ldb, A, beta, C);
        return;
    }
#endif
#ifdef NB_HAVE_OPENBLAS
    if (M == 1) { /* C[0,:] = op(B)^T a */
        blasint inca = (blasint)(ta ? lda : 1);
        if (tb) cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)N, (blasint)K, alpha, B, (blasint)ldb, A, inca, beta, C, 1);
        else cblas_sgemv(CblasRowMajor, CblasTrans, (blasint)K, (blasint)N, alpha, B, (blasint)ldb, A, inca, beta, C, 1);
    } else { /* C[:,0] = op(A) b */
        blasint incb = (blasint)(tb ? 1 : ldb);
        if (ta) cblas_sgemv(CblasRowMajor, CblasTrans, (blasint)K, (blasint)M, alpha, A, (blasint)lda, B, incb, beta, C, (blasint)ldc);
        else cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)M, (blasint)K, alpha, A, (blasint)lda, B, incb, beta, C, (blasint)ldc);
    }
#else
    builtin_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

/* ---- bfloat16: the kernels of gemm_bf16.h, the best this CPU runs unless told otherwise --- */
typedef struct bf16_kernel {
    const char *name;
    bool (*available)(void);
    nb_k_gemm16_fn *fn;
} bf16_kernel;

static bool always(void) { return true; }

static const bf16_kernel bf16_kernels[] = {
#if NB_HAVE_GEMM_BF16_X86
    {"amx", nb_k_gemm_amx_available, nb_k_gemm_amx},
    {"avx512bf16", nb_k_gemm_dpbf16_available, nb_k_gemm_dpbf16},
#endif
    {"emulated", always, nb_k_gemm_bf16_emulated},
};
enum { NBF16 = (int)(sizeof bf16_kernels / sizeof bf16_kernels[0]) };

static _Atomic(const bf16_kernel *) bf16_chosen; /* NULL until first asked */

static const bf16_kernel *bf16_find(const char *name) {
    for (int i = 0; i < NBF16; i++)
        if (!strcmp(bf16_kernels[i].name, name)) return bf16_kernels[i].available() ? &bf16_kernels[i] : NULL;
    return NULL;
}

static const bf16_kernel *bf16_pick(void) {
    const bf16_kernel *k = atomic_load_explicit(&bf16_chosen, memory_order_acquire);
    if (k) return k;
    const char *env = getenv("NABLA_BF16_KERNEL");
    if (!env || !(k = bf16_find(env)))
        for (int i = 0; i < NBF16 && !k; i++)
            if (bf16_kernels[i].available()) k = &bf16_kernels[i];
    atomic_store_explicit(&bf16_chosen, k, memory_order_release);
    return k;
}

const char *nb_k_bf16_kernel(void) { return bf16_pick()->name; }
const char *nb_bf16_backend(void) { return nb_k_bf16_kernel(); }

bool nb__k_bf16_force(const char *name) {
    const bf16_kernel *k = name ? bf16_find(name) : NULL;
    if (name && !k) return false;
    atomic_store_explicit(&bf16_chosen, k, memory_order_release);
    return true;
}

/* ---- the dispatch point ---------------------------------------------------------------------- */
typedef struct gemm_job {
    gemm_fn *fn;           /* float32 products */
    nb_k_gemm16_fn *fn16;  /* or bfloat16 ones */
    bool ta, tb, by_rows;
    int64_t M, N, K, ldc;
    float alpha, beta;
    nb_k_operand A, B;
    float *C;
} gemm_job;

/* X advanced by `rows` rows and `cols` columns. */
static nb_k_operand offset(nb_k_operand X, int64_t rows, int64_t cols) {
    size_t at = (size_t)(rows * X.ld + cols) * nb_dtype_size(X.dt);
    X.p = (const char *)X.p + at;
    return X;
}

/* One part of a split GEMM: rows [b, e) of C, or columns [b, e). */
static void gemm_part(void *ctx, int64_t b, int64_t e) {
    const gemm_job *j = ctx;
    int64_t M = j->by_rows ? e - b : j->M, N = j->by_rows ? j->N : e - b;
    nb_k_operand A = j->A, B = j->B;
    float *C = j->C;
    if (j->by_rows) { /* rows b.. of op(A) and of C */
        A = j->ta ? offset(A, 0, b) : offset(A, b, 0);
        C += b * j->ldc;
    } else { /* columns b.. of op(B) and of C */
        B = j->tb ? offset(B, b, 0) : offset(B, 0, b);
        C += b;
    }
    if (j->fn16) j->fn16(j->ta, j->tb, M, N, j->K, j->alpha, A, B, j->beta, C, j->ldc);
    else j->fn(j->ta, j->tb, M, N, j->K, j->alpha, A.p, A.ld, B.p, B.ld, j->beta, C, j->ldc);
}

void nb_k_gemm_ex(nb_dtype ct, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                  nb_k_operand A, nb_k_operand B, float beta, float *C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) { /* BLAS would scale C by beta; do the same without reading NaN garbage */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    /* OpenBLAS's own threads spin for a while after it loads: park them whatever the type */
    nb__blas_single_thread();
    /* The kernel is chosen by the type, the shape and the CPU only, never by the thread count:
     * a product split into parts gives the same bits as in one piece. */
    bool bf16 = ct == NB_BF16 || A.dt == NB_BF16 || B.dt == NB_BF16;
    bool vector = K == 1 || M == 1 || N == 1;
    gemm_fn *fn = NULL;
    nb_k_gemm16_fn *fn16 = bf16 ? bf16_pick()->fn : NULL;
    if (!bf16) {
        /* AVX-512 where the CPU has it; with OpenBLAS, not for C narrower than its 32-column
         * blocks */
#ifdef NB_HAVE_OPENBLAS
        gemm_fn *big = blas_gemm;
#if NB_HAVE_GEMM512
        if (N >= 32 && nb_k_gemm512_available()) big = nb_k_gemm512;
#endif
#else
        gemm_fn *big = builtin_gemm;
#if NB_HAVE_GEMM512
        if (nb_k_gemm512_available()) big = nb_k_gemm512;
#endif
#endif
        fn = K == 1 ? outer : vector ? gemv : big; /* K == 1: dW of a batch of one */
    }
    /* Split across the pool when each part keeps >= 16 rows/columns and ~1 MFLOP (or, for the
     * memory-bound vector shapes, 32K elements of the matrix; bfloat16 products: 2 MFLOP).
     * Which way: a layer's weight W [out, in] is op(B) = W^T in the forward (x W^T: the columns
     * of C are the rows of W) and C in the weight gradient (gy^T x: the rows of C are the rows
     * of W); split by columns and by rows respectively, thread i computes with the same rows of
     * W in both and each slice of W and of its gradient stays in one core's cache. (The
     * optimizers split a whole param group into equal parts instead: their update is
     * memory-bound and streams once.) Other products are split along their longer side. */
    bool by_rows = ta ? true : tb ? false : M >= N;
    gemm_job j = {fn, fn16, ta, tb, by_rows, M, N, K, ldc, alpha, beta, A, B, C};
    int64_t work = vector && !bf16 ? M * N * K / 32768 : 2 * M * N * K / (1 << (bf16 ? 21 : 20));
    int64_t dim = by_rows ? M : N, parts = work < dim / 16 ? work : dim / 16;
    /* grain dim / parts (rounded down) leaves the pool at least `parts` parts to make */
    nb__parallel_for(dim, parts >= 2 ? dim / parts : dim, gemm_part, &j);
}

void nb_k_gemm_as(nb_dtype ct, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc) {
    nb_k_gemm_ex(ct, ta, tb, M, N, K, alpha, nb_k_f32_operand(A, lda), nb_k_f32_operand(B, ldb),
                 beta, C, ldc);
}

void nb_k_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
               int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    nb_k_gemm_as(NB_FLOAT32, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

const char *nb_blas_backend(void) {
#ifdef NB_HAVE_OPENBLAS
    return nb_k_gemm512_available() ? "avx512+openblas" : "openblas";
#else
    return nb_k_gemm512_available() ? "avx512+builtin" : "builtin";
#endif
}
