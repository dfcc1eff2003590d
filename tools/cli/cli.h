/* cli.h - the nabla command: subcommands, and the builders that turn flags into objects.
 *
 * Each builder owns its flags: *_cli_flags() appends them to a table before parsing, and
 * *_cli_build() makes the object from the parsed values. train.c only runs the loop. */
#ifndef NABLA_CLI_H
#define NABLA_CLI_H

#include "args.h"
#include "nabla.h"

/* A growable table of flags. */
typedef struct cli_flags {
    arg_spec specs[160];
    int n;
} cli_flags;

void cli_add(cli_flags *f, arg_spec s);

/* ---- subcommands (each returns the process exit code) ------------------------------------ */
int cmd_train(int argc, char **argv);

/* ---- model (model_cli.c): --model, --hidden, ... ------------------------------------------- */
typedef struct model_input {
    bool flatten; /* the model takes [B, 784] (mlp) rather than [B, 28, 28] */
} model_input;
void model_cli_flags(cli_flags *f);
/* Check the model flags; returns 0 or prints the problem and returns 2. */
int model_cli_check(void);
nb_module *model_cli_build(int64_t rows, int64_t cols, int64_t classes, nb_rng *rng);
model_input model_cli_input(void);
/* "mlp 784-128-10" */
const char *model_cli_describe(void);

/* ---- optimizer (optim_cli.c): --optim, --lr, --momentum, ... ------------------------------- */
void optim_cli_flags(cli_flags *f);
nb_optim *optim_cli_build(nb_tensor *const *params, int n);
/* Gradient clipping before each step (--clip, --clip-value); 0 = no clipping. */
int optim_cli_clip(nb_tensor *const *params, int n);
/* optimizer.step(); LBFGS gets a closure that re-evaluates this batch (x, y) on model. */
int optim_cli_step(nb_optim *opt, nb_module *model, nb_tensor *x, nb_tensor *y,
                   nb_tensor *const *params, int n);
const char *optim_cli_name(void);

/* ---- scheduler (sched_cli.c): --sched, --step-size, --gamma, ... --------------------------- */
void sched_cli_flags(cli_flags *f);
/* NULL with *failed false when --sched none. */
nb_sched *sched_cli_build(nb_optim *opt, int64_t steps_per_epoch, int64_t epochs, bool *failed);
/* Called after every batch and after every epoch (with the test loss); steps the schedule
 * at the granularity it wants. */
int sched_cli_after_batch(nb_sched *s);
int sched_cli_after_epoch(nb_sched *s, double test_loss);

#endif
