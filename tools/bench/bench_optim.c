/* bench_optim.c - time one optimizer step over the parameters of a 784-256-128-10 MLP
 * (235,146 parameters in nabla's slab), for every optimizer, 1 thread (or --threads N); for
 * SparseAdam, over an Embedding of 50,000 x 64 with a row-sparse gradient of 500 rows (1 %);
 * for Muon, over the three weight matrices (234,752 parameters), with a twentieth of the
 * steps (each costs about a hundred of the others').
 *
 * Gradients are fixed random values (the step is what is timed, not the backward). For each
 * optimizer: construct with PyTorch's defaults (SGD: lr 0.1, momentum 0.9, as the training
 * recipe), 20 warm-up steps, then `runs` timings of `steps` steps each; prints the median
 * microseconds per step. LBFGS's step calls its closure (which copies the fixed gradients in
 * and returns a constant loss: two calls per step) - the same closure as tools/bench_optim.py.
 *
 *   build/bench_optim [--runs 7] [--steps 200] [--only NAME] [--threads 1]
 * Output: one line per optimizer, "name  median_us  min_us". tools/bench_optim.py runs it next
 * to PyTorch and prints the ratio. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "nabla.h"

enum { EMB_ROWS = 50000, EMB_DIM = 64 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct bench {
    nb_tensor **params;
    nb_tensor **grads; /* fixed gradient values */
    int n;
} bench;

static void set_grads(bench *b) {
    for (int i = 0; i < b->n; i++) nb_backward_grad(b->params[i], b->grads[i]);
}

static double closure(void *user) {
    bench *b = user;
    for (int i = 0; i < b->n; i++) /* p.grad.copy_(g) */
        memcpy(b->params[i]->grad->data, b->grads[i]->data, sizeof(float) * (size_t)b->grads[i]->numel);
    return 1.0;
}

/* By PyTorch's class name with its defaults (SGD: the training recipe, lr 0.1, momentum 0.9). */
static nb_optim *make(const char *name, nb_tensor **p, int n) {
    nb_value sgd[] = {nb_num("lr", 0.1), nb_num("momentum", 0.9)};
    bool is_sgd = !strcmp(name, "SGD");
    return nb_optim_new(name, p, n, is_sgd ? sgd : NULL, is_sgd ? 2 : 0);
}

int main(int argc, char **argv) {
    int runs = 7, steps = 200, threads = 1;
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--only")) only = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    }
    if (runs < 1 || runs > 100 || steps < 1 || nb_set_num_threads(threads)) {
        fprintf(stderr, "bench_optim: bad --runs/--steps/--threads\n");
        return 2;
    }
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *m = nb_sequential(5, (nb_module *[]){nb_linear_new(784, 256, true, &rng), nb_relu_new(),
                                                     nb_linear_new(256, 128, true, &rng), nb_relu_new(),
                                                     nb_linear_new(128, 10, true, &rng)});
    if (!m) {
        fprintf(stderr, "bench_optim: %s\n", nb_last_error());
        return 1;
    }
    nb_tensor *params[8], *grads[8];
    int n = nb_module_parameters(m, params, 8);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        grads[i] = nb_normal(NULL, params[i]->ndim, params[i]->shape, 0.0f, 0.01f, &rng);
        total += params[i]->numel;
    }
    bench b = {params, grads, n};
    /* SparseAdam's workload: Embedding(50000, 64, sparse=True), a fixed row-sparse gradient of
     * 500 random rows (1 %, repeats allowed, uncoalesced), as PyTorch's embedding backward
     * gives it */
    nb_module *emb = nb_embedding_sparse_new(EMB_ROWS, EMB_DIM, NB_NO_PADDING, &rng);
    nb_tensor *ew[1];
    nb_arena *ar = nb_arena_new(0);
    if (!emb || !ar || nb_module_parameters(emb, ew, 1) != 1) return 1;
    nb_tensor *idx = nb_empty(ar, NB_INT32, 1, (int64_t[]){EMB_ROWS / 100});
    for (int64_t i = 0; i < idx->numel; i++) nb_i32(idx)[i] = (int32_t)(nb_rng_uniform(&rng) * EMB_ROWS) % EMB_ROWS;
    nb_tensor *gy = nb_normal(ar, 2, (int64_t[]){idx->numel, EMB_DIM}, 0.0f, 0.01f, &rng);
    if (!gy || nb_backward_grad(nb_forward(emb, ar, idx), gy)) {
        fprintf(stderr, "bench_optim: %s\n", nb_last_error());
        return 1;
    }
    printf("# nabla %s, %lld parameters in %d tensors (sparseadam: Embedding %d x %d, %lld rows a step), "
           "median of %d runs x %d steps, %d thread%s\n", nb_version(), (long long)total, n, EMB_ROWS, EMB_DIM,
           (long long)idx->numel, runs, steps, threads, threads > 1 ? "s" : "");
    double t[100];
    const char *names[32];
    int nnames = nb_optim_names(names, 32);
    for (int k = 0; k < nnames; k++) {
        if (only && strcasecmp(only, names[k])) continue;
        bool sparse = !strcmp(names[k], "SparseAdam"), muon = !strcmp(names[k], "Muon");
        /* Muon takes the three weight matrices only (the biases would go to AdamW) */
        nb_tensor *weights[3] = {params[0], params[2], params[4]};
        nb_optim *o = sparse ? nb_optim_new(names[k], ew, 1, NULL, 0)
                      : muon ? nb_optim_new(names[k], weights, 3, NULL, 0)
                             : make(names[k], params, n);
        if (!o) {
            fprintf(stderr, "bench_optim: %s: %s\n", names[k], nb_last_error());
            return 1;
        }
        if (!sparse) set_grads(&b);
        for (int s = 0; s < 20; s++)
            if (nb_optim_requires_closure(o) ? nb_optim_step_closure(o, closure, &b, NULL) : nb_optim_step(o)) {
                fprintf(stderr, "bench_optim: %s: %s\n", names[k], nb_last_error());
                return 1;
            }
        int nsteps = muon ? (steps + 19) / 20 : steps; /* a Muon step is ~100x the others' */
        for (int r = 0; r < runs; r++) {
            double t0 = now();
            for (int s = 0; s < nsteps; s++) {
                if (nb_optim_requires_closure(o)) nb_optim_step_closure(o, closure, &b, NULL);
                else nb_optim_step(o);
            }
            t[r] = (now() - t0) / nsteps * 1e6;
        }
        qsort(t, (size_t)runs, sizeof t[0], cmp);
        char low[32];
        size_t i = 0;
        for (; names[k][i] && i + 1 < sizeof low; i++) low[i] = (char)tolower((unsigned char)names[k][i]);
        low[i] = '\0';
        printf("%-10s %9.1f %9.1f\n", low, t[runs / 2], t[0]);
        fflush(stdout);
        nb_optim_free(o);
    }
    nb_module_free(emb);
    nb_arena_free(ar);
    for (int i = 0; i < n; i++) nb_tensor_free(grads[i]);
    nb_module_free(m);
    return 0;
}
