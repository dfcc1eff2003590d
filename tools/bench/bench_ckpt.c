/* bench_ckpt.c - nabla's side of tools/bench_ckpt.py: save and load time and file size of a
 * checkpoint of the 784-256-128-10 MLP with Adam state (after one step on a random batch).
 *
 *   build/bench_ckpt DIR [REPS [LEVEL]]   -> one JSON object on stdout (medians in ms)
 * save: nb_checkpoint_save (gzip, fsync, rename, fsync of the folder);
 * load: nb_checkpoint_load into the live model and optimizer (every check, then the copy). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include "nabla.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_ckpt DIR [REPS [LEVEL]]\n");
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 11, level = argc > 3 ? atoi(argv[3]) : 0;
    if (reps < 1 || reps > 1000) reps = 11;
    char path[4096];
    snprintf(path, sizeof path, "%s/bench.ckpt", argv[1]);
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *m = nb_sequential(5, (nb_module *[]){nb_linear_new(784, 256, true, &rng), nb_relu_new(),
                                                     nb_linear_new(256, 128, true, &rng), nb_relu_new(),
                                                     nb_linear_new(128, 10, true, &rng)});
    nb_tensor *p[8];
    int np = nb_module_parameters(m, p, 8);
    nb_adam_opts ao = nb_adam_defaults();
    nb_optim *opt = nb_adam(p, np, &ao);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_uniform(ar, 2, (int64_t[]){128, 784}, 0, 1, &rng);
    nb_tensor *y = nb_empty(ar, NB_INT32, 1, (int64_t[]){128});
    for (int i = 0; i < 128; i++) nb_i32(y)[i] = (int32_t)nb_rng_below(&rng, 10);
    nb_optim_zero_grad(opt, true);
    if (!opt || nb_backward(nb_cross_entropy(ar, nb_forward(m, ar, x), y, NULL)) || nb_optim_step(opt)) {
        fprintf(stderr, "bench_ckpt: %s\n", nb_last_error());
        return 1;
    }
    nb_train_state st = {.model = m, .optim = opt, .rng = &rng, .epoch = 1, .step = 1, .level = level};
    double save[1000], load[1000];
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        if (nb_checkpoint_save(path, &st)) {
            fprintf(stderr, "bench_ckpt: %s\n", nb_last_error());
            return 1;
        }
        double t1 = now_ms();
        if (nb_checkpoint_load(path, &st)) {
            fprintf(stderr, "bench_ckpt: %s\n", nb_last_error());
            return 1;
        }
        save[r] = t1 - t0;
        load[r] = now_ms() - t1;
    }
    struct stat sb;
    stat(path, &sb);
    printf("{\"save_ms\": %.3f, \"load_ms\": %.3f, \"bytes\": %lld, \"tensor_bytes\": %lld, \"reps\": %d, \"level\": %d}\n",
           median(save, reps), median(load, reps), (long long)sb.st_size,
           (long long)(3 * 4 * nb_module_numel(m)), reps, level);
    remove(path);
    nb_arena_free(ar);
    nb_optim_free(opt);
    nb_module_free(m);
    return 0;
}
