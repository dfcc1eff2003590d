/* param_groups.c - two param groups with their own learning rates, and StepLR, training an MLP
 * on Fashion-MNIST: the classic "base layers lr 1e-2, classifier lr 1e-3".
 *
 *   model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
 *   opt = torch.optim.SGD([{"params": model[0].parameters()},               # lr 1e-2
 *                          {"params": model[2].parameters(), "lr": 1e-3}],  # its own lr
 *                         lr=1e-2, momentum=0.9)
 *   sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
 *   for epoch in range(3):
 *       for x, y in loader: opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
 *       sched.step()
 *
 * Usage: param_groups [data-dir]   (default /usr/share/datasets/fashion-mnist) */
#include <stdio.h>
#include "nabla.h"

static int die(const char *what) {
    fprintf(stderr, "param_groups: %s: %s\n", what, nb_last_error());
    return 1;
}

/* Test accuracy, without recording a graph. */
static double accuracy(nb_module *model, const nb_mnist *test, nb_arena *ar) {
    bool prev = nb_set_grad_enabled(false);
    nb_loader_opts to = {.batch_size = 10000, .shuffle = false, .flatten = true};
    nb_loader *tl = nb_loader_new(test->images, test->labels, &to);
    nb_tensor *x, *y, *pred = NULL;
    nb_arena_reset(ar);
    if (tl && nb_loader_next(tl, ar, &x, &y) > 0) pred = nb_argmax(ar, nb_forward(model, ar, x), 1, false);
    int correct = 0;
    for (int64_t i = 0; pred && i < y->numel; i++) correct += nb_i32(pred)[i] == nb_i32(y)[i];
    nb_loader_free(tl);
    nb_set_grad_enabled(prev);
    return pred ? correct / (double)y->numel : -1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : nb_default_data_dir();
    nb_mnist train, test;
    if (nb_mnist_load(dir, "train", &train) || nb_mnist_load(dir, "t10k", &test)) return die("data");

    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *model = nb_sequential(3, (nb_module *[]){
        nb_linear_new(784, 256, true, &rng), nb_relu_new(), nb_linear_new(256, 10, true, &rng)});
    if (!model) return die("model");
    nb_tensor *params[4]; /* 0.weight, 0.bias, 2.weight, 2.bias */
    nb_module_parameters(model, params, 4);

    /* group 0: the base layer with the optimizer's lr; group 1: the head with its own */
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = 1e-2;
    so.momentum = 0.9;
    nb_optim *opt = nb_sgd(params, 2, &so);
    nb_value head_lr = nb_num("lr", 1e-3);
    if (!opt || nb_optim_add_param_group(opt, params + 2, 2, &head_lr, 1)) return die("optimizer");
    nb_sched *sched = nb_step_lr(opt, 1, 0.5); /* both lrs halve every epoch */

    nb_loader_opts lo = nb_loader_defaults(); /* batch 64, shuffled, seed 0 */
    lo.flatten = true;
    nb_loader *loader = nb_loader_new(train.images, train.labels, &lo);
    nb_arena *ar = nb_arena_new(0);
    if (!sched || !loader || !ar) return die("setup");

    for (int epoch = 1; epoch <= 3; epoch++) {
        double lr0 = nb_optim_get(opt, 0, "lr"), lr1 = nb_optim_get(opt, 1, "lr"), total = 0;
        int batches = 0;
        nb_tensor *x, *y;
        for (nb_arena_reset(ar); nb_loader_next(loader, ar, &x, &y) > 0; nb_arena_reset(ar)) {
            nb_tensor *loss = nb_cross_entropy(ar, nb_forward(model, ar, x), y, NULL);
            nb_optim_zero_grad(opt, true);
            if (nb_backward(loss) || nb_optim_step(opt)) return die("step");
            total += nb_item(loss);
            batches++;
        }
        if (nb_sched_step(sched)) return die("scheduler");
        printf("epoch %d: lr %g (base) / %g (head), train loss %.4f, test accuracy %.4f\n", epoch,
               lr0, lr1, total / batches, accuracy(model, &test, ar));
    }
    nb_arena_free(ar);
    nb_loader_free(loader);
    nb_sched_free(sched);
    nb_optim_free(opt);
    nb_module_free(model);
    nb_mnist_free(&train);
    nb_mnist_free(&test);
    return 0;
}
