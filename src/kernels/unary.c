/* unary.c - pointwise math and its derivatives. */
#include <math.h>
#include "unary.h"

/* gx = g or gx += g, with the test on beta hoisted out of the loop by the compiler */
#define PUT(i, g) (gx[i] = beta == 0.0f ? (g) : gx[i] + (g))

void nb_k_scale(float *restrict y, const float *restrict x, float s, int64_t n, float beta) {
    if (beta == 0.0f)
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * s;
    else
        for (int64_t i = 0; i < n; i++) y[i] += x[i] * s;
}

void nb_k_add_scalar(float *restrict y, const float *restrict x, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] + s;
}

void nb_k_exp(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]);
}

void nb_k_log(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = logf(x[i]);
}

void nb_k_sqrt(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = sqrtf(x[i]);
}

void nb_k_abs(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
}

static float pow1(float x, float e) {
    if (e == 2.0f) return x * x;
    if (e == 3.0f) return x * x * x;
    if (e == 0.5f) return sqrtf(x);
    if (e == -0.5f) return 1.0f / sqrtf(x);
    if (e == -1.0f) return 1.0f / x;
    if (e == -2.0f) return 1.0f / (x * x);
    return powf(x, e);
}

void nb_k_pow(float *restrict y, const float *restrict x, float e, int64_t n) {
    if (e == 2.0f)
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] = pow1(x[i], e);
}

void nb_k_clamp(float *restrict y, const float *restrict x, float lo, float hi, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
    }
}

void nb_k_log_backward(float *restrict gx, const float *restrict gy, const float *restrict x,
                       int64_t n, float beta) {
    for (int64_t i = 0; i < n; i++) PUT(i, gy[i] / x[i]);
}

void nb_k_sqrt_backward(float *restrict gx, const float *restrict gy, const float *restrict y,
                        int64_t n, float beta) {
    for (int64_t i = 0; i < n; i++) PUT(i, gy[i] / (2.0f * y[i]));
}

void nb_k_abs_backward(float *restrict gx, const float *restrict gy, const float *restrict x,
                       int64_t n, float beta) {
    for (int64_t i = 0; i < n; i++) {
        float s = (float)((x[i] > 0.0f) - (x[i] < 0.0f)); /* 0 at 0 and NaN, as PyTorch */
        PUT(i, gy[i] * s);
    }
}

void nb_k_pow_backward(float *restrict gx, const float *restrict gy, const float *restrict x,
                       float e, int64_t n, float beta) {
    if (e == 0.0f)
        for (int64_t i = 0; i < n; i++) PUT(i, 0.0f);
    else if (e == 2.0f)
        for (int64_t i = 0; i < n; i++) PUT(i, gy[i] * (2.0f * x[i]));
    else
        for (int64_t i = 0; i < n; i++) PUT(i, gy[i] * (e * pow1(x[i], e - 1.0f)));
}

void nb_k_clamp_backward(float *restrict gx, const float *restrict gy, const float *restrict x,
                         float lo, float hi, int64_t n, float beta) {
    for (int64_t i = 0; i < n; i++) PUT(i, x[i] >= lo && x[i] <= hi ? gy[i] : 0.0f);
}
