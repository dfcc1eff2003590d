/* cli.h - the subcommands of the nabla tool. Each returns the process exit code. */
#ifndef NABLA_CLI_H
#define NABLA_CLI_H
#include "nabla.h"

int cmd_train(int argc, char **argv);

#endif
