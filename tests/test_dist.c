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
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"

#define WORKER NB_BUILD_DIR "/tests/dist_worker"

typedef struct run {
    int code;
    char out[1 << 16], err[1 << 16];
} run;
static run R;

static void slurp(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "rb");
    size_t k = f ? fread(buf, 1, n - 1, f) : 0;
    buf[k] = '\0';
    if (f) fclose(f);
}

/* mpirun --oversubscribe -np np [--mca btl tcp,self] WORKER args... (NULL-terminated). */
static run *mpirun(int np, bool tcp, const char *arg, ...) {
    char nps[16];
    snprintf(nps, sizeof nps, "%d", np);
    const char *argv[48] = {NB_MPIRUN, "--oversubscribe", "-np", nps};
    int argc = 4;
    if (tcp) {
        argv[argc++] = "--mca";
        argv[argc++] = "btl";
        argv[argc++] = "tcp,self";
    }
    argv[argc++] = WORKER;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && argc < 47; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char out[4200], err[4200];
    const char *dir = temp_dir();
    snprintf(out, sizeof out, "%s/stdout", dir);
    snprintf(err, sizeof err, "%s/stderr", dir);
    int st = run_program(argv, out, err);
    R.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    slurp(out, R.out, sizeof R.out);
    slurp(err, R.err, sizeof R.err);
    ck_assert_msg(R.code != 126 && R.code != 127, "cannot run %s", NB_MPIRUN);
    return &R;
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

/* Largest difference between the tensors of two weight files, relative to each tensor's
 * largest element in a (0 for bit-identical files). */
static double weights_diff(const char *a, const char *b) {
    nb_ckpt *ca = nb_ckpt_open(a), *cb = nb_ckpt_open(b);
    ck_assert_msg(ca && cb, "%s", nb_last_error());
    ck_assert_int_eq(nb_ckpt_num_tensors(ca), nb_ckpt_num_tensors(cb));
    double worst = 0;
    for (int i = 0; i < nb_ckpt_num_tensors(ca); i++) {
        nb_ckpt_tensor ta, tb;
        ck_assert_int_eq(nb_ckpt_tensor_at(ca, i, &ta), NB_OK);
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
    mpirun(2, true, "train", model, optim, "20", "64", tcp, "4096", NULL);
    expect_ok();
    if (!strcmp(model, "mlp")) /* two buckets a step: a layer's weight and bias are never apart */
        ck_assert_msg(strstr(R.out, "20 backwards, 40 allreduces"), "%s", tail(R.out));
    ck_assert_msg(weights_diff(two, tcp) == 0, "%s %s: TCP with 4 KiB buckets is not bit-identical",
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
    mpirun(2, true, "train", "mlp", "sgd", "10", "64", acc, "262144", "2", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "10 backwards"), "no-sync backwards were counted: %s", R.out);
    ck_assert_msg(weights_diff(one64, acc) <= 1e-5, "accumulated vs 1 x 64: %.3g", weights_diff(one64, acc));
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
    mpirun(2, true, "train", "bn", "sgd", "5", "64", b, NULL);
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
    tcase_add_test(tc, test_mlp_sgd);
    tcase_add_test(tc, test_mlp_adam);
    tcase_add_test(tc, test_lenet_sgd);
    tcase_add_test(tc, test_lenet_adam);
    tcase_add_test(tc, test_three_and_accumulation);
    tcase_add_test(tc, test_unused_parameter);
    tcase_add_test(tc, test_batchnorm_buffers);
    tcase_add_test(tc, test_mismatch_refused);
    tcase_add_test(tc, test_lost_process_times_out);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
