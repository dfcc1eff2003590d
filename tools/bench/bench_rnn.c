/* bench_rnn.c - the nabla side of tools/bench_rnn.py: training throughput of the row-by-row
 * Fashion-MNIST classifier, with the protocol of the PyTorch reference:
 *   model  Sequential(RNN|LSTM|GRU(28, H, batch_first), Select(1, -1), Linear(H, 10))
 *   step   forward, cross_entropy, zero_grad(set_to_none), backward, clip_grad_norm_(1.0),
 *          Adam(lr 1e-3) step, on batches of 64 consecutive samples of a seeded permutation
 *   timing --warmup-steps untimed steps, then --steps timed ones; loading excluded.
 * Prints one JSON line (cpu_s: the process's CPU time over the timed steps, which tells a busy
 * machine from a slow step). --breakdown adds the median time of each phase. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "nabla.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n ? v[n / 2] : 0;
}

int main(int argc, char **argv) {
    const char *cell = "rnn", *data = nb_default_data_dir();
    long hidden = 128, batch = 64, steps = 300, warmup = 20, threads = 1, layers = 1, seed = 0;
    int breakdown = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--breakdown")) { breakdown = 1; continue; }
        if (!v) { fprintf(stderr, "bench_rnn: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--cell")) cell = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--hidden")) hidden = atol(v);
        else if (!strcmp(a, "--batch")) batch = atol(v);
        else if (!strcmp(a, "--steps")) steps = atol(v);
        else if (!strcmp(a, "--warmup-steps")) warmup = atol(v);
        else if (!strcmp(a, "--threads")) threads = atol(v);
        else if (!strcmp(a, "--layers")) layers = atol(v);
        else if (!strcmp(a, "--seed")) seed = atol(v);
        else { fprintf(stderr, "bench_rnn: unknown option %s\n", a); return 2; }
        i++;
    }
    if (nb_set_num_threads((int)threads)) { fprintf(stderr, "bench_rnn: %s\n", nb_last_error()); return 2; }
    nb_mnist train;
    if (nb_mnist_load(data, "train", &train)) { fprintf(stderr, "bench_rnn: %s\n", nb_last_error()); return 1; }
    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)seed);
    nb_rnn_opts o = nb_rnn_defaults();
    o.batch_first = true;
    o.num_layers = layers;
    nb_module *r = !strcmp(cell, "lstm") ? nb_lstm_new(28, hidden, &o, &rng)
                   : !strcmp(cell, "gru") ? nb_gru_new(28, hidden, &o, &rng)
                                          : nb_rnn_new(28, hidden, &o, &rng);
    nb_module *model = nb_sequential(3, (nb_module *[]){r, nb_select_new(1, -1),
                                                         nb_linear_new(hidden, 10, true, &rng)});
    nb_tensor *params[64];
    int np = model ? nb_module_parameters(model, params, 64) : 0;
    nb_adam_opts ao = nb_adam_defaults();
    ao.lr = 1e-3;
    nb_optim *opt = model ? nb_adam(params, np, &ao) : NULL;
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = batch;
    lo.seed = (uint64_t)seed;
    nb_loader *ld = nb_loader_new(train.images, train.labels, &lo);
    nb_arena *ar = nb_arena_new(0);
    if (!opt || !ld || !ar) { fprintf(stderr, "bench_rnn: %s\n", nb_last_error()); return 1; }
    double *ph[4];
    for (int k = 0; k < 4; k++) ph[k] = calloc((size_t)(steps > 0 ? steps : 1), sizeof(double));
    double t0 = 0, c0 = 0;
    for (long s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            t0 = now();
            c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        }
        double a = now();
        nb_arena_reset(ar);
        nb_tensor *x, *y;
        if (nb_loader_next(ld, ar, &x, &y) <= 0) { /* epoch end: start the next one */
            nb_arena_reset(ar);
            if (nb_loader_next(ld, ar, &x, &y) <= 0) { fprintf(stderr, "bench_rnn: no data\n"); return 1; }
        }
        double b = now();
        nb_tensor *loss = nb_cross_entropy(ar, nb_forward(model, ar, x), y, NULL);
        double c = now();
        nb_optim_zero_grad(opt, true);
        double norm;
        if (!loss || nb_backward(loss)) { fprintf(stderr, "bench_rnn: %s\n", nb_last_error()); return 1; }
        double d = now();
        if (nb_clip_grad_norm(params, np, 1.0, 2.0, false, &norm) || nb_optim_step(opt)) {
            fprintf(stderr, "bench_rnn: %s\n", nb_last_error());
            return 1;
        }
        double e = now();
        if (s >= warmup) {
            long k = s - warmup;
            ph[0][k] = b - a;
            ph[1][k] = c - b;
            ph[2][k] = d - c;
            ph[3][k] = e - d;
        }
    }
    double dt = now() - t0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    printf("{\"impl\": \"nabla\", \"cell\": \"%s\", \"hidden\": %ld, \"batch\": %ld, \"threads\": %ld, "
           "\"steps\": %ld, \"train_s\": %.4f, \"cpu_s\": %.4f, \"samples_per_s\": %.1f, \"ms_per_step\": %.3f",
           cell, hidden, batch, threads, steps, dt, cpu, (double)(steps * batch) / dt, dt / (double)steps * 1e3);
    if (breakdown)
        printf(", \"breakdown_ms_median\": {\"data\": %.4f, \"forward\": %.4f, \"backward\": %.4f, "
               "\"clip+step\": %.4f}", median(ph[0], (int)steps) * 1e3, median(ph[1], (int)steps) * 1e3,
               median(ph[2], (int)steps) * 1e3, median(ph[3], (int)steps) * 1e3);
    printf("}\n");
    for (int k = 0; k < 4; k++) free(ph[k]);
    nb_arena_free(ar);
    nb_loader_free(ld);
    nb_optim_free(opt);
    nb_module_free(model);
    nb_mnist_free(&train);
    return 0;
}
