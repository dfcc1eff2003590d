/* backprop.c - backpropagation by hand and by nabla, side by side, on XOR.
 *
 *   model = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 1), nn.Sigmoid())
 *   opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
 *   loss = F.mse_loss(model(x), y)            # x: the 4 XOR inputs, y: their outputs
 *
 * Step 1 is printed in full: every intermediate value of the forward pass, then every
 * gradient nb_backward() computed next to the chain-rule formula it comes from and the same
 * formula evaluated by hand (plain loops in double, below), then the SGD update. Training then
 * runs on the whole batch until it converges (or --steps runs out), and says which.
 *
 * Usage: backprop [--dot FILE] [--hidden H] [--steps N] [--lr X] [--seed S]
 *   --dot FILE  write the graph of step 1 (forward + loss) as Graphviz DOT
 *               (render it with `dot -Tsvg FILE -o graph.svg`)
 *   --hidden H  hidden units, 1..8 (default 2). With 2, some seeds end in XOR's local minimum
 *               (loss 0.125: one of the four outputs stays wrong); more units avoid it.
 * Exit status: 0 converged, 1 did not converge or autograd disagreed with the hand values,
 * 2 bad arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nabla.h"

#define N 4 /* samples: the whole XOR truth table is one batch */
#define MAXH 8 /* most hidden units --hidden accepts */

static int die(const char *what) {
    fprintf(stderr, "backprop: %s: %s\n", what, nb_last_error());
    return 1;
}

/* ---- printing ----------------------------------------------------------------------------- */
/* [[a, b], [c, d]] for a 2-D tensor, [a, b] for 1-D, a for 0-D. */
static void print_values(const float *v, const nb_tensor *t) {
    if (t->ndim == 0) {
        printf("%.6f", v[0]);
        return;
    }
    int64_t cols = t->shape[t->ndim - 1], rows = t->numel / (cols ? cols : 1);
    if (t->ndim > 1) printf("[");
    for (int64_t r = 0; r < rows; r++) {
        printf("%s[", r ? ", " : "");
        for (int64_t c = 0; c < cols; c++) printf("%s%9.6f", c ? ", " : "", v[r * cols + c]);
        printf("]");
    }
    if (t->ndim > 1) printf("]");
}

static void show(const char *name, const char *formula, const nb_tensor *t) {
    char shape[64];
    printf("  %-9s %-8s = %-26s ", name, nb_shape_str(t, shape, sizeof shape), formula);
    print_values(nb_f32(t), t);
    printf("\n");
}

/* A gradient: the value nb_backward() left in t->grad and the same formula by hand. Returns
 * the largest difference. */
static double show_grad(const char *name, const char *formula, const char *where,
                        const nb_tensor *t, const double *hand) {
    char shape[64];
    float h[64];
    double worst = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        h[i] = (float)hand[i];
        double d = fabs(hand[i] - nb_f32(t->grad)[i]);
        worst = d > worst ? d : worst;
    }
    printf("  %-9s %-8s = %s   (%s)\n", name, nb_shape_str(t, shape, sizeof shape), formula,
           where);
    printf("      autograd  ");
    print_values(nb_f32(t->grad), t);
    printf("\n      by hand   ");
    print_values(h, t);
    printf("\n");
    return worst;
}

/* ---- arguments ---------------------------------------------------------------------------- */
typedef struct opts {
    const char *dot;
    long steps;
    double lr;
    long seed;
    long hidden;
} opts;

static int parse(int argc, char **argv, opts *o) {
    for (int i = 1; i < argc; i += 2) { /* --flag value pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: backprop [--dot FILE] [--hidden H] [--steps N] [--lr X] [--seed S]\n");
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "backprop: %s needs a value (see --help)\n", a);
            return 2;
        }
        if (!strcmp(a, "--dot")) o->dot = v;
        else if (!strcmp(a, "--steps")) o->steps = strtol(v, &end, 10);
        else if (!strcmp(a, "--lr")) o->lr = strtod(v, &end);
        else if (!strcmp(a, "--seed")) o->seed = strtol(v, &end, 10);
        else if (!strcmp(a, "--hidden")) o->hidden = strtol(v, &end, 10);
        else {
            fprintf(stderr, "backprop: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (end && (*end || end == v)) {
            fprintf(stderr, "backprop: %s: '%s' is not a number\n", a, v);
            return 2;
        }
        if (o->steps < 1 || !(o->lr > 0) || o->hidden < 1 || o->hidden > MAXH) {
            fprintf(stderr, "backprop: --steps must be >= 1, --lr > 0, --hidden 1..%d\n", MAXH);
            return 2;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    opts o = {NULL, 3000, 0.5, 1, 2};
    int bad = parse(argc, argv, &o);
    if (bad) return bad;
    const int H = (int)o.hidden;

    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)o.seed);
    nb_module *model = nb_sequential(4, (nb_module *[]){
        nb_linear_new(2, H, true, &rng), nb_tanh_new(), nb_linear_new(H, 1, true, &rng),
        nb_sigmoid_new()});
    if (!model) return die("model");
    /* The four layers, to run the forward one named step at a time. */
    nb_module *fc1 = nb_module_child(model, 0), *act1 = nb_module_child(model, 1);
    nb_module *fc2 = nb_module_child(model, 2), *act2 = nb_module_child(model, 3);
    nb_tensor *W1 = nb_module_find(model, "0.weight"), *b1 = nb_module_find(model, "0.bias");
    nb_tensor *W2 = nb_module_find(model, "2.weight"), *b2 = nb_module_find(model, "2.bias");

    nb_tensor *params[4];
    int np = nb_module_parameters(model, params, 4);
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = o.lr;
    so.momentum = 0.9;
    nb_optim *opt = nb_sgd(params, np, &so);
    nb_arena *ar = nb_arena_new(0);
    /* The data lives on the heap (ar NULL): it must survive every nb_arena_reset. */
    nb_tensor *x = nb_from_array(NULL, NB_FLOAT32, 2, (int64_t[]){N, 2},
                                 (float[]){0, 0, 0, 1, 1, 0, 1, 1});
    nb_tensor *y = nb_from_array(NULL, NB_FLOAT32, 2, (int64_t[]){N, 1}, (float[]){0, 1, 1, 0});
    if (!opt || !ar || !x || !y) return die("setup");

    printf("XOR with a 2-%d-1 network: Linear(2, %d) -> Tanh -> Linear(%d, 1) -> Sigmoid\n"
           "loss L = mean((p - y)^2) over the %d samples; SGD lr %g, momentum 0.9; seed %ld\n\n",
           H, H, H, N, o.lr, o.seed);
    printf("parameters (PyTorch's default init: U(-1/sqrt(in), 1/sqrt(in))):\n");
    show("W1", "0.weight", W1);
    show("b1", "0.bias", b1);
    show("W2", "2.weight", W2);
    show("b2", "2.bias", b2);

    /* ---- step 1, every value printed -------------------------------------------------------- */
    nb_arena_reset(ar);
    nb_tensor *z1 = nb_forward(fc1, ar, x);  /* every op below records one node on the tape */
    nb_tensor *h = nb_forward(act1, ar, z1);
    nb_tensor *z2 = nb_forward(fc2, ar, h);
    nb_tensor *p = nb_forward(act2, ar, z2);
    nb_tensor *L = nb_mse_loss(ar, p, y, NB_REDUCTION_MEAN);
    if (!L) return die("forward");
    printf("\nstep 1, forward (z1 to L: one op, and one node on the tape, each):\n");
    show("x", "input", x);
    show("y", "target", y);
    show("z1", "x W1^T + b1", z1);
    show("h", "tanh(z1)", h);
    show("z2", "h W2^T + b2", z2);
    show("p", "sigmoid(z2)", p);
    show("L", "mean((p - y)^2)", L);

    if (o.dot) {
        FILE *f = fopen(o.dot, "w");
        if (!f) {
            fprintf(stderr, "backprop: cannot write %s\n", o.dot);
            return 1;
        }
        int rc = nb_graph_dot(L, f);
        if (fclose(f) != 0 || rc != NB_OK) return die("dot");
        printf("\ngraph of step 1 written to %s (dot -Tsvg %s -o graph.svg)\n", o.dot, o.dot);
    }

    nb_optim_zero_grad(opt, true);
    if (nb_backward(L)) return die("backward");
    printf("\nstep 1, backward: nb_backward(L) seeds dL/dL = 1 and walks the tape newest to "
           "oldest:\nmse_loss, sigmoid, linear, tanh, linear. Each node turns the gradient of "
           "its output\ninto gradients of its inputs (the chain rule, one factor per node).\n");

    /* The same chain rule by hand, in double, from the forward values above. */
    const float *xv = nb_f32(x), *yv = nb_f32(y), *hv = nb_f32(h), *pv = nb_f32(p);
    const float *W2v = nb_f32(W2);
    double dp[N], dz2[N], dW2[MAXH] = {0}, db2[1] = {0}, dh[N * MAXH], dz1[N * MAXH];
    double dW1[MAXH * 2] = {0}, db1[MAXH] = {0}, worst = 0;
    for (int i = 0; i < N; i++) {
        dp[i] = 2.0 * ((double)pv[i] - yv[i]) / N;
        dz2[i] = dp[i] * pv[i] * (1.0 - pv[i]);
        db2[0] += dz2[i];
        for (int j = 0; j < H; j++) {
            dW2[j] += dz2[i] * hv[i * H + j];
            dh[i * H + j] = dz2[i] * W2v[j];
            dz1[i * H + j] = dh[i * H + j] * (1.0 - (double)hv[i * H + j] * hv[i * H + j]);
            db1[j] += dz1[i * H + j];
            for (int k = 0; k < 2; k++) dW1[j * 2 + k] += dz1[i * H + j] * xv[i * 2 + k];
        }
    }
    worst = fmax(worst, show_grad("dL/dp", "2 (p - y) / 4", "mse_loss backward", p, dp));
    worst = fmax(worst, show_grad("dL/dz2", "dL/dp * p (1 - p)", "sigmoid backward", z2, dz2));
    worst = fmax(worst, show_grad("dL/dW2", "dL/dz2^T h", "linear backward, GEMM 2", W2, dW2));
    worst = fmax(worst, show_grad("dL/db2", "sum over rows of dL/dz2", "linear backward", b2, db2));
    worst = fmax(worst, show_grad("dL/dh", "dL/dz2 W2", "linear backward, GEMM 1", h, dh));
    worst = fmax(worst, show_grad("dL/dz1", "dL/dh * (1 - h^2)", "tanh backward", z1, dz1));
    worst = fmax(worst, show_grad("dL/dW1", "dL/dz1^T x", "linear backward, GEMM 2", W1, dW1));
    worst = fmax(worst, show_grad("dL/db1", "sum over rows of dL/dz1", "linear backward", b1, db1));
    printf("  largest |autograd - by hand| = %.3g\n", worst);
    if (!(worst < 1e-6)) {
        fprintf(stderr, "backprop: autograd and the hand-written chain rule disagree\n");
        return 1;
    }

    float before[4][2 * MAXH];
    for (int i = 0; i < np; i++)
        memcpy(before[i], params[i]->data, sizeof(float) * (size_t)params[i]->numel);
    if (nb_optim_step(opt)) return die("step");
    printf("\nstep 1, SGD update (first step: momentum buffer = grad, so param -= lr * grad):\n");
    for (int i = 0; i < np; i++) {
        nb_named_tensor nt = nb_module_param(model, i);
        printf("  %-9s ", nt.name);
        print_values(before[i], nt.tensor);
        printf("  ->  ");
        print_values(nb_f32(nt.tensor), nt.tensor);
        printf("\n");
    }

    /* ---- the rest of training: the PyTorch loop, nothing printed but the loss ---------------- */
    printf("\ntraining on the whole batch:\n");
    double loss = NAN;
    long step;
    bool ok = false;
    for (step = 2; step <= o.steps && !ok; step++) {
        nb_arena_reset(ar);
        nb_tensor *out = nb_forward(model, ar, x);
        nb_tensor *l = nb_mse_loss(ar, out, y, NB_REDUCTION_MEAN);
        nb_optim_zero_grad(opt, true);
        if (nb_backward(l) || nb_optim_step(opt)) return die("step");
        loss = nb_item(l);
        ok = loss < 0.01;
        for (int i = 0; i < N; i++) ok = ok && (nb_f32(out)[i] > 0.5f) == (yv[i] > 0.5f);
        if (step % 250 == 0 || ok) printf("  step %5ld  loss %.6f\n", step, loss);
    }

    bool prev = nb_set_grad_enabled(false); /* torch.no_grad(): no tape for evaluation */
    nb_arena_reset(ar);
    nb_tensor *out = nb_forward(model, ar, x);
    nb_set_grad_enabled(prev);
    if (!out) return die("eval");
    printf("\nresult:\n");
    for (int i = 0; i < N; i++)
        printf("  x = [%g, %g]  p = %.4f  target %g\n", xv[2 * i], xv[2 * i + 1], nb_f32(out)[i],
               yv[i]);
    if (ok)
        printf("converged after %ld steps: loss %.6f < 0.01 and every output is on the right "
               "side of 0.5\n", step - 1, loss);
    else
        printf("did not converge in %ld steps (loss %.6f); try another --seed, more --hidden "
               "units or more --steps\n", o.steps, loss);

    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(y);
    nb_optim_free(opt);
    nb_module_free(model);
    return ok ? 0 : 1;
}
