/* adam.c - torch.optim.Adam (Kingma & Ba), with amsgrad, L2 weight decay and maximize.
 *
 *   g = maximize ? -g : g;  g += wd * p;  t += 1
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  vmax = max(vmax, v) (amsgrad)
 *   p -= lr/(1-b1^t) * m / (sqrt(v or vmax)/sqrt(1-b2^t) + eps)
 * Bias corrections are computed in double from the float32 step count, as PyTorch does.
 * The rule is shared with AdamW (adamw.c), which scales p by (1 - lr wd) first. */
#include <math.h>
#include "optimizer.h"

NB_OPTIM_CLONES
static void adam_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                        float *restrict vmax, int64_t n, nb_k_adam_coef c) {
    if (vmax) {
        for (int64_t i = 0; i < n; i++) {
            float gi = nb__l2_grad(p[i], g[i], c.sign, c.wd);
            float pi = p[i] * c.decay;
            float mi = fmaf(gi, c.one_m_b1, m[i] * c.b1), vi = fmaf(c.one_m_b2 * gi, gi, v[i] * c.b2);
            float vm = nb__max_nan(vmax[i], vi);
            m[i] = mi;
            v[i] = vi;
            vmax[i] = vm;
            p[i] = pi + (c.neg_step_size * mi) / (sqrtf(vm) / c.bc2_sqrt + c.eps);
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            float gi = nb__l2_grad(p[i], g[i], c.sign, c.wd);
            float pi = p[i] * c.decay;
            float mi = fmaf(gi, c.one_m_b1, m[i] * c.b1), vi = fmaf(c.one_m_b2 * gi, gi, v[i] * c.b2);
            m[i] = mi;
            v[i] = vi;
            p[i] = pi + (c.neg_step_size * mi) / (sqrtf(vi) / c.bc2_sqrt + c.eps);
        }
    }
}

void nb__adam_range(const nb_optim_slot *s, int64_t b, int64_t e) {
    const nb__adam_coef *c = s->coef;
    float *vmax = c->amsgrad ? s->t[3] + b : NULL;
    /* bit-identical, without the stalls a decaying exp_avg costs */
    if (nb_k_adam512(s->p + b, s->g + b, s->t[1] + b, s->t[2] + b, vmax, e - b, &c->k)) return;
    adam_update(s->p + b, s->g + b, s->t[1] + b, s->t[2] + b, vmax, e - b, c->k);
}

/* The group's part of the coefficients; decoupled: AdamW's weight decay. */
void nb__adam_group_coef(const nb_group *g, nb__adam_coef *c, bool decoupled) {
    double lr = nb__g(g, "lr"), b1 = nb__ge(g, "betas", 0), b2 = nb__ge(g, "betas", 1);
    double wd = nb__g(g, "weight_decay");
    *c = (nb__adam_coef){.lr = lr, .b1d = b1, .b2d = b2,
                         .k = {.wd = decoupled ? 0.0f : (float)wd, .decay = decoupled ? (float)(1.0 - lr * wd) : 1.0f,
                               .b1 = (float)b1, .one_m_b1 = (float)(1.0 - b1), .b2 = (float)b2,
                               .one_m_b2 = (float)(1.0 - b2), .eps = (float)nb__g(g, "eps"),
                               .sign = nb__gb(g, "maximize") ? -1.0f : 1.0f},
                         .amsgrad = nb__gb(g, "amsgrad")};
}

static void adam_group(const nb_group *g, void *c) { nb__adam_group_coef(g, c, false); }

/* The step count and the bias corrections of one parameter. */
void nb__adam_param_coef(nb_optim_slot *s, void *coef) {
    nb__adam_coef *c = coef;
    double t = s->v[0]->num;
    double bc1 = 1.0 - pow(c->b1d, t), bc2 = 1.0 - pow(c->b2d, t);
    c->k.bc2_sqrt = (float)sqrt(bc2);
    c->k.neg_step_size = (float)-(c->lr / bc1);
}

/* Shared by the Adam family: lr, eps, betas, weight_decay with PyTorch's messages. */
int nb__validate_adam_like(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate") || nb__check_ge0(hp, n, "eps", "epsilon value") ||
        nb__check_betas(hp, n))
        return NB_EINVAL;
    return nb__check_ge0(hp, n, "weight_decay", "weight_decay value");
}

const nb_state_spec nb__adam_state[4] = {NB_SPEC_STEP(NUMBER), NB_SPEC("exp_avg", LIKE),
                                         NB_SPEC("exp_avg_sq", LIKE),
                                         NB_SPEC_X("max_exp_avg_sq", LIKE, .when = "amsgrad")};

static const nb_value adam_defaults[] = {NB_DEF_NUM("lr", 1e-3), NB_DEF_PAIR("betas", 0.9, 0.999),
                                         NB_DEF_NUM("eps", 1e-8), NB_DEF_NUM("weight_decay", 0),
                                         NB_DEF_BOOL("amsgrad", 0), NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"amsgrad", "maximize", NULL};

static const nb_value fixed[] = {NB_DEF_BOOL("decoupled_weight_decay", 0)};

const nb_optim_algo nb__adam_algo = {
    .name = "Adam", .defaults = adam_defaults, .ndefaults = NB_COUNT(adam_defaults),
    .validate = nb__validate_adam_like, .state_spec = nb__adam_state, .nstate_spec = 4,
    .coef_size = sizeof(nb__adam_coef), .group_coef = adam_group, .param_coef = nb__adam_param_coef,
    .update = nb__adam_range, .grad_error = "Adam does not support sparse gradients, please consider SparseAdam instead",
    .added = added, .fixed = fixed, .nfixed = 1,
    .fixed_hint = ": load it into an AdamW"};

nb_adam_opts nb_adam_defaults(void) {
    return (nb_adam_opts){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                          .weight_decay = 0, .amsgrad = false, .maximize = false};
}

nb_optim *nb_adam(nb_tensor *const *params, int n, const nb_adam_opts *opts) {
    nb_adam_opts o = opts ? *opts : nb_adam_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_pair("betas", o.beta1, o.beta2), nb_num("eps", o.eps),
                     nb_num("weight_decay", o.weight_decay), nb_bool("amsgrad", o.amsgrad),
                     nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__adam_algo, params, n, kw, NB_COUNT(kw));
}
