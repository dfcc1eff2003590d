/* adamax.c - torch.optim.Adamax (Kingma & Ba, the infinity-norm variant of Adam).
 *
 *   g = maximize ? -g : g;  t += 1;  g += wd * p
 *   m = b1 m + (1-b1) g;  u = max(b2 u, |g| + eps)      (eps added before the max)
 *   p -= lr / (1 - b1^t) * m / u */
#include <math.h>
#include "optimizer.h"

typedef struct adamax_coef {
    double lr, b1d;
    nb_k_adamax_coef k; /* the rule's: sign, wd, b1, one_m_b1, b2, eps, neg_clr */
} adamax_coef;

NB_OPTIM_CLONES
static void adamax_update(float *restrict p, const float *restrict g, float *restrict m,
                          float *restrict u, int64_t n, nb_k_adamax_coef c) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], c.sign, c.wd);
        float mi = fmaf(gi, c.one_m_b1, m[i] * c.b1);
        float ui = nb__max_nan(u[i] * c.b2, fabsf(gi) + c.eps);
        m[i] = mi;
        u[i] = ui;
        p[i] = p[i] + (c.neg_clr * mi) / ui;
    }
}

static void adamax_group(const nb_group *g, void *coef) {
    double b1 = nb__ge(g, "betas", 0);
    *(adamax_coef *)coef = (adamax_coef){nb__g(g, "lr"), b1,
                                         {nb__gb(g, "maximize") ? -1.0f : 1.0f, (float)nb__g(g, "weight_decay"),
                                          (float)b1, (float)(1.0 - b1), (float)nb__ge(g, "betas", 1),
                                          (float)nb__g(g, "eps"), 0}};
}

static void adamax_param(nb_optim_slot *s, void *coef) {
    adamax_coef *c = coef;
    c->k.neg_clr = (float)-(c->lr / (1.0 - pow(c->b1d, s->v[0]->num)));
}

static void adamax_range(const nb_optim_slot *s, int64_t b, int64_t e) {
    const nb_k_adamax_coef *c = &((const adamax_coef *)s->coef)->k;
    if (nb_k_adamax512(s->p + b, s->g + b, s->t[1] + b, s->t[2] + b, e - b, c)) return; /* denormal-safe */
    adamax_update(s->p + b, s->g + b, s->t[1] + b, s->t[2] + b, e - b, *c);
}

static const nb_state_spec adamax_state[] = {NB_SPEC_STEP(NUMBER), NB_SPEC("exp_avg", LIKE),
                                             NB_SPEC("exp_inf", LIKE)};

static const nb_value adamax_defaults[] = {NB_DEF_NUM("lr", 2e-3), NB_DEF_PAIR("betas", 0.9, 0.999),
                                           NB_DEF_NUM("eps", 1e-8), NB_DEF_NUM("weight_decay", 0),
                                           NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"maximize", NULL};

const nb_optim_algo nb__adamax_algo = {
    .name = "Adamax", .defaults = adamax_defaults, .ndefaults = NB_COUNT(adamax_defaults),
    .validate = nb__validate_adam_like, .state_spec = adamax_state, .nstate_spec = 3,
    .coef_size = sizeof(adamax_coef), .group_coef = adamax_group, .param_coef = adamax_param,
    .update = adamax_range,
    .added = added};

nb_adamax_opts nb_adamax_defaults(void) {
    return (nb_adamax_opts){.lr = 2e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                            .weight_decay = 0, .maximize = false};
}

nb_optim *nb_adamax(nb_tensor *const *params, int n, const nb_adamax_opts *opts) {
    nb_adamax_opts o = opts ? *opts : nb_adamax_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_pair("betas", o.beta1, o.beta2), nb_num("eps", o.eps),
                     nb_num("weight_decay", o.weight_decay), nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__adamax_algo, params, n, kw, NB_COUNT(kw));
}
