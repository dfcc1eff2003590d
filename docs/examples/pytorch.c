/* pytorch.c - the code of docs/pytorch.md (all but the training loop, which is
 * pytorch_loop.c), compiled and run by the tests (suite docs). Each function is one section of
 * the page; main runs them all and fails (exit 1) when a value is not what the page says. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "nabla.h"

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #cond,          \
                    nb_last_error());                                              \
            return 1;                                                              \
        }                                                                          \
    } while (0)

/* ---- tensors -------------------------------------------------------------------------------- */
static int tensors(void) {
    nb_arena *ar = nb_arena_new(0);
    nb_rng rng;
    nb_rng_seed(&rng, 0);                                   /* torch.manual_seed(0) */
    int64_t shape[2] = {2, 3};
    nb_tensor *z = nb_zeros(ar, 2, shape);                  /* torch.zeros(2, 3) */
    nb_tensor *o = nb_ones(ar, 2, shape);                   /* torch.ones(2, 3) */
    nb_tensor *f = nb_full(ar, 2, shape, 0.5f);             /* torch.full((2, 3), 0.5) */
    nb_tensor *r = nb_arange(ar, 0, 6, 1);                  /* torch.arange(0., 6.) */
    nb_tensor *u = nb_uniform(ar, 2, shape, 0, 1, &rng);    /* torch.rand(2, 3) */
    nb_tensor *n = nb_normal(ar, 2, shape, 0, 1, &rng);     /* torch.randn(2, 3) */
    nb_tensor *t = nb_from_array(ar, NB_FLOAT32, 2, shape,  /* torch.tensor([[1., 2, 3], */
                                 (float[]){1, 2, 3, 4, 5, 6}); /*            [4, 5, 6]]) */
    nb_tensor *y = nb_from_array(ar, NB_INT32, 1, (int64_t[]){2}, /* labels: int32, */
                                 (int32_t[]){7, 1});               /* not int64 */
    nb_tensor *h = nb_zeros(NULL, 2, shape);                /* a heap tensor: */
    nb_tensor_free(h);                                      /* freed by you */

    char buf[32];
    printf("%s %lld\n", nb_shape_str(t, buf, sizeof buf), (long long)t->numel); /* [2, 3] 6 */
    float *v = nb_f32(t);                                   /* t.data_ptr(): row-major */
    v[1 * 3 + 2] = 60;                                      /* t[1, 2] = 60 */
    double s = nb_item(nb_sum(ar, t));                      /* t.sum().item() */
    nb_tensor *c = nb_clone(ar, t);                         /* t.clone() */
    nb_tensor *v2 = nb_reshape(ar, t, 2, (int64_t[]){3, -1}); /* t.reshape(3, -1): a view */
    nb_tensor *fl = nb_flatten(ar, t, 0, -1);               /* t.flatten() */
    nb_tensor *tt = nb_transpose(ar, t, 0, 1);              /* t.T (a copy, see below) */

    CHECK(s == 75 && nb_f32(c)[5] == 60 && v2->shape[0] == 3 && v2->shape[1] == 2);
    CHECK(v2->data == t->data && fl->ndim == 1 && tt->data != t->data && nb_f32(tt)[1] == 4);
    CHECK(nb_f32(z)[0] == 0 && nb_f32(o)[5] == 1 && nb_f32(f)[2] == 0.5f && r->numel == 6);
    CHECK(nb_f32(u)[0] >= 0 && nb_f32(u)[0] < 1 && isfinite(nb_f32(n)[0]) && nb_i32(y)[0] == 7);
    nb_arena_free(ar);
    return 0;
}

/* ---- ops ------------------------------------------------------------------------------------- */
static int ops(void) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *a = nb_from_array(ar, NB_FLOAT32, 2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4});
    nb_tensor *b = nb_from_array(ar, NB_FLOAT32, 1, (int64_t[]){2}, (float[]){10, 20});
    nb_tensor *sum = nb_add(ar, a, b);                 /* a + b (broadcast: [[11, 22], [13, 24]]) */
    nb_tensor *prod = nb_mul_scalar(ar, a, 2);         /* a * 2 */
    nb_tensor *mm = nb_matmul(ar, a, a);               /* a @ a */
    nb_tensor *lin = nb_linear(ar, a, a, b);           /* F.linear(a, a, b) = a @ a.T + b */
    nb_tensor *m = nb_mean_dim(ar, a, 1, false);       /* a.mean(dim=1) */
    nb_tensor *mx = nb_max_dim(ar, a, 0, true);        /* a.max(dim=0, keepdim=True).values */
    nb_tensor *am = nb_argmax(ar, a, 1, false);        /* a.argmax(dim=1): int32 */
    nb_tensor *sm = nb_softmax(ar, a, -1);             /* F.softmax(a, dim=-1) */
    nb_tensor *cat = nb_cat(ar, 2, (nb_tensor *[]){a, a}, 0); /* torch.cat([a, a], 0) */
    nb_tensor *sl = nb_slice(ar, a, 1, 1, 2);          /* a[:, 1:2] */

    CHECK(nb_f32(sum)[1] == 22 && nb_f32(prod)[3] == 8 && nb_f32(mm)[0] == 7);
    CHECK(nb_f32(lin)[1] == 1 * 3 + 2 * 4 + 20 && nb_f32(m)[1] == 3.5f && nb_f32(mx)[1] == 4);
    CHECK(nb_i32(am)[0] == 1 && fabsf(nb_f32(sm)[0] + nb_f32(sm)[1] - 1) < 1e-6f);
    CHECK(cat->shape[0] == 4 && sl->shape[1] == 1 && nb_f32(sl)[1] == 4);
    nb_arena_free(ar);
    return 0;
}

/* ---- autograd --------------------------------------------------------------------------------- */
static int autograd(void) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){3}, (float[]){1, 2, 3});
    nb_requires_grad(x, true);                         /* x.requires_grad_() */
    nb_tensor *y = nb_sum(ar, nb_mul(ar, x, x));       /* y = (x * x).sum() */
    nb_backward(y);                                    /* y.backward() */
    float *g = nb_f32(x->grad);                        /* x.grad: [2, 4, 6] */

    bool prev = nb_set_grad_enabled(false);            /* with torch.no_grad(): */
    nb_tensor *e = nb_mul(ar, x, x);                   /*     e = x * x  (no graph) */
    nb_set_grad_enabled(prev);

    nb_tensor *d = nb_detach(ar, x);                   /* x.detach(): same data, no grad */
    nb_tensor *v = nb_mul(ar, x, x);                   /* v = x * x */
    nb_tensor *gv = nb_from_array(ar, NB_FLOAT32, 1, (int64_t[]){3}, (float[]){1, 0, 0});
    nb_backward_grad(v, gv);                           /* v.backward(gradient=gv): adds [2, 0, 0] */

    CHECK(g[0] == 4 && g[1] == 4 && g[2] == 6);        /* [2, 4, 6] + [2, 0, 0] */
    CHECK(!nb_tensor_requires_grad(e) && !nb_tensor_requires_grad(d) && d->data == x->data);
    nb_arena_free(ar);
    nb_tensor_free(x);
    return 0;
}

/* ---- nn -------------------------------------------------------------------------------------- */
static int nn(void) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);                               /* torch.manual_seed(0) */
    nb_module *model = nb_sequential(3, (nb_module *[]){ /* nn.Sequential( */
        nb_linear_new(784, 128, true, &rng),             /*   nn.Linear(784, 128), */
        nb_relu_new(),                                   /*   nn.ReLU(), */
        nb_linear_new(128, 10, true, &rng)});            /*   nn.Linear(128, 10)) */
    if (!model) return 1;                                /* one check for the whole tree */

    char text[512];
    nb_module_repr(model, text, sizeof text);            /* print(model) */
    printf("%s\n", text);
    for (int i = 0; i < nb_module_num_params(model); i++) { /* model.named_parameters() */
        nb_named_tensor p = nb_module_param(model, i);
        char shape[32];
        printf("%s %s\n", p.name, nb_shape_str(p.tensor, shape, sizeof shape)); /* 0.weight [128, 784] */
    }
    nb_tensor *params[8];
    int n = nb_module_parameters(model, params, 8);      /* list(model.parameters()) */
    nb_tensor *w = nb_module_find(model, "2.weight");    /* model.state_dict()["2.weight"] */
    nb_module_train(model, false);                       /* model.eval() */
    nb_module_train(model, true);                        /* model.train() */
    nb_module_zero_grad(model, true);                    /* model.zero_grad() */

    CHECK(n == 4 && nb_module_numel(model) == 784 * 128 + 128 + 128 * 10 + 10);
    CHECK(w && w->shape[0] == 10 && strstr(text, "(1): ReLU()") != NULL);
    nb_module_free(model);                               /* frees every child and parameter */
    return 0;
}

/* ---- losses ---------------------------------------------------------------------------------- */
static int losses(void) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *logits = nb_zeros(ar, 2, (int64_t[]){4, 10});
    nb_tensor *y = nb_from_array(ar, NB_INT32, 1, (int64_t[]){4}, (int32_t[]){3, 1, 4, 1});
    nb_tensor *l1 = nb_cross_entropy(ar, logits, y, NULL); /* F.cross_entropy(logits, y) */
    nb_cross_entropy_opts o = nb_cross_entropy_defaults();
    o.label_smoothing = 0.1;                               /* label_smoothing=0.1, */
    o.reduction = NB_REDUCTION_SUM;                        /* reduction="sum" */
    nb_tensor *l2 = nb_cross_entropy(ar, logits, y, &o);
    nb_tensor *l3 = nb_nll_loss(ar, nb_log_softmax(ar, logits, 1), y, NULL); /* F.nll_loss */
    nb_tensor *l4 = nb_mse_loss(ar, logits, nb_ones(ar, 2, (int64_t[]){4, 10}),
                                NB_REDUCTION_MEAN);        /* F.mse_loss(logits, ones) */

    CHECK(fabs(nb_item(l1) - log(10)) < 1e-6 && fabs(nb_item(l2) - 4 * log(10)) < 1e-5);
    CHECK(fabs(nb_item(l3) - log(10)) < 1e-6 && nb_item(l4) == 1);
    nb_arena_free(ar);
    return 0;
}

/* ---- optimizers and schedulers --------------------------------------------------------------- */
static int optim(void) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *model = nb_sequential(3, (nb_module *[]){
        nb_linear_new(4, 8, true, &rng), nb_relu_new(), nb_linear_new(8, 2, true, &rng)});
    nb_tensor *params[4];
    int n = nb_module_parameters(model, params, 4);

    nb_sgd_opts so = nb_sgd_defaults();                  /* SGD(model.parameters(), */
    so.lr = 0.1;                                         /*     lr=0.1, */
    so.momentum = 0.9;                                   /*     momentum=0.9) */
    nb_optim *sgd = nb_sgd(params, n, &so);

    nb_adam_opts ao = nb_adam_defaults();                /* Adam([{"params": model[0].parameters()}, */
    ao.lr = 1e-3;                                        /*       {"params": model[2].parameters(), */
    nb_optim *adam = nb_adam(params, 2, &ao);            /*        "lr": 1e-4}], lr=1e-3) */
    nb_optim_add_param_group(adam, params + 2, 2, (nb_value[]){nb_num("lr", 1e-4)}, 1);

    double lr = nb_optim_get(adam, 1, "lr");             /* adam.param_groups[1]["lr"] */
    nb_optim_set(sgd, 0, "lr", 0.05);                    /* sgd.param_groups[0]["lr"] = 0.05 */
    nb_sched *sched = nb_step_lr(sgd, 30, 0.1);          /* StepLR(sgd, step_size=30, gamma=0.1) */
    double total;                                        /* clip_grad_norm_(params, 1.0) */
    nb_clip_grad_norm(params, n, 1.0, 2.0, false, &total);
    nb_optim_dict *sd = nb_optim_state_dict(sgd);        /* sgd.state_dict() */
    nb_optim_load_state_dict(sgd, sd);                   /* sgd.load_state_dict(sd) */
    nb_optim_dict_free(sd);

    CHECK(sgd && adam && sched && nb_optim_num_groups(adam) == 2 && lr == 1e-4);
    CHECK(nb_sched_last_lr(sched, 0) == 0.05 && total == 0); /* no gradients yet */
    nb_sched_free(sched);
    nb_optim_free(adam);
    nb_optim_free(sgd);
    nb_module_free(model);
    return 0;
}

/* ---- errors ---------------------------------------------------------------------------------- */
static int errors(void) {
    nb_arena *ar = nb_arena_new(0);
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *fc = nb_linear_new(784, 10, true, &rng);
    nb_tensor *x = nb_zeros(ar, 2, (int64_t[]){64, 783});
    nb_tensor *loss = nb_sum(ar, nb_relu(ar, nb_forward(fc, ar, x))); /* NULL flows through */
    if (!loss)                                            /* one check for the chain */
        fprintf(stderr, "error: %s\n", nb_last_error());  /* names the cause and the op */

    nb_tensor *params[2];
    int n = nb_module_parameters(fc, params, 2);
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = -0.1;
    nb_optim *opt = nb_sgd(params, n, &so);
    if (!opt)                                             /* PyTorch's ValueError text */
        fprintf(stderr, "error: %s (%s)\n", nb_last_error(), nb_status_str(nb_last_status()));

    CHECK(!loss && !opt && nb_last_status() == NB_EINVAL);
    CHECK(strcmp(nb_last_error(), "Invalid learning rate: -0.1") == 0);
    nb_clear_error();
    nb_module_free(fc);
    nb_arena_free(ar);
    return 0;
}

/* ---- threads --------------------------------------------------------------------------------- */
static int threads(void) {
    nb_set_num_threads(2);                               /* torch.set_num_threads(2) */
    int k = nb_get_num_threads();                        /* torch.get_num_threads() */
    printf("%s, %d threads, gemm: %s\n", nb_version(), k, nb_blas_backend());
    CHECK(k == 2);
    nb_set_num_threads(1);
    return 0;
}

int main(void) {
    int (*sections[])(void) = {tensors, ops, autograd, nn, losses, optim, errors, threads};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        if (sections[i]()) return 1;
    printf("docs/pytorch.md: every example gives the values the page states\n");
    return 0;
}
