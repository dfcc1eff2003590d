/* binary.c - broadcasting elementwise arithmetic and its gradients. */
#include <stdbool.h>
#include "binary.h"

void nb_k_bcast_plan(nb_k_bcast *p, int ndim, const int64_t *out, int na, const int64_t *a,
                     int nb, const int64_t *b) {
    int64_t sa[8], sb[8], ca = 1, cb = 1;
    for (int i = ndim - 1; i >= 0; i--) { /* contiguous strides, 0 where broadcast */
        int64_t da = i - (ndim - na) >= 0 ? a[i - (ndim - na)] : 1;
        int64_t db = i - (ndim - nb) >= 0 ? b[i - (ndim - nb)] : 1;
        sa[i] = da == 1 ? 0 : ca;
        sb[i] = db == 1 ? 0 : cb;
        ca *= da;
        cb *= db;
    }
    p->ndim = 0;
    for (int i = 0; i < ndim; i++) {
        if (out[i] == 0) { /* empty: one empty loop */
            p->ndim = 1;
            p->shape[0] = 0;
            p->sa[0] = p->sb[0] = 1;
            return;
        }
        if (out[i] == 1) continue;
        int k = p->ndim;
        if (k && p->sa[k - 1] == sa[i] * out[i] && p->sb[k - 1] == sb[i] * out[i]) {
            p->shape[k - 1] *= out[i]; /* steps alike in both operands: merge */
            p->sa[k - 1] = sa[i];
            p->sb[k - 1] = sb[i];
        } else {
            p->shape[k] = out[i];
            p->sa[k] = sa[i];
            p->sb[k] = sb[i];
            p->ndim++;
        }
    }
}

/* Odometer over the outer dims of a plan: offsets of a and b for successive inner rows. */
typedef struct odo {
    int64_t idx[8], oa, ob;
} odo;

static void odo_next(const nb_k_bcast *p, odo *o) {
    for (int d = p->ndim - 2; d >= 0; d--) {
        o->oa += p->sa[d];
        o->ob += p->sb[d];
        if (++o->idx[d] < p->shape[d]) return;
        o->oa -= p->sa[d] * p->shape[d];
        o->ob -= p->sb[d] * p->shape[d];
        o->idx[d] = 0;
    }
}

static void inner(const nb_k_bcast *p, int64_t *n, int64_t *rows, int64_t *ia, int64_t *ib) {
    *n = p->ndim ? p->shape[p->ndim - 1] : 1;
    *ia = p->ndim ? p->sa[p->ndim - 1] : 1; /* one element: it is its own row */
    *ib = p->ndim ? p->sb[p->ndim - 1] : 1;
    *rows = 1;
    for (int d = 0; d + 1 < p->ndim; d++) *rows *= p->shape[d];
}

#define FWD_ROW(OP)                                                                          \
    do {                                                                                     \
        if (ia && ib)                                                                        \
            for (int64_t i = 0; i < n; i++) yr[i] = ar[i] OP br[i];                          \
        else if (ia) {                                                                       \
            const float s = br[0];                                                           \
            for (int64_t i = 0; i < n; i++) yr[i] = ar[i] OP s;                              \
        } else if (ib) {                                                                     \
            const float s = ar[0];                                                           \
            for (int64_t i = 0; i < n; i++) yr[i] = s OP br[i];                              \
        } else {                                                                             \
            for (int64_t i = 0; i < n; i++) yr[i] = ar[0] OP br[0];                          \
        }                                                                                    \
    } while (0)

void nb_k_binary(nb_k_binop op, const nb_k_bcast *p, float *y, const float *a, const float *b) {
    int64_t n, rows, ia, ib;
    inner(p, &n, &rows, &ia, &ib);
    if (n == 0) return;
    odo o = {{0}, 0, 0};
    for (int64_t r = 0; r < rows; r++, odo_next(p, &o)) {
        float *restrict yr = y + r * n;
        const float *restrict ar = a + o.oa, *restrict br = b + o.ob;
        switch (op) {
        case NB_K_ADD: FWD_ROW(+); break;
        case NB_K_SUB: FWD_ROW(-); break;
        case NB_K_MUL: FWD_ROW(*); break;
        case NB_K_DIV: FWD_ROW(/); break;
        }
    }
}

/* Terms of the gradient: g upstream, q the operand the derivative reads, y the output. */
#define T_COPY(g, q, y) (g)
#define T_NEG(g, q, y) (-(g))
#define T_MUL(g, q, y) ((g) * (q))
#define T_DIV(g, q, y) ((g) / (q))
#define T_DIVB(g, q, y) (-(g) * ((y) / (q))) /* d(a/b)/db = -(a/b)/b, as PyTorch */

/* One inner row: write or add when the operand walks the row (sx), else sum into one cell. */
#define GRAD_ROW(T)                                                                          \
    do {                                                                                     \
        if (sx && write) {                                                                   \
            if (sq)                                                                          \
                for (int64_t i = 0; i < n; i++) g[i] = T(gyr[i], qr[i], yr[i]);              \
            else                                                                             \
                for (int64_t i = 0; i < n; i++) g[i] = T(gyr[i], q0, yr[i]);                 \
        } else if (sx) {                                                                     \
            if (sq)                                                                          \
                for (int64_t i = 0; i < n; i++) g[i] += T(gyr[i], qr[i], yr[i]);             \
            else                                                                             \
                for (int64_t i = 0; i < n; i++) g[i] += T(gyr[i], q0, yr[i]);                \
        } else {                                                                             \
            float s = 0.0f;                                                                  \
            if (sq)                                                                          \
                for (int64_t i = 0; i < n; i++) s += T(gyr[i], qr[i], yr[i]);                \
            else                                                                             \
                for (int64_t i = 0; i < n; i++) s += T(gyr[i], q0, yr[i]);                   \
            g[0] += s;                                                                       \
        }                                                                                    \
    } while (0)

void nb_k_binary_grad(nb_k_binop op, int which, const nb_k_bcast *p, float *gx, float beta,
                      const float *gy, const float *a, const float *b, const float *y) {
    int64_t n, rows, ia, ib;
    inner(p, &n, &rows, &ia, &ib);
    if (n == 0) return;
    /* q: the operand the derivative reads (the other one for mul, b for div) */
    bool q_is_b = op == NB_K_DIV || (op == NB_K_MUL && which == 0);
    const float *q = q_is_b ? b : a;
    int64_t sx = which ? ib : ia, sq = q_is_b ? ib : ia;
    bool bcast = false; /* is the operand broadcast anywhere? then its cells get sums */
    int64_t xnumel = 1;
    for (int d = 0; d < p->ndim; d++) {
        int64_t s = which ? p->sb[d] : p->sa[d];
        if (s) xnumel *= p->shape[d];
        else bcast = true;
    }
    if (bcast && beta == 0.0f)
        for (int64_t i = 0; i < xnumel; i++) gx[i] = 0.0f;
    bool write = !bcast && beta == 0.0f;
    odo o = {{0}, 0, 0};
    for (int64_t r = 0; r < rows; r++, odo_next(p, &o)) {
        float *restrict g = gx + (which ? o.ob : o.oa);
        const float *restrict gyr = gy + r * n, *restrict yr = y ? y + r * n : gy + r * n;
        const float *restrict qr = q + (q_is_b ? o.ob : o.oa);
        const float q0 = qr[0];
        switch (op) {
        case NB_K_ADD: GRAD_ROW(T_COPY); break;
        case NB_K_SUB:
            if (which) GRAD_ROW(T_NEG);
            else GRAD_ROW(T_COPY);
            break;
        case NB_K_MUL: GRAD_ROW(T_MUL); break;
        case NB_K_DIV:
            if (which) GRAD_ROW(T_DIVB);
            else GRAD_ROW(T_DIV);
            break;
        }
    }
}
