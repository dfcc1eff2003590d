/* batchnorm.c - nn.BatchNorm1d / nn.BatchNorm2d: weight ones, bias zeros (if affine);
 * buffers running_mean zeros, running_var ones, num_batches_tracked 0 (if tracking), in
 * PyTorch's state order. Each training forward counts a batch; momentum NAN (PyTorch's None)
 * gives the cumulative average with factor 1/num_batches_tracked. */
#include <math.h>
#include <stdio.h>
#include "nn_internal.h"

typedef struct batchnorm {
    nb_module base;
    int dims; /* 1 or 2 */
    int64_t C;
    nb_batchnorm_opts o;
    nb_tensor *w, *b, *rm, *rv, *nbt;
} batchnorm;

nb_batchnorm_opts nb_batchnorm_defaults(void) {
    return (nb_batchnorm_opts){.eps = 1e-5, .momentum = 0.1, .affine = true,
                               .track_running_stats = true};
}

static nb_tensor *bn_forward(nb_module *m, nb_arena *ar, nb_tensor *x) {
    batchnorm *bn = (batchnorm *)m;
    if (bn->dims == 2 && x->ndim != 4)
        return nb__null(NB_ESHAPE, "BatchNorm2d: expected 4D input (got %dD input)", x->ndim);
    if (bn->dims == 1 && x->ndim != 2 && x->ndim != 3)
        return nb__null(NB_ESHAPE, "BatchNorm1d: expected 2D or 3D input (got %dD input)", x->ndim);
    bool track = bn->o.track_running_stats, counting = m->training && track;
    double factor = bn->o.momentum;
    int32_t count = track ? nb_i32(bn->nbt)[0] : 0;
    if (counting && isnan(bn->o.momentum)) factor = 1.0 / (double)(count + 1);
    else if (isnan(factor)) factor = 0.0;
    bool use_batch = m->training || !track;
    nb_tensor *rm = !m->training || track ? bn->rm : NULL, *rv = !m->training || track ? bn->rv : NULL;
    nb_tensor *y = nb_batch_norm(ar, x, rm, rv, bn->w, bn->b, use_batch, factor, bn->o.eps);
    if (y && counting) nb_i32(bn->nbt)[0] = count + 1; /* only once the batch was accepted */
    return y;
}

static void bn_repr(const nb_module *m, char *buf, size_t n) {
    const batchnorm *bn = (const batchnorm *)m;
    snprintf(buf, n, "%lld, eps=%s, momentum=%s, affine=%s, track_running_stats=%s",
             (long long)bn->C, nb__pyfloat(bn->o.eps, 0),
             isnan(bn->o.momentum) ? "None" : nb__pyfloat(bn->o.momentum, 1),
             bn->o.affine ? "True" : "False", bn->o.track_running_stats ? "True" : "False");
}

static const nb_module_ops bn1_ops = {"BatchNorm1d", bn_forward, bn_repr, NULL};
static const nb_module_ops bn2_ops = {"BatchNorm2d", bn_forward, bn_repr, NULL};

static nb_module *bn_new(int dims, int64_t C, const nb_batchnorm_opts *opts) {
    const char *type = dims == 2 ? "BatchNorm2d" : "BatchNorm1d";
    nb_batchnorm_opts o = opts ? *opts : nb_batchnorm_defaults();
    if (C <= 0)
        return nb__null(NB_EINVAL, "%s: num_features must be positive, got %lld", type, (long long)C);
    if (!(o.eps >= 0)) return nb__null(NB_EINVAL, "%s: eps must be >= 0, got %s", type, nb__pyfloat(o.eps, 0));
    if (!isnan(o.momentum) && !isfinite(o.momentum))
        return nb__null(NB_EINVAL, "%s: momentum must be finite (or NAN for None)", type);
    batchnorm *bn = (batchnorm *)nb_module_alloc(sizeof *bn, dims == 2 ? &bn2_ops : &bn1_ops);
    if (!bn) return NULL;
    bn->dims = dims;
    bn->C = C;
    bn->o = o;
    if (o.affine) {
        if (nb_module_add_param(&bn->base, "weight", nb_ones(NULL, 1, &C)) ||
            nb_module_add_param(&bn->base, "bias", nb_zeros(NULL, 1, &C)))
            goto fail;
    }
    if (o.track_running_stats) {
        nb_tensor *nbt = nb__tensor(NULL, NB_INT32, 0, NULL);
        if (nbt) nb_i32(nbt)[0] = 0;
        if (nb_module_add_buffer(&bn->base, "running_mean", nb_zeros(NULL, 1, &C)) ||
            nb_module_add_buffer(&bn->base, "running_var", nb_ones(NULL, 1, &C)) ||
            nb_module_add_buffer(&bn->base, "num_batches_tracked", nbt))
            goto fail;
    }
    if (nb_module_pack(&bn->base)) goto fail;
    /* tensor pointers stay valid after packing (only their data moves into the slab) */
    bn->w = o.affine ? bn->base.params[0] : NULL;
    bn->b = o.affine ? bn->base.params[1] : NULL;
    bn->rm = o.track_running_stats ? bn->base.buffers[0] : NULL;
    bn->rv = o.track_running_stats ? bn->base.buffers[1] : NULL;
    bn->nbt = o.track_running_stats ? bn->base.buffers[2] : NULL;
    return &bn->base;
fail:
    nb_module_free(&bn->base);
    return NULL;
}

nb_module *nb_batchnorm1d_new(int64_t num_features, const nb_batchnorm_opts *opts) {
    return bn_new(1, num_features, opts);
}

nb_module *nb_batchnorm2d_new(int64_t num_features, const nb_batchnorm_opts *opts) {
    return bn_new(2, num_features, opts);
}

/* ---- torch.optim.swa_utils.update_bn ------------------------------------------------------- */
static int bn_walk(nb_module *m, batchnorm **out, int n) {
    if (m->ops == &bn1_ops || m->ops == &bn2_ops) {
        if (out) out[n] = (batchnorm *)m;
        n++;
    }
    for (int i = 0; i < m->nchildren; i++) n = bn_walk(m->children[i], out, n);
    return n;
}

int nb_update_bn(nb_module *model, nb_input_fn next, void *user, nb_arena *ar) {
    if (!model || !next || !ar)
        return nb__error(NB_EINVAL, "update_bn: %s is NULL", !model ? "the model" : !next ? "next" : "the arena");
    int n = bn_walk(model, NULL, 0);
    if (n == 0) return NB_OK; /* PyTorch returns before reading the loader */
    batchnorm **bns = nb__malloc(sizeof *bns * (size_t)n);
    double *momenta = nb__malloc(sizeof *momenta * (size_t)n);
    if (!bns || !momenta) {
        nb__free(bns);
        nb__free(momenta);
        return nb__error(NB_ENOMEM, "update_bn: out of memory");
    }
    bn_walk(model, bns, 0);
    int rc = NB_OK;
    for (int i = 0; i < n && rc == NB_OK; i++)
        if (!bns[i]->o.track_running_stats) /* PyTorch fails on zeros_like(None) */
            rc = nb__error(NB_EINVAL, "update_bn: a %s has no running statistics (track_running_stats=False)",
                           bns[i]->base.ops->type);
    if (rc == NB_OK) {
        for (int i = 0; i < n; i++) {
            batchnorm *bn = bns[i];
            memset(bn->rm->data, 0, sizeof(float) * (size_t)bn->C);
            for (int64_t c = 0; c < bn->C; c++) nb_f32(bn->rv)[c] = 1.0f;
            momenta[i] = bn->o.momentum;
            bn->o.momentum = NAN; /* None: the cumulative average over the batches */
            nb_i32(bn->nbt)[0] = 0;
        }
        bool was_training = model->training, grad = nb_set_grad_enabled(false);
        nb_module_train(model, true);
        for (;;) {
            nb_tensor *x = NULL;
            nb_arena_reset(ar);
            int got = next(user, ar, &x);
            if (got <= 0) {
                rc = got < 0 ? got : NB_OK;
                break;
            }
            if (!x) {
                rc = nb__error(NB_EINVAL, "update_bn: next returned a batch but no tensor");
                break;
            }
            if (!nb_forward(model, ar, x)) {
                rc = nb_last_status();
                break;
            }
        }
        nb_arena_reset(ar);
        for (int i = 0; i < n; i++) bns[i]->o.momentum = momenta[i];
        nb_module_train(model, was_training);
        nb_set_grad_enabled(grad);
    }
    nb__free(bns);
    nb__free(momenta);
    return rc;
}
