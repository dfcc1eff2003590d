/* layout.c - transposes, block copies, row selection and gather. */
#include <string.h>
#include "layout.h"

void nb_k_transpose(float *restrict y, const float *restrict x, int64_t A, int64_t I, int64_t B,
                    int64_t J, int64_t C, float beta) {
    for (int64_t a = 0; a < A; a++)
        for (int64_t j = 0; j < J; j++)
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < I; i++) {
                    float *restrict yr = y + (((a * J + j) * B + b) * I + i) * C;
                    const float *restrict xr = x + (((a * I + i) * B + b) * J + j) * C;
                    if (beta == 0.0f)
                        for (int64_t c = 0; c < C; c++) yr[c] = xr[c];
                    else
                        for (int64_t c = 0; c < C; c++) yr[c] += xr[c];
                }
}

void nb_k_copy_rows(float *restrict dst, int64_t ds, const float *restrict src, int64_t ss,
                    int64_t rows, int64_t cols, float beta) {
    for (int64_t r = 0; r < rows; r++) {
        float *restrict d = dst + r * ds;
        const float *restrict s = src + r * ss;
        if (beta == 0.0f) memcpy(d, s, sizeof(float) * (size_t)cols);
        else
            for (int64_t j = 0; j < cols; j++) d[j] += s[j];
    }
}

void nb_k_index_rows(float *restrict y, const float *restrict x, const int32_t *idx, int64_t n,
                     int64_t row) {
    for (int64_t i = 0; i < n; i++)
        memcpy(y + i * row, x + (int64_t)idx[i] * row, sizeof(float) * (size_t)row);
}

void nb_k_index_rows_add(float *gx, const float *gy, const int32_t *idx, int64_t n, int64_t row) {
    for (int64_t i = 0; i < n; i++) {
        float *restrict g = gx + (int64_t)idx[i] * row;
        const float *restrict s = gy + i * row;
        for (int64_t j = 0; j < row; j++) g[j] += s[j];
    }
}

void nb_k_gather0(float *restrict y, const float *restrict x, const int32_t *idx, int64_t n,
                  int64_t R, int64_t S, const int64_t *off) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < R; k++)
            y[i * R + k] = x[(int64_t)idx[i * R + k] * S + (off ? off[k] : k)];
}

void nb_k_gather0_add(float *gx, const float *gy, const int32_t *idx, int64_t n, int64_t R,
                      int64_t S, const int64_t *off) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < R; k++)
            gx[(int64_t)idx[i * R + k] * S + (off ? off[k] : k)] += gy[i * R + k];
}
