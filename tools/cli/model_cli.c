/* model_cli.c - `--model NAME` and its options: the ready-made models of nabla train.
 *   mlp: Linear(in, h1) ReLU ... Linear(hk, classes)           on [B, rows*cols]
 *   cnn: LeNet-5 (Conv2d(1,6,5,padding=2) ReLU MaxPool2d(2) Conv2d(6,16,5) ReLU MaxPool2d(2)
 *        Flatten Linear(400,120) ReLU Linear(120,84) ReLU Linear(84,classes)) on [B, 1, rows, cols]
 *   rnn, lstm, gru: RNN/LSTM/GRU(cols, hidden, num_layers=--layers, batch_first) Select(1, -1)
 *        Linear(hidden, classes) on [B, rows, cols]: one step per image row, classified from
 *        the output at the last step
 * --batchnorm adds BatchNorm1d/2d after each hidden Linear/Conv2d (before its ReLU); --dropout P
 * adds Dropout(P) after each hidden Linear's ReLU (recurrent models: between their layers).
 * The input size and the number of outputs (classes, or regression targets) come from the data:
 * an mlp takes any sample flattened; cnn and the recurrent models take images [H, W]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *model = "mlp", *hidden = "128";
static long layers = 1;
static double dropout = 0.0;
static bool batchnorm = false;
static char describe[160];

void model_cli_flags(cli_flags *f) {
    cli_add(f, (arg_spec){"model", ARG_STRING, &model, "mlp, cnn (LeNet-5), rnn, lstm or gru (default mlp)", NULL});
    cli_add(f, (arg_spec){"hidden", ARG_STRING, &hidden, "mlp hidden sizes, comma list; rnn/lstm/gru: one size (default 128)", NULL});
    cli_add(f, (arg_spec){"layers", ARG_INT, &layers, "rnn/lstm/gru layers (default 1)", NULL});
    cli_add(f, (arg_spec){"dropout", ARG_DOUBLE, &dropout, "dropout probability after each hidden layer (default 0: none)", NULL});
    cli_add(f, (arg_spec){"batchnorm", ARG_FLAG, &batchnorm, "batch normalisation after each hidden layer", NULL});
}

static bool is_cnn(void) { return strcmp(model, "cnn") == 0; }

static bool recurrent(void) {
    return !strcmp(model, "rnn") || !strcmp(model, "lstm") || !strcmp(model, "gru");
}

int model_cli_check(void) {
    double h[16];
    if (strcmp(model, "mlp") != 0 && !is_cnn() && !recurrent()) {
        fprintf(stderr, "%s: unknown model '%s' (mlp, cnn, rnn, lstm, gru)\n", cli_prog, model);
        return 2;
    }
    if (layers < 1 || layers > 64) {
        fprintf(stderr, "%s: --layers must be between 1 and 64, got %ld\n", cli_prog, layers);
        return 2;
    }
    if (recurrent() && batchnorm) {
        fprintf(stderr, "%s: --batchnorm is for mlp and cnn, not %s\n", cli_prog, model);
        return 2;
    }
    if (!(dropout >= 0.0 && dropout < 1.0)) {
        fprintf(stderr, "%s: --dropout must be in [0, 1), got %g\n", cli_prog, dropout);
        return 2;
    }
    if (is_cnn()) return 0;
    int nh = args_list(hidden, h, 16);
    if (recurrent() && nh > 1) {
        fprintf(stderr, "%s: --hidden takes one size for %s, got '%s'\n", cli_prog, model, hidden);
        return 2;
    }
    if (nh < 1) {
        fprintf(stderr, "%s: --hidden must be a comma list of up to 16 sizes, got '%s'\n", cli_prog, hidden);
        return 2;
    }
    for (int i = 0; i < nh; i++)
        if (!(h[i] >= 1 && h[i] <= 1e6) || h[i] != floor(h[i])) {
            fprintf(stderr, "%s: hidden size %.17g is not an integer in 1..1000000\n", cli_prog, h[i]);
            return 2;
        }
    return 0;
}

/* cnn and rnn/lstm/gru take the images as [B, rows, cols]. */
model_input model_cli_input(void) { return (model_input){.flatten = !is_cnn() && !recurrent()}; }

nb_tensor *model_cli_prepare(nb_arena *ar, nb_tensor *x) {
    if (!is_cnn() || !x || x->ndim != 3) return x;
    return nb_reshape(ar, x, 4, (int64_t[]){x->shape[0], 1, x->shape[1], x->shape[2]});
}

const char *model_cli_describe(void) { return describe; }

/* Linear(in, out) [BatchNorm1d] ReLU [Dropout]: a hidden layer; returns the modules added. */
static int hidden_layer(nb_module **mods, int64_t in, int64_t out, nb_rng *rng) {
    int n = 0;
    mods[n++] = nb_linear_new(in, out, true, rng);
    if (batchnorm) mods[n++] = nb_batchnorm1d_new(out, NULL);
    mods[n++] = nb_relu_new();
    if (dropout > 0) mods[n++] = nb_dropout_new((float)dropout, rng);
    return n;
}

static void describe_options(void) {
    size_t o = strlen(describe);
    if (batchnorm) o += (size_t)snprintf(describe + o, sizeof describe - o, " +batchnorm");
    if (dropout > 0) snprintf(describe + o, sizeof describe - o, " +dropout %g", dropout);
}

/* in -> hidden... -> classes: nn.Sequential(Linear, ReLU, ..., Linear). */
static nb_module *build_mlp(int64_t in, int64_t classes, nb_rng *rng) {
    double h[16];
    int nh = args_list(hidden, h, 16);
    nb_module *mods[16 * 4 + 1];
    int n = 0;
    int64_t prev = in;
    for (int i = 0; i < nh; i++) {
        n += hidden_layer(mods + n, prev, (int64_t)h[i], rng);
        prev = (int64_t)h[i];
    }
    mods[n++] = nb_linear_new(prev, classes, true, rng);
    snprintf(describe, sizeof describe, "mlp %lld-%s-%lld", (long long)in, hidden, (long long)classes);
    for (char *p = describe; *p; p++)
        if (*p == ',') *p = '-';
    describe_options();
    return nb_sequential(n, mods);
}

/* LeNet-5 for [B, 1, rows, cols] (28 x 28 gives the 16 x 5 x 5 = 400 features of Linear(400, 120)). */
static nb_module *build_cnn(int64_t rows, int64_t cols, int64_t classes, nb_rng *rng) {
    nb_module *mods[24];
    int n = 0;
    nb_conv_opts pad2 = nb_conv_defaults();
    pad2.padding[0] = pad2.padding[1] = 2;
    mods[n++] = nb_conv2d_new(1, 6, 5, 5, &pad2, true, rng);
    if (batchnorm) mods[n++] = nb_batchnorm2d_new(6, NULL);
    mods[n++] = nb_relu_new();
    mods[n++] = nb_max_pool2d_new(2, 2, NULL);
    mods[n++] = nb_conv2d_new(6, 16, 5, 5, NULL, true, rng);
    if (batchnorm) mods[n++] = nb_batchnorm2d_new(16, NULL);
    mods[n++] = nb_relu_new();
    mods[n++] = nb_max_pool2d_new(2, 2, NULL);
    mods[n++] = nb_flatten_new(1, -1);
    int64_t h = ((rows + 4 - 4) / 2 - 4) / 2, w = ((cols + 4 - 4) / 2 - 4) / 2;
    n += hidden_layer(mods + n, 16 * h * w, 120, rng);
    n += hidden_layer(mods + n, 120, 84, rng);
    mods[n++] = nb_linear_new(84, classes, true, rng);
    snprintf(describe, sizeof describe, "cnn LeNet-5 (%lldx%lld)", (long long)rows, (long long)cols);
    describe_options();
    return nb_sequential(n, mods);
}

/* Sequential(RNN/LSTM/GRU(cols, hidden, layers, batch_first), Select(1, -1), Linear(hidden,
 * classes)): one step per image row, classified from the output at the last step. */
static nb_module *build_recurrent(int64_t rows, int64_t cols, int64_t classes, nb_rng *rng) {
    int64_t h = (int64_t)strtod(hidden, NULL);
    nb_rnn_opts o = nb_rnn_defaults();
    o.batch_first = true;
    o.num_layers = layers;
    o.dropout = (float)dropout;
    o.dropout_rng = rng;
    nb_module *r = !strcmp(model, "rnn") ? nb_rnn_new(cols, h, &o, rng)
                   : !strcmp(model, "lstm") ? nb_lstm_new(cols, h, &o, rng)
                                            : nb_gru_new(cols, h, &o, rng);
    char nl[24] = "";
    if (layers > 1) snprintf(nl, sizeof nl, "x%ld", layers);
    snprintf(describe, sizeof describe, "%s %lld-%lld%s-%lld over %lld steps", model,
             (long long)cols, (long long)h, nl, (long long)classes, (long long)rows);
    describe_options();
    return nb_sequential(3, (nb_module *[]){r, nb_select_new(1, -1), nb_linear_new(h, classes, true, rng)});
}

nb_module *model_cli_build(int64_t rows, int64_t cols, int64_t classes, nb_rng *rng) {
    return model_cli_build_for(2, (int64_t[]){rows, cols}, classes, rng);
}

int model_cli_check_input(int ndim, const int64_t *shape) {
    if (!is_cnn() && !recurrent()) return 0; /* an mlp takes any sample, flattened */
    char s[96];
    if (ndim != 2) {
        fprintf(stderr, "%s: --model %s takes images [H, W] (e.g. a .npy file of shape [N, H, W]); these samples have "
                "shape %s: use --model mlp\n", cli_prog, model, cli_shape_text(ndim, shape, s, sizeof s));
        return 2;
    }
    if (is_cnn() && (shape[0] < 12 || shape[1] < 12)) {
        fprintf(stderr, "%s: --model cnn (LeNet-5) needs images of at least 12x12, these are %lldx%lld\n", cli_prog,
                (long long)shape[0], (long long)shape[1]);
        return 2;
    }
    return 0;
}

nb_module *model_cli_build_for(int ndim, const int64_t *shape, int64_t outputs, nb_rng *rng) {
    int64_t features = 1;
    for (int i = 0; i < ndim; i++) features *= shape[i];
    if (recurrent()) return build_recurrent(shape[0], shape[1], outputs, rng);
    return is_cnn() ? build_cnn(shape[0], shape[1], outputs, rng) : build_mlp(features, outputs, rng);
}
