/* muon_mlp.c - Muon for the weight matrices, AdamW for the biases (two optimizers, as PyTorch's
 * docs advise), against AdamW alone: one epoch each of the 784-128-10 MLP on Fashion-MNIST,
 * from the same initial weights and the same batches.
 *
 *   model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
 *   weights = [p for p in model.parameters() if p.ndim == 2]
 *   biases = [p for p in model.parameters() if p.ndim != 2]
 *   muon = torch.optim.Muon(weights, lr=1e-3, weight_decay=0.01, adjust_lr_fn="match_rms_adamw")
 *   adamw = torch.optim.AdamW(biases)                          # lr 1e-3, weight_decay 0.01
 *   for x, y in loader:
 *       loss = F.cross_entropy(model(x), y)
 *       muon.zero_grad(); adamw.zero_grad(); loss.backward(); muon.step(); adamw.step()
 *
 * "match_rms_adamw" scales Muon's orthogonalised update to the RMS of an AdamW update, so both
 * runs use AdamW's lr and weight decay. The baseline is torch.optim.AdamW(model.parameters()).
 *
 * Usage: muon_mlp [data-dir]   (default /usr/share/datasets/fashion-mnist)
 * Prints one line per run: "adamw: ... test accuracy A" then "muon+adamw: ... test accuracy B". */
#include <stdio.h>
#include "nabla.h"

static int die(const char *what) {
    fprintf(stderr, "muon_mlp: %s: %s\n", what, nb_last_error());
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

/* One epoch from seed 0's weights and batches: AdamW on everything, or Muon on the 2-D
 * parameters and AdamW on the rest. */
static int run(bool muon, const nb_mnist *train, const nb_mnist *test) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *model = nb_sequential(3, (nb_module *[]){
        nb_linear_new(784, 128, true, &rng), nb_relu_new(), nb_linear_new(128, 10, true, &rng)});
    if (!model) return die("model");
    nb_tensor *params[8], *weights[8], *others[8];
    int n = nb_module_parameters(model, params, 8), nw = 0, no = 0;
    for (int i = 0; i < n; i++) {
        if (muon && params[i]->ndim == 2) weights[nw++] = params[i];
        else others[no++] = params[i];
    }
    nb_muon_opts mo = nb_muon_defaults();
    mo.weight_decay = 0.01; /* AdamW's */
    mo.adjust_lr_fn = "match_rms_adamw";
    nb_optim *opt[2] = {nb_adamw(others, no, NULL), nw ? nb_muon(weights, nw, &mo) : NULL};
    nb_loader_opts lo = nb_loader_defaults(); /* batch 64, shuffled, seed 0 */
    lo.flatten = true;
    nb_loader *loader = nb_loader_new(train->images, train->labels, &lo);
    nb_arena *ar = nb_arena_new(0);
    if (!opt[0] || (muon && !opt[1]) || !loader || !ar) return die("setup");
    nb_tensor *x, *y;
    double total = 0;
    int batches = 0;
    for (nb_arena_reset(ar); nb_loader_next(loader, ar, &x, &y) > 0; nb_arena_reset(ar)) {
        nb_tensor *loss = nb_cross_entropy(ar, nb_forward(model, ar, x), y, NULL);
        for (int k = 0; k < 2; k++)
            if (opt[k]) nb_optim_zero_grad(opt[k], true);
        if (nb_backward(loss)) return die("backward");
        for (int k = 0; k < 2; k++)
            if (opt[k] && nb_optim_step(opt[k])) return die("step");
        total += nb_item(loss);
        batches++;
    }
    double acc = accuracy(model, test, ar);
    if (acc < 0) return die("eval");
    printf("%s: 1 epoch, train loss %.4f, test accuracy %.4f\n", muon ? "muon+adamw" : "adamw", total / batches,
           acc);
    for (int k = 0; k < 2; k++) nb_optim_free(opt[k]);
    nb_arena_free(ar);
    nb_loader_free(loader);
    nb_module_free(model);
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : nb_default_data_dir();
    nb_mnist train, test;
    if (nb_mnist_load(dir, "train", &train) || nb_mnist_load(dir, "t10k", &test)) return die("data");
    int rc = run(false, &train, &test) || run(true, &train, &test);
    nb_mnist_free(&train);
    nb_mnist_free(&test);
    return rc;
}
