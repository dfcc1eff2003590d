/* adam.c - torch.optim.Adam (Kingma & Ba), with amsgrad, L2 weight decay and maximize.
 *
 *   g = maximize ? -g : g;  g += wd * p;  t += 1
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  vmax = max(vmax, v) (amsgrad)
 *   p -= lr/(1-b1^t) * m / (sqrt(v or vmax)/sqrt(1-b2^t) + eps)
 * Bias corrections are computed in double from the float32 step count, as PyTorch does.
 * The loop is shared with AdamW (adamw.c), which scales p by (1 - lr wd) first. */
#include <math.h>
#include "optimizer.h"

NB_OPTIM_CLONES
void nb__adam_update(float *restrict p, const float *restrict g, float *restrict m,
                     float *restrict v, float *restrict vmax, int64_t n, const nb__adam_coef *c) {
    const float sign = c->maximize ? -1.0f : 1.0f, wd = c->wd, decay = c->decay;
    const float b1 = c->b1, omb1 = c->one_m_b1, b2 = c->b2, omb2 = c->one_m_b2;
    const float bc2 = c->bc2_sqrt, eps = c->eps, step = c->neg_step_size;
    if (vmax) {
        for (int64_t i = 0; i < n; i++) {
            float gi = nb__l2_grad(p[i], g[i], sign, wd);
            float pi = p[i] * decay;
            float mi = fmaf(gi, omb1, m[i] * b1), vi = fmaf(omb2 * gi, gi, v[i] * b2);
            float vm = nb__max_nan(vmax[i], vi);
            m[i] = mi;
            v[i] = vi;
            vmax[i] = vm;
            p[i] = pi + (step * mi) / (sqrtf(vm) / bc2 + eps);
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            float gi = nb__l2_grad(p[i], g[i], sign, wd);
            float pi = p[i] * decay;
            float mi = fmaf(gi, omb1, m[i] * b1), vi = fmaf(omb2 * gi, gi, v[i] * b2);
            m[i] = mi;
            v[i] = vi;
            p[i] = pi + (step * mi) / (sqrtf(vi) / bc2 + eps);
        }
    }
}

typedef struct adam_job {
    float *p, *m, *v, *vmax;
    const float *g;
    const nb__adam_coef *c;
} adam_job;

static void adam_part(void *ctx, int64_t b, int64_t e) {
    const adam_job *j = ctx;
    nb__adam_update(j->p + b, j->g + b, j->m + b, j->v + b, j->vmax ? j->vmax + b : NULL, e - b, j->c);
}

int nb__adam_group(nb_optim *o, nb_group *g, bool decoupled) {
    double lr = nb__g(g, "lr"), b1 = nb__ge(g, "betas", 0), b2 = nb__ge(g, "betas", 1);
    double eps = nb__g(g, "eps"), wd = nb__g(g, "weight_decay");
    bool amsgrad = nb__gb(g, "amsgrad");
    for (int i = 0; i < g->nparams; i++) {
        nb_tensor *p = g->params[i];
        if (!p->grad) continue;
        int idx = g->first + i;
        nb_value *step = nb__state_scalar(o, idx, "step", NB_VALUE_NUMBER, 0.0);
        float *m = nb__state_tensor(o, idx, "exp_avg", p, 0.0f);
        float *v = nb__state_tensor(o, idx, "exp_avg_sq", p, 0.0f);
        float *vmax = amsgrad ? nb__state_tensor(o, idx, "max_exp_avg_sq", p, 0.0f) : NULL;
        if (!step || !m || !v || (amsgrad && !vmax)) return NB_ENOMEM;
        double t = nb__step_inc(step);
        double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
        nb__adam_coef c = {.wd = decoupled ? 0.0f : (float)wd,
                           .decay = decoupled ? (float)(1.0 - lr * wd) : 1.0f,
                           .b1 = (float)b1, .one_m_b1 = (float)(1.0 - b1), .b2 = (float)b2,
                           .one_m_b2 = (float)(1.0 - b2), .bc2_sqrt = (float)sqrt(bc2),
                           .eps = (float)eps, .neg_step_size = (float)-(lr / bc1),
                           .maximize = nb__gb(g, "maximize")};
        adam_job j = {nb_f32(p), m, v, vmax, nb_f32(p->grad), &c};
        nb__optim_for(nb_f32(p), p->numel, adam_part, &j);
    }
    return NB_OK;
}

static int adam_step(nb_optim *o, nb_group *g) { return nb__adam_group(o, g, false); }

/* Shared by the Adam family: lr, eps, betas, weight_decay with PyTorch's messages. */
int nb__validate_adam_like(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate") || nb__check_ge0(hp, n, "eps", "epsilon value") ||
        nb__check_betas(hp, n))
        return NB_EINVAL;
    return nb__check_ge0(hp, n, "weight_decay", "weight_decay value");
}

const nb_state_spec nb__adam_state[4] = {{"step", NB_STATE_NUMBER}, {"exp_avg", NB_STATE_LIKE},
                                         {"exp_avg_sq", NB_STATE_LIKE},
                                         {"max_exp_avg_sq", NB_STATE_LIKE}};

static const nb_optim_algo adam_algo = {.name = "Adam", .validate = nb__validate_adam_like,
                                        .step_group = adam_step, .state_spec = nb__adam_state,
                                        .nstate_spec = 4};

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
