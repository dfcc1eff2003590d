/* model_cli.c - `--model NAME` and its options: the ready-made models of nabla train. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *model = "mlp", *hidden = "128";
static long layers = 1;
static char describe[128];

void model_cli_flags(cli_flags *f) {
    cli_add(f, (arg_spec){"model", ARG_STRING, &model, "mlp | rnn | lstm | gru (default mlp)", NULL});
    cli_add(f, (arg_spec){"hidden", ARG_STRING, &hidden, "hidden sizes, comma list (default 128; one size for rnn/lstm/gru)", NULL});
    cli_add(f, (arg_spec){"layers", ARG_INT, &layers, "recurrent layers of rnn/lstm/gru (default 1)", NULL});
}

static bool recurrent(void) {
    return !strcmp(model, "rnn") || !strcmp(model, "lstm") || !strcmp(model, "gru");
}

int model_cli_check(void) {
    double h[16];
    if (strcmp(model, "mlp") != 0 && !recurrent()) {
        fprintf(stderr, "nabla train: unknown model '%s' (mlp, rnn, lstm, gru)\n", model);
        return 2;
    }
    if (layers < 1 || layers > 64) {
        fprintf(stderr, "nabla train: --layers must be between 1 and 64, got %ld\n", layers);
        return 2;
    }
    int nh = args_list(hidden, h, 16);
    if (recurrent() && nh > 1) {
        fprintf(stderr, "nabla train: --hidden takes one size for %s, got '%s'\n", model, hidden);
        return 2;
    }
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

/* rnn/lstm/gru read each image as rows x cols: [B, 28, 28], 28 steps of 28 pixels. */
model_input model_cli_input(void) { return (model_input){.flatten = !recurrent()}; }

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

/* Sequential(RNN/LSTM/GRU(cols, hidden, layers, batch_first), Select(1, -1), Linear(hidden,
 * classes)): one step per image row, classified from the output at the last step. */
static nb_module *build_recurrent(int64_t rows, int64_t cols, int64_t classes, nb_rng *rng) {
    int64_t h = (int64_t)strtod(hidden, NULL);
    nb_rnn_opts o = nb_rnn_defaults();
    o.batch_first = true;
    o.num_layers = layers;
    nb_module *r = !strcmp(model, "rnn") ? nb_rnn_new(cols, h, &o, rng)
                   : !strcmp(model, "lstm") ? nb_lstm_new(cols, h, &o, rng)
                                            : nb_gru_new(cols, h, &o, rng);
    char nl[24] = "";
    if (layers > 1) snprintf(nl, sizeof nl, "x%ld", layers);
    snprintf(describe, sizeof describe, "%s %lld-%lld%s-%lld over %lld steps", model,
             (long long)cols, (long long)h, nl, (long long)classes, (long long)rows);
    return nb_sequential(3, (nb_module *[]){r, nb_select_new(1, -1), nb_linear_new(h, classes, true, rng)});
}

nb_module *model_cli_build(int64_t rows, int64_t cols, int64_t classes, nb_rng *rng) {
    if (recurrent()) return build_recurrent(rows, cols, classes, rng);
    return build_mlp(rows * cols, classes, rng);
}
