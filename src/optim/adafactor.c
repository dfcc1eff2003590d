/* adafactor.c - torch.optim.Adafactor as PyTorch 2.5 defines it (Shazeer & Stern, with
 * PyTorch's use of lr and eps1), single-tensor path.
 *
 *   g = maximize ? -g : g;  t += 1;  w = t^beta2_decay (= 1 - beta2_t)
 *   rho = min(lr, 1/sqrt(t));  alpha = max(eps2, RMS(p)) rho;  wd: p *= 1 - lr wd
 *   dim >= 2 (factored over the last two dims, R rows x C columns):
 *     row = lerp(row, mean_j g^2, w)  [.., R, 1];  col = lerp(col, mean_i g^2, w)  [.., 1, C]
 *     v = row col / max(mean_i row, eps1)
 *   else: v = lerp(v, g^2, w)
 *   u = g / sqrt(max(v, eps1^2));  p -= alpha / max(1, RMS(u) / d) u
 * eps1 None (NAN here) is float32's machine epsilon. Means of g^2 are computed as PyTorch does,
 * through a norm: (||g||_2)^2 / count, rounded to float32 at each step.
 * Norms and means are computed in float32 in the order of PyTorch's kernels.
 * The update is written to the optimizer's workspace first (its norm scales it), then applied:
 * 5 vectorised passes per tensor (|p|, row statistics, column statistics and u, |u|,
 * p += a u), each split across the pool without changing a bit: by elements, rows or columns,
 * and the two norms by fixed chunks of 8192 elements (PyTorch's order within each chunk, the
 * chunks' sums added in order: PyTorch's order outright up to 8192 elements). */
#include <float.h>
#include <math.h>
#include "optimizer.h"

/* torch.lerp on float32 (weight cast to float; the two-sided form PyTorch uses). */
static inline float lerpf(float a, float b, float w) {
    return fabsf(w) < 0.5f ? fmaf(w, b - a, a) : fmaf(-(b - a), 1.0f - w, b);
}

/* u = g / sqrt(max(v, eps1^2)) as var_estimate.clamp_(min=eps1^2).rsqrt_().mul_(g) */
static inline float update(float g, float v, float eps_sq) {
    return 1.0f / sqrtf(v < eps_sq ? eps_sq : v) * g;
}

/* Vector (or 0-d) parameter: v = lerp(v, g^2, w) and the update u. */
NB_OPTIM_CLONES
static void vec_update(const float *restrict g, float *restrict v, float *restrict u, int64_t n,
                       float sign, float w, float eps_sq) {
    for (int64_t i = 0; i < n; i++) {
        float gi = sign * g[i];
        float vi = lerpf(v[i], gi * gi, w);
        v[i] = vi;
        u[i] = update(gi, vi, eps_sq);
    }
}

/* Statistics of a factored slice [R, C]: row and column means of g^2 through their norms, as
 * PyTorch computes them, folded into row and col with lerp. Rows [r0, r1) of the row means;
 * columns [j0, j1) of the column means (each column summed over the rows in order, so a split
 * by columns changes no bit). */
static void row_stats(const float *g, float *row, int64_t C, int64_t r0, int64_t r1, float w) {
    for (int64_t r = r0; r < r1; r++) {
        float nrm = nb__norm2(g + r * C, C);
        row[r] = lerpf(row[r], nrm * nrm / (float)C, w);
    }
}

NB_OPTIM_CLONES
static void col_stats(const float *restrict g, float *restrict col, float *restrict colacc, int64_t R,
                      int64_t C, int64_t j0, int64_t j1, float w) {
    for (int64_t j = j0; j < j1; j++) colacc[j] = 0.0f;
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = j0; j < j1; j++) colacc[j] = fmaf(g[r * C + j], g[r * C + j], colacc[j]);
    for (int64_t j = j0; j < j1; j++) {
        float nrm = sqrtf(colacc[j]);
        col[j] = lerpf(col[j], nrm * nrm / (float)R, w);
    }
}

/* Row r of a factored slice: u = g / sqrt(max(row col / mean, eps1^2)). */
NB_OPTIM_CLONES
static void row_update(const float *restrict g, const float *restrict col, float *restrict u,
                       int64_t C, float sign, float row, float rmean, float eps_sq) {
    for (int64_t j = 0; j < C; j++) u[j] = update(sign * g[j], row * col[j] / rmean, eps_sq);
}

NB_OPTIM_CLONES
static void apply(float *restrict p, const float *restrict u, int64_t n, float decay, float neg_step) {
    for (int64_t i = 0; i < n; i++) p[i] = fmaf(u[i], neg_step, p[i] * decay);
}

/* mean_i row_var clamped to eps1 (torch: row_var.mean(dim=-2).clamp_(min=eps1)) */
static float row_mean(const float *rb, int64_t R, float eps1) {
    float m = 0.0f;
    for (int64_t r = 0; r < R; r++) m += rb[r];
    m /= (float)R;
    return m < eps1 ? eps1 : m;
}

typedef struct adafactor_coef {
    double lr, beta2_decay, eps2, dclip;
    float sign, eps1, eps_sq, decay;
} adafactor_coef;

static void adafactor_group(const nb_group *g, void *coef) {
    double lr = nb__g(g, "lr"), eps1 = nb__ge(g, "eps", 0), wd = nb__g(g, "weight_decay");
    if (isnan(eps1)) eps1 = FLT_EPSILON;
    *(adafactor_coef *)coef = (adafactor_coef){lr, nb__g(g, "beta2_decay"), nb__ge(g, "eps", 1), nb__g(g, "d"),
                                               nb__gb(g, "maximize") ? -1.0f : 1.0f, (float)eps1,
                                               (float)(eps1 * eps1), wd != 0 ? (float)(1.0 - lr * wd) : 1.0f};
}

/* One step's passes over a tensor, each split across the pool by elements, rows or columns
 * (none changes a bit). */
typedef struct ada_job {
    const adafactor_coef *c;
    const float *g;
    float *p, *u, *v, *row, *col, *colacc;
    int64_t R, C;
    float w, rmean, neg_step;
} ada_job;

static void vec_part(void *ctx, int64_t b, int64_t e) {
    const ada_job *j = ctx;
    vec_update(j->g + b, j->v + b, j->u + b, e - b, j->c->sign, j->w, j->c->eps_sq);
}

static void rows_part(void *ctx, int64_t b, int64_t e) {
    const ada_job *j = ctx;
    row_stats(j->g, j->row, j->C, b, e, j->w);
}

static void cols_part(void *ctx, int64_t b, int64_t e) {
    const ada_job *j = ctx;
    col_stats(j->g, j->col, j->colacc, j->R, j->C, b, e, j->w);
}

static void update_part(void *ctx, int64_t b, int64_t e) {
    const ada_job *j = ctx;
    for (int64_t r = b; r < e; r++)
        row_update(j->g + r * j->C, j->col, j->u + r * j->C, j->C, j->c->sign, j->row[r], j->rmean, j->c->eps_sq);
}

static void apply_part(void *ctx, int64_t b, int64_t e) {
    const ada_job *j = ctx;
    apply(j->p + b, j->u + b, e - b, j->c->decay, j->neg_step);
}

/* grain of a split over rows (or columns) of `len` elements each: ~8K elements a part */
static int64_t grain_of(int64_t len) { return len >= NB_OPTIM_GRAIN ? 1 : NB_OPTIM_GRAIN / (len > 0 ? len : 1); }

/* row_var [.., R, 1] and col_var [.., 1, C] for 2 or more dimensions, else variance. */
static int adafactor_init(nb_optim *o, const nb_group *g, int index) {
    const nb_tensor *p = g->params[index - g->first];
    if (p->ndim < 2) return nb__state_tensor(o, index, "variance", p, 0.0f) ? NB_OK : NB_ENOMEM;
    nb_tensor rt = {.ndim = p->ndim}, ct = {.ndim = p->ndim};
    memcpy(rt.shape, p->shape, sizeof rt.shape);
    memcpy(ct.shape, p->shape, sizeof ct.shape);
    rt.shape[p->ndim - 1] = 1;
    ct.shape[p->ndim - 2] = 1;
    if (!nb__state_tensor(o, index, "row_var", &rt, 0.0f) || !nb__state_tensor(o, index, "col_var", &ct, 0.0f))
        return NB_ENOMEM;
    return NB_OK;
}

static int adafactor_tensor(nb_optim *o, const nb_optim_slot *s) {
    const adafactor_coef *c = s->coef;
    const nb_tensor *p = s->param;
    bool factored = p->ndim > 1;
    int64_t C = factored ? p->shape[p->ndim - 1] : 0, R = factored ? p->shape[p->ndim - 2] : 0;
    int64_t RC = R * C, B = factored && RC > 0 ? p->numel / RC : 0;
    double t = s->v[0]->num;
    float w = (float)pow(t, c->beta2_decay);
    double rho = 1.0 / sqrt(t) < c->lr ? 1.0 / sqrt(t) : c->lr;
    double p_rms = nb__norm2_chunked(s->p, p->numel) / sqrt((double)p->numel);
    double alpha = (p_rms > c->eps2 ? p_rms : c->eps2) * rho;
    /* the update u goes to the optimizer's workspace: its norm is needed before applying it */
    float *u = nb__optim_scratch(o, (size_t)(p->numel + C));
    if (!u) return NB_ENOMEM;
    ada_job j = {.c = c, .g = s->g, .p = s->p, .u = u, .v = s->t[3], .R = R, .C = C, .w = w};
    if (!factored) {
        nb__optim_for(p->numel, vec_part, &j);
    } else {
        j.colacc = u + p->numel;
        for (int64_t b = 0; b < B; b++) {
            j.g = s->g + b * R * C;
            j.u = u + b * R * C;
            j.row = s->t[1] + b * R;
            j.col = s->t[2] + b * C;
            nb__parallel_for(R, grain_of(C), rows_part, &j);
            nb__parallel_for(C, grain_of(R), cols_part, &j);
            j.rmean = row_mean(j.row, R, c->eps1);
            nb__parallel_for(R, grain_of(C), update_part, &j);
        }
        j.u = u;
    }
    double u_rms = nb__norm2_chunked(u, p->numel) / (sqrt((double)p->numel) * c->dclip);
    j.neg_step = (float)(-alpha / (u_rms > 1.0 ? u_rms : 1.0));
    nb__optim_for(p->numel, apply_part, &j);
    return NB_OK;
}

static int adafactor_validate(const nb_value *hp, int n) {
    double lr = nb__hp(hp, n, "lr"), b2d = nb__hp(hp, n, "beta2_decay");
    double e1 = nb__hp_elem(hp, n, "eps", 0), e2 = nb__hp_elem(hp, n, "eps", 1);
    double d = nb__hp(hp, n, "d"), wd = nb__hp(hp, n, "weight_decay");
    if (!(0.0 <= lr)) return nb__error(NB_EINVAL, "Learning rate should be >= 0 but is: %s", nb__pyfloat(lr, 0));
    if (!(0.0 >= b2d)) return nb__error(NB_EINVAL, "beta2_decay should be <= 0 but is: %s", nb__pyfloat(b2d, 0));
    if (!isnan(e1) && !(0.0 <= e1))
        return nb__error(NB_EINVAL, "epsilon1 should be >= 0 but is: %s", nb__pyfloat(e1, 0));
    if (!(0.0 <= e2)) return nb__error(NB_EINVAL, "epsilon2 should be >= 0 but is: %s", nb__pyfloat(e2, 0));
    if (!(1.0 <= d)) return nb__error(NB_EINVAL, "Clipping threshold d should be >= 1 but is: %s", nb__pyfloat(d, 0));
    if (!(0.0 <= wd)) return nb__error(NB_EINVAL, "weight_decay should be >= 0 but is: %s", nb__pyfloat(wd, 0));
    return NB_OK;
}

/* row_var [.., R, 1] and col_var [.., 1, C] of a parameter with 2 or more dimensions, variance
 * shaped like one with fewer. */
static int adafactor_check_state(const nb_optim *o, int index, const nb_value *vals, int nv) {
    const nb_tensor *p = nb__optim_param(o, index);
    static const char *names[] = {"row_var", "col_var", "variance"};
    for (int k = 0; k < 3; k++) {
        const nb_value *v = nb__value_cfind(vals, nv, names[k]);
        if (!v) continue;
        bool ok = (k < 2) == (p->ndim > 1) && v->kind == NB_VALUE_TENSOR && v->tensor &&
                  v->tensor->dtype == NB_FLOAT32 && v->tensor->ndim == p->ndim;
        for (int d = 0; ok && d < p->ndim; d++)
            ok = v->tensor->shape[d] == (k < 2 && d == p->ndim - 1 - k ? 1 : p->shape[d]);
        if (!ok)
            return nb__error(NB_ESHAPE, "loaded state dict: state '%s' of parameter %d does not "
                             "fit a parameter of shape %s", names[k], index, nb__shape(p, 0));
    }
    return NB_OK;
}

static const nb_state_spec adafactor_state[] = {NB_SPEC_STEP(NUMBER),
                                                NB_SPEC("row_var", OTHER),
                                                NB_SPEC("col_var", OTHER),
                                                NB_SPEC("variance", OTHER)};

static const nb_value adafactor_defaults[] = {NB_DEF_NUM("lr", 1e-2), NB_DEF_NUM("beta2_decay", -0.8),
                                              NB_DEF_PAIR("eps", NAN, 1e-3), NB_DEF_NUM("d", 1.0),
                                              NB_DEF_NUM("weight_decay", 0.0), NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"maximize", NULL};

const nb_optim_algo nb__adafactor_algo = {
    .name = "Adafactor", .defaults = adafactor_defaults, .ndefaults = NB_COUNT(adafactor_defaults),
    .validate = adafactor_validate, .state_spec = adafactor_state, .nstate_spec = 4,
    .init_state = adafactor_init, .coef_size = sizeof(adafactor_coef), .group_coef = adafactor_group,
    .update_tensor = adafactor_tensor, .check_state = adafactor_check_state,
    .added = added};

nb_adafactor_opts nb_adafactor_defaults(void) {
    return (nb_adafactor_opts){.lr = 1e-2, .beta2_decay = -0.8, .eps1 = NAN, .eps2 = 1e-3,
                               .d = 1.0, .weight_decay = 0.0, .maximize = false};
}

nb_optim *nb_adafactor(nb_tensor *const *params, int n, const nb_adafactor_opts *opts) {
    nb_adafactor_opts o = opts ? *opts : nb_adafactor_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_num("beta2_decay", o.beta2_decay), nb_pair("eps", o.eps1, o.eps2),
                     nb_num("d", o.d), nb_num("weight_decay", o.weight_decay), nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__adafactor_algo, params, n, kw, NB_COUNT(kw));
}
