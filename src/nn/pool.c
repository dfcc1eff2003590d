/* pool.c - nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d (no parameters). */
#include <stdio.h>
#include "nn_internal.h"

typedef struct pool {
    nb_module base;
    int64_t k[2];
    nb_pool_opts o;
} pool;

#define P(m) ((const pool *)(m))

static nb_tensor *max_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) {
    return nb_max_pool2d(ar, x, P(m)->k[0], P(m)->k[1], &P(m)->o);
}
static nb_tensor *avg_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) {
    return nb_avg_pool2d(ar, x, P(m)->k[0], P(m)->k[1], &P(m)->o);
}
static nb_tensor *adaptive_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) {
    return nb_adaptive_avg_pool2d(ar, x, P(m)->k[0], P(m)->k[1]);
}

/* PyTorch prints what it was given: an int for a square pair, else a tuple. */
static const char *pair(char *b, size_t n, int64_t a, int64_t c) {
    if (a == c) snprintf(b, n, "%lld", (long long)a);
    else snprintf(b, n, "(%lld, %lld)", (long long)a, (long long)c);
    return b;
}

static void max_repr(const nb_module *m, char *buf, size_t n) {
    const pool *p = P(m);
    char k[48], s[48], pd[48], d[48];
    snprintf(buf, n, "kernel_size=%s, stride=%s, padding=%s, dilation=%s, ceil_mode=%s",
             pair(k, sizeof k, p->k[0], p->k[1]),
             pair(s, sizeof s, p->o.stride[0] ? p->o.stride[0] : p->k[0],
                  p->o.stride[1] ? p->o.stride[1] : p->k[1]),
             pair(pd, sizeof pd, p->o.padding[0], p->o.padding[1]),
             pair(d, sizeof d, p->o.dilation[0], p->o.dilation[1]), p->o.ceil_mode ? "True" : "False");
}

static void avg_repr(const nb_module *m, char *buf, size_t n) {
    const pool *p = P(m);
    char k[48], s[48], pd[48];
    snprintf(buf, n, "kernel_size=%s, stride=%s, padding=%s", pair(k, sizeof k, p->k[0], p->k[1]),
             pair(s, sizeof s, p->o.stride[0] ? p->o.stride[0] : p->k[0],
                  p->o.stride[1] ? p->o.stride[1] : p->k[1]),
             pair(pd, sizeof pd, p->o.padding[0], p->o.padding[1]));
}

static void adaptive_repr(const nb_module *m, char *buf, size_t n) {
    const pool *p = P(m);
    char a[24], b[24];
    if (p->k[0] == p->k[1] && p->k[0] >= 0) {
        snprintf(buf, n, "output_size=%lld", (long long)p->k[0]);
        return;
    }
    snprintf(a, sizeof a, p->k[0] < 0 ? "None" : "%lld", (long long)p->k[0]);
    snprintf(b, sizeof b, p->k[1] < 0 ? "None" : "%lld", (long long)p->k[1]);
    snprintf(buf, n, "output_size=(%s, %s)", a, b);
}

static const nb_module_ops max_ops = {"MaxPool2d", max_fwd, max_repr, NULL};
static const nb_module_ops avg_ops = {"AvgPool2d", avg_fwd, avg_repr, NULL};
static const nb_module_ops adaptive_ops = {"AdaptiveAvgPool2d", adaptive_fwd, adaptive_repr, NULL};

static nb_module *pool_new(const nb_module_ops *ops, int64_t kh, int64_t kw, const nb_pool_opts *opts) {
    nb_pool_opts o = opts ? *opts : nb_pool_defaults();
    if (ops != &adaptive_ops) {
        if (kh <= 0 || kw <= 0)
            return nb__null(NB_EINVAL, "%s: kernel size should be greater than zero, but got kH: "
                            "%lld kW: %lld", ops->type, (long long)kh, (long long)kw);
        for (int d = 0; d < 2; d++) {
            int64_t k = d ? kw : kh;
            if (o.stride[d] < 0)
                return nb__null(NB_EINVAL, "%s: stride should be greater than zero, but got %lld",
                                ops->type, (long long)o.stride[d]);
            if (o.padding[d] < 0 || o.padding[d] > k / 2)
                return nb__null(NB_EINVAL, "%s: pad should be at most half of kernel size, but "
                                "got pad=%lld and kernel_size=%lld", ops->type,
                                (long long)o.padding[d], (long long)k);
            if (ops == &max_ops && o.dilation[d] <= 0)
                return nb__null(NB_EINVAL, "%s: dilation should be greater than zero, but got %lld",
                                ops->type, (long long)o.dilation[d]);
        }
        if (ops == &avg_ops && o.divisor_override < 0)
            return nb__null(NB_EINVAL, "%s: divisor_override must be positive, got %lld", ops->type,
                            (long long)o.divisor_override);
    } else if (kh < -1 || kw < -1) {
        return nb__null(NB_EINVAL, "AdaptiveAvgPool2d: elements of output_size must be greater "
                        "than or equal to 0 but received {%lld, %lld}", (long long)kh, (long long)kw);
    }
    pool *p = (pool *)nb_module_alloc(sizeof *p, ops);
    if (!p) return NULL;
    p->k[0] = kh;
    p->k[1] = kw;
    p->o = o;
    return &p->base;
}

nb_module *nb_max_pool2d_new(int64_t kh, int64_t kw, const nb_pool_opts *opts) {
    return pool_new(&max_ops, kh, kw, opts);
}

nb_module *nb_avg_pool2d_new(int64_t kh, int64_t kw, const nb_pool_opts *opts) {
    return pool_new(&avg_ops, kh, kw, opts);
}

nb_module *nb_adaptive_avg_pool2d_new(int64_t oh, int64_t ow) {
    return pool_new(&adaptive_ops, oh, ow, NULL);
}
