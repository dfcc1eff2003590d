/* sched_cli.c - `--sched NAME` and the schedule options as flags. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const char *name = "none";
static long step_size = 1;
static double gamma_ = 0.1;

void sched_cli_flags(cli_flags *f) {
    cli_add(f, (arg_spec){"sched", ARG_STRING, &name, "none | step (default none)", NULL});
    cli_add(f, (arg_spec){"step-size", ARG_INT, &step_size, "StepLR step_size in epochs (default 1)", NULL});
    cli_add(f, (arg_spec){"gamma", ARG_DOUBLE, &gamma_, "StepLR gamma (default 0.1)", NULL});
}

nb_sched *sched_cli_build(nb_optim *opt, int64_t steps_per_epoch, int64_t epochs, bool *failed) {
    (void)steps_per_epoch;
    (void)epochs;
    *failed = false;
    if (!strcmp(name, "none")) return NULL;
    nb_sched *s = NULL;
    if (!strcmp(name, "step")) {
        s = nb_step_lr(opt, step_size, gamma_);
    } else {
        fprintf(stderr, "nabla train: unknown schedule '%s' (none, step)\n", name);
        *failed = true;
        return NULL;
    }
    if (!s) {
        fprintf(stderr, "nabla train: scheduler: %s\n", nb_last_error());
        *failed = true;
    }
    return s;
}

int sched_cli_after_batch(nb_sched *s) {
    (void)s;
    return 0;
}

int sched_cli_after_epoch(nb_sched *s, double test_loss) {
    (void)test_loss;
    return s ? nb_sched_step(s) : 0;
}
