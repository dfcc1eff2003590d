/* bf16.h - bfloat16 numbers: conversions of arrays as PyTorch does them (one number:
 * nb__bf16_round and nb__bf16_float in core/internal.h, which the tensors of core use too).
 *
 * A bfloat16 is the top 16 bits of a float32 (sign, 8 exponent bits, 7 mantissa bits). float32
 * to bfloat16 rounds to nearest, ties to even, on the bits (so subnormals round like every other
 * number, and values past the largest bfloat16 become infinity), and every NaN becomes 0xffff:
 * what torch's `x.to(torch.bfloat16)` gives on this version (1.13), measured value by value.
 * bfloat16 to float32 is exact (the bits shifted left by 16). */
#ifndef NABLA_K_BF16_H
#define NABLA_K_BF16_H
#include "../core/internal.h" /* nb__bf16_round, nb__bf16_float (a bfloat16 is core's dtype) */

/* dst[i] = bf16(src[i]) / float(src[i]), i < n (vectorised). */
void nb_k_f32_to_bf16(uint16_t *dst, const float *src, int64_t n);
void nb_k_bf16_to_f32(float *dst, const uint16_t *src, int64_t n);
/* True if every x[i] stays finite when rounded to bfloat16 (below 0x7f7f8000 in magnitude: the
 * largest bfloat16 is 3.3895e38, and the float32 values above its rounding boundary round to
 * infinity). */
bool nb_k_bf16_all_finite(const float *x, int64_t n);
/* y = beta*y + bf16-rounded(x) (beta 0: y = rounded x), as floats. */
void nb_k_bf16_round_acc(float *y, const float *x, int64_t n, float beta);

#endif
