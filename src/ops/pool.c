/* pool.c - F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d on [N, C, H, W] or [C, H, W]:
 * every channel plane is pooled on its own. Max pooling saves the index of each window's
 * maximum; its backward adds the upstream gradient there. */
#include "ops_internal.h"
#include "../kernels/pool.h"

typedef struct pool_saved {
    nb_pool_geom g;
    int64_t planes;
    int32_t *idx;          /* max pooling */
    bool include_pad;      /* average pooling */
    int64_t div_override;
} pool_saved;

nb_pool_opts nb_pool_defaults(void) {
    return (nb_pool_opts){.stride = {0, 0}, .padding = {0, 0}, .dilation = {1, 1},
                          .ceil_mode = false, .count_include_pad = true, .divisor_override = 0};
}

/* PyTorch's pooling_output_shape. */
static int64_t out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil) {
    int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil ? stride - 1 : 0);
    int64_t o = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;
    if (ceil && (o - 1) * stride >= in + pad) o--;
    return o;
}

static int check_input(const char *op, const nb_tensor *x) {
    if (nb__check_f32(op, x, "input")) return NB_EINVAL;
    if ((x->ndim != 3 && x->ndim != 4) || x->shape[x->ndim - 1] == 0 || x->shape[x->ndim - 2] == 0 ||
        x->shape[x->ndim - 3] == 0)
        return nb__error(NB_ESHAPE, "%s: Expected 3D or 4D (batch mode) tensor with optional 0 dim "
                         "batch size for input, but got: %s", op, nb__shape(x, 0));
    return NB_OK;
}

static int pool_setup(const char *op, const nb_tensor *x, int64_t kh, int64_t kw,
                      const nb_pool_opts *o, bool is_max, pool_saved *s) {
    if (check_input(op, x)) return NB_EINVAL;
    int64_t sh = o->stride[0] ? o->stride[0] : kh, sw = o->stride[1] ? o->stride[1] : kw;
    int64_t dh = is_max ? o->dilation[0] : 1, dw = is_max ? o->dilation[1] : 1;
    if (kh <= 0 || kw <= 0)
        return nb__error(NB_EINVAL, "%s: kernel size should be greater than zero, but got kH: %lld "
                         "kW: %lld", op, (long long)kh, (long long)kw);
    if (sh <= 0 || sw <= 0)
        return nb__error(NB_EINVAL, "%s: stride should be greater than zero, but got dH: %lld dW: "
                         "%lld", op, (long long)sh, (long long)sw);
    if (dh <= 0 || dw <= 0)
        return nb__error(NB_EINVAL, "%s: dilation should be greater than zero, but got dilationH: "
                         "%lld dilationW: %lld", op, (long long)dh, (long long)dw);
    const int64_t v[8] = {kh, kw, sh, sw, o->padding[0], o->padding[1], dh, dw};
    static const char *const what[4] = {"kernel size", "stride", "padding", "dilation"};
    for (int k = 0; k < 8; k++)
        if (v[k] > NB_MAX_WINDOW)
            return nb__error(NB_EINVAL, "%s: %s %lld is too large (at most %d)", op, what[k / 2],
                             (long long)v[k], NB_MAX_WINDOW);
    for (int d = 0; d < 2; d++) {
        if (o->padding[d] < 0)
            return nb__error(NB_EINVAL, "%s: pad must be non-negative, but got pad: %lld", op,
                             (long long)o->padding[d]);
        int64_t k = d ? kw : kh;
        if (o->padding[d] > k / 2)
            return nb__error(NB_EINVAL, "%s: pad should be at most half of kernel size, but got "
                             "pad=%lld and kernel_size=%lld", op, (long long)o->padding[d],
                             (long long)k);
    }
    if (!is_max && o->divisor_override < 0)
        return nb__error(NB_EINVAL, "%s: divisor_override must be positive, got %lld", op,
                         (long long)o->divisor_override);
    int64_t C = x->shape[x->ndim - 3], H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1];
    int64_t OH = out_size(H, kh, o->padding[0], sh, dh, o->ceil_mode);
    int64_t OW = out_size(W, kw, o->padding[1], sw, dw, o->ceil_mode);
    if (OH < 1 || OW < 1)
        return nb__error(NB_ESHAPE, "%s: Given input size: (%lldx%lldx%lld). Calculated output size: "
                         "(%lldx%lldx%lld). Output size is too small", op, (long long)C,
                         (long long)H, (long long)W, (long long)C, (long long)OH, (long long)OW);
    s->g = (nb_pool_geom){.H = H, .W = W, .kh = kh, .kw = kw, .sh = sh, .sw = sw,
                          .ph = o->padding[0], .pw = o->padding[1], .dh = dh, .dw = dw,
                          .OH = OH, .OW = OW};
    s->planes = x->numel / (H * W);
    s->idx = NULL;
    s->include_pad = o->count_include_pad;
    s->div_override = o->divisor_override;
    return NB_OK;
}

static nb_tensor *pool_out(nb_arena *ar, const nb_tensor *x, const nb_pool_geom *g) {
    int64_t shape[4];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[x->ndim - 2] = g->OH;
    shape[x->ndim - 1] = g->OW;
    return nb__out(ar, NB_FLOAT32, x->ndim, shape);
}

/* A fresh gradient is zeroed first: the pooling backwards scatter (add). */
static float *scatter_grad(nb_tensor *x) { return nb__grad_zeroed(x); }

/* Record the backward with a copy of the geometry (only when a gradient is wanted). */
static nb_tensor *record(nb_arena *ar, nb_tensor *y, nb_tensor *x, const char *op,
                         nb_backward_fn backward, const pool_saved *st) {
    if (!nb__should_record(1, &x)) return y;
    pool_saved *s = nb__arena_alloc(ar, sizeof *s);
    if (!s) return NULL;
    *s = *st;
    nb_node *n = nb__record(ar, y, op, backward, 1, &x);
    if (n) n->saved = s;
    return y;
}

/* ---- max pooling ------------------------------------------------------------------------- */
/* Planes are independent (indices are relative to their plane): big batches split by planes
 * across the pool, ~32K input elements per part at least. */
typedef struct max_pool_job {
    float *x, *y; /* forward: x read, y written; backward: x is gx (written), y is gy */
    int32_t *idx;
    const nb_pool_geom *g;
    float beta; /* backward */
} max_pool_job;

static int64_t planes_grain(const nb_pool_geom *g) { return 1 + (1 << 15) / (g->H * g->W + 1); }

static void max_pool_part(void *ctx, int64_t p0, int64_t p1) {
    const max_pool_job *j = ctx;
    int64_t P = j->g->H * j->g->W, L = j->g->OH * j->g->OW;
    nb_k_max_pool2d(j->y + p0 * L, j->idx + p0 * L, j->x + p0 * P, p1 - p0, j->g);
}

static void max_pool_backward_part(void *ctx, int64_t p0, int64_t p1) {
    const max_pool_job *j = ctx;
    int64_t P = j->g->H * j->g->W, L = j->g->OH * j->g->OW;
    nb_k_max_pool2d_backward(j->x + p0 * P, j->y + p0 * L, j->idx + p0 * L, p1 - p0, j->g, j->beta);
}

static void max_pool_backward(nb_node *n) {
    const pool_saved *s = n->saved;
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g)
        nb__parallel_for(s->planes, planes_grain(&s->g), max_pool_backward_part,
                         &(max_pool_job){g, nb_f32(n->out->grad), s->idx, &s->g, beta});
}

nb_tensor *nb_max_pool2d(nb_arena *ar, nb_tensor *x, int64_t kh, int64_t kw,
                         const nb_pool_opts *opts) {
    if (!x) return NULL;
    nb_pool_opts o = opts ? *opts : nb_pool_defaults();
    pool_saved st;
    if (pool_setup("max_pool2d", x, kh, kw, &o, true, &st)) return NULL;
    nb_tensor *y = pool_out(ar, x, &st.g);
    int32_t *idx = y ? nb__arena_alloc(ar, sizeof(int32_t) * (size_t)(y->numel + 1)) : NULL;
    if (!idx) return NULL;
    nb__parallel_for(st.planes, planes_grain(&st.g), max_pool_part,
                     &(max_pool_job){nb_f32(x), nb_f32(y), idx, &st.g, 0.0f});
    st.idx = idx;
    return record(ar, y, x, "max_pool2d", max_pool_backward, &st);
}

/* ---- average pooling --------------------------------------------------------------------- */
static void avg_pool_backward(nb_node *n) {
    const pool_saved *s = n->saved;
    float *g = scatter_grad(n->in[0]);
    if (g) nb_k_avg_pool2d_backward(g, nb_f32(n->out->grad), s->planes, &s->g, s->include_pad,
                                    s->div_override);
}

nb_tensor *nb_avg_pool2d(nb_arena *ar, nb_tensor *x, int64_t kh, int64_t kw,
                         const nb_pool_opts *opts) {
    if (!x) return NULL;
    nb_pool_opts o = opts ? *opts : nb_pool_defaults();
    pool_saved st;
    if (pool_setup("avg_pool2d", x, kh, kw, &o, false, &st)) return NULL;
    nb_tensor *y = pool_out(ar, x, &st.g);
    if (!y) return NULL;
    nb_k_avg_pool2d(nb_f32(y), nb_f32(x), st.planes, &st.g, st.include_pad, st.div_override);
    return record(ar, y, x, "avg_pool2d", avg_pool_backward, &st);
}

/* ---- adaptive average pooling ------------------------------------------------------------ */
static void adaptive_backward(nb_node *n) {
    const pool_saved *s = n->saved;
    float *g = scatter_grad(n->in[0]);
    if (g) nb_k_adaptive_avg_pool2d_backward(g, nb_f32(n->out->grad), s->planes, &s->g);
}

nb_tensor *nb_adaptive_avg_pool2d(nb_arena *ar, nb_tensor *x, int64_t oh, int64_t ow) {
    if (!x) return NULL;
    const char *op = "adaptive_avg_pool2d";
    if (nb__check_f32(op, x, "input")) return NULL;
    if (x->ndim != 3 && x->ndim != 4)
        return nb__null(NB_ESHAPE, "adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got %s",
                        nb__shape(x, 0));
    int64_t H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1];
    if (oh == -1) oh = H;
    if (ow == -1) ow = W;
    if (oh < 0 || ow < 0)
        return nb__null(NB_EINVAL, "adaptive_avg_pool2d: elements of output_size must be greater "
                        "than or equal to 0 but received {%lld, %lld}", (long long)oh, (long long)ow);
    for (int d = x->ndim - 3; d < x->ndim; d++)
        if (x->shape[d] == 0)
            return nb__null(NB_ESHAPE, "adaptive_avg_pool2d(): Expected input to have non-zero size "
                            "for non-batch dimensions, but input has sizes %s with dimension %d "
                            "being empty", nb__shape(x, 0), d);
    pool_saved st = {.g = {.H = H, .W = W, .OH = oh, .OW = ow}, .planes = x->numel / (H * W)};
    nb_tensor *y = pool_out(ar, x, &st.g);
    if (!y) return NULL;
    nb_k_adaptive_avg_pool2d(nb_f32(y), nb_f32(x), st.planes, &st.g);
    return record(ar, y, x, op, adaptive_backward, &st);
}
