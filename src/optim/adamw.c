/* adamw.c - torch.optim.AdamW (Loshchilov & Hutter): Adam with decoupled weight decay.
 *
 *   g = maximize ? -g : g;  t += 1;  p *= 1 - lr wd   (always, even when wd = 0)
 *   m, v, vmax and the update exactly as Adam (the gradient carries no weight decay)
 * The rule is Adam's (adam.c), given the decay factor instead of an L2 term. */
#include "optimizer.h"

static void adamw_group(const nb_group *g, void *c) { nb__adam_group_coef(g, c, true); }

static const nb_value adamw_defaults[] = {NB_DEF_NUM("lr", 1e-3), NB_DEF_PAIR("betas", 0.9, 0.999),
                                          NB_DEF_NUM("eps", 1e-8), NB_DEF_NUM("weight_decay", 1e-2),
                                          NB_DEF_BOOL("amsgrad", 0), NB_DEF_BOOL("maximize", 0)};

static const char *const added[] = {"amsgrad", "maximize", NULL};

static const nb_value fixed[] = {NB_DEF_BOOL("decoupled_weight_decay", 1)};

const nb_optim_algo nb__adamw_algo = {
    .name = "AdamW", .defaults = adamw_defaults, .ndefaults = NB_COUNT(adamw_defaults),
    .validate = nb__validate_adam_like, .state_spec = nb__adam_state, .nstate_spec = 4,
    .coef_size = sizeof(nb__adam_coef), .group_coef = adamw_group, .param_coef = nb__adam_param_coef,
    .update = nb__adam_range,
    .added = added, .fixed = fixed, .nfixed = 1,
    .fixed_hint = ": load it into an Adam"};

nb_adamw_opts nb_adamw_defaults(void) {
    return (nb_adamw_opts){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                           .weight_decay = 1e-2, .amsgrad = false, .maximize = false};
}

nb_optim *nb_adamw(nb_tensor *const *params, int n, const nb_adamw_opts *opts) {
    nb_adamw_opts o = opts ? *opts : nb_adamw_defaults();
    nb_value kw[] = {nb_num("lr", o.lr), nb_pair("betas", o.beta1, o.beta2), nb_num("eps", o.eps),
                     nb_num("weight_decay", o.weight_decay), nb_bool("amsgrad", o.amsgrad),
                     nb_bool("maximize", o.maximize)};
    return nb__optim_create(&nb__adamw_algo, params, n, kw, NB_COUNT(kw));
}
