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

typedef struct radam_coef {
    double b1d, b2d;
    nb_k_radam_coef k; /* the rule's: sign, wd, decay, b1, one_m_b1, b2, one_m_b2, bc1, lr, bc2_sqrt, eps,
                        * rect, rectify */
} radam_coef;

NB_OPTIM_CLONES
static void radam_update(float *restrict p, const float *restrict g, float *restrict m,
                         float *restrict v, int64_t n, nb_k_radam_coef c) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], c.sign, c.wd);
        float mi = fmaf(gi, c.one_m_b1, m[i] * c.b1), vi = fmaf(c.one_m_b2 * gi, gi, v[i] * c.b2);
        m[i] = mi;
        v[i] = vi;
        float upd = mi / c.bc1 * c.lr;
        if (c.rectify) upd = upd * ((1.0f / (sqrtf(vi) + c.eps)) * c.bc2_sqrt) * c.rect;
        p[i] = p[i] * c.decay - upd;
    }
}

static void radam_group(const nb_group *g, void *coef) {
    double lr = nb__g(g, "lr"), b1 = nb__ge(g, "betas", 0), b2 = nb__ge(g, "betas", 1);
    double wd = nb__g(g, "weight_decay");
    bool dwd = wd != 0 && nb__gb(g, "decoupled_weight_decay");
    *(radam_coef *)coef = (radam_coef){.b1d = b1, .b2d = b2,
                                       .k = {.sign = nb__gb(g, "maximize") ? -1.0f : 1.0f,
                                             .wd = dwd ? 0.0f : (float)wd, .decay = dwd ? (float)(1.0 - lr * wd) : 1.0f,
                                             .b1 = (float)b1, .one_m_b1 = (float)(1.0 - b1), .b2 = (float)b2,
                                             .one_m_b2 = (float)(1.0 - b2), .lr = (float)lr,
                                             .eps = (float)nb__g(g, "eps")}};
}

static void radam_param(nb_optim_slot *s, void *coef) {
    radam_coef *c = coef;
    double t = s->v[0]->num, b2 = c->b2d;
    double bc1 = 1.0 - pow(c->b1d, t), bc2 = 1.0 - pow(b2, t);
    double rho_inf = 2.0 / (1.0 - b2) - 1.0;
    double rho_t = rho_inf - 2.0 * t * pow(b2, t) / bc2;
    c->k.rectify = rho_t > 5.0;
    c->k.rect = c->k.rectify ? (float)sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf /
                                       ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                         : 0.0f;
    c->k.bc1 = (float)bc1;
    c->k.bc2_sqrt = (float)sqrt(bc2);
}

static void radam_range(const nb_optim_slot *s, int64_t b, int64_t e) {
    const nb_k_radam_coef *c = &((const radam_coef *)s->coef)->k;
    if (nb_k_radam512(s->p + b, s->g + b, s->t[1] + b, s->t[2] + b, e - b, c)) return; /* denormal-safe */
    radam_update(s->p + b, s->g + b, s->t[1] + b, s->t[2] + b, e - b, *c);
}

static const nb_state_spec radam_state[] = {NB_SPEC_STEP(NUMBER), NB_SPEC("exp_avg", LIKE),
                                            NB_SPEC("exp_avg_sq", LIKE)};

static const nb_value radam_defaults[] = {NB_DEF_NUM("lr", 1e-3), NB_DEF_PAIR("betas", 0.9, 0.999),
                                          NB_DEF_NUM("eps", 1e-8), NB_DEF_NUM("weight_decay", 0),
                                          NB_DEF_BOOL("decoupled_weight_decay", 0),
                                          NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"maximize", "decoupled_weight_decay", NULL};

const nb_optim_algo nb__radam_algo = {
    .name = "RAdam", .defaults = radam_defaults, .ndefaults = NB_COUNT(radam_defaults),
    .validate = nb__validate_adam_like, .state_spec = radam_state, .nstate_spec = 3,
    .coef_size = sizeof(radam_coef), .group_coef = radam_group, .param_coef = radam_param,
    .update = radam_range,
    .added = added};

nb_radam_opts nb_radam_defaults(void) {
    return (nb_radam_opts){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                           .weight_decay = 0, .decoupled_weight_decay = false, .maximize = false};
}

nb_optim *nb_radam(nb_tensor *const *params, int n, const nb_radam_opts *opts) {
    nb_radam_opts o = opts ? *opts : nb_radam_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_pair("betas", o.beta1, o.beta2), nb_num("eps", o.eps),
                     nb_num("weight_decay", o.weight_decay),
                     nb_bool("decoupled_weight_decay", o.decoupled_weight_decay),
                     nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__radam_algo, params, n, kw, NB_COUNT(kw));
}
