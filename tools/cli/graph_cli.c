/* graph_cli.c - `nabla graph`: the autograd graph of one forward + cross-entropy loss of the
 * model that `nabla train` would build with the same --model/--hidden flags, as Graphviz DOT.
 *   nabla graph --hidden 128 --out g.dot && dot -Tsvg g.dot -o g.svg
 * The input is a batch of zeros of MNIST's shape (28x28, 10 classes): only shapes matter. */
#include <stdio.h>
#include "cli.h"

int cmd_graph(int argc, char **argv) {
    cli_prog = "nabla graph";
    const char *out = NULL;
    long batch = 1;
    bool help = false;
    cli_flags f = {.n = 0};
    model_cli_flags(&f);
    cli_add(&f, (arg_spec){"batch", ARG_INT, &batch, "batch size of the example input (default 1)", NULL});
    cli_add(&f, (arg_spec){"out", ARG_STRING, &out, "write the DOT to this file (default: stdout)", NULL});
    cli_add(&f, (arg_spec){"help", ARG_FLAG, &help, "this help", NULL});
    char err[256];
    if (args_parse(argc, argv, 2, f.specs, f.n, err, sizeof err)) {
        fprintf(stderr, "nabla graph: %s\n", err);
        return 2;
    }
    if (help) {
        printf("usage: nabla graph [options]   (render with: dot -Tsvg FILE -o graph.svg)\n");
        args_usage(f.specs, f.n);
        return 0;
    }
    if (batch < 1 || batch > 65536) {
        fprintf(stderr, "nabla graph: --batch must be between 1 and 65536, got %ld\n", batch);
        return 2;
    }
    if (model_cli_check()) return 2;

    int rc = 1;
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *model = model_cli_build(28, 28, 10, &rng);
    nb_arena *ar = nb_arena_new(0);
    FILE *fp = NULL;
    if (!model || !ar) {
        fprintf(stderr, "nabla graph: model: %s\n", nb_last_error());
        goto done;
    }
    int64_t xs[3] = {batch, 28, 28}, flat[2] = {batch, 28 * 28};
    bool flatten = model_cli_input().flatten;
    nb_tensor *x = flatten ? nb_zeros(ar, 2, flat) : nb_zeros(ar, 3, xs);
    nb_tensor *y = nb_empty(ar, NB_INT32, 1, &xs[0]);
    if (y)
        for (long i = 0; i < batch; i++) nb_i32(y)[i] = 0;
    nb_tensor *loss = nb_cross_entropy(ar, nb_forward(model, ar, model_cli_prepare(ar, x)), y, NULL);
    if (!loss) {
        fprintf(stderr, "nabla graph: forward: %s\n", nb_last_error());
        goto done;
    }
    if (out && !(fp = fopen(out, "w"))) {
        fprintf(stderr, "nabla graph: cannot write %s\n", out);
        goto done;
    }
    if (nb_graph_dot(loss, fp ? fp : stdout)) {
        fprintf(stderr, "nabla graph: %s\n", nb_last_error());
        goto done;
    }
    rc = 0;
done:
    if (fp && fclose(fp)) {
        fprintf(stderr, "nabla graph: error writing %s\n", out);
        rc = 1;
    }
    nb_arena_free(ar);
    nb_module_free(model);
    return rc;
}
