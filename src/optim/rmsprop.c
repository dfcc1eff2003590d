/* rmsprop.c - torch.optim.RMSprop (Hinton), with momentum, centering, L2 decay and maximize.
 *
 *   g = maximize ? -g : g;  g += wd * p
 *   sq = alpha sq + (1-alpha) g^2
 *   centered: ga = alpha ga + (1-alpha) g;  avg = sqrt(sq - ga^2) + eps
 *   else:     avg = sqrt(sq) + eps            (eps outside the square root)
 *   momentum > 0: buf = momentum buf + g / avg;  p -= lr buf
 *   else:         p -= lr g / avg
 * State "step" is a Python int in PyTorch (counted, unused by the math). */
#include <math.h>
#include "optimizer.h"

NB_ALWAYS_INLINE void rmsprop_loop(float *restrict p, const float *restrict g, float *restrict sq,
                                   float *restrict ga, float *restrict buf, int64_t n, float sign,
                                   float wd, float alpha, float one_m_alpha, float eps, float mom,
                                   float neg_lr, const bool centered, const bool momentum) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], sign, wd);
        float s = fmaf(one_m_alpha * gi, gi, sq[i] * alpha);
        sq[i] = s;
        float avg;
        if (centered) {
            float a = fmaf(gi, one_m_alpha, ga[i] * alpha);
            ga[i] = a;
            avg = sqrtf(fmaf(-a, a, s)) + eps; /* addcmul(ga, ga, value=-1) */
        } else {
            avg = sqrtf(s) + eps;
        }
        if (momentum) {
            float b = buf[i] * mom + gi / avg;
            buf[i] = b;
            p[i] = fmaf(b, neg_lr, p[i]);
        } else {
            p[i] = p[i] + (neg_lr * gi) / avg;
        }
    }
}

NB_OPTIM_CLONES
static void rmsprop_update(float *restrict p, const float *restrict g, float *restrict sq,
                           float *restrict ga, float *restrict buf, int64_t n, float sign,
                           float wd, float alpha, float one_m_alpha, float eps, float mom,
                           float neg_lr) {
    if (ga && buf) rmsprop_loop(p, g, sq, ga, buf, n, sign, wd, alpha, one_m_alpha, eps, mom, neg_lr, true, true);
    else if (ga) rmsprop_loop(p, g, sq, ga, buf, n, sign, wd, alpha, one_m_alpha, eps, mom, neg_lr, true, false);
    else if (buf) rmsprop_loop(p, g, sq, ga, buf, n, sign, wd, alpha, one_m_alpha, eps, mom, neg_lr, false, true);
    else rmsprop_loop(p, g, sq, ga, buf, n, sign, wd, alpha, one_m_alpha, eps, mom, neg_lr, false, false);
}

static int rmsprop_step(nb_optim *o, nb_group *g) {
    double lr = nb__g(g, "lr"), alpha = nb__g(g, "alpha"), eps = nb__g(g, "eps");
    double wd = nb__g(g, "weight_decay"), mom = nb__g(g, "momentum");
    bool centered = nb__gb(g, "centered"), maximize = nb__gb(g, "maximize");
    for (int i = 0; i < g->nparams; i++) {
        nb_tensor *p = g->params[i];
        if (!p->grad) continue;
        int idx = g->first + i;
        nb_value *step = nb__state_scalar(o, idx, "step", NB_VALUE_INT, 0.0);
        float *sq = nb__state_tensor(o, idx, "square_avg", p, 0.0f);
        float *buf = mom > 0 ? nb__state_tensor(o, idx, "momentum_buffer", p, 0.0f) : NULL;
        float *ga = centered ? nb__state_tensor(o, idx, "grad_avg", p, 0.0f) : NULL;
        if (!step || !sq || (mom > 0 && !buf) || (centered && !ga)) return NB_ENOMEM;
        step->num += 1;
        rmsprop_update(nb_f32(p), nb_f32(p->grad), sq, ga, buf, p->numel, maximize ? -1.0f : 1.0f,
                       (float)wd, (float)alpha, (float)(1.0 - alpha), (float)eps, (float)mom,
                       (float)-lr);
    }
    return NB_OK;
}

static int rmsprop_validate(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate") || nb__check_ge0(hp, n, "eps", "epsilon value") ||
        nb__check_ge0(hp, n, "momentum", "momentum value") ||
        nb__check_ge0(hp, n, "weight_decay", "weight_decay value") ||
        nb__check_ge0(hp, n, "alpha", "alpha value"))
        return NB_EINVAL;
    return NB_OK;
}

static const nb_state_spec rmsprop_state[] = {{"step", NB_STATE_NUMBER},
                                              {"square_avg", NB_STATE_LIKE},
                                              {"momentum_buffer", NB_STATE_LIKE},
                                              {"grad_avg", NB_STATE_LIKE}};

static const nb_optim_algo rmsprop_algo = {.name = "RMSprop", .validate = rmsprop_validate,
                                           .step_group = rmsprop_step,
                                           .state_spec = rmsprop_state, .nstate_spec = 4};

nb_rmsprop_opts nb_rmsprop_defaults(void) {
    return (nb_rmsprop_opts){.lr = 1e-2, .alpha = 0.99, .eps = 1e-8, .weight_decay = 0,
                             .momentum = 0, .centered = false, .maximize = false};
}

nb_optim *nb_rmsprop(nb_tensor *const *params, int n, const nb_rmsprop_opts *opts) {
    nb_rmsprop_opts o = opts ? *opts : nb_rmsprop_defaults();
    nb_value d[] = {nb_num("lr", o.lr), nb_num("momentum", o.momentum), nb_num("alpha", o.alpha),
                    nb_num("eps", o.eps), nb_bool("centered", o.centered),
                    nb_num("weight_decay", o.weight_decay), nb_bool("maximize", o.maximize)};
    return nb__optim_new(&rmsprop_algo, d, (int)(sizeof d / sizeof d[0]), params, n);
}
