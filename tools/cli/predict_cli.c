/* predict_cli.c - `nabla predict --load CK --input FILE --out preds.csv`: the model's prediction
 * for every sample of FILE, one CSV row each:
 *   classification: class,prob_0,...,prob_{C-1}   (the argmax and the softmax probabilities)
 *   regression:     prediction (or prediction_0,...,prediction_{k-1})
 * FILE is read as the training data were (data_cli.c: .csv[.gz], .tsv, .npy, with the run's
 * delimiter and skipped lines), with or without the target column: a row of the training
 * file's width has its target column dropped. An IDX image file (uint8 [N, H, W]) is read as
 * x/255. The model and its normalisation come from the checkpoint, as for nabla eval. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

/* FILE as unlabeled samples of the model's shape (NULL, printed, if it does not fit). */
static nb_dataset *read_input(const char *path, const data_info *info, nb_tensor **own_x) {
    int64_t F = 1;
    for (int i = 0; i < info->ndim; i++) F *= info->shape[i];
    nb_read_opts o = data_cli_read_opts(NB_UNLABELED, 0);
    nb_dataset *ds = NULL;
    if (!data_cli_is_table(path)) { /* IDX images, scaled x/255 as in training */
        nb_tensor *img = nb_idx_load(path);
        if (!img || img->ndim < 2) {
            fprintf(stderr, "nabla predict: %s: %s\n", path, img ? "IDX images must be [N, ...]" : nb_last_error());
            nb_tensor_free(img);
            return NULL;
        }
        *own_x = nb_empty(NULL, NB_FLOAT32, img->ndim, img->shape);
        for (int64_t i = 0; *own_x && i < img->numel; i++) nb_f32(*own_x)[i] = (float)nb_u8(img)[i] / 255.0f;
        ds = *own_x ? nb_dataset_arrays(nb_f32(*own_x), img->ndim, img->shape, NULL, NB_UNLABELED, 0) : NULL;
        nb_tensor_free(img);
        if (!ds) fprintf(stderr, "nabla predict: %s: %s\n", path, nb_last_error());
    } else if ((ds = data_cli_read(path, &o)) && ds->features == F + 1 && info->ndim == 1) {
        nb_dataset_free(ds); /* the training file's layout: drop its target column */
        o.task = NB_REGRESS;
        ds = data_cli_read(path, &o);
    }
    if (!ds) return NULL;
    if (ds->ndim != info->ndim || memcmp(ds->shape, info->shape, sizeof(int64_t) * (size_t)ds->ndim)) {
        fprintf(stderr, "nabla predict: %s has samples of %lld values; the model takes %lld%s\n", path,
                (long long)ds->features, (long long)F, info->ndim == 1 ? " (or one more: the target column)" : "");
        nb_dataset_free(ds);
        return NULL;
    }
    return ds;
}

int cmd_predict(int argc, char **argv) {
    const char *load = NULL, *input = NULL, *out = NULL;
    long batch = 1000;
    bool help = false;
    cli_flags f = {.n = 0};
    cli_add(&f, (arg_spec){"load", ARG_STRING, &load, "checkpoint of the model (nabla train --save / --save-best)", NULL});
    cli_add(&f, (arg_spec){"input", ARG_STRING, &input, "samples to predict: .csv[.gz], .tsv, .npy, or IDX images", NULL});
    cli_add(&f, (arg_spec){"out", ARG_STRING, &out, "write the predictions to this CSV file", NULL});
    data_cli_flags(&f); /* the reader's options: --target-col, --skip-rows, --delimiter (from the checkpoint) */
    model_cli_flags(&f);
    cli_add(&f, (arg_spec){"batch", ARG_INT, &batch, "batch size (default 1000)", NULL});
    cli_add(&f, (arg_spec){"help", ARG_FLAG, &help, "this help", NULL});
    data_info info = {0};
    for (int i = 2; i < argc; i++) { /* the checkpoint's model and data settings first */
        const char *p = !strcmp(argv[i], "--load") && i + 1 < argc ? argv[i + 1]
                        : !strncmp(argv[i], "--load=", 7)           ? argv[i] + 7 : NULL;
        if (p && (ckpt_cli_model_defaults(p) || data_cli_stored(ckpt_cli_open(p), &info))) return 1;
    }
    char err[256];
    if (args_parse(argc, argv, 2, f.specs, f.n, err, sizeof err)) {
        fprintf(stderr, "nabla predict: %s\n", err);
        return 2;
    }
    if (help || !load || !input || !out) {
        printf("usage: nabla predict --load CK --input FILE --out preds.csv [options]\n");
        args_usage(f.specs, f.n);
        return help ? 0 : 2;
    }
    if (batch < 1) {
        fprintf(stderr, "nabla predict: --batch must be positive\n");
        return 2;
    }
    if (data_cli_check(DATA_PREDICT) || model_cli_check()) {
        ckpt_cli_note_stored();
        return 2;
    }
    nb_ckpt *ck = ckpt_cli_open(load);
    if (!ck) {
        fprintf(stderr, "nabla predict: %s\n", nb_last_error());
        return 1;
    }
    if (!info.known) { /* a checkpoint of before "cli.data": 28x28 images, 10 classes */
        info = (data_info){.known = true, .task = NB_CLASSIFY, .ndim = 2, .shape = {28, 28}, .outputs = 10};
    }
    int rc = 1;
    nb_tensor *own_x = NULL;
    nb_dataset *ds = NULL;
    nb_module *model = NULL;
    nb_loader *ld = NULL;
    nb_arena *ar = nb_arena_new(0);
    FILE *fp = NULL;
    data_run d = {.normalize = info.normalize};
    if (!(ds = read_input(input, &info, &own_x)) || model_cli_check_input(info.ndim, info.shape)) goto done;
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    model = model_cli_build_for(info.ndim, info.shape, info.outputs, &rng);
    nb_train_state ws = {.model = model};
    if (!model || !ar || nb_ckpt_apply(ck, &ws)) {
        fprintf(stderr, "nabla predict: %s\n", nb_last_error());
        goto done;
    }
    if (d.normalize) { /* the run's statistics, applied to the input */
        int64_t F = ds->features;
        d.source[0] = ds;
        d.mean = nb_zeros(NULL, 1, &F);
        d.std = nb_ones(NULL, 1, &F);
        d.norm[0] = (nb_named_tensor){"mean", d.mean};
        d.norm[1] = (nb_named_tensor){"std", d.std};
        if (!d.mean || !d.std || data_cli_norm_from(&d, ck)) goto done;
    }
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = batch;
    lo.shuffle = false;
    lo.flatten = model_cli_input().flatten;
    if (!(ld = nb_loader_over(ds, NULL, &lo))) goto done;
    if (!(fp = fopen(out, "w"))) {
        fprintf(stderr, "nabla predict: cannot write %s\n", out);
        goto done;
    }
    bool cls = info.task == NB_CLASSIFY;
    int64_t C = info.outputs;
    if (cls) { /* class,prob_0,...  or  prediction  or  prediction_0,... */
        fputs("class", fp);
        for (int64_t j = 0; j < C; j++) fprintf(fp, ",prob_%lld", (long long)j);
    } else if (C == 1) {
        fputs("prediction", fp);
    } else {
        for (int64_t j = 0; j < C; j++) fprintf(fp, "%sprediction_%lld", j ? "," : "", (long long)j);
    }
    fputc('\n', fp);
    nb_set_grad_enabled(false);
    nb_module_train(model, false);
    nb_tensor *x, *y;
    int got;
    while (nb_arena_reset(ar), (got = nb_loader_next(ld, ar, &x, &y)) > 0) {
        nb_tensor *o = nb_forward(model, ar, model_cli_prepare(ar, x));
        nb_tensor *p = cls ? nb_softmax(ar, o, 1) : o, *k = cls ? nb_argmax(ar, o, 1, false) : o;
        if (!p || !k) {
            got = -1;
            break;
        }
        for (int64_t i = 0; i < x->shape[0]; i++) {
            if (cls) fprintf(fp, "%d", nb_i32(k)[i]);
            for (int64_t j = 0; j < C; j++) fprintf(fp, "%s%.9g", cls || j ? "," : "", (double)nb_f32(p)[i * C + j]);
            fputc('\n', fp);
        }
    }
    if (got < 0) {
        fprintf(stderr, "nabla predict: %s\n", nb_last_error());
        goto done;
    }
    printf("%s: %lld predictions (%s) from %s\n", out, (long long)ds->len,
           cls ? "class and probabilities" : "regression outputs", load);
    rc = 0;
done:
    if (fp && fclose(fp)) {
        fprintf(stderr, "nabla predict: error writing %s\n", out);
        rc = 1;
    }
    nb_loader_free(ld);
    nb_arena_free(ar);
    nb_module_free(model);
    nb_dataset_free(ds);
    nb_tensor_free(own_x);
    nb_tensor_free(d.mean);
    nb_tensor_free(d.std);
    return rc;
}
