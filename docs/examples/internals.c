/* internals.c - the code of docs/internals.md, compiled and run by the tests (suite docs).
 * Each function is one section of the guide; main runs them all and fails (exit 1) when a
 * number is not what the guide says. */
#include <math.h>
#include <stdio.h>
#include "nabla.h"

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #cond,          \
                    nb_last_error());                                              \
            return 1;                                                              \
        }                                                                          \
    } while (0)

/* ---- the arena ---------------------------------------------------------------------------- */
static int arena_steps(void) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    size_t used[3];
    nb_tensor *w = nb_uniform(NULL, 2, (int64_t[]){4, 3}, -1, 1, &rng); /* heap: outlives steps */
    nb_requires_grad(w, true);
    nb_arena *ar = nb_arena_new(0);
    for (int step = 0; step < 3; step++) {
        nb_arena_reset(ar);                          /* the last step's tensors and tape die here */
        nb_tensor *x = nb_ones(ar, 2, (int64_t[]){2, 3});           /* [2, 3] in the arena */
        nb_tensor *y = nb_tanh(ar, nb_linear(ar, x, w, NULL));      /* two ops, two nodes */
        nb_tensor *loss = nb_sum(ar, y);                            /* a third */
        if (nb_backward(loss)) return 1;   /* y's gradient: arena; w's: heap, made once */
        used[step] = nb_arena_used(ar);
    }
    CHECK(used[0] == used[1] && used[1] == used[2]); /* the same bytes every step */
    CHECK(nb_arena_peak(ar) == used[0]);
    nb_arena_free(ar);
    nb_tensor_free(w);
    return 0;
}

/* ---- recording: grad mode and requires_grad decide ---------------------------------------- */
static int recording(void) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *w = nb_ones(ar, 1, (int64_t[]){3}), *c = nb_ones(ar, 1, (int64_t[]){3});
    nb_requires_grad(w, true);
    nb_tensor *a = nb_mul(ar, c, c);  /* no input requires grad: a->node == NULL */
    nb_tensor *b = nb_mul(ar, w, c);  /* w does: b->node records "mul", b requires grad */
    bool prev = nb_set_grad_enabled(false);
    nb_tensor *d = nb_mul(ar, w, c);  /* grad mode off (torch.no_grad): d->node == NULL */
    nb_set_grad_enabled(prev);
    CHECK(!a->internal.node && b->internal.node && !d->internal.node);
    CHECK(!nb_tensor_requires_grad(a) && nb_tensor_requires_grad(b) && !nb_tensor_requires_grad(d));
    nb_arena_free(ar);
    return 0;
}

/* ---- the tape: a diamond, walked newest to oldest ------------------------------------------ */
static int diamond(void) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){1}, (float[]){0.5f});
    nb_requires_grad(x, true);
    nb_tensor *a = nb_mul(ar, x, x);  /* node 1: a = x^2 */
    nb_tensor *b = nb_exp(ar, x);     /* node 2: b = e^x */
    nb_tensor *y = nb_add(ar, a, b);  /* node 3: y = a + b */
    nb_backward(y);                   /* runs node 3, then 2, then 1 */
    /* node 2 wrote e^x into x->grad (beta 0), node 1 added 2x (beta 1): dy/dx = 2x + e^x */
    CHECK(fabsf(nb_f32(x->grad)[0] - (2 * 0.5f + expf(0.5f))) < 1e-6f);
    /* intermediates keep their gradient until the arena is reset: dy/da = 1 */
    CHECK(nb_f32(a->grad)[0] == 1.0f);
    nb_backward(y);                   /* a second backward adds the same again */
    CHECK(fabsf(nb_f32(x->grad)[0] - 2 * (2 * 0.5f + expf(0.5f))) < 1e-6f);
    nb_arena_free(ar);
    nb_tensor_free(x);
    return 0;
}

/* ---- the parameter slab --------------------------------------------------------------------- */
static int slab(void) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *model = nb_sequential(3, (nb_module *[]){
        nb_linear_new(4, 3, true, &rng), nb_relu_new(), nb_linear_new(3, 2, true, &rng)});
    nb_tensor *w0 = nb_module_find(model, "0.weight"), *b0 = nb_module_find(model, "0.bias");
    nb_tensor *w2 = nb_module_find(model, "2.weight");
    /* one block of floats; each parameter starts on a 64-byte (16-float) boundary */
    CHECK(nb_f32(w0) == model->internal.slab);      /* 0.weight: 12 floats, padded to 16 */
    CHECK(nb_f32(b0) == model->internal.slab + 16); /* 0.bias: 3 floats, padded to 16 */
    CHECK(nb_f32(w2) == model->internal.slab + 32);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_ones(ar, 2, (int64_t[]){5, 4});
    nb_backward(nb_sum(ar, nb_forward(model, ar, x)));
    CHECK(nb_f32(w0->grad) == model->internal.grad_slab);      /* gradients: the same layout */
    CHECK(nb_f32(b0->grad) == model->internal.grad_slab + 16);
    nb_module_zero_grad(model, true);                 /* set_to_none: grad = NULL ... */
    CHECK(w0->grad == NULL);
    nb_arena_reset(ar);
    x = nb_ones(ar, 2, (int64_t[]){5, 4});
    nb_backward(nb_sum(ar, nb_forward(model, ar, x)));
    CHECK(nb_f32(w0->grad) == model->internal.grad_slab);      /* ... and the next backward reuses it */
    nb_arena_free(ar);
    nb_module_free(model);
    return 0;
}

/* ---- cross_entropy's gradient --------------------------------------------------------------- */
static int xent(void) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *logits = nb_from_array(ar, NB_FLOAT32, 2, (int64_t[]){2, 3},
                                      (float[]){1, 2, 3, 1, 0, -1});
    nb_tensor *target = nb_from_array(ar, NB_INT32, 1, (int64_t[]){2}, (int32_t[]){2, 0});
    nb_requires_grad(logits, true);
    nb_cross_entropy_opts o = nb_cross_entropy_defaults();
    o.label_smoothing = 0.1;
    nb_backward(nb_cross_entropy(ar, logits, target, &o));
    float *g = nb_f32(logits->grad), *p = nb_f32(nb_softmax(ar, logits, 1));
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < 3; c++) {
            float q = (c == nb_i32(target)[i] ? 0.9f : 0.0f) + 0.1f / 3; /* smoothed one-hot */
            CHECK(fabsf(g[i * 3 + c] - (p[i * 3 + c] - q) / 2) < 1e-6f);  /* (p - q) / N */
        }
    nb_arena_free(ar);
    return 0;
}

int main(void) {
    int (*sections[])(void) = {arena_steps, recording, diamond, slab, xent};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        if (sections[i]()) return 1;
    printf("docs/internals.md: all examples give the numbers the guide states\n");
    return 0;
}
