/* pool.c - max, average and adaptive average pooling, in PyTorch's CPU order of evaluation
 * (the same window bounds, the same tie and NaN rules, the same divisors). */
#include <string.h>
#include "pool.h"
#include "gemm_avx512.h" /* NB_HAVE_GEMM512: an x86-64 GCC build, AVX-512 chosen at run time */
#if NB_HAVE_GEMM512
#include "simd512.h"
#endif

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

#if NB_HAVE_GEMM512
/* The same 2x2 windows, 16 at a time with AVX-512: a row pair's 32 inputs deinterleaved into
 * the windows' four corners, then the same selects in the same order (first maximum, NaN
 * wins), masked at the row's end. */
#define T512 __attribute__((target("avx512f")))

/* Inputs 2i (even) and 2i + 1 (odd), i < 16, of r (2n of them valid). */
T512 static inline void corners(const float *r, int64_t n, __m512 *even, __m512 *odd) {
    __m512 lo = _mm512_maskz_loadu_ps(nb_k_lanes16(2 * n), r), hi = _mm512_maskz_loadu_ps(nb_k_lanes16(2 * n - 16), r + 16);
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    *even = _mm512_permutex2var_ps(lo, ie, hi);
    *odd = _mm512_permutex2var_ps(lo, io, hi);
}

T512 static void max_pool_2x2_512(float *y, int32_t *idx, const float *x, int64_t planes,
                                  const nb_pool_geom *g) {
    const int32_t W = (int32_t)g->W;
    const __m512i lane2 = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int64_t p = 0; p < planes; p++)
        for (int64_t oy = 0; oy < g->OH; oy++) {
            const float *r0 = x + (p * g->H + 2 * oy) * g->W, *r1 = r0 + g->W;
            float *yr = y + (p * g->OH + oy) * g->OW;
            int32_t *ir = idx + (p * g->OH + oy) * g->OW;
            for (int64_t ox = 0; ox < g->OW; ox += 16) {
                int64_t n = g->OW - ox < 16 ? g->OW - ox : 16;
                __m512 a, b, c, d;
                corners(r0 + 2 * ox, n, &a, &b);
                corners(r1 + 2 * ox, n, &c, &d);
                __m512 m = a;
                __m512i k = _mm512_setzero_si512();
                __mmask16 t = _mm512_cmp_ps_mask(b, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
                m = _mm512_mask_mov_ps(m, t, b);
                k = _mm512_mask_mov_epi32(k, t, _mm512_set1_epi32(1));
                t = _mm512_cmp_ps_mask(c, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(c, c, _CMP_UNORD_Q);
                m = _mm512_mask_mov_ps(m, t, c);
                k = _mm512_mask_mov_epi32(k, t, _mm512_set1_epi32(W));
                t = _mm512_cmp_ps_mask(d, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(d, d, _CMP_UNORD_Q);
                m = _mm512_mask_mov_ps(m, t, d);
                k = _mm512_mask_mov_epi32(k, t, _mm512_set1_epi32(W + 1));
                __m512i at = _mm512_add_epi32(_mm512_set1_epi32((int32_t)(2 * oy) * W + 2 * (int32_t)ox), lane2);
                _mm512_mask_storeu_ps(yr + ox, nb_k_lanes16(n), m);
                _mm512_mask_storeu_epi32(ir + ox, nb_k_lanes16(n), _mm512_add_epi32(at, k));
            }
        }
}

/* gx = (beta 0) or += gy at each window's maximum and 0 elsewhere, a row pair at a time (the
 * windows do not overlap, so this is the scatter gx[idx] += gy); with beta 0 the rows and
 * columns no window covers are zeroed. */
T512 static void max_pool_2x2_backward_512(float *gx, const float *gy, const int32_t *idx,
                                           int64_t planes, const nb_pool_geom *g, float beta) {
    const int32_t W = (int32_t)g->W;
    const __m512i lane2 = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (int64_t p = 0; p < planes; p++) {
        for (int64_t oy = 0; oy < g->OH; oy++) {
            float *r[2] = {gx + (p * g->H + 2 * oy) * g->W, gx + (p * g->H + 2 * oy + 1) * g->W};
            const float *gr = gy + (p * g->OH + oy) * g->OW;
            const int32_t *ir = idx + (p * g->OH + oy) * g->OW;
            for (int64_t ox = 0; ox < g->OW; ox += 16) {
                int64_t n = g->OW - ox < 16 ? g->OW - ox : 16;
                __m512 v = _mm512_maskz_loadu_ps(nb_k_lanes16(n), gr + ox);
                __m512i at = _mm512_add_epi32(_mm512_set1_epi32((int32_t)(2 * oy) * W + 2 * (int32_t)ox), lane2);
                __m512i k = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(nb_k_lanes16(n), ir + ox), at);
                for (int row = 0; row < 2; row++) {
                    __m512 e = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(row * W)), v);
                    __m512 o = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(row * W + 1)), v);
                    __m512 v0 = _mm512_permutex2var_ps(e, lo, o), v1 = _mm512_permutex2var_ps(e, hi, o);
                    float *d = r[row] + 2 * ox;
                    __mmask16 m0 = nb_k_lanes16(2 * n), m1 = nb_k_lanes16(2 * n - 16);
                    if (beta != 0.0f) {
                        v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, d), v0);
                        v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, d + 16), v1);
                    }
                    _mm512_mask_storeu_ps(d, m0, v0);
                    _mm512_mask_storeu_ps(d + 16, m1, v1);
                }
            }
            if (beta == 0.0f) /* an odd last column */
                for (int row = 0; row < 2; row++)
                    for (int64_t w = 2 * g->OW; w < g->W; w++) r[row][w] = 0.0f;
        }
        if (beta == 0.0f) /* an odd last row */
            for (int64_t h = 2 * g->OH; h < g->H; h++)
                for (int64_t w = 0; w < g->W; w++) gx[(p * g->H + h) * g->W + w] = 0.0f;
    }
}
#endif

static bool window_2x2(const nb_pool_geom *g) {
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 &&
           g->dh == 1 && g->dw == 1 && 2 * g->OH <= g->H && 2 * g->OW <= g->W;
}

void nb_k_max_pool2d(float *restrict y, int32_t *restrict idx, const float *restrict x,
                     int64_t planes, const nb_pool_geom *g) {
    if (window_2x2(g)) {
#if NB_HAVE_GEMM512
        if (nb_k_gemm512_available()) {
            max_pool_2x2_512(y, idx, x, planes, g);
            return;
        }
#endif
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
                              const int32_t *restrict idx, int64_t planes, const nb_pool_geom *g,
                              float beta) {
#if NB_HAVE_GEMM512
    if (window_2x2(g) && nb_k_gemm512_available()) {
        max_pool_2x2_backward_512(gx, gy, idx, planes, g, beta);
        return;
    }
#endif
    int64_t L = g->OH * g->OW, P = g->H * g->W;
    if (beta == 0.0f) memset(gx, 0, sizeof(float) * (size_t)(planes * P));
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
