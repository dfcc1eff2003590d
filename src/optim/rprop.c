/* rprop.c - torch.optim.Rprop (Riedmiller & Braun, resilient backpropagation).
 *
 *   g = maximize ? -g : g;  s = sign(g * prev)
 *   step_size = clamp(step_size * (s > 0 ? eta_plus : s < 0 ? eta_minus : 1), min, max)
 *   g = s < 0 ? 0 : g;  p -= sign(g) step_size;  prev = g
 * "step_size" starts at the group's lr when the state is created: later lr changes (and
 * schedulers) do not affect a parameter that already has state, as in PyTorch. */
#include <math.h>
#include "optimizer.h"

typedef struct rprop_coef {
    float sign, eta_minus, eta_plus, ss_min, ss_max;
} rprop_coef;

NB_OPTIM_CLONES
static void rprop_update(float *restrict p, const float *restrict g, float *restrict prev,
                         float *restrict ss, int64_t n, rprop_coef c) {
    for (int64_t i = 0; i < n; i++) {
        float gi = c.sign * g[i];
        float gp = gi * prev[i];
        float f = gp > 0.0f ? c.eta_plus : gp < 0.0f ? c.eta_minus : 1.0f;
        float s = ss[i] * f;
        s = s < c.ss_min ? c.ss_min : s > c.ss_max ? c.ss_max : s; /* clamp_, NaN stays */
        ss[i] = s;
        if (gp < 0.0f) gi = 0.0f;
        float sg = gi > 0.0f ? -1.0f : gi < 0.0f ? 1.0f : 0.0f; /* -sign(g) */
        p[i] = fmaf(sg, s, p[i]);
        prev[i] = gi;
    }
}

static void rprop_group(const nb_group *g, void *coef) {
    *(rprop_coef *)coef = (rprop_coef){nb__gb(g, "maximize") ? -1.0f : 1.0f, (float)nb__ge(g, "etas", 0),
                                       (float)nb__ge(g, "etas", 1), (float)nb__ge(g, "step_sizes", 0),
                                       (float)nb__ge(g, "step_sizes", 1)};
}

static void rprop_range(const nb_optim_slot *s, int64_t b, int64_t e) {
    rprop_update(s->p + b, s->g + b, s->t[1] + b, s->t[2] + b, e - b, *(const rprop_coef *)s->coef);
}

static int rprop_validate(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate")) return NB_EINVAL;
    double em = nb__hp_elem(hp, n, "etas", 0), ep = nb__hp_elem(hp, n, "etas", 1);
    if (!(0.0 < em && em < 1.0 && 1.0 < ep))
        return nb__error(NB_EINVAL, "Invalid eta values: %s, %s", nb__pyfloat(em, 0), nb__pyfloat(ep, 1));
    return NB_OK;
}

static const nb_state_spec rprop_state[] = {NB_SPEC_STEP(INT), NB_SPEC("prev", LIKE),
                                            NB_SPEC_X("step_size", LIKE, .init_hp = "lr")};

static const nb_value rprop_defaults[] = {NB_DEF_NUM("lr", 1e-2), NB_DEF_PAIR("etas", 0.5, 1.2),
                                          NB_DEF_PAIR("step_sizes", 1e-6, 50), NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"maximize", NULL};

const nb_optim_algo nb__rprop_algo = {
    .name = "Rprop", .defaults = rprop_defaults, .ndefaults = NB_COUNT(rprop_defaults),
    .validate = rprop_validate, .state_spec = rprop_state, .nstate_spec = 3,
    .coef_size = sizeof(rprop_coef), .group_coef = rprop_group, .update = rprop_range,
    .added = added};

nb_rprop_opts nb_rprop_defaults(void) {
    return (nb_rprop_opts){.lr = 1e-2, .eta_minus = 0.5, .eta_plus = 1.2, .step_size_min = 1e-6,
                           .step_size_max = 50, .maximize = false};
}

nb_optim *nb_rprop(nb_tensor *const *params, int n, const nb_rprop_opts *opts) {
    nb_rprop_opts o = opts ? *opts : nb_rprop_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_pair("etas", o.eta_minus, o.eta_plus),
                     nb_pair("step_sizes", o.step_size_min, o.step_size_max),
                     nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__rprop_algo, params, n, kw, NB_COUNT(kw));
}
