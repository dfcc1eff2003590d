/* tabular.c - training on the application's own arrays: the loop an embedding program copies.
 * No files: the program makes its data in memory (1200 points of 6 features, 3 classes) and
 * hands the arrays to nabla without a copy, holds out a validation part, standardises the
 * features with the training part's statistics, and stops when the validation loss stops
 * improving, keeping the best weights. In PyTorch:
 *
 *   ds = TensorDataset(x, y)
 *   train, val = random_split(ds, [0.8, 0.2], generator=torch.Generator().manual_seed(0))
 *   (x - mean) / std with mean, std of the training part          # StandardScaler
 *   model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
 *   opt = torch.optim.Adam(model.parameters(), lr=0.01)
 *   for epoch in ...: train one epoch; val_loss = ...; keep the best, stop after 5 bad epochs
 *
 * Usage: tabular   (prints one line per epoch; exits 1 if the best validation accuracy is
 * below 0.85, so the test suite can run it) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nabla.h"

enum { N = 1200, F = 6, CLASSES = 3, PATIENCE = 5, EPOCHS = 100 };

static int die(const char *what) {
    fprintf(stderr, "tabular: %s: %s\n", what, nb_last_error());
    return 1;
}

/* The application's data: a point at radius r (class: which of 3 rings) and angle t, seen
 * through 6 features of very different scales, two of them pure noise; 1 label in 20 is wrong,
 * so the validation loss stops improving at some point. */
static void make_data(float *x, int32_t *y, nb_rng *rng) {
    for (int i = 0; i < N; i++) {
        int c = i % CLASSES;
        double r = c + 0.15 + 0.7 * nb_rng_uniform_double(rng), t = 2 * M_PI * nb_rng_uniform_double(rng);
        float *row = x + i * F;
        row[0] = (float)(r * cos(t));
        row[1] = (float)(r * sin(t));
        row[2] = (float)(1000 * r * cos(t) + 50 * nb_rng_normal(rng)); /* a noisy copy, in other units */
        row[3] = (float)(0.01 * r * sin(t));
        row[4] = (float)(100 * nb_rng_normal(rng)); /* noise */
        row[5] = (float)(1e-3 * nb_rng_normal(rng));
        y[i] = nb_rng_uniform_double(rng) < 0.05 ? (int32_t)nb_rng_below(rng, CLASSES) : c;
    }
}

/* Mean loss and accuracy over a loader's epoch, without recording a graph. */
static int evaluate(nb_module *model, nb_loader *ld, nb_arena *ar, double *loss, double *acc) {
    bool prev = nb_set_grad_enabled(false);
    nb_cross_entropy_opts co = nb_cross_entropy_defaults();
    co.reduction = NB_REDUCTION_SUM;
    double total = 0, hits = 0;
    int64_t n = 0;
    nb_tensor *x, *y;
    int got;
    while (nb_arena_reset(ar), (got = nb_loader_next(ld, ar, &x, &y)) > 0) {
        nb_tensor *out = nb_forward(model, ar, x);
        nb_tensor *l = nb_cross_entropy(ar, out, y, &co), *pred = nb_argmax(ar, out, 1, false);
        if (!l || !pred) {
            got = -1;
            break;
        }
        total += nb_item(l);
        for (int64_t i = 0; i < y->numel; i++) hits += nb_i32(pred)[i] == nb_i32(y)[i];
        n += y->numel;
    }
    nb_set_grad_enabled(prev);
    *loss = total / (double)n;
    *acc = hits / (double)n;
    return got < 0 ? -1 : 0;
}

/* Copy the model's parameters and buffers to dst (to == true) or back from it; returns the
 * number of floats (dst NULL: only count them). */
static int64_t copy_state(nb_module *model, float *dst, bool to) {
    const nb_named_tensor *t;
    int n = nb_module_state(model, &t);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t k = (size_t)t[i].tensor->numel;
        if (dst && to) memcpy(dst + total, t[i].tensor->data, sizeof(float) * k);
        else if (dst) memcpy(t[i].tensor->data, dst + total, sizeof(float) * k);
        total += (int64_t)k;
    }
    return total;
}

int main(void) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    static float x[N * F];
    static int32_t y[N];
    make_data(x, y, &rng);

    /* the arrays as a dataset (borrowed: no copy), split 80/20 with a seeded generator */
    nb_dataset *ds = nb_dataset_arrays(x, 2, (int64_t[]){N, F}, y, NB_CLASSIFY, CLASSES);
    int64_t lengths[2];
    nb_dataset *parts[2];
    nb_rng split;
    nb_rng_seed(&split, 0);
    if (!ds || nb_split_lengths(N, (double[]){0.8, 0.2}, 2, lengths) ||
        nb_random_split(ds, lengths, 2, &split, parts))
        return die("data");
    nb_dataset *train = parts[0], *val = parts[1];

    /* standardise every feature with the training part's mean and std */
    float mean[F], std[F];
    if (nb_dataset_fit_standardize(train, mean, std) || nb_dataset_normalize(ds, mean, std)) return die("normalize");

    nb_module *model = nb_sequential(3, (nb_module *[]){nb_linear_new(F, 32, true, &rng), nb_relu_new(),
                                                         nb_linear_new(32, CLASSES, true, &rng)});
    if (!model) return die("model");
    nb_tensor *params[8];
    int np = nb_module_parameters(model, params, 8);
    nb_adam_opts ao = nb_adam_defaults();
    ao.lr = 0.01;
    nb_optim *opt = nb_adam(params, np, &ao);

    nb_loader_opts lo = nb_loader_defaults(); /* batch 64, shuffled, seed 0 */
    nb_loader_opts vo = nb_loader_defaults();
    vo.batch_size = 256;
    vo.shuffle = false;
    nb_loader *loader = nb_loader_over(train, NULL, &lo), *val_loader = nb_loader_over(val, NULL, &vo);
    nb_arena *ar = nb_arena_new(0);
    float *best = malloc(sizeof(float) * (size_t)copy_state(model, NULL, true)); /* the best weights */
    if (!opt || !loader || !val_loader || !ar || !best) return die("setup");

    double best_loss = INFINITY, best_acc = 0;
    int best_epoch = 0;
    for (int epoch = 1; epoch <= EPOCHS; epoch++) {
        nb_tensor *bx, *by;
        double total = 0;
        int batches = 0;
        nb_module_train(model, true);
        while (nb_arena_reset(ar), nb_loader_next(loader, ar, &bx, &by) > 0) {
            nb_tensor *loss = nb_cross_entropy(ar, nb_forward(model, ar, bx), by, NULL);
            nb_optim_zero_grad(opt, true);
            if (!loss || nb_backward(loss) || nb_optim_step(opt)) return die("step");
            total += nb_item(loss);
            batches++;
        }
        double val_loss, val_acc;
        nb_module_train(model, false);
        if (evaluate(model, val_loader, ar, &val_loss, &val_acc)) return die("validation");
        printf("epoch %d: train loss %.4f, val loss %.4f, val accuracy %.4f\n", epoch, total / batches, val_loss,
               val_acc);
        if (val_loss < best_loss) { /* keep the best weights */
            best_loss = val_loss, best_acc = val_acc, best_epoch = epoch;
            copy_state(model, best, true);
        } else if (epoch - best_epoch >= PATIENCE) {
            printf("early stop: no better validation loss for %d epochs\n", PATIENCE);
            break;
        }
    }
    copy_state(model, best, false); /* the model is now the best one seen */
    printf("best: epoch %d, val loss %.4f, val accuracy %.4f\n", best_epoch, best_loss, best_acc);

    free(best);
    nb_arena_free(ar);
    nb_loader_free(loader);
    nb_loader_free(val_loader);
    nb_optim_free(opt);
    nb_module_free(model);
    nb_dataset_free(train); /* the parts view ds: free them first */
    nb_dataset_free(val);
    nb_dataset_free(ds);
    return best_acc >= 0.85 ? 0 : 1;
}
