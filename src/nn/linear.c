/* linear.c - nn.Linear(in_features, out_features, bias) with PyTorch's default init. */
#include <math.h>
#include <stdio.h>
#include "nn_internal.h"

typedef struct linear {
    nb_module base;
    int64_t in_f, out_f;
} linear;

static nb_tensor *linear_forward(nb_module *m, nb_arena *ar, nb_tensor *x) {
    return nb_linear(ar, x, m->params[0], m->nparams > 1 ? m->params[1] : NULL);
}

static void linear_repr(const nb_module *m, char *buf, size_t n) {
    const linear *l = (const linear *)m;
    snprintf(buf, n, "in_features=%lld, out_features=%lld, bias=%s", (long long)l->in_f,
             (long long)l->out_f, m->nparams > 1 ? "True" : "False");
}

static const nb_module_ops linear_ops = {"Linear", linear_forward, linear_repr, NULL};

nb_module *nb_linear_new(int64_t in_features, int64_t out_features, bool bias, nb_rng *rng) {
    if (in_features < 0 || out_features < 0)
        return nb__null(NB_EINVAL, "Linear: sizes must be >= 0, got in_features=%lld, "
                        "out_features=%lld", (long long)in_features, (long long)out_features);
    if (!rng) return nb__null(NB_EINVAL, "Linear: rng is NULL");
    linear *l = (linear *)nb_module_alloc(sizeof *l, &linear_ops);
    if (!l) return NULL;
    l->in_f = in_features;
    l->out_f = out_features;
    /* reset_parameters(): kaiming_uniform_(weight, a=sqrt(5)); bias ~ U(-1/sqrt(fan_in), ..) */
    int64_t wshape[2] = {out_features, in_features};
    nb_tensor *w = nb_kaiming_uniform(NULL, 2, wshape, sqrt(5.0), rng);
    if (nb_module_add_param(&l->base, "weight", w)) goto fail;
    if (bias) {
        float bound = in_features > 0 ? (float)(1.0 / sqrt((double)in_features)) : 0.0f;
        nb_tensor *b = nb_uniform(NULL, 1, &out_features, -bound, bound, rng);
        if (nb_module_add_param(&l->base, "bias", b)) goto fail;
    }
    if (nb_module_pack(&l->base)) goto fail;
    return &l->base;
fail:
    nb_module_free(&l->base);
    return NULL;
}
