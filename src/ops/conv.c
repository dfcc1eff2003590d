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
 * backward sums exactly the terms of the definition, as PyTorch's.
 *
 * Under bfloat16 autocast every product takes bfloat16 operands and sums in float32: the GEMMs
 * of im2col and plain are bfloat16 GEMMs, and the direct kernels read planes, weights and
 * gradients rounded to bfloat16 as they are laid out (a product of two rounded numbers is
 * exact in float32, so the float32 kernels then compute the bfloat16 convolution). The bias
 * is rounded too, as PyTorch casts it. Where the bfloat16 products run on AMX, the direct path
 * uses AMX kernels on bfloat16 layouts instead (kernels/conv_amx.c, "AMX tiles" below). */
#include <stdio.h>
#include "ops_internal.h"
#include "../kernels/bf16.h"
#include "../kernels/conv.h"
#include "../kernels/kernels.h"
#include "../kernels/reduce.h"

enum { PATH_IM2COL, PATH_PLAIN, PATH_DIRECT };

typedef struct conv_saved {
    nb_conv_geom g; /* one group of one sample */
    int64_t N, G, O;
    int path;
    nb_dtype ct;    /* the type of the products: NB_FLOAT32, or NB_BF16 under autocast */
    bool tiles;     /* direct path on AMX tiles (bfloat16 layouts, see "AMX tiles" below) */
    int64_t Hp, Wp; /* padded plane (direct) */
    void *col;      /* im2col: [N, G, Kg, L] floats; direct: padded inputs [N, G, xps] floats, or
                     * with tiles [N, G, xbs] bfloat16 (or NULL) */
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

/* d[0..n) = r[0..n), rounded to bfloat16 when the products are bfloat16. */
static void put(float *d, const float *r, int64_t n, nb_dtype ct) {
    if (ct == NB_BF16) nb_k_bf16_round_acc(d, r, n, 0.0f);
    else memcpy(d, r, sizeof(float) * (size_t)n);
}

/* xp = x[C, H, W] placed at row ph, column pw of zeroed Hp x Wp planes. */
static void pad_planes(float *xp, const float *x, const conv_saved *s) {
    const nb_conv_geom *g = &s->g;
    memset(xp, 0, sizeof(float) * (size_t)xp_size(s));
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t iy = 0; iy < g->H; iy++)
            put(xp + (c * s->Hp + iy + g->ph) * s->Wp + g->pw, x + (c * g->H + iy) * g->W, g->W, s->ct);
}

/* Chunks of the tap units (c, ky, kx) of a convolution over C planes (plane stride cs), kh
 * kernel rows (dh Wp apart) and kx units per kernel row (pairs of taps: 2 dw apart, or taps:
 * dw): R units of one dimension ("inner"), a constant stride apart, the others fixed. The
 * inner dimension is the one that gives the largest R, a divisor of its size up to 16. */
typedef struct chunks {
    int64_t dims[3], strides[3]; /* C, kh, kx units and their offsets */
    int inner;
    int64_t R, n; /* units per chunk, chunks */
} chunks;

static chunks plan_chunks(int64_t C, int64_t cs, int64_t kh, int64_t rs, int64_t kx, int64_t xs) {
    chunks k = {{C, kh, kx}, {cs, rs, xs}, 0, 0, 0};
    for (int d = 0; d < 3; d++) {
        int64_t r = k.dims[d] < 16 ? k.dims[d] : 16;
        while (k.dims[d] % r) r--;
        if (r > k.R) k.R = r, k.inner = d;
    }
    k.n = C * kh * kx / k.R;
    return k;
}

/* The unit (u[0], u[1], u[2]) = (c, ky, kx) of row r of chunk ch. */
static void chunk_unit(const chunks *k, int64_t ch, int64_t r, int64_t *u) {
    int a = k->inner == 0 ? 1 : 0, b = k->inner == 2 ? 1 : 2; /* the outer dimensions */
    int64_t per = k->dims[k->inner] / k->R, rest = ch / per;
    u[k->inner] = ch % per * k->R + r;
    u[a] = rest / k->dims[b];
    u[b] = rest % k->dims[b];
}

/* base[ch]: the offset of chunk ch's first unit. */
static void chunk_bases(int64_t *base, const chunks *k) {
    for (int64_t ch = 0; ch < k->n; ch++) {
        int64_t u[3];
        chunk_unit(k, ch, 0, u);
        base[ch] = u[0] * k->strides[0] + u[1] * k->strides[1] + u[2] * k->strides[2];
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
    void *xp;               /* padded inputs [N, G, xps] (tiles: bfloat16 [N, G, xbs]), or
                             * NULL: the forward's scratch */
    float *acc;             /* dW: [O, T, 16] lane sums */
    const uint32_t *wp;     /* tiles: weight pairs per group (forward, dx; see pack_weight_pairs) */
    chunks ck;              /* tiles: the chunks of units (j->off: their bases) */
} direct_job;

/* Part p of `parts` has units [PART_BEGIN(n, p, parts), PART_BEGIN(n, p + 1, parts)) of n. */
#define PART_BEGIN(n, p, parts) ((n) * (p) / (parts))

/* y[i, group k] = the wide output yw (rows ys apart) cropped to OW columns, plus the bias. */
static void crop_bias(const direct_job *j, const float *yw, int64_t ys, int64_t i, int64_t k) {
    const conv_saved *s = j->s;
    const nb_conv_geom *g = &s->g;
    int64_t Og = s->O / s->G, L = g->OH * g->OW;
    for (int64_t o = 0; o < Og; o++) {
        float *yo = j->y + (i * s->O + k * Og + o) * L, bias = j->b ? j->b[k * Og + o] : 0.0f;
        for (int64_t oy = 0; oy < g->OH; oy++)
            for (int64_t ox = 0; ox < g->OW; ox++) yo[oy * g->OW + ox] = yw[o * ys + oy * s->Wp + ox] + bias;
    }
}

static void forward_part(void *ctx, int64_t p0, int64_t p1) {
    const direct_job *j = ctx;
    const conv_saved *s = j->s;
    const nb_conv_geom *g = &s->g;
    int64_t Og = s->O / s->G, T = taps(g), ys = up16(g->OH * s->Wp);
    for (int64_t p = p0; p < p1; p++) {
        float *yw = j->scratch + p * j->slot, *xpk = yw + Og * ys;
        for (int64_t i = PART_BEGIN(s->N, p, j->parts); i < PART_BEGIN(s->N, p + 1, j->parts); i++)
            for (int64_t k = 0; k < s->G; k++) {
                if (j->xp) xpk = (float *)j->xp + (i * s->G + k) * xp_size(s);
                pad_planes(xpk, j->x + (i * s->G + k) * g->C * g->H * g->W, s);
                nb_k_conv_direct(yw, ys, Og, xpk, j->off, T, j->w + k * Og * T, g->OH * s->Wp);
                crop_bias(j, yw, ys, i, k);
            }
    }
}

/* gp = dy of one sample laid out for the kernels: per channel D zeros, then OH rows of Wp
 * (OW values, zeros), zeros. Only the values are written: gp is zeroed once per part. */
static void lay_out_grad(float *gp, const float *gy, const conv_saved *s, int64_t o0, int64_t o1) {
    const nb_conv_geom *g = &s->g;
    int64_t gps = gp_size(s), D = front(s);
    for (int64_t o = o0; o < o1; o++)
        for (int64_t oy = 0; oy < g->OH; oy++)
            put(gp + o * gps + D + oy * s->Wp, gy + (o * g->OH + oy) * g->OW, g->OW, s->ct);
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
                                (const float *)j->xp + (i * s->G + k) * xp_size(s), j->off, T,
                                g->OH * s->Wp);
        }
    }
    nb_k_conv_direct_dw_finish(j->y + o0 * T, j->acc + o0 * T * 16, (o1 - o0) * T, j->beta);
}

/* dx[i, group k] (= or += by beta) = the padded planes dxp (rows dxs apart) without padding. */
static void add_dx(const direct_job *j, const float *dxp, int64_t dxs, int64_t i, int64_t k) {
    const conv_saved *s = j->s;
    const nb_conv_geom *g = &s->g;
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
                add_dx(j, dxp, dxs, i, k);
            }
        }
    }
}

/* ---- direct path on AMX tiles --------------------------------------------------------------
 * The same work and the same split across the pool, on bfloat16 layouts for the AMX kernels
 * (kernels/conv_amx.c): the padded input planes are bfloat16 (kept for dW: half the float32
 * planes), paired for the forward (pp[j] = (x[j], x[j + dw])), and so is the laid-out gradient
 * for dx; weights are pairs of taps along the kernel row, in blocks of 16 output channels. */
static int64_t kw_pairs(const nb_conv_geom *g) { return (g->kw + 1) / 2; }
/* bfloat16 elements of one group's padded planes (the kernels read past the planes) */
static int64_t xb_size(const conv_saved *s) { return up16(s->g.C * s->Hp * s->Wp + 2 * s->Wp + 64); }
/* 32-bit words of one group's paired plane */
static int64_t pp_size(const conv_saved *s) { return s->g.C * s->Hp * s->Wp + s->Wp + 32; }
/* floats taking as much room as n bfloat16 numbers */
static int64_t halves(int64_t n) { return (n + 1) / 2; }

/* The weights of every group as pairs of taps along the kernel row, in the order of the chunks
 * k, blocks of 16 rows (zeros beyond): for the forward, row o, units (c, ky, kx') of
 * w[k Og + o]; for dx (flip), row c kh + ky, units (o, 0, kx') of w[k Og + o][c] turned by 180
 * degrees (the kernel rows are rows of the product there: see input_grad_part_tiles). */
static void pack_weight_pairs(uint32_t *wp, const chunks *ck, const float *w, const conv_saved *s,
                              bool flip) {
    const nb_conv_geom *g = &s->g;
    int64_t Og = s->O / s->G, rows = flip ? g->C * g->kh : Og, R = ck->R, per = up16(rows) * R * ck->n;
    memset(wp, 0, sizeof(uint32_t) * (size_t)(s->G * per));
    for (int64_t k = 0; k < s->G; k++)
        for (int64_t row = 0; row < rows; row++)
            for (int64_t ch = 0; ch < ck->n; ch++)
                for (int64_t r = 0; r < R; r++) {
                    int64_t u[3];
                    chunk_unit(ck, ch, r, u);
                    uint32_t *d = wp + k * per + ((row / 16 * ck->n + ch) * 16 + row % 16) * R + r;
                    for (int64_t h = 0; h < 2 && 2 * u[2] + h < g->kw; h++) {
                        int64_t o = flip ? u[0] : row, c = flip ? row / g->kh : u[0], kx = 2 * u[2] + h;
                        int64_t wy = flip ? g->kh - 1 - row % g->kh : u[1], wx = flip ? g->kw - 1 - kx : kx;
                        float v = w[((k * Og + o) * g->C + c) * g->kh * g->kw + wy * g->kw + wx];
                        *d |= (uint32_t)nb__bf16_round(v) << (16 * h);
                    }
                }
}

/* xb = x[C, H, W] in bfloat16 at row ph, column pw of zeroed Hp x Wp planes. */
static void pad_planes_b16(uint16_t *xb, const float *x, const conv_saved *s) {
    const nb_conv_geom *g = &s->g;
    memset(xb, 0, sizeof(uint16_t) * (size_t)xb_size(s));
    for (int64_t c = 0; c < g->C; c++)
        nb_k_rows_to_bf16(xb + (c * s->Hp + g->ph) * s->Wp + g->pw, s->Wp, x + c * g->H * g->W, g->W, g->H, g->W);
}

/* lay_out_grad in bfloat16. */
static void lay_out_grad_b16(uint16_t *gp, const float *gy, const conv_saved *s, int64_t o0, int64_t o1) {
    const nb_conv_geom *g = &s->g;
    int64_t gps = gp_size(s), D = front(s);
    for (int64_t o = o0; o < o1; o++)
        nb_k_rows_to_bf16(gp + o * gps + D, s->Wp, gy + o * g->OH * g->OW, g->OW, g->OH, g->OW);
}

static void forward_part_tiles(void *ctx, int64_t p0, int64_t p1) {
    const direct_job *j = ctx;
    const conv_saved *s = j->s;
    const nb_conv_geom *g = &s->g;
    int64_t Og = s->O / s->G, ys = up16(g->OH * s->Wp), wper = up16(Og) * j->ck.R * j->ck.n;
    for (int64_t p = p0; p < p1; p++) {
        float *yw = j->scratch + p * j->slot;
        uint32_t *pp = (uint32_t *)(yw + up16(Og) * ys);
        uint16_t *xb = (uint16_t *)(pp + pp_size(s));
        for (int64_t i = PART_BEGIN(s->N, p, j->parts); i < PART_BEGIN(s->N, p + 1, j->parts); i++)
            for (int64_t k = 0; k < s->G; k++) {
                if (j->xp) xb = (uint16_t *)j->xp + (i * s->G + k) * xb_size(s);
                pad_planes_b16(xb, j->x + (i * s->G + k) * g->C * g->H * g->W, s);
                nb_k_pair_plane(pp, xb, pp_size(s), g->dw);
                nb_k_conv_amx(yw, ys, Og, pp, j->off, j->ck.n, j->ck.R, j->ck.strides[j->ck.inner],
                              j->wp + k * wper, g->OH * s->Wp);
                crop_bias(j, yw, ys, i, k);
            }
    }
}

/* dW of the output channels of units [PART_BEGIN(p0), PART_BEGIN(p1)): as weight_grad_part,
 * the sums in acc[t, o - o0] of the part's scratch, then transposed into dW. */
static void weight_grad_part_tiles(void *ctx, int64_t p0, int64_t p1) {
    const direct_job *j = ctx;
    const conv_saved *s = j->s;
    const nb_conv_geom *g = &s->g;
    const chunks *ck = &j->ck;
    int64_t Og = s->O / s->G, T = taps(g), gps = gp_size(s), units = s->G * ((Og + 3) / 4);
    int64_t o0 = dw_unit_begin(s, PART_BEGIN(units, p0, j->parts));
    int64_t o1 = dw_unit_begin(s, PART_BEGIN(units, p1, j->parts)), lda = up16(o1 - o0) + 16;
    uint16_t *gp = (uint16_t *)(j->scratch + p0 * j->slot);
    float *acc = j->scratch + p0 * j->slot + halves(s->O * gps);
    memset(gp + o0 * gps, 0, sizeof(uint16_t) * (size_t)((o1 - o0) * gps));
    memset(acc, 0, sizeof(float) * (size_t)(T * lda));
    for (int64_t i = 0; i < s->N; i++) {
        lay_out_grad_b16(gp, j->x + i * s->O * g->OH * g->OW, s, o0, o1);
        for (int64_t k = o0 / Og; k * Og < o1; k++) {
            int64_t a = o0 > k * Og ? o0 : k * Og, e = o1 < (k + 1) * Og ? o1 : (k + 1) * Og;
            nb_k_conv_amx_dw(acc + (a - o0), lda, e - a, gp + a * gps + front(s), gps,
                             (const uint16_t *)j->xp + (i * s->G + k) * xb_size(s), j->off, ck->n,
                             ck->R, ck->strides[ck->inner], g->OH * s->Wp);
        }
    }
    for (int64_t ch = 0; ch < ck->n; ch++) /* acc[unit, o] to dW[o, c, ky, kx] */
        for (int64_t r = 0; r < ck->R; r++) {
            int64_t u[3];
            chunk_unit(ck, ch, r, u);
            int64_t t = (u[0] * g->kh + u[1]) * g->kw + u[2];
            const float *a = acc + (ch * ck->R + r) * lda - o0;
            for (int64_t o = o0; o < o1; o++)
                j->y[o * T + t] = j->beta == 0.0f ? a[o] : j->y[o * T + t] + a[o];
        }
}

/* dx for the samples of parts [p0, p1), as input_grad_part, with the kernel rows as rows of the
 * product: dx's few channels (6 in LeNet's conv2) would make tiles of 6 rows, each loading a B
 * tile of 16 rows (tile loads decide the speed), where rows (c, ky) make 30. The product
 * writes T[c kh + ky, j] = the sum over o and kx of w turned . gp[o, j + kx dw], and
 * dx[c, i] = the sum over ky of T[c kh + ky, i + ky dh Wp], added whole planes at a time. */
static int64_t dx_rows_size(const conv_saved *s) { /* positions of T: dx's, and kh - 1 rows more */
    return up16(s->Hp * s->Wp + (s->g.kh - 1) * s->g.dh * s->Wp);
}

static void input_grad_part_tiles(void *ctx, int64_t p0, int64_t p1) {
    const direct_job *j = ctx;
    const conv_saved *s = j->s;
    const nb_conv_geom *g = &s->g;
    int64_t Og = s->O / s->G, gps = gp_size(s), ts = dx_rows_size(s), P = s->Hp * s->Wp, dxs = up16(P);
    int64_t nb = s->O * gps + s->Wp + 32, wper = up16(g->C * g->kh) * j->ck.R * j->ck.n; /* gp, read past */
    for (int64_t p = p0; p < p1; p++) {
        uint16_t *gp = (uint16_t *)(j->scratch + p * j->slot);
        uint32_t *gpp = (uint32_t *)(j->scratch + p * j->slot + halves(nb));
        float *t = (float *)(gpp + s->O * gps), *dxp = t + up16(g->C * g->kh) * ts;
        memset(gp, 0, sizeof(uint16_t) * (size_t)nb);
        for (int64_t i = PART_BEGIN(s->N, p, j->parts); i < PART_BEGIN(s->N, p + 1, j->parts); i++) {
            lay_out_grad_b16(gp, j->x + i * s->O * g->OH * g->OW, s, 0, s->O);
            nb_k_pair_plane(gpp, gp, s->O * gps, g->dw);
            for (int64_t k = 0; k < s->G; k++) {
                nb_k_conv_amx(t, ts, g->C * g->kh, gpp + k * Og * gps, j->off, j->ck.n, j->ck.R,
                              j->ck.strides[j->ck.inner], j->wp + k * wper, ts);
                for (int64_t c = 0; c < g->C; c++) /* rows ky of T lie ts + dh Wp apart */
                    nb_k_add_rows(dxp + c * dxs, t + c * g->kh * ts, ts + g->dh * s->Wp, g->kh, P, 0.0f);
                add_dx(j, dxp, dxs, i, k);
            }
        }
    }
}

/* y = conv(x); keep: the padded inputs stay in s->col for dW. */
static int direct_forward(nb_arena *ar, conv_saved *s, float *y, const float *x, const float *w,
                          const float *b, bool keep) {
    const nb_conv_geom *g = &s->g;
    int64_t T = taps(g), n = g->OH * s->Wp, Og = s->O / s->G;
    chunks ck = plan_chunks(g->C, s->Hp * s->Wp, g->kh, g->dh * s->Wp, kw_pairs(g), 2 * g->dw); /* tiles */
    direct_job j = {.s = s, .parts = parts_for(2.0 * (double)(s->N * s->O * T * n), s->N),
                    .x = x, .w = w, .b = b, .y = y, .ck = ck};
    size_t saved = s->tiles ? sizeof(uint16_t) * (size_t)xb_size(s) : sizeof(float) * (size_t)xp_size(s);
    j.slot = s->tiles ? up16(Og) * up16(n) + pp_size(s) + (keep ? 0 : halves(xb_size(s)))
                      : Og * up16(n) + (keep ? 0 : xp_size(s));
    int64_t *off = nb__arena_alloc(ar, sizeof(int64_t) * (size_t)T);
    uint32_t *wp = s->tiles ? nb__arena_alloc(ar, sizeof(uint32_t) * (size_t)(s->G * up16(Og) * ck.R * ck.n))
                            : NULL;
    j.scratch = nb__arena_alloc(ar, sizeof(float) * (size_t)(j.parts * j.slot));
    j.xp = keep ? nb__arena_alloc(ar, saved * (size_t)(s->N * s->G)) : NULL;
    if (!off || !j.scratch || (keep && !j.xp) || (s->tiles && !wp)) return NB_ENOMEM;
    if (s->tiles) {
        chunk_bases(off, &ck);
        pack_weight_pairs(wp, &ck, w, s, false);
        j.wp = wp;
    } else {
        tap_offsets(off, s, g->C, s->Hp * s->Wp);
    }
    j.off = off;
    nb__parallel_for(j.parts, 1, s->tiles ? forward_part_tiles : forward_part, &j);
    s->col = j.xp;
    return NB_OK;
}

static void direct_backward(nb_node *n, const conv_saved *s, float *gw, float bw, float *gx,
                            float bx) {
    const nb_conv_geom *g = &s->g;
    nb_arena *ar = n->out->internal.arena;
    const float *gy = nb_f32(n->out->grad), *w = nb_f32(n->in[1]);
    int64_t Og = s->O / s->G, T = taps(g), gps = gp_size(s), Tx = Og * g->kh * g->kw;
    int64_t P = s->Hp * s->Wp, nout = g->OH * s->Wp;
    /* tiles: the chunks of the weight gradient (taps) and of dx (pairs of taps over Og planes) */
    chunks ckw = plan_chunks(g->C, P, g->kh, g->dh * s->Wp, g->kw, g->dw);
    chunks ckx = plan_chunks(Og, gps, 1, 0, kw_pairs(g), 2 * g->dw); /* (ky: rows of T) */
    int64_t pw = gw ? parts_for(2.0 * (double)(s->N * s->O * T * nout), s->G * ((Og + 3) / 4)) : 0;
    int64_t px = gx ? parts_for(2.0 * (double)(s->N * s->G * g->C * Tx * P), s->N) : 0;
    int64_t slot = s->O * gps + (gx ? g->C * up16(P) : 0);
    if (s->tiles) { /* dW: bfloat16 gp, acc [T, O], tap rows; dx: bfloat16 gp, paired gp, pair
                     * rows, dx planes */
        int64_t dw = T * (up16(s->O) + 16), dx = s->O * gps + up16(g->C * g->kh) * dx_rows_size(s) +
                                                 up16(g->C) * up16(P);
        slot = halves(s->O * gps + s->Wp + 32) + (gw && gx ? (dw > dx ? dw : dx) : gw ? dw : dx);
    }
    float *scratch = nb__arena_alloc(ar, sizeof(float) * (size_t)((pw > px ? pw : px) * slot));
    float *acc = gw && !s->tiles ? nb__arena_alloc(ar, sizeof(float) * (size_t)(s->O * T * 16)) : NULL;
    int64_t *off = nb__arena_alloc(ar, sizeof(int64_t) * (size_t)(T > Tx ? T : Tx));
    void *wt = !gx       ? NULL
               : s->tiles ? nb__arena_alloc(ar, sizeof(uint32_t) * (size_t)(s->G * up16(g->C * g->kh) * ckx.R * ckx.n))
                          : nb__arena_alloc(ar, sizeof(float) * (size_t)(s->G * g->C * Tx));
    if (!scratch || !off || (gw && !s->tiles && !acc) || (gx && !wt)) {
        nb__backward_fail();
        return;
    }
    direct_job j = {.s = s, .slot = slot, .scratch = scratch, .off = off, .x = gy, .xp = s->col, .acc = acc};
    if (gw && s->O > 0) { /* (no output channels: no units to split) */
        if (s->tiles) chunk_bases(off, &ckw);
        else tap_offsets(off, s, g->C, P);
        j.parts = pw, j.y = gw, j.beta = bw, j.ck = ckw;
        nb__parallel_for(pw, 1, s->tiles ? weight_grad_part_tiles : weight_grad_part, &j);
    }
    if (gx && s->tiles) { /* pairs of taps over the Og planes of gp, weights turned, ky as rows */
        pack_weight_pairs(wt, &ckx, w, s, true);
        chunk_bases(off, &ckx);
        j.parts = px, j.wp = wt, j.ck = ckx, j.y = gx, j.beta = bx;
        nb__parallel_for(px, 1, input_grad_part_tiles, &j);
    } else if (gx) { /* wt[k][c][o][ky][kx] = w[k*Og + o][c][kh-1-ky][kw-1-kx]; taps over o */
        float *wf = wt;
        for (int64_t k = 0; k < s->G; k++)
            for (int64_t c = 0; c < g->C; c++)
                for (int64_t o = 0; o < Og; o++)
                    for (int64_t ky = 0; ky < g->kh; ky++)
                        for (int64_t kx = 0; kx < g->kw; kx++)
                            put(wf + ((k * g->C + c) * Og + o) * g->kh * g->kw + ky * g->kw + kx,
                                w + ((k * Og + o) * g->C + c) * g->kh * g->kw +
                                    (g->kh - 1 - ky) * g->kw + (g->kw - 1 - kx), 1, s->ct);
        tap_offsets(off, s, Og, gps); /* the taps of gp: its channels are Og planes of gps */
        j.parts = px, j.w = wf, j.y = gx, j.beta = bx;
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
                                         : (const float *)s->col + (i * s->G + k) * Kg * L;
                nb_k_gemm_as(s->ct, false, true, Og, Kg, L, 1.0f, gy + (i * s->O + k * Og) * L, L, col,
                             L, i == 0 ? beta : 1.0f, gd + k * Og * Kg, Kg);
            }
    }
    if (nb__wants_grad(x) && (gd = nb__grad(x, &beta))) {
        float *dcol = plain ? NULL : nb__arena_alloc(n->out->internal.arena, sizeof(float) * (size_t)(Kg * L + 1));
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
                    nb_k_gemm_as(s->ct, true, false, Kg, L, Og, 1.0f, wk, Kg, gyk, L, beta, gx, L);
                } else {
                    nb_k_gemm_as(s->ct, true, false, Kg, L, Og, 1.0f, wk, Kg, gyk, L, 0.0f, dcol, L);
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
    st.ct = nb__product_type(ar, x, w);
    /* a finite value past the largest bfloat16 becomes infinite when rounded: see the top */
    if (st.ct == NB_BF16 && st.path == PATH_DIRECT &&
        !(nb_k_bf16_all_finite(nb_f32(x), x->numel) && nb_k_bf16_all_finite(nb_f32(w), w->numel)))
        st.path = PATH_IM2COL;
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
    const float *wd = nb_f32(w), *bd = b ? nb_f32(b) : NULL;
    st.tiles = st.ct == NB_BF16 && st.path == PATH_DIRECT && nb_k_conv_amx_available();
    if (st.ct == NB_BF16) { /* the direct kernels read rounded weights; every path a rounded bias */
        bool rw = st.path == PATH_DIRECT && !st.tiles; /* (the tiles round as they pack) */
        float *wr = rw ? nb__arena_alloc(ar, sizeof(float) * (size_t)w->numel + 1) : NULL;
        float *br = b ? nb__arena_alloc(ar, sizeof(float) * (size_t)b->numel + 1) : NULL;
        if ((rw && !wr) || (b && !br)) return NULL;
        if (wr) put(wr, wd, w->numel, NB_BF16), wd = wr;
        if (br) put(br, bd, b->numel, NB_BF16), bd = br;
    }
    if (st.path == PATH_DIRECT) {
        if (direct_forward(ar, &st, yd, nb_f32(x), wd, bd, keep)) return NULL;
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
                        for (int64_t l = 0; l < L; l++) yk[oc * L + l] = bd[k * Og + oc];
                nb_k_gemm_as(st.ct, false, false, Og, L, Kg, 1.0f, wd + k * Og * Kg, Kg, ck, L,
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
