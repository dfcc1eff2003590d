/* optim_cli.c - `--optim NAME` and the optimizer options as flags. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const char *name = "sgd";
static double lr = NAN, momentum = 0.9, weight_decay = 0, clip = 0;
static bool nesterov = false;

void optim_cli_flags(cli_flags *f) {
    cli_add(f, (arg_spec){"optim", ARG_STRING, &name, "sgd | adam (default sgd)", NULL});
    cli_add(f, (arg_spec){"lr", ARG_DOUBLE, &lr, "learning rate (default 0.1 for sgd, 1e-3 for adam)", NULL});
    cli_add(f, (arg_spec){"momentum", ARG_DOUBLE, &momentum, "SGD momentum (default 0.9)", NULL});
    cli_add(f, (arg_spec){"nesterov", ARG_FLAG, &nesterov, "SGD Nesterov momentum", NULL});
    cli_add(f, (arg_spec){"weight-decay", ARG_DOUBLE, &weight_decay, "weight decay (default 0)", NULL});
    cli_add(f, (arg_spec){"clip", ARG_DOUBLE, &clip, "clip_grad_norm_ max norm before each step (0: off)", NULL});
}

const char *optim_cli_name(void) { return name; }

nb_optim *optim_cli_build(nb_tensor *const *params, int n) {
    if (!strcmp(name, "sgd")) {
        nb_sgd_opts o = nb_sgd_defaults();
        o.lr = isnan(lr) ? 0.1 : lr;
        o.momentum = momentum;
        o.nesterov = nesterov;
        o.weight_decay = weight_decay;
        return nb_sgd(params, n, &o);
    }
    if (!strcmp(name, "adam")) {
        nb_adam_opts o = nb_adam_defaults();
        o.lr = isnan(lr) ? 1e-3 : lr;
        o.weight_decay = weight_decay;
        return nb_adam(params, n, &o);
    }
    nb_clear_error();
    fprintf(stderr, "nabla train: unknown optimizer '%s' (sgd, adam)\n", name);
    return NULL;
}

int optim_cli_clip(nb_tensor *const *params, int n) {
    if (clip <= 0) return 0;
    double total;
    return nb_clip_grad_norm(params, n, clip, 2.0, false, &total);
}
