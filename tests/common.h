/* common.h - helpers shared by the Check suites: golden vectors from PyTorch, comparisons,
 * temporary files. Golden files live in tests/golden/ (written by tools/golden/gen_*.py). */
#ifndef NABLA_TESTS_COMMON_H
#define NABLA_TESTS_COMMON_H

#include <check.h>
#include <stdint.h>
#include "nabla.h"

/* A sanitizer build (ASan, TSan, UBSan): ASan and TSan own malloc, so tests that replace
 * malloc or run valgrind step aside. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(__SANITIZE_UNDEFINED__)
#define NB_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(undefined_behavior_sanitizer)
#define NB_TEST_SANITIZED 1
#endif
#endif

typedef struct gold_entry {
    char *name;
    int dtype; /* 0 float32, 1 int32, 2 float64 */
    int ndim;
    int64_t shape[8];
    int64_t numel;
    void *data;
} gold_entry;

typedef struct golden {
    int n;
    gold_entry *e;
} golden;

/* Load tests/golden/<file> (ck_abort on any problem). */
golden *golden_load(const char *file);
/* Entry by name (ck_abort if missing). */
const gold_entry *golden_get(const golden *g, const char *name);
/* True if the entry exists. */
bool golden_has(const golden *g, const char *name);
/* A heap float32 tensor with the entry's shape and data (entry must be float32). */
nb_tensor *golden_tensor(const golden *g, const char *name);
void golden_free(golden *g);

/* Max relative error max|a-b| / max(|b|, floor) over n elements, and where it occurs. */
double max_rel_err(const float *a, const float *b, int64_t n, double floor, int64_t *where);
/* The parity metric: max |a-b| / max(|b|, 0.1 * max|b|) — relative error, with elements far
 * below the tensor's scale measured against 10% of it. (A float32 sum of 64 terms is itself
 * ~1e-5 off on such elements: PyTorch's own f32 grad differs from f64 by 9.6e-6 there.) */
double parity_err(const float *a, const float *b, int64_t n, int64_t *where);
/* ck_assert that |a-b| <= atol + rtol*|b| elementwise, naming what and the worst element. */
void assert_close(const char *what, const float *a, const float *b, int64_t n, double rtol, double atol);
/* ck_assert that got matches a float32 golden entry to rtol relative; elements below 1e-3 of
 * the entry's largest magnitude are compared against that floor instead (they come out of
 * cancellations whose absolute error is what counts). */
void assert_golden(const char *what, const float *got, const gold_entry *e, double rtol);
void assert_close_f64(const char *what, const double *a, const double *b, int64_t n, double rtol, double atol);

/* A fresh empty directory under the build's temp area; returns its path (static buffer). */
const char *temp_dir(void);
/* Path of a file in the source tree's datasets/ fixtures. */
const char *fixture(const char *name);

/* Run argv (argv[0] a path, NULL-terminated) in a child with stdout to the file out and stderr
 * to err (to out too when err is NULL); returns its waitpid status (exit 126/127: it could not
 * open the files / start). */
int run_program(const char *const *argv, const char *out, const char *err);

/* Run a suite and return the number of failures (for main()). */
int run_suite(Suite *s);

/* ---- skipping: a test that cannot check what it is for says so, never passes silently ----
 * Check has no "skipped" result. NB_SKIP("fmt", ...) inside a START_TEST body prints
 *   SKIPPED <test name>: <reason>
 * on stdout and ends the test (run it after the test's own cleanup). tools/nabla's totals count
 * such a case as skipped, not passed. It only compiles in a test body (it names Check's loop
 * index _i). A whole program that cannot run at all returns skip_program(...) from main():
 * the same line, and exit status 77, meson's SKIP. */
#define NB_SKIP(...)                                  \
    do {                                              \
        nb_test_skipped(__func__, _i, __VA_ARGS__);   \
        return;                                       \
    } while (0)
void nb_test_skipped(const char *fn, int i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int skip_program(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The Fashion-MNIST folder (nb_default_data_dir(): $NABLA_DATA, else Debian's) if it holds the
 * training images, else NULL (the caller skips). */
const char *fashion_mnist_dir(void);

#endif
