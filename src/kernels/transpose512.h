/* transpose512.h - a 16 x 16 transpose of 32-bit elements in AVX-512 registers, for the packing
 * of the AVX-512 GEMM kernels (gemm_avx512.c, gemm_dpbf16.c, gemm_amx.c). Only moves bits: the
 * elements may be floats or any 32-bit pattern. Include inside an x86-64 GCC build only. */
#ifndef NABLA_K_TRANSPOSE512_H
#define NABLA_K_TRANSPOSE512_H
#include <immintrin.h>
#include <stdint.h>

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
