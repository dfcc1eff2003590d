/* eval_cli.c - `nabla eval --load FILE`: test loss and accuracy (or RMSE and MAE) of a saved
 * model, and with --confusion its confusion matrix and per-class precision, recall and F1.
 * The model is rebuilt from the flags stored in the checkpoint ("cli.model"; model flags on the
 * command line override them) for the input and outputs the checkpoint records ("cli.data"),
 * then its weights are loaded: a full checkpoint, a weights file or a converted PyTorch
 * state_dict. The data are read as in training (data_cli.c: --data DIR, --test FILE, or --train
 * FILE for the run's --test-split part), normalised with the run's statistics. A checkpoint of
 * a run with --swa-start/--ema is evaluated with its averaged weights, as `nabla train` reported
 * them (--weights model: the trained ones); the first line says which. --logits writes the
 * outputs as a .npy file. */
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
    const char *load = NULL, *logits_path = NULL, *weights = "auto", *precision = "fp32";
    long batch = 256, threads = 1;
    bool help = false, confusion = false;
    cli_flags f = {.n = 0};
    cli_add(&f, (arg_spec){"load", ARG_STRING, &load, "checkpoint or weights file to evaluate", NULL});
    data_cli_flags(&f);
    model_cli_flags(&f);
    cli_add(&f, (arg_spec){"batch", ARG_INT, &batch, "evaluation batch size (default 256)", NULL});
    cli_add(&f, (arg_spec){"threads", ARG_INT, &threads, "threads (default 1)", NULL});
    cli_add(&f, (arg_spec){"precision", ARG_STRING, &precision, "fp32, or bf16: bfloat16 autocast of the matrix products (default fp32)", NULL});
    cli_add(&f, (arg_spec){"weights", ARG_STRING, &weights, "auto (averaged SWA/EMA weights when the checkpoint has them), averaged or model", NULL});
    cli_add(&f, (arg_spec){"logits", ARG_STRING, &logits_path, "write the outputs [N, classes or targets] to this .npy file", NULL});
    cli_add(&f, (arg_spec){"confusion", ARG_FLAG, &confusion, "print the confusion matrix and per-class precision, recall and F1", NULL});
    cli_add(&f, (arg_spec){"help", ARG_FLAG, &help, "this help", NULL});
    char err[256];
    data_info info = {0};
    for (int i = 2; i < argc; i++) { /* the checkpoint's model and data settings first, argv overrides them */
        const char *p = !strcmp(argv[i], "--load") && i + 1 < argc ? argv[i + 1]
                        : !strncmp(argv[i], "--load=", 7)           ? argv[i] + 7 : NULL;
        if (p && (ckpt_cli_model_defaults(p) || data_cli_stored(ckpt_cli_open(p), &info))) return 1;
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
    if (data_cli_check(DATA_EVAL) || model_cli_check()) {
        ckpt_cli_note_stored();
        return 2;
    }
    if (confusion && data_cli_regress()) {
        fprintf(stderr, "nabla eval: --confusion is for classification\n");
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
    nb_dtype autocast;
    if (cli_precision("nabla eval", precision, &autocast)) return 2;
    if (nb_set_num_threads((int)threads)) {
        fprintf(stderr, "nabla eval: %s\n", nb_last_error());
        return 1;
    }
    data_run d;
    int rc = 1;
    nb_module *model = NULL;
    nb_arena *ar = nb_arena_new(0);
    float *logits = NULL;
    int64_t *cm = NULL;
    if (data_cli_load(&d, true, info.seed, 0, &info)) goto done;
    if (!info.known) { /* a checkpoint of before "cli.data": MNIST-style data, 10 classes */
        info.ndim = d.ndim;
        memcpy(info.shape, d.shape, sizeof info.shape);
        info.outputs = 10;
    }
    if (model_cli_check_input(info.ndim, info.shape)) goto done;
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    model = model_cli_build_for(info.ndim, info.shape, info.outputs, &rng);
    if (!model || !ar) {
        fprintf(stderr, "nabla eval: model: %s\n", nb_last_error());
        goto done;
    }
    nb_arena_set_autocast(ar, autocast);
    nb_ckpt *ck = ckpt_cli_open(load); /* read by ckpt_cli_averaged already */
    nb_train_state ws = {.model = model};
    int lrc = !ck ? -1 : use_avg ? nb_ckpt_apply_averaged(ck, model) : nb_ckpt_apply(ck, &ws);
    if (lrc) {
        fprintf(stderr, "nabla eval: %s\n", nb_last_error());
        goto done;
    }
    if (data_cli_norm_from(&d, ck)) goto done; /* the training part's statistics */
    ckpt_cli_release();
    if (use_avg) printf("weights: the averaged ones (%s)\n", avg_desc);
    else if (has_avg) printf("weights: the model's, not its averaged ones (%s)\n", avg_desc);
    else printf("weights: the model's (no averaged weights in the file)\n");
    int64_t N = d.test->len, C = info.outputs;
    if (logits_path && !(logits = malloc(sizeof(float) * (size_t)(N * C)))) goto done;
    if (confusion && !(cm = calloc((size_t)(C * C), sizeof *cm))) goto done;
    cli_metrics m;
    if (cli_evaluate(model, d.test, batch, ar, &m, cm, logits)) {
        fprintf(stderr, "nabla eval: %s\n", nb_last_error());
        goto done;
    }
    char text[128];
    cli_metrics_text(text, sizeof text, "test", &m, d.task == NB_REGRESS);
    printf("%s:%s  (%lld samples)\n", load, text + 1, (long long)m.n);
    if (cm) cli_print_confusion(cm, C);
    if (logits && write_npy(logits_path, logits, N, C)) {
        fprintf(stderr, "nabla eval: cannot write %s\n", logits_path);
        goto done;
    }
    rc = 0;
done:
    free(logits);
    free(cm);
    nb_arena_free(ar);
    nb_module_free(model);
    data_cli_free(&d);
    return rc;
}
