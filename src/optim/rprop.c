/* rprop.c - torch.optim.Rprop (Riedmiller & Braun, resilient backpropagation).
 *
 *   g = maximize ? -g : g;  s = sign(g * prev)
 *   step_size = clamp(step_size * (s > 0 ? eta_plus : s < 0 ? eta_minus : 1), min, max)
 *   g = s < 0 ? 0 : g;  p -= sign(g) step_size;  prev = g
 * "step_size" starts at the group's lr when the state is created: later lr changes (and
 * schedulers) do not affect a parameter that already has state, as in PyTorch. */
#include <math.h>
#include "optimizer.h"

NB_OPTIM_CLONES
static void rprop_update(float *restrict p, const float *restrict g, float *restrict prev,
                         float *restrict ss, int64_t n, float sign, float eta_minus,
                         float eta_plus, float ss_min, float ss_max) {
    for (int64_t i = 0; i < n; i++) {
        float gi = sign * g[i];
        float gp = gi * prev[i];
        float f = gp > 0.0f ? eta_plus : gp < 0.0f ? eta_minus : 1.0f;
        float s = ss[i] * f;
        s = s < ss_min ? ss_min : s > ss_max ? ss_max : s; /* clamp_, NaN stays */
        ss[i] = s;
        if (gp < 0.0f) gi = 0.0f;
        float sg = gi > 0.0f ? -1.0f : gi < 0.0f ? 1.0f : 0.0f; /* -sign(g) */
        p[i] = fmaf(sg, s, p[i]);
        prev[i] = gi;
    }
}

static int rprop_step(nb_optim *o, nb_group *g) {
    double lr = nb__g(g, "lr");
    double em = nb__ge(g, "etas", 0), ep = nb__ge(g, "etas", 1);
    double smin = nb__ge(g, "step_sizes", 0), smax = nb__ge(g, "step_sizes", 1);
    bool maximize = nb__gb(g, "maximize");
    for (int i = 0; i < g->nparams; i++) {
        nb_tensor *p = g->params[i];
        if (!p->grad) continue;
        int idx = g->first + i;
        nb_value *step = nb__state_scalar(o, idx, "step", NB_VALUE_INT, 0.0);
        float *prev = nb__state_tensor(o, idx, "prev", p, 0.0f);
        float *ss = nb__state_tensor(o, idx, "step_size", p, (float)lr);
        if (!step || !prev || !ss) return NB_ENOMEM;
        step->num += 1;
        rprop_update(nb_f32(p), nb_f32(p->grad), prev, ss, p->numel, maximize ? -1.0f : 1.0f,
                     (float)em, (float)ep, (float)smin, (float)smax);
    }
    return NB_OK;
}

static int rprop_validate(const nb_value *hp, int n) {
    if (nb__check_ge0(hp, n, "lr", "learning rate")) return NB_EINVAL;
    double em = nb__hp_elem(hp, n, "etas", 0), ep = nb__hp_elem(hp, n, "etas", 1);
    if (!(0.0 < em && em < 1.0 && 1.0 < ep))
        return nb__error(NB_EINVAL, "Invalid eta values: %s, %s", nb__pyfloat(em, 0), nb__pyfloat(ep, 1));
    return NB_OK;
}

static const nb_state_spec rprop_state[] = {{"step", NB_STATE_NUMBER}, {"prev", NB_STATE_LIKE},
                                            {"step_size", NB_STATE_LIKE}};

static const nb_optim_algo rprop_algo = {.name = "Rprop", .validate = rprop_validate,
                                         .step_group = rprop_step, .state_spec = rprop_state,
                                         .nstate_spec = 3};

nb_rprop_opts nb_rprop_defaults(void) {
    return (nb_rprop_opts){.lr = 1e-2, .eta_minus = 0.5, .eta_plus = 1.2, .step_size_min = 1e-6,
                           .step_size_max = 50, .maximize = false};
}

nb_optim *nb_rprop(nb_tensor *const *params, int n, const nb_rprop_opts *opts) {
    nb_rprop_opts o = opts ? *opts : nb_rprop_defaults();
    nb_value d[] = {nb_num("lr", o.lr), nb_pair("etas", o.eta_minus, o.eta_plus),
                    nb_pair("step_sizes", o.step_size_min, o.step_size_max),
                    nb_bool("maximize", o.maximize)};
    return nb__optim_new(&rprop_algo, d, (int)(sizeof d / sizeof d[0]), params, n);
}
