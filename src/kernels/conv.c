/* conv.c - im2col and col2im. For each tap (c, ky, kx) and output row oy, the input row is
 * fixed and the valid output columns form one range [lo, hi): outside it the padding gives
 * zeros, inside it stride 1 is a contiguous copy. */
#include <string.h>
#include "conv.h"

/* Output columns ox with 0 <= ox*s - p + k <= W - 1 (k: the tap's dilated offset). */
static void valid_cols(int64_t W, int64_t OW, int64_t s, int64_t p, int64_t k, int64_t *lo,
                       int64_t *hi) {
    int64_t a = p - k; /* ox*s >= a */
    int64_t l = a <= 0 ? 0 : (a + s - 1) / s;
    int64_t b = W - 1 + p - k; /* ox*s <= b */
    int64_t h = b < 0 ? 0 : b / s + 1;
    if (h > OW) h = OW;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

void nb_k_im2col(float *restrict col, const float *restrict x, const nb_conv_geom *g) {
    const int64_t L = g->OH * g->OW;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t ky = 0; ky < g->kh; ky++)
            for (int64_t kx = 0; kx < g->kw; kx++) {
                float *row = col + ((c * g->kh + ky) * g->kw + kx) * L;
                int64_t lo, hi, kxo = kx * g->dw;
                valid_cols(g->W, g->OW, g->sw, g->pw, kxo, &lo, &hi);
                for (int64_t oy = 0; oy < g->OH; oy++) {
                    float *dst = row + oy * g->OW;
                    int64_t iy = oy * g->sh - g->ph + ky * g->dh;
                    if (iy < 0 || iy >= g->H) {
                        memset(dst, 0, sizeof(float) * (size_t)g->OW);
                        continue;
                    }
                    const float *src = x + (c * g->H + iy) * g->W; /* src[ox*sw + off] */
                    int64_t off = kxo - g->pw;
                    for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
                    if (g->sw == 1 && hi > lo)
                        memcpy(dst + lo, src + lo + off, sizeof(float) * (size_t)(hi - lo));
                    else
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * g->sw + off];
                    for (int64_t ox = hi; ox < g->OW; ox++) dst[ox] = 0.0f;
                }
            }
}

void nb_k_col2im(float *restrict x, const float *restrict col, const nb_conv_geom *g) {
    const int64_t L = g->OH * g->OW;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t ky = 0; ky < g->kh; ky++)
            for (int64_t kx = 0; kx < g->kw; kx++) {
                const float *row = col + ((c * g->kh + ky) * g->kw + kx) * L;
                int64_t lo, hi, kxo = kx * g->dw;
                valid_cols(g->W, g->OW, g->sw, g->pw, kxo, &lo, &hi);
                for (int64_t oy = 0; oy < g->OH; oy++) {
                    int64_t iy = oy * g->sh - g->ph + ky * g->dh;
                    if (iy < 0 || iy >= g->H) continue;
                    const float *src = row + oy * g->OW;
                    float *dst = x + (c * g->H + iy) * g->W; /* dst[ox*sw + off] */
                    int64_t off = kxo - g->pw;
                    if (g->sw == 1)
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox + off] += src[ox];
                    else
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox * g->sw + off] += src[ox];
                }
            }
}
