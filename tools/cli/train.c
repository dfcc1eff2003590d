/* train.c - `nabla train`: the PyTorch training loop over MNIST-style IDX data.
 *   for each epoch: for each batch: forward, loss, zero_grad, backward, (clip), step;
 *   evaluate; scheduler step; print one line (and one JSON object with --metrics).
 * The metrics file starts with the run's flags ({"flags": {...}}, not when a resume appends),
 * then one line per epoch and, with --log-every N, one line every N steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "cli.h"

typedef struct train_cfg {
    const char *data, *metrics;
    long batch, epochs, seed, threads, limit, log_every;
    bool help;
} train_cfg;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A number for the metrics file: JSON has no NaN or infinity, so those are written as null. */
static void json_num(FILE *f, const char *key, double v, const char *fmt, bool last) {
    fprintf(f, "\"%s\": ", key);
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("null", f);
    fputs(last ? "}\n" : ", ", f);
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

/* The metrics file's first line: every flag that can change the numbers with its value (null
 * when unset: the optimizer's or schedule's default), so `nabla plot` can name runs by the
 * flags in which they differ, and a checksum of the initial weights (the same for the same
 * model and seed). */
static void write_header(FILE *mf, const cli_flags *f, nb_tensor *const *params, int np) {
    static const char *output_only[] = {"help", "metrics", "log-every", "save", "save-every", "resume", "stop-after"};
    fputs("{\"flags\": {", mf);
    bool first = true;
    for (int k = 0; k < f->n; k++) {
        const arg_spec *s = &f->specs[k];
        bool skip = false;
        for (size_t i = 0; i < sizeof output_only / sizeof *output_only; i++) skip |= !strcmp(s->name, output_only[i]);
        if (skip) continue;
        fprintf(mf, "%s\"%s\": ", first ? "" : ", ", s->name);
        first = false;
        switch (s->kind) {
        case ARG_INT: fprintf(mf, "%ld", *(long *)s->dst); break;
        case ARG_DOUBLE:
            if (isfinite(*(double *)s->dst)) fprintf(mf, "%.15g", *(double *)s->dst);
            else fputs("null", mf);
            break;
        case ARG_STRING:
            if (*(const char **)s->dst) json_string(mf, *(const char **)s->dst);
            else fputs("null", mf);
            break;
        case ARG_FLAG: fputs(*(bool *)s->dst ? "true" : "false", mf); break;
        }
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < np; i++) crc = crc32(crc, params[i]->data, (uInt)(sizeof(float) * (size_t)params[i]->numel));
    fprintf(mf, "}, \"init_weights_crc32\": \"%08lx\"}\n", (unsigned long)crc);
}

/* Labels must be class indices 0..classes-1: say so before training rather than mid-epoch. */
static int check_labels(const nb_mnist *m, const char *split, int64_t classes) {
    const nb_tensor *y = m->labels;
    for (int64_t i = 0; i < y->numel; i++)
        if (nb_u8(y)[i] >= classes) {
            fprintf(stderr, "nabla train: data: %s label %d at sample %lld is not a class index 0..%lld\n",
                    split, nb_u8(y)[i], (long long)i, (long long)classes - 1);
            return -1;
        }
    return 0;
}

static int fail(const char *what) {
    fprintf(stderr, "nabla train: %s: %s\n", what, nb_last_error());
    return 1;
}

/* Test loss and accuracy in batches of 1000, without recording a graph. */
static int evaluate(nb_module *model, const nb_mnist *test, nb_arena *ar, double *loss, double *acc) {
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = 1000;
    lo.shuffle = false;
    lo.flatten = model_cli_input().flatten;
    nb_loader *ld = nb_loader_new(test->images, test->labels, &lo);
    if (!ld) return -1;
    bool prev = nb_set_grad_enabled(false);
    nb_module_train(model, false);
    double total = 0, correct = 0;
    int64_t n = 0;
    nb_tensor *x, *y;
    nb_cross_entropy_opts co = nb_cross_entropy_defaults();
    co.reduction = NB_REDUCTION_SUM;
    int rc;
    for (;;) {
        nb_arena_reset(ar);
        if ((rc = nb_loader_next(ld, ar, &x, &y)) <= 0) break;
        nb_tensor *logits = nb_forward(model, ar, model_cli_prepare(ar, x));
        nb_tensor *l = nb_cross_entropy(ar, logits, y, &co);
        nb_tensor *pred = nb_argmax(ar, logits, 1, false);
        if (!l || !pred) {
            rc = -1;
            break;
        }
        total += nb_item(l);
        for (int64_t i = 0; i < y->numel; i++) correct += nb_i32(pred)[i] == nb_i32(y)[i];
        n += y->numel;
    }
    nb_module_train(model, true);
    nb_set_grad_enabled(prev);
    nb_loader_free(ld);
    *loss = total / (double)n;
    *acc = correct / (double)n;
    return rc < 0 ? -1 : 0;
}

/* The progress line on a terminal: epoch k/N, the bar, the running loss, samples/s and the
 * time left for the whole run at this epoch's rate (evaluation excluded). */
static void progress(long epoch, long epochs, int64_t done, int64_t total, double loss, double sps,
                     int64_t samples_left) {
    int width = 24, filled = (int)(width * done / (total ? total : 1));
    long eta = sps > 0 ? (long)((double)samples_left / sps + 0.5) : 0;
    fprintf(stderr, "\r  epoch %ld/%ld [%.*s%*s] %3d%%  loss %.4f  %.0f samples/s  ETA %ld:%02ld:%02ld ", epoch,
            epochs, filled, "########################", width - filled, "", (int)(100 * done / (total ? total : 1)),
            loss, sps, eta / 3600, eta / 60 % 60, eta % 60);
    fflush(stderr);
}

int cmd_train(int argc, char **argv) {
    train_cfg c = {.data = nb_default_data_dir(), .metrics = NULL, .batch = 64, .epochs = 3,
                   .seed = 0, .threads = 1, .limit = 0, .log_every = 0, .help = false};
    cli_flags f = {.n = 0};
    cli_add(&f, (arg_spec){"data", ARG_STRING, &c.data, "folder with the IDX files (default: Fashion-MNIST)", NULL});
    model_cli_flags(&f);
    optim_cli_flags(&f);
    sched_cli_flags(&f);
    swa_cli_flags(&f); /* SWA/EMA (swa_cli.c) */
    cli_add(&f, (arg_spec){"batch", ARG_INT, &c.batch, "batch size (default 64)", NULL});
    cli_add(&f, (arg_spec){"epochs", ARG_INT, &c.epochs, "epochs (default 3)", NULL});
    cli_add(&f, (arg_spec){"seed", ARG_INT, &c.seed, "seed for init and shuffling (default 0)", NULL});
    cli_add(&f, (arg_spec){"threads", ARG_INT, &c.threads, "threads of nabla's pool; OpenBLAS runs 1-thread inside it (default 1)", NULL});
    cli_add(&f, (arg_spec){"metrics", ARG_STRING, &c.metrics, "write one JSON object per epoch to this file", NULL});
    cli_add(&f, (arg_spec){"limit", ARG_INT, &c.limit, "train on the first N samples only (0: all)", NULL});
    cli_add(&f, (arg_spec){"log-every", ARG_INT, &c.log_every, "also write a metrics line every N steps: the mean "
                           "loss of those N batches and the lr (0: off)", NULL});
    ckpt_cli_flags(&f); /* checkpoints: --save, --save-every, --resume, --stop-after */
    cli_add(&f, (arg_spec){"help", ARG_FLAG, &c.help, "this help", NULL});
    char err[256];
    if (ckpt_cli_preparse(argc, argv, &f)) return 2;
    if (args_parse_marking(argc, argv, 2, f.specs, f.n, f.set, err, sizeof err)) {
        fprintf(stderr, "nabla train: %s\n", err);
        return 2;
    }
    if (c.help) {
        printf("usage: nabla train [options]\n");
        args_usage(f.specs, f.n);
        return 0;
    }
    if (c.epochs < 0 || c.batch < 1 || c.limit < 0) {
        fprintf(stderr, "nabla train: --batch must be positive, --epochs and --limit not negative\n");
        return 2;
    }
    if (c.log_every < 0 || (c.log_every && !c.metrics)) {
        fprintf(stderr, "nabla train: --log-every N needs N >= 0 and --metrics FILE\n");
        return 2;
    }
    if (c.threads < 1 || c.threads > 64) {
        fprintf(stderr, "nabla train: --threads must be between 1 and 64, got %ld\n", c.threads);
        return 2;
    }
    if (model_cli_check() || optim_cli_check() || sched_cli_check() || swa_cli_check() || ckpt_cli_check())
        return 2;
    if (nb_set_num_threads((int)c.threads)) return fail("threads");

    nb_mnist train = {0}, test = {0};
    if (nb_mnist_load(c.data, "train", &train) || nb_mnist_load(c.data, "t10k", &test)) {
        fail("data");
        nb_mnist_free(&train);
        return 1;
    }
    if (check_labels(&train, "train", 10) || check_labels(&test, "test", 10)) {
        nb_mnist_free(&train);
        nb_mnist_free(&test);
        return 1;
    }
    if (c.limit && c.limit < train.images->shape[0]) { /* keep the first samples only */
        train.images->numel = train.images->numel / train.images->shape[0] * c.limit;
        train.images->shape[0] = train.labels->shape[0] = train.labels->numel = c.limit;
    }
    int rc = 1;
    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)c.seed);
    nb_module *model = model_cli_build(train.images->shape[1], train.images->shape[2], 10, &rng);
    nb_tensor *params[256];
    int np = model ? nb_module_parameters(model, params, 256) : 0;
    nb_optim *opt = NULL;
    nb_sched *sched = NULL;
    nb_loader *ld = NULL;
    nb_arena *ar = nb_arena_new(0);
    FILE *mf = NULL;
    if (!model) {
        fail("model");
        goto done;
    }
    if (!(opt = optim_cli_build(params, np))) {
        if (nb_last_status()) fail("optimizer");
        goto done;
    }
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = c.batch;
    lo.seed = (uint64_t)c.seed;
    lo.flatten = model_cli_input().flatten;
    if (!(ld = nb_loader_new(train.images, train.labels, &lo)) || !ar) {
        fail("loader");
        goto done;
    }
    bool sched_failed;
    sched = sched_cli_build(opt, nb_loader_num_batches(ld), c.epochs, &sched_failed);
    if (sched_failed || swa_cli_build(opt, params, np)) goto done; /* SWA/EMA (swa_cli.c) */
    ckpt_cli_run ck = {model, opt, sched, &rng, ld, swa_cli_averaged(), swa_cli_swalr()};
    long first_epoch;
    if (ckpt_cli_resume(&ck, &first_epoch)) goto done;
    if (first_epoch > 1) swa_cli_resumed(first_epoch - 1);
    /* a resumed run continues the metrics file of the run it resumes */
    if (c.metrics && !(mf = fopen(c.metrics, first_epoch > 1 ? "a" : "w"))) {
        fprintf(stderr, "nabla train: cannot write %s\n", c.metrics);
        goto done;
    }
    if (mf && first_epoch == 1) write_header(mf, &f, params, np);
    bool tty = isatty(2);
    int64_t nbatches = nb_loader_num_batches(ld), step = (first_epoch - 1) * nbatches;
    double window = 0; /* the summed losses of the steps since the last --log-every line */
    printf("nabla %s: %s, %s lr %g, batch %ld, %ld epochs, %lld train / %lld test samples\n",
           nb_version(), model_cli_describe(), optim_cli_name(), nb_optim_get(opt, 0, "lr"), c.batch,
           c.epochs, (long long)train.images->shape[0], (long long)test.images->shape[0]);
    for (long epoch = first_epoch; epoch <= c.epochs; epoch++) {
        double lr = nb_optim_get(opt, 0, "lr"), loss_sum = 0;
        int64_t seen = 0, b = 0;
        nb_tensor *x, *y;
        double t0 = now();
        for (;;) {
            nb_arena_reset(ar);
            int got = nb_loader_next(ld, ar, &x, &y);
            if (got < 0) { fail("loader"); goto done; }
            if (got == 0) break;
            double step_lr = nb_optim_get(opt, 0, "lr"); /* the lr of this step (per-batch schedules move it) */
            nb_tensor *logits = nb_forward(model, ar, model_cli_prepare(ar, x));
            nb_tensor *loss = nb_cross_entropy(ar, logits, y, NULL);
            if (!loss) { fail("forward"); goto done; }
            nb_optim_zero_grad(opt, true);
            if (nb_backward(loss) || optim_cli_clip(params, np) ||
                optim_cli_step(opt, model, x, y, params, np) ||
                swa_cli_after_batch(sched)) { /* EMA update, then the per-batch schedule step */
                fail("step");
                goto done;
            }
            loss_sum += nb_item(loss) * (double)y->numel;
            seen += y->numel;
            window += nb_item(loss);
            step++;
            if (c.log_every && step % c.log_every == 0) {
                fprintf(mf, "{\"step\": %lld, \"epoch\": %ld, ", (long long)step, epoch);
                json_num(mf, "loss", window / (double)c.log_every, "%.6f", false);
                json_num(mf, "lr", step_lr, "%.10g", true);
                window = 0;
            }
            if (tty && (++b % 50 == 0 || b == nbatches)) {
                double sps = (double)seen / (now() - t0);
                progress(epoch, c.epochs, b, nbatches, loss_sum / (double)seen, sps,
                         (nbatches - b) * c.batch + (c.epochs - epoch) * (int64_t)train.images->shape[0]);
            }
        }
        double secs = now() - t0;
        if (tty) fprintf(stderr, "\r%110s\r", "");
        double test_loss, test_acc;
        /* SWA/EMA (swa_cli.c): fold in this epoch's weights, evaluate the averaged ones */
        if (swa_cli_epoch_end(epoch) || swa_cli_swap()) { fail("averaging"); goto done; }
        int erc = evaluate(model, &test, ar, &test_loss, &test_acc);
        if (swa_cli_swap() || erc) { fail("evaluate"); goto done; }
        double sps = (double)seen / secs;
        printf("epoch %ld/%ld  train_loss %.4f  test_loss %.4f  test_acc %.4f  lr %g  %.2fs  %.0f samples/s\n",
               epoch, c.epochs, loss_sum / (double)seen, test_loss, test_acc, lr, secs, sps);
        fflush(stdout);
        if (mf) {
            fprintf(mf, "{\"epoch\": %ld, \"step\": %lld, ", epoch, (long long)step);
            json_num(mf, "train_loss", loss_sum / (double)seen, "%.6f", false);
            json_num(mf, "test_loss", test_loss, "%.6f", false);
            json_num(mf, "test_acc", test_acc, "%.4f", false);
            json_num(mf, "lr", lr, "%.10g", false);
            json_num(mf, "seconds", secs, "%.6f", false);
            json_num(mf, "samples_per_sec", sps, "%.1f", true);
            fflush(mf);
        }
        if (swa_cli_after_epoch(sched, test_loss)) { fail("scheduler"); goto done; } /* SWALR or the schedule */
        bool stop;
        if (ckpt_cli_end_epoch(&ck, &f, epoch, c.epochs, &stop)) goto done;
        if (stop) break;
    }
    rc = 0;
done:
    if (mf && fclose(mf)) {
        fprintf(stderr, "nabla train: error writing %s\n", c.metrics);
        rc = 1;
    }
    nb_arena_free(ar);
    nb_loader_free(ld);
    swa_cli_free();
    nb_sched_free(sched);
    nb_optim_free(opt);
    nb_module_free(model);
    nb_mnist_free(&train);
    nb_mnist_free(&test);
    return rc;
}
