/* convert.c - float32 <-> bfloat16 over arrays. The scalar formulas of bf16.h, written as
 * integer arithmetic and a select so that GCC vectorises them (16 lanes with AVX-512). */
#include "bf16.h"
#include "simd.h"

NB_SIMD_CLONES
void nb_k_f32_to_bf16(uint16_t *restrict dst, const float *restrict src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = nb__bf16_round(src[i]);
}

NB_SIMD_CLONES
void nb_k_bf16_to_f32(float *restrict dst, const uint16_t *restrict src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = nb__bf16_float(src[i]);
}

NB_SIMD_CLONES
void nb_k_bf16_round_acc(float *restrict y, const float *restrict x, int64_t n, float beta) {
    if (beta == 0.0f)
        for (int64_t i = 0; i < n; i++) y[i] = nb__bf16_rounded(x[i]);
    else
        for (int64_t i = 0; i < n; i++) y[i] += nb__bf16_rounded(x[i]);
}

NB_SIMD_CLONES
bool nb_k_bf16_all_finite(const float *restrict x, int64_t n) {
    uint32_t bad = 0; /* integer compares: vectorised */
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        bad |= (u & 0x7fffffffu) >= 0x7f7f8000u;
    }
    return !bad;
}
