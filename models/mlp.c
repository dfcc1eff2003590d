/* mlp.c - the whole PyTorch training loop in C: a 784-128-10 MLP on Fashion-MNIST.
 *
 *   model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
 *   opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
 *   for x, y in loader:
 *       loss = F.cross_entropy(model(x), y)
 *       opt.zero_grad(); loss.backward(); opt.step()
 *
 * Usage: mlp [data-dir]   (default /usr/share/datasets/fashion-mnist) */
#include <stdio.h>
#include "nabla.h"

static int die(const char *what) {
    fprintf(stderr, "mlp: %s: %s\n", what, nb_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : nb_default_data_dir();
    nb_mnist train, test;
    if (nb_mnist_load(dir, "train", &train) || nb_mnist_load(dir, "t10k", &test)) return die("data");

    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *model = nb_sequential(3, (nb_module *[]){
        nb_linear_new(784, 128, true, &rng), nb_relu_new(), nb_linear_new(128, 10, true, &rng)});
    if (!model) return die("model");

    nb_tensor *params[8];
    int n = nb_module_parameters(model, params, 8);
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = 0.1;
    so.momentum = 0.9;
    nb_optim *opt = nb_sgd(params, n, &so);

    nb_loader_opts lo = nb_loader_defaults(); /* batch 64, shuffled, seed 0 */
    lo.flatten = true;                          /* [64, 784] */
    nb_loader *loader = nb_loader_new(train.images, train.labels, &lo);
    nb_arena *ar = nb_arena_new(0);             /* holds every temporary of a step */
    if (!opt || !loader || !ar) return die("setup");

    for (int epoch = 1; epoch <= 2; epoch++) {
        nb_tensor *x, *y;
        double total = 0;
        int batches = 0;
        for (nb_arena_reset(ar); nb_loader_next(loader, ar, &x, &y) > 0; nb_arena_reset(ar)) {
            nb_tensor *logits = nb_forward(model, ar, x);               /* outputs = model(x) */
            nb_tensor *loss = nb_cross_entropy(ar, logits, y, NULL);    /* criterion */
            nb_optim_zero_grad(opt, true);                              /* zero_grad() */
            if (nb_backward(loss) || nb_optim_step(opt)) return die("step"); /* backward, step */
            total += nb_item(loss);
            batches++;
        }
        /* test accuracy, without recording a graph */
        bool prev = nb_set_grad_enabled(false);
        nb_loader_opts to = {.batch_size = 10000, .shuffle = false, .flatten = true};
        nb_loader *tl = nb_loader_new(test.images, test.labels, &to);
        nb_arena_reset(ar);
        if (!tl || nb_loader_next(tl, ar, &x, &y) <= 0) return die("test");
        nb_tensor *pred = nb_argmax(ar, nb_forward(model, ar, x), 1, false);
        if (!pred) return die("eval");
        int correct = 0;
        for (int64_t i = 0; i < y->numel; i++) correct += nb_i32(pred)[i] == nb_i32(y)[i];
        nb_set_grad_enabled(prev);
        nb_loader_free(tl);
        printf("epoch %d: train loss %.4f, test accuracy %.4f\n", epoch, total / batches,
               correct / (double)y->numel);
    }
    nb_arena_free(ar);
    nb_loader_free(loader);
    nb_optim_free(opt);
    nb_module_free(model);
    nb_mnist_free(&train);
    nb_mnist_free(&test);
    return 0;
}
