/* gemm_bf16.c - the emulated bfloat16 product: what VDPBF16PS and AMX compute, on any CPU.
 * Blocks of op(A) and op(B) are copied with their elements rounded to bfloat16 and widened back
 * to float32; a product of two such numbers (8-bit significands) is exact in float32, so
 * float32 multiply-adds give the products of the rounded operands summed in float32 - the
 * bfloat16 product, computed at float32 speed. Each element of C sums its products in k order
 * within a block of KC, then adds the block to C. */
#include "bf16.h"
#include "gemm_bf16.h"
#include "simd.h"

enum { MC = 64, KC = 256, NC = 512 };

/* op(X)[i, j] rounded to bfloat16, as a float. */
NB_ALWAYS_INLINE float rounded(nb_k_operand X, bool t, int64_t i, int64_t j) {
    int64_t at = t ? j * X.ld + i : i * X.ld + j;
    return X.dt == NB_BF16 ? nb__bf16_float(((const uint16_t *)X.p)[at])
                           : nb__bf16_rounded(((const float *)X.p)[at]);
}

NB_SIMD_CLONES
static void block(const float *restrict ap, const float *restrict bp, float *restrict acc,
                  int64_t mc, int64_t kc, int64_t nc) {
    for (int64_t i = 0; i < mc; i++) {
        float *restrict c = acc + i * nc;
        for (int64_t j = 0; j < nc; j++) c[j] = 0.0f;
        for (int64_t k = 0; k < kc; k++) {
            float a = ap[i * kc + k];
            const float *restrict b = bp + k * nc;
            for (int64_t j = 0; j < nc; j++) c[j] += a * b[j];
        }
    }
}

void nb_k_gemm_bf16_emulated(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                             nb_k_operand A, nb_k_operand B, float beta, float *C, int64_t ldc) {
    static _Thread_local float apack[MC * KC], bpack[KC * NC], acc[MC * NC];
    for (int64_t j0 = 0; j0 < N; j0 += NC) {
        int64_t nc = N - j0 < NC ? N - j0 : NC;
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
            int64_t kc = K - k0 < KC ? K - k0 : KC;
            for (int64_t k = 0; k < kc; k++)
                for (int64_t j = 0; j < nc; j++) bpack[k * nc + j] = rounded(B, tb, k0 + k, j0 + j);
            for (int64_t i0 = 0; i0 < M; i0 += MC) {
                int64_t mc = M - i0 < MC ? M - i0 : MC;
                for (int64_t i = 0; i < mc; i++)
                    for (int64_t k = 0; k < kc; k++) apack[i * kc + k] = rounded(A, ta, i0 + i, k0 + k);
                block(apack, bpack, acc, mc, kc, nc);
                for (int64_t i = 0; i < mc; i++) {
                    float *c = C + (i0 + i) * ldc + j0;
                    const float *s = acc + i * nc;
                    if (k0 > 0)
                        for (int64_t j = 0; j < nc; j++) c[j] += alpha * s[j];
                    else if (beta == 0.0f)
                        for (int64_t j = 0; j < nc; j++) c[j] = alpha * s[j];
                    else
                        for (int64_t j = 0; j < nc; j++) c[j] = alpha * s[j] + beta * c[j];
                }
            }
        }
    }
}
