/* asgd.c - torch.optim.ASGD (Polyak & Juditsky averaged SGD), with L2 decay and maximize.
 *
 *   g = maximize ? -g : g;  t += 1;  g += wd p
 *   p *= 1 - lambd eta;  p -= eta g
 *   ax = mu == 1 ? p : ax + (p - ax) mu
 *   eta = lr / (1 + lambd lr t)^alpha;  mu = 1 / max(1, t - t0)   (both stored as float32)
 * "eta" starts at float32(lr) of the group when the state is created; the averaged parameters
 * are the state "ax" (PyTorch keeps them there too; nb_asgd_average returns them). */
#include <math.h>
#include "optimizer.h"

NB_OPTIM_CLONES
static void asgd_update(float *restrict p, const float *restrict g, float *restrict ax,
                        int64_t n, float sign, float wd, float decay, float neg_eta, float mu) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], sign, wd);
        float pi = fmaf(gi, neg_eta, p[i] * decay);
        p[i] = pi;
        ax[i] = mu != 1.0f ? ax[i] + (pi - ax[i]) * mu : pi;
    }
}

static int asgd_step(nb_optim *o, nb_group *g) {
    double lr = nb__g(g, "lr"), lambd = nb__g(g, "lambd"), alpha = nb__g(g, "alpha");
    double t0 = nb__g(g, "t0"), wd = nb__g(g, "weight_decay");
    bool maximize = nb__gb(g, "maximize");
    for (int i = 0; i < g->nparams; i++) {
        nb_tensor *p = g->params[i];
        if (!p->grad) continue;
        int idx = g->first + i;
        nb_value *step = nb__state_scalar(o, idx, "step", NB_VALUE_NUMBER, 0.0);
        nb_value *eta = nb__state_scalar(o, idx, "eta", NB_VALUE_NUMBER, (float)lr);
        nb_value *mu = nb__state_scalar(o, idx, "mu", NB_VALUE_NUMBER, 1.0);
        float *ax = nb__state_tensor(o, idx, "ax", p, 0.0f);
        if (!step || !eta || !mu || !ax) return NB_ENOMEM;
        double t = nb__step_inc(step);
        asgd_update(nb_f32(p), nb_f32(p->grad), ax, p->numel, maximize ? -1.0f : 1.0f, (float)wd,
                    (float)(1.0 - lambd * eta->num), (float)-eta->num, (float)mu->num);
        eta->num = (float)(lr / pow(1.0 + lambd * lr * t, alpha));
        mu->num = (float)(1.0 / fmax(1.0, t - t0));
    }
    return NB_OK;
}

static int asgd_validate(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate") ||
        nb__check_ge0(hp, n, "weight_decay", "weight_decay value"))
        return NB_EINVAL;
    return NB_OK;
}

static const nb_state_spec asgd_state[] = {{"step", NB_STATE_NUMBER}, {"eta", NB_STATE_NUMBER},
                                           {"mu", NB_STATE_NUMBER}, {"ax", NB_STATE_LIKE}};

static const nb_optim_algo asgd_algo = {.name = "ASGD", .validate = asgd_validate,
                                        .step_group = asgd_step, .state_spec = asgd_state,
                                        .nstate_spec = 4};

const nb_tensor *nb_asgd_average(const nb_optim *o, const nb_tensor *p) {
    if (!o || !p || o->algo != &asgd_algo) return NULL;
    for (int i = 0; i < o->nparams; i++)
        if (nb__optim_param(o, i) == p) {
            const nb_value *v = nb__value_cfind(o->state[i].values, o->state[i].nvalues, "ax");
            return v && v->kind == NB_VALUE_TENSOR ? v->tensor : NULL;
        }
    return NULL;
}

nb_asgd_opts nb_asgd_defaults(void) {
    return (nb_asgd_opts){.lr = 1e-2, .lambd = 1e-4, .alpha = 0.75, .t0 = 1e6, .weight_decay = 0,
                          .maximize = false};
}

nb_optim *nb_asgd(nb_tensor *const *params, int n, const nb_asgd_opts *opts) {
    nb_asgd_opts o = opts ? *opts : nb_asgd_defaults();
    nb_value d[] = {nb_num("lr", o.lr), nb_num("lambd", o.lambd), nb_num("alpha", o.alpha),
                    nb_num("t0", o.t0), nb_num("weight_decay", o.weight_decay),
                    nb_bool("maximize", o.maximize)};
    return nb__optim_new(&asgd_algo, d, (int)(sizeof d / sizeof d[0]), params, n);
}
