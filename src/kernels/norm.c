/* norm.c - batch and layer normalisation, forward and backward. */
#include <math.h>
#include <string.h>
#include "norm.h"

void nb_k_channel_stats(double *mean, double *var, const float *x, int64_t N, int64_t C, int64_t S) {
    double M = (double)(N * S);
    for (int64_t c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int64_t n = 0; n < N; n++) {
            const float *p = x + (n * C + c) * S;
            for (int64_t i = 0; i < S; i++) s += p[i];
        }
        double m = M > 0 ? s / M : 0;
        for (int64_t n = 0; n < N; n++) {
            const float *p = x + (n * C + c) * S;
            for (int64_t i = 0; i < S; i++) q += ((double)p[i] - m) * ((double)p[i] - m);
        }
        mean[c] = m;
        var[c] = M > 0 ? q / M : 0;
    }
}

void nb_k_channel_affine(float *restrict y, const float *restrict x, const float *restrict a,
                         const float *restrict b, int64_t N, int64_t C, int64_t S) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            const float *p = x + (n * C + c) * S;
            float *q = y + (n * C + c) * S, ac = a[c], bc = b[c];
            for (int64_t i = 0; i < S; i++) q[i] = p[i] * ac + bc;
        }
}

void nb_k_channel_grad_sums(double *sdy, double *sdyx, const float *gy, const float *x,
                            const float *mean, int64_t N, int64_t C, int64_t S) {
    for (int64_t c = 0; c < C; c++) {
        double s = 0, d = 0, m = mean[c];
        for (int64_t n = 0; n < N; n++) {
            const float *g = gy + (n * C + c) * S, *p = x + (n * C + c) * S;
            for (int64_t i = 0; i < S; i++) {
                s += g[i];
                d += (double)g[i] * ((double)p[i] - m);
            }
        }
        sdy[c] = s;
        sdyx[c] = d;
    }
}

void nb_k_batch_norm_backward(float *gx, const float *gy, const float *x, const float *mean,
                              const float *invstd, const float *w, const double *sdy,
                              const double *sdyx, int64_t N, int64_t C, int64_t S, int training,
                              float beta) {
    double M = (double)(N * S);
    for (int64_t c = 0; c < C; c++) {
        double is = invstd[c], wc = w ? w[c] : 1.0;
        double gm = training ? sdy[c] / M : 0, k = training ? sdyx[c] * is * is / M : 0;
        for (int64_t n = 0; n < N; n++) {
            const float *g = gy + (n * C + c) * S, *p = x + (n * C + c) * S;
            float *o = gx + (n * C + c) * S;
            for (int64_t i = 0; i < S; i++) {
                double v = training ? (g[i] - gm - ((double)p[i] - mean[c]) * k) * is * wc
                                    : g[i] * is * wc;
                o[i] = beta == 0.0f ? (float)v : o[i] + (float)v;
            }
        }
    }
}

void nb_k_layer_norm(float *y, float *mean, float *rstd, const float *x, const float *w,
                     const float *b, int64_t R, int64_t M, double eps) {
    for (int64_t r = 0; r < R; r++) {
        const float *p = x + r * M;
        float *q = y + r * M;
        double s = 0, v = 0;
        for (int64_t i = 0; i < M; i++) s += p[i];
        double m = M ? s / (double)M : 0;
        for (int64_t i = 0; i < M; i++) v += ((double)p[i] - m) * ((double)p[i] - m);
        double rs = 1.0 / sqrt((M ? v / (double)M : 0) + eps);
        mean[r] = (float)m;
        rstd[r] = (float)rs;
        for (int64_t i = 0; i < M; i++) {
            double h = ((double)p[i] - m) * rs;
            q[i] = (float)(h * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f));
        }
    }
}

void nb_k_layer_norm_backward(float *gx, const float *gy, const float *x, const float *mean,
                              const float *rstd, const float *w, int64_t R, int64_t M, float beta) {
    for (int64_t r = 0; r < R; r++) {
        const float *g = gy + r * M, *p = x + r * M;
        float *o = gx + r * M;
        double m = mean[r], rs = rstd[r], sg = 0, sgx = 0;
        for (int64_t i = 0; i < M; i++) {
            double gi = (double)g[i] * (w ? w[i] : 1.0f);
            sg += gi;
            sgx += gi * ((double)p[i] - m) * rs;
        }
        sg /= (double)M;
        sgx /= (double)M;
        for (int64_t i = 0; i < M; i++) {
            double gi = (double)g[i] * (w ? w[i] : 1.0f), h = ((double)p[i] - m) * rs;
            float v = (float)(rs * (gi - sg - h * sgx));
            o[i] = beta == 0.0f ? v : o[i] + v;
        }
    }
}

void nb_k_layer_norm_backward_params(float *gw, float *gb, const float *gy, const float *x,
                                     const float *mean, const float *rstd, int64_t R, int64_t M,
                                     float bw, float bb) {
    for (int64_t i = 0; i < M; i++) {
        double sw = 0, sb = 0;
        for (int64_t r = 0; r < R; r++) {
            double g = gy[r * M + i];
            sw += g * ((double)x[r * M + i] - mean[r]) * rstd[r];
            sb += g;
        }
        if (gw) gw[i] = bw == 0.0f ? (float)sw : gw[i] + (float)sw;
        if (gb) gb[i] = bb == 0.0f ? (float)sb : gb[i] + (float)sb;
    }
}
