/* adamw.c - torch.optim.AdamW (Loshchilov & Hutter): Adam with decoupled weight decay.
 *
 *   g = maximize ? -g : g;  t += 1;  p *= 1 - lr wd   (always, even when wd = 0)
 *   m, v, vmax and the update exactly as Adam (the gradient carries no weight decay)
 * The fused loop is Adam's (adam.c), given the decay factor instead of an L2 term. */
#include "optimizer.h"

static int adamw_step(nb_optim *o, nb_group *g) { return nb__adam_group(o, g, true); }

static const nb_optim_algo adamw_algo = {.name = "AdamW", .validate = nb__validate_adam_like,
                                         .step_group = adamw_step, .state_spec = nb__adam_state,
                                         .nstate_spec = 4};

nb_adamw_opts nb_adamw_defaults(void) {
    return (nb_adamw_opts){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                           .weight_decay = 1e-2, .amsgrad = false, .maximize = false};
}

nb_optim *nb_adamw(nb_tensor *const *params, int n, const nb_adamw_opts *opts) {
    nb_adamw_opts o = opts ? *opts : nb_adamw_defaults();
    nb_value d[] = {nb_num("lr", o.lr), nb_pair("betas", o.beta1, o.beta2), nb_num("eps", o.eps),
                    nb_num("weight_decay", o.weight_decay), nb_bool("amsgrad", o.amsgrad),
                    nb_bool("maximize", o.maximize)};
    return nb__optim_new(&adamw_algo, d, (int)(sizeof d / sizeof d[0]), params, n);
}
