/* conv.h - the loops of convolution: im2col / col2im, to run a convolution and both of its
 * backward passes through the GEMM. Planes are row-major [C, H, W]; a 1-D convolution is a
 * 2-D one with H == 1. */
#ifndef NABLA_K_CONV_H
#define NABLA_K_CONV_H
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

#endif
