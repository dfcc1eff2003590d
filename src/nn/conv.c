/* conv.c - nn.Conv1d and nn.Conv2d: weight [out, in/groups, *kernel] with kaiming_uniform
 * (a = sqrt 5), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in/groups * prod(kernel). */
#include <math.h>
#include <stdio.h>
#include "nn_internal.h"

typedef struct conv {
    nb_module base;
    int dims;
    int64_t in_c, out_c, k[2];
    nb_conv_opts o;
} conv;

static nb_tensor *conv_forward(nb_module *m, nb_arena *ar, nb_tensor *x) {
    conv *c = (conv *)m;
    nb_tensor *b = m->nparams > 1 ? m->params[1] : NULL;
    return c->dims == 2 ? nb_conv2d(ar, x, m->params[0], b, &c->o)
                        : nb_conv1d(ar, x, m->params[0], b, &c->o);
}

/* "(5, 5)" or "(5,)" */
static int tuple(char *b, size_t n, const int64_t *v, int dims) {
    return dims == 2 ? snprintf(b, n, "(%lld, %lld)", (long long)v[0], (long long)v[1])
                     : snprintf(b, n, "(%lld,)", (long long)v[0]);
}

static void conv_repr(const nb_module *m, char *buf, size_t n) {
    const conv *c = (const conv *)m;
    char k[48], s[48], p[48], d[48];
    tuple(k, sizeof k, c->k, c->dims);
    tuple(s, sizeof s, c->o.stride, c->dims);
    tuple(d, sizeof d, c->o.dilation, c->dims);
    if (c->o.same) snprintf(p, sizeof p, "same");
    else tuple(p, sizeof p, c->o.padding, c->dims);
    int len = snprintf(buf, n, "%lld, %lld, kernel_size=%s, stride=%s", (long long)c->in_c,
                       (long long)c->out_c, k, s);
    bool pad = c->o.same || c->o.padding[0] || (c->dims == 2 && c->o.padding[1]);
    bool dil = c->o.dilation[0] != 1 || (c->dims == 2 && c->o.dilation[1] != 1);
#define APPEND(...)                                                                         \
    do {                                                                                    \
        size_t off = (size_t)len < n ? (size_t)len : n;                                     \
        len += snprintf(buf + off, n - off, __VA_ARGS__);                                   \
    } while (0)
    if (pad) APPEND(", padding=%s", p);
    if (dil) APPEND(", dilation=%s", d);
    if (c->o.groups != 1) APPEND(", groups=%lld", (long long)c->o.groups);
    if (m->nparams < 2) APPEND(", bias=False");
#undef APPEND
}

static const nb_module_ops conv1d_ops = {"Conv1d", conv_forward, conv_repr, NULL};
static const nb_module_ops conv2d_ops = {"Conv2d", conv_forward, conv_repr, NULL};

static nb_module *conv_new(int dims, int64_t in_c, int64_t out_c, const int64_t *k,
                           const nb_conv_opts *opts, bool bias, nb_rng *rng) {
    const char *type = dims == 2 ? "Conv2d" : "Conv1d";
    nb_conv_opts o = opts ? *opts : nb_conv_defaults();
    if (o.groups <= 0) return nb__null(NB_EINVAL, "%s: groups must be a positive integer", type);
    if (in_c <= 0 || out_c <= 0)
        return nb__null(NB_EINVAL, "%s: in_channels and out_channels must be positive, got %lld "
                        "and %lld", type, (long long)in_c, (long long)out_c);
    if (in_c % o.groups) return nb__null(NB_EINVAL, "%s: in_channels must be divisible by groups", type);
    if (out_c % o.groups)
        return nb__null(NB_EINVAL, "%s: out_channels must be divisible by groups", type);
    for (int d = 0; d < dims; d++) {
        if (k[d] <= 0)
            return nb__null(NB_EINVAL, "%s: kernel_size must be positive, got %lld", type,
                            (long long)k[d]);
        if (o.stride[d] <= 0) return nb__null(NB_EINVAL, "%s: non-positive stride is not supported", type);
        if (o.dilation[d] <= 0)
            return nb__null(NB_EINVAL, "%s: non-positive dilation is not supported", type);
        if (!o.same && o.padding[d] < 0)
            return nb__null(NB_EINVAL, "%s: negative padding is not supported", type);
        if (o.same && o.stride[d] != 1)
            return nb__null(NB_EINVAL, "%s: padding='same' is not supported for strided "
                            "convolutions", type);
    }
    if (dims == 1) { /* keep the unused second entries tidy */
        o.stride[1] = o.dilation[1] = 1;
        o.padding[1] = 0;
    }
    if (!rng) return nb__null(NB_EINVAL, "%s: rng is NULL", type);
    conv *c = (conv *)nb_module_alloc(sizeof *c, dims == 2 ? &conv2d_ops : &conv1d_ops);
    if (!c) return NULL;
    c->dims = dims;
    c->in_c = in_c;
    c->out_c = out_c;
    c->k[0] = k[0];
    c->k[1] = dims == 2 ? k[1] : 1;
    c->o = o;
    int64_t wshape[4] = {out_c, in_c / o.groups, k[0], dims == 2 ? k[1] : 0};
    nb_tensor *w = nb_kaiming_uniform(NULL, dims + 2, wshape, sqrt(5.0), rng);
    if (nb_module_add_param(&c->base, "weight", w)) goto fail;
    if (bias) {
        int64_t fan_in = in_c / o.groups * k[0] * (dims == 2 ? k[1] : 1);
        float bound = (float)(1.0 / sqrt((double)fan_in));
        nb_tensor *b = nb_uniform(NULL, 1, &out_c, -bound, bound, rng);
        if (nb_module_add_param(&c->base, "bias", b)) goto fail;
    }
    if (nb_module_pack(&c->base)) goto fail;
    return &c->base;
fail:
    nb_module_free(&c->base);
    return NULL;
}

nb_module *nb_conv2d_new(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw,
                         const nb_conv_opts *opts, bool bias, nb_rng *rng) {
    return conv_new(2, in_channels, out_channels, (int64_t[]){kh, kw}, opts, bias, rng);
}

nb_module *nb_conv1d_new(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                         const nb_conv_opts *opts, bool bias, nb_rng *rng) {
    return conv_new(1, in_channels, out_channels, (int64_t[]){kernel_size, 1}, opts, bias, rng);
}
