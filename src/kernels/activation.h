/* activation.h - pointwise nonlinearity loops. Backward kernels take the upstream gradient gy
 * and write gx = beta*gx + gy * f'(...) (beta 0: gx is write-only). */
#ifndef NABLA_K_ACTIVATION_H
#define NABLA_K_ACTIVATION_H
#include <stdint.h>

void nb_k_relu(float *y, const float *x, int64_t n);
void nb_k_relu_backward(float *gx, const float *gy, const float *y, int64_t n, float beta);
void nb_k_leaky_relu(float *y, const float *x, int64_t n, float slope);
void nb_k_leaky_relu_backward(float *gx, const float *gy, const float *x, int64_t n, float slope, float beta);
void nb_k_tanh(float *y, const float *x, int64_t n);
/* uses the output: tanh' = 1 - y^2 */
void nb_k_tanh_backward(float *gx, const float *gy, const float *y, int64_t n, float beta);
void nb_k_sigmoid(float *y, const float *x, int64_t n);
/* uses the output: sigmoid' = y (1 - y) */
void nb_k_sigmoid_backward(float *gx, const float *gy, const float *y, int64_t n, float beta);
/* exact GELU: x * Phi(x) */
void nb_k_gelu(float *y, const float *x, int64_t n);
void nb_k_gelu_backward(float *gx, const float *gy, const float *x, int64_t n, float beta);
/* ELU: x > 0 ? x : alpha (exp(x) - 1); derivative from x */
void nb_k_elu(float *y, const float *x, int64_t n, float alpha);
void nb_k_elu_backward(float *gx, const float *gy, const float *x, int64_t n, float alpha, float beta);
/* SiLU: x sigmoid(x); derivative s (1 + x (1 - s)) from x */
void nb_k_silu(float *y, const float *x, int64_t n);
void nb_k_silu_backward(float *gx, const float *gy, const float *x, int64_t n, float beta);

#endif
