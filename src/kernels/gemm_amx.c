/* gemm_amx.c - bfloat16 matrix product with Intel AMX tiles.
 *
 * A tile is 16 rows of 64 bytes; TDPBF16PS adds to a 16 x 16 float32 tile of C the product of a
 * 16 x 32 bfloat16 tile of op(A) (rows of 32 consecutive k) and a 32 x 16 tile of op(B) held
 * as 16 rows of pairs (row p: the pairs (op(B)[2p, c], op(B)[2p + 1, c]) of 16 columns c) -
 * 8192 multiply-adds per instruction. The kernel computes C in blocks of 32 x 32: four C tiles,
 * two of A and two of B per 32 values of k. op(B) is packed exactly as for the AVX512_BF16
 * kernel (slivers of 32 columns of pairs, nb_k_pack_b_pairs), so that a B tile is 16 rows of
 * 64 bytes at a stride of 128; op(A) in groups of 16 rows, one 1 KB tile per 32 values of k.
 * Padding is zeros (k to a multiple of 32); the C tiles go through a small buffer to apply
 * alpha and beta and to mask the edges. Each element of C adds its products one tile
 * instruction after another in k order, within a block of k fixed by K.
 *
 * Linux gives a process the tile state only when asked (arch_prctl ARCH_REQ_XCOMP_PERM);
 * nb_k_gemm_amx_available() asks once. */
#include "gemm_bf16.h"

#if NB_HAVE_GEMM_BF16_X86
#include <stdatomic.h>
#include <string.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include "bf16_512.h"

#define TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))
#define INLINE static inline __attribute__((always_inline))

enum { KC = 512, MC = 64, NC = 512 }; /* blocks of k (elements), rows and columns */

bool nb_k_gemm_amx_available(void) {
    static _Atomic int state; /* 0: not asked yet, 1: granted, -1: not available */
    int s = atomic_load(&state);
    if (s) return s > 0;
    s = -1;
#if defined(__linux__) && defined(SYS_arch_prctl)
    if (__builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16") &&
        nb_k_gemm_dpbf16_available() &&
        syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0)
        s = 1;
#endif
    atomic_store(&state, s);
    return s > 0;
}

TARGET void nb_k_amx_config(int cr, int ar, int ab, int br) {
    static _Thread_local int loaded[4]; /* the thread's configuration (cr 0: none yet) */
    if (loaded[0] == cr && loaded[1] == ar && loaded[2] == ab && loaded[3] == br) return;
    loaded[0] = cr, loaded[1] = ar, loaded[2] = ab, loaded[3] = br;
    struct {
        uint8_t palette, start_row, reserved[14];
        uint16_t colsb[16];
        uint8_t rows[16];
    } cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = (uint8_t)(t < 4 ? cr : t < 6 ? ar : br);
        cfg.colsb[t] = (uint16_t)(t == 4 || t == 5 ? ab : 64);
    }
    /* GCC 12 does not see that LDTILECFG reads cfg and drops the stores above without this */
    __asm__ volatile("" : : "r"(&cfg) : "memory");
    _tile_loadconfig(&cfg);
}

/* Rows [i0, i0 + mc) of op(A), k in [k0, k0 + kc), as tiles: groups of 16 rows, in each one
 * tile of 16 rows x 16 pairs per 32 values of k: dst[(g nq + q) 256 + r 16 + p] is the pair
 * (op(A)[i0 + 16g + r, k0 + 32q + 2p], ... + 1), nq = kp2 / 16. Zeros past mc and kc. */
TARGET static void pack_a(bool ta, nb_k_operand A, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                          int64_t kp2, uint32_t *dst) {
    int64_t nq = kp2 / 16;
    for (int64_t g = 0; g < (mc + 15) / 16; g++)
        for (int64_t q = 0; q < nq; q++) {
            uint32_t *t = dst + (g * nq + q) * 256;
            int64_t rows = mc - 16 * g, k = k0 + 32 * q, n = kc - 32 * q;
            if (!ta) { /* row r's 32 values of k are consecutive in A: one tile row */
                for (int64_t r = 0; r < 16; r++)
                    _mm512_storeu_si512(t + r * 16, r < rows ? b16_load_pairs(A, (i0 + 16 * g + r) * A.ld + k, n)
                                                             : _mm512_setzero_si512());
                continue;
            }
            /* rows k + 2p and k + 2p + 1 of A give pair p of 16 rows of op(A): transpose */
            uint32_t tmp[16 * 16] __attribute__((aligned(64)));
            __mmask16 m = nb_k_lanes16(rows);
            for (int64_t p = 0; p < 16; p++) {
                int64_t at = (k + 2 * p) * A.ld + i0 + 16 * g;
                __m512i a = 2 * p < n ? b16_load_hi(A, at, m) : _mm512_setzero_si512();
                __m512i b = 2 * p + 1 < n ? b16_load_hi(A, at + A.ld, m) : _mm512_setzero_si512();
                _mm512_store_si512(tmp + p * 16, b16_pair_rows(a, b));
            }
            nb_k_transpose16((const float *)tmp, 16, (float *)t, (float *)t + 8, 16);
        }
}

/* C[mr x nr] (mr, nr <= 32) = alpha (a b) + (first ? beta C : C), a: the packed groups of its
 * rows (one or two), b: its sliver of packed op(B); nq tiles of k. */
TARGET static void block32(int64_t nq, const uint32_t *a, const uint32_t *b, float *c, int64_t ldc,
                           int64_t mr, int64_t nr, float alpha, float beta, bool first) {
    float acc[32 * 32] __attribute__((aligned(64)));
    bool rows2 = mr > 16, cols2 = nr > 16;
    _tile_zero(0);
    if (cols2) _tile_zero(1);
    if (rows2) _tile_zero(2);
    if (rows2 && cols2) _tile_zero(3);
    for (int64_t q = 0; q < nq; q++) {
        _tile_loadd(4, a + q * 256, 64);
        _tile_loadd(6, b + q * 16 * 32, 128);
        _tile_dpbf16ps(0, 4, 6);
        if (cols2) {
            _tile_loadd(7, b + q * 16 * 32 + 16, 128);
            _tile_dpbf16ps(1, 4, 7);
        }
        if (rows2) {
            _tile_loadd(5, a + (nq + q) * 256, 64);
            _tile_dpbf16ps(2, 5, 6);
            if (cols2) _tile_dpbf16ps(3, 5, 7);
        }
    }
    _tile_stored(0, acc, 128);
    if (cols2) _tile_stored(1, acc + 16, 128);
    if (rows2) _tile_stored(2, acc + 16 * 32, 128);
    if (rows2 && cols2) _tile_stored(3, acc + 16 * 32 + 16, 128);
    for (int64_t r = 0; r < mr; r++, c += ldc)
        nb_k_store_row(c, _mm512_load_ps(acc + r * 32), _mm512_load_ps(acc + r * 32 + 16), nr, alpha, beta,
                       first);
}

TARGET void nb_k_gemm_amx(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                          nb_k_operand A, nb_k_operand B, float beta, float *C, int64_t ldc) {
    static _Thread_local uint32_t apack[MC * KC / 2] __attribute__((aligned(64)));
    static _Thread_local uint32_t bpack[KC / 2 * NC] __attribute__((aligned(64)));
    nb_k_amx_config(16, 16, 64, 16);
    int64_t kb = nb_k_block(K, KC, 32), nb = nb_k_block(N, NC, 32);
    for (int64_t j0 = 0; j0 < N; j0 += nb) {
        int64_t nc = N - j0 < nb ? N - j0 : nb;
        for (int64_t k0 = 0; k0 < K; k0 += kb) {
            int64_t kc = K - k0 < kb ? K - k0 : kb, kp2 = (kc + 31) / 32 * 16, nq = kp2 / 16;
            nb_k_pack_b_pairs(tb, B, k0, kc, kp2, j0, nc, bpack);
            for (int64_t i0 = 0; i0 < M; i0 += MC) {
                int64_t mc = M - i0 < MC ? M - i0 : MC;
                pack_a(ta, A, i0, mc, k0, kc, kp2, apack);
                for (int64_t js = 0; js < nc; js += 32)
                    for (int64_t is = 0; is < mc; is += 32)
                        block32(nq, apack + is / 16 * nq * 256, bpack + js * kp2,
                                C + (i0 + is) * ldc + j0 + js, ldc, mc - is < 32 ? mc - is : 32,
                                nc - js < 32 ? nc - js : 32, alpha, beta, k0 == 0);
            }
        }
    }
}
#endif
