/* sgd.c - torch.optim.SGD: momentum, dampening, Nesterov, L2 weight decay, maximize.
 *
 *   d = maximize ? -g : g;  d += wd * p
 *   buf = first step ? d : momentum * buf + (1 - dampening) * d
 *   d = nesterov ? d + momentum * buf : buf;   p -= lr * d
 * Each `x.add_(y, alpha=a)` of PyTorch is one fused multiply-add, as on PyTorch's CPU path. */
#include <math.h>
#include "optimizer.h"

/* mode: 0 no momentum, 1 first momentum step (buf = d), 2 momentum */
NB_ALWAYS_INLINE void sgd_loop(float *restrict p, const float *restrict g, float *restrict buf,
                               int64_t n, float neg_lr, float wd, float mom, float one_m_damp,
                               float sign, const int mode, const bool nesterov) {
    for (int64_t i = 0; i < n; i++) {
        float d = nb__l2_grad(p[i], g[i], sign, wd);
        if (mode) {
            float b = mode == 1 ? d : fmaf(d, one_m_damp, buf[i] * mom);
            buf[i] = b;
            d = nesterov ? fmaf(b, mom, d) : b;
        }
        p[i] = fmaf(d, neg_lr, p[i]);
    }
}

NB_OPTIM_CLONES
static void sgd_update(float *restrict p, const float *restrict g, float *restrict buf,
                       bool first, int64_t n, float neg_lr, float wd, float mom, float one_m_damp,
                       bool nesterov, bool maximize) {
    float sign = maximize ? -1.0f : 1.0f;
    if (!buf) sgd_loop(p, g, buf, n, neg_lr, wd, mom, one_m_damp, sign, 0, false);
    else if (first && nesterov) sgd_loop(p, g, buf, n, neg_lr, wd, mom, one_m_damp, sign, 1, true);
    else if (first) sgd_loop(p, g, buf, n, neg_lr, wd, mom, one_m_damp, sign, 1, false);
    else if (nesterov) sgd_loop(p, g, buf, n, neg_lr, wd, mom, one_m_damp, sign, 2, true);
    else sgd_loop(p, g, buf, n, neg_lr, wd, mom, one_m_damp, sign, 2, false);
}

typedef struct sgd_job {
    float *p;
    const float *g;
    float *buf;
    bool first, nesterov, maximize;
    float neg_lr, wd, mom, one_m_damp;
} sgd_job;

static void sgd_part(void *ctx, int64_t b, int64_t e) {
    const sgd_job *j = ctx;
    sgd_update(j->p + b, j->g + b, j->buf ? j->buf + b : NULL, j->first, e - b, j->neg_lr, j->wd,
               j->mom, j->one_m_damp, j->nesterov, j->maximize);
}

static int sgd_step(nb_optim *o, nb_group *g) {
    double lr = nb__g(g, "lr"), mom = nb__g(g, "momentum"), damp = nb__g(g, "dampening");
    double wd = nb__g(g, "weight_decay");
    bool nesterov = nb__gb(g, "nesterov"), maximize = nb__gb(g, "maximize");
    for (int i = 0; i < g->nparams; i++) {
        nb_tensor *p = g->params[i];
        if (!p->grad) continue;
        int idx = g->first + i;
        float *buf = NULL;
        bool first = false;
        if (mom != 0.0) {
            nb_value *v = nb__state(o, idx, "momentum_buffer");
            first = !v || v->kind != NB_VALUE_TENSOR;
            if (!(buf = nb__state_tensor(o, idx, "momentum_buffer", p, 0.0f))) return NB_ENOMEM;
        } else if (!nb__state_scalar(o, idx, "momentum_buffer", NB_VALUE_NONE, 0)) {
            return NB_ENOMEM; /* PyTorch keeps the key, with None */
        }
        sgd_job j = {nb_f32(p), nb_f32(p->grad), buf, first, nesterov, maximize, (float)-lr,
                     (float)wd, (float)mom, (float)(1.0 - damp)};
        nb__optim_for(nb_f32(p), p->numel, sgd_part, &j);
    }
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

static const nb_state_spec sgd_state[] = {{"momentum_buffer", NB_STATE_LIKE_OR_NONE}};

static const nb_optim_algo sgd_algo = {.name = "SGD", .validate = sgd_validate, .step_group = sgd_step,
                                       .state_spec = sgd_state, .nstate_spec = 1};

nb_sgd_opts nb_sgd_defaults(void) {
    return (nb_sgd_opts){.lr = 1e-3, .momentum = 0, .dampening = 0, .weight_decay = 0,
                         .nesterov = false, .maximize = false};
}

nb_optim *nb_sgd(nb_tensor *const *params, int n, const nb_sgd_opts *opts) {
    nb_sgd_opts o = opts ? *opts : nb_sgd_defaults();
    nb_value d[] = {nb_num("lr", o.lr), nb_num("momentum", o.momentum),
                    nb_num("dampening", o.dampening), nb_num("weight_decay", o.weight_decay),
                    nb_bool("nesterov", o.nesterov), nb_bool("maximize", o.maximize)};
    return nb__optim_new(&sgd_algo, d, (int)(sizeof d / sizeof d[0]), params, n);
}
