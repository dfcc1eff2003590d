/* muon.c - torch.optim.Muon (PyTorch 2.9: Jordan et al., "Muon: an optimizer for hidden
 * layers"): SGD momentum whose update is orthogonalised by a Newton-Schulz iteration, for 2-D
 * parameters only (biases and the like go to another optimizer, as PyTorch's docs advise).
 *
 *   buf = lerp(buf, g, 1 - mu);  u = nesterov ? lerp(g, buf, mu) : buf
 *   X = u (transposed when it has more rows than columns);  X /= max(||X||_F, eps)
 *   k times:  A = X X^T;  B = b A + c A A;  X = a X + B X          ((a, b, c) = ns_coefficients)
 *   p *= 1 - lr wd;  p -= lr' X   with lr' = lr sqrt(max(1, rows/cols))        ("original")
 *                                      or lr 0.2 sqrt(max(rows, cols))         ("match_rms_adamw")
 * The products are GEMMs of nabla's kernels (split across the pool, the same bits on any
 * number of threads with the AVX-512 kernel). PyTorch runs the iteration in bfloat16; nabla has
 * no bfloat16 storage yet and runs it in float32, like the reference its goldens come from. */
#include <math.h>
#include <stdio.h>
#include "optimizer.h"
#include "../kernels/kernels.h"

typedef struct muon_coef {
    double lr, wd;
    float mu, one_m_mu, a, b, c, eps;
    int steps;
    bool nesterov, match_rms;
} muon_coef;

/* torch.lerp on float32 (the two-sided form PyTorch uses). */
static inline float lerpf(float a, float b, float w) {
    return fabsf(w) < 0.5f ? fmaf(w, b - a, a) : fmaf(-(b - a), 1.0f - w, b);
}

static void muon_group(const nb_group *g, void *coef) {
    double mu = nb__g(g, "momentum");
    const nb_value *fn = nb__value_cfind(g->hp, g->nhp, "adjust_lr_fn");
    *(muon_coef *)coef = (muon_coef){nb__g(g, "lr"), nb__g(g, "weight_decay"), (float)mu, (float)(1.0 - mu),
                                     (float)nb__ge(g, "ns_coefficients", 0), (float)nb__ge(g, "ns_coefficients", 1),
                                     (float)nb__ge(g, "ns_coefficients", 2), (float)nb__g(g, "eps"),
                                     (int)nb__g(g, "ns_steps"), nb__gb(g, "nesterov"),
                                     fn && fn->kind == NB_VALUE_STRING && !strcmp(fn->str, "match_rms_adamw")};
}

/* The elementwise parts of a step, split across the pool by rows of the [m, k] matrix X (each
 * element computed alone: the same bits on any number of threads). */
typedef struct muon_job {
    const muon_coef *c;
    const float *g;
    float *buf, *u, *x, *y, *p, *A, *AA;
    int64_t rows, cols, k;
    bool tall;
    float scale, decay, neg_lr;
} muon_job;

/* buf = lerp(buf, g, 1 - mu); u = nesterov ? lerp(g, buf, mu) : buf (over elements) */
static void momentum_part(void *ctx, int64_t b, int64_t e) {
    const muon_job *j = ctx;
    for (int64_t i = b; i < e; i++) {
        j->buf[i] = lerpf(j->buf[i], j->g[i], j->c->one_m_mu);
        j->u[i] = j->c->nesterov ? lerpf(j->g[i], j->buf[i], j->c->mu) : j->buf[i];
    }
}

/* X = u or u^T (over rows of X) */
static void gather_part(void *ctx, int64_t b, int64_t e) {
    const muon_job *j = ctx;
    for (int64_t i = b; i < e; i++)
        for (int64_t l = 0; l < j->k; l++) j->x[i * j->k + l] = j->tall ? j->u[l * j->cols + i] : j->u[i * j->k + l];
}

/* X /= norm (over elements) */
static void scale_part(void *ctx, int64_t b, int64_t e) {
    const muon_job *j = ctx;
    for (int64_t i = b; i < e; i++) j->x[i] /= j->scale;
}

/* B = b A + c A A, in A (over elements) */
static void poly_part(void *ctx, int64_t b, int64_t e) {
    const muon_job *j = ctx;
    for (int64_t i = b; i < e; i++) j->A[i] = j->c->b * j->A[i] + j->c->c * j->AA[i];
}

/* X = a X + B X (over elements) */
static void ns_part(void *ctx, int64_t b, int64_t e) {
    const muon_job *j = ctx;
    for (int64_t i = b; i < e; i++) j->x[i] = j->c->a * j->x[i] + j->y[i];
}

/* p = p (1 - lr wd) - lr' X (over rows of p) */
static void apply_part(void *ctx, int64_t b, int64_t e) {
    const muon_job *j = ctx;
    for (int64_t i = b; i < e; i++)
        for (int64_t l = 0; l < j->cols; l++) {
            float xi = j->tall ? j->x[l * j->rows + i] : j->x[i * j->cols + l];
            float *p = &j->p[i * j->cols + l];
            *p = fmaf(xi, j->neg_lr, *p * j->decay);
        }
}

static int muon_tensor(nb_optim *o, const nb_optim_slot *s) {
    const muon_coef *c = s->coef;
    const int64_t rows = s->param->shape[0], cols = s->param->shape[1], n = s->n;
    const bool tall = rows > cols;
    const int64_t m = tall ? cols : rows, k = tall ? rows : cols; /* X is [m, k], m <= k */
    float *w = nb__optim_scratch(o, (size_t)(3 * n + 2 * m * m));
    if (!w) return NB_ENOMEM;
    float *u = w, *x = w + n, *y = w + 2 * n, *A = w + 3 * n, *AA = A + m * m;
    muon_job j = {.c = c, .g = s->g, .buf = s->t[0], .u = u, .x = x, .y = y, .p = s->p, .A = A, .AA = AA,
                  .rows = rows, .cols = cols, .k = k, .tall = tall};
    nb__optim_for(n, momentum_part, &j);
    nb__optim_rows_for(m, k, gather_part, &j);
    float norm = nb__norm2(x, n);
    j.scale = norm < c->eps ? c->eps : norm;
    nb__optim_for(n, scale_part, &j);
    for (int step = 0; step < c->steps; step++) {
        nb_k_gemm(false, true, m, m, k, 1.0f, x, k, x, k, 0.0f, A, m);  /* A = X X^T */
        nb_k_gemm(false, false, m, m, m, 1.0f, A, m, A, m, 0.0f, AA, m); /* A A */
        nb__optim_for(m * m, poly_part, &j);
        nb_k_gemm(false, false, m, k, m, 1.0f, A, m, x, k, 0.0f, y, k); /* B X */
        nb__optim_for(n, ns_part, &j);
    }
    double ratio = c->match_rms ? 0.2 * sqrt((double)(rows > cols ? rows : cols))
                                : sqrt(fmax(1.0, (double)rows / (double)cols));
    j.decay = (float)(1.0 - c->lr * c->wd);
    j.neg_lr = (float)-(c->lr * ratio);
    nb__optim_rows_for(rows, cols, apply_part, &j);
    return NB_OK;
}

static int muon_check_param(const nb_tensor *p) {
    if (p->ndim == 2) return NB_OK;
    char shape[128];
    int k = snprintf(shape, sizeof shape, "torch.Size([");
    for (int d = 0; d < p->ndim && k > 0 && (size_t)k < sizeof shape; d++)
        k += snprintf(shape + k, sizeof shape - (size_t)k, "%s%lld", d ? ", " : "", (long long)p->shape[d]);
    return nb__error(NB_EINVAL, "Muon only supports 2D parameters whereas we found a parameter with size: %s])",
                     shape);
}

static int muon_validate(const nb_value *hp, int n) {
    double lr = nb__hp(hp, n, "lr"), mom = nb__hp(hp, n, "momentum"), wd = nb__hp(hp, n, "weight_decay");
    double steps = nb__hp(hp, n, "ns_steps");
    const nb_value *fn = nb__value_cfind(hp, n, "adjust_lr_fn"), *co = nb__value_cfind(hp, n, "ns_coefficients");
    if (!(0.0 <= lr)) return nb__error(NB_EINVAL, "Learning rate should be >= 0 but is: %s", nb__pyfloat(lr, 0));
    if (!(0.0 <= mom)) return nb__error(NB_EINVAL, "momentum should be >= 0 but is: %s", nb__pyfloat(mom, 0));
    if (!(0.0 <= wd)) return nb__error(NB_EINVAL, "weight decay should be >= 0 but is: %s", nb__pyfloat(wd, 0));
    if (fn && fn->kind != NB_VALUE_NONE &&
        !(fn->kind == NB_VALUE_STRING && (!strcmp(fn->str, "original") || !strcmp(fn->str, "match_rms_adamw"))))
        return nb__error(NB_EINVAL, "Adjust learning rate function %s is not supported",
                         fn->kind == NB_VALUE_STRING ? fn->str : "(not a string)");
    /* PyTorch checks these at the first step; nabla when they are set */
    if (!(steps >= 0 && steps == floor(steps)))
        return nb__error(NB_EINVAL, "Muon: ns_steps must be an integer >= 0, got %s", nb__pyfloat(steps, 0));
    if (steps >= 100) return nb__error(NB_EINVAL, "Number of steps must be less than 100 for computational efficiency");
    if (!co || co->kind != NB_VALUE_LIST || co->len != 3)
        return nb__error(NB_EINVAL, "Coefficients must be a tuple of exactly 3 values");
    return NB_OK;
}

static const nb_state_spec muon_state[] = {NB_SPEC("momentum_buffer", LIKE)};

static const nb_value muon_defaults[] = {
    NB_DEF_NUM("lr", 1e-3), NB_DEF_NUM("weight_decay", 0.1), NB_DEF_NUM("momentum", 0.95),
    NB_DEF_BOOL("nesterov", 1), NB_DEF_TRIPLE("ns_coefficients", 3.4445, -4.7750, 2.0315), NB_DEF_NUM("eps", 1e-7),
    NB_DEF_INT("ns_steps", 5), NB_DEF_NONE("adjust_lr_fn")};

const nb_optim_algo nb__muon_algo = {
    .name = "Muon", .defaults = muon_defaults, .ndefaults = NB_COUNT(muon_defaults), .validate = muon_validate,
    .check_param = muon_check_param, .state_spec = muon_state, .nstate_spec = 1, .coef_size = sizeof(muon_coef),
    .group_coef = muon_group, .update_tensor = muon_tensor};

nb_muon_opts nb_muon_defaults(void) {
    return (nb_muon_opts){.lr = 1e-3, .weight_decay = 0.1, .momentum = 0.95, .nesterov = true,
                          .ns_coefficients = {3.4445, -4.7750, 2.0315}, .eps = 1e-7, .ns_steps = 5,
                          .adjust_lr_fn = NULL};
}

nb_optim *nb_muon(nb_tensor *const *params, int n, const nb_muon_opts *opts) {
    nb_muon_opts o = opts ? *opts : nb_muon_defaults();
    nb_value co = nb_pair("ns_coefficients", o.ns_coefficients[0], o.ns_coefficients[1]);
    co.len = 3;
    co.inl[2] = o.ns_coefficients[2];
    nb_value kw[] = {nb_num("lr", o.lr), nb_num("weight_decay", o.weight_decay), nb_num("momentum", o.momentum),
                     nb_bool("nesterov", o.nesterov), co, nb_num("eps", o.eps), nb_int("ns_steps", o.ns_steps),
                     o.adjust_lr_fn ? nb_str("adjust_lr_fn", o.adjust_lr_fn) : nb_none("adjust_lr_fn")};
    return nb__optim_create(&nb__muon_algo, params, n, kw, NB_COUNT(kw));
}
