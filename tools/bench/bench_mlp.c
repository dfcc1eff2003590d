/* bench_mlp.c - nabla's side of the MLP training benchmark (tools/bench_mlp.py runs it next to
 * PyTorch). The protocol is PyTorch's reference, step for step:
 *   data   : the whole train split in memory; batches gathered and scaled x/255 per step
 *   order  : a fresh seeded permutation every epoch (torch.randperm's), consecutive batches,
 *            the last one partial
 *   model  : 784-128-10 (arch a) or 784-256-128-10 (arch b), ReLU, PyTorch's default init
 *   step   : forward, cross_entropy (mean), zero_grad(set_to_none), backward, SGD 0.1 m0.9
 *            (a) or Adam 1e-3 (b)
 *   timing : monotonic clock around the training loop of each epoch (loading and the optional
 *            warm-up steps excluded)
 * One JSON object per epoch on stdout, then a summary {"samples", "seconds", "samples_per_s"}.
 *
 *   bench_mlp [--arch a|b] [--batch N] [--epochs N] [--max-samples N] [--warmup-steps N]
 *             [--threads N] [--seed N] [--data DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "nabla.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *what) {
    fprintf(stderr, "bench_mlp: %s: %s\n", what, nb_last_error());
    return 1;
}

typedef struct ctx {
    nb_module *model;
    nb_optim *opt;
    nb_loader *ld;
    nb_arena *ar;
} ctx;

/* One training step; returns the batch size, 0 at the end of the epoch, < 0 on error. */
static int64_t step(ctx *c) {
    nb_tensor *x, *y;
    nb_arena_reset(c->ar);
    int got = nb_loader_next(c->ld, c->ar, &x, &y);
    if (got <= 0) return got;
    nb_tensor *loss = nb_cross_entropy(c->ar, nb_forward(c->model, c->ar, x), y, NULL);
    nb_optim_zero_grad(c->opt, true);
    if (!loss || nb_backward(loss) || nb_optim_step(c->opt)) return -1;
    return y->numel;
}

int main(int argc, char **argv) {
    const char *arch = "a", *data = nb_default_data_dir();
    long batch = 0, epochs = 1, max_samples = 0, warmup = 0, threads = 1, seed = 0;
    for (int i = 1; i < argc; i += 2) { /* --flag value pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long *dst = !strcmp(a, "--batch") ? &batch : !strcmp(a, "--epochs") ? &epochs
                  : !strcmp(a, "--max-samples") ? &max_samples : !strcmp(a, "--warmup-steps") ? &warmup
                  : !strcmp(a, "--threads") ? &threads : !strcmp(a, "--seed") ? &seed : NULL;
        if (v && dst) *dst = strtol(v, NULL, 10);
        else if (v && !strcmp(a, "--arch")) arch = v;
        else if (v && !strcmp(a, "--data")) data = v;
        else {
            fprintf(stderr, "usage: bench_mlp [--arch a|b] [--batch N] [--epochs N] [--max-samples N] "
                            "[--warmup-steps N] [--threads N] [--seed N] [--data DIR]\n");
            return 2;
        }
    }
    bool b = !strcmp(arch, "b");
    if (!batch) batch = b ? 128 : 64;
    if (nb_set_num_threads((int)threads)) return die("threads");

    nb_mnist train;
    if (nb_mnist_load(data, "train", &train)) return die("data");
    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)seed);
    ctx c = {0};
    c.model = b ? nb_sequential(5, (nb_module *[]){nb_linear_new(784, 256, true, &rng), nb_relu_new(),
                                                   nb_linear_new(256, 128, true, &rng), nb_relu_new(),
                                                   nb_linear_new(128, 10, true, &rng)})
                : nb_sequential(3, (nb_module *[]){nb_linear_new(784, 128, true, &rng), nb_relu_new(),
                                                   nb_linear_new(128, 10, true, &rng)});
    if (!c.model) return die("model");
    nb_tensor *params[8];
    int np = nb_module_parameters(c.model, params, 8);
    if (b) {
        nb_adam_opts o = nb_adam_defaults();
        o.lr = 1e-3;
        c.opt = nb_adam(params, np, &o);
    } else {
        nb_sgd_opts o = nb_sgd_defaults();
        o.lr = 0.1;
        o.momentum = 0.9;
        c.opt = nb_sgd(params, np, &o);
    }
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = batch;
    lo.seed = (uint64_t)seed;
    lo.flatten = true;
    c.ld = nb_loader_new(train.images, train.labels, &lo);
    c.ar = nb_arena_new(0);
    if (!c.opt || !c.ld || !c.ar) return die("setup");
    printf("{\"config\": {\"arch\": \"%s\", \"batch\": %ld, \"threads\": %ld, \"blas\": \"%s\", \"nabla\": \"%s\"}}\n",
           arch, batch, threads, nb_blas_backend(), nb_version());

    int64_t total = 0;
    double seconds = 0;
    for (long ep = 1; ep <= epochs; ep++) {
        if (ep == 1)
            for (long s = 0; s < warmup; s++)
                if (step(&c) < 0) return die("warm-up step");
        int64_t timed = 0, n;
        double t0 = now();
        while ((n = step(&c)) > 0) {
            timed += n;
            if (max_samples && timed >= max_samples) break;
        }
        double dt = now() - t0;
        if (n < 0) return die("step");
        printf("{\"epoch\": %ld, \"train_s\": %.6f, \"samples\": %lld, \"samples_per_s\": %.1f}\n", ep, dt,
               (long long)timed, (double)timed / dt);
        total += timed;
        seconds += dt;
        if (max_samples) break;
    }
    printf("{\"summary\": true, \"samples\": %lld, \"seconds\": %.6f, \"samples_per_s\": %.1f}\n",
           (long long)total, seconds, (double)total / seconds);
    nb_arena_free(c.ar);
    nb_loader_free(c.ld);
    nb_optim_free(c.opt);
    nb_module_free(c.model);
    nb_mnist_free(&train);
    return 0;
}
