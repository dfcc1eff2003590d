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

typedef struct asgd_coef {
    double lr, lambd, alpha, t0;
    float sign, wd, decay, neg_eta, mu;
} asgd_coef;

NB_OPTIM_CLONES
static void asgd_update(float *restrict p, const float *restrict g, float *restrict ax, int64_t n,
                        asgd_coef c) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], c.sign, c.wd);
        float pi = fmaf(gi, c.neg_eta, p[i] * c.decay);
        p[i] = pi;
        ax[i] = c.mu != 1.0f ? ax[i] + (pi - ax[i]) * c.mu : pi;
    }
}

static void asgd_group(const nb_group *g, void *coef) {
    *(asgd_coef *)coef = (asgd_coef){.lr = nb__g(g, "lr"), .lambd = nb__g(g, "lambd"), .alpha = nb__g(g, "alpha"),
                                     .t0 = nb__g(g, "t0"), .sign = nb__gb(g, "maximize") ? -1.0f : 1.0f,
                                     .wd = (float)nb__g(g, "weight_decay")};
}

/* This step's eta and mu, then their values for the next step. */
static void asgd_param(nb_optim_slot *s, void *coef) {
    asgd_coef *c = coef;
    nb_value *eta = s->v[1], *mu = s->v[2];
    double t = s->v[0]->num;
    c->decay = (float)(1.0 - c->lambd * eta->num);
    c->neg_eta = (float)-eta->num;
    c->mu = (float)mu->num;
    eta->num = (float)(c->lr / pow(1.0 + c->lambd * c->lr * t, c->alpha));
    mu->num = (float)(1.0 / fmax(1.0, t - c->t0));
}

static void asgd_range(const nb_optim_slot *s, int64_t b, int64_t e) {
    asgd_update(s->p + b, s->g + b, s->t[3] + b, e - b, *(const asgd_coef *)s->coef);
}

static int asgd_validate(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate") ||
        nb__check_ge0(hp, n, "weight_decay", "weight_decay value"))
        return NB_EINVAL;
    return NB_OK;
}

static const nb_state_spec asgd_state[] = {NB_SPEC_STEP(NUMBER),
                                           NB_SPEC_X("eta", NUMBER, .init_hp = "lr"),
                                           NB_SPEC_X("mu", NUMBER, .init = 1.0),
                                           NB_SPEC("ax", LIKE)};

static const nb_value asgd_defaults[] = {NB_DEF_NUM("lr", 1e-2), NB_DEF_NUM("lambd", 1e-4),
                                         NB_DEF_NUM("alpha", 0.75), NB_DEF_NUM("t0", 1e6),
                                         NB_DEF_NUM("weight_decay", 0), NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"maximize", NULL};

const nb_optim_algo nb__asgd_algo = {
    .name = "ASGD", .defaults = asgd_defaults, .ndefaults = NB_COUNT(asgd_defaults),
    .validate = asgd_validate, .state_spec = asgd_state, .nstate_spec = 4, .coef_size = sizeof(asgd_coef),
    .group_coef = asgd_group, .param_coef = asgd_param, .update = asgd_range,
    .added = added};

const nb_tensor *nb_asgd_average(const nb_optim *o, const nb_tensor *p) {
    if (!o || !p || o->algo != &nb__asgd_algo) return NULL;
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
    nb_value kw[] = {nb_num("lr", o.lr), nb_num("lambd", o.lambd), nb_num("alpha", o.alpha),
                     nb_num("t0", o.t0), nb_num("weight_decay", o.weight_decay),
                     nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__asgd_algo, params, n, kw, NB_COUNT(kw));
}
