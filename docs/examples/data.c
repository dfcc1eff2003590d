/* data.c - the example of docs/data.md: a CSV file, a seeded random_split, standardisation fitted
 * on the training part, a loader, and a small MLP trained on it. tests/test_docs.c checks that
 * the doc's code block is this file's, and runs it (exit 1 if the test accuracy is below 0.9).
 *
 * Usage: doc_data datasets/sklearn/iris.csv */
#include <stdio.h>
#include "nabla.h"

static int die(const char *what) {
    fprintf(stderr, "doc_data: %s: %s\n", what, nb_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) return die("usage: doc_data iris.csv");
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x, *y;
    nb_read_opts o = nb_read_defaults();           /* the target is the last column */
    o.skip_rows = 1;                               /* iris.csv starts with "150,4,setosa,..." */
    nb_dataset *ds = nb_dataset_csv(argv[1], NULL, &o);
    if (!ds || !ar) return die("data");
    nb_rng g;
    nb_rng_seed(&g, 0);                            /* torch.Generator().manual_seed(0) */
    int64_t len[2];
    nb_dataset *parts[2];                          /* train, test = random_split(ds, [0.8, 0.2], g) */
    nb_split_lengths(ds->len, (double[]){0.8, 0.2}, 2, len);
    nb_random_split(ds, len, 2, &g, parts);
    float mean[4], std[4];                         /* StandardScaler fitted on the training part */
    nb_dataset_fit_standardize(parts[0], mean, std);
    nb_dataset_normalize(ds, mean, std);           /* ... applied to every part */
    nb_loader_opts lo = nb_loader_defaults();      /* batch 64, shuffled, seed 0 */
    nb_loader *loader = nb_loader_over(parts[0], NULL, &lo);

    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *model = nb_sequential(3, (nb_module *[]){nb_linear_new(4, 16, true, &rng), nb_relu_new(),
                                                         nb_linear_new(16, 3, true, &rng)});
    nb_tensor *params[4];
    int np = model ? nb_module_parameters(model, params, 4) : 0;
    nb_adam_opts ao = nb_adam_defaults();
    ao.lr = 0.01;
    nb_optim *opt = nb_adam(params, np, &ao);
    if (!loader || !model || !opt) return die("setup");
    for (int epoch = 0; epoch < 100; epoch++)
        while (nb_arena_reset(ar), nb_loader_next(loader, ar, &x, &y) > 0) {
            nb_tensor *loss = nb_cross_entropy(ar, nb_forward(model, ar, x), y, NULL);
            nb_optim_zero_grad(opt, true);
            if (!loss || nb_backward(loss) || nb_optim_step(opt)) return die("step");
        }
    /* the test part, in one batch */
    nb_loader_opts to = {.batch_size = 1000, .shuffle = false};
    nb_loader *tl = nb_loader_over(parts[1], NULL, &to);
    nb_arena_reset(ar);
    if (!tl || nb_loader_next(tl, ar, &x, &y) <= 0) return die("test");
    nb_tensor *pred = nb_argmax(ar, nb_forward(model, ar, x), 1, false);
    if (!pred) return die("eval");
    int hits = 0;
    for (int64_t i = 0; i < y->numel; i++) hits += nb_i32(pred)[i] == nb_i32(y)[i];
    double acc = hits / (double)y->numel;
    printf("iris: %lld training and %lld test samples, test accuracy %.4f\n", (long long)parts[0]->len,
           (long long)parts[1]->len, acc);
    nb_loader_free(tl);
    nb_loader_free(loader);
    nb_optim_free(opt);
    nb_module_free(model);
    nb_dataset_free(parts[0]);
    nb_dataset_free(parts[1]);
    nb_dataset_free(ds);
    nb_arena_free(ar);
    return acc >= 0.9 ? 0 : 1;
}
