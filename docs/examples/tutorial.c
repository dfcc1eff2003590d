/* tutorial.c - the program of docs/tutorial.md: every C block of the tutorial is a piece of
 * this file, and this file checks what the tutorial says (a hand-written update equals SGD's
 * step, a resumed run equals the uninterrupted one, the defaults, StepLR's lrs, each group's
 * lr, the clipped norm). It exits non-zero when a claim does not hold.
 * Usage: tutorial [data-dir]   (default: Fashion-MNIST; the tests run it on datasets/tiny) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "nabla.h"

static int fail(const char *what) {
    fprintf(stderr, "tutorial: %s: %s\n", what, nb_last_error());
    return 1;
}

static int wrong(const char *claim) {
    fprintf(stderr, "tutorial: does not hold: %s\n", claim);
    return 1;
}

/* The model of the tutorial, initialised from seed. */
static nb_module *make_model(uint64_t seed) {
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_module *model = nb_sequential(3, (nb_module *[]){      /* model = nn.Sequential(          */
        nb_linear_new(784, 64, true, &rng), nb_relu_new(),     /*     nn.Linear(784, 64), nn.ReLU(), */
        nb_linear_new(64, 10, true, &rng)});                   /*     nn.Linear(64, 10))          */
    return model;
}

/* One pass over the first batch: the loss, with fresh gradients in the parameters. */
static nb_tensor *first_loss(nb_module *model, const nb_mnist *train, nb_arena *ar) {
    nb_loader_opts lo = nb_loader_defaults();
    lo.shuffle = false;
    lo.flatten = true;
    nb_loader *ld = nb_loader_new(train->images, train->labels, &lo);
    nb_tensor *x, *y, *loss = NULL;
    if (ld && nb_loader_next(ld, ar, &x, &y) > 0) loss = nb_cross_entropy(ar, nb_forward(model, ar, x), y, NULL);
    nb_loader_free(ld);
    nb_module_zero_grad(model, true);
    return loss && nb_backward(loss) == NB_OK ? loss : NULL;
}

/* ---- 1. why an optimizer: the update by hand, and the same update by torch.optim.SGD ------ */
static int step1_by_hand(const nb_mnist *train, nb_arena *ar) {
    nb_module *a = make_model(0), *b = make_model(0);
    nb_tensor *params[4], *pb[4];
    int n = nb_module_parameters(a, params, 4);
    nb_module_parameters(b, pb, 4);
    float lr = 0.1f;
    if (!first_loss(a, train, ar)) return fail("forward");
    /* without an optimizer: p -= lr * p.grad, by hand, for every parameter */
    for (int i = 0; i < n; i++)                                       /* for p in model.parameters(): */
        for (int64_t k = 0; k < params[i]->numel; k++)                /*     with torch.no_grad():    */
            nb_f32(params[i])[k] -= lr * nb_f32(params[i]->grad)[k];  /*         p -= lr * p.grad     */

    nb_arena_reset(ar);
    if (!first_loss(b, train, ar)) return fail("forward");
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = lr;
    nb_optim *opt = nb_sgd(pb, n, &so);
    if (!opt || nb_optim_step(opt)) return fail("sgd");
    /* SGD computes p + (-lr) * g with one rounding (a fused multiply-add, as PyTorch's
     * p.add_(g, alpha=-lr) does on a CPU); by hand, lr * g is rounded first */
    double worst = 0;
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < params[i]->numel; k++) {
            double d = fabs((double)nb_f32(params[i])[k] - nb_f32(pb[i])[k]);
            worst = fmax(worst, d / fmax(fabs((double)nb_f32(pb[i])[k]), 1e-3));
        }
    if (!(worst <= 2.5e-7)) return wrong("SGD's step is p -= lr * p.grad");
    printf("1. the hand-written update and SGD(lr=0.1).step() agree to %.2g (float rounding)\n", worst);
    nb_optim_free(opt);
    nb_module_free(a);
    nb_module_free(b);
    return 0;
}

/* ---- 2. the core API: model, optimizer, loop; state_dict to save and resume -------------- */
/* Train `epochs` epochs from loader's position; returns the last epoch's mean loss (NAN on error). */
static double train(nb_module *model, nb_optim *opt, nb_loader *loader, nb_arena *ar, int epochs) {
    double total = 0;
    int64_t batches = 0;
    nb_tensor *x, *y;
    for (int epoch = 0; epoch < epochs; epoch++) {                          /* for epoch in range(epochs):   */
        total = 0;
        batches = 0;
        while (nb_arena_reset(ar), nb_loader_next(loader, ar, &x, &y) > 0) { /*   for x, y in loader:        */
            nb_tensor *out = nb_forward(model, ar, x);                      /*     out = model(x)            */
            nb_tensor *loss = nb_cross_entropy(ar, out, y, NULL);           /*     loss = criterion(out, y)  */
            nb_optim_zero_grad(opt, true);                                  /*     optimizer.zero_grad()     */
            if (nb_backward(loss)) return NAN;                              /*     loss.backward()           */
            if (nb_optim_step(opt)) return NAN;                             /*     optimizer.step()          */
            total += nb_item(loss);
            batches++;
        }
    }
    return total / (double)batches;
}

static int step2_loop_and_resume(const nb_mnist *train_set, nb_arena *ar, const char *ckpt) {
    nb_module *model = make_model(0);
    nb_tensor *params[4];
    int n = nb_module_parameters(model, params, 4);            /* model.parameters()            */
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = 0.01;
    so.momentum = 0.9;
    nb_optim *optimizer = nb_sgd(params, n, &so);              /* optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9) */
    nb_loader_opts lo = nb_loader_defaults();
    lo.flatten = true;
    nb_loader *loader = nb_loader_new(train_set->images, train_set->labels, &lo);
    if (!model || !optimizer || !loader) return fail("setup");
    if (isnan(train(model, optimizer, loader, ar, 1))) return fail("train");

    /* save everything a resume needs: torch.save({"model": model.state_dict(),
     * "optimizer": optimizer.state_dict(), ...}, "ckpt.pt") */
    nb_train_state st = {.model = model, .optim = optimizer, .loader = loader, .epoch = 1};
    if (nb_checkpoint_save(ckpt, &st)) return fail("save");
    double uninterrupted = train(model, optimizer, loader, ar, 1);

    /* a new process would start here: the same model and optimizer, then load_state_dict */
    nb_module *model2 = make_model(1); /* other weights: the checkpoint replaces them */
    nb_tensor *params2[4];
    nb_module_parameters(model2, params2, 4);
    nb_optim *optimizer2 = nb_sgd(params2, n, &so);
    nb_loader *loader2 = nb_loader_new(train_set->images, train_set->labels, &lo);
    nb_train_state st2 = {.model = model2, .optim = optimizer2, .loader = loader2};
    if (nb_checkpoint_load(ckpt, &st2)) return fail("load");   /* model.load_state_dict(...); optimizer.load_state_dict(...) */
    double resumed = train(model2, optimizer2, loader2, ar, 1);
    if (!(resumed == uninterrupted)) return wrong("a resumed run continues exactly");
    printf("2. epoch 2 after a resume: loss %.6f, the same as without the interruption\n", resumed);

    /* the optimizer's state_dict alone: momentum buffers and param_groups, as in PyTorch */
    nb_optim_dict *sd = nb_optim_state_dict(optimizer);       /* sd = optimizer.state_dict()   */
    if (!sd) return fail("state_dict");
    printf("   optimizer.state_dict(): %d states (%s), %d param group, lr %g\n", sd->nstates,
           sd->states[0].values[0].name, sd->ngroups, nb_optim_get(optimizer, 0, "lr"));
    if (nb_optim_load_state_dict(optimizer2, sd)) return fail("load_state_dict"); /* optimizer2.load_state_dict(sd) */
    nb_optim_dict_free(sd);
    nb_loader_free(loader2);
    nb_optim_free(optimizer2);
    nb_module_free(model2);
    nb_loader_free(loader);
    nb_optim_free(optimizer);
    nb_module_free(model);
    return 0;
}

/* ---- 3. SGD and Adam: their arguments and PyTorch's defaults ------------------------------ */
static int step3_defaults(void) {
    nb_sgd_opts s = nb_sgd_defaults();   /* SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False) */
    nb_adam_opts a = nb_adam_defaults(); /* Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False) */
    if (s.lr != 1e-3 || s.momentum != 0 || s.dampening != 0 || s.weight_decay != 0 || s.nesterov || s.maximize)
        return wrong("SGD's defaults");
    if (a.lr != 1e-3 || a.beta1 != 0.9 || a.beta2 != 0.999 || a.eps != 1e-8 || a.weight_decay != 0 || a.amsgrad ||
        a.maximize)
        return wrong("Adam's defaults");
    printf("3. defaults: SGD lr %g momentum %g; Adam lr %g betas (%g, %g) eps %g\n", s.lr, s.momentum, a.lr, a.beta1,
           a.beta2, a.eps);
    return 0;
}

/* ---- 4. the learning rate over time: StepLR(step_size=30, gamma=0.1) for 100 epochs ------- */
/* 100 epochs of StepLR(step_size=30, gamma=0.1) on optimizer, checking group 0's lr. */
static int steplr_100(nb_optim *optimizer) {
    double lrs[100], lr0 = nb_optim_get(optimizer, 0, "lr");
    nb_sched *scheduler = nb_step_lr(optimizer, 30, 0.1);        /* scheduler = StepLR(optimizer, step_size=30, gamma=0.1) */
    if (!scheduler) return fail("StepLR");
    for (int epoch = 0; epoch < 100; epoch++) {                  /* for epoch in range(100):      */
        lrs[epoch] = nb_sched_last_lr(scheduler, 0);             /*     train(...) at this lr     */
        if (nb_sched_step(scheduler)) return fail("step");      /*     scheduler.step()          */
    }
    nb_sched_free(scheduler);
    for (int e = 0; e < 100; e++) {
        double want = lr0 * pow(0.1, e / 30);
        if (fabs(lrs[e] - want) > 1e-12 * want) return wrong("StepLR divides the lr by 10 every 30 epochs");
    }
    printf("   StepLR: lr %g (epochs 0-29), %g (30-59), %g (60-89), %g (90-99)\n", lrs[0], lrs[30], lrs[60], lrs[90]);
    return 0;
}

static int step4_steplr(nb_module *model) {
    nb_tensor *params[4];
    int n = nb_module_parameters(model, params, 4);
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = 0.1;
    nb_optim *optimizer = nb_sgd(params, n, &so);
    printf("4. optimizer lr 0.1\n");
    int rc = optimizer ? steplr_100(optimizer) : fail("sgd");
    nb_optim_free(optimizer);
    return rc;
}

/* ---- 5. parameter groups: the base at the default lr, the classifier head at its own ------ */
static int step5_groups(nb_module *model) {
    nb_tensor *params[4];
    nb_module_parameters(model, params, 4);
    nb_tensor **base = params, **head = params + 2;              /* model[0] and model[2]         */
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = 1e-2;
    so.momentum = 0.9;
    nb_optim *optimizer = nb_sgd(base, 2, &so);                  /* optim.SGD([{"params": model[0].parameters()}, */
    nb_value head_lr = nb_num("lr", 1e-3);                       /*            {"params": model[2].parameters(), "lr": 1e-3}], */
    if (!optimizer || nb_optim_add_param_group(optimizer, head, 2, &head_lr, 1)) /* lr=1e-2, momentum=0.9) */
        return fail("param groups");
    if (nb_optim_get(optimizer, 0, "lr") != 1e-2 || nb_optim_get(optimizer, 1, "lr") != 1e-3 ||
        nb_optim_get(optimizer, 1, "momentum") != 0.9)
        return wrong("the head has its own lr and the default momentum");
    printf("5. param groups: base lr %g, head lr %g, both momentum %g\n", nb_optim_get(optimizer, 0, "lr"),
           nb_optim_get(optimizer, 1, "lr"), nb_optim_get(optimizer, 1, "momentum"));
    int rc = steplr_100(optimizer); /* a schedule scales every group's lr */
    if (!rc && fabs(nb_optim_get(optimizer, 1, "lr") - 1e-3 * 1e-3) > 1e-18) rc = wrong("StepLR scales each group");
    if (!rc) printf("   after 100 epochs of StepLR: base lr %g, head lr %g\n", nb_optim_get(optimizer, 0, "lr"),
                    nb_optim_get(optimizer, 1, "lr"));
    nb_optim_free(optimizer);
    return rc;
}

/* ---- 6. gradient clipping: clip_grad_norm_(max_norm=1.0) between backward and step -------- */
static double grad_norm(nb_tensor *const *params, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < params[i]->numel; k++) s += (double)nb_f32(params[i]->grad)[k] * nb_f32(params[i]->grad)[k];
    return sqrt(s);
}

static int step6_clip(const nb_mnist *train_set, nb_arena *ar) {
    nb_module *model = make_model(0);
    nb_tensor *params[4];
    int n = nb_module_parameters(model, params, 4);
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = 1.0; /* a large lr: the kind of run where clipping matters */
    nb_optim *optimizer = nb_sgd(params, n, &so);
    if (!optimizer || !first_loss(model, train_set, ar)) return fail("forward");
    double total;                                                    /* loss.backward()               */
    if (nb_clip_grad_norm(params, n, 1.0, 2.0, false, &total))       /* total = clip_grad_norm_(model.parameters(), max_norm=1.0) */
        return fail("clip");
    double after = grad_norm(params, n);
    if (nb_optim_step(optimizer)) return fail("step");               /* optimizer.step()              */
    if (!(after <= 1.0 + 1e-6) || (total <= 1.0 && fabs(after - total) > 1e-6 * total))
        return wrong("clip_grad_norm_ scales the gradients to a total norm of at most 1");
    printf("6. clip_grad_norm_: total norm %.4f before, %.4f after\n", total, after);
    nb_optim_free(optimizer);
    nb_module_free(model);
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : nb_default_data_dir();
    nb_mnist train_set;
    if (nb_mnist_load(dir, "train", &train_set)) return fail("data");
    nb_arena *ar = nb_arena_new(0);
    char ckpt[64];
    snprintf(ckpt, sizeof ckpt, "/tmp/nabla-tutorial-%ld.ckpt", (long)getpid());
    nb_module *model = make_model(0);
    int rc = !ar || !model ? fail("setup")
             : step1_by_hand(&train_set, ar) || step2_loop_and_resume(&train_set, ar, ckpt) || step3_defaults() ||
                     step4_steplr(model) || step5_groups(model) || step6_clip(&train_set, ar);
    remove(ckpt);
    nb_module_free(model);
    nb_arena_free(ar);
    nb_mnist_free(&train_set);
    if (!rc) printf("every claim of the tutorial holds\n");
    return rc;
}
