/* sparse_adam.c - torch.optim.SparseAdam: Adam's lazy variant for row-sparse gradients (a
 * sparse Embedding's): only the rows the gradient has are touched, moments included.
 *
 *   g = coalesce(maximize ? -g : g);  t += 1                 (t a Python int, as in PyTorch)
 *   for each row r of g:  dm = (g - m[r]) (1-b1);  m[r] += dm
 *                         dv = (g^2 - v[r]) (1-b2);  v[r] += dv
 *                         p[r] += -lr sqrt(1-b2^t)/(1-b1^t) * (dm + m_old) / (sqrt(dv + v_old) + eps)
 * in the order of PyTorch 1.13's float32 ops (old <- b old + (1-b) new written as
 * old += (1-b)(new - old)). Dense gradients are refused, as are the options SparseAdam lacks. */
#include <math.h>
#include "optimizer.h"

typedef struct sparse_adam_coef {
    double lr, b1d, b2d;
    float sign, one_m_b1, one_m_b2, eps;
} sparse_adam_coef;

static void sparse_adam_group(const nb_group *g, void *coef) {
    double b1 = nb__ge(g, "betas", 0), b2 = nb__ge(g, "betas", 1);
    *(sparse_adam_coef *)coef = (sparse_adam_coef){nb__g(g, "lr"), b1, b2, nb__gb(g, "maximize") ? -1.0f : 1.0f,
                                                   (float)(1.0 - b1), (float)(1.0 - b2), (float)nb__g(g, "eps")};
}

static int sparse_adam_update(nb_optim *o, const nb_optim_slot *s) {
    const sparse_adam_coef *c = s->coef;
    int64_t nnz, dim = s->param->shape[1];
    const int32_t *rows;
    const float *g;
    if (nb__sparse_coalesced(o, s->grad, c->sign, &nnz, &rows, &g)) return NB_ENOMEM;
    double t = s->v[0]->num;
    double step_size = c->lr * sqrt(1.0 - pow(c->b2d, t)) / (1.0 - pow(c->b1d, t));
    const float neg_step = (float)-step_size;
    for (int64_t k = 0; k < nnz; k++) {
        float *p = s->p + rows[k] * dim, *m = s->t[1] + rows[k] * dim, *v = s->t[2] + rows[k] * dim;
        const float *gk = g + k * dim;
        for (int64_t j = 0; j < dim; j++) {
            float m_old = m[j], v_old = v[j];
            float dm = (gk[j] - m_old) * c->one_m_b1, dv = (gk[j] * gk[j] - v_old) * c->one_m_b2;
            m[j] = m_old + dm;
            v[j] = v_old + dv;
            p[j] = p[j] + neg_step * ((dm + m_old) / (sqrtf(dv + v_old) + c->eps));
        }
    }
    return NB_OK;
}

/* PyTorch 1.13's checks, in its order: lr and eps strictly positive. */
static int sparse_adam_validate(const nb_value *hp, int n) {
    double lr = nb__hp(hp, n, "lr"), eps = nb__hp(hp, n, "eps");
    if (!(0.0 < lr)) return nb__error(NB_EINVAL, "Invalid learning rate: %s", nb__pyfloat(lr, 0));
    if (!(0.0 < eps)) return nb__error(NB_EINVAL, "Invalid epsilon value: %s", nb__pyfloat(eps, 0));
    return nb__check_betas(hp, n);
}

static const nb_state_spec sparse_adam_state[] = {NB_SPEC_STEP(INT), NB_SPEC("exp_avg", LIKE),
                                                  NB_SPEC("exp_avg_sq", LIKE)};

static const nb_value sparse_adam_defaults[] = {NB_DEF_NUM("lr", 1e-3), NB_DEF_PAIR("betas", 0.9, 0.999),
                                                NB_DEF_NUM("eps", 1e-8), NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"maximize", NULL};

const nb_optim_algo nb__sparse_adam_algo = {
    .name = "SparseAdam", .defaults = sparse_adam_defaults, .ndefaults = NB_COUNT(sparse_adam_defaults),
    .validate = sparse_adam_validate, .state_spec = sparse_adam_state, .nstate_spec = 3,
    .coef_size = sizeof(sparse_adam_coef), .group_coef = sparse_adam_group, .update_sparse = sparse_adam_update,
    .sparse_only = true, .grad_error = "SparseAdam does not support dense gradients, please consider Adam instead",
    .added = added};

nb_sparse_adam_opts nb_sparse_adam_defaults(void) {
    return (nb_sparse_adam_opts){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .maximize = false};
}

nb_optim *nb_sparse_adam(nb_tensor *const *params, int n, const nb_sparse_adam_opts *opts) {
    nb_sparse_adam_opts o = opts ? *opts : nb_sparse_adam_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_pair("betas", o.beta1, o.beta2), nb_num("eps", o.eps),
                     nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__sparse_adam_algo, params, n, kw, NB_COUNT(kw));
}
