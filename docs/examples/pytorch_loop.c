/* pytorch_loop.c - the training loop of docs/pytorch.md, line for line with PyTorch's.
 * Usage: pytorch_loop [data-dir] [epochs]   (default: Fashion-MNIST, 2 epochs)
 * The tests run it on datasets/tiny (suite docs). */
#include <stdio.h>
#include <stdlib.h>
#include "nabla.h"

static int fail(const char *what) {
    fprintf(stderr, "pytorch_loop: %s: %s\n", what, nb_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : nb_default_data_dir();
    int epochs = argc > 2 ? atoi(argv[2]) : 2;

    nb_mnist train, test;
    if (nb_mnist_load(dir, "train", &train) || nb_mnist_load(dir, "t10k", &test))
        return fail("data");
    nb_loader_opts lo = nb_loader_defaults();            /* batch_size=64, shuffle=True */
    nb_loader *loader = nb_loader_new(train.images, train.labels, &lo);
    nb_loader_opts to = nb_loader_defaults();
    to.batch_size = 1000;
    to.shuffle = false;
    nb_loader *test_loader = nb_loader_new(test.images, test.labels, &to);

    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *model = nb_sequential(4, (nb_module *[]){
        nb_flatten_new(1, -1), nb_linear_new(784, 128, true, &rng), nb_relu_new(),
        nb_linear_new(128, 10, true, &rng)});
    nb_tensor *params[8];
    int n = nb_module_parameters(model, params, 8);
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = 0.01;
    so.momentum = 0.9;
    nb_optim *opt = nb_sgd(params, n, &so);
    nb_sched *sched = nb_step_lr(opt, 1, 0.5);
    nb_arena *ar = nb_arena_new(0);
    if (!loader || !test_loader || !model || !opt || !sched || !ar) return fail("setup");

    nb_tensor *x, *y;
    for (int epoch = 0; epoch < epochs; epoch++) {
        nb_module_train(model, true);
        while (nb_arena_reset(ar), nb_loader_next(loader, ar, &x, &y) > 0) {
            nb_tensor *logits = nb_forward(model, ar, x);
            nb_tensor *loss = nb_cross_entropy(ar, logits, y, NULL);
            nb_optim_zero_grad(opt, true);
            if (nb_backward(loss)) return fail("backward");
            nb_clip_grad_norm(params, n, 5.0, 2.0, false, NULL);
            if (nb_optim_step(opt)) return fail("step");
        }
        nb_sched_step(sched);

        nb_module_train(model, false);
        bool prev = nb_set_grad_enabled(false);
        int64_t correct = 0, seen = 0;
        while (nb_arena_reset(ar), nb_loader_next(test_loader, ar, &x, &y) > 0) {
            nb_tensor *pred = nb_argmax(ar, nb_forward(model, ar, x), 1, false);
            if (!pred) return fail("eval");
            for (int64_t i = 0; i < y->numel; i++) correct += nb_i32(pred)[i] == nb_i32(y)[i];
            seen += y->numel;
        }
        nb_set_grad_enabled(prev);
        printf("epoch %d: test accuracy %.4f\n", epoch + 1, (double)correct / (double)seen);
    }

    nb_arena_free(ar);
    nb_sched_free(sched);
    nb_optim_free(opt);
    nb_module_free(model);
    nb_loader_free(test_loader);
    nb_loader_free(loader);
    nb_mnist_free(&test);
    nb_mnist_free(&train);
    return 0;
}
