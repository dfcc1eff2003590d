/* radam.c - torch.optim.RAdam (Liu et al., rectified Adam), with PyTorch 2.x's
 * decoupled_weight_decay (RAdamW) and maximize.
 *
 *   g = maximize ? -g : g;  t += 1;  wd: decoupled ? p *= 1 - lr wd : g += wd p
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  mhat = m / (1 - b1^t)
 *   rho_inf = 2/(1-b2) - 1;  rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
 *   rho_t > 5: r = sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t))
 *              p -= mhat lr (sqrt(1-b2^t) / (sqrt(v) + eps)) r
 *   else:      p -= mhat lr
 * The products run in PyTorch's order, float32 after each, and sqrt(1-b2^t) / x is
 * reciprocal(x) * sqrt(1-b2^t) as Python's scalar / tensor is. */
#include <math.h>
#include "optimizer.h"

NB_OPTIM_CLONES
static void radam_update(float *restrict p, const float *restrict g, float *restrict m,
                         float *restrict v, int64_t n, float sign, float wd, float decay,
                         float b1, float one_m_b1, float b2, float one_m_b2, float bc1, float lr,
                         bool rectify, float bc2_sqrt, float eps, float rect) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], sign, wd);
        float mi = fmaf(gi, one_m_b1, m[i] * b1), vi = fmaf(one_m_b2 * gi, gi, v[i] * b2);
        m[i] = mi;
        v[i] = vi;
        float upd = mi / bc1 * lr;
        if (rectify) upd = upd * ((1.0f / (sqrtf(vi) + eps)) * bc2_sqrt) * rect;
        p[i] = p[i] * decay - upd;
    }
}

static int radam_step(nb_optim *o, nb_group *g) {
    double lr = nb__g(g, "lr"), b1 = nb__ge(g, "betas", 0), b2 = nb__ge(g, "betas", 1);
    double eps = nb__g(g, "eps"), wd = nb__g(g, "weight_decay");
    bool decoupled = nb__gb(g, "decoupled_weight_decay"), maximize = nb__gb(g, "maximize");
    for (int i = 0; i < g->nparams; i++) {
        nb_tensor *p = g->params[i];
        if (!p->grad) continue;
        int idx = g->first + i;
        nb_value *step = nb__state_scalar(o, idx, "step", NB_VALUE_NUMBER, 0.0);
        float *m = nb__state_tensor(o, idx, "exp_avg", p, 0.0f);
        float *v = nb__state_tensor(o, idx, "exp_avg_sq", p, 0.0f);
        if (!step || !m || !v) return NB_ENOMEM;
        double t = nb__step_inc(step);
        double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
        double rho_inf = 2.0 / (1.0 - b2) - 1.0;
        double rho_t = rho_inf - 2.0 * t * pow(b2, t) / bc2;
        double rect = rho_t > 5.0 ? sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf /
                                         ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                                  : 0.0;
        bool dwd = wd != 0 && decoupled;
        radam_update(nb_f32(p), nb_f32(p->grad), m, v, p->numel, maximize ? -1.0f : 1.0f,
                     dwd ? 0.0f : (float)wd, dwd ? (float)(1.0 - lr * wd) : 1.0f, (float)b1,
                     (float)(1.0 - b1), (float)b2, (float)(1.0 - b2), (float)bc1, (float)lr,
                     rho_t > 5.0, (float)sqrt(bc2), (float)eps, (float)rect);
    }
    return NB_OK;
}

static const nb_state_spec radam_state[] = {{"step", NB_STATE_NUMBER}, {"exp_avg", NB_STATE_LIKE},
                                            {"exp_avg_sq", NB_STATE_LIKE}};

static const nb_optim_algo radam_algo = {.name = "RAdam", .validate = nb__validate_adam_like,
                                         .step_group = radam_step, .state_spec = radam_state,
                                         .nstate_spec = 3};

nb_radam_opts nb_radam_defaults(void) {
    return (nb_radam_opts){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                           .weight_decay = 0, .decoupled_weight_decay = false, .maximize = false};
}

nb_optim *nb_radam(nb_tensor *const *params, int n, const nb_radam_opts *opts) {
    nb_radam_opts o = opts ? *opts : nb_radam_defaults();
    nb_value d[] = {nb_num("lr", o.lr), nb_pair("betas", o.beta1, o.beta2), nb_num("eps", o.eps),
                    nb_num("weight_decay", o.weight_decay),
                    nb_bool("decoupled_weight_decay", o.decoupled_weight_decay),
                    nb_bool("maximize", o.maximize)};
    return nb__optim_new(&radam_algo, d, (int)(sizeof d / sizeof d[0]), params, n);
}
