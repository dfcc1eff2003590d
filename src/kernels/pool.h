/* pool.h - pooling loops over planes: x is [planes, H, W], y [planes, OH, OW]. Backward
 * kernels ADD into gx (the op zeroes a fresh gradient first), except max pooling's, which
 * takes the gradient's beta (0: gx is write-only). */
#ifndef NABLA_K_POOL_H
#define NABLA_K_POOL_H
#include <stdbool.h>
#include <stdint.h>

typedef struct nb_pool_geom {
    int64_t H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW;
} nb_pool_geom;

/* y = window maximum; idx = its flat index h*W + w in the plane (first maximum; NaN wins). */
void nb_k_max_pool2d(float *y, int32_t *idx, const float *x, int64_t planes, const nb_pool_geom *g);
/* gx = beta gx + the scatter of gy to idx (beta 0: gx is write-only; every element written). */
void nb_k_max_pool2d_backward(float *gx, const float *gy, const int32_t *idx, int64_t planes,
                              const nb_pool_geom *g, float beta);
/* y = window sum / divisor: divisor_override if > 0, else the window size counted with the
 * padding (count_include_pad) or without it. dilation is ignored. */
void nb_k_avg_pool2d(float *y, const float *x, int64_t planes, const nb_pool_geom *g,
                     bool count_include_pad, int64_t divisor_override);
void nb_k_avg_pool2d_backward(float *gx, const float *gy, int64_t planes, const nb_pool_geom *g,
                              bool count_include_pad, int64_t divisor_override);
/* Adaptive average: output cell (i, j) averages rows [floor(iH/OH), ceil((i+1)H/OH)) and
 * the same for columns (only H, W, OH, OW of g are used). */
void nb_k_adaptive_avg_pool2d(float *y, const float *x, int64_t planes, const nb_pool_geom *g);
void nb_k_adaptive_avg_pool2d_backward(float *gx, const float *gy, int64_t planes,
                                       const nb_pool_geom *g);

#endif
