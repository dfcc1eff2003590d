/* denormal512.c - see denormal512.h: IEEE float results without the denormal assists. */
#include "denormal512.h"

#if NB_HAVE_DENORMAL512
#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "simd512.h" /* nb_k_lanes16 */

#define TARGET __attribute__((target("avx512f,avx512dq,prfchw")))
#define FLT_NORMAL_MIN_BITS 0x00800000u /* 2^-126 */

/* The parameter's line this many floats ahead is taken writable (PREFETCHW) as the loop goes. In
 * a split step every part has just read the whole weight, so each line is shared with the other
 * core's cache; the stores alone would fetch ownership one at a time (a 784x128 weight's SGD step
 * on 2 threads took 27 us with them alone, 20 us with this). Every AVX-512 CPU has PREFETCHW. */
enum { AHEAD = 256 };

/* The kernels reproduce IEEE's default mode: not where the caller flushes denormals (FTZ, DAZ,
 * as -ffast-math programs do) or rounds otherwise; the plain loops follow any mode. */
bool nb_k_denormal512_available(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && (_mm_getcsr() & 0xe040) == 0;
}

/* The bits of the smallest float >= v > 0 (magnitudes of floats compare as their bits). */
static uint32_t bits_at_least(double v) {
    float f = (float)v;
    if ((double)f < v) f = nextafterf(f, INFINITY);
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* Lanes x with |x| >= safe_bound(s) make x s with neither a denormal operand nor a denormal
 * product: max(2^-126, 2^-126 / |s|). */
static uint32_t safe_bound(float s) {
    double a = fabs((double)s);
    return bits_at_least(a > 0 && a < 1 ? 0x1p-126 / a : 0x1p-126);
}

/* Lanes k of x (the full vector where k is all 16: a plain load is cheaper than a masked one). */
static inline TARGET __m512 load(const float *x, __mmask16 k) {
    return k == 0xffff ? _mm512_loadu_ps(x) : _mm512_maskz_loadu_ps(k, x);
}
static inline TARGET void store(float *x, __mmask16 k, __m512 v) {
    if (k == 0xffff) _mm512_storeu_ps(x, v);
    else _mm512_mask_storeu_ps(x, k, v);
}

/* Lanes with 0 < |x| < the float whose bits are `bound` (magnitudes compare as integers). */
static inline TARGET __mmask16 tiny(__m512 x, uint32_t bound) {
    __m512i a = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff));
    return _mm512_cmplt_epu32_mask(_mm512_sub_epi32(a, _mm512_set1_epi32(1)), _mm512_set1_epi32((int)(bound - 1)));
}

/* round(x s) on the lanes of t, where |x s| < 2^-126 max(1, |s|) (see safe_bound), and 0 on the
 * others, for 0 <= |s| <= 2^100 with |s| >= 2^-100 unless zero (see scale_ok), with no
 * floating-point operation on a denormal. X = |x| 2^149 is exact: a denormal's bits are its
 * multiple of 2^-149, a normal's exponent moves up by 149 (X < 2^123 by the bounds). A result
 * below 2^-126 is the integer round(X |s|) times 2^-149, and that integer is its bit pattern:
 * fmaf(X, |s|, 2^23) rounds X |s| once to an integer (the last place of [2^23, 2^24] is 1), ties
 * to even as IEEE does, and its bits less those of 2^23 are the integer (2^23 itself gives the
 * bits of 2^-126, the right answer). A larger result (possible only when |s| > 1, where the
 * lanes of t are denormal) is X |s| rounded to float, its exponent moved down by 149. */
static inline TARGET __m512 exact_mul(__m512 x, float s, __mmask16 t) {
    __m512i bits = _mm512_castps_si512(x), mag = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
    __mmask16 den = _mm512_cmplt_epu32_mask(mag, _mm512_set1_epi32(FLT_NORMAL_MIN_BITS));
    __m512i up = _mm512_set1_epi32(149 << 23);
    __m512 X = _mm512_maskz_mov_ps(t, _mm512_castsi512_ps(_mm512_add_epi32(mag, up)));
    X = _mm512_mask_cvtepi32_ps(X, (__mmask16)(t & den), mag);
    __m512 as = _mm512_set1_ps(fabsf(s)), two23 = _mm512_set1_ps(0x1p23f);
    __m512i r = _mm512_sub_epi32(_mm512_castps_si512(_mm512_fmadd_ps(X, as, two23)), _mm512_castps_si512(two23));
    if (fabsf(s) > 1.0f) {
        __m512 y = _mm512_mul_ps(X, as);
        r = _mm512_mask_sub_epi32(r, _mm512_cmp_ps_mask(y, two23, _CMP_GE_OQ), _mm512_castps_si512(y), up);
    }
    __m512i sign = _mm512_and_si512(_mm512_xor_si512(bits, _mm512_set1_epi32(signbit(s) ? INT32_MIN : 0)),
                                    _mm512_set1_epi32(INT32_MIN));
    return _mm512_castsi512_ps(_mm512_or_si512(r, sign));
}

/* The multipliers exact_mul takes. */
static bool scale_ok(float s) {
    float a = fabsf(s);
    return a == 0.0f || (a >= 0x1p-100f && a <= 0x1p100f);
}

/* round(x s) on every lane; the lanes in t (see tiny) through exact_mul. */
static inline TARGET __m512 mul(__m512 x, float s, __mmask16 t) {
    __m512 r = _mm512_mul_ps(_mm512_maskz_mov_ps((__mmask16)~t, x), _mm512_set1_ps(s));
    return t ? _mm512_mask_mov_ps(r, t, exact_mul(x, s, t)) : r;
}

/* fmaf(x, s, p) on every lane, s != 0. On a lane of t the product y = x s is tiny (see
 * safe_bound). p + y rounds to p when |y| <= |p| 2^-26 (less than half of p's last place), which
 * holds when |p| >= keep (bits; see keep_bound) or p is infinite or NaN; to round(y) when p is
 * zero; any other lane of t runs on the hardware. */
static inline TARGET __m512 fma_tiny(__m512 x, float s, __m512 p, __mmask16 t, uint32_t keep) {
    __m512 vs = _mm512_set1_ps(s);
    __m512 r = _mm512_fmadd_ps(_mm512_maskz_mov_ps((__mmask16)~t, x), vs, p);
    if (!t) return r;
    __m512i pm = _mm512_and_si512(_mm512_castps_si512(p), _mm512_set1_epi32(0x7fffffff));
    __mmask16 big = _mm512_mask_cmpge_epu32_mask(t, pm, _mm512_set1_epi32((int)keep)); /* inf, NaN too */
    r = _mm512_mask_mov_ps(r, big, p);
    __mmask16 zero = _mm512_mask_cmpeq_epi32_mask(t, pm, _mm512_setzero_si512());
    __mmask16 rest = (__mmask16)(t & ~big & ~zero);
    if (zero) r = _mm512_mask_mov_ps(r, zero, exact_mul(x, s, zero));
    if (rest) r = _mm512_mask_mov_ps(r, rest, _mm512_fmadd_ps(_mm512_maskz_mov_ps(rest, x), vs, p));
    return r;
}

/* For fma_tiny's lanes of x below safe_bound(s): |x s| < 2^-126 max(1, |s|), so |p| >=
 * 2^-100 max(1, |s|) makes x s at most |p| 2^-26. */
static uint32_t keep_bound(float s) {
    double a = fabs((double)s);
    return bits_at_least(0x1p-100 * (a > 1 ? a : 1));
}

/* sign g, exactly: a denormal g changes sign by its sign bit (no multiply). */
static inline TARGET __m512 signed_grad(__m512 g, float sign) {
    __mmask16 t = tiny(g, FLT_NORMAL_MIN_BITS);
    __m512 d = _mm512_mul_ps(_mm512_maskz_mov_ps((__mmask16)~t, g), _mm512_set1_ps(sign));
    if (!t) return d;
    __m512i flip = _mm512_set1_epi32(sign < 0 ? INT32_MIN : 0);
    return _mm512_mask_mov_ps(d, t, _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(g), flip)));
}

/* Runs STEP16(i, k) on lanes k of elements i.. for i = 0, 16, .. < n, taking the parameter p's
 * line AHEAD floats on writable as it goes. */
#define EACH16(p, n, STEP16)                                                                       \
    do {                                                                                           \
        int64_t i = 0;                                                                             \
        for (; i + AHEAD + 16 <= (n); i += 16) {                                                   \
            __builtin_prefetch((p) + i + AHEAD, 1, 3);                                             \
            STEP16(i, 0xffff);                                                                     \
        }                                                                                          \
        for (; i + 16 <= (n); i += 16) STEP16(i, 0xffff);                                          \
        if (i < (n)) STEP16(i, nb_k_lanes16((n) - i));                                             \
    } while (0)

typedef struct sgd_args {
    float sign, wd, mom, one_m_damp, neg_lr;
    uint32_t mom_bound, mom_keep, lr_bound, lr_keep;
} sgd_args;

/* Lanes k of 16 elements; plain (wd 0, no dampening) is the common case, kept free of tests.
 * Nesterov's d + mom buf is fmaf(buf, mom, d): where buf is tiny, d (a zero gradient, mostly)
 * is kept or the product taken exactly, as for p below. */
static inline TARGET __attribute__((always_inline)) void sgd16(float *p, const float *g, float *buf, __mmask16 k,
                                                               const sgd_args *a, const bool plain,
                                                               const bool nesterov) {
    __m512 vp = load(p, k), vb = load(buf, k);
    __m512 d = signed_grad(load(g, k), a->sign);
    if (!plain && a->wd != 0.0f) d = _mm512_fmadd_ps(vp, _mm512_set1_ps(a->wd), d);
    __m512 t = mul(vb, a->mom, tiny(vb, a->mom_bound));
    /* fmaf(d, 1, t) is d + t rounded once: an addition, which takes denormals at full speed */
    vb = plain || a->one_m_damp == 1.0f ? _mm512_add_ps(d, t) : _mm512_fmadd_ps(d, _mm512_set1_ps(a->one_m_damp), t);
    store(buf, k, vb);
    if (nesterov) d = fma_tiny(vb, a->mom, d, tiny(vb, a->mom_bound), a->mom_keep);
    else d = vb;
    store(p, k, fma_tiny(d, a->neg_lr, vp, tiny(d, a->lr_bound), a->lr_keep));
}

static inline TARGET __attribute__((always_inline)) void sgd_loop(float *p, const float *g, float *buf, int64_t n,
                                                                  const sgd_args *a, const bool plain,
                                                                  const bool nesterov) {
#define SGD16(i, k) sgd16(p + (i), g + (i), buf + (i), k, a, plain, nesterov)
    EACH16(p, n, SGD16);
#undef SGD16
}

TARGET bool nb_k_sgd_momentum512(float *p, const float *g, float *buf, int64_t n, float sign, float wd, float mom,
                                 float one_m_damp, float neg_lr, bool nesterov) {
    if (!nb_k_denormal512_available() || mom == 0.0f || neg_lr == 0.0f || !scale_ok(mom) || !scale_ok(neg_lr))
        return false;
    sgd_args a = {sign, wd, mom, one_m_damp, neg_lr, safe_bound(mom), keep_bound(mom), safe_bound(neg_lr),
                  keep_bound(neg_lr)};
    bool plain = wd == 0.0f && one_m_damp == 1.0f;
    if (plain && !nesterov) sgd_loop(p, g, buf, n, &a, true, false);
    else if (plain) sgd_loop(p, g, buf, n, &a, true, true);
    else if (!nesterov) sgd_loop(p, g, buf, n, &a, false, false);
    else sgd_loop(p, g, buf, n, &a, false, true);
    return true;
}

/* q + (s m) / den, the update of the Adam family, where m may be tiny. On the lanes of t (m
 * tiny: |s m| < 2^-126 M with M = max(1, |s|), see safe_bound) the result is q itself when
 * RN(|q| den) >= 2^-97 M, so that |q| den >= 2^-98 M exactly. Then a = RN(s m) has |a| <=
 * 2^-126 M (1 + 2^-23), and r = RN(a / den) has |r| <= |q| 2^-28 (1 + 2^-22) + 2^-150 (the
 * absolute error of a denormal result). If |q| >= 2^-124 that is below |q| 2^-25, less than
 * half of q's last place; if |q| < 2^-124, den > 2^26 M and |a / den| < 2^-150: r is zero. Either
 * way q + r = q. An infinite den keeps q (the quotient is zero); a NaN, zero or negative one, or
 * a zero q, fails the test. The other lanes of t run on the hardware. keep_c is 2^-97 M. */
static inline TARGET __m512 step_tiny(__m512 q, __m512 m, __m512 den, float s, __mmask16 t, float keep_c) {
    __m512 vs = _mm512_set1_ps(s);
    __m512 r = _mm512_add_ps(q, _mm512_div_ps(_mm512_mul_ps(vs, _mm512_maskz_mov_ps((__mmask16)~t, m)), den));
    if (!t) return r;
    __mmask16 keep = _mm512_mask_cmp_ps_mask(t, _mm512_maskz_mul_ps(t, _mm512_abs_ps(q), den), _mm512_set1_ps(keep_c),
                                             _CMP_GE_OQ);
    r = _mm512_mask_mov_ps(r, keep, q);
    __mmask16 rest = (__mmask16)(t & ~keep);
    if (rest) r = _mm512_mask_mov_ps(r, rest, _mm512_add_ps(q, _mm512_div_ps(_mm512_mul_ps(vs, _mm512_maskz_mov_ps(rest, m)), den)));
    return r;
}

static float step_keep_c(float s) { return 0x1p-97f * fmaxf(1.0f, fabsf(s)); }

/* m = fmaf(d, 1 - b1, m b1) and v = fmaf((1 - b2) d, d, v b2), through `mul` (a decaying m passes
 * through the denormals; v rarely does). */
typedef struct moments {
    float b1, one_m_b1, b2, one_m_b2;
    uint32_t b1_bound, b2_bound;
} moments;

static moments moments_of(float b1, float one_m_b1, float b2, float one_m_b2) {
    return (moments){b1, one_m_b1, b2, one_m_b2, safe_bound(b1), safe_bound(b2)};
}

static inline TARGET __m512 first_moment(__m512 m, __m512 d, const moments *w) {
    return _mm512_fmadd_ps(d, _mm512_set1_ps(w->one_m_b1), mul(m, w->b1, tiny(m, w->b1_bound)));
}
static inline TARGET __m512 second_moment(__m512 v, __m512 d, const moments *w) {
    return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(w->one_m_b2), d), d, mul(v, w->b2, tiny(v, w->b2_bound)));
}

/* The new m and v of lanes k (stored back), from the gradient d: the first lines of the Adam
 * family's steps. Returns m; v in *vv. */
static inline TARGET __attribute__((always_inline)) __m512 update_moments(float *m, float *v, __m512 d, __mmask16 k,
                                                                         const moments *w, __m512 *vv) {
    __m512 vm = first_moment(load(m, k), d, w);
    *vv = second_moment(load(v, k), d, w);
    store(m, k, vm);
    store(v, k, *vv);
    return vm;
}

/* The gradient as the update rules take it: sign g, plus wd p when wd != 0. */
static inline TARGET __m512 l2_grad(__m512 p, __m512 g, float sign, float wd) {
    __m512 d = signed_grad(g, sign);
    return wd != 0.0f ? _mm512_fmadd_ps(p, _mm512_set1_ps(wd), d) : d;
}

/* What the Adam family's steps share: p, g, the first moment m and a second one v (Adamax's
 * exp_inf; vmax: AMSGrad's max_exp_avg_sq), the rule's nb_k_*_coef, and the bounds of m's decay
 * and of the step. */
typedef struct moment_args {
    float *p, *m, *v, *vmax;
    const float *g;
    const void *c;
    moments w;
    uint32_t step_bound;
    float keep_c;
} moment_args;

static moment_args moment_args_of(float *p, const float *g, float *m, float *v, const void *c, moments w, float step) {
    return (moment_args){p, m, v, NULL, g, c, w, safe_bound(step), step_keep_c(step)};
}

/* The larger of a and b, a where it is NaN (nb__max_nan). */
static inline TARGET __m512 max_nan(__m512 a, __m512 b) {
    return _mm512_mask_mov_ps(b, _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ) | _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a);
}

/* Adam: den = sqrtf(v) / bc2_sqrt + eps (AMSGrad: of vmax = max(vmax, v));
 * p = p decay + (neg_step_size m) / den. */
static inline TARGET __attribute__((always_inline)) void adam16(const moment_args *a, int64_t i, __mmask16 k,
                                                                const bool amsgrad) {
    const nb_k_adam_coef *c = a->c;
    __m512 vp = load(a->p + i, k), d = l2_grad(vp, load(a->g + i, k), c->sign, c->wd);
    __m512 vv, vm = update_moments(a->m + i, a->v + i, d, k, &a->w, &vv);
    if (amsgrad) {
        vv = max_nan(load(a->vmax + i, k), vv);
        store(a->vmax + i, k, vv);
    }
    __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vv), _mm512_set1_ps(c->bc2_sqrt)), _mm512_set1_ps(c->eps));
    __m512 q = _mm512_mul_ps(vp, _mm512_set1_ps(c->decay));
    store(a->p + i, k, step_tiny(q, vm, den, c->neg_step_size, tiny(vm, a->step_bound), a->keep_c));
}

TARGET bool nb_k_adam512(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                         const nb_k_adam_coef *c) {
    if (!nb_k_denormal512_available() || !scale_ok(c->b1) || !scale_ok(c->b2)) return false;
    moment_args a = moment_args_of(p, g, m, v, c, moments_of(c->b1, c->one_m_b1, c->b2, c->one_m_b2), c->neg_step_size);
    a.vmax = vmax;
#define ADAM16(i, k) adam16(&a, i, k, false)
#define AMSGRAD16(i, k) adam16(&a, i, k, true)
    if (vmax) EACH16(p, n, AMSGRAD16);
    else EACH16(p, n, ADAM16);
#undef ADAM16
#undef AMSGRAD16
    return true;
}

/* Adamax: u = max(u b2, |d| + eps) (NaN kept, as nb__max_nan), p += (neg_clr m) / u. */
static inline TARGET __attribute__((always_inline)) void adamax16(const moment_args *a, int64_t i, __mmask16 k) {
    const nb_k_adamax_coef *c = a->c;
    __m512 vp = load(a->p + i, k), d = l2_grad(vp, load(a->g + i, k), c->sign, c->wd);
    __m512 vm = first_moment(load(a->m + i, k), d, &a->w), vu = load(a->v + i, k);
    __m512 ub = mul(vu, c->b2, tiny(vu, a->w.b2_bound)), e = _mm512_add_ps(_mm512_abs_ps(d), _mm512_set1_ps(c->eps));
    vu = max_nan(ub, e);
    store(a->m + i, k, vm);
    store(a->v + i, k, vu);
    store(a->p + i, k, step_tiny(vp, vm, vu, c->neg_clr, tiny(vm, a->step_bound), a->keep_c));
}

TARGET bool nb_k_adamax512(float *p, const float *g, float *m, float *u, int64_t n, const nb_k_adamax_coef *c) {
    if (!nb_k_denormal512_available() || !scale_ok(c->b1) || !scale_ok(c->b2)) return false;
    moment_args a = moment_args_of(p, g, m, u, c, moments_of(c->b1, c->one_m_b1, c->b2, 0.0f), c->neg_clr);
#define ADAMAX16(i, k) adamax16(&a, i, k)
    EACH16(p, n, ADAMAX16);
#undef ADAMAX16
    return true;
}

/* NAdam: den = sqrtf(v / bc2) + eps;  p = (p decay + (neg_sg d) / den) + (neg_sm m) / den. */
static inline TARGET __attribute__((always_inline)) void nadam16(const moment_args *a, int64_t i, __mmask16 k) {
    const nb_k_nadam_coef *c = a->c;
    __m512 vp = load(a->p + i, k), d = l2_grad(vp, load(a->g + i, k), c->sign, c->wd);
    __m512 vv, vm = update_moments(a->m + i, a->v + i, d, k, &a->w, &vv);
    __m512 den = _mm512_add_ps(_mm512_sqrt_ps(_mm512_div_ps(vv, _mm512_set1_ps(c->bc2))), _mm512_set1_ps(c->eps));
    __m512 q = _mm512_add_ps(_mm512_mul_ps(vp, _mm512_set1_ps(c->decay)),
                             _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(c->neg_sg), d), den));
    store(a->p + i, k, step_tiny(q, vm, den, c->neg_sm, tiny(vm, a->step_bound), a->keep_c));
}

TARGET bool nb_k_nadam512(float *p, const float *g, float *m, float *v, int64_t n, const nb_k_nadam_coef *c) {
    if (!nb_k_denormal512_available() || !scale_ok(c->b1) || !scale_ok(c->b2)) return false;
    moment_args a = moment_args_of(p, g, m, v, c, moments_of(c->b1, c->one_m_b1, c->b2, c->one_m_b2), c->neg_sm);
#define NADAM16(i, k) nadam16(&a, i, k)
    EACH16(p, n, NADAM16);
#undef NADAM16
    return true;
}

/* Adadelta: both running averages decay by rho; delta is zero where the gradient is. */
typedef struct adadelta_args {
    float *p, *sq, *acc;
    const float *g;
    const nb_k_adadelta_coef *c;
    uint32_t rho_bound, lr_bound, lr_keep;
} adadelta_args;

static inline TARGET __attribute__((always_inline)) void adadelta16(const adadelta_args *a, int64_t i, __mmask16 k) {
    const nb_k_adadelta_coef *c = a->c;
    __m512 vp = load(a->p + i, k), d = l2_grad(vp, load(a->g + i, k), c->sign, c->wd);
    __m512 one_m_rho = _mm512_set1_ps(c->one_m_rho), eps = _mm512_set1_ps(c->eps);
    __m512 vs = load(a->sq + i, k), vacc = load(a->acc + i, k);
    vs = _mm512_fmadd_ps(_mm512_mul_ps(one_m_rho, d), d, mul(vs, c->rho, tiny(vs, a->rho_bound)));
    __m512 delta = _mm512_mul_ps(_mm512_div_ps(_mm512_sqrt_ps(_mm512_add_ps(vacc, eps)),
                                               _mm512_sqrt_ps(_mm512_add_ps(vs, eps))), d);
    vacc = _mm512_fmadd_ps(_mm512_mul_ps(one_m_rho, delta), delta, mul(vacc, c->rho, tiny(vacc, a->rho_bound)));
    store(a->sq + i, k, vs);
    store(a->acc + i, k, vacc);
    store(a->p + i, k, fma_tiny(delta, c->neg_lr, vp, tiny(delta, a->lr_bound), a->lr_keep));
}

TARGET bool nb_k_adadelta512(float *p, const float *g, float *sq, float *acc, int64_t n,
                             const nb_k_adadelta_coef *c) {
    if (!nb_k_denormal512_available() || c->neg_lr == 0.0f || !scale_ok(c->rho) || !scale_ok(c->neg_lr)) return false;
    adadelta_args a = {p, sq, acc, g, c, safe_bound(c->rho), safe_bound(c->neg_lr), keep_bound(c->neg_lr)};
#define ADADELTA16(i, k) adadelta16(&a, i, k)
    EACH16(p, n, ADADELTA16);
#undef ADADELTA16
    return true;
}

/* fmaf(-a, a, s), centered RMSprop's variance. Where a is tiny (|a| < 2^-63: a^2 < 2^-126) and
 * |s| >= 2^-100 (infinite or NaN too), a^2 is below half of s's last place (>= 2^-124) and the
 * result is s; the other tiny lanes run on the hardware. */
static inline TARGET __m512 centered_var(__m512 a, __m512 s) {
    __mmask16 t = tiny(a, 0x20000000u); /* 2^-63 */
    __m512 r = _mm512_fnmadd_ps(_mm512_maskz_mov_ps((__mmask16)~t, a), a, s);
    if (!t) return r;
    __m512i sm = _mm512_and_si512(_mm512_castps_si512(s), _mm512_set1_epi32(0x7fffffff));
    __mmask16 keep = _mm512_mask_cmpge_epu32_mask(t, sm, _mm512_set1_epi32(0x0d800000)); /* 2^-100 */
    r = _mm512_mask_mov_ps(r, keep, s);
    __mmask16 rest = (__mmask16)(t & ~keep);
    if (rest) r = _mm512_mask_mov_ps(r, rest, _mm512_fnmadd_ps(_mm512_maskz_mov_ps(rest, a), a, s));
    return r;
}

/* RMSprop: square_avg (and grad_avg, centered) decay by alpha, the momentum buffer by momentum. */
typedef struct rmsprop_args {
    float *p, *sq, *ga, *buf;
    const float *g;
    const nb_k_rmsprop_coef *c;
    uint32_t alpha_bound, mom_bound, lr_bound, lr_keep;
} rmsprop_args;

static inline TARGET __attribute__((always_inline)) void rmsprop16(const rmsprop_args *a, int64_t i, __mmask16 k,
                                                                   const bool centered, const bool momentum) {
    const nb_k_rmsprop_coef *c = a->c;
    __m512 vp = load(a->p + i, k), d = l2_grad(vp, load(a->g + i, k), c->sign, c->wd);
    __m512 one_m_alpha = _mm512_set1_ps(c->one_m_alpha), vs = load(a->sq + i, k);
    vs = _mm512_fmadd_ps(_mm512_mul_ps(one_m_alpha, d), d, mul(vs, c->alpha, tiny(vs, a->alpha_bound)));
    store(a->sq + i, k, vs);
    __m512 var = vs;
    if (centered) {
        __m512 va = load(a->ga + i, k);
        va = _mm512_fmadd_ps(d, one_m_alpha, mul(va, c->alpha, tiny(va, a->alpha_bound)));
        store(a->ga + i, k, va);
        var = centered_var(va, vs);
    }
    __m512 avg = _mm512_add_ps(_mm512_sqrt_ps(var), _mm512_set1_ps(c->eps));
    if (momentum) {
        __m512 vb = load(a->buf + i, k);
        vb = _mm512_add_ps(mul(vb, c->mom, tiny(vb, a->mom_bound)), _mm512_div_ps(d, avg));
        store(a->buf + i, k, vb);
        store(a->p + i, k, fma_tiny(vb, c->neg_lr, vp, tiny(vb, a->lr_bound), a->lr_keep));
    } else {
        store(a->p + i, k, _mm512_add_ps(vp, _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(c->neg_lr), d), avg)));
    }
}

static inline TARGET __attribute__((always_inline)) void rmsprop_loop(const rmsprop_args *a, int64_t n,
                                                                      const bool centered, const bool momentum) {
#define RMSPROP16(i, k) rmsprop16(a, i, k, centered, momentum)
    EACH16(a->p, n, RMSPROP16);
#undef RMSPROP16
}

TARGET bool nb_k_rmsprop512(float *p, const float *g, float *sq, float *ga, float *buf, int64_t n,
                            const nb_k_rmsprop_coef *c) {
    if (!nb_k_denormal512_available() || !scale_ok(c->alpha) ||
        (buf && (c->mom == 0.0f || c->neg_lr == 0.0f || !scale_ok(c->mom) || !scale_ok(c->neg_lr))))
        return false;
    rmsprop_args a = {p, sq, ga, buf, g, c, safe_bound(c->alpha), safe_bound(c->mom), safe_bound(c->neg_lr),
                      keep_bound(c->neg_lr)};
    if (ga && buf) rmsprop_loop(&a, n, true, true);
    else if (ga) rmsprop_loop(&a, n, true, false);
    else if (buf) rmsprop_loop(&a, n, false, true);
    else rmsprop_loop(&a, n, false, false);
    return true;
}

/* RAdam: upd = RN(RN(m / bc1) lr), rectified RN(RN(upd X) rect) with X = RN(RN(1 / (sqrtf(v) +
 * eps)) bc2_sqrt); p = p decay - upd. Lanes with |m| < 2^-100 skip the chain (its first steps
 * would take assists) and keep q = p decay where |q| > 2^27 (K X + E), else 2^27 A: with u =
 * 2^-23 and the absolute error of a denormal result 2^-150 at each rounding, |RN(m / bc1)| <=
 * 2^-100 (1 + u) / bc1 + 2^-150, |RN(. lr)| <= that |lr| (1 + u) + 2^-150 = A, and the rectified
 * update is at most A X |rect| (1 + u)^2 + 2^-150 (|rect| (1 + u) + 1) = K X + E. Then |upd| <
 * |q| 2^-26 (a factor 2 to spare for the rounding of the bound itself), less than half of q's
 * last place (an infinite q stays infinite); an infinite or NaN X fails the test (strictly
 * greater: an infinite q against an infinite X gives NaN). The other such lanes run on the
 * hardware. */
typedef struct radam_args {
    float *p, *m, *v;
    const float *g;
    const nb_k_radam_coef *c;
    moments w;
    float k, e; /* 2^27 K and 2^27 E (2^27 A unrectified), rounded up */
} radam_args;

/* The update of lanes ~skip from m, as the plain rule computes it. */
static inline TARGET __m512 radam_update(const nb_k_radam_coef *c, __m512 m, __m512 x, __mmask16 skip) {
    __m512 upd = _mm512_mul_ps(_mm512_div_ps(_mm512_maskz_mov_ps((__mmask16)~skip, m), _mm512_set1_ps(c->bc1)),
                               _mm512_set1_ps(c->lr));
    return c->rectify ? _mm512_mul_ps(_mm512_mul_ps(upd, x), _mm512_set1_ps(c->rect)) : upd;
}

static inline TARGET __attribute__((always_inline)) void radam16(const radam_args *a, int64_t i, __mmask16 k) {
    const nb_k_radam_coef *c = a->c;
    __m512 vp = load(a->p + i, k), d = l2_grad(vp, load(a->g + i, k), c->sign, c->wd);
    __m512 vv, vm = update_moments(a->m + i, a->v + i, d, k, &a->w, &vv);
    __m512 x = _mm512_setzero_ps();
    if (c->rectify)
        x = _mm512_mul_ps(_mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_sqrt_ps(vv), _mm512_set1_ps(c->eps))),
                          _mm512_set1_ps(c->bc2_sqrt));
    __mmask16 t = tiny(vm, 0x0d800000u); /* 2^-100 */
    __m512 q = _mm512_mul_ps(vp, _mm512_set1_ps(c->decay));
    __m512 r = _mm512_sub_ps(q, radam_update(c, vm, x, t));
    if (t) {
        __m512 bound = c->rectify ? _mm512_fmadd_ps(_mm512_set1_ps(a->k), x, _mm512_set1_ps(a->e)) : _mm512_set1_ps(a->e);
        __mmask16 keep = _mm512_mask_cmp_ps_mask(t, _mm512_abs_ps(q), bound, _CMP_GT_OQ);
        r = _mm512_mask_mov_ps(r, keep, q);
        __mmask16 rest = (__mmask16)(t & ~keep);
        if (rest) r = _mm512_mask_mov_ps(r, rest, _mm512_sub_ps(q, radam_update(c, vm, x, (__mmask16)~rest)));
    }
    store(a->p + i, k, r);
}

/* v rounded up to a float (+inf where it does not fit). */
static float float_at_least(double v) {
    float f = (float)v;
    return (double)f < v ? nextafterf(f, INFINITY) : f;
}

TARGET bool nb_k_radam512(float *p, const float *g, float *m, float *v, int64_t n, const nb_k_radam_coef *c) {
    if (!nb_k_denormal512_available() || !scale_ok(c->b1) || !scale_ok(c->b2) || !(c->bc1 > 0.0f)) return false;
    const double u = 0x1p-23, tiny_err = 0x1p-150, rect = fabs((double)c->rect);
    double A = (0x1p-100 * (1 + u) / c->bc1 + tiny_err) * fabs((double)c->lr) * (1 + u) + tiny_err;
    double K = A * rect * (1 + u) * (1 + u), E = tiny_err * (rect * (1 + u) + 1);
    radam_args a = {p, m, v, g, c, moments_of(c->b1, c->one_m_b1, c->b2, c->one_m_b2),
                    float_at_least(0x1p27 * K), float_at_least(0x1p27 * (c->rectify ? E : A))};
#define RADAM16(i, k) radam16(&a, i, k)
    EACH16(p, n, RADAM16);
#undef RADAM16
    return true;
}
#endif
