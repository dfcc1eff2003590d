/* rnn.c - fused time-step loops of RNN, LSTM and GRU, and the vectorisable exp/sigmoid/tanh
 * they use.
 *
 * libm's expf/tanhf are scalar calls (gcc vectorises them only under -ffast-math), and an LSTM
 * step evaluates five of them per hidden unit, so a training step would spend most of its time
 * there. The functions below are branch-free (Cephes-style range reduction and polynomials,
 * a few ulp from the correctly rounded result), so gcc turns every step loop into SIMD code.
 * The loops are also compiled for x86-64-v3 (AVX2+FMA) and picked at load time (GCC only, see
 * NB_FMA_CLONES in core/internal.h). */
#include <math.h>
#include <string.h>
#include "rnn.h"

/* The selects below are plain ternaries; without this gcc keeps them as branches (a compare
 * may raise an FP exception) and vectorises nothing. nabla never reads the FP flags. */
#if !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__AVX2__) && defined(__linux__) && \
    !defined(NB_NO_TARGET_CLONES) && !defined(__clang__)
#define NB_VEC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NB_VEC_CLONES
#endif

/* e^x: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-7 polynomial, 2^n through the
 * exponent bits. The reduction runs on x clamped to [-87.3, 88] (results stay normal floats),
 * with NaN replaced by 0 so that n is always a small integer (converting NaN or a huge float to
 * int is undefined behaviour); then the result is fixed up as expf would give it: NaN stays
 * NaN, above ln(FLT_MAX) it is +inf, below the clamp 0 (e^-87.3 is the smallest normal float,
 * which the selects keep branch-free). */
static inline float k_exp(float x) {
    float c = x > 88.0f ? 88.0f : x;
    c = c < -87.33654f ? -87.33654f : c;
    c = c == c ? c : 0.0f;
    float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = c - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * (r * r) +
              r + 1.0f;
    union { int32_t i; float f; } s = {.i = ((int32_t)n + 127) * (1 << 23)};
    float e = p * s.f;
    e = x > 88.72284f ? INFINITY : e;
    e = x < -87.33654f ? 0.0f : e;
    return x == x ? e : x;
}

static inline float k_sigmoid(float x) { return 1.0f / (1.0f + k_exp(-x)); }

/* tanh: an odd polynomial for |x| < 0.625, 1 - 2 / (e^2|x| + 1) (with x's sign) above. */
static inline float k_tanh(float x) {
    float ax = x < 0.0f ? -x : x, z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float big = 1.0f - 2.0f / (k_exp(2.0f * ax) + 1.0f);
    big = x < 0.0f ? -big : big;
    return ax < 0.625f ? small : big;
}

NB_VEC_CLONES void nb_k_vexp(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = k_exp(x[i]);
}

NB_VEC_CLONES void nb_k_vsigmoid(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = k_sigmoid(x[i]);
}

NB_VEC_CLONES void nb_k_vtanh(float *restrict y, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = k_tanh(x[i]);
}

NB_VEC_CLONES void nb_k_colsum(float *out, const float *x, int64_t rows, int64_t cols, float beta) {
    if (beta == 0.0f) memset(out, 0, sizeof(float) * (size_t)cols);
    for (int64_t i = 0; i < rows; i++) {
        const float *restrict xi = x + i * cols;
        float *restrict o = out;
        for (int64_t j = 0; j < cols; j++) o[j] += xi[j];
    }
}

/* ---- Elman RNN ----------------------------------------------------------------------------- */
static inline void rnn_row(int64_t H, const float *restrict gx, const float *restrict bi,
                           const float *restrict gh, const float *restrict bh, float *restrict h,
                           bool relu) {
    if (relu)
        for (int64_t j = 0; j < H; j++) {
            float p = (gh[j] + bh[j]) + (gx[j] + bi[j]);
            h[j] = p > 0.0f || p != p ? p : 0.0f; /* relu: NaN stays NaN */
        }
    else
        for (int64_t j = 0; j < H; j++) h[j] = k_tanh((gh[j] + bh[j]) + (gx[j] + bi[j]));
}

NB_VEC_CLONES void nb_k_rnn_step(int64_t B, int64_t H, const float *gx, const float *bi,
                                 const float *gh, const float *bh, float *h, int64_t ldh,
                                 bool relu) {
    for (int64_t b = 0; b < B; b++) rnn_row(H, gx + b * H, bi, gh + b * H, bh, h + b * ldh, relu);
}

NB_VEC_CLONES void nb_k_rnn_step_back(int64_t B, int64_t H, const float *h, int64_t ldh,
                                      const float *dy, int64_t ldy, const float *dh, float *dpre,
                                      bool relu) {
    for (int64_t b = 0; b < B; b++) {
        const float *restrict y = h + b * ldh;
        const float *restrict gy = dy + b * ldy, *restrict gh = dh + b * H;
        float *restrict d = dpre + b * H;
        for (int64_t j = 0; j < H; j++) {
            float g = gy[j] + gh[j];
            d[j] = relu ? (y[j] <= 0.0f ? 0.0f : g) : g * (1.0f - y[j] * y[j]);
        }
    }
}

/* ---- LSTM ---------------------------------------------------------------------------------- */
/* Each row is its own function so that gcc sees restrict parameters (it honours those through
 * inlining, unlike block-scope restrict pointers). */
static inline void lstm_row(int64_t H, float *restrict g, const float *restrict bi,
                            const float *restrict gh, const float *restrict bh,
                            const float *restrict cp, float *restrict c, float *restrict tc,
                            float *restrict h) {
    /* the row (4H floats) stays in L1 between the gate loops and the update */
    for (int64_t j = 0; j < 2 * H; j++) /* i, f */
        g[j] = k_sigmoid((gh[j] + bh[j]) + (g[j] + bi[j]));
    for (int64_t j = 2 * H; j < 3 * H; j++) g[j] = k_tanh((gh[j] + bh[j]) + (g[j] + bi[j]));
    for (int64_t j = 3 * H; j < 4 * H; j++) g[j] = k_sigmoid((gh[j] + bh[j]) + (g[j] + bi[j]));
    for (int64_t j = 0; j < H; j++) {
        c[j] = g[H + j] * cp[j] + g[j] * g[2 * H + j];
        tc[j] = k_tanh(c[j]);
        h[j] = g[3 * H + j] * tc[j];
    }
}

NB_VEC_CLONES void nb_k_lstm_step(int64_t B, int64_t H, float *gates, const float *bi,
                                  const float *gh, const float *bh, const float *c_prev, float *c,
                                  float *tc, float *h, int64_t ldh) {
    for (int64_t b = 0; b < B; b++)
        lstm_row(H, gates + b * 4 * H, bi, gh + b * 4 * H, bh, c_prev + b * H, c + b * H,
                 tc + b * H, h + b * ldh);
}

static inline void lstm_row_back(int64_t H, const float *restrict g, const float *restrict cp,
                                 const float *restrict tc, const float *restrict dy,
                                 const float *restrict dh, float *restrict dc,
                                 float *restrict dg) {
    for (int64_t j = 0; j < H; j++) {
        float i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j], t = tc[j];
        float dhy = dy[j] + dh[j];
        float dcy = dc[j] + dhy * o * (1.0f - t * t);
        dg[j] = dcy * gg * i * (1.0f - i);
        dg[H + j] = dcy * cp[j] * f * (1.0f - f);
        dg[2 * H + j] = dcy * i * (1.0f - gg * gg);
        dg[3 * H + j] = dhy * t * o * (1.0f - o);
        dc[j] = dcy * f;
    }
}

NB_VEC_CLONES void nb_k_lstm_step_back(int64_t B, int64_t H, const float *gates,
                                       const float *c_prev, const float *tc, const float *dy,
                                       int64_t ldy, const float *dh, float *dc, float *dgates) {
    for (int64_t b = 0; b < B; b++)
        lstm_row_back(H, gates + b * 4 * H, c_prev + b * H, tc + b * H, dy + b * ldy, dh + b * H,
                      dc + b * H, dgates + b * 4 * H);
}

/* ---- GRU ----------------------------------------------------------------------------------- */
static inline void gru_row(int64_t H, float *restrict gx, const float *restrict bi,
                           const float *restrict gh, const float *restrict bh,
                           const float *restrict hp, float *restrict h) {
    for (int64_t j = 0; j < 2 * H; j++) /* r, z */
        gx[j] = k_sigmoid((gh[j] + bh[j]) + (gx[j] + bi[j]));
    for (int64_t j = 0; j < H; j++) {
        float n = k_tanh((gx[2 * H + j] + bi[2 * H + j]) + (gh[2 * H + j] + bh[2 * H + j]) * gx[j]);
        gx[2 * H + j] = n;
        h[j] = (hp[j] - n) * gx[H + j] + n; /* PyTorch: (hx - n) * z + n */
    }
}

NB_VEC_CLONES void nb_k_gru_step(int64_t B, int64_t H, float *gx, const float *bi, const float *gh,
                                 const float *bh, const float *h_prev, int64_t ldhp, float *h,
                                 int64_t ldh) {
    for (int64_t b = 0; b < B; b++)
        gru_row(H, gx + b * 3 * H, bi, gh + b * 3 * H, bh, h_prev + b * ldhp, h + b * ldh);
}

static inline void gru_row_back(int64_t H, const float *restrict g, const float *restrict gh,
                                const float *restrict bh, const float *restrict hp,
                                const float *restrict dy, float *restrict dh,
                                float *restrict dgx, float *restrict dgh) {
    for (int64_t j = 0; j < H; j++) {
        float r = g[j], z = g[H + j], n = g[2 * H + j];
        float dhy = dh[j] + dy[j];
        float dnp = dhy * (1.0f - z) * (1.0f - n * n);
        float dzp = dhy * (hp[j] - n) * z * (1.0f - z);
        float drp = dnp * (gh[2 * H + j] + bh[2 * H + j]) * r * (1.0f - r);
        dgx[j] = dgh[j] = drp;
        dgx[H + j] = dgh[H + j] = dzp;
        dgx[2 * H + j] = dnp;
        dgh[2 * H + j] = dnp * r;
        dh[j] = dhy * z;
    }
}

NB_VEC_CLONES void nb_k_gru_step_back(int64_t B, int64_t H, const float *gates, const float *gh,
                                      const float *bh, const float *h_prev, int64_t ldhp,
                                      const float *dy, int64_t ldy, float *dh, float *dgx,
                                      float *dgh) {
    for (int64_t b = 0; b < B; b++)
        gru_row_back(H, gates + b * 3 * H, gh + b * 3 * H, bh, h_prev + b * ldhp, dy + b * ldy,
                     dh + b * H, dgx + b * 3 * H, dgh + b * 3 * H);
}
