/* gemm_dpbf16.c - bfloat16 matrix product with AVX512_BF16, and the packing of pairs that the AMX
 * kernel shares.
 *
 * VDPBF16PS adds to each of 16 float32 lanes the two products of a pair of bfloat16 numbers,
 * so k is consumed two at a time: op(B) is packed in slivers of NR = 32 columns of 32-bit
 * pairs (op(B)[2p, c], op(B)[2p + 1, c]), op(A) in slivers of MR = 8 rows of pairs
 * (op(A)[r, 2p], op(A)[r, 2p + 1]), both pair-major, and the micro-kernel keeps an 8 x 32 block
 * of C in 16 registers: per pair, two loads of B, eight broadcasts of A, sixteen VDPBF16PS -
 * the float32 kernel's loop (gemm_avx512.c) with twice the multiply-adds per instruction.
 * Packing rounds float32 operands to bfloat16 as PyTorch does (bf16.h), 16 lanes at a time; a
 * transposed operand goes through the 16 x 16 register transpose. k is padded with zero pairs
 * to a multiple of 32 (what the AMX tiles need), rows and columns with zeros; C is stored
 * masked. Each element of C adds its pairs in k order within a block of k (fixed by K), then
 * the block to C. */
#include "gemm_bf16.h"

#if NB_HAVE_GEMM_BF16_X86
#include "bf16_512.h"

#define TARGET NB_BF16_512_TARGET
#define INLINE static inline __attribute__((always_inline))

enum {
    MR = 8, NR = 32,          /* micro-kernel block of C */
    KC = 512, MC = 64, NC = 512 /* blocks of k (elements), of rows and of columns */
};

bool nb_k_gemm_dpbf16_available(void) {
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

TARGET void nb_k_pack_b_pairs(bool tb, nb_k_operand B, int64_t k0, int64_t kc, int64_t kp2,
                              int64_t j0, int64_t nc, uint32_t *dst) {
    for (int64_t s = 0; s < nc; s += NR, dst += kp2 * NR) {
        int64_t nr = nc - s < NR ? nc - s : NR;
        if (!tb) { /* rows k and k + 1 of B, 32 columns each */
            for (int64_t p = 0; p < kp2; p++)
                for (int h = 0; h < 2; h++) {
                    __mmask16 m = nb_k_lanes16(nr - 16 * h);
                    int64_t at = (k0 + 2 * p) * B.ld + j0 + s + 16 * h;
                    __m512i a = 2 * p < kc ? b16_load_hi(B, at, m) : _mm512_setzero_si512();
                    __m512i b = 2 * p + 1 < kc ? b16_load_hi(B, at + B.ld, m) : _mm512_setzero_si512();
                    _mm512_storeu_si512(dst + p * NR + 16 * h, b16_pair_rows(a, b));
                }
            continue;
        }
        /* column c of the sliver is row j0 + s + c of B: its pairs are consecutive there */
        for (int64_t p = 0; p < kp2; p += 16)
            for (int h = 0; h < 2; h++)
                b16_pairs_transposed(B, (j0 + s + 16 * h) * B.ld + k0 + 2 * p, nr - 16 * h,
                                     kc - 2 * p, dst + p * NR + 16 * h, dst + p * NR + 16 * h + 8, NR);
    }
}

/* Rows [i0, i0 + mc) of op(A), k in [k0, k0 + kc), into slivers of MR rows of kp2 pairs:
 * dst[s kp2 MR + p MR + r]; rows past mc and pairs past kc are zeros. */
TARGET static void pack_a(bool ta, nb_k_operand A, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                          int64_t kp2, uint32_t *dst) {
    for (int64_t s = 0; s < mc; s += 2 * MR, dst += 2 * kp2 * MR) { /* two slivers at a time */
        uint32_t *lo = dst, *hi = dst + kp2 * MR;
        if (ta) { /* rows k and k + 1 of A hold 16 rows of op(A) each */
            __mmask16 m = nb_k_lanes16(mc - s);
            for (int64_t p = 0; p < kp2; p++) {
                int64_t at = (k0 + 2 * p) * A.ld + i0 + s;
                __m512i a = 2 * p < kc ? b16_load_hi(A, at, m) : _mm512_setzero_si512();
                __m512i b = 2 * p + 1 < kc ? b16_load_hi(A, at + A.ld, m) : _mm512_setzero_si512();
                __m512i v = b16_pair_rows(a, b);
                _mm256_storeu_si256((__m256i *)(lo + p * MR), _mm512_castsi512_si256(v));
                if (mc - s > MR)
                    _mm256_storeu_si256((__m256i *)(hi + p * MR), _mm512_extracti64x4_epi64(v, 1));
            }
        } else { /* row r of op(A) is row i0 + s + r of A: its pairs are consecutive there */
            uint32_t tmp[16 * MR] __attribute__((aligned(64))); /* a missing second sliver */
            for (int64_t p = 0; p < kp2; p += 16)
                b16_pairs_transposed(A, (i0 + s) * A.ld + k0 + 2 * p, mc - s, kc - 2 * p,
                                     lo + p * MR, mc - s > MR ? hi + p * MR : tmp, MR);
        }
    }
}

/* C[mr x nr] = alpha a b + (first ? beta C : C) over kp2 pairs; beta 0 on the first block
 * ignores C. */
TARGET INLINE void micro(int64_t kp2, const uint32_t *restrict a, const uint32_t *restrict b,
                         float *c, int64_t ldc, int64_t mr, int64_t nr, float alpha, float beta,
                         bool first) {
    __m512 c0[MR], c1[MR];
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kp2; p++, a += MR, b += NR) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 16);
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
            __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[r]);
            c0[r] = _mm512_dpbf16_ps(c0[r], ar, b0);
            c1[r] = _mm512_dpbf16_ps(c1[r], ar, b1);
        }
    }
    for (int64_t r = 0; r < mr; r++, c += ldc) nb_k_store_row(c, c0[r], c1[r], nr, alpha, beta, first);
}

TARGET void nb_k_gemm_dpbf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                             nb_k_operand A, nb_k_operand B, float beta, float *C, int64_t ldc) {
    static _Thread_local uint32_t apack[MC * KC / 2] __attribute__((aligned(64)));
    static _Thread_local uint32_t bpack[KC / 2 * NC] __attribute__((aligned(64)));
    int64_t kb = nb_k_block(K, KC, 32), nb = nb_k_block(N, NC, NR);
    for (int64_t j0 = 0; j0 < N; j0 += nb) {
        int64_t nc = N - j0 < nb ? N - j0 : nb;
        for (int64_t k0 = 0; k0 < K; k0 += kb) {
            int64_t kc = K - k0 < kb ? K - k0 : kb, kp2 = (kc + 31) / 32 * 16;
            nb_k_pack_b_pairs(tb, B, k0, kc, kp2, j0, nc, bpack);
            for (int64_t i0 = 0; i0 < M; i0 += MC) {
                int64_t mc = M - i0 < MC ? M - i0 : MC;
                pack_a(ta, A, i0, mc, k0, kc, kp2, apack);
                for (int64_t js = 0; js < nc; js += NR)
                    for (int64_t is = 0; is < mc; is += MR)
                        micro(kp2, apack + is * kp2, bpack + js * kp2, C + (i0 + is) * ldc + j0 + js,
                              ldc, mc - is < MR ? mc - is : MR, nc - js < NR ? nc - js : NR, alpha,
                              beta, k0 == 0);
            }
        }
    }
}
#endif
