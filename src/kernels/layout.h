/* layout.h - loops that move elements around: transpose, strided block copies (cat, slice),
 * row selection and gather along dim 0, and their scatter-add backwards. */
#ifndef NABLA_K_LAYOUT_H
#define NABLA_K_LAYOUT_H
#include <stdint.h>

/* y[a, j, b, i, c] = beta*y + x[a, i, b, j, c] for x of shape [A, I, B, J, C]. */
void nb_k_transpose(float *y, const float *x, int64_t A, int64_t I, int64_t B, int64_t J,
                    int64_t C, float beta);
/* dst[r*ds + j] = beta*dst[r*ds + j] + src[r*ss + j] for r < rows, j < cols. */
void nb_k_copy_rows(float *dst, int64_t ds, const float *src, int64_t ss, int64_t rows,
                    int64_t cols, float beta);
/* y[i, :] = x[idx[i], :] for n rows of `row` floats. */
void nb_k_index_rows(float *y, const float *x, const int32_t *idx, int64_t n, int64_t row);
/* gx[idx[i], :] += gy[i, :] (scatter-add; repeated indices add up). */
void nb_k_index_rows_add(float *gx, const float *gy, const int32_t *idx, int64_t n, int64_t row);
/* Gather along dim 0: y[i*R + k] = x[idx[i*R + k]*S + off[k]] for i < n, k < R, where S is
 * the size of one slice of x along dim 0 and off[k] the offset of index position k inside
 * such a slice (off NULL: off[k] = k). */
void nb_k_gather0(float *y, const float *x, const int32_t *idx, int64_t n, int64_t R, int64_t S,
                  const int64_t *off);
/* Its backward: gx[idx[i*R + k]*S + off[k]] += gy[i*R + k]. */
void nb_k_gather0_add(float *gx, const float *gy, const int32_t *idx, int64_t n, int64_t R,
                      int64_t S, const int64_t *off);

#endif
