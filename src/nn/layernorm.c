/* layernorm.c - nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True): weight
 * ones and bias zeros of normalized_shape. */
#include <stdio.h>
#include "nn_internal.h"

typedef struct layernorm {
    nb_module base;
    int nd;
    int64_t shape[NB_MAX_DIMS];
    double eps;
} layernorm;

static nb_tensor *ln_forward(nb_module *m, nb_arena *ar, nb_tensor *x) {
    layernorm *l = (layernorm *)m;
    return nb_layer_norm(ar, x, l->nd, l->shape, m->nparams ? m->params[0] : NULL,
                         m->nparams ? m->params[1] : NULL, l->eps);
}

static void ln_repr(const nb_module *m, char *buf, size_t n) {
    const layernorm *l = (const layernorm *)m;
    char sh[160];
    size_t o = 0;
    o += (size_t)snprintf(sh + o, sizeof sh - o, "(");
    for (int i = 0; i < l->nd && o < sizeof sh; i++)
        o += (size_t)snprintf(sh + o, sizeof sh - o, i ? ", %lld" : "%lld", (long long)l->shape[i]);
    if (o < sizeof sh) snprintf(sh + o, sizeof sh - o, l->nd == 1 ? ",)" : ")");
    snprintf(buf, n, "%s, eps=%s, elementwise_affine=%s", sh, nb__pyfloat(l->eps, 0),
             m->nparams ? "True" : "False");
}

static const nb_module_ops ln_ops = {"LayerNorm", ln_forward, ln_repr, NULL};

nb_module *nb_layernorm_new(int nshape, const int64_t *normalized_shape, double eps,
                            bool elementwise_affine) {
    if (nshape < 1 || nshape > NB_MAX_DIMS || !normalized_shape)
        return nb__null(NB_EINVAL, "LayerNorm: normalized_shape must have 1 to %d dims, got %d",
                        NB_MAX_DIMS, nshape);
    for (int i = 0; i < nshape; i++)
        if (normalized_shape[i] <= 0)
            return nb__null(NB_EINVAL, "LayerNorm: normalized_shape %s must be positive",
                            nb__shape_of(nshape, normalized_shape, 0));
    if (!(eps >= 0)) return nb__null(NB_EINVAL, "LayerNorm: eps must be >= 0, got %s", nb__pyfloat(eps, 0));
    layernorm *l = (layernorm *)nb_module_alloc(sizeof *l, &ln_ops);
    if (!l) return NULL;
    l->nd = nshape;
    memcpy(l->shape, normalized_shape, sizeof(int64_t) * (size_t)nshape);
    l->eps = eps;
    if (elementwise_affine &&
        (nb_module_add_param(&l->base, "weight", nb_ones(NULL, nshape, normalized_shape)) ||
         nb_module_add_param(&l->base, "bias", nb_zeros(NULL, nshape, normalized_shape)) ||
         nb_module_pack(&l->base))) {
        nb_module_free(&l->base);
        return NULL;
    }
    return &l->base;
}
