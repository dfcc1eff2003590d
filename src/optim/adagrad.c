/* adagrad.c - torch.optim.Adagrad (Duchi et al.), with lr decay, L2 decay and maximize.
 *
 *   t += 1;  g = maximize ? -g : g;  g += wd * p
 *   clr = lr / (1 + (t - 1) lr_decay)
 *   sum += g^2;  p -= clr g / (sqrt(sum) + eps)
 * As in PyTorch the state ("step" 0, "sum" = initial_accumulator_value) exists as soon as a
 * parameter joins the optimizer, so state_dict has it before the first step. Unlike PyTorch
 * 1.13, this also holds for parameters added later by add_param_group (PyTorch raises a
 * KeyError on their first step). */
#include <math.h>
#include "optimizer.h"

NB_OPTIM_CLONES
static void adagrad_update(float *restrict p, const float *restrict g, float *restrict sum,
                           int64_t n, float sign, float wd, float eps, float neg_clr) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], sign, wd);
        float s = fmaf(gi, gi, sum[i]);
        sum[i] = s;
        p[i] = p[i] + (neg_clr * gi) / (sqrtf(s) + eps);
    }
}

static int adagrad_init(nb_optim *o, nb_group *g, int index) {
    const nb_tensor *p = g->params[index - g->first];
    float init = (float)nb__g(g, "initial_accumulator_value");
    if (!nb__state_scalar(o, index, "step", NB_VALUE_NUMBER, 0.0) ||
        !nb__state_tensor(o, index, "sum", p, init))
        return NB_ENOMEM;
    return NB_OK;
}

static int adagrad_step(nb_optim *o, nb_group *g) {
    double lr = nb__g(g, "lr"), lr_decay = nb__g(g, "lr_decay"), eps = nb__g(g, "eps");
    double wd = nb__g(g, "weight_decay");
    bool maximize = nb__gb(g, "maximize");
    for (int i = 0; i < g->nparams; i++) {
        nb_tensor *p = g->params[i];
        if (!p->grad) continue;
        int idx = g->first + i;
        if (adagrad_init(o, g, idx)) return NB_ENOMEM; /* no-op unless the state was dropped */
        nb_value *step = nb__state(o, idx, "step");
        float *sum = nb__state_tensor(o, idx, "sum", p, 0.0f);
        double t = nb__step_inc(step);
        double clr = lr / (1.0 + (t - 1.0) * lr_decay);
        adagrad_update(nb_f32(p), nb_f32(p->grad), sum, p->numel, maximize ? -1.0f : 1.0f,
                       (float)wd, (float)eps, (float)-clr);
    }
    return NB_OK;
}

static int adagrad_validate(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate") ||
        nb__check_ge0(hp, n, "lr_decay", "lr_decay value") ||
        nb__check_ge0(hp, n, "weight_decay", "weight_decay value") ||
        nb__check_ge0(hp, n, "initial_accumulator_value", "initial_accumulator_value value") ||
        nb__check_ge0(hp, n, "eps", "epsilon value"))
        return NB_EINVAL;
    return NB_OK;
}

static const nb_state_spec adagrad_state[] = {{"step", NB_STATE_NUMBER}, {"sum", NB_STATE_LIKE}};

static const nb_optim_algo adagrad_algo = {.name = "Adagrad", .validate = adagrad_validate,
                                           .step_group = adagrad_step,
                                           .on_add_param = adagrad_init,
                                           .state_spec = adagrad_state, .nstate_spec = 2};

nb_adagrad_opts nb_adagrad_defaults(void) {
    return (nb_adagrad_opts){.lr = 1e-2, .lr_decay = 0, .weight_decay = 0,
                             .initial_accumulator_value = 0, .eps = 1e-10, .maximize = false};
}

nb_optim *nb_adagrad(nb_tensor *const *params, int n, const nb_adagrad_opts *opts) {
    nb_adagrad_opts o = opts ? *opts : nb_adagrad_defaults();
    nb_value d[] = {nb_num("lr", o.lr), nb_num("lr_decay", o.lr_decay), nb_num("eps", o.eps),
                    nb_num("weight_decay", o.weight_decay),
                    nb_num("initial_accumulator_value", o.initial_accumulator_value),
                    nb_bool("maximize", o.maximize)};
    return nb__optim_new(&adagrad_algo, d, (int)(sizeof d / sizeof d[0]), params, n);
}
