/* denormal512.h - elementwise updates that stay fast when their operands are denormal.
 *
 * On Intel cores (and others) a multiply or fused multiply-add whose input or product is
 * denormal (|x| < 2^-126, not zero) takes a microcode assist: ~35 ns for a 16-lane vector
 * instead of ~1 ns. Training makes such values: a momentum buffer of a weight whose input is
 * rarely non-zero (an edge pixel) decays by 0.9 every step and spends ~150 steps among the
 * denormals on its way to zero. In the 784-128-10 MLP's second epoch the SGD step was half of
 * the training time for that reason (and PyTorch's, which keeps denormals too, slows the same
 * way; Adam's exp_avg decays the same way). Flushing denormals to zero (FTZ/DAZ) would change
 * the numbers; these kernels give the same bits as the plain IEEE arithmetic instead: a product
 * that would take an assist is scaled by 2^149 into the normal range (by integer operations),
 * rounded to its integer multiple of 2^-149 there, and that integer is its bit pattern; where a
 * tiny addend cannot change a larger value, the value is left as the rounding leaves it; the few
 * cases neither covers run on the hardware as before.
 * Compiled on x86-64 with GCC, chosen at run time (AVX-512 F and DQ). Each kernel returns false,
 * touching nothing, where it does not apply (another CPU, another floating-point mode, or a
 * multiplier below 2^-100 or above 2^100 in magnitude): the caller then runs its plain loop. */
#ifndef NABLA_K_DENORMAL512_H
#define NABLA_K_DENORMAL512_H
#include <stdbool.h>
#include <stdint.h>
#include "../core/internal.h" /* NB_NO_TARGET_CLONES (set under clang): no ISA-specific code */

/* Adam's coefficients for one step of one parameter (src/optim/adam.c). */
typedef struct nb_k_adam_coef {
    float sign, wd, decay, b1, one_m_b1, b2, one_m_b2, bc2_sqrt, eps, neg_step_size;
} nb_k_adam_coef;
/* Adamax's coefficients (src/optim/adamax.c). */
typedef struct nb_k_adamax_coef {
    float sign, wd, b1, one_m_b1, b2, eps, neg_clr;
} nb_k_adamax_coef;
/* NAdam's coefficients (src/optim/nadam.c). */
typedef struct nb_k_nadam_coef {
    float sign, wd, decay, b1, one_m_b1, b2, one_m_b2, bc2, eps, neg_sg, neg_sm;
} nb_k_nadam_coef;
/* Adadelta's coefficients (src/optim/adadelta.c). */
typedef struct nb_k_adadelta_coef {
    float sign, wd, rho, one_m_rho, eps, neg_lr;
} nb_k_adadelta_coef;
/* RMSprop's coefficients (src/optim/rmsprop.c). */
typedef struct nb_k_rmsprop_coef {
    float sign, wd, alpha, one_m_alpha, eps, mom, neg_lr;
} nb_k_rmsprop_coef;
/* RAdam's coefficients for one step of one parameter (src/optim/radam.c). */
typedef struct nb_k_radam_coef {
    float sign, wd, decay, b1, one_m_b1, b2, one_m_b2, bc1, lr, bc2_sqrt, eps, rect;
    bool rectify;
} nb_k_radam_coef;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(NB_NO_TARGET_CLONES)
#define NB_HAVE_DENORMAL512 1
/* True if this CPU runs the kernels below and the calling thread's floating-point mode is the
 * default one (round to nearest, denormals kept), whose results they reproduce; the kernels
 * check it themselves. */
bool nb_k_denormal512_available(void);
/* SGD's momentum step over n elements, bit-identical to, for each i,
 *   d = wd != 0 ? fmaf(p, wd, sign g) : sign g
 *   b = fmaf(d, one_m_damp, buf mom);  buf = b;  e = nesterov ? fmaf(b, mom, d) : b
 *   p = fmaf(e, neg_lr, p)
 * sign is +1 or -1. p and buf are updated in place. False (nothing done) unless available and
 * mom and neg_lr are between 2^-100 and 2^100 in magnitude. */
bool nb_k_sgd_momentum512(float *p, const float *g, float *buf, int64_t n, float sign, float wd, float mom,
                          float one_m_damp, float neg_lr, bool nesterov);
/* Adam's step (AdamW's with decay != 1) over n elements, bit-identical to
 *   d = wd != 0 ? fmaf(p, wd, sign g) : sign g;  q = p decay
 *   m = fmaf(d, one_m_b1, m b1);  v = fmaf(one_m_b2 d, d, v b2)
 *   vmax != NULL (amsgrad): vmax = max(vmax, v) (vmax where it is NaN), and vmax for v below
 *   p = q + (neg_step_size m) / (sqrtf(v) / bc2_sqrt + eps)
 * p, m, v and vmax are updated in place. False (nothing done) unless available and b1 and b2
 * are zero or between 2^-100 and 2^100 in magnitude. */
bool nb_k_adam512(float *p, const float *g, float *m, float *v, float *vmax, int64_t n, const nb_k_adam_coef *c);
/* Adamax's step over n elements, bit-identical to
 *   d = wd != 0 ? fmaf(p, wd, sign g) : sign g;  m = fmaf(d, one_m_b1, m b1)
 *   u = max(u b2, |d| + eps) (u b2 where it is NaN);  p = p + (neg_clr m) / u
 * False (nothing done) unless available and b1 and b2 are zero or between 2^-100 and 2^100. */
bool nb_k_adamax512(float *p, const float *g, float *m, float *u, int64_t n, const nb_k_adamax_coef *c);
/* NAdam's step over n elements, bit-identical to
 *   d = wd != 0 ? fmaf(p, wd, sign g) : sign g
 *   m = fmaf(d, one_m_b1, m b1);  v = fmaf(one_m_b2 d, d, v b2);  den = sqrtf(v / bc2) + eps
 *   p = (p decay + (neg_sg d) / den) + (neg_sm m) / den
 * False (nothing done) unless available and b1 and b2 are zero or between 2^-100 and 2^100. */
bool nb_k_nadam512(float *p, const float *g, float *m, float *v, int64_t n, const nb_k_nadam_coef *c);
/* Adadelta's step over n elements, bit-identical to
 *   d = wd != 0 ? fmaf(p, wd, sign g) : sign g;  sq = fmaf(one_m_rho d, d, sq rho)
 *   delta = sqrtf(acc + eps) / sqrtf(sq + eps) d;  acc = fmaf(one_m_rho delta, delta, acc rho)
 *   p = fmaf(delta, neg_lr, p)
 * False (nothing done) unless available, neg_lr is not zero, rho is zero or between 2^-100 and
 * 2^100 and neg_lr between those. */
bool nb_k_adadelta512(float *p, const float *g, float *sq, float *acc, int64_t n, const nb_k_adadelta_coef *c);
/* RMSprop's step over n elements, bit-identical to
 *   d = wd != 0 ? fmaf(p, wd, sign g) : sign g;  sq = fmaf(one_m_alpha d, d, sq alpha)
 *   ga != NULL (centered): ga = fmaf(d, one_m_alpha, ga alpha);  avg = sqrtf(fmaf(-ga, ga, sq)) + eps
 *   else avg = sqrtf(sq) + eps
 *   buf != NULL (momentum): buf = buf mom + d / avg;  p = fmaf(buf, neg_lr, p)
 *   else p = p + (neg_lr d) / avg
 * False (nothing done) unless available, alpha is zero or between 2^-100 and 2^100 and, with a
 * buffer, mom and neg_lr are between those. */
bool nb_k_rmsprop512(float *p, const float *g, float *sq, float *ga, float *buf, int64_t n,
                     const nb_k_rmsprop_coef *c);
/* RAdam's step over n elements, bit-identical to
 *   d = wd != 0 ? fmaf(p, wd, sign g) : sign g
 *   m = fmaf(d, one_m_b1, m b1);  v = fmaf(one_m_b2 d, d, v b2);  upd = m / bc1 lr
 *   rectify: upd = upd ((1 / (sqrtf(v) + eps)) bc2_sqrt) rect
 *   p = p decay - upd
 * False (nothing done) unless available, bc1 > 0 and b1 and b2 are zero or between 2^-100 and
 * 2^100. */
bool nb_k_radam512(float *p, const float *g, float *m, float *v, int64_t n, const nb_k_radam_coef *c);
#else
#define NB_HAVE_DENORMAL512 0
static inline bool nb_k_denormal512_available(void) { return false; }
static inline bool nb_k_sgd_momentum512(float *p, const float *g, float *buf, int64_t n, float sign, float wd,
                                        float mom, float one_m_damp, float neg_lr, bool nesterov) {
    (void)p, (void)g, (void)buf, (void)n, (void)sign, (void)wd, (void)mom, (void)one_m_damp, (void)neg_lr,
        (void)nesterov;
    return false;
}
static inline bool nb_k_adam512(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                                const nb_k_adam_coef *c) {
    (void)p, (void)g, (void)m, (void)v, (void)vmax, (void)n, (void)c;
    return false;
}
static inline bool nb_k_adamax512(float *p, const float *g, float *m, float *u, int64_t n,
                                  const nb_k_adamax_coef *c) {
    (void)p, (void)g, (void)m, (void)u, (void)n, (void)c;
    return false;
}
static inline bool nb_k_nadam512(float *p, const float *g, float *m, float *v, int64_t n, const nb_k_nadam_coef *c) {
    (void)p, (void)g, (void)m, (void)v, (void)n, (void)c;
    return false;
}
static inline bool nb_k_adadelta512(float *p, const float *g, float *sq, float *acc, int64_t n,
                                    const nb_k_adadelta_coef *c) {
    (void)p, (void)g, (void)sq, (void)acc, (void)n, (void)c;
    return false;
}
static inline bool nb_k_rmsprop512(float *p, const float *g, float *sq, float *ga, float *buf, int64_t n,
                                   const nb_k_rmsprop_coef *c) {
    (void)p, (void)g, (void)sq, (void)ga, (void)buf, (void)n, (void)c;
    return false;
}
static inline bool nb_k_radam512(float *p, const float *g, float *m, float *v, int64_t n, const nb_k_radam_coef *c) {
    (void)p, (void)g, (void)m, (void)v, (void)n, (void)c;
    return false;
}
#endif

#endif
