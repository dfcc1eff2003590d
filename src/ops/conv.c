/* conv.c - F.conv1d / F.conv2d. conv1d is conv2d on [N, C, 1, L]. Three ways to compute, all
 * giving the same numbers up to float rounding:
 *
 * direct (stride 1, small kernels: every LeNet-style layer). The input is zero-padded into
 * planes of Hp x Wp and flattened; output position i = oy*Wp + ox (columns ox >= OW are
 * computed and dropped) is sum_t w[o, t] xp[off_t + i] with off_t = c Hp Wp + ky dh Wp + kx dw
 * (src/kernels/conv_direct.c). Backward, with gp = dy laid out the same way:
 *   dW[o, t]  = sum_i gp[o, i] xp[off_t + i]
 *   dx        = the same direct kernel run on gp (shifted by D = dh (kh-1) Wp + dw (kw-1))
 *               with the kernel transposed and flipped: a "full" correlation.
 * im2col (strides, large kernels). For sample n and group g, col = im2col(x[n, g]) is
 * [C/G kh kw, OH OW] and
 *   y[n, g] = W_g @ col (+ bias),  dW_g += dy[n, g] @ col^T,  dx[n, g] += col2im(W_g^T @ dy[n, g]).
 * plain (1x1, stride 1, no padding): col is the input itself.
 * The direct path computes the dropped columns and the padding around dy as well, so an
 * infinite or NaN input or weight would reach gradients through them (as 0 * inf = NaN) where
 * the convolution has no such term: a convolution with one takes the im2col path, whose
 * backward sums exactly the terms of the definition, as PyTorch's. */
#include <stdio.h>
#include "ops_internal.h"
#include "../kernels/conv.h"
#include "../kernels/kernels.h"
#include "../kernels/reduce.h"

enum { PATH_IM2COL, PATH_PLAIN, PATH_DIRECT };

typedef struct conv_saved {
    nb_conv_geom g; /* one group of one sample */
    int64_t N, G, O;
    int path;
    int64_t Hp, Wp; /* padded plane (direct) */
    float *col;     /* im2col: [N, G, Kg, L]; direct: padded inputs [N, G, xps] (or NULL) */
} conv_saved;

nb_conv_opts nb_conv_defaults(void) {
    return (nb_conv_opts){.stride = {1, 1}, .padding = {0, 0}, .dilation = {1, 1}, .groups = 1,
                          .same = false};
}

static int64_t up16(int64_t n) { return (n + 15) / 16 * 16; }

/* ---- direct path: buffer sizes and layout helpers ----------------------------------------- */
static int64_t taps(const nb_conv_geom *g) { return g->C * g->kh * g->kw; }
/* floats of one group's padded input: the planes, then zeros the kernels may read */
static int64_t xp_size(const conv_saved *s) { return up16(s->g.C * s->Hp * s->Wp + s->Wp + 32); }
static int64_t front(const conv_saved *s) { /* D: the largest tap offset within a plane */
    return s->g.dh * (s->g.kh - 1) * s->Wp + s->g.dw * (s->g.kw - 1);
}
/* floats per output channel of the laid-out gradient: D zeros, OH rows of Wp, zeros */
static int64_t gp_size(const conv_saved *s) { return up16(front(s) + s->Hp * s->Wp + 32); }

/* off[t] for the taps (c, ky, kx) of a plane set with plane stride cs. */
static void tap_offsets(int64_t *off, const conv_saved *s, int64_t C, int64_t cs) {
    const nb_conv_geom *g = &s->g;
    int64_t t = 0;
    for (int64_t c = 0; c < C; c++)
        for (int64_t ky = 0; ky < g->kh; ky++)
            for (int64_t kx = 0; kx < g->kw; kx++) off[t++] = c * cs + ky * g->dh * s->Wp + kx * g->dw;
}

/* xp = x[C, H, W] placed at row ph, column pw of zeroed Hp x Wp planes. */
static void pad_planes(float *xp, const float *x, const conv_saved *s) {
    const nb_conv_geom *g = &s->g;
    memset(xp, 0, sizeof(float) * (size_t)xp_size(s));
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t iy = 0; iy < g->H; iy++) {
            float *d = xp + (c * s->Hp + iy + g->ph) * s->Wp + g->pw;
            const float *r = x + (c * g->H + iy) * g->W;
            for (int64_t ix = 0; ix < g->W; ix++) d[ix] = r[ix];
        }
}

/* ---- direct path: the work, split across the pool -------------------------------------------
 * The thread count never changes a bit, so the work is split only where no output element's
 * sum is cut: the forward and dx by samples (a sample's outputs depend on that sample only),
 * dW (never by samples) by blocks of 4 output channels, the kernel's register block: each
 * weight sums over all samples and positions inside one part, in the same order and the same
 * registers as on one thread. Each part has its own scratch from the arena; a job is split
 * only where each part gets ~1 MFLOP. */
static int64_t parts_for(double flops, int64_t units) {
    int64_t p = nb__num_threads(), mflop = (int64_t)(flops / (1 << 20));
    if (p > mflop) p = mflop;
    if (p > units) p = units;
    return p < 1 ? 1 : p;
}

typedef struct direct_job {
    const conv_saved *s;
    int64_t parts, slot; /* scratch: parts x slot floats */
    float *scratch;
    const int64_t *off;  /* forward, dW: the taps of xp; dx: the taps of gp */
    const float *x, *w, *b; /* forward: x, w, bias; backward: dy, and for dx w transposed */
    float *y;               /* forward: y; backward: dW or dx */
    float beta;             /* backward */
    float *xp;              /* padded inputs [N, G, xps], or NULL: the forward's scratch */
    float *acc;             /* dW: [O, T, 16] lane sums */
} direct_job;

/* Part p of `parts` has units [PART_BEGIN(n, p, parts), PART_BEGIN(n, p + 1, parts)) of n. */
#define PART_BEGIN(n, p, parts) ((n) * (p) / (parts))

static void forward_part(void *ctx, int64_t p0, int64_t p1) {
    const direct_job *j = ctx;
    const conv_saved *s = j->s;
    const nb_conv_geom *g = &s->g;
    int64_t Og = s->O / s->G, T = taps(g), L = g->OH * g->OW, ys = up16(g->OH * s->Wp);
    for (int64_t p = p0; p < p1; p++) {
        float *yw = j->scratch + p * j->slot, *xpk = yw + Og * ys;
        for (int64_t i = PART_BEGIN(s->N, p, j->parts); i < PART_BEGIN(s->N, p + 1, j->parts); i++)
            for (int64_t k = 0; k < s->G; k++) {
                if (j->xp) xpk = j->xp + (i * s->G + k) * xp_size(s);
                pad_planes(xpk, j->x + (i * s->G + k) * g->C * g->H * g->W, s);
                nb_k_conv_direct(yw, ys, Og, xpk, j->off, T, j->w + k * Og * T, g->OH * s->Wp);
                for (int64_t o = 0; o < Og; o++) {
                    float *yo = j->y + (i * s->O + k * Og + o) * L, bias = j->b ? j->b[k * Og + o] : 0.0f;
                    for (int64_t oy = 0; oy < g->OH; oy++)
                        for (int64_t ox = 0; ox < g->OW; ox++)
                            yo[oy * g->OW + ox] = yw[o * ys + oy * s->Wp + ox] + bias;
                }
            }
    }
}

/* y = conv(x); keep: the padded inputs stay in s->col for dW. */
static int direct_forward(nb_arena *ar, conv_saved *s, float *y, const float *x, const float *w,
                          const float *b, bool keep) {
    const nb_conv_geom *g = &s->g;
    int64_t T = taps(g), n = g->OH * s->Wp;
    direct_job j = {.s = s, .parts = parts_for(2.0 * (double)(s->N * s->O * T * n), s->N),
                    .slot = s->O / s->G * up16(n) + (keep ? 0 : xp_size(s)), .x = x, .w = w, .b = b, .y = y};
    int64_t *off = nb__arena_alloc(ar, sizeof(int64_t) * (size_t)T);
    j.scratch = nb__arena_alloc(ar, sizeof(float) * (size_t)(j.parts * j.slot));
    j.xp = keep ? nb__arena_alloc(ar, sizeof(float) * (size_t)(s->N * s->G * xp_size(s))) : NULL;
    if (!off || !j.scratch || (keep && !j.xp)) return NB_ENOMEM;
    tap_offsets(off, s, g->C, s->Hp * s->Wp);
    j.off = off;
    nb__parallel_for(j.parts, 1, forward_part, &j);
    s->col = j.xp;
    return NB_OK;
}

/* gp = dy of one sample laid out for the kernels: per channel D zeros, then OH rows of Wp
 * (OW values, zeros), zeros. Only the values are written: gp is zeroed once per part. */
static void lay_out_grad(float *gp, const float *gy, const conv_saved *s, int64_t o0, int64_t o1) {
    const nb_conv_geom *g = &s->g;
    int64_t gps = gp_size(s), D = front(s);
    for (int64_t o = o0; o < o1; o++)
        for (int64_t oy = 0; oy < g->OH; oy++) {
            float *d = gp + o * gps + D + oy * s->Wp;
            const float *r = gy + (o * g->OH + oy) * g->OW;
            for (int64_t ox = 0; ox < g->OW; ox++) d[ox] = r[ox];
        }
}

/* First output channel of unit u of dW: the units are blocks of 4 channels (the kernel's
 * register block) within each group, so a part's channels are contiguous. */
static int64_t dw_unit_begin(const conv_saved *s, int64_t u) {
    int64_t Og = s->O / s->G, per = (Og + 3) / 4, o = 4 * (u % per);
    return u / per * Og + (o < Og ? o : Og);
}

/* dW of the output channels of units [PART_BEGIN(p0), PART_BEGIN(p1)), summed over samples. */
static void weight_grad_part(void *ctx, int64_t p0, int64_t p1) {
    const direct_job *j = ctx;
    const conv_saved *s = j->s;
    const nb_conv_geom *g = &s->g;
    int64_t Og = s->O / s->G, T = taps(g), gps = gp_size(s), units = s->G * ((Og + 3) / 4);
    int64_t o0 = dw_unit_begin(s, PART_BEGIN(units, p0, j->parts));
    int64_t o1 = dw_unit_begin(s, PART_BEGIN(units, p1, j->parts));
    float *gp = j->scratch + p0 * j->slot;
    memset(gp + o0 * gps, 0, sizeof(float) * (size_t)((o1 - o0) * gps));
    memset(j->acc + o0 * T * 16, 0, sizeof(float) * (size_t)((o1 - o0) * T * 16));
    for (int64_t i = 0; i < s->N; i++) {
        lay_out_grad(gp, j->x + i * s->O * g->OH * g->OW, s, o0, o1);
        for (int64_t k = o0 / Og; k * Og < o1; k++) {
            int64_t a = o0 > k * Og ? o0 : k * Og, e = o1 < (k + 1) * Og ? o1 : (k + 1) * Og;
            nb_k_conv_direct_dw(j->acc + a * T * 16, e - a, gp + a * gps + front(s), gps,
                                j->xp + (i * s->G + k) * xp_size(s), j->off, T, g->OH * s->Wp);
        }
    }
    nb_k_conv_direct_dw_finish(j->y + o0 * T, j->acc + o0 * T * 16, (o1 - o0) * T, j->beta);
}

/* dx for the samples of parts [p0, p1): the direct kernel on dy with the weights transposed
 * and flipped (j->w). */
static void input_grad_part(void *ctx, int64_t p0, int64_t p1) {
    const direct_job *j = ctx;
    const conv_saved *s = j->s;
    const nb_conv_geom *g = &s->g;
    int64_t Og = s->O / s->G, gps = gp_size(s), P = s->Hp * s->Wp, dxs = up16(P);
    int64_t Tx = Og * g->kh * g->kw;
    for (int64_t p = p0; p < p1; p++) {
        float *gp = j->scratch + p * j->slot, *dxp = gp + s->O * gps;
        memset(gp, 0, sizeof(float) * (size_t)(s->O * gps));
        for (int64_t i = PART_BEGIN(s->N, p, j->parts); i < PART_BEGIN(s->N, p + 1, j->parts); i++) {
            lay_out_grad(gp, j->x + i * s->O * g->OH * g->OW, s, 0, s->O);
            for (int64_t k = 0; k < s->G; k++) {
                nb_k_conv_direct(dxp, dxs, g->C, gp + k * Og * gps, j->off, Tx, j->w + k * g->C * Tx, P);
                float *gxk = j->y + (i * s->G + k) * g->C * g->H * g->W;
                for (int64_t c = 0; c < g->C; c++)
                    for (int64_t iy = 0; iy < g->H; iy++) {
                        const float *r = dxp + c * dxs + (iy + g->ph) * s->Wp + g->pw;
                        float *d = gxk + (c * g->H + iy) * g->W;
                        if (j->beta == 0.0f)
                            for (int64_t ix = 0; ix < g->W; ix++) d[ix] = r[ix];
                        else
                            for (int64_t ix = 0; ix < g->W; ix++) d[ix] += r[ix];
                    }
            }
        }
    }
}

static void direct_backward(nb_node *n, const conv_saved *s, float *gw, float bw, float *gx,
                            float bx) {
    const nb_conv_geom *g = &s->g;
    nb_arena *ar = n->out->arena;
    const float *gy = nb_f32(n->out->grad), *w = nb_f32(n->in[1]);
    int64_t Og = s->O / s->G, T = taps(g), gps = gp_size(s), Tx = Og * g->kh * g->kw;
    int64_t P = s->Hp * s->Wp, nout = g->OH * s->Wp;
    int64_t pw = gw ? parts_for(2.0 * (double)(s->N * s->O * T * nout), s->G * ((Og + 3) / 4)) : 0;
    int64_t px = gx ? parts_for(2.0 * (double)(s->N * s->G * g->C * Tx * P), s->N) : 0;
    int64_t slot = s->O * gps + (gx ? g->C * up16(P) : 0);
    float *scratch = nb__arena_alloc(ar, sizeof(float) * (size_t)((pw > px ? pw : px) * slot));
    float *acc = gw ? nb__arena_alloc(ar, sizeof(float) * (size_t)(s->O * T * 16)) : NULL;
    int64_t *off = nb__arena_alloc(ar, sizeof(int64_t) * (size_t)(T > Tx ? T : Tx));
    float *wt = gx ? nb__arena_alloc(ar, sizeof(float) * (size_t)(s->G * g->C * Tx)) : NULL;
    if (!scratch || !off || (gw && !acc) || (gx && !wt)) {
        nb__backward_fail();
        return;
    }
    direct_job j = {.s = s, .slot = slot, .scratch = scratch, .off = off, .x = gy, .xp = s->col, .acc = acc};
    if (gw && s->O > 0) { /* (no output channels: no units to split) */
        tap_offsets(off, s, g->C, P);
        j.parts = pw, j.y = gw, j.beta = bw;
        nb__parallel_for(pw, 1, weight_grad_part, &j);
    }
    if (gx) { /* wt[k][c][o][ky][kx] = w[k*Og + o][c][kh-1-ky][kw-1-kx]; taps over o */
        for (int64_t k = 0; k < s->G; k++)
            for (int64_t c = 0; c < g->C; c++)
                for (int64_t o = 0; o < Og; o++)
                    for (int64_t ky = 0; ky < g->kh; ky++)
                        for (int64_t kx = 0; kx < g->kw; kx++)
                            wt[((k * g->C + c) * Og + o) * g->kh * g->kw + ky * g->kw + kx] =
                                w[((k * Og + o) * g->C + c) * g->kh * g->kw +
                                  (g->kh - 1 - ky) * g->kw + (g->kw - 1 - kx)];
        tap_offsets(off, s, Og, gps); /* the taps of gp: its channels are Og planes of gps */
        j.parts = px, j.w = wt, j.y = gx, j.beta = bx;
        nb__parallel_for(px, 1, input_grad_part, &j);
    }
}

/* ---- backward ----------------------------------------------------------------------------- */
static void conv_backward(nb_node *n) {
    const conv_saved *s = n->saved;
    const nb_conv_geom *g = &s->g;
    nb_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    const float *gy = nb_f32(n->out->grad);
    int64_t Kg = g->C * g->kh * g->kw, L = g->OH * g->OW, Og = s->O / s->G;
    int64_t xs = s->G * g->C * g->H * g->W; /* floats per input sample */
    float beta, *gd;
    if (nb__wants_grad(b) && (gd = nb__grad(b, &beta)))
        for (int64_t o = 0; o < s->O; o++) {
            double acc = 0;
            for (int64_t i = 0; i < s->N; i++) acc += nb_k_sum(gy + (i * s->O + o) * L, L);
            gd[o] = beta == 0.0f ? (float)acc : gd[o] + (float)acc; /* beta 0: gd is garbage */
        }
    if (s->path == PATH_DIRECT) {
        float bw = 0, bx = 0, *gw = NULL, *gx = NULL;
        if (nb__wants_grad(w) && !(gw = nb__grad(w, &bw))) return;
        if (nb__wants_grad(x) && !(gx = nb__grad(x, &bx))) return;
        if (gw || gx) direct_backward(n, s, gw, bw, gx, bx);
        return;
    }
    bool plain = s->path == PATH_PLAIN;
    if (nb__wants_grad(w) && (gd = nb__grad(w, &beta))) {
        if (s->N == 0 && beta == 0.0f) memset(gd, 0, sizeof(float) * (size_t)w->numel);
        for (int64_t i = 0; i < s->N; i++)
            for (int64_t k = 0; k < s->G; k++) {
                const float *col = plain ? nb_f32(x) + i * xs + k * g->C * g->H * g->W
                                         : s->col + (i * s->G + k) * Kg * L;
                nb_k_gemm(false, true, Og, Kg, L, 1.0f, gy + (i * s->O + k * Og) * L, L, col, L,
                          i == 0 ? beta : 1.0f, gd + k * Og * Kg, Kg);
            }
    }
    if (nb__wants_grad(x) && (gd = nb__grad(x, &beta))) {
        float *dcol = plain ? NULL : nb__arena_alloc(n->out->arena, sizeof(float) * (size_t)(Kg * L + 1));
        if (!plain && !dcol) {
            nb__backward_fail();
            return;
        }
        if (!plain && beta == 0.0f) memset(gd, 0, sizeof(float) * (size_t)x->numel);
        for (int64_t i = 0; i < s->N; i++)
            for (int64_t k = 0; k < s->G; k++) {
                const float *wk = nb_f32(w) + k * Og * Kg, *gyk = gy + (i * s->O + k * Og) * L;
                float *gx = gd + i * xs + k * g->C * g->H * g->W;
                if (plain) {
                    nb_k_gemm(true, false, Kg, L, Og, 1.0f, wk, Kg, gyk, L, beta, gx, L);
                } else {
                    nb_k_gemm(true, false, Kg, L, Og, 1.0f, wk, Kg, gyk, L, 0.0f, dcol, L);
                    nb_k_col2im(gx, dcol, g);
                }
            }
    }
}

/* ---- validation and geometry -------------------------------------------------------------- */
/* dims is 1 or 2 (x is then [N, C, L] / [N, C, H, W], or unbatched without N). */
static int conv_setup(const char *op, int dims, const nb_tensor *x, const nb_tensor *w,
                      const nb_tensor *b, const nb_conv_opts *o, conv_saved *s, bool *batched) {
    if (nb__check_f32(op, x, "input") || nb__check_f32(op, w, "weight")) return NB_EINVAL;
    if (x->ndim != dims + 1 && x->ndim != dims + 2)
        return nb__error(NB_ESHAPE, "%s: Expected %dD (unbatched) or %dD (batched) input to %s, "
                         "but got input of size: %s", op, dims + 1, dims + 2, op, nb__shape(x, 0));
    if (w->ndim != dims + 2)
        return nb__error(NB_ESHAPE, "%s: weight must be %dD [out_channels, in_channels/groups, %s], "
                         "got %s", op, dims + 2, dims == 2 ? "kH, kW" : "kW", nb__shape(w, 0));
    for (int d = 0; d < dims; d++) {
        if (w->shape[2 + d] <= 0) {
            if (dims == 2)
                return nb__error(NB_EINVAL, "%s: kernel size should be greater than zero, but got "
                                 "kernel_height: %lld kernel_width: %lld", op, (long long)w->shape[2],
                                 (long long)w->shape[3]);
            return nb__error(NB_EINVAL, "%s: kernel size should be greater than zero, but got "
                             "kernel_height: 1 kernel_width: %lld", op, (long long)w->shape[2]);
        }
        const int64_t v[4] = {w->shape[2 + d], o->stride[d], o->same ? 0 : o->padding[d], o->dilation[d]};
        static const char *const what[4] = {"kernel size", "stride", "padding", "dilation"};
        for (int k = 0; k < 4; k++)
            if (v[k] > NB_MAX_WINDOW)
                return nb__error(NB_EINVAL, "%s: %s %lld is too large (at most %d)", op, what[k],
                                 (long long)v[k], NB_MAX_WINDOW);
        if (o->stride[d] <= 0) return nb__error(NB_EINVAL, "%s: non-positive stride is not supported", op);
        if (!o->same && o->padding[d] < 0)
            return nb__error(NB_EINVAL, "%s: negative padding is not supported", op);
        if (o->dilation[d] <= 0)
            return nb__error(NB_EINVAL, "%s: non-positive dilation is not supported", op);
        if (o->same && o->stride[d] != 1)
            return nb__error(NB_EINVAL, "%s: padding='same' is not supported for strided "
                             "convolutions", op);
    }
    if (o->groups <= 0) return nb__error(NB_EINVAL, "%s: non-positive groups is not supported", op);
    *batched = x->ndim == dims + 2;
    int64_t N = *batched ? x->shape[0] : 1, C = x->shape[*batched ? 1 : 0];
    int64_t O = w->shape[0], G = o->groups;
    char wshape[64];
    snprintf(wshape, sizeof wshape, "%s", nb__shape(w, 1));
    if (O % G)
        return nb__error(NB_ESHAPE, "%s: Given groups=%lld, expected weight to be divisible by %lld "
                         "at dimension 0, but got weight of size %s instead", op, (long long)G,
                         (long long)G, wshape);
    if (C % G || w->shape[1] != C / G) { /* w->shape[1] * G != C, without overflowing */
        int64_t want;
        if (__builtin_mul_overflow(w->shape[1], G, &want)) want = INT64_MAX;
        return nb__error(NB_ESHAPE, "%s: Given groups=%lld, weight of size %s, expected input%s to "
                         "have %lld channels, but got %lld channels instead", op, (long long)G,
                         wshape, nb__shape(x, 0), (long long)want, (long long)C);
    }
    if (b && (b->dtype != NB_FLOAT32 || b->ndim != 1 || b->shape[0] != O))
        return nb__error(NB_ESHAPE, "%s: Given weight of size %s, expected bias to be 1-dimensional "
                         "with %lld elements, but got bias of size %s instead", op, wshape,
                         (long long)O, nb__shape(b, 0));
    /* [kh, kw], [stride], ... as 2-D; a 1-D conv has a height-1 kernel on a height-1 input */
    int64_t in[2], k[2], st[2], pl[2], ptot[2], dl[2], out[2];
    const int64_t *xsp = x->shape + x->ndim - dims;
    for (int d = 0; d < 2; d++) {
        int s2 = d - (2 - dims); /* index into the op's own dims, < 0 for the implied one */
        in[d] = s2 < 0 ? 1 : xsp[s2];
        k[d] = s2 < 0 ? 1 : w->shape[2 + s2];
        st[d] = s2 < 0 ? 1 : o->stride[s2];
        dl[d] = s2 < 0 ? 1 : o->dilation[s2];
        if (s2 < 0) ptot[d] = pl[d] = 0;
        else if (o->same) {
            ptot[d] = dl[d] * (k[d] - 1);
            pl[d] = ptot[d] / 2;
        } else {
            pl[d] = o->padding[s2];
            ptot[d] = 2 * pl[d];
        }
    }
    for (int d = 0; d < 2; d++) {
        int64_t span = dl[d] * (k[d] - 1) + 1;
        if (in[d] + ptot[d] < span) {
            if (dims == 2)
                return nb__error(NB_ESHAPE, "%s: Calculated padded input size per channel: (%lld x "
                                 "%lld). Kernel size: (%lld x %lld). Kernel size can't be greater "
                                 "than actual input size", op, (long long)(in[0] + ptot[0]),
                                 (long long)(in[1] + ptot[1]), (long long)(dl[0] * (k[0] - 1) + 1),
                                 (long long)(dl[1] * (k[1] - 1) + 1));
            return nb__error(NB_ESHAPE, "%s: Calculated padded input size per channel: (%lld). "
                             "Kernel size: (%lld). Kernel size can't be greater than actual input "
                             "size", op, (long long)(in[1] + ptot[1]), (long long)span);
        }
        out[d] = (in[d] + ptot[d] - span) / st[d] + 1;
    }
    s->N = N;
    s->G = G;
    s->O = O;
    s->g = (nb_conv_geom){.C = C / G, .H = in[0], .W = in[1], .kh = k[0], .kw = k[1],
                          .sh = st[0], .sw = st[1], .ph = pl[0], .pw = pl[1], .dh = dl[0],
                          .dw = dl[1], .OH = out[0], .OW = out[1]};
    s->Hp = in[0] + ptot[0];
    s->Wp = in[1] + ptot[1];
    s->col = NULL;
    int64_t T = C / G * k[0] * k[1];
    if (k[0] == 1 && k[1] == 1 && st[0] == 1 && st[1] == 1 && ptot[0] == 0 && ptot[1] == 0)
        s->path = PATH_PLAIN;
    else if (st[0] == 1 && st[1] == 1 && nb_k_conv_direct_available() && s->Wp <= 2 * out[1] &&
             T <= 4096 && O * T <= 65536 && nb_k_all_finite(nb_f32(w), w->numel) &&
             nb_k_all_finite(nb_f32(x), x->numel))
        s->path = PATH_DIRECT; /* small kernels on small images: LeNet's layers */
    else
        s->path = PATH_IM2COL;
    return NB_OK;
}

static nb_tensor *conv_nd(nb_arena *ar, const char *op, int dims, nb_tensor *x, nb_tensor *w,
                          nb_tensor *b, const nb_conv_opts *opts) {
    if (!x || !w) return NULL;
    nb_conv_opts o = opts ? *opts : nb_conv_defaults();
    conv_saved st;
    bool batched = false;
    if (conv_setup(op, dims, x, w, b, &o, &st, &batched)) return NULL;
    const nb_conv_geom *g = &st.g;
    int64_t shape[4], nd = 0;
    if (batched) shape[nd++] = st.N;
    shape[nd++] = st.O;
    if (dims == 2) shape[nd++] = g->OH;
    shape[nd++] = g->OW;
    nb_tensor *y = nb__out(ar, NB_FLOAT32, (int)nd, shape);
    if (!y) return NULL;
    nb_tensor *in3[3] = {x, w, b};
    bool rec = nb__should_record(b ? 3 : 2, in3);
    int64_t Kg = g->C * g->kh * g->kw, L = g->OH * g->OW, Og = st.O / st.G;
    int64_t xs = st.G * g->C * g->H * g->W;
    bool keep = rec && st.path != PATH_PLAIN && nb__wants_grad(w); /* kept for dW */
    float *yd = nb_f32(y);
    if (st.path == PATH_DIRECT) {
        if (direct_forward(ar, &st, yd, nb_f32(x), nb_f32(w), b ? nb_f32(b) : NULL, keep)) return NULL;
    } else {
        float *col = NULL;
        if (st.path == PATH_IM2COL) {
            size_t n = (size_t)(Kg * L) * (size_t)(keep ? st.N * st.G : 1);
            if (!(col = nb__arena_alloc(ar, sizeof(float) * (n ? n : 1)))) return NULL;
        }
        for (int64_t i = 0; i < st.N; i++)
            for (int64_t k = 0; k < st.G; k++) {
                float *yk = yd + (i * st.O + k * Og) * L;
                const float *ck = nb_f32(x) + i * xs + k * g->C * g->H * g->W;
                if (col) {
                    float *c = col + (keep ? (i * st.G + k) * Kg * L : 0);
                    nb_k_im2col(c, ck, g);
                    ck = c;
                }
                if (b)
                    for (int64_t oc = 0; oc < Og; oc++)
                        for (int64_t l = 0; l < L; l++) yk[oc * L + l] = nb_f32(b)[k * Og + oc];
                nb_k_gemm(false, false, Og, L, Kg, 1.0f, nb_f32(w) + k * Og * Kg, Kg, ck, L,
                          b ? 1.0f : 0.0f, yk, L);
            }
        st.col = keep ? col : NULL;
    }
    if (!rec) return y;
    conv_saved *s = nb__arena_alloc(ar, sizeof *s);
    if (!s) return NULL;
    *s = st;
    nb_node *n = nb__record(ar, y, op, conv_backward, b ? 3 : 2, in3);
    if (n) n->saved = s;
    return y;
}

nb_tensor *nb_conv2d(nb_arena *ar, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                     const nb_conv_opts *opts) {
    return conv_nd(ar, "conv2d", 2, x, w, b, opts);
}

nb_tensor *nb_conv1d(nb_arena *ar, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                     const nb_conv_opts *opts) {
    return conv_nd(ar, "conv1d", 1, x, w, b, opts);
}
