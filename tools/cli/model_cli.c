/* model_cli.c - `--model NAME` and its options: the ready-made models of nabla train. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const char *model = "mlp", *hidden = "128";
static char describe[128];

void model_cli_flags(cli_flags *f) {
    cli_add(f, (arg_spec){"model", ARG_STRING, &model, "mlp (default mlp)", NULL});
    cli_add(f, (arg_spec){"hidden", ARG_STRING, &hidden, "hidden sizes, comma list (default 128)", NULL});
}

int model_cli_check(void) {
    double h[16];
    if (strcmp(model, "mlp") != 0) {
        fprintf(stderr, "nabla train: unknown model '%s' (mlp)\n", model);
        return 2;
    }
    int nh = args_list(hidden, h, 16);
    if (nh < 1) {
        fprintf(stderr, "nabla train: --hidden must be a comma list of up to 16 sizes, got '%s'\n", hidden);
        return 2;
    }
    for (int i = 0; i < nh; i++)
        if (h[i] < 1 || h[i] != floor(h[i]) || h[i] > 1e6) {
            fprintf(stderr, "nabla train: hidden size %g is not a positive integer\n", h[i]);
            return 2;
        }
    return 0;
}

model_input model_cli_input(void) { return (model_input){.flatten = true}; }

const char *model_cli_describe(void) { return describe; }

/* in -> hidden... -> classes with ReLU between: nn.Sequential(Linear, ReLU, ..., Linear). */
static nb_module *build_mlp(int64_t in, int64_t classes, nb_rng *rng) {
    double h[16];
    int nh = args_list(hidden, h, 16);
    nb_module *mods[33];
    int n = 0;
    int64_t prev = in;
    for (int i = 0; i < nh; i++) {
        mods[n++] = nb_linear_new(prev, (int64_t)h[i], true, rng);
        mods[n++] = nb_relu_new();
        prev = (int64_t)h[i];
    }
    mods[n++] = nb_linear_new(prev, classes, true, rng);
    snprintf(describe, sizeof describe, "mlp %lld-%s-%lld", (long long)in, hidden, (long long)classes);
    for (char *p = describe; *p; p++)
        if (*p == ',') *p = '-';
    return nb_sequential(n, mods);
}

nb_module *model_cli_build(int64_t rows, int64_t cols, int64_t classes, nb_rng *rng) {
    return build_mlp(rows * cols, classes, rng);
}
