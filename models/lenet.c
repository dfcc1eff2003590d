/* lenet.c - LeNet-5 on Fashion-MNIST, the PyTorch way, in C.
 *
 *   model = nn.Sequential(
 *       nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
 *       nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
 *       nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
 *   opt = torch.optim.Adam(model.parameters(), lr=1e-3)
 *   for x, y in loader:                       # x: [64, 1, 28, 28]
 *       loss = F.cross_entropy(model(x), y)
 *       opt.zero_grad(); loss.backward(); opt.step()
 *
 * Usage: lenet [data-dir] [epochs]   (default /usr/share/datasets/fashion-mnist, 1 epoch) */
#include <stdio.h>
#include <stdlib.h>
#include "nabla.h"

static int die(const char *what) {
    fprintf(stderr, "lenet: %s: %s\n", what, nb_last_error());
    return 1;
}

/* The loader gives [B, 28, 28]; Conv2d wants channels: [B, 1, 28, 28] (a view, no copy). */
static nb_tensor *with_channel(nb_arena *ar, nb_tensor *x) {
    return nb_reshape(ar, x, 4, (int64_t[]){x->shape[0], 1, x->shape[1], x->shape[2]});
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : nb_default_data_dir();
    int epochs = argc > 2 ? atoi(argv[2]) : 1;
    nb_mnist train, test;
    if (nb_mnist_load(dir, "train", &train) || nb_mnist_load(dir, "t10k", &test)) return die("data");

    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_conv_opts pad2 = nb_conv_defaults(); /* padding=2 */
    pad2.padding[0] = pad2.padding[1] = 2;
    nb_module *model = nb_sequential(12, (nb_module *[]){
        nb_conv2d_new(1, 6, 5, 5, &pad2, true, &rng), nb_relu_new(), nb_max_pool2d_new(2, 2, NULL),
        nb_conv2d_new(6, 16, 5, 5, NULL, true, &rng), nb_relu_new(), nb_max_pool2d_new(2, 2, NULL),
        nb_flatten_new(1, -1),
        nb_linear_new(400, 120, true, &rng), nb_relu_new(),
        nb_linear_new(120, 84, true, &rng), nb_relu_new(),
        nb_linear_new(84, 10, true, &rng)});
    if (!model) return die("model");
    char repr[2048];
    nb_module_repr(model, repr, sizeof repr);
    printf("%s\n%lld parameters\n", repr, (long long)nb_module_numel(model));

    nb_tensor *params[16];
    int n = nb_module_parameters(model, params, 16);
    nb_adam_opts ao = nb_adam_defaults(); /* lr 1e-3, betas (0.9, 0.999), eps 1e-8 */
    nb_optim *opt = nb_adam(params, n, &ao);

    nb_loader_opts lo = nb_loader_defaults(); /* batch 64, shuffled, seed 0, [B, 28, 28] */
    nb_loader *loader = nb_loader_new(train.images, train.labels, &lo);
    nb_arena *ar = nb_arena_new(0);           /* every temporary of a step lives here */
    if (!opt || !loader || !ar) return die("setup");

    for (int epoch = 1; epoch <= epochs; epoch++) {
        nb_tensor *x, *y;
        double total = 0;
        int batches = 0;
        for (nb_arena_reset(ar); nb_loader_next(loader, ar, &x, &y) > 0; nb_arena_reset(ar)) {
            nb_tensor *logits = nb_forward(model, ar, with_channel(ar, x)); /* model(x) */
            nb_tensor *loss = nb_cross_entropy(ar, logits, y, NULL);
            nb_optim_zero_grad(opt, true);
            if (nb_backward(loss) || nb_optim_step(opt)) return die("step");
            total += nb_item(loss);
            batches++;
        }
        /* test accuracy in eval mode, without recording a graph */
        bool prev = nb_set_grad_enabled(false);
        nb_module_train(model, false);
        nb_loader_opts to = {.batch_size = 1000, .shuffle = false};
        nb_loader *tl = nb_loader_new(test.images, test.labels, &to);
        if (!tl) return die("test");
        int64_t correct = 0, seen = 0;
        for (nb_arena_reset(ar); nb_loader_next(tl, ar, &x, &y) > 0; nb_arena_reset(ar)) {
            nb_tensor *pred = nb_argmax(ar, nb_forward(model, ar, with_channel(ar, x)), 1, false);
            if (!pred) return die("eval");
            for (int64_t i = 0; i < y->numel; i++) correct += nb_i32(pred)[i] == nb_i32(y)[i];
            seen += y->numel;
        }
        nb_loader_free(tl);
        nb_module_train(model, true);
        nb_set_grad_enabled(prev);
        printf("epoch %d: train loss %.4f, test accuracy %.4f\n", epoch, total / batches,
               (double)correct / (double)seen);
    }
    nb_arena_free(ar);
    nb_loader_free(loader);
    nb_optim_free(opt);
    nb_module_free(model);
    nb_mnist_free(&train);
    nb_mnist_free(&test);
    return 0;
}
