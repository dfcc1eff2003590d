/* adadelta.c - torch.optim.Adadelta (Zeiler), with L2 decay and maximize.
 *
 *   g = maximize ? -g : g;  g += wd * p
 *   sq = rho sq + (1-rho) g^2
 *   delta = sqrt(acc + eps) / sqrt(sq + eps) * g
 *   acc = rho acc + (1-rho) delta^2;  p -= lr delta
 * State "step" is a Python int in PyTorch (counted, unused by the math). */
#include <math.h>
#include "optimizer.h"

typedef nb_k_adadelta_coef adadelta_coef; /* sign, wd, rho, one_m_rho, eps, neg_lr */

NB_OPTIM_CLONES
static void adadelta_update(float *restrict p, const float *restrict g, float *restrict sq,
                            float *restrict acc, int64_t n, adadelta_coef c) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], c.sign, c.wd);
        float s = fmaf(c.one_m_rho * gi, gi, sq[i] * c.rho);
        sq[i] = s;
        float delta = sqrtf(acc[i] + c.eps) / sqrtf(s + c.eps) * gi;
        acc[i] = fmaf(c.one_m_rho * delta, delta, acc[i] * c.rho);
        p[i] = fmaf(delta, c.neg_lr, p[i]);
    }
}

static void adadelta_group(const nb_group *g, void *coef) {
    double rho = nb__g(g, "rho");
    *(adadelta_coef *)coef = (adadelta_coef){nb__gb(g, "maximize") ? -1.0f : 1.0f,
                                             (float)nb__g(g, "weight_decay"), (float)rho, (float)(1.0 - rho),
                                             (float)nb__g(g, "eps"), (float)-nb__g(g, "lr")};
}

static void adadelta_range(const nb_optim_slot *s, int64_t b, int64_t e) {
    const adadelta_coef *c = s->coef;
    if (nb_k_adadelta512(s->p + b, s->g + b, s->t[1] + b, s->t[2] + b, e - b, c)) return; /* denormal-safe */
    adadelta_update(s->p + b, s->g + b, s->t[1] + b, s->t[2] + b, e - b, *c);
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

static const nb_state_spec adadelta_state[] = {NB_SPEC_STEP(INT), NB_SPEC("square_avg", LIKE),
                                               NB_SPEC("acc_delta", LIKE)};

static const nb_value adadelta_defaults[] = {NB_DEF_NUM("lr", 1.0), NB_DEF_NUM("rho", 0.9),
                                             NB_DEF_NUM("eps", 1e-6), NB_DEF_NUM("weight_decay", 0),
                                             NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"maximize", NULL};

const nb_optim_algo nb__adadelta_algo = {
    .name = "Adadelta", .defaults = adadelta_defaults, .ndefaults = NB_COUNT(adadelta_defaults),
    .validate = adadelta_validate, .state_spec = adadelta_state, .nstate_spec = 3,
    .coef_size = sizeof(adadelta_coef), .group_coef = adadelta_group, .update = adadelta_range,
    .added = added};

nb_adadelta_opts nb_adadelta_defaults(void) {
    return (nb_adadelta_opts){.lr = 1.0, .rho = 0.9, .eps = 1e-6, .weight_decay = 0,
                              .maximize = false};
}

nb_optim *nb_adadelta(nb_tensor *const *params, int n, const nb_adadelta_opts *opts) {
    nb_adadelta_opts o = opts ? *opts : nb_adadelta_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_num("rho", o.rho), nb_num("eps", o.eps),
                     nb_num("weight_decay", o.weight_decay), nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__adadelta_algo, params, n, kw, NB_COUNT(kw));
}
