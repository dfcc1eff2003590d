/* unary.h - pointwise math loops (scalar arithmetic, exp, log, sqrt, abs, pow, clamp).
 * Backward kernels write gx = beta*gx + gy * f'(...) (beta 0: gx is write-only). */
#ifndef NABLA_K_UNARY_H
#define NABLA_K_UNARY_H
#include <stdint.h>

/* y = beta*y + s*x (mul_scalar, neg, and their backward). */
void nb_k_scale(float *y, const float *x, float s, int64_t n, float beta);
/* y = x + s */
void nb_k_add_scalar(float *y, const float *x, float s, int64_t n);
void nb_k_exp(float *y, const float *x, int64_t n);
void nb_k_log(float *y, const float *x, int64_t n);
void nb_k_sqrt(float *y, const float *x, int64_t n);
void nb_k_abs(float *y, const float *x, int64_t n);
/* x ** e, with PyTorch's exact forms for e in {2, 3, 0.5, -0.5, -1, -2} */
void nb_k_pow(float *y, const float *x, float e, int64_t n);
/* NaN stays NaN; lo > hi gives hi everywhere, as torch.clamp */
void nb_k_clamp(float *y, const float *x, float lo, float hi, int64_t n);

/* log: gy / x */
void nb_k_log_backward(float *gx, const float *gy, const float *x, int64_t n, float beta);
/* sqrt (uses the output): gy / (2 y) */
void nb_k_sqrt_backward(float *gx, const float *gy, const float *y, int64_t n, float beta);
/* abs: gy * sign(x), sign(0) = 0 */
void nb_k_abs_backward(float *gx, const float *gy, const float *x, int64_t n, float beta);
/* pow: gy * (e * x ** (e - 1)); 0 when e == 0 */
void nb_k_pow_backward(float *gx, const float *gy, const float *x, float e, int64_t n, float beta);
/* clamp: gy where lo <= x <= hi, else 0 */
void nb_k_clamp_backward(float *gx, const float *gy, const float *x, float lo, float hi, int64_t n,
                         float beta);

#endif
