/* vec.c - elementwise and reduction loops shared by several ops. */
#include "kernels.h"
#include "simd.h"

/* (Also adds the parts of a split step's gradients: ~100K floats per step, so wide vectors.) */
NB_SIMD_CLONES
void nb_k_acc(float *restrict y, const float *restrict x, int64_t n, float beta) {
    if (beta == 0.0f)
        for (int64_t i = 0; i < n; i++) y[i] = x[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void nb_k_bcast_rows(float *restrict out, const float *restrict bias, int64_t rows, int64_t cols) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) out[i * cols + j] = bias[j];
}

void nb_k_sum_rows(float *restrict out, const float *restrict x, int64_t rows, int64_t cols,
                   float beta) {
    if (beta == 0.0f)
        for (int64_t j = 0; j < cols; j++) out[j] = 0.0f;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) out[j] += x[i * cols + j];
}

void nb_k_mul_acc(float *restrict y, const float *restrict a, const float *restrict b, int64_t n,
                  float beta) {
    if (beta == 0.0f)
        for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] += a[i] * b[i];
}

NB_SIMD_CLONES
void nb_k_add_rows(float *restrict y, const float *restrict x, int64_t ld, int64_t rows, int64_t n,
                   float beta) {
    for (int64_t r = 0; r < rows; r++, x += ld) {
        if (r == 0 && beta == 0.0f)
            for (int64_t i = 0; i < n; i++) y[i] = x[i];
        else
            for (int64_t i = 0; i < n; i++) y[i] += x[i];
    }
}
