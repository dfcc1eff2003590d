/* pool.c - max, average and adaptive average pooling, in PyTorch's CPU order of evaluation
 * (the same window bounds, the same tie and NaN rules, the same divisors). */
#include "pool.h"

/* 2x2 windows with stride 2 and no padding: the pooling of every LeNet-style network.
 * Straight-line selects (no branches) so that GCC vectorises the row loop. (Not cloned for
 * AVX-512: rows of 14 or 5 outputs would leave most of them to a branchy scalar tail.) */
static void max_pool_2x2(float *restrict y, int32_t *restrict idx, const float *restrict x,
                         int64_t planes, const nb_pool_geom *g) {
    const int32_t W = (int32_t)g->W;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t oy = 0; oy < g->OH; oy++) {
            const float *r0 = x + (p * g->H + 2 * oy) * g->W, *r1 = r0 + g->W;
            float *yr = y + (p * g->OH + oy) * g->OW;
            int32_t *ir = idx + (p * g->OH + oy) * g->OW, base = (int32_t)(2 * oy) * W;
            for (int64_t ox = 0; ox < g->OW; ox++) {
                float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
                float m = a;
                int32_t k = 0;
                bool tb = b > m || b != b;
                m = tb ? b : m;
                k = tb ? 1 : k;
                bool tc = c > m || c != c;
                m = tc ? c : m;
                k = tc ? W : k;
                bool td = d > m || d != d;
                m = td ? d : m;
                k = td ? W + 1 : k;
                yr[ox] = m;
                ir[ox] = base + 2 * (int32_t)ox + k;
            }
        }
}

void nb_k_max_pool2d(float *restrict y, int32_t *restrict idx, const float *restrict x,
                     int64_t planes, const nb_pool_geom *g) {
    if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 &&
        g->dh == 1 && g->dw == 1 && 2 * g->OH <= g->H && 2 * g->OW <= g->W) {
        max_pool_2x2(y, idx, x, planes, g);
        return;
    }
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * g->H * g->W;
        for (int64_t oy = 0; oy < g->OH; oy++)
            for (int64_t ox = 0; ox < g->OW; ox++) {
                int64_t h0 = oy * g->sh - g->ph, w0 = ox * g->sw - g->pw;
                int64_t h1 = h0 + (g->kh - 1) * g->dh + 1, w1 = w0 + (g->kw - 1) * g->dw + 1;
                if (h1 > g->H) h1 = g->H;
                if (w1 > g->W) w1 = g->W;
                while (h0 < 0) h0 += g->dh;
                while (w0 < 0) w0 += g->dw;
                int64_t best = h0 * g->W + w0;
                float m = -__builtin_inff();
                for (int64_t h = h0; h < h1; h += g->dh)
                    for (int64_t w = w0; w < w1; w += g->dw) {
                        float v = xp[h * g->W + w];
                        if (v > m || v != v) {
                            m = v;
                            best = h * g->W + w;
                        }
                    }
                int64_t o = (p * g->OH + oy) * g->OW + ox;
                y[o] = m;
                idx[o] = (int32_t)best;
            }
    }
}

void nb_k_max_pool2d_backward(float *restrict gx, const float *restrict gy,
                              const int32_t *restrict idx, int64_t planes, const nb_pool_geom *g) {
    int64_t L = g->OH * g->OW, P = g->H * g->W;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t o = 0; o < L; o++) gx[p * P + idx[p * L + o]] += gy[p * L + o];
}

/* Window of output (oy, ox) clipped to the input, and its divisor. */
static void avg_window(const nb_pool_geom *g, int64_t oy, int64_t ox, bool include_pad,
                       int64_t div_override, int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1,
                       float *div) {
    int64_t hs = oy * g->sh - g->ph, ws = ox * g->sw - g->pw;
    int64_t he = hs + g->kh, we = ws + g->kw;
    if (he > g->H + g->ph) he = g->H + g->ph;
    if (we > g->W + g->pw) we = g->W + g->pw;
    int64_t pool = (he - hs) * (we - ws);
    if (hs < 0) hs = 0;
    if (ws < 0) ws = 0;
    if (he > g->H) he = g->H;
    if (we > g->W) we = g->W;
    *h0 = hs, *h1 = he, *w0 = ws, *w1 = we;
    *div = (float)(div_override > 0 ? div_override : include_pad ? pool : (he - hs) * (we - ws));
}

void nb_k_avg_pool2d(float *restrict y, const float *restrict x, int64_t planes,
                     const nb_pool_geom *g, bool include_pad, int64_t div_override) {
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * g->H * g->W;
        for (int64_t oy = 0; oy < g->OH; oy++)
            for (int64_t ox = 0; ox < g->OW; ox++) {
                int64_t h0, h1, w0, w1;
                float div;
                avg_window(g, oy, ox, include_pad, div_override, &h0, &h1, &w0, &w1, &div);
                float s = 0.0f;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) s += xp[h * g->W + w];
                y[(p * g->OH + oy) * g->OW + ox] = h0 < h1 && w0 < w1 ? s / div : 0.0f;
            }
    }
}

void nb_k_avg_pool2d_backward(float *restrict gx, const float *restrict gy, int64_t planes,
                              const nb_pool_geom *g, bool include_pad, int64_t div_override) {
    for (int64_t p = 0; p < planes; p++) {
        float *xp = gx + p * g->H * g->W;
        for (int64_t oy = 0; oy < g->OH; oy++)
            for (int64_t ox = 0; ox < g->OW; ox++) {
                int64_t h0, h1, w0, w1;
                float div;
                avg_window(g, oy, ox, include_pad, div_override, &h0, &h1, &w0, &w1, &div);
                float v = gy[(p * g->OH + oy) * g->OW + ox] / div;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) xp[h * g->W + w] += v;
            }
    }
}

static int64_t start_index(int64_t a, int64_t b, int64_t c) { return (a * c) / b; }
static int64_t end_index(int64_t a, int64_t b, int64_t c) { return ((a + 1) * c + b - 1) / b; }

void nb_k_adaptive_avg_pool2d(float *restrict y, const float *restrict x, int64_t planes,
                              const nb_pool_geom *g) {
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * g->H * g->W;
        for (int64_t oy = 0; oy < g->OH; oy++) {
            int64_t h0 = start_index(oy, g->OH, g->H), h1 = end_index(oy, g->OH, g->H);
            for (int64_t ox = 0; ox < g->OW; ox++) {
                int64_t w0 = start_index(ox, g->OW, g->W), w1 = end_index(ox, g->OW, g->W);
                float s = 0.0f;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) s += xp[h * g->W + w];
                y[(p * g->OH + oy) * g->OW + ox] = s / (float)((h1 - h0) * (w1 - w0));
            }
        }
    }
}

void nb_k_adaptive_avg_pool2d_backward(float *restrict gx, const float *restrict gy,
                                       int64_t planes, const nb_pool_geom *g) {
    for (int64_t p = 0; p < planes; p++) {
        float *xp = gx + p * g->H * g->W;
        for (int64_t oy = 0; oy < g->OH; oy++) {
            int64_t h0 = start_index(oy, g->OH, g->H), h1 = end_index(oy, g->OH, g->H);
            for (int64_t ox = 0; ox < g->OW; ox++) {
                int64_t w0 = start_index(ox, g->OW, g->W), w1 = end_index(ox, g->OW, g->W);
                float v = gy[(p * g->OH + oy) * g->OW + ox] / (float)((h1 - h0) * (w1 - w0));
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) xp[h * g->W + w] += v;
            }
        }
    }
}
