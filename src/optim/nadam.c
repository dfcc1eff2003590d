/* nadam.c - torch.optim.NAdam (Dozat: Adam with Nesterov momentum), with PyTorch 2.x's
 * decoupled_weight_decay (NAdamW) and maximize.
 *
 *   g = maximize ? -g : g;  t += 1
 *   wd: decoupled ? p *= 1 - lr wd : g += wd p
 *   mu = b1 (1 - 0.5 * 0.96^(t psi));  mu' = b1 (1 - 0.5 * 0.96^((t+1) psi))
 *   P = P mu (float32);  P' = P mu mu' (float32, PyTorch 1.13's formula)
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  den = sqrt(v / (1 - b2^t)) + eps
 *   p -= lr (1-mu)/(1-P) g / den;  p -= lr mu'/(1-P') m / den
 * PyTorch 2.x computes P' = P mu' (1.13 multiplies by mu twice) and uses lerp for m; nabla
 * follows 1.13, the reference its tests compare with (see docs/optim.md). */
#include <math.h>
#include "optimizer.h"

NB_OPTIM_CLONES
static void nadam_update(float *restrict p, const float *restrict g, float *restrict m,
                         float *restrict v, int64_t n, float sign, float wd, float decay,
                         float b1, float one_m_b1, float b2, float one_m_b2, float bc2, float eps,
                         float neg_sg, float neg_sm) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], sign, wd);
        float mi = fmaf(gi, one_m_b1, m[i] * b1), vi = fmaf(one_m_b2 * gi, gi, v[i] * b2);
        m[i] = mi;
        v[i] = vi;
        float den = sqrtf(vi / bc2) + eps;
        float pi = p[i] * decay + (neg_sg * gi) / den;
        p[i] = pi + (neg_sm * mi) / den;
    }
}

static int nadam_step(nb_optim *o, nb_group *g) {
    double lr = nb__g(g, "lr"), b1 = nb__ge(g, "betas", 0), b2 = nb__ge(g, "betas", 1);
    double eps = nb__g(g, "eps"), wd = nb__g(g, "weight_decay"), psi = nb__g(g, "momentum_decay");
    bool decoupled = nb__gb(g, "decoupled_weight_decay"), maximize = nb__gb(g, "maximize");
    for (int i = 0; i < g->nparams; i++) {
        nb_tensor *p = g->params[i];
        if (!p->grad) continue;
        int idx = g->first + i;
        nb_value *step = nb__state_scalar(o, idx, "step", NB_VALUE_NUMBER, 0.0);
        nb_value *mp = nb__state_scalar(o, idx, "mu_product", NB_VALUE_NUMBER, 1.0);
        float *m = nb__state_tensor(o, idx, "exp_avg", p, 0.0f);
        float *v = nb__state_tensor(o, idx, "exp_avg_sq", p, 0.0f);
        if (!step || !mp || !m || !v) return NB_ENOMEM;
        double t = nb__step_inc(step);
        double bc2 = 1.0 - pow(b2, t);
        double mu = b1 * (1.0 - 0.5 * pow(0.96, t * psi));
        double mu_next = b1 * (1.0 - 0.5 * pow(0.96, (t + 1.0) * psi));
        float prod = (float)mp->num * (float)mu; /* float32 tensor *= Python float */
        mp->num = prod;
        float prod_next = prod * (float)mu * (float)mu_next;
        bool dwd = wd != 0 && decoupled;
        nadam_update(nb_f32(p), nb_f32(p->grad), m, v, p->numel, maximize ? -1.0f : 1.0f,
                     dwd ? 0.0f : (float)wd, dwd ? (float)(1.0 - lr * wd) : 1.0f, (float)b1,
                     (float)(1.0 - b1), (float)b2, (float)(1.0 - b2), (float)bc2, (float)eps,
                     (float)(-lr * (1.0 - mu) / (1.0 - prod)),
                     (float)(-lr * mu_next / (1.0 - prod_next)));
    }
    return NB_OK;
}

static int nadam_validate(const nb_value *hp, int n) {
    if (nb__validate_adam_like(hp, n) || nb__check_ge0(hp, n, "momentum_decay", "momentum_decay value"))
        return NB_EINVAL;
    return NB_OK;
}

static const nb_state_spec nadam_state[] = {{"step", NB_STATE_NUMBER},
                                            {"mu_product", NB_STATE_NUMBER},
                                            {"exp_avg", NB_STATE_LIKE},
                                            {"exp_avg_sq", NB_STATE_LIKE}};

static const nb_optim_algo nadam_algo = {.name = "NAdam", .validate = nadam_validate,
                                         .step_group = nadam_step, .state_spec = nadam_state,
                                         .nstate_spec = 4};

nb_nadam_opts nb_nadam_defaults(void) {
    return (nb_nadam_opts){.lr = 2e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                           .weight_decay = 0, .momentum_decay = 4e-3,
                           .decoupled_weight_decay = false, .maximize = false};
}

nb_optim *nb_nadam(nb_tensor *const *params, int n, const nb_nadam_opts *opts) {
    nb_nadam_opts o = opts ? *opts : nb_nadam_defaults();
    nb_value d[] = {nb_num("lr", o.lr), nb_pair("betas", o.beta1, o.beta2), nb_num("eps", o.eps),
                    nb_num("weight_decay", o.weight_decay),
                    nb_num("momentum_decay", o.momentum_decay),
                    nb_bool("decoupled_weight_decay", o.decoupled_weight_decay),
                    nb_bool("maximize", o.maximize)};
    return nb__optim_new(&nadam_algo, d, (int)(sizeof d / sizeof d[0]), params, n);
}
