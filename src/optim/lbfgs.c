/* lbfgs.c - torch.optim.LBFGS: limited-memory BFGS over all parameters as one flat vector,
 * with an optional strong-Wolfe line search (PyTorch's lbfgs.py, after minFunc).
 *
 * step(closure), up to max_iter iterations:
 *   g = flat grad; first iteration ever: d = -g, H = 1
 *   else y = g - g_prev, s = d t; if y.s > 1e-10: remember (y, s, 1/y.s), H = y.s / y.y
 *        d = two-loop recursion over the history applied to -g, scaled by H
 *   t = lr (first iteration ever: min(1, 1/|g|_1) lr); stop if g.d > -tolerance_change
 *   strong_wolfe: t from the line search; else p += t d and re-evaluate the closure
 *   stop on max_iter, max_eval evaluations, |g|_inf <= tolerance_grad, |d t|_inf or the
 *   change of the loss below tolerance_change.
 *
 * Numbers follow PyTorch's types: the quantities PyTorch keeps as 0-dim float32 tensors (dot
 * products, g.d, ro, H, the line search's interpolated steps) are rounded to float32 after
 * each operation, Python floats (losses, lr) stay double, and mixed operations run in float32
 * as PyTorch's type promotion does (the `sc` scalars below). Dot products sum float32
 * products in double, as torch.dot does here for small vectors.
 *
 * State (under the first parameter, as PyTorch): func_evals, n_iter, d, t, old_dirs, old_stps,
 * ro, H_diag, prev_flat_grad, prev_loss. The history is a ring (hist_start, hist_len) that
 * grows up to history_size rows and is then reused, so a steady state allocates nothing;
 * state_dict unrolls it into PyTorch's oldest-first order ([k, n] tensors, ro [k]). PyTorch's
 * `al` is a scratch buffer here and is not saved. */
#include <math.h>
#include <stdio.h>
#include "optimizer.h"

/* A Python float (f32 false) or a 0-dim float32 tensor (f32 true). */
typedef struct sc {
    double v;
    bool f32;
} sc;

static inline sc py(double v) { return (sc){v, false}; }
static inline sc ft(float v) { return (sc){v, true}; }
static inline bool anyf(sc a, sc b) { return a.f32 || b.f32; }
static inline sc sadd(sc a, sc b) { return anyf(a, b) ? ft((float)a.v + (float)b.v) : py(a.v + b.v); }
static inline sc ssub(sc a, sc b) { return anyf(a, b) ? ft((float)a.v - (float)b.v) : py(a.v - b.v); }
static inline sc smul(sc a, sc b) { return anyf(a, b) ? ft((float)a.v * (float)b.v) : py(a.v * b.v); }
static inline sc sdiv(sc a, sc b) { return anyf(a, b) ? ft((float)a.v / (float)b.v) : py(a.v / b.v); }
static inline bool slt(sc a, sc b) { return anyf(a, b) ? (float)a.v < (float)b.v : a.v < b.v; }
static inline bool sle(sc a, sc b) { return anyf(a, b) ? (float)a.v <= (float)b.v : a.v <= b.v; }
static inline sc sabs(sc a) { return a.f32 ? ft(fabsf((float)a.v)) : py(fabs(a.v)); }
static inline sc smin(sc a, sc b) { return slt(b, a) ? b : a; } /* Python's min(a, b) */
static inline sc smax(sc a, sc b) { return slt(a, b) ? b : a; } /* Python's max(a, b) */

/* ---- flat vectors ------------------------------------------------------------------------
 * torch.dot sums float32 products in double for small vectors (n < 32, where nabla matches it
 * to the bit); longer vectors use 8 lanes (vectorised; PyTorch's BLAS order is not
 * reproducible anyway), and vectors of more than NB_OPTIM_CHUNK elements add such sums of
 * fixed chunks in order, the chunks spread across the pool (nb__optim_reduce: the same bits on
 * any number of threads). Sums and maxima of |x| likewise; elementwise passes are split
 * across the pool too. */
#define LANES 8
#define SMALL 32

NB_OPTIM_CLONES
static double dot_k(const float *a, const float *b, int64_t n) {
    double s = 0;
    int64_t i = 0;
    if (n >= SMALL) {
        double lane[LANES] = {0};
        for (; i + LANES <= n; i += LANES)
            for (int j = 0; j < LANES; j++) lane[j] += (double)(a[i + j] * b[i + j]);
        for (int j = 0; j < LANES; j++) s += lane[j];
    }
    for (; i < n; i++) s += (double)(a[i] * b[i]);
    return s;
}

/* (g - g_prev) . (d t), without forming y and s */
NB_OPTIM_CLONES
static double dot_ys_k(const float *g, const float *pg, const float *d, float t, int64_t n) {
    double s = 0;
    int64_t i = 0;
    if (n >= SMALL) {
        double lane[LANES] = {0};
        for (; i + LANES <= n; i += LANES)
            for (int j = 0; j < LANES; j++)
                lane[j] += (double)((g[i + j] - pg[i + j]) * (d[i + j] * t));
        for (int j = 0; j < LANES; j++) s += lane[j];
    }
    for (; i < n; i++) s += (double)((g[i] - pg[i]) * (d[i] * t));
    return s;
}

/* d += a x (d.add_(x, alpha=a)) */
NB_OPTIM_CLONES
static void axpy_k(float *restrict d, const float *restrict x, float a, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = fmaf(x[i], a, d[i]);
}

NB_OPTIM_CLONES
static double abs_sum_k(const float *x, int64_t n) {
    double s = 0;
    int64_t i = 0;
    if (n >= SMALL) {
        double lane[LANES] = {0};
        for (; i + LANES <= n; i += LANES)
            for (int j = 0; j < LANES; j++) lane[j] += fabsf(x[i + j]);
        for (int j = 0; j < LANES; j++) s += lane[j];
    }
    for (; i < n; i++) s += fabsf(x[i]);
    return s;
}

/* The vectors of one pass, split across the pool. */
typedef struct vjob {
    float *d, *d2;
    const float *a, *b, *c;
    float t;
} vjob;

static double dot_part(void *ctx, int64_t b, int64_t e) {
    const vjob *j = ctx;
    return dot_k(j->a + b, j->b + b, e - b);
}

static double dot_ys_part(void *ctx, int64_t b, int64_t e) {
    const vjob *j = ctx;
    return dot_ys_k(j->a + b, j->b + b, j->c + b, j->t, e - b);
}

static double abs_sum_part(void *ctx, int64_t b, int64_t e) {
    const vjob *j = ctx;
    return abs_sum_k(j->a + b, e - b);
}

static float reduce(int64_t n, nb__reduce_fn fn, const vjob *j) {
    double part[NB_OPTIM_MAX_CHUNKS];
    int k = nb__optim_reduce(n, fn, (void *)j, part);
    double s = part[0];
    for (int c = 1; c < k; c++) s += part[c];
    return (float)s;
}

static float dot(const float *a, const float *b, int64_t n) { return reduce(n, dot_part, &(vjob){.a = a, .b = b}); }

static float dot_ys(const float *g, const float *pg, const float *d, float t, int64_t n) {
    return reduce(n, dot_ys_part, &(vjob){.a = g, .b = pg, .c = d, .t = t});
}

static float abs_sum(const float *x, int64_t n) { return reduce(n, abs_sum_part, &(vjob){.a = x}); }

static void axpy_part(void *ctx, int64_t b, int64_t e) {
    const vjob *j = ctx;
    axpy_k(j->d + b, j->a + b, j->t, e - b);
}

static void axpy(float *d, const float *x, float a, int64_t n) {
    nb__optim_for(n, axpy_part, &(vjob){.d = d, .a = x, .t = a});
}

/* d = t a (t = -1: d = -a); d may be a */
NB_OPTIM_CLONES
static void scale_k(float *d, const float *a, float t, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = a[i] * t;
}

static void scale_part(void *ctx, int64_t b, int64_t e) {
    const vjob *j = ctx;
    scale_k(j->d + b, j->a + b, j->t, e - b);
}

static void scale(float *d, const float *a, float t, int64_t n) {
    nb__optim_for(n, scale_part, &(vjob){.d = d, .a = a, .t = t});
}

static void copy_part(void *ctx, int64_t b, int64_t e) {
    const vjob *j = ctx;
    memcpy(j->d + b, j->a + b, sizeof(float) * (size_t)(e - b));
}

static void copy(float *d, const float *a, int64_t n) { nb__optim_for(n, copy_part, &(vjob){.d = d, .a = a}); }

/* y = g - g_prev, s = d t */
NB_OPTIM_CLONES
static void ys_k(float *restrict y, float *restrict s, const float *restrict g, const float *restrict pg,
                 const float *restrict d, float t, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        y[i] = g[i] - pg[i];
        s[i] = d[i] * t;
    }
}

static void ys_part(void *ctx, int64_t b, int64_t e) {
    const vjob *j = ctx;
    ys_k(j->d + b, j->d2 + b, j->a + b, j->b + b, j->c + b, j->t, e - b);
}

/* ---- the optimizer's view of its parameters ------------------------------------------------ */
typedef struct lbfgs {
    nb_optim *o;
    nb_group *g;
    int64_t n;
    nb_closure_fn closure;
    void *user;
} lbfgs;

static void gather_grad(const lbfgs *L, float *flat) {
    for (int i = 0; i < L->g->nparams; i++) {
        const nb_tensor *p = L->g->params[i];
        if (p->grad && nb_is_sparse(p->grad)) nb__sparse_dense(p->grad, flat); /* to_dense(), as PyTorch */
        else if (p->grad) copy(flat, nb_f32(p->grad), p->numel);
        else memset(flat, 0, sizeof(float) * (size_t)p->numel);
        flat += p->numel;
    }
}

/* p += t d (p.add_(d, alpha=t)) */
static void add_dir(const lbfgs *L, float t, const float *d) {
    for (int i = 0; i < L->g->nparams; i++) {
        nb_tensor *p = L->g->params[i];
        axpy(nb_f32(p), d, t, p->numel);
        d += p->numel;
    }
}

static void copy_params(const lbfgs *L, float *dst, bool to_params) {
    for (int i = 0; i < L->g->nparams; i++) {
        nb_tensor *p = L->g->params[i];
        if (to_params) copy(nb_f32(p), dst, p->numel);
        else copy(dst, nb_f32(p), p->numel);
        dst += p->numel;
    }
}

static int evaluate(const lbfgs *L, double *loss) {
    nb_clear_error();
    *loss = L->closure(L->user);
    if (isnan(*loss))
        return nb_last_status() ? nb_last_status()
                                : nb__error(NB_EINVAL, "LBFGS: the closure returned NaN");
    return NB_OK;
}

/* f, g at x + t d, then back to x (_directional_evaluate). */
static int directional(const lbfgs *L, const float *x, sc t, const float *d, double *f, float *g) {
    add_dir(L, (float)t.v, d);
    int rc = evaluate(L, f);
    gather_grad(L, g);
    copy_params(L, (float *)x, true);
    return rc;
}

/* ---- strong Wolfe line search (lbfgs.py's _strong_wolfe and _cubic_interpolate) ------------ */
static sc cubic(sc x1, double f1, float g1, sc x2, double f2, float g2, const sc *bounds) {
    sc lo, hi;
    if (bounds) lo = bounds[0], hi = bounds[1];
    else if (sle(x1, x2)) lo = x1, hi = x2;
    else lo = x2, hi = x1;
    sc G1 = ft(g1), G2 = ft(g2);
    sc d1 = ssub(sadd(G1, G2), sdiv(smul(py(3), py(f1 - f2)), ssub(x1, x2)));
    sc d2sq = ssub(smul(d1, d1), smul(G1, G2));
    if (sle(py(0), d2sq)) {
        sc d2 = d2sq.f32 ? ft(sqrtf((float)d2sq.v)) : py(sqrt(d2sq.v));
        sc pos;
        if (sle(x1, x2))
            pos = ssub(x2, smul(ssub(x2, x1), sdiv(ssub(sadd(G2, d2), d1),
                                                   sadd(ssub(G2, G1), smul(py(2), d2)))));
        else
            pos = ssub(x1, smul(ssub(x1, x2), sdiv(ssub(sadd(G1, d2), d1),
                                                   sadd(ssub(G1, G2), smul(py(2), d2)))));
        return smin(smax(pos, lo), hi);
    }
    return sdiv(sadd(lo, hi), py(2.0));
}

/* Buffers: g0 (copy of g), gn (g_new), gp (g_prev), b[2] (bracket gradients). Writes the
 * chosen loss, gradient (into gout), step and evaluation count. */
static int strong_wolfe(const lbfgs *L, const float *x, sc t, const float *d, double f,
                        const float *g, float gtd, float *work, double *fout, float *gout,
                        sc *tout, int *evals) {
    const double c1 = 1e-4, c2 = 0.9, tol = 1e-9;
    const int max_ls = 25;
    const int64_t n = L->n;
    float *g0 = work, *gn = work + n, *gp = work + 2 * n, *b[2] = {work + 3 * n, work + 4 * n};
    float d_norm = nb__abs_max_par(d, 1.0f, n);
    copy(g0, g, n);
    double f_new;
    int rc = directional(L, x, t, d, &f_new, gn);
    if (rc) return rc;
    int ls_evals = 1;
    float gtd_new = dot(gn, d, n);
    sc t_prev = py(0);
    double f_prev = f;
    copy(gp, g0, n);
    float gtd_prev = gtd;
    bool done = false;
    int ls_iter = 0, nb = 0;
    sc br[2] = {py(0), py(0)};
    double bf[2] = {0, 0};
    float bgtd[2] = {0, 0};
    while (ls_iter < max_ls) {
        sc armijo = sadd(py(f), smul(smul(py(c1), t), ft(gtd))); /* f + c1 t gtd */
        bool bracket = slt(armijo, py(f_new)) || (ls_iter > 1 && f_new >= f_prev);
        if (!bracket && fabsf(gtd_new) <= (float)-c2 * gtd) {
            br[0] = t, bf[0] = f_new, nb = 1;
            copy(b[0], gn, n);
            done = true;
            break;
        }
        if (bracket || gtd_new >= 0.0f) {
            br[0] = t_prev, br[1] = t, bf[0] = f_prev, bf[1] = f_new, nb = 2;
            copy(b[0], gp, n);
            copy(b[1], gn, n);
            bgtd[0] = gtd_prev, bgtd[1] = gtd_new;
            break;
        }
        sc bounds[2] = {sadd(t, smul(py(0.01), ssub(t, t_prev))), smul(t, py(10))};
        sc tmp = t;
        t = cubic(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds);
        t_prev = tmp;
        f_prev = f_new;
        copy(gp, gn, n);
        gtd_prev = gtd_new;
        if ((rc = directional(L, x, t, d, &f_new, gn))) return rc;
        ls_evals++;
        gtd_new = dot(gn, d, n);
        ls_iter++;
    }
    if (ls_iter == max_ls) {
        br[0] = py(0), br[1] = t, bf[0] = f, bf[1] = f_new, nb = 2;
        copy(b[0], g0, n);
        copy(b[1], gn, n);
    }
    /* zoom: refine the bracket until the strong Wolfe conditions hold */
    bool insuf = false;
    int low = bf[0] <= bf[nb - 1] ? 0 : 1, high = 1 - low;
    while (!done && ls_iter < max_ls) {
        if (slt(smul(sabs(ssub(br[1], br[0])), ft(d_norm)), py(tol))) break;
        t = cubic(br[0], bf[0], bgtd[0], br[1], bf[1], bgtd[1], NULL);
        sc bmax = smax(br[0], br[1]), bmin = smin(br[0], br[1]);
        sc eps = smul(py(0.1), ssub(bmax, bmin));
        if (slt(smin(ssub(bmax, t), ssub(t, bmin)), eps)) {
            if (insuf || sle(bmax, t) || sle(t, bmin)) {
                if (slt(sabs(ssub(t, bmax)), sabs(ssub(t, bmin)))) t = ssub(bmax, eps);
                else t = sadd(bmin, eps);
                insuf = false;
            } else {
                insuf = true;
            }
        } else {
            insuf = false;
        }
        if ((rc = directional(L, x, t, d, &f_new, gn))) return rc;
        ls_evals++;
        gtd_new = dot(gn, d, n);
        ls_iter++;
        sc armijo = sadd(py(f), smul(smul(py(c1), t), ft(gtd)));
        if (slt(armijo, py(f_new)) || f_new >= bf[low]) {
            br[high] = t, bf[high] = f_new, bgtd[high] = gtd_new;
            copy(b[high], gn, n);
            low = bf[0] <= bf[1] ? 0 : 1, high = 1 - low;
        } else {
            if (fabsf(gtd_new) <= (float)-c2 * gtd) {
                done = true;
            } else if (sle(py(0), smul(ft(gtd_new), ssub(br[high], br[low])))) {
                br[high] = br[low], bf[high] = bf[low], bgtd[high] = bgtd[low];
                copy(b[high], b[low], n);
            }
            br[low] = t, bf[low] = f_new, bgtd[low] = gtd_new;
            copy(b[low], gn, n);
        }
    }
    *tout = br[low];
    *fout = bf[low];
    copy(gout, b[low], n);
    *evals = ls_evals;
    return NB_OK;
}

/* ---- state ------------------------------------------------------------------------------- */
static nb_value *num_state(nb_optim *o, const char *name, nb_value_kind kind, double init) {
    nb_value *v = nb__state_scalar(o, 0, name, kind, init);
    if (v && v->kind == NB_VALUE_NONE) {
        v->kind = kind;
        v->num = init;
    }
    return v;
}

static nb_tensor *state_tensor(nb_optim *o, const char *name) {
    nb_value *v = nb__state(o, 0, name);
    return v && v->kind == NB_VALUE_TENSOR ? v->tensor : NULL;
}

/* A state tensor of a shape (created or replaced when its shape differs). */
static float *state_shaped(nb_optim *o, const char *name, int ndim, const int64_t *shape) {
    nb_tensor *t = state_tensor(o, name);
    if (t && t->ndim == ndim && !memcmp(t->shape, shape, sizeof(int64_t) * (size_t)ndim))
        return nb_f32(t);
    if (!(t = nb_zeros(NULL, ndim, shape)) || nb__state_set_tensor(o, 0, name, t)) return NULL;
    return nb_f32(t);
}

/* The history ring: entry k (0 oldest .. len-1 newest) is row (start + k) % len of old_dirs,
 * old_stps and ro, which have cap >= len rows; start is 0 while the ring is still growing. */
typedef struct ring {
    float *dirs, *stps, *ro;
    int64_t cap, len, start;
} ring;

static int ring_get(nb_optim *o, ring *r) {
    nb_tensor *dirs = state_tensor(o, "old_dirs"), *stps = state_tensor(o, "old_stps");
    nb_tensor *ro = state_tensor(o, "ro");
    r->cap = dirs ? dirs->shape[0] : 0;
    nb_value *len = num_state(o, "hist_len", NB_VALUE_INT, (double)r->cap);
    nb_value *start = num_state(o, "hist_start", NB_VALUE_INT, 0);
    if (!len || !start) return NB_ENOMEM;
    r->len = (int64_t)len->num;
    r->start = (int64_t)start->num;
    r->dirs = dirs ? nb_f32(dirs) : NULL;
    r->stps = stps ? nb_f32(stps) : NULL;
    r->ro = ro ? nb_f32(ro) : NULL;
    return NB_OK;
}

static void ring_save(nb_optim *o, const ring *r) {
    nb__state(o, 0, "hist_len")->num = (double)r->len;
    nb__state(o, 0, "hist_start")->num = (double)r->start;
}

/* Room for one more row: grow (doubling, up to history_size) or drop the oldest. Returns the
 * physical row the newest entry goes to. */
static int64_t ring_push(nb_optim *o, ring *r, int64_t n, int64_t history, int *rc) {
    *rc = NB_OK;
    if (r->len >= history) { /* full: the oldest row becomes the newest */
        int64_t row = r->start;
        r->start = (r->start + 1) % r->len;
        return row;
    }
    if (r->len == r->cap || r->start) { /* grow (doubling up to history_size), oldest first */
        int64_t cap = r->cap ? 2 * r->cap : 4;
        if (cap > history) cap = history;
        if (cap < r->len + 1) cap = r->len + 1;
        int64_t s2[2] = {cap, n};
        nb_tensor *dirs = nb_zeros(NULL, 2, s2), *stps = nb_zeros(NULL, 2, s2);
        nb_tensor *ro = nb_zeros(NULL, 1, &cap);
        if (!dirs || !stps || !ro) {
            nb_tensor_free(dirs);
            nb_tensor_free(stps);
            nb_tensor_free(ro);
            *rc = NB_ENOMEM;
            return 0;
        }
        for (int64_t k = 0; k < r->len; k++) {
            int64_t src = (r->start + k) % r->len;
            memcpy(nb_f32(dirs) + k * n, r->dirs + src * n, sizeof(float) * (size_t)n);
            memcpy(nb_f32(stps) + k * n, r->stps + src * n, sizeof(float) * (size_t)n);
            nb_f32(ro)[k] = r->ro[src];
        }
        /* the entries exist (ensure_keys), so these replace values in place and cannot fail */
        nb__state_set_tensor(o, 0, "old_dirs", dirs);
        nb__state_set_tensor(o, 0, "old_stps", stps);
        nb__state_set_tensor(o, 0, "ro", ro);
        r->dirs = nb_f32(dirs), r->stps = nb_f32(stps), r->ro = nb_f32(ro);
        r->cap = cap;
        r->start = 0;
    }
    return r->len++;
}

/* Every state entry a step uses, created up front (as None) so that entry pointers stay valid. */
static int ensure_keys(nb_optim *o) {
    static const char *names[] = {"d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                                  "prev_flat_grad", "prev_loss", "hist_len", "hist_start"};
    for (int k = 0; k < 10; k++)
        if (!nb__state_scalar(o, 0, names[k], NB_VALUE_NONE, 0)) return NB_ENOMEM;
    return NB_OK;
}

/* ---- the step ------------------------------------------------------------------------------ */
static int lbfgs_step(nb_optim *o, nb_closure_fn closure, void *user, double *loss_out) {
    nb_group *g = &o->groups[0];
    double lr = nb__g(g, "lr"), tol_grad = nb__g(g, "tolerance_grad");
    double tol_change = nb__g(g, "tolerance_change");
    int64_t max_iter = (int64_t)nb__g(g, "max_iter"), max_eval = (int64_t)nb__g(g, "max_eval");
    int64_t history = (int64_t)nb__g(g, "history_size");
    const nb_value *lsf = nb__value_cfind(g->hp, g->nhp, "line_search_fn");
    bool wolfe = lsf && lsf->kind == NB_VALUE_STRING;
    lbfgs L = {o, g, nb__optim_numel(o), closure, user};
    const int64_t n = L.n;

    /* workspace: flat grad, x_init, 5 line-search buffers, al */
    float *work = nb__optim_scratch(o, (size_t)(7 * n + history));
    nb_value *func_evals = num_state(o, "func_evals", NB_VALUE_INT, 0);
    nb_value *state_iter = num_state(o, "n_iter", NB_VALUE_INT, 0);
    if (!work || !func_evals || !state_iter) return NB_ENOMEM;
    float *flat = work, *x_init = work + n, *ls = work + 2 * n, *al = work + 7 * n;

    double orig, loss;
    int rc = evaluate(&L, &orig);
    if (rc) return rc;
    if (loss_out) *loss_out = orig;
    loss = orig;
    int64_t current_evals = 1;
    func_evals->num += 1;
    gather_grad(&L, flat);
    if (nb__abs_max_par(flat, 1.0f, n) <= (float)tol_grad) return NB_OK;

    int64_t shape1[1] = {n};
    ring r;
    if (ensure_keys(o) || ring_get(o, &r)) return NB_ENOMEM;
    func_evals = nb__state(o, 0, "func_evals");
    state_iter = nb__state(o, 0, "n_iter");
    float *d = NULL, *prev = NULL;
    nb_value *tv = num_state(o, "t", NB_VALUE_NUMBER, lr);
    nb_value *hv = num_state(o, "H_diag", NB_VALUE_NUMBER, 1.0);
    nb_value *plv = num_state(o, "prev_loss", NB_VALUE_NUMBER, 0.0);
    if (!tv || !hv || !plv) return NB_ENOMEM;
    sc t = py(tv->num), H = py(hv->num);
    double prev_loss = plv->num;
    if (state_iter->num >= 1) { /* continuing: the direction and last gradient must exist */
        nb_tensor *dt = state_tensor(o, "d"), *pt = state_tensor(o, "prev_flat_grad");
        if (!dt || !pt || dt->numel != n || pt->numel != n)
            return nb__error(NB_EINVAL, "LBFGS: state has n_iter %.0f but no search direction",
                             state_iter->num);
        d = nb_f32(dt);
        prev = nb_f32(pt);
    } else if (!(d = state_shaped(o, "d", 1, shape1)) ||
               !(prev = state_shaped(o, "prev_flat_grad", 1, shape1))) {
        return NB_ENOMEM;
    }

    int64_t n_iter = 0;
    bool opt_cond = false;
    while (n_iter < max_iter) {
        n_iter++;
        state_iter->num += 1;
        if (state_iter->num == 1) {
            scale(d, flat, -1.0f, n);
            r.len = 0, r.start = 0;
            H = py(1);
        } else {
            /* y = g - g_prev, s = d t, ys = y.s (float32 elements, as torch) */
            float tf = (float)t.v;
            float ys = dot_ys(flat, prev, d, tf, n);
            if (ys > 1e-10f) {
                int64_t row = ring_push(o, &r, n, history, &rc);
                if (rc) return rc;
                float *y = r.dirs + row * n, *s = r.stps + row * n;
                nb__optim_for(n, ys_part, &(vjob){.d = y, .d2 = s, .a = flat, .b = prev, .c = d, .t = tf});
                r.ro[row] = 1.0f / ys;
                H = ft(ys / dot(y, y, n));
            }
            /* two-loop recursion, in place in d: q = -g ... r = H q ... */
            scale(d, flat, -1.0f, n);
            for (int64_t k = r.len - 1; k >= 0; k--) {
                int64_t row = (r.start + k) % r.len;
                al[k] = dot(r.stps + row * n, d, n) * r.ro[row];
                axpy(d, r.dirs + row * n, -al[k], n);
            }
            float hf = (float)H.v;
            scale(d, d, hf, n);
            for (int64_t k = 0; k < r.len; k++) {
                int64_t row = (r.start + k) % r.len;
                float be = dot(r.dirs + row * n, d, n) * r.ro[row];
                axpy(d, r.stps + row * n, al[k] - be, n);
            }
        }
        copy(prev, flat, n);
        prev_loss = loss;
        if (state_iter->num == 1) t = smul(smin(py(1), ft(1.0f / abs_sum(flat, n))), py(lr));
        else t = py(lr);
        float gtd = dot(flat, d, n);
        if (gtd > (float)-tol_change) break;
        int ls_evals = 0;
        if (wolfe) {
            copy_params(&L, x_init, false);
            if ((rc = strong_wolfe(&L, x_init, t, d, loss, flat, gtd, ls, &loss, flat, &t, &ls_evals)))
                break;
            add_dir(&L, (float)t.v, d);
            opt_cond = nb__abs_max_par(flat, 1.0f, n) <= (float)tol_grad;
        } else {
            add_dir(&L, (float)t.v, d);
            if (n_iter != max_iter) {
                if ((rc = evaluate(&L, &loss))) break;
                gather_grad(&L, flat);
                opt_cond = nb__abs_max_par(flat, 1.0f, n) <= (float)tol_grad;
                ls_evals = 1;
            }
        }
        current_evals += ls_evals;
        func_evals->num += ls_evals;
        if (n_iter == max_iter || current_evals >= max_eval || opt_cond) break;
        if (nb__abs_max_par(d, (float)t.v, n) <= (float)tol_change) break;
        if (fabs(loss - prev_loss) < tol_change) break;
    }
    tv->num = t.v;
    hv->num = H.v;
    plv->num = prev_loss;
    ring_save(o, &r);
    return rc;
}

/* ---- validation, state checks, state_dict layout ------------------------------------------- */
static int check_count(const nb_value *hp, int n, const char *name, double min) {
    double v = nb__hp(hp, n, name);
    if (!(v >= min) || v != floor(v) || v > 2147483647.0) {
        if (v == floor(v) && fabs(v) < 1e15) return nb__error(NB_EINVAL, "Invalid %s value: %.0f", name, v);
        return nb__error(NB_EINVAL, "Invalid %s value: %s", name, nb__pyfloat(v, 0));
    }
    return NB_OK;
}

static int lbfgs_validate(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate") || check_count(hp, n, "max_iter", 0) ||
        check_count(hp, n, "max_eval", 0) ||
        nb__check_ge0(hp, n, "tolerance_grad", "tolerance_grad value") ||
        nb__check_ge0(hp, n, "tolerance_change", "tolerance_change value") ||
        check_count(hp, n, "history_size", 1))
        return NB_EINVAL;
    const nb_value *ls = nb__value_cfind(hp, n, "line_search_fn");
    if (ls && !(ls->kind == NB_VALUE_NONE ||
                (ls->kind == NB_VALUE_STRING && !strcmp(ls->str, "strong_wolfe"))))
        return nb__error(NB_EINVAL, "only 'strong_wolfe' is supported");
    return NB_OK;
}

static const nb_value *find(const nb_value *vals, int n, const char *name) {
    return nb__value_cfind(vals, n, name);
}

static int lbfgs_check_state(const nb_optim *o, int index, const nb_value *vals, int nv) {
    (void)index;
    int64_t n = nb__optim_numel(o), rows = -1;
    static const char *flat_names[] = {"d", "prev_flat_grad"};
    for (int k = 0; k < 2; k++) {
        const nb_value *v = find(vals, nv, flat_names[k]);
        if (v && v->kind != NB_VALUE_NONE &&
            (v->kind != NB_VALUE_TENSOR || !v->tensor || v->tensor->dtype != NB_FLOAT32 ||
             v->tensor->ndim != 1 || v->tensor->numel != n))
            return nb__error(NB_ESHAPE, "loaded state dict: LBFGS state '%s' must be a float32 "
                             "tensor of shape [%lld]", flat_names[k], (long long)n);
    }
    static const char *hist_names[] = {"old_dirs", "old_stps", "ro"};
    int have = 0;
    for (int k = 0; k < 3; k++) {
        const nb_value *v = find(vals, nv, hist_names[k]);
        if (!v || v->kind == NB_VALUE_NONE) continue;
        int ndim = k < 2 ? 2 : 1;
        if (v->kind != NB_VALUE_TENSOR || !v->tensor || v->tensor->dtype != NB_FLOAT32 ||
            v->tensor->ndim != ndim || (k < 2 && v->tensor->shape[1] != n) ||
            (rows >= 0 && v->tensor->shape[0] != rows))
            return nb__error(NB_ESHAPE, "loaded state dict: LBFGS history '%s' has the wrong "
                             "shape (expected [k, %lld] directions and steps, [k] ro)",
                             hist_names[k], (long long)n);
        rows = v->tensor->shape[0];
        have++;
    }
    if (have != 0 && have != 3)
        return nb__error(NB_EFORMAT, "loaded state dict: LBFGS history is incomplete");
    const nb_value *len = find(vals, nv, "hist_len"), *start = find(vals, nv, "hist_start");
    int64_t cap = rows < 0 ? 0 : rows;
    int64_t l = len && len->kind != NB_VALUE_NONE ? (int64_t)len->num : cap;
    int64_t s = start && start->kind != NB_VALUE_NONE ? (int64_t)start->num : 0;
    if (l < 0 || l > cap || s < 0 || (l ? s >= l : s != 0))
        return nb__error(NB_EFORMAT, "loaded state dict: LBFGS history ring is inconsistent");
    static const char *nums[] = {"t", "H_diag", "prev_loss", "hist_len", "hist_start"};
    for (int k = 0; k < 5; k++) {
        const nb_value *v = find(vals, nv, nums[k]);
        if (v && v->kind != NB_VALUE_NONE && v->kind != NB_VALUE_NUMBER && v->kind != NB_VALUE_INT)
            return nb__error(NB_EFORMAT, "loaded state dict: LBFGS state '%s' must be a number",
                             nums[k]);
    }
    return NB_OK;
}

/* state_dict: unroll the ring into oldest-first [len, n] / [len] tensors; drop the ring keys. */
static int lbfgs_export(const nb_optim *o, int index, nb_value **vals, int *nv) {
    (void)index;
    int64_t n = nb__optim_numel(o);
    nb_value *v = *vals;
    const nb_value *lenv = nb__value_cfind(v, *nv, "hist_len"), *startv = nb__value_cfind(v, *nv, "hist_start");
    nb_value *dirs = nb__value_find(v, *nv, "old_dirs");
    int64_t rows = dirs && dirs->kind == NB_VALUE_TENSOR ? dirs->tensor->shape[0] : 0;
    int64_t len = lenv && lenv->kind != NB_VALUE_NONE ? (int64_t)lenv->num : rows;
    int64_t start = startv && startv->kind != NB_VALUE_NONE ? (int64_t)startv->num : 0;
    static const char *names[] = {"old_dirs", "old_stps", "ro"};
    for (int k = 0; k < 3 && dirs; k++) {
        nb_value *e = nb__value_find(v, *nv, names[k]);
        if (!e || e->kind != NB_VALUE_TENSOR) continue;
        int64_t shape[2] = {len, n}, w = k < 2 ? n : 1;
        nb_tensor *t = nb_zeros(NULL, k < 2 ? 2 : 1, shape);
        if (!t) return NB_ENOMEM;
        for (int64_t r = 0; r < len; r++)
            memcpy(nb_f32(t) + r * w, nb_f32(e->tensor) + ((start + r) % len) * w,
                   sizeof(float) * (size_t)w);
        nb_tensor_free(e->tensor);
        e->tensor = t;
    }
    for (int k = 0; k < *nv;) { /* drop hist_len, hist_start */
        if (!strcmp(v[k].name, "hist_len") || !strcmp(v[k].name, "hist_start")) v[k] = v[--*nv];
        else k++;
    }
    return NB_OK;
}

static const nb_state_spec lbfgs_state[] = {
    NB_SPEC("func_evals", NUMBER),    NB_SPEC("n_iter", NUMBER),   NB_SPEC("d", OTHER),
    NB_SPEC("t", NUMBER_OR_NONE),     NB_SPEC("old_dirs", OTHER),  NB_SPEC("old_stps", OTHER),
    NB_SPEC("ro", OTHER),             NB_SPEC("H_diag", NUMBER_OR_NONE), NB_SPEC("prev_flat_grad", OTHER),
    NB_SPEC("prev_loss", NUMBER_OR_NONE), NB_SPEC("hist_len", NUMBER_OR_NONE), NB_SPEC("hist_start", NUMBER_OR_NONE)};

/* max_eval None: max_iter * 5 // 4, as PyTorch's constructor. */
static void lbfgs_prepare(nb_value *hp, int n) {
    nb_value *me = nb__value_find(hp, n, "max_eval");
    if (me->kind == NB_VALUE_NONE) *me = nb__value("max_eval", NB_VALUE_INT, floor(nb__hp(hp, n, "max_iter") * 5 / 4));
}

static const nb_value lbfgs_defaults[] = {NB_DEF_NUM("lr", 1), NB_DEF_INT("max_iter", 20), NB_DEF_NONE("max_eval"),
                                          NB_DEF_NUM("tolerance_grad", 1e-7), NB_DEF_NUM("tolerance_change", 1e-9),
                                          NB_DEF_INT("history_size", 100), NB_DEF_NONE("line_search_fn")};

const nb_optim_algo nb__lbfgs_algo = {
    .name = "LBFGS", .defaults = lbfgs_defaults, .ndefaults = NB_COUNT(lbfgs_defaults),
    .validate = lbfgs_validate, .prepare = lbfgs_prepare, .step_closure = lbfgs_step,
    .state_spec = lbfgs_state, .nstate_spec = NB_COUNT(lbfgs_state), .check_state = lbfgs_check_state,
    .export_state = lbfgs_export, .max_groups = 1};

nb_lbfgs_opts nb_lbfgs_defaults(void) {
    return (nb_lbfgs_opts){.lr = 1, .max_iter = 20, .max_eval = 0, .tolerance_grad = 1e-7,
                           .tolerance_change = 1e-9, .history_size = 100, .line_search_fn = NULL};
}

nb_optim *nb_lbfgs(nb_tensor *const *params, int n, const nb_lbfgs_opts *opts) {
    nb_lbfgs_opts o = opts ? *opts : nb_lbfgs_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_int("max_iter", o.max_iter),
                     o.max_eval ? nb_int("max_eval", o.max_eval) : nb_none("max_eval"),
                     nb_num("tolerance_grad", o.tolerance_grad), nb_num("tolerance_change", o.tolerance_change),
                     nb_int("history_size", o.history_size),
                     o.line_search_fn ? nb_str("line_search_fn", o.line_search_fn) : nb_none("line_search_fn")};
    return nb__optim_create(&nb__lbfgs_algo, params, n, kw, NB_COUNT(kw));
}
