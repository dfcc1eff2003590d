/* eval_cli.c - `nabla eval --load FILE`: test loss and accuracy of a saved model.
 * The model is rebuilt from the flags stored in the checkpoint ("cli.model"; model flags on the
 * command line override them), then its weights are loaded: a full checkpoint, a weights file
 * or a converted PyTorch state_dict. A checkpoint of a run with --swa-start/--ema is evaluated
 * with its averaged weights, as `nabla train` reported them (--weights model: the trained
 * ones); the first line says which. --logits writes the test logits as a .npy file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

/* A float32 [n, c] array as a NumPy .npy file (format 1.0, little-endian). */
static int write_npy(const char *path, const float *x, int64_t n, int64_t c) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    char hdr[128];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                       (long long)n, (long long)c);
    int pad = 64 - (10 + len + 1) % 64;
    if (pad == 64) pad = 0;
    unsigned short hl = (unsigned short)(len + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hl & 0xff, f);
    fputc(hl >> 8, f);
    fwrite(hdr, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(x, sizeof(float), (size_t)(n * c), f); /* little-endian hosts */
    return fclose(f) ? -1 : 0;
}

int cmd_eval(int argc, char **argv) {
    const char *load = NULL, *data = nb_default_data_dir(), *logits_path = NULL, *weights = "auto";
    long batch = 1000, threads = 1;
    bool help = false;
    cli_flags f = {.n = 0};
    cli_add(&f, (arg_spec){"load", ARG_STRING, &load, "checkpoint or weights file to evaluate", NULL});
    cli_add(&f, (arg_spec){"data", ARG_STRING, &data, "folder with the IDX files (default: Fashion-MNIST)", NULL});
    model_cli_flags(&f);
    cli_add(&f, (arg_spec){"batch", ARG_INT, &batch, "evaluation batch size (default 1000)", NULL});
    cli_add(&f, (arg_spec){"threads", ARG_INT, &threads, "threads (default 1)", NULL});
    cli_add(&f, (arg_spec){"weights", ARG_STRING, &weights, "auto (averaged SWA/EMA weights when the checkpoint has them), averaged or model", NULL});
    cli_add(&f, (arg_spec){"logits", ARG_STRING, &logits_path, "write the test logits [N, 10] to this .npy file", NULL});
    cli_add(&f, (arg_spec){"help", ARG_FLAG, &help, "this help", NULL});
    char err[256];
    for (int i = 2; i < argc; i++) { /* the checkpoint's model flags first, argv overrides them */
        const char *p = !strcmp(argv[i], "--load") && i + 1 < argc ? argv[i + 1]
                        : !strncmp(argv[i], "--load=", 7)           ? argv[i] + 7 : NULL;
        if (p && ckpt_cli_model_defaults(p)) return 1;
    }
    if (args_parse(argc, argv, 2, f.specs, f.n, err, sizeof err)) {
        fprintf(stderr, "nabla eval: %s\n", err);
        return 2;
    }
    if (help || !load) {
        printf("usage: nabla eval --load FILE [options]\n");
        args_usage(f.specs, f.n);
        return help ? 0 : 2;
    }
    if (batch < 1 || threads < 1) {
        fprintf(stderr, "nabla eval: --batch and --threads must be positive\n");
        return 2;
    }
    if (strcmp(weights, "auto") && strcmp(weights, "averaged") && strcmp(weights, "model")) {
        fprintf(stderr, "nabla eval: --weights must be auto, averaged or model, not %s\n", weights);
        return 2;
    }
    /* which weights: the averaged copy (with at least one update) unless told otherwise */
    char avg_desc[256];
    long long avg_count;
    int has_avg = ckpt_cli_averaged(load, avg_desc, sizeof avg_desc, &avg_count);
    if (has_avg < 0) return 1;
    if (!strcmp(weights, "averaged") && !has_avg) {
        fprintf(stderr, "nabla eval: --weights averaged: %s has no averaged weights\n", load);
        return 1;
    }
    bool use_avg = has_avg && (!strcmp(weights, "averaged") || (!strcmp(weights, "auto") && avg_count > 0));
    if (model_cli_check()) {
        ckpt_cli_note_stored();
        return 2;
    }
    if (nb_set_num_threads((int)threads)) {
        fprintf(stderr, "nabla eval: %s\n", nb_last_error());
        return 1;
    }
    nb_mnist test = {0};
    if (nb_mnist_load(data, "t10k", &test)) {
        fprintf(stderr, "nabla eval: data: %s\n", nb_last_error());
        return 1;
    }
    int rc = 1;
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *model = model_cli_build(test.images->shape[1], test.images->shape[2], 10, &rng);
    nb_arena *ar = nb_arena_new(0);
    nb_loader *ld = NULL;
    float *logits = NULL;
    int64_t n = 0;
    double total = 0, correct = 0;
    if (!model || !ar) {
        fprintf(stderr, "nabla eval: model: %s\n", nb_last_error());
        goto done;
    }
    nb_ckpt *ck = ckpt_cli_open(load); /* read by ckpt_cli_averaged already */
    nb_train_state ws = {.model = model};
    int lrc = !ck ? -1 : use_avg ? nb_ckpt_apply_averaged(ck, model) : nb_ckpt_apply(ck, &ws);
    ckpt_cli_release();
    if (lrc) {
        fprintf(stderr, "nabla eval: %s\n", nb_last_error());
        goto done;
    }
    if (use_avg) printf("weights: the averaged ones (%s)\n", avg_desc);
    else if (has_avg) printf("weights: the model's, not its averaged ones (%s)\n", avg_desc);
    else printf("weights: the model's (no averaged weights in the file)\n");
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = batch;
    lo.shuffle = false;
    lo.flatten = model_cli_input().flatten;
    if (!(ld = nb_loader_new(test.images, test.labels, &lo))) goto done;
    int64_t N = test.images->shape[0];
    if (logits_path && !(logits = malloc(sizeof(float) * (size_t)N * 10))) goto done;
    nb_set_grad_enabled(false);
    nb_module_train(model, false);
    nb_cross_entropy_opts co = nb_cross_entropy_defaults();
    co.reduction = NB_REDUCTION_SUM;
    nb_tensor *x, *y;
    int got;
    while (nb_arena_reset(ar), (got = nb_loader_next(ld, ar, &x, &y)) > 0) {
        nb_tensor *out = nb_forward(model, ar, model_cli_prepare(ar, x));
        nb_tensor *l = nb_cross_entropy(ar, out, y, &co), *pred = nb_argmax(ar, out, 1, false);
        if (!l || !pred) {
            got = -1;
            break;
        }
        total += nb_item(l);
        for (int64_t i = 0; i < y->numel; i++) correct += nb_i32(pred)[i] == nb_i32(y)[i];
        if (logits) memcpy(logits + n * 10, out->data, sizeof(float) * (size_t)out->numel);
        n += y->numel;
    }
    if (got < 0) {
        fprintf(stderr, "nabla eval: %s\n", nb_last_error());
        goto done;
    }
    printf("%s: test_loss %.6f  test_acc %.4f  (%lld samples)\n", load, total / (double)n,
           correct / (double)n, (long long)n);
    if (logits && write_npy(logits_path, logits, n, 10)) {
        fprintf(stderr, "nabla eval: cannot write %s\n", logits_path);
        goto done;
    }
    rc = 0;
done:
    free(logits);
    nb_loader_free(ld);
    nb_arena_free(ar);
    nb_module_free(model);
    nb_mnist_free(&test);
    return rc;
}
