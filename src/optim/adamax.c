/* adamax.c - torch.optim.Adamax (Kingma & Ba, the infinity-norm variant of Adam).
 *
 *   g = maximize ? -g : g;  t += 1;  g += wd * p
 *   m = b1 m + (1-b1) g;  u = max(b2 u, |g| + eps)      (eps added before the max)
 *   p -= lr / (1 - b1^t) * m / u */
#include <math.h>
#include "optimizer.h"

NB_OPTIM_CLONES
static void adamax_update(float *restrict p, const float *restrict g, float *restrict m,
                          float *restrict u, int64_t n, float sign, float wd, float b1,
                          float one_m_b1, float b2, float eps, float neg_clr) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], sign, wd);
        float mi = fmaf(gi, one_m_b1, m[i] * b1);
        float ui = nb__max_nan(u[i] * b2, fabsf(gi) + eps);
        m[i] = mi;
        u[i] = ui;
        p[i] = p[i] + (neg_clr * mi) / ui;
    }
}

static int adamax_step(nb_optim *o, nb_group *g) {
    double lr = nb__g(g, "lr"), b1 = nb__ge(g, "betas", 0), b2 = nb__ge(g, "betas", 1);
    double eps = nb__g(g, "eps"), wd = nb__g(g, "weight_decay");
    bool maximize = nb__gb(g, "maximize");
    for (int i = 0; i < g->nparams; i++) {
        nb_tensor *p = g->params[i];
        if (!p->grad) continue;
        int idx = g->first + i;
        nb_value *step = nb__state_scalar(o, idx, "step", NB_VALUE_NUMBER, 0.0);
        float *m = nb__state_tensor(o, idx, "exp_avg", p, 0.0f);
        float *u = nb__state_tensor(o, idx, "exp_inf", p, 0.0f);
        if (!step || !m || !u) return NB_ENOMEM;
        double t = nb__step_inc(step);
        double clr = lr / (1.0 - pow(b1, t));
        adamax_update(nb_f32(p), nb_f32(p->grad), m, u, p->numel, maximize ? -1.0f : 1.0f,
                      (float)wd, (float)b1, (float)(1.0 - b1), (float)b2, (float)eps, (float)-clr);
    }
    return NB_OK;
}

static const nb_state_spec adamax_state[] = {{"step", NB_STATE_NUMBER}, {"exp_avg", NB_STATE_LIKE},
                                             {"exp_inf", NB_STATE_LIKE}};

static const nb_optim_algo adamax_algo = {.name = "Adamax", .validate = nb__validate_adam_like,
                                          .step_group = adamax_step, .state_spec = adamax_state,
                                          .nstate_spec = 3};

nb_adamax_opts nb_adamax_defaults(void) {
    return (nb_adamax_opts){.lr = 2e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                            .weight_decay = 0, .maximize = false};
}

nb_optim *nb_adamax(nb_tensor *const *params, int n, const nb_adamax_opts *opts) {
    nb_adamax_opts o = opts ? *opts : nb_adamax_defaults();
    nb_value d[] = {nb_num("lr", o.lr), nb_pair("betas", o.beta1, o.beta2), nb_num("eps", o.eps),
                    nb_num("weight_decay", o.weight_decay), nb_bool("maximize", o.maximize)};
    return nb__optim_new(&adamax_algo, d, (int)(sizeof d / sizeof d[0]), params, n);
}
