/* train.c - `nabla train`: the PyTorch training loop over a dataset (data_cli.c).
 *   for each epoch: for each batch: forward, loss, zero_grad, backward, (clip), step;
 *   evaluate the validation and test parts; scheduler step (ReduceLROnPlateau on the validation
 *   loss when there is a validation part); early stopping and the best checkpoint on the
 *   validation loss; print one line (and one JSON object with --metrics).
 * The metrics file starts with the run's flags ({"flags": {...}}, not when a resume appends),
 * then one line per epoch and, with --log-every N, one line every N steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cJSON.h>
#include <zlib.h>
#include "cli.h"

typedef struct train_cfg {
    const char *metrics, *save_best, *precision;
    long batch, epochs, seed, threads, limit, log_every, patience;
    bool help;
} train_cfg;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
    static const char *output_only[] = {"help", "metrics", "log-every", "save", "save-every", "resume", "stop-after",
                                        "save-best"};
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

/* The cross-entropy of some rows of a batch, summed: the loss of a half of a split step. */
static nb_tensor *split_loss(nb_arena *ar, nb_tensor *out, nb_tensor *y, void *user) {
    (void)user;
    return cli_loss(ar, out, y, true);
}

static int fail(const char *what) {
    fprintf(stderr, "nabla train: %s: %s\n", what, nb_last_error());
    return 1;
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

static int train(int argc, char **argv) {
    train_cfg c = {.metrics = NULL, .save_best = NULL, .precision = "fp32", .batch = 64, .epochs = 3, .seed = 0, .threads = 1,
                   .limit = 0, .log_every = 0, .patience = 0, .help = false};
    cli_flags f = {.n = 0};
    data_cli_flags(&f); /* --data, --train, --test, --target-col, --test-split, ... (data_cli.c) */
    model_cli_flags(&f);
    optim_cli_flags(&f);
    sched_cli_flags(&f);
    swa_cli_flags(&f); /* SWA/EMA (swa_cli.c) */
    cli_add(&f, (arg_spec){"batch", ARG_INT, &c.batch, "batch size (default 64)", NULL});
    cli_add(&f, (arg_spec){"epochs", ARG_INT, &c.epochs, "epochs (default 3)", NULL});
    cli_add(&f, (arg_spec){"seed", ARG_INT, &c.seed, "seed for init, shuffling and the splits (default 0)", NULL});
    cli_add(&f, (arg_spec){"threads", ARG_INT, &c.threads, "threads of nabla's pool; OpenBLAS runs 1-thread inside it (default 1)", NULL});
    cli_add(&f, (arg_spec){"precision", ARG_STRING, &c.precision, "fp32, or bf16: bfloat16 autocast of the matrix products (default fp32)", NULL});
    cli_add(&f, (arg_spec){"metrics", ARG_STRING, &c.metrics, "write one JSON object per epoch to this file", NULL});
    cli_add(&f, (arg_spec){"limit", ARG_INT, &c.limit, "train on the first N samples of the training part only (0: all)", NULL});
    cli_add(&f, (arg_spec){"log-every", ARG_INT, &c.log_every, "also write a metrics line every N steps: the mean "
                           "loss of those N batches and the lr (0: off)", NULL});
    cli_add(&f, (arg_spec){"early-stop", ARG_INT, &c.patience, "stop when the validation loss has not improved for N epochs (0: never)", NULL});
    cli_add(&f, (arg_spec){"save-best", ARG_STRING, &c.save_best, "save a checkpoint here whenever the validation loss improves", NULL});
    ckpt_cli_flags(&f); /* checkpoints: --save, --save-every, --resume, --stop-after */
    dist_cli_flags(&f); /* under mpirun: --dist-timeout */
    cli_add(&f, (arg_spec){"help", ARG_FLAG, &c.help, "this help", NULL});
    char err[256];
    if (ckpt_cli_preparse(argc, argv, &f)) return 2;
    if (args_parse_marking(argc, argv, 2, f.specs, f.n, f.set, err, sizeof err)) {
        fprintf(stderr, "nabla train: %s\n", err);
        return 2;
    }
    if (c.help) {
        printf("usage: nabla train [options]\n");
        cli_usage(&f);
        return 0;
    }
    if (c.epochs < 0 || c.batch < 1 || c.limit < 0) {
        fprintf(stderr, "nabla train: --batch must be positive, --epochs and --limit not negative\n");
        ckpt_cli_note_stored();
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
    if (c.patience < 0) {
        fprintf(stderr, "nabla train: --early-stop must be >= 0\n");
        return 2;
    }
    nb_dtype autocast;
    if (cli_precision("nabla train", c.precision, &autocast)) return 2;
    if (data_cli_check(DATA_TRAIN) || model_cli_check() || optim_cli_check() || sched_cli_check() ||
        swa_cli_check() || ckpt_cli_check() || dist_cli_check()) {
        ckpt_cli_note_stored();
        return 2;
    }
    if (nb_set_num_threads((int)c.threads)) return fail("threads");

    data_run d;
    if (data_cli_load(&d, false, c.seed, c.limit, NULL)) {
        data_cli_free(&d);
        return 1;
    }
    if ((c.patience || c.save_best) && !d.val) {
        fprintf(stderr, "nabla train: --early-stop and --save-best watch the validation loss: add --val-split F\n");
        data_cli_free(&d);
        return 2;
    }
    if (model_cli_check_input(d.ndim, d.shape)) {
        data_cli_free(&d);
        return 2;
    }
    bool regress = d.task == NB_REGRESS;
    int rc = 1;
    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)c.seed);
    nb_module *model = model_cli_build_for(d.ndim, d.shape, d.outputs, &rng);
    nb_tensor *params[256];
    int np = model ? nb_module_parameters(model, params, 256) : 0;
    nb_optim *opt = NULL;
    nb_sched *sched = NULL;
    nb_loader *ld = NULL;
    nb_batch_split *split = NULL;
    nb_sampler *shard = NULL; /* under mpirun: this process's part of each epoch */
    nb_arena *ar = nb_arena_new(0);
    FILE *mf = NULL;
    char *data_json = data_cli_json(&d, c.seed);
    early_stop es = {INFINITY, 0, 0};
    if (!model) {
        fail("model");
        goto done;
    }
    if (!(opt = optim_cli_build(params, np))) {
        if (nb_last_status()) fail("optimizer");
        ckpt_cli_note_stored();
        goto done;
    }
    /* Batches of 64 and more of class ids run as two halves, one per core with --threads 2
     * (nb_batch_split); the halves, not the thread count, fix the numbers. Models with batch
     * norm or dropout are refused by the splitter and run whole; so do 2 and more processes
     * under mpirun, whose gradients DDP averages as backward writes them. The loader puts the
     * batch's even samples in the first half and its odd ones in the second, as a
     * DistributedSampler deals them to two processes: so 1 process x 64 adds the same two
     * 32-sample gradients as 2 processes x 32 do, and ends with the same bits. */
    if (!regress && c.batch >= 64 && dist_cli_size() <= 1 && !(split = nb_batch_split_new(model, 2))) nb_clear_error();
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = c.batch;
    lo.seed = (uint64_t)c.seed;
    lo.flatten = model_cli_input().flatten;
    lo.interleave = split ? 2 : 0;
    if (dist_cli_on() && !(shard = dist_cli_sampler(d.train->len, c.seed))) goto done;
    if (!(ld = nb_loader_over(d.train, shard, &lo)) || !ar) {
        fail("loader");
        goto done;
    }
    nb_arena_set_autocast(ar, autocast); /* training and evaluation */
    if (dist_cli_setup(model, opt, &f, d.train)) goto done; /* the same run everywhere; DDP */
    bool sched_failed;
    sched = sched_cli_build(opt, nb_loader_num_batches(ld), c.epochs, &sched_failed);
    if (sched_failed || swa_cli_build(opt, params, np)) { /* SWA/EMA (swa_cli.c) */
        ckpt_cli_note_stored();
        goto done;
    }
    ckpt_cli_run ck = {model, opt, sched, &rng, ld, swa_cli_averaged(), swa_cli_swalr(),
                       d.normalize ? &d.part : NULL, d.normalize, data_json, &es};
    long first_epoch;
    if (ckpt_cli_resume(&ck, &first_epoch)) goto done;
    if (data_cli_apply_norm(&d)) goto done; /* the statistics of the training part (or of the resumed run) */
    if (first_epoch > 1) swa_cli_resumed(first_epoch - 1);
    if (first_epoch > 1 && sched_cli_per_batch() && /* before training, not at its first step */
        sched_cli_check_resumed(sched, swa_cli_sched_epochs(first_epoch, c.epochs) * nb_loader_num_batches(ld),
                                c.epochs - first_epoch + 1))
        goto done;
    /* a resumed run continues the metrics file of the run it resumes */
    if (c.metrics && dist_cli_rank() == 0 && !(mf = fopen(c.metrics, first_epoch > 1 ? "a" : "w"))) {
        fprintf(stderr, "nabla train: cannot write %s\n", c.metrics);
        goto done;
    }
    if (mf && first_epoch == 1) write_header(mf, &f, params, np);
    bool tty = isatty(2) && dist_cli_rank() == 0;
    int64_t nbatches = nb_loader_num_batches(ld), step = (first_epoch - 1) * nbatches;
    double window = 0; /* the summed losses of the steps since the last --log-every line */
    char parts[96];
    int at = snprintf(parts, sizeof parts, "%lld train", (long long)d.train->len);
    if (d.val) at += snprintf(parts + at, sizeof parts - (size_t)at, " / %lld val", (long long)d.val->len);
    if (d.test) snprintf(parts + at, sizeof parts - (size_t)at, " / %lld test", (long long)d.test->len);
    char batch[64];
    if (dist_cli_on()) snprintf(batch, sizeof batch, "%ld per process x %d processes", c.batch, dist_cli_size());
    else snprintf(batch, sizeof batch, "%ld", c.batch);
    printf("nabla %s: %s, %s lr %g, batch %s, %ld epochs, %s samples%s%s\n", nb_version(), model_cli_describe(),
           optim_cli_name(), nb_optim_get(opt, 0, "lr"), batch, c.epochs, parts, d.normalize ? " (normalized)" : "",
           cli_precision_note(autocast));
    if (c.patience && es.bad >= c.patience) {
        printf("early stopping: the validation loss has not improved since epoch %ld\n", es.best_epoch);
        c.epochs = first_epoch - 1;
    }
    for (long epoch = first_epoch; epoch <= c.epochs; epoch++) {
        double lr = nb_optim_get(opt, 0, "lr"), loss_sum = 0;
        int64_t seen = 0, b = 0;
        nb_tensor *x, *y;
        dist_cli_epoch_begin(shard, epoch);
        double t0 = now();
        for (;;) {
            nb_arena_reset(ar);
            int got = nb_loader_next(ld, ar, &x, &y);
            if (got < 0) { fail("loader"); goto done; }
            if (got == 0) break;
            double step_lr = nb_optim_get(opt, 0, "lr"); /* the lr of this step (per-batch schedules move it) */
            nb_tensor *in = model_cli_prepare(ar, x);
            double batch_loss;
            nb_optim_zero_grad(opt, true);
            if (split) { /* the halves' cross-entropies summed, / batch */
                if (nb_batch_split_step(split, ar, in, y, split_loss, NULL, &batch_loss)) { fail("step"); goto done; }
            } else {
                nb_tensor *loss = cli_loss(ar, nb_forward(model, ar, in), y, false); /* cross-entropy or MSE */
                if (!loss) { fail("forward"); goto done; }
                if (nb_backward(loss)) { fail("step"); goto done; }
                batch_loss = nb_item(loss);
            }
            if (optim_cli_clip(params, np) ||
                optim_cli_step(opt, model, in, y, params, np) ||
                swa_cli_after_batch(sched)) { /* EMA update, then the per-batch schedule step */
                fail("step");
                goto done;
            }
            loss_sum += batch_loss * (double)x->shape[0];
            seen += x->shape[0];
            window += batch_loss;
            step++;
            if (c.log_every && step % c.log_every == 0) {
                window = dist_cli_mean(window); /* under mpirun: every process's batches */
                if (mf) {
                    fprintf(mf, "{\"step\": %lld, \"epoch\": %ld, ", (long long)step, epoch);
                    cli_json_num(mf, "loss", window / (double)c.log_every, "%.6f", false);
                    cli_json_num(mf, "lr", step_lr, "%.10g", true);
                }
                window = 0;
            }
            if (tty && (++b % 50 == 0 || b == nbatches)) {
                double sps = (double)seen / (now() - t0);
                progress(epoch, c.epochs, b, nbatches, loss_sum / (double)seen, sps,
                         (nbatches - b) * c.batch + (c.epochs - epoch) * nb_loader_num_samples(ld));
            }
        }
        double secs = now() - t0, totals[2] = {loss_sum, (double)seen};
        if (tty) fprintf(stderr, "\r%110s\r", "");
        if (dist_cli_sum(totals, 2)) goto done; /* under mpirun: the epoch of every process */
        loss_sum = totals[0];
        seen = (int64_t)totals[1];
        cli_metrics val = {0}, test = {0};
        /* SWA/EMA (swa_cli.c): fold in this epoch's weights, evaluate the averaged ones */
        if (swa_cli_epoch_end(epoch) || swa_cli_swap()) { fail("averaging"); goto done; }
        /* batches of 256: they share the training arena, which grows to the larger of a step and
         * an evaluation batch (at 1000, LeNet's activations alone took 65 MB, four times a step) */
        int erc = (d.val && cli_evaluate(model, d.val, 256, ar, &val, NULL, NULL)) ||
                  (d.test && cli_evaluate(model, d.test, 256, ar, &test, NULL, NULL));
        if (swa_cli_swap() || erc) { fail("evaluate"); goto done; }
        double train_loss = loss_sum / (double)seen, sps = (double)seen / secs;
        char vt[128] = "", tt[128] = "";
        if (d.val) cli_metrics_text(vt, sizeof vt, "val", &val, regress);
        if (d.test) cli_metrics_text(tt, sizeof tt, "test", &test, regress);
        printf("epoch %ld/%ld  train_loss %.4f%s%s  lr %g  %.2fs  %.0f samples/s\n", epoch, c.epochs, train_loss, vt, tt,
               lr, secs, sps);
        fflush(stdout);
        if (mf) {
            fprintf(mf, "{\"epoch\": %ld, \"step\": %lld, ", epoch, (long long)step);
            cli_json_num(mf, "train_loss", train_loss, "%.6f", false);
            if (d.val) cli_metrics_json(mf, "val", &val, regress);
            if (d.test) cli_metrics_json(mf, "test", &test, regress);
            cli_json_num(mf, "lr", lr, "%.10g", false);
            cli_json_num(mf, "seconds", secs, "%.6f", false);
            if (dist_cli_on()) { /* rank 0's time in MPI for the gradients, per step */
                fprintf(mf, "\"processes\": %d, ", dist_cli_size());
                cli_json_num(mf, "allreduce_ms_per_step", dist_cli_allreduce_ms(), "%.4f", false);
            }
            cli_json_num(mf, "samples_per_sec", sps, "%.1f", true);
            fflush(mf);
        }
        /* model selection sees the validation loss; the test set is only reported */
        double watched = d.val ? val.loss : d.test ? test.loss : train_loss;
        if (swa_cli_after_epoch(sched, watched)) { fail("scheduler"); goto done; } /* SWALR or the schedule */
        bool improved = d.val && val.loss < es.best, stop;
        if (improved) es = (early_stop){val.loss, epoch, 0};
        else if (d.val) es.bad++;
        if (improved && c.save_best && ckpt_cli_save(&ck, &f, c.save_best, epoch)) goto done;
        bool early = c.patience && es.bad >= c.patience;
        if (early)
            printf("early stopping: the validation loss has not improved for %ld epochs (best %.4f at epoch %ld)\n",
                   es.bad, es.best, es.best_epoch);
        if (ckpt_cli_end_epoch(&ck, &f, epoch, early ? epoch : c.epochs, &stop)) goto done;
        if (stop || early) break;
    }
    rc = 0;
done:
    if (mf && fclose(mf)) {
        fprintf(stderr, "nabla train: error writing %s\n", c.metrics);
        rc = 1;
    }
    cJSON_free(data_json);
    nb_batch_split_free(split);
    nb_arena_free(ar);
    nb_loader_free(ld);
    nb_sampler_free(shard);
    swa_cli_free();
    nb_sched_free(sched);
    nb_optim_free(opt);
    dist_cli_unwrap();
    nb_module_free(model);
    data_cli_free(&d);
    return rc;
}

int cmd_train(int argc, char **argv) {
    if (dist_cli_init()) return 1; /* under mpirun: join the job first (a resume reads on rank 0) */
    return dist_cli_end(train(argc, argv));
}
