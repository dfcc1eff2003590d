/* train.c - `nabla train`: the PyTorch training loop over MNIST-style IDX data.
 *   for each epoch: for each batch: forward, loss, zero_grad, backward, step; evaluate;
 *   scheduler step; print one line (and one JSON object with --metrics). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "args.h"
#include "cli.h"

typedef struct train_cfg {
    const char *data, *model, *hidden, *optim, *sched, *metrics;
    double lr, momentum, weight_decay, gamma;
    bool nesterov, lr_given;
    long batch, epochs, seed, threads, step_size, limit;
} train_cfg;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what) {
    fprintf(stderr, "nabla train: %s: %s\n", what, nb_last_error());
    return 1;
}

/* 784 -> hidden... -> 10 with ReLU between, as nn.Sequential(Linear, ReLU, ..., Linear). */
static nb_module *build_mlp(const train_cfg *c, int64_t in, int64_t classes, nb_rng *rng) {
    double h[16];
    int nh = args_list(c->hidden, h, 16);
    if (nh < 0) {
        fprintf(stderr, "nabla train: --hidden must be a comma list of sizes, got '%s'\n", c->hidden);
        return NULL;
    }
    nb_module *mods[33];
    int n = 0;
    int64_t prev = in;
    for (int i = 0; i < nh; i++) {
        if (h[i] < 1 || h[i] != floor(h[i])) {
            fprintf(stderr, "nabla train: hidden size %g is not a positive integer\n", h[i]);
            for (int j = 0; j < n; j++) nb_module_free(mods[j]);
            return NULL;
        }
        mods[n++] = nb_linear_new(prev, (int64_t)h[i], true, rng);
        mods[n++] = nb_relu_new();
        prev = (int64_t)h[i];
    }
    mods[n++] = nb_linear_new(prev, classes, true, rng);
    nb_module *m = nb_sequential(n, mods);
    if (!m) fail("model");
    return m;
}

static nb_optim *build_optim(const train_cfg *c, nb_tensor **params, int n) {
    if (!strcmp(c->optim, "sgd")) {
        nb_sgd_opts o = nb_sgd_defaults();
        o.lr = c->lr_given ? c->lr : 0.1;
        o.momentum = c->momentum;
        o.nesterov = c->nesterov;
        o.weight_decay = c->weight_decay;
        return nb_sgd(params, n, &o);
    }
    if (!strcmp(c->optim, "adam")) {
        nb_adam_opts o = nb_adam_defaults();
        o.lr = c->lr_given ? c->lr : 1e-3;
        o.weight_decay = c->weight_decay;
        return nb_adam(params, n, &o);
    }
    nb_clear_error();
    fprintf(stderr, "nabla train: unknown optimizer '%s' (sgd, adam)\n", c->optim);
    return NULL;
}

static nb_sched *build_sched(const train_cfg *c, nb_optim *opt, bool *failed) {
    *failed = false;
    if (!strcmp(c->sched, "none")) return NULL;
    nb_sched *s = NULL;
    if (!strcmp(c->sched, "step")) s = nb_step_lr(opt, c->step_size, c->gamma);
    else {
        fprintf(stderr, "nabla train: unknown schedule '%s' (none, step)\n", c->sched);
        *failed = true;
        return NULL;
    }
    if (!s) {
        fail("scheduler");
        *failed = true;
    }
    return s;
}

/* Test loss and accuracy in batches of 1000, without recording a graph. */
static int evaluate(nb_module *model, const nb_mnist *test, nb_arena *ar, double *loss, double *acc) {
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = 1000;
    lo.shuffle = false;
    lo.flatten = true;
    nb_loader *ld = nb_loader_new(test->images, test->labels, &lo);
    if (!ld) return -1;
    bool prev = nb_set_grad_enabled(false);
    nb_module_train(model, false);
    double total = 0, correct = 0;
    int64_t n = 0;
    nb_tensor *x, *y;
    int rc;
    for (;;) {
        nb_arena_reset(ar);
        if ((rc = nb_loader_next(ld, ar, &x, &y)) <= 0) break;
        nb_tensor *logits = nb_forward(model, ar, x);
        nb_cross_entropy_opts co = nb_cross_entropy_defaults();
        co.reduction = NB_REDUCTION_SUM;
        nb_tensor *l = nb_cross_entropy(ar, logits, y, &co);
        nb_tensor *pred = nb_argmax(ar, logits, 1, false);
        if (!l || !pred) {
            rc = -1;
            break;
        }
        total += nb_item(l);
        for (int64_t i = 0; i < y->numel; i++) correct += nb_i32(pred)[i] == nb_i32(y)[i];
        n += y->numel;
    }
    nb_module_train(model, true);
    nb_set_grad_enabled(prev);
    nb_loader_free(ld);
    *loss = total / (double)n;
    *acc = correct / (double)n;
    return rc < 0 ? -1 : 0;
}

static void progress(int64_t done, int64_t total, double loss) {
    int width = 30, filled = (int)(width * done / (total ? total : 1));
    fprintf(stderr, "\r  [%.*s%*s] %3d%%  loss %.4f", filled, "##############################",
            width - filled, "", (int)(100 * done / (total ? total : 1)), loss);
    fflush(stderr);
}

int cmd_train(int argc, char **argv) {
    train_cfg c = {.data = nb_default_data_dir(), .model = "mlp", .hidden = "128", .optim = "sgd",
                   .sched = "none", .metrics = NULL, .lr = 0.1, .momentum = 0.9,
                   .weight_decay = 0, .gamma = 0.1, .nesterov = false, .batch = 64, .epochs = 3,
                   .seed = 0, .threads = 1, .step_size = 1, .limit = 0};
    bool help = false;
    const arg_spec specs[] = {
        {"data", ARG_STRING, &c.data, "folder with the IDX files (default: Fashion-MNIST)", NULL},
        {"model", ARG_STRING, &c.model, "mlp", NULL},
        {"hidden", ARG_STRING, &c.hidden, "hidden sizes, comma list (default 128)", NULL},
        {"optim", ARG_STRING, &c.optim, "sgd | adam (default sgd)", NULL},
        {"lr", ARG_DOUBLE, &c.lr, "learning rate (default 0.1 for sgd, 1e-3 for adam)", &c.lr_given},
        {"momentum", ARG_DOUBLE, &c.momentum, "SGD momentum (default 0.9)", NULL},
        {"nesterov", ARG_FLAG, &c.nesterov, "SGD Nesterov momentum", NULL},
        {"weight-decay", ARG_DOUBLE, &c.weight_decay, "L2 weight decay (default 0)", NULL},
        {"batch", ARG_INT, &c.batch, "batch size (default 64)", NULL},
        {"epochs", ARG_INT, &c.epochs, "epochs (default 3)", NULL},
        {"seed", ARG_INT, &c.seed, "seed for init and shuffling (default 0)", NULL},
        {"threads", ARG_INT, &c.threads, "threads for every pool, OpenBLAS's included (default 1)", NULL},
        {"sched", ARG_STRING, &c.sched, "none | step (default none)", NULL},
        {"step-size", ARG_INT, &c.step_size, "StepLR step_size in epochs (default 1)", NULL},
        {"gamma", ARG_DOUBLE, &c.gamma, "StepLR gamma (default 0.1)", NULL},
        {"metrics", ARG_STRING, &c.metrics, "write one JSON object per epoch to this file", NULL},
        {"limit", ARG_INT, &c.limit, "train on the first N samples only (0: all)", NULL},
        {"help", ARG_FLAG, &help, "this help", NULL},
    };
    int nspecs = (int)(sizeof specs / sizeof specs[0]);
    char err[256];
    if (args_parse(argc, argv, 2, specs, nspecs, err, sizeof err)) {
        fprintf(stderr, "nabla train: %s\n", err);
        return 2;
    }
    if (help) {
        printf("usage: nabla train [options]\n");
        args_usage(specs, nspecs);
        return 0;
    }
    if (strcmp(c.model, "mlp") != 0) {
        fprintf(stderr, "nabla train: unknown model '%s' (mlp)\n", c.model);
        return 2;
    }
    if (c.epochs < 0 || c.batch < 1 || c.threads < 1 || c.limit < 0) {
        fprintf(stderr, "nabla train: --epochs, --batch, --threads and --limit must be positive\n");
        return 2;
    }
    if (nb_set_num_threads((int)c.threads)) return fail("threads");

    nb_mnist train = {0}, test = {0};
    if (nb_mnist_load(c.data, "train", &train) || nb_mnist_load(c.data, "t10k", &test)) {
        fail("data");
        nb_mnist_free(&train);
        return 1;
    }
    if (c.limit && c.limit < train.images->shape[0]) { /* views of the first samples */
        train.images->shape[0] = train.labels->shape[0] = c.limit;
        train.images->numel = c.limit * train.images->shape[1] * train.images->shape[2];
        train.labels->numel = c.limit;
    }
    int64_t features = train.images->numel / train.images->shape[0];
    int rc = 1;
    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)c.seed);
    nb_module *model = build_mlp(&c, features, 10, &rng);
    nb_tensor *params[64];
    int np = model ? nb_module_parameters(model, params, 64) : 0;
    nb_optim *opt = model ? build_optim(&c, params, np) : NULL;
    bool sched_failed = false;
    nb_sched *sched = opt ? build_sched(&c, opt, &sched_failed) : NULL;
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = c.batch;
    lo.seed = (uint64_t)c.seed;
    lo.flatten = true;
    nb_loader *ld = opt && !sched_failed ? nb_loader_new(train.images, train.labels, &lo) : NULL;
    nb_arena *ar = nb_arena_new(0);
    FILE *mf = c.metrics ? fopen(c.metrics, "w") : NULL;
    if (!model) goto done;
    if (!opt) {
        if (nb_last_status()) fail("optimizer");
        goto done;
    }
    if (!ld || !ar) {
        if (!sched_failed) fail("loader");
        goto done;
    }
    if (c.metrics && !mf) {
        fprintf(stderr, "nabla train: cannot write %s\n", c.metrics);
        goto done;
    }
    bool tty = isatty(2);
    int64_t nbatches = nb_loader_num_batches(ld);
    printf("nabla %s: %s %s-%s-10, %s lr %g, batch %ld, %ld epochs, %lld train / %lld test samples\n",
           nb_version(), c.model, "784", c.hidden, c.optim, nb_optim_get(opt, 0, "lr"), c.batch,
           c.epochs, (long long)train.images->shape[0], (long long)test.images->shape[0]);
    for (long epoch = 1; epoch <= c.epochs; epoch++) {
        double lr = nb_optim_get(opt, 0, "lr"), loss_sum = 0;
        int64_t seen = 0, b = 0;
        nb_tensor *x, *y;
        double t0 = now();
        for (;;) {
            nb_arena_reset(ar);
            int got = nb_loader_next(ld, ar, &x, &y);
            if (got < 0) { fail("loader"); goto done; }
            if (got == 0) break;
            nb_tensor *logits = nb_forward(model, ar, x);
            nb_tensor *loss = nb_cross_entropy(ar, logits, y, NULL);
            if (!loss) { fail("forward"); goto done; }
            nb_optim_zero_grad(opt, true);
            if (nb_backward(loss) || nb_optim_step(opt)) { fail("step"); goto done; }
            loss_sum += nb_item(loss) * (double)y->numel;
            seen += y->numel;
            if (tty && (++b % 50 == 0 || b == nbatches)) progress(b, nbatches, loss_sum / (double)seen);
        }
        double secs = now() - t0;
        if (tty) fprintf(stderr, "\r%60s\r", "");
        double test_loss, test_acc;
        if (evaluate(model, &test, ar, &test_loss, &test_acc)) { fail("evaluate"); goto done; }
        double sps = (double)seen / secs;
        printf("epoch %ld/%ld  train_loss %.4f  test_loss %.4f  test_acc %.4f  lr %g  %.2fs  %.0f samples/s\n",
               epoch, c.epochs, loss_sum / (double)seen, test_loss, test_acc, lr, secs, sps);
        fflush(stdout);
        if (mf) {
            fprintf(mf, "{\"epoch\": %ld, \"train_loss\": %.6f, \"test_loss\": %.6f, \"test_acc\": %.4f, "
                        "\"lr\": %.10g, \"seconds\": %.4f, \"samples_per_sec\": %.1f}\n",
                    epoch, loss_sum / (double)seen, test_loss, test_acc, lr, secs, sps);
            fflush(mf);
        }
        if (sched && nb_sched_step(sched)) { fail("scheduler"); goto done; }
    }
    rc = 0;
done:
    if (mf && fclose(mf)) {
        fprintf(stderr, "nabla train: error writing %s\n", c.metrics);
        rc = 1;
    }
    nb_arena_free(ar);
    nb_loader_free(ld);
    nb_sched_free(sched);
    nb_optim_free(opt);
    nb_module_free(model);
    nb_mnist_free(&train);
    nb_mnist_free(&test);
    return rc;
}
