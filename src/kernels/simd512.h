/* simd512.h - AVX-512 pieces shared by the GEMM kernels (gemm_avx512.c, gemm_dpbf16.c,
 * gemm_amx.c): lane masks, block sizes, the 16 x 16 transpose of their packing and the store of
 * a row of C. Include inside an x86-64 GCC build only. */
#ifndef NABLA_K_SIMD512_H
#define NABLA_K_SIMD512_H
#include <immintrin.h>
#include <stdint.h>

/* A mask of the first n of 16 lanes (none for n <= 0). */
static inline __mmask16 nb_k_lanes16(int64_t n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* n split into blocks of at most max, of near-equal size rounded up to a multiple of q. */
static inline int64_t nb_k_block(int64_t n, int64_t max, int64_t q) {
    int64_t parts = (n + max - 1) / max;
    return ((n + parts - 1) / parts + q - 1) / q * q;
}

/* One row of C, nr <= 32 columns: c = alpha (x0, x1) + (first ? beta c : c); beta 0 on the
 * first block of k leaves c unread (it may hold NaN garbage). */
static inline __attribute__((always_inline, target("avx512f"))) void
nb_k_store_row(float *c, __m512 x0, __m512 x1, int64_t nr, float alpha, float beta, bool first) {
    __mmask16 m0 = nb_k_lanes16(nr), m1 = nb_k_lanes16(nr - 16);
    x0 = _mm512_mul_ps(_mm512_set1_ps(alpha), x0);
    x1 = _mm512_mul_ps(_mm512_set1_ps(alpha), x1);
    if (!first || beta != 0.0f) {
        __m512 vb = _mm512_set1_ps(first ? beta : 1.0f);
        x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), x0);
        x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), x1);
    }
    _mm512_mask_storeu_ps(c, m0, x0);
    _mm512_mask_storeu_ps(c + 16, m1, x1);
}

/* Rows r < 16 of src (row stride ls), 16 floats each, transposed: lane r of row k goes to
 * lo[k ds + r] for r < 8 and hi[k ds + r - 8] for r >= 8. */
static inline __attribute__((always_inline, target("avx512f"))) void
nb_k_transpose16(const float *src, int64_t ls, float *lo, float *hi, int64_t ds) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * ls);
    for (int i = 0; i < 16; i += 2) { /* interleave pairs of rows */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* then pairs of pairs */
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 8; i++) { /* then 128-bit lanes of groups of four rows */
        int a = (i & 3) + (i >> 2) * 8, b = a + 4;
        t[a] = _mm512_shuffle_f32x4(r[a], r[b], 0x88);
        t[b] = _mm512_shuffle_f32x4(r[a], r[b], 0xdd);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
    for (int k = 0; k < 16; k++) {
        _mm256_storeu_ps(lo + k * ds, _mm512_castps512_ps256(r[k]));
        _mm256_storeu_ps(hi + k * ds, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(r[k]), 1)));
    }
}

#endif
