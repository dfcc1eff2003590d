/* conv.c - F.conv1d / F.conv2d through the GEMM (im2col).
 *
 * For sample n and group g, with col = im2col(x[n, g]) of shape [C/G * kh * kw, OH * OW]:
 *   y[n, g] = W_g @ col (+ bias)            W_g = w[g*O/G : (g+1)*O/G] as [O/G, C/G*kh*kw]
 *   dW_g   += dy[n, g] @ col^T             (col kept from the forward)
 *   dx[n, g] += col2im(W_g^T @ dy[n, g])
 * A 1x1 kernel with stride 1 and no padding needs no im2col: col is the input itself.
 * conv1d is conv2d on [N, C, 1, L]. */
#include <stdio.h>
#include "../core/internal.h"
#include "../kernels/conv.h"
#include "../kernels/kernels.h"

typedef struct conv_saved {
    nb_conv_geom g; /* one group of one sample */
    int64_t N, G, O;
    bool plain;     /* 1x1, stride 1, no padding: the input is its own col */
    float *col;     /* [N, G, Kg, L] (NULL if plain or the weight needs no grad) */
} conv_saved;

nb_conv_opts nb_conv_defaults(void) {
    return (nb_conv_opts){.stride = {1, 1}, .padding = {0, 0}, .dilation = {1, 1}, .groups = 1,
                          .same = false};
}

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
            for (int64_t i = 0; i < s->N; i++)
                for (int64_t l = 0; l < L; l++) acc += gy[(i * s->O + o) * L + l];
            gd[o] = beta * gd[o] + (float)acc;
        }
    if (nb__wants_grad(w) && (gd = nb__grad(w, &beta))) {
        if (s->N == 0 && beta == 0.0f) memset(gd, 0, sizeof(float) * (size_t)w->numel);
        for (int64_t i = 0; i < s->N; i++)
            for (int64_t k = 0; k < s->G; k++) {
                const float *col = s->plain ? nb_f32(x) + i * xs + k * g->C * g->H * g->W
                                            : s->col + (i * s->G + k) * Kg * L;
                nb_k_gemm(false, true, Og, Kg, L, 1.0f, gy + (i * s->O + k * Og) * L, L, col, L,
                          i == 0 ? beta : 1.0f, gd + k * Og * Kg, Kg);
            }
    }
    if (nb__wants_grad(x) && (gd = nb__grad(x, &beta))) {
        float *dcol = s->plain ? NULL : nb__arena_alloc(n->out->arena, sizeof(float) * (size_t)(Kg * L + 1));
        if (!s->plain && !dcol) {
            nb__backward_fail();
            return;
        }
        if (!s->plain && beta == 0.0f) memset(gd, 0, sizeof(float) * (size_t)x->numel);
        for (int64_t i = 0; i < s->N; i++)
            for (int64_t k = 0; k < s->G; k++) {
                const float *wk = nb_f32(w) + k * Og * Kg, *gyk = gy + (i * s->O + k * Og) * L;
                float *gx = gd + i * xs + k * g->C * g->H * g->W;
                if (s->plain) {
                    nb_k_gemm(true, false, Kg, L, Og, 1.0f, wk, Kg, gyk, L, beta, gx, L);
                } else {
                    nb_k_gemm(true, false, Kg, L, Og, 1.0f, wk, Kg, gyk, L, 0.0f, dcol, L);
                    nb_k_col2im(gx, dcol, g);
                }
            }
    }
}

/* Validate and work out the geometry; dims is 1 or 2 (x is then [N, C, L] / [N, C, H, W]). */
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
    if (w->shape[1] * G != C)
        return nb__error(NB_ESHAPE, "%s: Given groups=%lld, weight of size %s, expected input%s to "
                         "have %lld channels, but got %lld channels instead", op, (long long)G,
                         wshape, nb__shape(x, 0), (long long)(w->shape[1] * G), (long long)C);
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
    s->plain = k[0] == 1 && k[1] == 1 && st[0] == 1 && st[1] == 1 && pl[0] == 0 && pl[1] == 0 &&
               ptot[0] == 0 && ptot[1] == 0;
    s->col = NULL;
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
    nb_tensor *y = nb__tensor(ar, NB_FLOAT32, (int)nd, shape);
    if (!y) return NULL;
    nb_tensor *in3[3] = {x, w, b};
    bool rec = nb__should_record(b ? 3 : 2, in3);
    int64_t Kg = g->C * g->kh * g->kw, L = g->OH * g->OW, Og = st.O / st.G;
    int64_t xs = st.G * g->C * g->H * g->W;
    bool keep = rec && !st.plain && nb__wants_grad(w); /* keep every sample's col for dW */
    float *col = NULL;
    if (!st.plain) {
        size_t n = (size_t)(Kg * L) * (size_t)(keep ? st.N * st.G : 1);
        if (!(col = nb__arena_alloc(ar, sizeof(float) * (n ? n : 1)))) return NULL;
    }
    float *yd = nb_f32(y);
    for (int64_t i = 0; i < st.N; i++) {
        for (int64_t k = 0; k < st.G; k++) {
            float *yk = yd + (i * st.O + k * Og) * L;
            const float *ck = nb_f32(x) + i * xs + k * g->C * g->H * g->W;
            if (!st.plain) {
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
    }
    if (!rec) return y;
    conv_saved *s = nb__arena_alloc(ar, sizeof *s);
    if (!s) return NULL;
    *s = st;
    s->col = keep ? col : NULL;
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
