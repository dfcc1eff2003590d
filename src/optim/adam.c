/* adam.c - torch.optim.Adam (Kingma & Ba), with amsgrad, L2 weight decay and maximize.
 *
 *   g = maximize ? -g : g;  g += wd * p;  t += 1
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  vmax = max(vmax, v) (amsgrad)
 *   p -= lr/(1-b1^t) * m / (sqrt(v or vmax)/sqrt(1-b2^t) + eps)
 * Bias corrections are computed in double from the float32 step count, as PyTorch does. */
#include <math.h>
#include "optimizer.h"

/* The loop body, specialised below on its flags so each variant is a branch-free vector loop.
 * Negation (maximize) is a multiply by -1: exact, so identical to PyTorch's -grad. */
static inline __attribute__((always_inline)) void
adam_loop(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
          float *restrict vmax, int64_t n, float gsign, float wd, float b1, float one_m_b1,
          float b2, float one_m_b2, float bc2_sqrt, float eps, float neg_step_size,
          const bool decay, const bool ams) {
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] * gsign;
        if (decay) gi = fmaf(p[i], wd, gi);
        float mi = fmaf(gi, one_m_b1, m[i] * b1);
        float vi = fmaf(one_m_b2 * gi, gi, v[i] * b2);
        m[i] = mi;
        v[i] = vi;
        if (ams) {
            vi = vmax[i] > vi ? vmax[i] : vi;
            vmax[i] = vi;
        }
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = p[i] + (neg_step_size * mi) / denom;
    }
}

NB_FMA_CLONES
static void adam_update(float *restrict p, const float *restrict g, float *restrict m,
                        float *restrict v, float *restrict vmax, int64_t n, float wd, float b1,
                        float one_m_b1, float b2, float one_m_b2, float bc2_sqrt, float eps,
                        float neg_step_size, bool maximize) {
    float sign = maximize ? -1.0f : 1.0f;
#define ADAM_LOOP(decay, ams) \
    adam_loop(p, g, m, v, vmax, n, sign, wd, b1, one_m_b1, b2, one_m_b2, bc2_sqrt, eps, neg_step_size, decay, ams)
    if (wd != 0.0f) {
        if (vmax) ADAM_LOOP(true, true);
        else ADAM_LOOP(true, false);
    } else {
        if (vmax) ADAM_LOOP(false, true);
        else ADAM_LOOP(false, false);
    }
#undef ADAM_LOOP
}

static int adam_step(nb_optim *o, nb_group *g) {
    double lr = nb__g(g, "lr"), b1 = nb__ge(g, "betas", 0), b2 = nb__ge(g, "betas", 1);
    double eps = nb__g(g, "eps"), wd = nb__g(g, "weight_decay");
    bool amsgrad = nb__gb(g, "amsgrad"), maximize = nb__gb(g, "maximize");
    for (int i = 0; i < g->nparams; i++) {
        nb_tensor *p = g->params[i];
        if (!p->grad) continue;
        int idx = g->first + i;
        nb_value *step = nb__state_scalar(o, idx, "step", NB_VALUE_NUMBER, 0.0);
        float *m = nb__state_tensor(o, idx, "exp_avg", p, 0.0f);
        float *v = nb__state_tensor(o, idx, "exp_avg_sq", p, 0.0f);
        float *vmax = amsgrad ? nb__state_tensor(o, idx, "max_exp_avg_sq", p, 0.0f) : NULL;
        if (!step || !m || !v || (amsgrad && !vmax)) return NB_ENOMEM;
        step->num = (float)(step->num + 1.0); /* a float32 tensor in PyTorch */
        double t = step->num;
        double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
        adam_update(nb_f32(p), nb_f32(p->grad), m, v, vmax, p->numel, (float)wd, (float)b1,
                    (float)(1.0 - b1), (float)b2, (float)(1.0 - b2), (float)sqrt(bc2), (float)eps,
                    (float)-(lr / bc1), maximize);
    }
    return NB_OK;
}

/* Shared by the Adam family: lr, eps, betas, weight_decay with PyTorch's messages. */
int nb__validate_adam_like(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate") || nb__check_ge0(hp, n, "eps", "epsilon value"))
        return NB_EINVAL;
    for (int i = 0; i < 2; i++) {
        double b = nb__hp_elem(hp, n, "betas", i);
        if (!(0.0 <= b && b < 1.0))
            return nb__error(NB_EINVAL, "Invalid beta parameter at index %d: %s", i, nb__pyfloat(b, 0));
    }
    return nb__check_ge0(hp, n, "weight_decay", "weight_decay value");
}

static const nb_optim_algo adam_algo = {.name = "Adam", .validate = nb__validate_adam_like,
                                        .step_group = adam_step};

nb_adam_opts nb_adam_defaults(void) {
    return (nb_adam_opts){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                          .weight_decay = 0, .amsgrad = false, .maximize = false};
}

nb_optim *nb_adam(nb_tensor *const *params, int n, const nb_adam_opts *opts) {
    nb_adam_opts o = opts ? *opts : nb_adam_defaults();
    nb_value d[] = {nb_num("lr", o.lr), nb_pair("betas", o.beta1, o.beta2), nb_num("eps", o.eps),
                    nb_num("weight_decay", o.weight_decay), nb_bool("amsgrad", o.amsgrad),
                    nb_bool("maximize", o.maximize)};
    return nb__optim_new(&adam_algo, d, (int)(sizeof d / sizeof d[0]), params, n);
}
