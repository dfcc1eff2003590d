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

typedef struct nadam_coef {
    double lr, b1d, b2d, psi;
    nb_k_nadam_coef k; /* the rule's: sign, wd, decay, b1, one_m_b1, b2, one_m_b2, bc2, eps, neg_sg, neg_sm */
} nadam_coef;

NB_OPTIM_CLONES
static void nadam_update(float *restrict p, const float *restrict g, float *restrict m,
                         float *restrict v, int64_t n, nb_k_nadam_coef c) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], c.sign, c.wd);
        float mi = fmaf(gi, c.one_m_b1, m[i] * c.b1), vi = fmaf(c.one_m_b2 * gi, gi, v[i] * c.b2);
        m[i] = mi;
        v[i] = vi;
        float den = sqrtf(vi / c.bc2) + c.eps;
        float pi = p[i] * c.decay + (c.neg_sg * gi) / den;
        p[i] = pi + (c.neg_sm * mi) / den;
    }
}

static void nadam_group(const nb_group *g, void *coef) {
    double lr = nb__g(g, "lr"), b1 = nb__ge(g, "betas", 0), b2 = nb__ge(g, "betas", 1);
    double wd = nb__g(g, "weight_decay");
    bool dwd = wd != 0 && nb__gb(g, "decoupled_weight_decay");
    *(nadam_coef *)coef = (nadam_coef){.lr = lr, .b1d = b1, .b2d = b2, .psi = nb__g(g, "momentum_decay"),
                                       .k = {.sign = nb__gb(g, "maximize") ? -1.0f : 1.0f,
                                             .wd = dwd ? 0.0f : (float)wd, .decay = dwd ? (float)(1.0 - lr * wd) : 1.0f,
                                             .b1 = (float)b1, .one_m_b1 = (float)(1.0 - b1), .b2 = (float)b2,
                                             .one_m_b2 = (float)(1.0 - b2), .eps = (float)nb__g(g, "eps")}};
}

static void nadam_param(nb_optim_slot *s, void *coef) {
    nadam_coef *c = coef;
    nb_value *mp = s->v[1];
    double t = s->v[0]->num;
    double mu = c->b1d * (1.0 - 0.5 * pow(0.96, t * c->psi));
    double mu_next = c->b1d * (1.0 - 0.5 * pow(0.96, (t + 1.0) * c->psi));
    float prod = (float)mp->num * (float)mu; /* float32 tensor *= Python float */
    mp->num = prod;
    float prod_next = prod * (float)mu * (float)mu_next;
    c->k.bc2 = (float)(1.0 - pow(c->b2d, t));
    c->k.neg_sg = (float)(-c->lr * (1.0 - mu) / (1.0 - prod));
    c->k.neg_sm = (float)(-c->lr * mu_next / (1.0 - prod_next));
}

static void nadam_range(const nb_optim_slot *s, int64_t b, int64_t e) {
    const nb_k_nadam_coef *c = &((const nadam_coef *)s->coef)->k;
    if (nb_k_nadam512(s->p + b, s->g + b, s->t[2] + b, s->t[3] + b, e - b, c)) return; /* denormal-safe */
    nadam_update(s->p + b, s->g + b, s->t[2] + b, s->t[3] + b, e - b, *c);
}

static int nadam_validate(const nb_value *hp, int n) {
    if (nb__validate_adam_like(hp, n) || nb__check_ge0(hp, n, "momentum_decay", "momentum_decay value"))
        return NB_EINVAL;
    return NB_OK;
}

static const nb_state_spec nadam_state[] = {NB_SPEC_STEP(NUMBER),
                                            NB_SPEC_X("mu_product", NUMBER, .init = 1.0),
                                            NB_SPEC("exp_avg", LIKE),
                                            NB_SPEC("exp_avg_sq", LIKE)};

static const nb_value nadam_defaults[] = {NB_DEF_NUM("lr", 2e-3), NB_DEF_PAIR("betas", 0.9, 0.999),
                                          NB_DEF_NUM("eps", 1e-8), NB_DEF_NUM("weight_decay", 0),
                                          NB_DEF_NUM("momentum_decay", 4e-3),
                                          NB_DEF_BOOL("decoupled_weight_decay", 0),
                                          NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"maximize", "decoupled_weight_decay", NULL};

const nb_optim_algo nb__nadam_algo = {
    .name = "NAdam", .defaults = nadam_defaults, .ndefaults = NB_COUNT(nadam_defaults),
    .validate = nadam_validate, .state_spec = nadam_state, .nstate_spec = 4,
    .coef_size = sizeof(nadam_coef), .group_coef = nadam_group, .param_coef = nadam_param,
    .update = nadam_range,
    .added = added};

nb_nadam_opts nb_nadam_defaults(void) {
    return (nb_nadam_opts){.lr = 2e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                           .weight_decay = 0, .momentum_decay = 4e-3,
                           .decoupled_weight_decay = false, .maximize = false};
}

nb_optim *nb_nadam(nb_tensor *const *params, int n, const nb_nadam_opts *opts) {
    nb_nadam_opts o = opts ? *opts : nb_nadam_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_pair("betas", o.beta1, o.beta2), nb_num("eps", o.eps),
                     nb_num("weight_decay", o.weight_decay), nb_num("momentum_decay", o.momentum_decay),
                     nb_bool("decoupled_weight_decay", o.decoupled_weight_decay),
                     nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__nadam_algo, params, n, kw, NB_COUNT(kw));
}
