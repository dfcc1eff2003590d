/* adadelta.c - torch.optim.Adadelta (Zeiler), with L2 decay and maximize.
 *
 *   g = maximize ? -g : g;  g += wd * p
 *   sq = rho sq + (1-rho) g^2
 *   delta = sqrt(acc + eps) / sqrt(sq + eps) * g
 *   acc = rho acc + (1-rho) delta^2;  p -= lr delta
 * State "step" is a Python int in PyTorch (counted, unused by the math). */
#include <math.h>
#include "optimizer.h"

NB_OPTIM_CLONES
static void adadelta_update(float *restrict p, const float *restrict g, float *restrict sq,
                            float *restrict acc, int64_t n, float sign, float wd, float rho,
                            float one_m_rho, float eps, float neg_lr) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], sign, wd);
        float s = fmaf(one_m_rho * gi, gi, sq[i] * rho);
        sq[i] = s;
        float delta = sqrtf(acc[i] + eps) / sqrtf(s + eps) * gi;
        acc[i] = fmaf(one_m_rho * delta, delta, acc[i] * rho);
        p[i] = fmaf(delta, neg_lr, p[i]);
    }
}

static int adadelta_step(nb_optim *o, nb_group *g) {
    double lr = nb__g(g, "lr"), rho = nb__g(g, "rho"), eps = nb__g(g, "eps");
    double wd = nb__g(g, "weight_decay");
    bool maximize = nb__gb(g, "maximize");
    for (int i = 0; i < g->nparams; i++) {
        nb_tensor *p = g->params[i];
        if (!p->grad) continue;
        int idx = g->first + i;
        nb_value *step = nb__state_scalar(o, idx, "step", NB_VALUE_INT, 0.0);
        float *sq = nb__state_tensor(o, idx, "square_avg", p, 0.0f);
        float *acc = nb__state_tensor(o, idx, "acc_delta", p, 0.0f);
        if (!step || !sq || !acc) return NB_ENOMEM;
        step->num += 1;
        adadelta_update(nb_f32(p), nb_f32(p->grad), sq, acc, p->numel, maximize ? -1.0f : 1.0f,
                        (float)wd, (float)rho, (float)(1.0 - rho), (float)eps, (float)-lr);
    }
    return NB_OK;
}

static int adadelta_validate(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate")) return NB_EINVAL;
    double rho = nb__hp(hp, n, "rho");
    if (!(0.0 <= rho && rho <= 1.0))
        return nb__error(NB_EINVAL, "Invalid rho value: %s", nb__pyfloat(rho, 0));
    if (nb__check_ge0(hp, n, "eps", "epsilon value") ||
        nb__check_ge0(hp, n, "weight_decay", "weight_decay value"))
        return NB_EINVAL;
    return NB_OK;
}

static const nb_state_spec adadelta_state[] = {{"step", NB_STATE_NUMBER},
                                               {"square_avg", NB_STATE_LIKE},
                                               {"acc_delta", NB_STATE_LIKE}};

static const nb_optim_algo adadelta_algo = {.name = "Adadelta", .validate = adadelta_validate,
                                            .step_group = adadelta_step,
                                            .state_spec = adadelta_state, .nstate_spec = 3};

nb_adadelta_opts nb_adadelta_defaults(void) {
    return (nb_adadelta_opts){.lr = 1.0, .rho = 0.9, .eps = 1e-6, .weight_decay = 0,
                              .maximize = false};
}

nb_optim *nb_adadelta(nb_tensor *const *params, int n, const nb_adadelta_opts *opts) {
    nb_adadelta_opts o = opts ? *opts : nb_adadelta_defaults();
    nb_value d[] = {nb_num("lr", o.lr), nb_num("rho", o.rho), nb_num("eps", o.eps),
                    nb_num("weight_decay", o.weight_decay), nb_bool("maximize", o.maximize)};
    return nb__optim_new(&adadelta_algo, d, (int)(sizeof d / sizeof d[0]), params, n);
}
