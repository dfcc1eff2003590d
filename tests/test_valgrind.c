/* test_valgrind.c - short trainings under valgrind's memcheck: no invalid access, no use of
 * uninitialised memory, no leak ("All heap blocks were freed -- no leaks are possible", or at
 * least nothing definitely or indirectly lost).
 *
 * Skipped (exit 77) when /usr/bin/valgrind is missing and in sanitizer builds. Valgrind
 * emulates vector code slowly (a few hundred samples/s here), so the runs are small: the tiny
 * fixtures with SGD and with Adam + StepLR, the IDX reader's tests, and one run on the real
 * Fashion-MNIST files (--limit 2000; most of its time is the 10000-sample evaluation). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"

#define VALGRIND "/usr/bin/valgrind"

static char log_text[1 << 20];

/* Run the NULL-terminated command under memcheck (the log is in log_text) and check that it
 * exits with `expect` and valgrind found no error and no leak. */
static void memcheck(const char *what, int expect, const char *prog, ...) {
    const char *argv[64];
    int argc = 0;
    char logopt[4200], log[4100], out[4100];
    const char *dir = temp_dir();
    snprintf(log, sizeof log, "%s/valgrind.log", dir);
    snprintf(out, sizeof out, "%s/output", dir);
    snprintf(logopt, sizeof logopt, "--log-file=%s", log);
    argv[argc++] = VALGRIND;
    argv[argc++] = "--leak-check=full";
    argv[argc++] = "--errors-for-leak-kinds=definite,indirect";
    argv[argc++] = "--error-exitcode=99";
    argv[argc++] = logopt;
    argv[argc++] = prog;
    va_list ap;
    va_start(ap, prog);
    for (const char *a = va_arg(ap, const char *); a && argc < 63; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    /* for the child (this process has read both already): */
    setenv("CK_FORK", "no", 1); /* a Check binary runs its tests in the traced process */
    /* OpenBLAS's SSE kernels: valgrind runs its AVX2/FMA ones about 10x slower, and the point
     * here is nabla's memory use, not OpenBLAS's code path */
    setenv("OPENBLAS_CORETYPE", "Nehalem", 1);
    int st = run_program(argv, out, NULL);
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(log_text, 1, sizeof log_text - 1, f) : 0;
    log_text[n] = '\0';
    if (f) fclose(f);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    const char *tail = n > 3000 ? log_text + n - 3000 : log_text;
    ck_assert_msg(code != 99, "%s: valgrind found errors:\n%s", what, log_text);
    ck_assert_msg(code == expect, "%s: exit code %d, expected %d\n%s", what, code, expect, tail);
    ck_assert_msg(strstr(log_text, "ERROR SUMMARY: 0 errors"), "%s:\n%s", what, tail);
    bool no_leaks = strstr(log_text, "All heap blocks were freed -- no leaks are possible") ||
                    (strstr(log_text, "definitely lost: 0 bytes") && strstr(log_text, "indirectly lost: 0 bytes"));
    ck_assert_msg(no_leaks, "%s: leaks:\n%s", what, tail);
}

START_TEST(test_train_tiny_sgd) {
    char m[4200];
    snprintf(m, sizeof m, "%s/m.jsonl", temp_dir());
    memcheck("nabla train (SGD)", 0, NB_BUILD_DIR "/nabla", "train", "--data", fixture("tiny"), "--epochs", "2",
             "--batch", "16", "--metrics", m, NULL);
}
END_TEST

START_TEST(test_train_tiny_adam_steplr) {
    memcheck("nabla train (Adam, StepLR, clip)", 0, NB_BUILD_DIR "/nabla", "train", "--data", fixture("tiny"),
             "--optim", "adam", "--hidden", "32,16", "--sched", "step", "--epochs", "2", "--batch", "32",
             "--clip", "1", NULL);
}
END_TEST

START_TEST(test_failures_free_everything) {
    /* runs that stop on an error still free what they allocated */
    memcheck("bad lr", 1, NB_BUILD_DIR "/nabla", "train", "--data", fixture("tiny"), "--lr", "-1", NULL);
    memcheck("bad data", 1, NB_BUILD_DIR "/nabla", "train", "--data", fixture("tiny/raw/nonexistent"), NULL);
    memcheck("unknown flag", 2, NB_BUILD_DIR "/nabla", "train", "--bogus", NULL);
}
END_TEST

START_TEST(test_idx_reader_tests) {
    memcheck("test_data", 0, NB_BUILD_DIR "/tests/test_data", NULL);
}
END_TEST

START_TEST(test_train_real_data) {
    if (!fashion_mnist_dir()) NB_SKIP("no Fashion-MNIST training images in %s (NABLA_DATA)", nb_default_data_dir());
    memcheck("nabla train on Fashion-MNIST", 0, NB_BUILD_DIR "/nabla", "train", "--limit", "2000", "--epochs", "1",
             NULL);
}
END_TEST

int main(void) {
#ifdef NB_TEST_SANITIZED
    return skip_program("valgrind", "a sanitizer build (the sanitizer owns malloc)");
#endif
    if (access(VALGRIND, X_OK) != 0) return skip_program("valgrind", VALGRIND " is not installed");
    Suite *s = suite_create("valgrind");
    TCase *tc = tcase_create("valgrind");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_train_tiny_sgd);
    tcase_add_test(tc, test_train_tiny_adam_steplr);
    tcase_add_test(tc, test_failures_free_everything);
    tcase_add_test(tc, test_idx_reader_tests);
    tcase_add_test(tc, test_train_real_data);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
