/* softmax.c - numerically stable softmax / log-softmax (max subtracted first). */
#include <math.h>
#include "softmax.h"

void nb_k_softmax_rows(float *p, double *lse, const float *x, int64_t rows, int64_t cols) {
    for (int64_t i = 0; i < rows; i++) {
        const float *xi = x + i * cols;
        float *pi = p + i * cols;
        float m = -INFINITY, s = 0.0f;
        for (int64_t j = 0; j < cols; j++) m = xi[j] > m ? xi[j] : m;
        for (int64_t j = 0; j < cols; j++) {
            pi[j] = expf(xi[j] - m);
            s += pi[j];
        }
        float inv = 1.0f / s;
        for (int64_t j = 0; j < cols; j++) pi[j] *= inv;
        if (lse) lse[i] = (double)m + log((double)s); /* in float, m + log(s) would round */
    }
}

/* As PyTorch: x - max - log(sum) and exp(x - max) / sum, never rounding max + log(sum)
 * (that loses the digits of large logits, pytorch#11752). */
void nb_k_softmax(float *y, const float *x, int64_t outer, int64_t C, int64_t inner, int log) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            const float *xs = x + o * C * inner + in;
            float *ys = y + o * C * inner + in;
            float m = -INFINITY, s = 0.0f;
            for (int64_t c = 0; c < C; c++) m = xs[c * inner] > m ? xs[c * inner] : m;
            for (int64_t c = 0; c < C; c++) {
                float e = expf(xs[c * inner] - m);
                if (!log) ys[c * inner] = e;
                s += e;
            }
            float ls = logf(s);
            for (int64_t c = 0; c < C; c++)
                ys[c * inner] = log ? (xs[c * inner] - m) - ls : ys[c * inner] / s;
        }
}

void nb_k_softmax_backward(float *gx, const float *gy, const float *y, int64_t outer, int64_t C,
                           int64_t inner, int log, float beta) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            int64_t base = o * C * inner + in;
            double sd = 0.0; /* accumulated in double, as PyTorch's acc_type */
            for (int64_t c = 0; c < C; c++) {
                int64_t k = base + c * inner;
                sd += log ? gy[k] : (double)gy[k] * y[k];
            }
            float s = (float)sd;
            for (int64_t c = 0; c < C; c++) {
                int64_t k = base + c * inner;
                float g = log ? gy[k] - expf(y[k]) * s : y[k] * (gy[k] - s);
                gx[k] = beta == 0.0f ? g : gx[k] + g;
            }
        }
}
