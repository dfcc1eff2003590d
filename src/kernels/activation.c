/* activation.c - pointwise nonlinearities and their derivatives. */
#include <math.h>
#include "activation.h"

/* NaN stays NaN, as in PyTorch (clamp_min propagates it). */
void nb_k_relu(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f || x[i] != x[i] ? x[i] : 0.0f;
}

/* PyTorch's threshold_backward: the gradient is 0 where the output is <= 0 and passes
 * elsewhere (a NaN output too). (gy is loaded unconditionally so the select vectorises
 * instead of branching on every element.) */
void nb_k_relu_backward(float *restrict gx, const float *restrict gy, const float *restrict y,
                        int64_t n, float beta) {
    if (beta == 0.0f)
        for (int64_t i = 0; i < n; i++) {
            float g = gy[i];
            gx[i] = y[i] <= 0.0f ? 0.0f : g;
        }
    else
        for (int64_t i = 0; i < n; i++) {
            float g = gy[i];
            gx[i] += y[i] <= 0.0f ? 0.0f : g;
        }
}

void nb_k_leaky_relu(float *restrict y, const float *restrict x, int64_t n, float slope) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
}

void nb_k_leaky_relu_backward(float *restrict gx, const float *restrict gy, const float *restrict x,
                              int64_t n, float slope, float beta) {
    for (int64_t i = 0; i < n; i++) {
        float g = x[i] > 0.0f ? gy[i] : gy[i] * slope;
        gx[i] = beta == 0.0f ? g : gx[i] + g;
    }
}

void nb_k_tanh(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void nb_k_tanh_backward(float *restrict gx, const float *restrict gy, const float *restrict y,
                        int64_t n, float beta) {
    for (int64_t i = 0; i < n; i++) {
        float g = gy[i] * (1.0f - y[i] * y[i]);
        gx[i] = beta == 0.0f ? g : gx[i] + g;
    }
}

void nb_k_sigmoid(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void nb_k_sigmoid_backward(float *restrict gx, const float *restrict gy, const float *restrict y,
                           int64_t n, float beta) {
    for (int64_t i = 0; i < n; i++) {
        float g = gy[i] * (1.0f - y[i]) * y[i];
        gx[i] = beta == 0.0f ? g : gx[i] + g;
    }
}

void nb_k_gelu(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * 0.5f * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void nb_k_gelu_backward(float *restrict gx, const float *restrict gy, const float *restrict x,
                        int64_t n, float beta) {
    const float k = (float)(M_2_SQRTPI * M_SQRT1_2 * 0.5); /* 1/sqrt(2 pi) */
    for (int64_t i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * (float)M_SQRT1_2));
        float pdf = k * expf(-0.5f * x[i] * x[i]);
        float g = gy[i] * (cdf + x[i] * pdf);
        gx[i] = beta == 0.0f ? g : gx[i] + g;
    }
}

void nb_k_elu(float *restrict y, const float *restrict x, int64_t n, float alpha) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]);
}

void nb_k_elu_backward(float *restrict gx, const float *restrict gy, const float *restrict x,
                       int64_t n, float alpha, float beta) {
    for (int64_t i = 0; i < n; i++) {
        float g = x[i] > 0.0f ? gy[i] : gy[i] * alpha * expf(x[i]);
        gx[i] = beta == 0.0f ? g : gx[i] + g;
    }
}

void nb_k_silu(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}

void nb_k_silu_backward(float *restrict gx, const float *restrict gy, const float *restrict x,
                        int64_t n, float beta) {
    for (int64_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-x[i]));
        float g = gy[i] * s * (1.0f + x[i] * (1.0f - s));
        gx[i] = beta == 0.0f ? g : gx[i] + g;
    }
}
