/* test_dist.c - data-parallel training across processes (nabla/dist.h): tests/dist_worker.c run
 * under `mpirun --oversubscribe -np N`, over shared memory and again over TCP (--mca btl
 * tcp,self, the path between machines).
 *
 * - 2 processes x batch 32 (and 3 x 32) train as 1 process x batch 64 (3 x 32 as 1 x 96):
 *   every step's averaged gradient is the global batch's (checked inside the worker), and the
 *   weights after 20 steps are within 1e-5 of each other (relative to each tensor's largest
 *   element), for SGD with momentum and Adam, on the MLP and on LeNet, with gradient
 *   accumulation (no-sync) and with small buckets too;
 * - runs are bit-identical: twice the same, over TCP or shared memory, any bucket size;
 * - a parameter one process does not use is averaged with zeros; BatchNorm buffers are rank 0's
 *   (or each process's when not broadcast);
 * - different models or hyperparameters are refused at start on every process, with the first
 *   difference named; a process that never joins makes the others time out, not hang.
 * Without MPI (built without it, or no mpirun) the whole program reports itself skipped. */
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "common.h"
#include "svgcheck.h" /* slurp_file */

#define WORKER NB_BUILD_DIR "/tests/dist_worker"
#define NABLA NB_BUILD_DIR "/nabla"

typedef struct run {
    int code;
    char *out, *err; /* what the run printed (slurp_file's) */
} run;
static run R;

/* R.out and R.err from the files the run wrote. */
static void read_output(const char *out, const char *err) {
    free(R.out);
    free(R.err);
    R.out = slurp_file(out);
    R.err = slurp_file(err);
}

/* Run argv (NULL-terminated); output in R. */
static run *launch(const char *const *argv) {
    char out[4200], err[4200];
    const char *dir = temp_dir();
    snprintf(out, sizeof out, "%s/stdout", dir);
    snprintf(err, sizeof err, "%s/stderr", dir);
    int st = run_program(argv, out, err);
    R.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    read_output(out, err);
    ck_assert_msg(R.code != 126 && R.code != 127, "cannot run %s", argv[0]);
    return &R;
}

/* mpirun --oversubscribe -np np [--mca btl tcp,self] prog args... */
static run *vmpi(int np, bool tcp, const char *prog, va_list ap) {
    char nps[16];
    snprintf(nps, sizeof nps, "%d", np);
    const char *argv[64] = {NB_MPIRUN, "--oversubscribe", "-np", nps};
    int argc = 4;
    if (tcp) {
        argv[argc++] = "--mca";
        argv[argc++] = "btl";
        argv[argc++] = "tcp,self";
    }
    argv[argc++] = prog;
    for (const char *a = va_arg(ap, const char *); a && argc < 63; a = va_arg(ap, const char *)) argv[argc++] = a;
    argv[argc] = NULL;
    return launch(argv);
}

/* The worker, and the nabla command, under mpirun (arguments NULL-terminated; tcp is an int,
 * not a bool, because va_start needs a parameter that is not promoted). */
static run *mpirun(int np, int tcp, ...) {
    va_list ap;
    va_start(ap, tcp);
    run *r = vmpi(np, tcp, WORKER, ap);
    va_end(ap);
    return r;
}

static run *nabla(int np, int tcp, ...) {
    va_list ap;
    va_start(ap, tcp);
    run *r = vmpi(np, tcp, NABLA, ap);
    va_end(ap);
    return r;
}

/* The end of a long output (Check's messages are limited to a few KiB). */
static const char *tail(const char *s) {
    size_t n = strlen(s);
    return n > 2000 ? s + n - 2000 : s;
}

#define expect_ok() \
    ck_assert_msg(R.code == 0, "exit %d\nstdout: %s\nstderr: %s", R.code, tail(R.out), tail(R.err))
#define expect_fail(want)                                                                   \
    do {                                                                                    \
        ck_assert_msg(R.code != 0, "exit 0, expected a failure; stdout: %s", tail(R.out)); \
        ck_assert_msg(strstr(R.err, (want)), "stderr lacks '%s': %s", (want), tail(R.err)); \
    } while (0)

/* Largest difference between the tensors of two weight files or checkpoints, relative to each
 * tensor's largest element in a (0 when every tensor is bit-identical); with model_only, the
 * model's tensors alone (not the optimizer's state or averaged weights). */
static double tensors_diff(const char *a, const char *b, bool model_only) {
    nb_ckpt *ca = nb_ckpt_open(a), *cb = nb_ckpt_open(b);
    ck_assert_msg(ca && cb, "%s", nb_last_error());
    ck_assert_int_eq(nb_ckpt_num_tensors(ca), nb_ckpt_num_tensors(cb));
    double worst = 0;
    for (int i = 0; i < nb_ckpt_num_tensors(ca); i++) {
        nb_ckpt_tensor ta, tb;
        ck_assert_int_eq(nb_ckpt_tensor_at(ca, i, &ta), NB_OK);
        if (model_only && (!strncmp(ta.name, "optimizer.", 10) || !strncmp(ta.name, "swa.", 4))) continue;
        ck_assert_int_eq(nb_ckpt_find(cb, ta.name, &tb), NB_OK);
        ck_assert_uint_eq(ta.nbytes, tb.nbytes);
        size_t n = ta.nbytes / 4;
        const float *x = ta.data, *y = tb.data;
        double big = 0, d = 0;
        for (size_t k = 0; k < n; k++) big = fmax(big, fabs(x[k]));
        for (size_t k = 0; k < n; k++) d = fmax(d, fabs(x[k] - y[k]));
        if (memcmp(ta.data, tb.data, ta.nbytes)) /* any difference counts, even -0 against 0 */
            worst = fmax(worst, fmax(big > 0 ? d / big : INFINITY, DBL_MIN));
    }
    nb_ckpt_close(ca);
    nb_ckpt_close(cb);
    return worst;
}

static double weights_diff(const char *a, const char *b) { return tensors_diff(a, b, false); }

static const char *tmp(const char *name) {
    static char paths[8][4200];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", temp_dir(), name);
    return p;
}

START_TEST(test_collectives) {
    for (int np = 1; np <= 3; np++) {
        mpirun(np, np == 3, "collectives", NULL);
        expect_ok();
        char want[64];
        snprintf(want, sizeof want, "collectives ok on %d processes", np);
        ck_assert_msg(strstr(R.out, want), "%s", tail(R.out));
    }
}
END_TEST

/* An application that owns MPI gives nabla a communicator (half of its processes). */
START_TEST(test_application_communicator) {
    for (int np = 2; np <= 3; np++) {
        mpirun(np, np == 3, "comm", NULL);
        expect_ok();
        char want[64];
        snprintf(want, sizeof want, "comm: halves of %d processes", np);
        ck_assert_msg(strstr(R.out, want), "%s", tail(R.out));
    }
}
END_TEST

/* 2 x 32 = 1 x 64 within 1e-5 after 20 steps (the per-step gradients are checked by the
 * worker), the same bits over TCP and with small buckets, and twice the same. */
static void same_as_one_process(const char *model, const char *optim) {
    const char *one = tmp("one"), *two = tmp("two"), *tcp = tmp("tcp"), *again = tmp("again");
    mpirun(1, false, "train", model, optim, "20", "64", one, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "same on every rank; 20 backwards"), "%s", tail(R.out));
    mpirun(2, false, "train", model, optim, "20", "64", two, NULL);
    expect_ok();
    double d = weights_diff(one, two);
    ck_assert_msg(d <= 1e-5, "%s %s: 2 x 32 is %.3g away from 1 x 64", model, optim, d);
    mpirun(2, true, "train", model, optim, "20", "64", tcp, "4096", "1", "mpi", NULL); /* MPI's allreduce */
    expect_ok();
    if (!strcmp(model, "mlp")) /* two buckets a step: a layer's weight and bias are never apart */
        ck_assert_msg(strstr(R.out, "20 backwards, 40 allreduces"), "%s", tail(R.out));
    ck_assert_msg(weights_diff(two, tcp) == 0, "%s %s: MPI over TCP with 4 KiB buckets is not bit-identical",
                  model, optim);
    mpirun(2, false, "train", model, optim, "20", "64", again, NULL);
    expect_ok();
    ck_assert_msg(weights_diff(two, again) == 0, "%s %s: two runs differ", model, optim);
}

START_TEST(test_mlp_sgd) { same_as_one_process("mlp", "sgd"); }
END_TEST
START_TEST(test_mlp_adam) { same_as_one_process("mlp", "adam"); }
END_TEST
START_TEST(test_lenet_sgd) { same_as_one_process("lenet", "sgd"); }
END_TEST
START_TEST(test_lenet_adam) { same_as_one_process("lenet", "adam"); }
END_TEST

/* Three processes, and gradient accumulation: 2 processes x 2 micro-batches of 16. */
START_TEST(test_three_and_accumulation) {
    const char *one = tmp("one"), *three = tmp("three"), *acc = tmp("acc"), *one64 = tmp("one64");
    mpirun(1, false, "train", "mlp", "adam", "10", "96", one, NULL);
    expect_ok();
    mpirun(3, false, "train", "mlp", "adam", "10", "96", three, NULL);
    expect_ok();
    ck_assert_msg(weights_diff(one, three) <= 1e-5, "3 x 32 vs 1 x 96: %.3g", weights_diff(one, three));
    mpirun(1, false, "train", "mlp", "sgd", "10", "64", one64, NULL);
    expect_ok();
    mpirun(2, true, "train", "mlp", "sgd", "10", "64", acc, "262144", "2", "mpi", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "10 backwards"), "no-sync backwards were counted: %s", R.out);
    ck_assert_msg(weights_diff(one64, acc) <= 1e-5, "accumulated vs 1 x 64: %.3g", weights_diff(one64, acc));
}
END_TEST

/* 300 steps, every one's averaged gradient checked against the global batch's. */
START_TEST(test_long_run) {
    mpirun(2, false, "train", "mlp", "adam", "300", "64", tmp("long"), NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "same on every rank; 300 backwards"), "%s", tail(R.out));
}
END_TEST

START_TEST(test_unused_parameter) {
    for (int np = 2; np <= 3; np++) {
        mpirun(np, false, "unused", NULL);
        expect_ok();
        ck_assert_msg(strstr(R.out, "unused: averaged with zeros"), "%s", tail(R.out));
    }
}
END_TEST

START_TEST(test_sparse_gradient_refused) {
    mpirun(2, false, "sparse", NULL);
    expect_fail("rank 0: backward: ddp: parameter weight has a sparse gradient (Embedding with sparse=true): "
                "only dense gradients are averaged across processes");
}
END_TEST

START_TEST(test_batchnorm_buffers) {
    mpirun(2, false, "buffers", "on", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "buffers same"), "%s", tail(R.out));
    mpirun(2, false, "buffers", "off", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "buffers differ"), "each process's statistics: %s", R.out);
    const char *a = tmp("a"), *b = tmp("b");
    mpirun(2, false, "train", "bn", "sgd", "5", "64", a, NULL);
    expect_ok();
    mpirun(2, true, "train", "bn", "sgd", "5", "64", b, "262144", "1", "mpi", NULL);
    expect_ok();
    ck_assert_msg(weights_diff(a, b) == 0, "BatchNorm runs differ");
}
END_TEST

START_TEST(test_mismatch_refused) {
    mpirun(2, false, "mismatch", "model", NULL);
    expect_fail("rank 0: ddp: dist: the model differs between processes: rank 1 has \"0.weight "
                "float32 [24, 784]\" where rank 0 has \"0.weight float32 [32, 784]\"");
    ck_assert_msg(strstr(R.err, "rank 1: ddp: dist: the model differs"), "%s", tail(R.err));
    mpirun(3, true, "mismatch", "optim", NULL);
    expect_fail("rank 0: optimizer: dist: the optimizer differs between processes: rank 1 has "
                "\"group 0: lr=0.01\" where rank 0 has \"group 0: lr=0.1\"");
    ck_assert_msg(strstr(R.err, "rank 2: optimizer: dist: the optimizer differs between processes: "
                                "rank 1's is not rank 0's"), "%s", tail(R.err));
}
END_TEST

START_TEST(test_lost_process_times_out) {
    mpirun(2, false, "timeout", NULL);
    expect_fail("rank 0: backward: dist: allreduce of the gradients: no answer from the other "
                "processes after 1 s (a process is lost or stuck)");
}
END_TEST

/* ---- the command: mpirun -np N nabla train ------------------------------------------------ */
static const char *tiny(void) { return fixture("tiny"); }

/* The number printed right after key in text (NAN if absent). */
static double after(const char *text, const char *key) {
    const char *k = strstr(text, key);
    return k ? strtod(k + strlen(key), NULL) : NAN;
}

static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

/* The acceptance runs on Fashion-MNIST: 2 processes x batch 32 against 1 process x batch 64,
 * both with the distributed sampler's global order (mpirun -np 1 uses it too): the weights after
 * 20 steps, and the test accuracy after one epoch. */
typedef struct accept_cfg {
    const char *model, *optim, *lr, *momentum; /* momentum NULL: not given */
    double bound; /* on the weights after 20 steps, relative to each tensor's largest element */
} accept_cfg;

/* nabla train --data FASHION --model M --optim O --lr LR [--momentum X] extra... under mpirun */
static run *accept_run(int np, const accept_cfg *c, ...) {
    const char *argv[64] = {NB_MPIRUN, "--oversubscribe", "-np", np == 1 ? "1" : "2", NABLA, "train", "--data",
                            fashion_mnist_dir(), "--model", c->model, "--optim", c->optim, "--lr", c->lr};
    int argc = 14;
    if (c->momentum) {
        argv[argc++] = "--momentum";
        argv[argc++] = c->momentum;
    }
    va_list ap;
    va_start(ap, c);
    for (const char *a = va_arg(ap, const char *); a && argc < 63; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return launch(argv);
}

/* 20 steps: the weights. */
static void weights_as_one_process(const accept_cfg *c) {
    const char *one = tmp("one.ckpt"), *two = tmp("two.ckpt");
    accept_run(1, c, "--limit", "1280", "--epochs", "1", "--batch", "64", "--save", one, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "batch 64 per process x 1 processes"), "%s", tail(R.out));
    accept_run(2, c, "--limit", "1280", "--epochs", "1", "--batch", "32", "--save", two, NULL);
    expect_ok();
    double d = tensors_diff(one, two, true);
    ck_assert_msg(d <= c->bound, "%s %s: after 20 steps 2 x 32 is %.3g from 1 x 64 (bound %g)", c->model,
                  c->optim, d, c->bound);
}

/* One epoch: the test accuracy. */
static void accuracy_as_one_process(const accept_cfg *c) {
    accept_run(1, c, "--epochs", "1", "--batch", "64", NULL);
    expect_ok();
    double acc1 = after(R.out, "test_acc ");
    accept_run(2, c, "--epochs", "1", "--batch", "32", NULL);
    expect_ok();
    double acc2 = after(R.out, "test_acc ");
    ck_assert_msg(fabs(acc1 - acc2) <= 0.005, "%s %s: test accuracy after an epoch %.4f (1 x 64) vs %.4f (2 x 32)",
                  c->model, c->optim, acc1, acc2);
}

/* SGD at lr 0.01 with momentum 0.9, and Adam at 1e-3, seed 0. After 20 steps the weights are
 * bit-identical (bound 0, where the issue asks 1e-5): one process splits each batch of 64 into
 * its even and its odd samples (nabla train's split step with an interleaving loader), which
 * are the two processes' batches of 32 under the DistributedSampler, and the scalings 1/64
 * against 1/32 then 1/2 are powers of two, exact. (Without that, Adam on the MLP ended 1.9e-5
 * apart: a weight whose gradient cancels to ~eps turns the last-bit difference between one
 * 64-row sum and two 32-row sums into ~1e-5 of the weight; PyTorch's own DDP ends 1.4e-5 and
 * 1.9e-5 from PyTorch alone on the same run.) After an epoch only the last, partial batch
 * differs (32 rows in one process, not split, against 2 x 16). */
START_TEST(test_cli_runs_as_one_process) {
    if (!fashion_mnist_dir()) NB_SKIP("no Fashion-MNIST training images in %s (NABLA_DATA)", nb_default_data_dir());
    const accept_cfg cfgs[] = {{"mlp", "sgd", "0.01", "0.9", 0}, {"mlp", "adam", "0.001", NULL, 0},
                               {"cnn", "sgd", "0.01", "0.9", 0}, {"cnn", "adam", "0.001", NULL, 0}};
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) weights_as_one_process(&cfgs[i]);
#ifdef NB_TEST_SANITIZED
    NB_SKIP("the accuracies after an epoch: eight epochs of training under a sanitizer take too long "
            "(checked in the plain build; the 20-step weights above were checked here)");
#endif
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) accuracy_as_one_process(&cfgs[i]);
}
END_TEST

/* Rank 0 alone prints and writes; the metrics say how many processes and how long the
 * allreduce took; twice the same run, and over TCP, gives the same bits. */
START_TEST(test_cli_rank0_and_determinism) {
    const char *a = tmp("a.ckpt"), *b = tmp("b.ckpt"), *c = tmp("c.ckpt"), *m = tmp("m.jsonl");
    nabla(2, false, "train", "--data", tiny(), "--epochs", "2", "--batch", "16", "--save", a, "--metrics", m,
          "--log-every", "2", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "batch 16 per process x 2 processes"), "%s", tail(R.out));
    ck_assert_int_eq(count(R.out, "epoch 1/2"), 1);
    ck_assert_int_eq(count(R.out, "saved "), 1);
    char *text = slurp_file(m);
    ck_assert_int_eq(count(text, "\"processes\": 2"), 2);
    ck_assert_int_eq(count(text, "\"allreduce_ms_per_step\": "), 2);
    ck_assert_int_eq(count(text, "{\"step\": "), 4); /* 4 steps a process per epoch (50 / 16) */
    free(text);
    nabla(2, false, "train", "--data", tiny(), "--epochs", "2", "--batch", "16", "--save", b, NULL);
    expect_ok();
    nabla(2, true, "train", "--data", tiny(), "--epochs", "2", "--batch", "16", "--save", c, "--mpi-allreduce", NULL);
    expect_ok();
    ck_assert_msg(weights_diff(a, b) == 0, "two runs differ");
    ck_assert_msg(weights_diff(a, c) == 0, "MPI's allreduce over TCP and shared memory differ");
    /* LBFGS's closure decides on the mean loss of all processes: the same decisions everywhere */
    nabla(2, false, "train", "--data", tiny(), "--epochs", "1", "--batch", "25", "--optim", "lbfgs", "--lr", "0.5",
          "--max-iter", "4", "--line-search", "strong_wolfe", NULL);
    expect_ok();
}
END_TEST

/* A checkpoint of 2 processes resumes bit for bit with 2, and resumes with 1 or 3, and alone. */
START_TEST(test_cli_resume_other_sizes) {
    const char *full = tmp("full.ckpt"), *half = tmp("half.ckpt"), *again = tmp("again.ckpt");
    nabla(2, false, "train", "--data", tiny(), "--epochs", "3", "--batch", "10", "--optim", "adam", "--save", full, NULL);
    expect_ok();
    nabla(2, false, "train", "--data", tiny(), "--epochs", "3", "--batch", "10", "--optim", "adam", "--save", half,
          "--stop-after", "1", NULL);
    expect_ok();
    nabla(2, false, "train", "--resume", half, "--data", tiny(), "--epochs", "3", "--save", again,
          NULL); /* paths and the run's length are not restored */
    expect_ok();
    ck_assert_msg(strstr(R.out, "resumed from"), "%s", tail(R.out));
    ck_assert_int_eq(count(R.out, "epoch 2/3"), 1);
    ck_assert_msg(weights_diff(full, again) == 0, "the resumed run is not the uninterrupted one");
    for (int np = 1; np <= 3; np += 2) {
        nabla(np, np == 3, "train", "--resume", half, "--data", tiny(), "--epochs", "3", NULL);
        expect_ok();
        ck_assert_msg(strstr(R.out, "epoch 3/3"), "np %d: %s", np, tail(R.out));
    }
    const char *argv[] = {NABLA, "train", "--resume", half, "--data", tiny(), "--epochs", "3", NULL}; /* and alone */
    launch(argv);
    expect_ok();
    ck_assert_msg(strstr(R.out, "epoch 3/3"), "%s", tail(R.out));
}
END_TEST

/* Processes started with different flags or data are refused before training, with the
 * difference named; a process that fails alone ends the job. */
START_TEST(test_cli_refuses_mismatch) {
    const char *argv[] = {NB_MPIRUN, "--oversubscribe", "-np", "1", NABLA, "train", "--data", tiny(), "--lr", "0.1", ":",
                          "-np", "1", NABLA, "train", "--data", tiny(), "--lr", "0.2", NULL};
    launch(argv);
    expect_fail("dist: the command line differs between processes: rank 1 has \"--lr=0.2\" where rank 0 has \"--lr=0.1\"");
    ck_assert_msg(!strstr(R.out, "epoch 1/"), "it trained: %s", tail(R.out));
    /* the same files under another name are fine; another label is not */
    char copy[4200], bad[4200];
    snprintf(copy, sizeof copy, "%s", temp_dir());
    snprintf(bad, sizeof bad, "%s", temp_dir());
    const char *names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++) {
        static char buf[1 << 17];
        char src[4300], dst[4300];
        snprintf(src, sizeof src, "%s/raw/%s", tiny(), names[i]);
        FILE *f = fopen(src, "rb");
        ck_assert_ptr_nonnull(f);
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        for (int k = 0; k < 2; k++) {
            if (k == 1 && i == 1) buf[8] = (char)((buf[8] + 1) % 10); /* the first training label */
            snprintf(dst, sizeof dst, "%s/%s", k ? bad : copy, names[i]);
            ck_assert_ptr_nonnull(f = fopen(dst, "wb"));
            ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
            fclose(f);
        }
    }
    const char *same[] = {NB_MPIRUN, "--oversubscribe", "-np", "1", NABLA, "train", "--data", tiny(), "--epochs", "1", ":",
                          "-np", "1", NABLA, "train", "--data", copy, "--epochs", "1", NULL};
    launch(same);
    expect_ok();
    const char *differ[] = {NB_MPIRUN, "--oversubscribe", "-np", "1", NABLA, "train", "--data", tiny(), ":",
                            "-np", "1", NABLA, "train", "--data", bad, NULL};
    launch(differ);
    expect_fail("dist: the training data differs between processes: rank 1 has \"100 samples");
    const char *lost[] = {NB_MPIRUN, "--oversubscribe", "-np", "1", NABLA, "train", "--data", tiny(), ":",
                          "-np", "1", NABLA, "train", "--data", "/nonexistent", NULL};
    launch(lost);
    expect_fail("/nonexistent");
}
END_TEST

/* docs/examples/distributed.c, the loop docs/distributed.md quotes, under mpirun. */
START_TEST(test_docs_example) {
    const char *w = tmp("d.nbw");
    launch((const char *[]){NB_MPIRUN, "--oversubscribe", "-np", "2", NB_BUILD_DIR "/tests/doc_distributed",
                                     tiny(), "2", w, NULL});
    expect_ok();
    ck_assert_int_eq(count(R.out, "epoch 1: train loss "), 1); /* rank 0 alone prints */
    ck_assert_msg(strstr(R.out, "epoch 2: train loss ") && strstr(R.out, " over 100 samples"), "%s", tail(R.out));
    ck_assert_msg(access(w, R_OK) == 0, "no weights in %s", w);
}
END_TEST

/* True if process pid runs (a zombie does not: the container's init may never reap it). */
static bool alive(pid_t pid) {
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
    if (f) fclose(f);
    stat[n] = '\0';
    const char *paren = strrchr(stat, ')'); /* "pid (name) S ..." */
    return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* A process killed in the middle of a run: mpirun ends the others within 30 s and names the
 * lost rank, and the last checkpoint (rank 0 writes them atomically) still loads. The kill
 * comes once the first checkpoint exists, whatever the time that takes; the run would go on
 * for 100,000 epochs. */
static void killed(int victim) {
    const char *dir = temp_dir();
    char ckpt[4300], script[8192], out[4300], err[4300], pidf[2][4300];
    snprintf(ckpt, sizeof ckpt, "%s/run.ckpt", dir);
    snprintf(out, sizeof out, "%s/stdout", dir);
    snprintf(err, sizeof err, "%s/stderr", dir);
    for (int r = 0; r < 2; r++) snprintf(pidf[r], sizeof pidf[r], "%s/pid.%d", dir, r);
    snprintf(script, sizeof script, "echo $$ > %s/pid.$OMPI_COMM_WORLD_RANK && exec %s train --data %s --epochs 100000 "
             "--batch 10 --save %s --save-every 1", dir, NABLA, tiny(), ckpt);
    const char *argv[] = {NB_MPIRUN, "--oversubscribe", "-np", "2", "/bin/sh", "-c", script, NULL};
    fflush(NULL);
    pid_t job = fork();
    ck_assert_int_ge(job, 0);
    if (job == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    pid_t pid[2] = {0, 0};
    while (access(ckpt, R_OK) || !pid[0] || !pid[1]) { /* until both run and one epoch is saved */
        ck_assert_msg(waitpid(job, &st, WNOHANG) == 0, "the run ended before the kill");
        for (int r = 0; r < 2; r++) {
            FILE *f = fopen(pidf[r], "r");
            long p = 0;
            if (f && fscanf(f, "%ld", &p) == 1) pid[r] = (pid_t)p;
            if (f) fclose(f);
        }
        usleep(10000);
    }
    ck_assert_int_eq(kill(pid[victim], SIGKILL), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(waitpid(job, &st, 0), job);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    read_output(out, err);
    ck_assert_msg(!WIFEXITED(st) || WEXITSTATUS(st) != 0, "mpirun exited 0 after rank %d was killed", victim);
    ck_assert_msg(secs <= 30, "the job took %.1f s to end after rank %d was killed", secs, victim);
    char want[64];
    snprintf(want, sizeof want, "process rank %d", victim);
    ck_assert_msg(strstr(R.err, want), "the lost rank is not named: %s", tail(R.err));
    ck_assert_msg(!alive(pid[1 - victim]), "rank %d still runs", 1 - victim);
    const char *eval[] = {NABLA, "eval", "--load", ckpt, "--data", tiny(), NULL};
    launch(eval);
    expect_ok();
    ck_assert_msg(strstr(R.out, "test_acc"), "%s", tail(R.out));
}

START_TEST(test_cli_killed_process) {
    killed(1);
    killed(0); /* the one that writes the checkpoints */
}
END_TEST

#ifdef NB_TEST_SANITIZED
/* name=old:more (the children of mpirun inherit the environment) */
static void append_option(const char *name, const char *more) {
    char buf[8192];
    const char *old = getenv(name);
    snprintf(buf, sizeof buf, "%s%s%s", old ? old : "", old && *old ? ":" : "", more);
    setenv(name, buf, 1);
}
#endif

int main(void) {
    if (!nb_dist_available()) return skip_program("dist", "nabla was built without MPI");
    if (!*NB_MPIRUN) return skip_program("dist", "mpirun was not found");
    if (getuid() == 0) { /* Open MPI refuses root unless told twice */
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    }
#ifdef NB_TEST_SANITIZED
    /* Open MPI does not free everything at MPI_Finalize, and its own threads and plugins' locks
     * are not nabla's: the sanitizers are told to ignore reports inside its libraries
     * (tests/lsan-mpi.supp, tests/tsan-mpi.supp). LeakSanitizer needs whole stacks (slow
     * unwinding) and the plugins still loaded at exit to name them. nabla stays checked. */
    setenv("OMPI_MCA_mca_base_component_disable_dlclose", "1", 1);
    append_option("LSAN_OPTIONS", "suppressions=" NB_SOURCE_DIR "/tests/lsan-mpi.supp:print_suppressions=0");
    append_option("ASAN_OPTIONS", "fast_unwind_on_malloc=0");
    append_option("TSAN_OPTIONS", "suppressions=" NB_SOURCE_DIR "/tests/tsan-mpi.supp");
#endif
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("dist");
    tcase_add_test(tc, test_collectives);
    tcase_add_test(tc, test_application_communicator);
    tcase_add_test(tc, test_mlp_sgd);
    tcase_add_test(tc, test_mlp_adam);
    tcase_add_test(tc, test_lenet_sgd);
    tcase_add_test(tc, test_lenet_adam);
    tcase_add_test(tc, test_three_and_accumulation);
    tcase_add_test(tc, test_long_run);
    tcase_add_test(tc, test_unused_parameter);
    tcase_add_test(tc, test_sparse_gradient_refused);
    tcase_add_test(tc, test_batchnorm_buffers);
    tcase_add_test(tc, test_mismatch_refused);
    tcase_add_test(tc, test_lost_process_times_out);
    tcase_add_test(tc, test_cli_runs_as_one_process);
    tcase_add_test(tc, test_cli_rank0_and_determinism);
    tcase_add_test(tc, test_cli_resume_other_sizes);
    tcase_add_test(tc, test_cli_refuses_mismatch);
    tcase_add_test(tc, test_cli_killed_process);
    tcase_add_test(tc, test_docs_example);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
