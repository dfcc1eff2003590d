/* common.c - golden-file reader and comparison helpers for the test suites. */
#include "common.h"
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#ifndef NB_SOURCE_DIR
#error "NB_SOURCE_DIR must be defined by the build"
#endif

static void read_exact(gzFile f, void *dst, size_t n, const char *file) {
    if (n == 0) return;
    int r = gzread(f, dst, (unsigned)n);
    if (r != (int)n) ck_abort_msg("golden %s: truncated", file);
}

golden *golden_load(const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/golden/%s", NB_SOURCE_DIR, file);
    gzFile f = gzopen(path, "rb");
    if (!f) ck_abort_msg("cannot open golden file %s (run tools/golden/gen_*.py)", path);
    char magic[4];
    uint32_t count;
    read_exact(f, magic, 4, file);
    if (memcmp(magic, "NBG1", 4)) ck_abort_msg("golden %s: bad magic", file);
    read_exact(f, &count, 4, file);
    golden *g = calloc(1, sizeof *g);
    g->e = calloc(count ? count : 1, sizeof *g->e);
    g->n = (int)count;
    for (uint32_t i = 0; i < count; i++) {
        gold_entry *e = &g->e[i];
        uint16_t nl;
        uint8_t dt, nd;
        read_exact(f, &nl, 2, file);
        e->name = calloc(nl + 1u, 1);
        read_exact(f, e->name, nl, file);
        read_exact(f, &dt, 1, file);
        read_exact(f, &nd, 1, file);
        if (nd > 8 || dt > 2) ck_abort_msg("golden %s: bad entry %s", file, e->name);
        e->dtype = dt;
        e->ndim = nd;
        e->numel = 1;
        for (int d = 0; d < nd; d++) {
            uint32_t v;
            read_exact(f, &v, 4, file);
            e->shape[d] = v;
            e->numel *= v;
        }
        size_t es = dt == 2 ? 8 : 4;
        e->data = malloc((size_t)e->numel * es + 1);
        read_exact(f, e->data, (size_t)e->numel * es, file);
    }
    gzclose(f);
    return g;
}

bool golden_has(const golden *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->e[i].name, name)) return true;
    return false;
}

const gold_entry *golden_get(const golden *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->e[i].name, name)) return &g->e[i];
    ck_abort_msg("golden entry %s missing", name);
    return NULL;
}

nb_tensor *golden_tensor(const golden *g, const char *name) {
    const gold_entry *e = golden_get(g, name);
    ck_assert_msg(e->dtype == 0, "golden entry %s is not float32", name);
    nb_tensor *t = nb_from_array(NULL, NB_FLOAT32, e->ndim, e->shape, e->data);
    ck_assert_ptr_nonnull(t);
    return t;
}

void golden_free(golden *g) {
    if (!g) return;
    for (int i = 0; i < g->n; i++) {
        free(g->e[i].name);
        free(g->e[i].data);
    }
    free(g->e);
    free(g);
}

double max_rel_err(const float *a, const float *b, int64_t n, double floor, int64_t *where) {
    double worst = 0;
    int64_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double s = fabs((double)b[i]) > floor ? fabs((double)b[i]) : floor;
        double r = d / s;
        if (r > worst || isnan(d)) {
            worst = isnan(d) ? INFINITY : r;
            w = i;
        }
    }
    if (where) *where = w;
    return worst;
}

double parity_err(const float *a, const float *b, int64_t n, int64_t *where) {
    double mx = 0;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)b[i]));
    return max_rel_err(a, b, n, 0.1 * mx > 0 ? 0.1 * mx : 1e-30, where);
}

void assert_close(const char *what, const float *a, const float *b, int64_t n, double rtol, double atol) {
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= atol + rtol * fabs((double)b[i])))
            ck_abort_msg("%s: element %lld is %.9g, expected %.9g (|diff| %.3g > atol %.1g + rtol %.1g)",
                         what, (long long)i, (double)a[i], (double)b[i], d, atol, rtol);
    }
}

void assert_golden(const char *what, const float *got, const gold_entry *e, double rtol) {
    const float *want = e->data;
    double big = 0;
    for (int64_t i = 0; i < e->numel; i++) big = fmax(big, fabs((double)want[i]));
    int64_t where;
    double rel = max_rel_err(got, want, e->numel, fmax(1e-3 * big, 1e-30), &where);
    if (!(rel <= rtol))
        ck_abort_msg("%s: relative error %.3g at element %lld (%.9g, expected %.9g)", what, rel,
                     (long long)where, (double)got[where], (double)want[where]);
}

void assert_close_f64(const char *what, const double *a, const double *b, int64_t n, double rtol, double atol) {
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= atol + rtol * fabs(b[i])))
            ck_abort_msg("%s: element %lld is %.17g, expected %.17g (|diff| %.3g)", what,
                         (long long)i, a[i], b[i], d);
    }
}

const char *temp_dir(void) {
    static char path[4096];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/nabla-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(path)) ck_abort_msg("cannot create a temp dir");
    return path;
}

const char *fixture(const char *name) {
    static _Thread_local char path[4096];
    snprintf(path, sizeof path, "%s/datasets/%s", NB_SOURCE_DIR, name);
    return path;
}

int run_program(const char *const *argv, const char *out, const char *err) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = err ? open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600) : fo;
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return st;
}

int run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}

/* "SKIPPED <name>[i]: <reason>" on stdout, flushed (a forked Check test may end right after). */
static void print_skip(const char *name, int len, int i, const char *fmt, va_list ap) {
    printf("SKIPPED %.*s", len, name);
    if (i) printf("[%d]", i);
    fputs(": ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
}

void nb_test_skipped(const char *fn, int i, const char *fmt, ...) {
    size_t n = strlen(fn);
    if (n > 3 && strcmp(fn + n - 3, "_fn") == 0) n -= 3; /* START_TEST(t) defines t_fn */
    va_list ap;
    va_start(ap, fmt);
    print_skip(fn, (int)n, i, fmt, ap);
    va_end(ap);
}

int skip_program(const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_skip(name, (int)strlen(name), 0, fmt, ap);
    va_end(ap);
    return 77;
}

const char *fashion_mnist_dir(void) {
    const char *dir = nb_default_data_dir();
    char path[4096];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    if (access(path, R_OK) == 0) return dir;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    return access(path, R_OK) == 0 ? dir : NULL;
}
