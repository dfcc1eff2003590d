/* graph_cli.c - `nabla graph`: the autograd graph of one forward + cross-entropy loss of the
 * model that `nabla train` would build with the same --model/--hidden flags, as Graphviz DOT.
 *   nabla graph --hidden 128 --out g.dot && dot -Tsvg g.dot -o g.svg
 * Leaves are named by role: the parameters by their PyTorch names (0.weight), the batch
 * (input) and the labels (target); a legend says what the colours mean. The input is a batch
 * of zeros of MNIST's shape (28x28, 10 classes), or with --data the first images of a test
 * split; --values runs backward and shows each tensor's L2 norm and its gradient's. */
#include <stdio.h>
#include <stdlib.h>
#include "cli.h"

/* The first n images and labels of dir's test split into x ([n, 784] or [n, 28, 28]) and y. */
static int first_batch(const char *dir, long n, bool flatten, nb_arena *ar, nb_tensor **x, nb_tensor **y) {
    nb_mnist test = {0};
    if (nb_mnist_load(dir, "t10k", &test)) return -1;
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = n;
    lo.shuffle = false;
    lo.flatten = flatten;
    nb_loader *ld = nb_loader_new(test.images, test.labels, &lo);
    int rc = ld && nb_loader_next(ld, ar, x, y) > 0 ? 0 : -1;
    nb_loader_free(ld);
    nb_mnist_free(&test);
    return rc;
}

int cmd_graph(int argc, char **argv) {
    cli_prog = "nabla graph";
    const char *out = NULL, *data = NULL;
    long batch = 1;
    bool help = false, values = false, no_legend = false;
    cli_flags f = {.n = 0};
    model_cli_flags(&f);
    cli_add(&f, (arg_spec){"batch", ARG_INT, &batch, "batch size of the example input (default 1)", NULL});
    cli_add(&f, (arg_spec){"data", ARG_STRING, &data, "take the input from the first test images of this folder "
                           "(default: zeros)", NULL});
    cli_add(&f, (arg_spec){"values", ARG_FLAG, &values, "run backward and show each tensor's L2 norm and its "
                           "gradient's", NULL});
    cli_add(&f, (arg_spec){"no-legend", ARG_FLAG, &no_legend, "leave out the legend of the colours", NULL});
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
    nb_graph_label *labels = NULL;
    if (!model || !ar) {
        fprintf(stderr, "nabla graph: model: %s\n", nb_last_error());
        goto done;
    }
    int64_t xs[3] = {batch, 28, 28}, flat[2] = {batch, 28 * 28};
    bool flatten = model_cli_input().flatten;
    nb_tensor *x, *y;
    if (data) {
        if (first_batch(data, batch, flatten, ar, &x, &y)) {
            fprintf(stderr, "nabla graph: data: %s\n", nb_last_error());
            goto done;
        }
    } else {
        x = flatten ? nb_zeros(ar, 2, flat) : nb_zeros(ar, 3, xs);
        y = nb_empty(ar, NB_INT32, 1, &xs[0]);
        if (y)
            for (long i = 0; i < batch; i++) nb_i32(y)[i] = 0;
    }
    nb_tensor *input = model_cli_prepare(ar, x);
    nb_tensor *loss = nb_cross_entropy(ar, nb_forward(model, ar, input), y, NULL);
    if (!loss || (values && nb_backward(loss))) {
        fprintf(stderr, "nabla graph: forward: %s\n", nb_last_error());
        goto done;
    }
    /* names and roles: parameters and buffers by their state_dict names, the batch, the labels */
    const nb_named_tensor *state;
    int ns = nb_module_state(model, &state), np = nb_module_num_params(model), nl = 0;
    if (!(labels = malloc(sizeof *labels * (size_t)(ns + 2)))) {
        fprintf(stderr, "nabla graph: out of memory\n");
        goto done;
    }
    for (int i = 0; i < ns; i++)
        labels[nl++] = (nb_graph_label){state[i].tensor, state[i].name, i < np ? NB_GRAPH_PARAMETER : NB_GRAPH_BUFFER};
    labels[nl++] = (nb_graph_label){input, "input", NB_GRAPH_INPUT};
    labels[nl++] = (nb_graph_label){y, "target", NB_GRAPH_TARGET};
    if (out && !(fp = fopen(out, "w"))) {
        fprintf(stderr, "nabla graph: cannot write %s\n", out);
        goto done;
    }
    nb_graph_opts go = nb_graph_defaults();
    go.labels = labels;
    go.nlabels = nl;
    go.legend = !no_legend;
    go.values = values;
    if (nb_graph_dot_opts(loss, fp ? fp : stdout, &go)) {
        fprintf(stderr, "nabla graph: %s\n", nb_last_error());
        goto done;
    }
    rc = 0;
done:
    if (fp && fclose(fp)) {
        fprintf(stderr, "nabla graph: error writing %s\n", out);
        rc = 1;
    }
    free(labels);
    nb_arena_free(ar);
    nb_module_free(model);
    return rc;
}
