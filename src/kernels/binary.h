/* binary.h - add/sub/mul/div with PyTorch broadcasting, forward and backward.
 *
 * A broadcast plan drops the size-1 dims of the output and merges neighbouring dims that both
 * operands step through alike, so that same-shape operands become one flat loop and
 * [N, C] op [C] becomes N rows of one contiguous loop. The innermost dim of the plan is the
 * vectorised loop; the others are walked with an odometer. */
#ifndef NABLA_K_BINARY_H
#define NABLA_K_BINARY_H
#include <stdint.h>

typedef enum nb_k_binop { NB_K_ADD, NB_K_SUB, NB_K_MUL, NB_K_DIV } nb_k_binop;

typedef struct nb_k_bcast {
    int ndim;              /* collapsed rank (0: a single element) */
    int64_t shape[8];      /* collapsed output shape */
    int64_t sa[8], sb[8];  /* element strides of a and b per collapsed dim (0: broadcast) */
} nb_k_bcast;

/* Plan for out[ndim] = a[na] op b[nb] (shapes right-aligned; they must broadcast to out). */
void nb_k_bcast_plan(nb_k_bcast *p, int ndim, const int64_t *out, int na, const int64_t *a,
                     int nb, const int64_t *b);
/* y = a op b over the plan. */
void nb_k_binary(nb_k_binop op, const nb_k_bcast *p, float *y, const float *a, const float *b);
/* Gradient of the operand `which` (0: a, 1: b) from gy, summed over its broadcast dims:
 * gx = beta*gx + reduce(gy * d(a op b)/d operand). y is the forward output (used by div). */
void nb_k_binary_grad(nb_k_binop op, int which, const nb_k_bcast *p, float *gx, float beta,
                      const float *gy, const float *a, const float *b, const float *y);

#endif
