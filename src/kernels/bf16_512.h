/* bf16_512.h - AVX-512 helpers of the bfloat16 GEMM kernels (gemm_dpbf16.c, gemm_amx.c):
 * rounding float32 to bfloat16 16 lanes at a time, exactly as bf16.h (PyTorch's rounding, NaN
 * to 0xffff), and gathering operands into 32-bit pairs of bfloat16. Include inside an x86-64
 * GCC build only (NB_HAVE_GEMM_BF16_X86). */
#ifndef NABLA_K_BF16_512_H
#define NABLA_K_BF16_512_H
#include <immintrin.h>
#include "kernels.h"
#include "simd512.h"

#define NB_BF16_512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define NB_BF16_512_INLINE \
    static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* ---- rounding to bfloat16, 16 lanes at a time ----------------------------------------------
 * A lane holds one element as a 32-bit word whose high half is its bfloat16 (low half: don't
 * care). */
NB_BF16_512_INLINE __m512i b16_round_hi(__m512i u) {
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)),
                                 _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_mov_epi32(r, nan, _mm512_set1_epi32((int)0xffff0000u));
}

/* Elements at + 0..15 of X (lanes outside m read as 0) as bfloat16 in the high halves. */
NB_BF16_512_INLINE __m512i b16_load_hi(nb_k_operand X, int64_t at, __mmask16 m) {
    if (X.dt == NB_BF16)
        return _mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)X.p + at)), 16);
    return b16_round_hi(_mm512_maskz_loadu_epi32(m, (const float *)X.p + at));
}

/* Two rows' elements (same lanes) as pairs: low half from a, high half from b. */
NB_BF16_512_INLINE __m512i b16_pair_rows(__m512i a, __m512i b) {
    return _mm512_mask_blend_epi16(0xaaaaaaaau, _mm512_srli_epi32(a, 16), b);
}

/* Elements at + 0..31 of X, consecutive, as 16 pairs (element 2i low, 2i + 1 high); n < 32
 * valid (the rest read as 0). */
NB_BF16_512_INLINE __m512i b16_load_pairs(nb_k_operand X, int64_t at, int64_t n) {
    if (n <= 0) return _mm512_setzero_si512();
    if (X.dt == NB_BF16) {
        __mmask32 m = n >= 32 ? 0xffffffffu : (__mmask32)((1u << n) - 1);
        return _mm512_maskz_loadu_epi16(m, (const uint16_t *)X.p + at);
    }
    __mmask16 m0 = nb_k_lanes16(n), m1 = nb_k_lanes16(n - 16);
    __m512i h0 = b16_load_hi(X, at, m0), h1 = b16_load_hi(X, at + 16, m1);
    const __m512i odd = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33,
                                         31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    return _mm512_permutex2var_epi16(h0, odd, h1);
}

/* ---- packing ------------------------------------------------------------------------------- */
/* Rows c < 16 (row c at X + at + c ld, rows >= rows read as 0) of 32 consecutive elements each
 * (n valid), as pairs, transposed: pair p of row c goes to lo[p ds + c] for c < 8 and
 * hi[p ds + c - 8] for c >= 8. */
NB_BF16_512_INLINE void b16_pairs_transposed(nb_k_operand X, int64_t at, int64_t rows, int64_t n,
                                             uint32_t *lo, uint32_t *hi, int64_t ds) {
    uint32_t tmp[16 * 16] __attribute__((aligned(64)));
    for (int64_t c = 0; c < 16; c++)
        _mm512_store_si512(tmp + c * 16,
                           c < rows ? b16_load_pairs(X, at + c * X.ld, n) : _mm512_setzero_si512());
    nb_k_transpose16((const float *)tmp, 16, (float *)lo, (float *)hi, ds);
}

#endif
