/* reduce.c - sum and max loops. */
#include <math.h>
#include <string.h>
#include "reduce.h"

double nb_k_sum(const float *restrict x, int64_t n) {
    enum { LANES = 16, BLOCK = 4096 };
    double total = 0.0;
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
        int64_t m = n - i0 < BLOCK ? n - i0 : BLOCK, i = 0;
        const float *restrict xb = x + i0;
        float acc[LANES] = {0};
        for (; i + LANES <= m; i += LANES)
            for (int j = 0; j < LANES; j++) acc[j] += xb[i + j];
        float s = 0.0f;
        for (int j = 0; j < LANES; j++) s += acc[j];
        for (; i < m; i++) s += xb[i];
        total += s;
    }
    return total;
}

void nb_k_sum_dim(float *restrict y, const float *restrict x, int64_t outer, int64_t C,
                  int64_t inner, float div) {
    if (inner == 1) {
        for (int64_t o = 0; o < outer; o++) y[o] = (float)nb_k_sum(x + o * C, C) / div;
        return;
    }
    for (int64_t o = 0; o < outer; o++) {
        float *restrict yo = y + o * inner;
        const float *restrict xo = x + o * C * inner;
        for (int64_t i = 0; i < inner; i++) yo[i] = 0.0f;
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < inner; i++) yo[i] += xo[c * inner + i];
        if (div != 1.0f)
            for (int64_t i = 0; i < inner; i++) yo[i] /= div;
    }
}

void nb_k_expand_dim(float *restrict gx, const float *restrict gy, int64_t outer, int64_t C,
                     int64_t inner, float div, float beta) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < C; c++) {
            float *restrict g = gx + (o * C + c) * inner;
            const float *restrict s = gy + o * inner;
            if (beta == 0.0f)
                for (int64_t i = 0; i < inner; i++) g[i] = s[i] / div;
            else
                for (int64_t i = 0; i < inner; i++) g[i] += s[i] / div;
        }
}

void nb_k_max_dim(float *val, int32_t *idx, const float *x, int64_t outer, int64_t C,
                  int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *p = x + o * C * inner + i;
            int64_t best = 0;
            float m = p[0];
            for (int64_t c = 1; c < C && !isnan(m); c++)
                if (!(p[c * inner] <= m)) { /* greater, or NaN */
                    m = p[c * inner];
                    best = c;
                }
            if (val) val[o * inner + i] = m;
            idx[o * inner + i] = (int32_t)best;
        }
}

bool nb_k_all_finite(const float *x, int64_t n) {
    uint32_t bad = 0; /* an exponent of all ones: infinity or NaN (integer ops: vectorised) */
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return !bad;
}

float nb_k_max(const float *x, int64_t n) {
    float m = x[0];
    for (int64_t i = 1; i < n; i++)
        if (!(x[i] <= m)) {
            m = x[i];
            if (isnan(m)) break;
        }
    return m;
}

void nb_k_max_backward(float *restrict gx, const float *restrict x, int64_t n, float m, float gy,
                       float beta) {
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) count += x[i] == m || (isnan(m) && isnan(x[i]));
    float share = gy / (float)count;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] == m || (isnan(m) && isnan(x[i])) ? share : 0.0f;
        gx[i] = beta == 0.0f ? v : gx[i] + v;
    }
}

void nb_k_max_dim_backward(float *gx, const float *gy, const int32_t *idx, int64_t outer,
                           int64_t C, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            gx[(o * C + idx[o * inner + i]) * inner + i] += gy[o * inner + i];
}
