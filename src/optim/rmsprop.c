/* rmsprop.c - torch.optim.RMSprop (Hinton), with momentum, centering, L2 decay and maximize.
 *
 *   g = maximize ? -g : g;  g += wd * p
 *   sq = alpha sq + (1-alpha) g^2
 *   centered: ga = alpha ga + (1-alpha) g;  avg = sqrt(sq - ga^2) + eps
 *   else:     avg = sqrt(sq) + eps            (eps outside the square root)
 *   momentum > 0: buf = momentum buf + g / avg;  p -= lr buf
 *   else:         p -= lr g / avg
 * State "step" is a Python int in PyTorch (counted, unused by the math). */
#include <math.h>
#include "optimizer.h"

typedef struct rmsprop_coef {
    nb_k_rmsprop_coef k; /* the rule's: sign, wd, alpha, one_m_alpha, eps, mom, neg_lr */
    bool centered, momentum;
} rmsprop_coef;

NB_ALWAYS_INLINE void rmsprop_loop(float *restrict p, const float *restrict g, float *restrict sq,
                                   float *restrict ga, float *restrict buf, int64_t n,
                                   nb_k_rmsprop_coef c, const bool centered, const bool momentum) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], c.sign, c.wd);
        float s = fmaf(c.one_m_alpha * gi, gi, sq[i] * c.alpha);
        sq[i] = s;
        float avg;
        if (centered) {
            float a = fmaf(gi, c.one_m_alpha, ga[i] * c.alpha);
            ga[i] = a;
            avg = sqrtf(fmaf(-a, a, s)) + c.eps; /* addcmul(ga, ga, value=-1) */
        } else {
            avg = sqrtf(s) + c.eps;
        }
        if (momentum) {
            float b = buf[i] * c.mom + gi / avg;
            buf[i] = b;
            p[i] = fmaf(b, c.neg_lr, p[i]);
        } else {
            p[i] = p[i] + (c.neg_lr * gi) / avg;
        }
    }
}

NB_OPTIM_CLONES
static void rmsprop_update(float *restrict p, const float *restrict g, float *restrict sq,
                           float *restrict ga, float *restrict buf, int64_t n, nb_k_rmsprop_coef c) {
    if (ga && buf) rmsprop_loop(p, g, sq, ga, buf, n, c, true, true);
    else if (ga) rmsprop_loop(p, g, sq, ga, buf, n, c, true, false);
    else if (buf) rmsprop_loop(p, g, sq, ga, buf, n, c, false, true);
    else rmsprop_loop(p, g, sq, ga, buf, n, c, false, false);
}

static void rmsprop_group(const nb_group *g, void *coef) {
    double alpha = nb__g(g, "alpha");
    *(rmsprop_coef *)coef = (rmsprop_coef){{nb__gb(g, "maximize") ? -1.0f : 1.0f, (float)nb__g(g, "weight_decay"),
                                            (float)alpha, (float)(1.0 - alpha), (float)nb__g(g, "eps"),
                                            (float)nb__g(g, "momentum"), (float)-nb__g(g, "lr")},
                                           nb__gb(g, "centered"), nb__g(g, "momentum") > 0};
}

/* momentum_buffer and grad_avg are used while momentum > 0 and centered are on */
static void rmsprop_range(const nb_optim_slot *s, int64_t b, int64_t e) {
    const rmsprop_coef *c = s->coef;
    float *ga = c->centered ? s->t[3] + b : NULL, *buf = c->momentum ? s->t[2] + b : NULL;
    if (nb_k_rmsprop512(s->p + b, s->g + b, s->t[1] + b, ga, buf, e - b, &c->k)) return; /* denormal-safe */
    rmsprop_update(s->p + b, s->g + b, s->t[1] + b, ga, buf, e - b, c->k);
}

static int rmsprop_validate(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate") || nb__check_ge0(hp, n, "eps", "epsilon value") ||
        nb__check_ge0(hp, n, "momentum", "momentum value") ||
        nb__check_ge0(hp, n, "weight_decay", "weight_decay value") ||
        nb__check_ge0(hp, n, "alpha", "alpha value"))
        return NB_EINVAL;
    return NB_OK;
}

static const nb_state_spec rmsprop_state[] = {NB_SPEC_STEP(INT),
                                              NB_SPEC("square_avg", LIKE),
                                              NB_SPEC_X("momentum_buffer", LIKE, .when = "momentum"),
                                              NB_SPEC_X("grad_avg", LIKE, .when = "centered")};

static const nb_value rmsprop_defaults[] = {NB_DEF_NUM("lr", 1e-2), NB_DEF_NUM("momentum", 0),
                                            NB_DEF_NUM("alpha", 0.99), NB_DEF_NUM("eps", 1e-8),
                                            NB_DEF_BOOL("centered", 0), NB_DEF_NUM("weight_decay", 0),
                                            NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"momentum", "centered", "maximize", NULL};

const nb_optim_algo nb__rmsprop_algo = {
    .name = "RMSprop", .defaults = rmsprop_defaults, .ndefaults = NB_COUNT(rmsprop_defaults),
    .validate = rmsprop_validate, .state_spec = rmsprop_state, .nstate_spec = 4,
    .coef_size = sizeof(rmsprop_coef), .group_coef = rmsprop_group, .update = rmsprop_range,
    .added = added};

nb_rmsprop_opts nb_rmsprop_defaults(void) {
    return (nb_rmsprop_opts){.lr = 1e-2, .alpha = 0.99, .eps = 1e-8, .weight_decay = 0,
                             .momentum = 0, .centered = false, .maximize = false};
}

nb_optim *nb_rmsprop(nb_tensor *const *params, int n, const nb_rmsprop_opts *opts) {
    nb_rmsprop_opts o = opts ? *opts : nb_rmsprop_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_num("momentum", o.momentum), nb_num("alpha", o.alpha),
                     nb_num("eps", o.eps), nb_bool("centered", o.centered),
                     nb_num("weight_decay", o.weight_decay), nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__rmsprop_algo, params, n, kw, NB_COUNT(kw));
}
