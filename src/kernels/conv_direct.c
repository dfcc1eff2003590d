/* conv_direct.c - stride-1 convolution without im2col, on the "wide" grid.
 *
 * The input plane is zero-padded to rows of Wp = OW + dw (kw - 1) floats and flattened. Output
 * position i = oy Wp + ox then reads tap (c, ky, kx) at in[c cs + ky dh Wp + kx dw + i] for
 * every i alike: a convolution becomes a sum of shifted, contiguous vector FMAs (the columns
 * ox >= OW are computed too and thrown away). Registers hold a block of output channels times
 * 32 positions; each input vector loaded feeds every channel of the block.
 *
 * Vectors are GCC/Clang vector extensions of 16 floats; on x86-64 Linux each kernel is also
 * compiled for AVX-512 and AVX2 and chosen at load time. Without the extensions
 * nb_k_conv_direct_available() is false and the op uses im2col. */
#include "conv.h"
#include "simd.h"

#if defined(__GNUC__)

/* a += w * x as one fused multiply-add where the CPU has it (ISO C mode keeps them apart). */
#if !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif
#define CLONES NB_SIMD_CLONES
#define INLINE NB_ALWAYS_INLINE

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias));
#define LD(p) (*(const v16u *)(const void *)(p))
#define ST(p, v) (*(v16u *)(void *)(p) = (v))

bool nb_k_conv_direct_available(void) { return true; }

/* out[b*os + i] = sum_t w[b*ws + t] in[off[t] + i] for b < OB, i < n (rounded up to 16). */
#define DEF_FWD(OB)                                                                           \
    INLINE void fwd_##OB(float *out, int64_t os, const float *in, const int64_t *off,         \
                         int64_t T, const float *w, int64_t ws, int64_t n) {                  \
        int64_t i0 = 0;                                                                       \
        for (; i0 + 16 < n; i0 += 32) {                                                       \
            v16 a0[OB], a1[OB];                                                               \
            for (int b = 0; b < OB; b++) a0[b] = a1[b] = (v16){0};                            \
            for (int64_t t = 0; t < T; t++) {                                                 \
                const float *p = in + off[t] + i0;                                            \
                v16 x0 = LD(p), x1 = LD(p + 16);                                              \
                _Pragma("GCC unroll 8") for (int b = 0; b < OB; b++) {                        \
                    float wv = w[b * ws + t];                                                 \
                    a0[b] += wv * x0;                                                         \
                    a1[b] += wv * x1;                                                         \
                }                                                                             \
            }                                                                                 \
            for (int b = 0; b < OB; b++) {                                                    \
                ST(out + b * os + i0, a0[b]);                                                 \
                ST(out + b * os + i0 + 16, a1[b]);                                            \
            }                                                                                 \
        }                                                                                     \
        if (i0 < n) {                                                                         \
            v16 a0[OB];                                                                       \
            for (int b = 0; b < OB; b++) a0[b] = (v16){0};                                    \
            for (int64_t t = 0; t < T; t++) {                                                 \
                v16 x0 = LD(in + off[t] + i0);                                                \
                _Pragma("GCC unroll 8") for (int b = 0; b < OB; b++) a0[b] += w[b * ws + t] * x0; \
            }                                                                                 \
            for (int b = 0; b < OB; b++) ST(out + b * os + i0, a0[b]);                        \
        }                                                                                     \
    }
DEF_FWD(8)
DEF_FWD(6)
DEF_FWD(4)
DEF_FWD(2)
DEF_FWD(1)

CLONES void nb_k_conv_direct(float *out, int64_t os, int64_t O, const float *in,
                             const int64_t *off, int64_t T, const float *w, int64_t n) {
    int64_t o = 0;
    for (; o + 8 <= O; o += 8) fwd_8(out + o * os, os, in, off, T, w + o * T, T, n);
    if (O - o == 6) { /* LeNet's 6 channels in one pass */
        fwd_6(out + o * os, os, in, off, T, w + o * T, T, n);
        return;
    }
    for (; o + 4 <= O; o += 4) fwd_4(out + o * os, os, in, off, T, w + o * T, T, n);
    for (; o + 2 <= O; o += 2) fwd_2(out + o * os, os, in, off, T, w + o * T, T, n);
    for (; o < O; o++) fwd_1(out + o * os, os, in, off, T, w + o * T, T, n);
}

/* acc[(b*T + t)*16 + lane] += sum over i of gy[b*gs + i] in[off[t] + i], lanes = i mod 16. */
#define DEF_DW(OB, TB)                                                                        \
    INLINE void dw_##OB##_##TB(float *acc, int64_t T, const float *gy, int64_t gs,            \
                               const float *in, const int64_t *off, int64_t n) {              \
        v16 a[OB][TB];                                                                        \
        for (int b = 0; b < OB; b++)                                                          \
            for (int k = 0; k < TB; k++) a[b][k] = LD(acc + (b * T + k) * 16);                \
        for (int64_t i = 0; i < n; i += 16) {                                                 \
            v16 g[OB];                                                                        \
            for (int b = 0; b < OB; b++) g[b] = LD(gy + b * gs + i);                          \
            _Pragma("GCC unroll 4") for (int k = 0; k < TB; k++) {                            \
                v16 x = LD(in + off[k] + i);                                                  \
                _Pragma("GCC unroll 4") for (int b = 0; b < OB; b++) a[b][k] += g[b] * x;     \
            }                                                                                 \
        }                                                                                     \
        for (int b = 0; b < OB; b++)                                                          \
            for (int k = 0; k < TB; k++) ST(acc + (b * T + k) * 16, a[b][k]);                 \
    }
DEF_DW(4, 4)
DEF_DW(4, 1)
DEF_DW(1, 4)
DEF_DW(1, 1)

CLONES void nb_k_conv_direct_dw(float *acc, int64_t O, const float *gy, int64_t gs,
                                const float *in, const int64_t *off, int64_t T, int64_t n) {
    int64_t o = 0;
    for (; o + 4 <= O; o += 4) {
        int64_t t = 0;
        for (; t + 4 <= T; t += 4) dw_4_4(acc + (o * T + t) * 16, T, gy + o * gs, gs, in, off + t, n);
        for (; t < T; t++) dw_4_1(acc + (o * T + t) * 16, T, gy + o * gs, gs, in, off + t, n);
    }
    for (; o < O; o++) {
        int64_t t = 0;
        for (; t + 4 <= T; t += 4) dw_1_4(acc + (o * T + t) * 16, T, gy + o * gs, gs, in, off + t, n);
        for (; t < T; t++) dw_1_1(acc + (o * T + t) * 16, T, gy + o * gs, gs, in, off + t, n);
    }
}

#else /* no vector extensions: the op falls back to im2col */

bool nb_k_conv_direct_available(void) { return false; }

void nb_k_conv_direct(float *out, int64_t os, int64_t O, const float *in, const int64_t *off,
                      int64_t T, const float *w, int64_t n) {
    int64_t n16 = (n + 15) / 16 * 16;
    for (int64_t o = 0; o < O; o++)
        for (int64_t i = 0; i < n16; i++) {
            float s = 0.0f;
            for (int64_t t = 0; t < T; t++) s += w[o * T + t] * in[off[t] + i];
            out[o * os + i] = s;
        }
}

void nb_k_conv_direct_dw(float *acc, int64_t O, const float *gy, int64_t gs, const float *in,
                         const int64_t *off, int64_t T, int64_t n) {
    for (int64_t o = 0; o < O; o++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t i = 0; i < (n + 15) / 16 * 16; i++)
                acc[(o * T + t) * 16 + i % 16] += gy[o * gs + i] * in[off[t] + i];
}

#endif

void nb_k_conv_direct_dw_finish(float *gw, const float *acc, int64_t n, float beta) {
    for (int64_t j = 0; j < n; j++) {
        float s = 0.0f;
        for (int l = 0; l < 16; l++) s += acc[j * 16 + l];
        gw[j] = beta == 0.0f ? s : gw[j] + s;
    }
}
