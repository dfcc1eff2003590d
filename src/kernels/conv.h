/* conv.h - the loops of convolution: im2col / col2im, to run a convolution and both of its
 * backward passes through the GEMM. Planes are row-major [C, H, W]; a 1-D convolution is a
 * 2-D one with H == 1. */
#ifndef NABLA_K_CONV_H
#define NABLA_K_CONV_H
#include <stdbool.h>
#include <stdint.h>

/* Geometry of one group of one sample: C input channels of H x W, a kh x kw kernel with
 * stride, top/left padding and dilation, giving OH x OW outputs. Padding on the bottom/right
 * is implied by OH/OW (it may differ from the top/left one, as padding='same' needs). */
typedef struct nb_conv_geom {
    int64_t C, H, W;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    int64_t OH, OW;
} nb_conv_geom;

/* col[C*kh*kw, OH*OW]: row (c, ky, kx) holds the input pixel that each output position sees
 * through tap (ky, kx) of channel c (0 in the padding). */
void nb_k_im2col(float *col, const float *x, const nb_conv_geom *g);
/* The adjoint: x[C, H, W] += each column entry added back to the pixel it came from. */
void nb_k_col2im(float *x, const float *col, const nb_conv_geom *g);

/* ---- direct stride-1 kernels (conv_direct.c) ----------------------------------------------
 * Planes are flattened with rows of Wp floats; tap t of the kernel reads in[off[t] + i] for
 * output position i. Kernels process positions in whole vectors of 16: n is rounded up to a
 * multiple of 16, so buffers are padded accordingly (and read a little past their end). */
/* False when the build lacks vector extensions (use im2col then). */
bool nb_k_conv_direct_available(void);
/* out[o*os + i] = sum_t w[o*T + t] * in[off[t] + i], o < O, i < n (rounded up to 16). */
void nb_k_conv_direct(float *out, int64_t os, int64_t O, const float *in, const int64_t *off,
                      int64_t T, const float *w, int64_t n);
/* acc[(o*T + t)*16 + lane] += sum_i gy[o*gs + i] * in[off[t] + i] (partial sums per lane). */
void nb_k_conv_direct_dw(float *acc, int64_t O, const float *gy, int64_t gs, const float *in,
                         const int64_t *off, int64_t T, int64_t n);
/* gw[j] = beta*gw[j] + sum of the 16 lanes of acc[j]. */
void nb_k_conv_direct_dw_finish(float *gw, const float *acc, int64_t n, float beta);

/* ---- the same in bfloat16 on Intel AMX tiles (conv_amx.c) ---------------------------------
 * Taps are paired along the kernel row, (c, ky, kx) with (c, ky, kx + 1) (a zero weight when kw
 * is odd), read from a "paired plane" pp[j] = (x[j], x[j + dw]), both halves bfloat16 (low
 * half first). Pairs (forward) and taps (weight gradient) come in nch chunks of R (<= 16) whose
 * offsets in the plane are base[ch] + r stride. Products are bfloat16, sums float32. */
/* True when the bfloat16 products of this process run on AMX (nb_k_bf16_kernel() is "amx"). */
bool nb_k_conv_amx_available(void);
/* pp[j] = xb[j] | xb[j + dw] << 16 for j < n (xb read up to n + dw). */
void nb_k_pair_plane(uint32_t *pp, const uint16_t *xb, int64_t n, int64_t dw);
/* dst[r ldd + j] = bf16(src[r lds + j]) for r < rows, j < n. */
void nb_k_rows_to_bf16(uint16_t *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows, int64_t n);
/* out[o*os + i] = sum over chunks ch and r < R of the pair products of
 * wp[((o / 16) nch + ch) 16 R + (o % 16) R + r] and pp[base[ch] + r stride + i], for o < O
 * rounded up to 16 and i < n rounded up to 16 (weights of rows past O zero; out has those
 * rows). */
void nb_k_conv_amx(float *out, int64_t os, int64_t O, const uint32_t *pp, const int64_t *base,
                   int64_t nch, int64_t R, int64_t stride, const uint32_t *wp, int64_t n);
/* acc[(ch R + r) lda + o] += sum over i < n rounded up to 32 of gy[o*gs + i] *
 * x[base[ch] + r stride + i], for o < O rounded up to 16 (gy, x bfloat16; gy rows read as zero
 * past O, and must be zero from n to n rounded up to 32). */
void nb_k_conv_amx_dw(float *acc, int64_t lda, int64_t O, const uint16_t *gy, int64_t gs,
                      const uint16_t *x, const int64_t *base, int64_t nch, int64_t R, int64_t stride,
                      int64_t n);

#endif
