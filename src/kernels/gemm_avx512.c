/* gemm_avx512.c - single-precision matrix multiply with AVX-512, for CPUs that have it.
 *
 * The classic blocked GEMM: op(B) is copied ("packed") a panel of kc x nc at a time into
 * slivers of NR = 32 columns, op(A) a block of mc x kc at a time into slivers of MR = 8 rows,
 * both k-major, so that the micro-kernel streams them contiguously. The micro-kernel keeps an
 * 8 x 32 block of C in 16 registers and adds one rank-1 update per k: two loads of B, eight
 * broadcasts of A, sixteen fused multiply-adds. Packing a transposed operand goes through a
 * 16 x 16 register transpose. Edges are padded with zeros when packed and masked when stored.
 *
 * Why not OpenBLAS: the OpenBLAS of Debian 12 (0.3.21) does not know recent AMD cores (Zen 5)
 * and runs its AVX2 kernels there, at half the speed the CPU has; this kernel reaches
 * 160-220 GFLOP/s per core on the training shapes where OpenBLAS's reaches 110-125.
 * Each element of C adds its products in k order (one k block after another), so splitting a
 * GEMM into row or column parts does not change a bit of the result. */
#include "gemm_avx512.h"

#if NB_HAVE_GEMM512
#include <immintrin.h>
#include "simd512.h"

#define TARGET __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline))

enum {
    MR = 8, NR = 32,        /* micro-kernel block of C */
    KC = 256, MC = 64, NC = 512 /* blocks of k, of rows (packed A) and of columns (packed B) */
};

bool nb_k_gemm512_available(void) { return __builtin_cpu_supports("avx512f") != 0; }

/* Pack rows [i0, i0 + mc) x columns [k0, k0 + kc) of op(A) into slivers of MR rows:
 * dst[s kc MR + k MR + r] = op(A)[i0 + s MR + r, k0 + k], rows past mc are zeros. */
TARGET static void pack_a(bool ta, const float *A, int64_t lda, int64_t i0, int64_t mc, int64_t k0,
                          int64_t kc, float *restrict dst) {
    for (int64_t s = 0; s < mc; s += MR, dst += kc * MR) {
        int64_t mr = mc - s < MR ? mc - s : MR, k = 0;
        if (ta) { /* the MR values of one k are contiguous in A */
            for (; k < kc; k++) {
                const float *src = A + (k0 + k) * lda + i0 + s;
                for (int64_t r = 0; r < MR; r++) dst[k * MR + r] = r < mr ? src[r] : 0.0f;
            }
            continue;
        }
        if (mc - s >= 2 * MR) { /* 16 full rows: two slivers at once, by transposes */
            const float *src = A + (i0 + s) * lda + k0;
            for (; k + 16 <= kc; k += 16) nb_k_transpose16(src + k, lda, dst + k * MR, dst + (kc + k) * MR, MR);
            for (int64_t r = 0; r < 2 * MR; r++)
                for (int64_t j = k; j < kc; j++) dst[(r / MR * kc + j) * MR + r % MR] = src[r * lda + j];
            dst += kc * MR;
            s += MR;
            continue;
        }
        for (int64_t r = 0; r < MR; r++) {
            const float *src = A + (i0 + s + r) * lda + k0;
            for (int64_t j = 0; j < kc; j++) dst[j * MR + r] = r < mr ? src[j] : 0.0f;
        }
    }
}

/* Pack rows [k0, k0 + kc) x columns [j0, j0 + nc) of op(B) into slivers of NR columns:
 * dst[s kc NR + k NR + c] = op(B)[k0 + k, j0 + s NR + c], columns past nc are zeros. */
TARGET static void pack_b(bool tb, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                          int64_t nc, float *restrict dst) {
    for (int64_t s = 0; s < nc; s += NR, dst += kc * NR) {
        int64_t nr = nc - s < NR ? nc - s : NR, k = 0;
        if (!tb) { /* the NR values of one k are contiguous in B */
            __mmask16 m0 = nb_k_lanes16(nr), m1 = nb_k_lanes16(nr - 16);
            for (; k < kc; k++) {
                const float *src = B + (k0 + k) * ldb + j0 + s;
                _mm512_storeu_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, src));
                _mm512_storeu_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
            }
            continue;
        }
        const float *src = B + (j0 + s) * ldb + k0; /* column c of the sliver is row c of B */
        if (nr == NR)
            for (; k + 16 <= kc; k += 16) {
                nb_k_transpose16(src + k, ldb, dst + k * NR, dst + k * NR + 8, NR);
                nb_k_transpose16(src + 16 * ldb + k, ldb, dst + k * NR + 16, dst + k * NR + 24, NR);
            }
        for (int64_t c = 0; c < NR; c++)
            for (int64_t j = k; j < kc; j++) dst[j * NR + c] = c < nr ? src[c * ldb + j] : 0.0f;
    }
}

/* C[mr x nr] = alpha a b + (first ? beta C : C), a and b one packed sliver each (kc long);
 * beta == 0 on the first block ignores C. */
TARGET INLINE void micro(int64_t kc, const float *restrict a, const float *restrict b, float *c,
                         int64_t ldc, int64_t mr, int64_t nr, float alpha, float beta, bool first) {
    __m512 c0[MR], c1[MR];
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++, a += MR, b += NR) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r]);
            c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
        }
    }
    for (int64_t r = 0; r < mr; r++, c += ldc) nb_k_store_row(c, c0[r], c1[r], nr, alpha, beta, first);
}

TARGET void nb_k_gemm512(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                         const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                         float *C, int64_t ldc) {
    static _Thread_local float apack[MC * KC] __attribute__((aligned(64)));
    static _Thread_local float bpack[KC * NC] __attribute__((aligned(64)));
    int64_t kb = nb_k_block(K, KC, 16), nb = nb_k_block(N, NC, NR);
    for (int64_t j0 = 0; j0 < N; j0 += nb) {
        int64_t nc = N - j0 < nb ? N - j0 : nb;
        for (int64_t k0 = 0; k0 < K; k0 += kb) {
            int64_t kc = K - k0 < kb ? K - k0 : kb;
            pack_b(tb, B, ldb, k0, kc, j0, nc, bpack);
            for (int64_t i0 = 0; i0 < M; i0 += MC) {
                int64_t mc = M - i0 < MC ? M - i0 : MC;
                pack_a(ta, A, lda, i0, mc, k0, kc, apack);
                for (int64_t js = 0; js < nc; js += NR)
                    for (int64_t is = 0; is < mc; is += MR)
                        micro(kc, apack + is * kc, bpack + js * kc, C + (i0 + is) * ldc + j0 + js,
                              ldc, mc - is < MR ? mc - is : MR, nc - js < NR ? nc - js : NR, alpha,
                              beta, k0 == 0);
            }
        }
    }
}

/* y[j] = alpha dot(B[j, :K], a) + beta y[j] for j < N (beta 0 ignores y): the forward of a
 * batch of one. Four rows of B at a time, each summed in 16 lanes, then across the lanes. */
TARGET void nb_k_gemv512(int64_t N, int64_t K, float alpha, const float *B, int64_t ldb,
                         const float *a, float beta, float *y) {
    int64_t k16 = K / 16 * 16;
    __mmask16 tail = (__mmask16)((1u << (K - k16)) - 1);
    int64_t j = 0;
    for (; j + 4 <= N; j += 4) {
        const float *b = B + j * ldb;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int64_t k = 0; k <= k16; k += 16) {
            __mmask16 m = k < k16 ? 0xffff : tail;
            __m512 x = _mm512_maskz_loadu_ps(m, a + k);
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + k), x, s0);
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + ldb + k), x, s1);
            s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + 2 * ldb + k), x, s2);
            s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + 3 * ldb + k), x, s3);
        }
        float d[4] = {_mm512_reduce_add_ps(s0), _mm512_reduce_add_ps(s1), _mm512_reduce_add_ps(s2),
                      _mm512_reduce_add_ps(s3)};
        for (int r = 0; r < 4; r++) y[j + r] = alpha * d[r] + (beta == 0.0f ? 0.0f : beta * y[j + r]);
    }
    for (; j < N; j++) {
        const float *b = B + j * ldb;
        __m512 s0 = _mm512_setzero_ps();
        for (int64_t k = 0; k <= k16; k += 16) {
            __mmask16 m = k < k16 ? 0xffff : tail;
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + k), _mm512_maskz_loadu_ps(m, a + k), s0);
        }
        y[j] = alpha * _mm512_reduce_add_ps(s0) + (beta == 0.0f ? 0.0f : beta * y[j]);
    }
}
#endif
