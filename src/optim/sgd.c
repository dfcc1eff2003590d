/* sgd.c - torch.optim.SGD: momentum, dampening, Nesterov, L2 weight decay, maximize.
 *
 *   d = maximize ? -g : g;  d += wd * p
 *   buf = first step ? d : momentum * buf + (1 - dampening) * d
 *   d = nesterov ? d + momentum * buf : buf;   p -= lr * d
 * Each `x.add_(y, alpha=a)` of PyTorch is one fused multiply-add, as on PyTorch's CPU path.
 * A row-sparse gradient (a sparse Embedding's) is applied to its rows; with momentum the
 * buffer stays dense (PyTorch keeps a sparse one whose rows add up to the same values). */
#include <math.h>
#include "optimizer.h"

typedef struct sgd_coef {
    float neg_lr, wd, mom, one_m_damp, sign;
    int mode; /* 0 no momentum, 1 first momentum step (buf = d), 2 momentum */
    bool nesterov;
} sgd_coef;

NB_ALWAYS_INLINE void sgd_loop(float *restrict p, const float *restrict g, float *restrict buf,
                               int64_t n, sgd_coef c, const int mode, const bool nesterov) {
    for (int64_t i = 0; i < n; i++) {
        float d = nb__l2_grad(p[i], g[i], c.sign, c.wd);
        if (mode) {
            float b = mode == 1 ? d : fmaf(d, c.one_m_damp, buf[i] * c.mom);
            buf[i] = b;
            d = nesterov ? fmaf(b, c.mom, d) : b;
        }
        p[i] = fmaf(d, c.neg_lr, p[i]);
    }
}

NB_OPTIM_CLONES
static void sgd_update(float *restrict p, const float *restrict g, float *restrict buf, int64_t n, sgd_coef c) {
    if (c.mode == 0) sgd_loop(p, g, buf, n, c, 0, false);
    else if (c.mode == 1 && c.nesterov) sgd_loop(p, g, buf, n, c, 1, true);
    else if (c.mode == 1) sgd_loop(p, g, buf, n, c, 1, false);
    else if (c.nesterov) sgd_loop(p, g, buf, n, c, 2, true);
    else sgd_loop(p, g, buf, n, c, 2, false);
}

static void sgd_group(const nb_group *g, void *coef) {
    double mom = nb__g(g, "momentum");
    *(sgd_coef *)coef = (sgd_coef){(float)-nb__g(g, "lr"), (float)nb__g(g, "weight_decay"), (float)mom,
                                   (float)(1.0 - nb__g(g, "dampening")), nb__gb(g, "maximize") ? -1.0f : 1.0f,
                                   mom != 0.0 ? 2 : 0, nb__gb(g, "nesterov")};
}

static void sgd_param(nb_optim_slot *s, void *coef) {
    sgd_coef *c = coef;
    if (c->mode && (s->fresh & 1)) c->mode = 1; /* the buffer was just made: buf = d */
}

static void sgd_range(const nb_optim_slot *s, int64_t b, int64_t e) {
    const sgd_coef *c = s->coef;
    /* the momentum step, bit-identical, without the stalls a denormal buffer costs */
    if (c->mode == 2 && nb_k_sgd_momentum512(s->p + b, s->g + b, s->t[0] + b, e - b, c->sign, c->wd, c->mom,
                                             c->one_m_damp, c->neg_lr, c->nesterov))
        return;
    sgd_update(s->p + b, s->g + b, c->mode ? s->t[0] + b : NULL, e - b, *c);
}

/* A row-sparse gradient, entries in order (repeated rows are added one after the other). */
static int sgd_sparse(nb_optim *o, const nb_optim_slot *s) {
    const sgd_coef *c = s->coef;
    int64_t nnz = nb_sparse_nnz(s->grad), dim = s->param->shape[1];
    const int32_t *rows = nb_sparse_indices(s->grad);
    const float *vals = nb_sparse_values(s->grad);
    if (!c->mode) {
        for (int64_t k = 0; k < nnz; k++) {
            float *p = s->p + rows[k] * dim;
            for (int64_t j = 0; j < dim; j++) p[j] = fmaf(c->sign * vals[k * dim + j], c->neg_lr, p[j]);
        }
        return NB_OK;
    }
    /* momentum: buf = momentum buf + (1 - dampening) d with d scattered densely, then the
     * dense rule over every element (d = 0 where the gradient has no row) */
    float *buf = s->t[0], *d = nb__optim_scratch(o, (size_t)s->n);
    if (!d) return NB_ENOMEM;
    memset(d, 0, sizeof(float) * (size_t)s->n);
    for (int64_t k = 0; k < nnz; k++)
        for (int64_t j = 0; j < dim; j++) d[rows[k] * dim + j] += c->sign * vals[k * dim + j];
    sgd_coef dc = *c;
    dc.sign = 1.0f;
    sgd_update(s->p, d, buf, s->n, dc);
    return NB_OK;
}

static int sgd_sparse_check(const nb_group *g) {
    if (nb__g(g, "weight_decay") != 0)
        return nb__error(NB_EINVAL, "add(sparse, dense) is not supported. Use add(dense, sparse) instead.");
    return NB_OK;
}

static int sgd_validate(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate") || nb__check_ge0(hp, n, "momentum", "momentum value") ||
        nb__check_ge0(hp, n, "weight_decay", "weight_decay value"))
        return NB_EINVAL;
    if (nb__hp_bool(hp, n, "nesterov") && (nb__hp(hp, n, "momentum") <= 0 || nb__hp(hp, n, "dampening") != 0))
        return nb__error(NB_EINVAL, "Nesterov momentum requires a momentum and zero dampening");
    return NB_OK;
}

static const nb_state_spec sgd_state[] = {NB_SPEC_X("momentum_buffer", LIKE_OR_NONE, .when = "momentum")};

static const nb_value sgd_defaults[] = {NB_DEF_NUM("lr", 1e-3), NB_DEF_NUM("momentum", 0),
                                        NB_DEF_NUM("dampening", 0), NB_DEF_NUM("weight_decay", 0),
                                        NB_DEF_BOOL("nesterov", 0), NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"nesterov", "maximize", NULL};

const nb_optim_algo nb__sgd_algo = {
    .name = "SGD", .defaults = sgd_defaults, .ndefaults = NB_COUNT(sgd_defaults), .validate = sgd_validate,
    .state_spec = sgd_state, .nstate_spec = 1, .coef_size = sizeof(sgd_coef), .group_coef = sgd_group,
    .param_coef = sgd_param, .update = sgd_range, .update_sparse = sgd_sparse,
    .sparse_check = sgd_sparse_check,
    .added = added};

nb_sgd_opts nb_sgd_defaults(void) {
    return (nb_sgd_opts){.lr = 1e-3, .momentum = 0, .dampening = 0, .weight_decay = 0,
                         .nesterov = false, .maximize = false};
}

nb_optim *nb_sgd(nb_tensor *const *params, int n, const nb_sgd_opts *opts) {
    nb_sgd_opts o = opts ? *opts : nb_sgd_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_num("momentum", o.momentum),
                     nb_num("dampening", o.dampening), nb_num("weight_decay", o.weight_decay),
                     nb_bool("nesterov", o.nesterov), nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__sgd_algo, params, n, kw, NB_COUNT(kw));
}
