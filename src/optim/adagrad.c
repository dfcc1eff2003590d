/* adagrad.c - torch.optim.Adagrad (Duchi et al.), with lr decay, L2 decay and maximize.
 *
 *   t += 1;  g = maximize ? -g : g;  g += wd * p
 *   clr = lr / (1 + (t - 1) lr_decay)
 *   sum += g^2;  p -= clr g / (sqrt(sum) + eps)
 * As in PyTorch the state ("step" 0, "sum" = initial_accumulator_value) exists as soon as a
 * parameter joins the optimizer, so state_dict has it before the first step. Unlike PyTorch
 * 1.13, this also holds for parameters added later by add_param_group (PyTorch raises a
 * KeyError on their first step). A row-sparse gradient updates only its rows, as PyTorch's. */
#include <math.h>
#include "optimizer.h"

typedef struct adagrad_coef {
    double lr, lr_decay;
    float sign, wd, eps, neg_clr;
} adagrad_coef;

NB_OPTIM_CLONES
static void adagrad_update(float *restrict p, const float *restrict g, float *restrict sum,
                           int64_t n, adagrad_coef c) {
    for (int64_t i = 0; i < n; i++) {
        float gi = nb__l2_grad(p[i], g[i], c.sign, c.wd);
        float s = fmaf(gi, gi, sum[i]);
        sum[i] = s;
        p[i] = p[i] + (c.neg_clr * gi) / (sqrtf(s) + c.eps);
    }
}

static void adagrad_group(const nb_group *g, void *coef) {
    *(adagrad_coef *)coef = (adagrad_coef){nb__g(g, "lr"), nb__g(g, "lr_decay"),
                                           nb__gb(g, "maximize") ? -1.0f : 1.0f,
                                           (float)nb__g(g, "weight_decay"), (float)nb__g(g, "eps"), 0};
}

static void adagrad_param(nb_optim_slot *s, void *coef) {
    adagrad_coef *c = coef;
    double t = s->v[0]->num;
    c->neg_clr = (float)-(c->lr / (1.0 + (t - 1.0) * c->lr_decay));
}

static void adagrad_range(const nb_optim_slot *s, int64_t b, int64_t e) {
    adagrad_update(s->p + b, s->g + b, s->t[1] + b, e - b, *(const adagrad_coef *)s->coef);
}

/* A row-sparse gradient, coalesced (the update is not linear in it), applied to its rows:
 * sum += g^2;  p -= clr g / (sqrt(sum) + eps), each of PyTorch's sparse ops rounding apart. */
static int adagrad_sparse(nb_optim *o, const nb_optim_slot *s) {
    const adagrad_coef *c = s->coef;
    int64_t nnz, dim = s->param->shape[1];
    const int32_t *rows;
    const float *g;
    if (nb__sparse_coalesced(o, s->grad, c->sign, &nnz, &rows, &g)) return NB_ENOMEM;
    for (int64_t k = 0; k < nnz; k++) {
        float *p = s->p + rows[k] * dim, *sum = s->t[1] + rows[k] * dim;
        for (int64_t j = 0; j < dim; j++) {
            float gi = g[k * dim + j];
            sum[j] = sum[j] + gi * gi;
            p[j] = p[j] + c->neg_clr * (gi / (sqrtf(sum[j]) + c->eps));
        }
    }
    return NB_OK;
}

static int adagrad_sparse_check(const nb_group *g) {
    if (nb__g(g, "weight_decay") != 0)
        return nb__error(NB_EINVAL, "weight_decay option is not compatible with sparse gradients");
    return NB_OK;
}

static int adagrad_validate(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate") ||
        nb__check_ge0(hp, n, "lr_decay", "lr_decay value") ||
        nb__check_ge0(hp, n, "weight_decay", "weight_decay value") ||
        nb__check_ge0(hp, n, "initial_accumulator_value", "initial_accumulator_value value") ||
        nb__check_ge0(hp, n, "eps", "epsilon value"))
        return NB_EINVAL;
    return NB_OK;
}

static const nb_state_spec adagrad_state[] = {
    NB_SPEC_STEP(NUMBER), NB_SPEC_X("sum", LIKE, .init_hp = "initial_accumulator_value")};

static const nb_value adagrad_defaults[] = {NB_DEF_NUM("lr", 1e-2), NB_DEF_NUM("lr_decay", 0),
                                            NB_DEF_NUM("eps", 1e-10), NB_DEF_NUM("weight_decay", 0),
                                            NB_DEF_NUM("initial_accumulator_value", 0),
                                            NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"maximize", NULL};

const nb_optim_algo nb__adagrad_algo = {
    .name = "Adagrad", .defaults = adagrad_defaults, .ndefaults = NB_COUNT(adagrad_defaults),
    .validate = adagrad_validate, .state_spec = adagrad_state, .nstate_spec = 2, .eager_state = true,
    .coef_size = sizeof(adagrad_coef), .group_coef = adagrad_group, .param_coef = adagrad_param,
    .update = adagrad_range, .update_sparse = adagrad_sparse, .sparse_check = adagrad_sparse_check,
    .added = added};

nb_adagrad_opts nb_adagrad_defaults(void) {
    return (nb_adagrad_opts){.lr = 1e-2, .lr_decay = 0, .weight_decay = 0,
                             .initial_accumulator_value = 0, .eps = 1e-10, .maximize = false};
}

nb_optim *nb_adagrad(nb_tensor *const *params, int n, const nb_adagrad_opts *opts) {
    nb_adagrad_opts o = opts ? *opts : nb_adagrad_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_num("lr_decay", o.lr_decay), nb_num("eps", o.eps),
                     nb_num("weight_decay", o.weight_decay),
                     nb_num("initial_accumulator_value", o.initial_accumulator_value),
                     nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__adagrad_algo, params, n, kw, NB_COUNT(kw));
}
