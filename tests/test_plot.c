/* test_plot.c - the teaching commands whose output is a picture or a table: `nabla plot`,
 * `nabla compare`, `nabla optim-path`. Each SVG is parsed (well-formed XML), has one line per
 * run (or optimizer) and series, and its points, read back through the mapping every data line
 * carries, equal the numbers they draw within the drawing's rounding. (Rasterising them with
 * rsvg-convert is the test svg_render.) */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"
#include "svgcheck.h"

#define NABLA NB_BUILD_DIR "/nabla"

typedef struct result {
    int code;
    char *out, *err;
} result;

static result R;

/* Run build/nabla with the arguments (NULL-terminated); output in R. */
static result *nabla(const char *arg, ...) {
    const char *argv[96] = {NABLA};
    int argc = 1;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && argc < 95; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char out[4200], err[4200];
    const char *dir = temp_dir();
    snprintf(out, sizeof out, "%s/stdout", dir);
    snprintf(err, sizeof err, "%s/stderr", dir);
    int st = run_program(argv, out, err);
    free(R.out);
    free(R.err);
    R.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    R.out = slurp_file(out);
    R.err = slurp_file(err);
    ck_assert_msg(R.code != 126 && R.code != 127, "cannot run %s", NABLA);
    return &R;
}

#define expect_ok() ck_assert_msg(R.code == 0, "exit %d; stderr: %s", R.code, R.err)
#define expect_fail(code_, want)                                                                   \
    do {                                                                                           \
        ck_assert_msg(R.code == (code_), "exit %d, expected %d; stderr: %s", R.code, (code_), R.err); \
        ck_assert_msg(strstr(R.err, (want)) != NULL, "stderr lacks '%s': %s", (want), R.err);      \
    } while (0)

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* The SVG at path, checked well-formed; its data lines in *l (count returned). */
static int read_svg(const char *path, svg_line **l) {
    char *text = slurp_file(path);
    const char *bad = xml_check(text);
    ck_assert_msg(bad == NULL, "%s is not well-formed XML near: %.60s", path, bad);
    ck_assert(strstr(text, "<svg xmlns=\"http://www.w3.org/2000/svg\"") != NULL);
    int n = svg_lines(text, l);
    free(text);
    return n;
}

/* The line of run `run` and series `series` has exactly the points (x[i], y[i]). */
static void expect_line(const svg_line *ls, int n, const char *run, const char *series, const double *x,
                        const double *y, int npts) {
    const svg_line *l = svg_find(ls, n, "data-run", run, "data-series", series);
    ck_assert_msg(l != NULL, "no line for run %s, series %s", run, series);
    ck_assert_msg(l->n == npts, "run %s %s: %d points, want %d", run, series, l->n, npts);
    for (int i = 0; i < npts; i++)
        ck_assert_msg(svg_point_is(l, i, x[i], y[i]), "run %s %s point %d: (%.9g, %.9g), want (%.9g, %.9g)", run,
                      series, i, l->x[i], l->y[i], x[i], y[i]);
}

/* ---- nabla plot ----------------------------------------------------------------------------- */
START_TEST(test_plot_two_runs) {
    const char *dir = temp_dir();
    char a[4200], b[4200], svg[4200];
    snprintf(a, sizeof a, "%s/sgd.jsonl", dir);
    snprintf(b, sizeof b, "%s/adam.jsonl", dir);
    snprintf(svg, sizeof svg, "%s/curves.svg", dir);
    write_file(a, "{\"flags\": {\"optim\": \"sgd\", \"lr\": 0.1, \"seed\": 0, \"batch\": 64}}\n"
                  "{\"step\": 2, \"epoch\": 1, \"loss\": 2.1, \"lr\": 0.1}\n"
                  "{\"step\": 4, \"epoch\": 1, \"loss\": 1.5, \"lr\": 0.1}\n"
                  "{\"epoch\": 1, \"step\": 4, \"train_loss\": 1.8, \"val_loss\": 1.6, \"val_acc\": 0.5, "
                  "\"test_loss\": 1.7, \"test_acc\": 0.45, \"lr\": 0.1, \"seconds\": 1.5}\n"
                  "{\"step\": 6, \"epoch\": 2, \"loss\": 1.2, \"lr\": 0.05}\n"
                  "{\"step\": 8, \"epoch\": 2, \"loss\": 1.0, \"lr\": 0.05}\n"
                  "{\"epoch\": 2, \"step\": 8, \"train_loss\": 1.1, \"val_loss\": 1.2, \"val_acc\": 0.6, "
                  "\"test_loss\": 1.25, \"test_acc\": 0.58, \"lr\": 0.05, \"seconds\": 1.4}\n"
                  "{\"epoch\": 3, \"step\": 12, \"train_loss\": 0.9, \"val_loss\": null, \"val_acc\": 0.61, "
                  "\"test_loss\": 1.05, \"test_acc\": 0.6, \"lr\": 0.025, \"seconds\": 1.4}\n");
    write_file(b, "{\"flags\": {\"optim\": \"adam\", \"lr\": 0.001, \"seed\": 0, \"batch\": 64}}\n"
                  "{\"epoch\": 1, \"step\": 4, \"train_loss\": 1.5, \"test_loss\": 1.4, \"test_acc\": 0.55, "
                  "\"lr\": 0.001}\n"
                  "{\"epoch\": 2, \"step\": 8, \"train_loss\": 0.9, \"test_loss\": 1.0, \"test_acc\": 0.65, "
                  "\"lr\": 0.001}\n");
    nabla("plot", a, b, "--out", svg, NULL);
    expect_ok();
    svg_line *l;
    int n = read_svg(svg, &l);
    /* one line per run and series: run 0 train, val, test loss, val and test acc, lr (val_loss
     * ends at its null); run 1 train and test loss, test acc, lr */
    ck_assert_int_eq(svg_count(l, n, "data-run", "0"), 6);
    ck_assert_int_eq(svg_count(l, n, "data-run", "1"), 4);
    ck_assert_int_eq(svg_count(l, n, "data-series", "step_loss"), 0); /* per-step lines: --x step only */
    expect_line(l, n, "0", "train_loss", (double[]){1, 2, 3}, (double[]){1.8, 1.1, 0.9}, 3);
    expect_line(l, n, "0", "test_acc", (double[]){1, 2, 3}, (double[]){0.45, 0.58, 0.6}, 3);
    expect_line(l, n, "0", "val_loss", (double[]){1, 2}, (double[]){1.6, 1.2}, 2);
    expect_line(l, n, "0", "val_acc", (double[]){1, 2, 3}, (double[]){0.5, 0.6, 0.61}, 3);
    expect_line(l, n, "1", "test_loss", (double[]){1, 2}, (double[]){1.4, 1.0}, 2);
    /* lr 0.1 and 0.001: a log scale, still the same numbers */
    const svg_line *lr = svg_find(l, n, "data-run", "1", "data-series", "lr");
    ck_assert(lr && lr->ylog);
    expect_line(l, n, "0", "lr", (double[]){1, 2, 3}, (double[]){0.1, 0.05, 0.025}, 3);
    expect_line(l, n, "1", "lr", (double[]){1, 2}, (double[]){0.001, 0.001}, 2);
    svg_lines_free(l, n);
    /* the legend names the runs by the flags in which they differ, not by those they share */
    char *text = slurp_file(svg);
    ck_assert_msg(strstr(text, ">optim=sgd lr=0.1<") && strstr(text, ">optim=adam lr=0.001<"), "%s", text);
    ck_assert_ptr_null(strstr(text, "seed=0"));
    ck_assert(strstr(text, ">train<") && strstr(text, ">val<") && strstr(text, ">test<"));
    ck_assert(strstr(text, ">loss<") && strstr(text, ">accuracy<") && strstr(text, ">lr<"));
    free(text);

    /* against steps: the per-step rows too, and each epoch at its step */
    nabla("plot", a, b, "--out", svg, "--x", "step", "--labels", "plain SGD,Adam", NULL);
    expect_ok();
    n = read_svg(svg, &l);
    expect_line(l, n, "0", "step_loss", (double[]){2, 4, 6, 8}, (double[]){2.1, 1.5, 1.2, 1.0}, 4);
    expect_line(l, n, "0", "step_lr", (double[]){2, 4, 6, 8}, (double[]){0.1, 0.1, 0.05, 0.05}, 4);
    ck_assert_ptr_null(svg_find(l, n, "data-run", "0", "data-series", "lr")); /* the per-step lr instead */
    expect_line(l, n, "0", "test_loss", (double[]){4, 8, 12}, (double[]){1.7, 1.25, 1.05}, 3);
    expect_line(l, n, "1", "train_loss", (double[]){4, 8}, (double[]){1.5, 0.9}, 2);
    svg_lines_free(l, n);
    text = slurp_file(svg);
    ck_assert(strstr(text, ">plain SGD<") && strstr(text, ">Adam<"));
    free(text);

    /* one run: named by its file */
    nabla("plot", a, "--out", svg, NULL);
    expect_ok();
    text = slurp_file(svg);
    ck_assert_msg(strstr(text, ">sgd<"), "%s", text);
    free(text);
}
END_TEST

START_TEST(test_plot_errors) {
    const char *dir = temp_dir();
    char a[4200], bad[4200], empty[4200], svg[4200];
    snprintf(a, sizeof a, "%s/a.jsonl", dir);
    snprintf(bad, sizeof bad, "%s/bad.jsonl", dir);
    snprintf(empty, sizeof empty, "%s/empty.jsonl", dir);
    snprintf(svg, sizeof svg, "%s/c.svg", dir);
    write_file(a, "{\"epoch\": 1, \"train_loss\": 1.0}\n");
    write_file(bad, "{\"epoch\": 1, \"train_loss\": 1.0}\n{\"epoch\": 2, \"train_lo\n");
    write_file(empty, "{\"flags\": {}}\n");
    nabla("plot", a, NULL);
    expect_fail(2, "--out FILE.svg");
    nabla("plot", "--out", svg, NULL);
    expect_fail(2, "give 1..32 metrics files");
    nabla("plot", a, "--out", svg, "--x", "time", NULL);
    expect_fail(2, "--x is epoch or step");
    nabla("plot", "/nonexistent.jsonl", "--out", svg, NULL);
    expect_fail(1, "cannot read /nonexistent.jsonl: No such file or directory");
    nabla("plot", bad, "--out", svg, NULL);
    expect_fail(1, "bad.jsonl:2: not a JSON object");
    nabla("plot", empty, "--out", svg, NULL);
    expect_fail(1, "empty.jsonl has no epoch or step lines");
    nabla("plot", a, "--out", svg, "--x", "step", NULL);
    expect_fail(1, "nothing to draw: no run has step numbers");
    nabla("plot", a, "--out", "/nonexistent/dir/c.svg", NULL);
    expect_fail(1, "cannot write /nonexistent/dir/c.svg");
    nabla("plot", "--help", NULL);
    expect_ok();
    ck_assert(strstr(R.out, "usage: nabla plot RUN.jsonl"));
}
END_TEST

/* ---- nabla optim-path -------------------------------------------------------------------- */
/* The CSV of optim-path: points of optimizer name in pts (x, y pairs), f values in f; count. */
static int csv_path(const char *csv, const char *name, double *pts, double *f, int max) {
    char *text = slurp_file(csv);
    ck_assert_msg(!strncmp(text, "optimizer,step,x,y,f\n", 21), "%.40s", text);
    int n = 0;
    size_t len = strlen(name);
    for (char *line = strtok(text + 21, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, name, len) || line[len] != ',') continue;
        char *end;
        ck_assert_int_lt(n, max);
        ck_assert_int_eq(strtol(line + len + 1, &end, 10), n);
        pts[2 * n] = strtod(end + 1, &end);
        pts[2 * n + 1] = strtod(end + 1, &end);
        f[n] = strtod(end + 1, &end);
        ck_assert(*end == '\0');
        n++;
    }
    free(text);
    return n;
}

/* optim-path --fn fn --optim names... --steps 100 [extra]: each path equals PyTorch's (1e-5), and
 * the SVG draws each path as one line through the same points. */
static void check_paths(const char *fn, const char *optims, const char *const *cases, const char *sched_step) {
    golden *g = golden_load("path.nbg.gz");
    const char *dir = temp_dir();
    char svg[4200], csv[4200];
    snprintf(svg, sizeof svg, "%s/path.svg", dir);
    snprintf(csv, sizeof csv, "%s/path.csv", dir);
    if (sched_step) /* StepLR(step_size, gamma 0.5), stepped after every step */
        nabla("optim-path", "--fn", fn, "--optim", optims, "--steps", "100", "--out", svg, "--csv", csv, "--sched",
              "step", "--step-size", sched_step, "--gamma", "0.5", NULL);
    else
        nabla("optim-path", "--fn", fn, "--optim", optims, "--steps", "100", "--out", svg, "--csv", csv, NULL);
    expect_ok();
    svg_line *l;
    int nl = read_svg(svg, &l);
    static double pts[2 * 101], f[101];
    int k = 0;
    char run[16];
    for (const char *s = optims; *s; k++) {
        char name[32];
        size_t len = strcspn(s, ",");
        snprintf(name, sizeof name, "%.*s", (int)len, s);
        s += len + (s[len] == ',');
        const gold_entry *e = golden_get(g, cases[k]);
        ck_assert_int_eq(e->numel, 2 * 101);
        ck_assert_int_eq(csv_path(csv, name, pts, f, 101), 101);
        const float *want = e->data;
        double worst = 0;
        for (int i = 0; i < 2 * 101; i++) {
            double err = fabs(pts[i] - want[i]) / fmax(fabs(want[i]), 1.0);
            ck_assert_msg(err <= 1e-5, "%s %s: step %d %c = %.9g, PyTorch %.9g", fn, name, i / 2, "xy"[i % 2],
                          pts[i], (double)want[i]);
            worst = fmax(worst, err);
        }
        printf("optim-path %s %s: 100 steps, largest error against PyTorch %.3g\n", fn, name, worst);
        snprintf(run, sizeof run, "%d", k);
        const svg_line *line = svg_find(l, nl, "data-run", run, "data-series", name);
        ck_assert_msg(line != NULL, "no line for %s", name);
        ck_assert_int_eq(svg_count(l, nl, "data-run", run), 1);
        ck_assert_int_eq(line->n, 101);
        for (int i = 0; i <= 100; i++)
            ck_assert_msg(svg_point_is(line, i, pts[2 * i], pts[2 * i + 1]), "%s %s point %d", fn, name, i);
    }
    ck_assert_int_eq(nl, k); /* one line per optimizer, nothing else */
    svg_lines_free(l, nl);
    golden_free(g);
}

START_TEST(test_optim_path_rosenbrock_vs_pytorch) {
    check_paths("rosenbrock", "sgd,adam,rmsprop,momentum,nesterov,adagrad",
                (const char *[]){"rosenbrock_sgd.path", "rosenbrock_adam.path", "rosenbrock_rmsprop.path",
                                 "rosenbrock_momentum.path", "rosenbrock_nesterov.path", "rosenbrock_adagrad.path"},
                NULL);
}
END_TEST

START_TEST(test_optim_path_other_functions) {
    check_paths("beale", "adam", (const char *[]){"beale_adam.path"}, NULL);
    check_paths("himmelblau", "momentum", (const char *[]){"himmelblau_momentum.path"}, NULL);
    check_paths("quadratic", "nesterov", (const char *[]){"quadratic_nesterov.path"}, NULL);
    check_paths("rosenbrock", "adam", (const char *[]){"rosenbrock_adam_step.path"}, "20");
}
END_TEST

/* The picture around the paths, what leaves the range, and the usage errors. */
START_TEST(test_optim_path_picture_and_errors) {
    const char *dir = temp_dir();
    char svg[4200];
    snprintf(svg, sizeof svg, "%s/p.svg", dir);
    nabla("optim-path", "--fn", "himmelblau", "--optim", "sgd,adam", "--lr", "0.2,0.1", "--steps", "50", "--start",
          "1,-1", "--out", svg, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "sgd       lr 0.2      left the range at step"), "%s", R.out);
    ck_assert_msg(strstr(R.out, "adam      lr 0.1      ("), "%s", R.out);
    svg_line *l;
    int n = read_svg(svg, &l);
    ck_assert_int_eq(n, 2);
    ck_assert_double_eq_tol(l[0].x[0], 1, l[0].xres); /* both from --start */
    ck_assert_double_eq_tol(l[1].y[0], -1, l[1].yres);
    ck_assert_int_lt(l[0].n, 51); /* SGD diverged: its line stops where it left */
    ck_assert_int_eq(l[1].n, 51);
    svg_lines_free(l, n);
    char *text = slurp_file(svg);
    int levels = 0;
    for (const char *p = strstr(text, "data-level="); p; p = strstr(p + 1, "data-level=")) levels++;
    ck_assert_int_ge(levels, 10);                    /* contour lines */
    int minima = 0;
    for (const char *p = strstr(text, "data-minimum="); p; p = strstr(p + 1, "data-minimum=")) minima++;
    ck_assert_int_eq(minima, 4);                     /* Himmelblau's four minima */
    ck_assert(strstr(text, "(x^2 + y - 11)^2 + (x + y^2 - 7)^2"));
    ck_assert(strstr(text, "sgd lr 0.2: left the range at step"));
    ck_assert(strstr(text, "clip-path=\"url(#box)\""));
    free(text);

    nabla("optim-path", "--fn", "sphere", "--out", svg, NULL);
    expect_fail(2, "unknown function 'sphere' (rosenbrock, beale, himmelblau, quadratic)");
    nabla("optim-path", "--optim", "sgd,lbfgs", "--out", svg, NULL);
    expect_fail(2, "unknown optimizer 'lbfgs'");
    nabla("optim-path", "--optim", "sgd,adam", "--lr", "0.1,0.2,0.3", "--out", svg, NULL);
    expect_fail(2, "--lr gives one lr or one per optimizer");
    nabla("optim-path", "--steps", "0", "--out", svg, NULL);
    expect_fail(2, "--steps must be in 1..1000000");
    nabla("optim-path", NULL);
    expect_fail(2, "--out FILE.svg is required");
    nabla("optim-path", "--start", "1", "--out", svg, NULL);
    expect_fail(2, "--start expects X,Y (got '1')");
    nabla("optim-path", "--optim", "adam", "--lr", "-1", "--out", svg, NULL);
    expect_fail(1, "adam: optimizer: Invalid learning rate: -1.0");
    nabla("optim-path", "--sched", "bogus", "--out", svg, NULL);
    expect_fail(1, "unknown schedule 'bogus'");
    nabla("optim-path", "--out", "/nonexistent/dir/p.svg", NULL);
    expect_fail(1, "cannot write /nonexistent/dir/p.svg");
}
END_TEST

/* ---- nabla compare ------------------------------------------------------------------------ */
static const char *tiny(void) { return fixture("tiny"); }

/* The lines of a metrics file that start with prefix (at most max, each < 1024 bytes). */
static int lines_of(const char *path, const char *prefix, char lines[][1024], int max) {
    char *text = slurp_file(path);
    int n = 0;
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n"))
        if (!strncmp(l, prefix, strlen(prefix)) && n < max) snprintf(lines[n++], 1024, "%s", l);
    free(text);
    return n;
}

/* The text of "key": up to the next comma or brace, for exact comparisons of the numbers as written. */
static void field(const char *line, const char *key, char *buf, size_t n) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    ck_assert_msg(p != NULL, "no %s in %s", key, line);
    p += strlen(pat);
    size_t len = strcspn(p, ",}");
    snprintf(buf, n, "%.*s", (int)len, p);
}

/* Epoch lines of a and b agree on every number except the timings. */
static void same_numbers(const char *a, const char *b, int epochs) {
    static char la[16][1024], lb[16][1024];
    ck_assert_int_eq(lines_of(a, "{\"epoch\": ", la, 16), epochs);
    ck_assert_int_eq(lines_of(b, "{\"epoch\": ", lb, 16), epochs);
    const char *keys[] = {"epoch", "step", "train_loss", "test_loss", "test_acc", "lr"};
    for (int e = 0; e < epochs; e++)
        for (int k = 0; k < 6; k++) {
            char x[64], y[64];
            field(la[e], keys[k], x, sizeof x);
            field(lb[e], keys[k], y, sizeof y);
            ck_assert_msg(!strcmp(x, y), "epoch %d %s: %s in %s, %s in %s", e + 1, keys[k], x, a, y, b);
        }
}

/* summary.md's table rows without the epoch-time column (the 9th of 10 '|'-separated cells). */
static void table_without_times(const char *md, char *out, size_t n) {
    char *text = slurp_file(md);
    size_t k = 0;
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
        if (strncmp(l, "| ", 2)) continue;
        int cell = 0;
        for (char *c = l; *c && k + 1 < n; c++) {
            if (*c == '|') cell++;
            if (cell != 8 || *c == '|') out[k++] = *c;
        }
        if (k + 1 < n) out[k++] = '\n';
    }
    out[k] = '\0';
    free(text);
}

START_TEST(test_compare_arms_equal_plain_runs) {
    char dir[4096], d1[4200], d2[4200], plain[4200], path[4300], path2[4300];
    snprintf(dir, sizeof dir, "%s", temp_dir());
    snprintf(d1, sizeof d1, "%s/c1", dir);
    snprintf(d2, sizeof d2, "%s/c2", dir);
    snprintf(plain, sizeof plain, "%s/plain.jsonl", dir);
    nabla("compare", "--data", tiny(), "--optim", "sgd,adam,rmsprop,adagrad", "--epochs", "3", "--batch", "16",
          "--out", d1, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "== sgd ==") && strstr(R.out, "== adagrad =="), "%s", R.out);
    /* each arm is the plain `nabla train` with that optimizer: the same numbers, the same header */
    const char *names[] = {"sgd", "adam", "rmsprop", "adagrad"};
    static char h1[1][1024], h2[1][1024];
    for (int k = 0; k < 4; k++) {
        nabla("train", "--data", tiny(), "--epochs", "3", "--batch", "16", "--optim", names[k], "--metrics", plain,
              NULL);
        expect_ok();
        snprintf(path, sizeof path, "%s/%s.jsonl", d1, names[k]);
        same_numbers(path, plain, 3);
        ck_assert_int_eq(lines_of(path, "{\"flags\": ", h1, 1), 1);
        ck_assert_int_eq(lines_of(plain, "{\"flags\": ", h2, 1), 1);
        ck_assert_str_eq(h1[0], h2[0]); /* flags and initial weights */
    }
    /* the curves: one line per arm and series, through the numbers of its metrics file */
    snprintf(path, sizeof path, "%s/curves.svg", d1);
    svg_line *l;
    int n = read_svg(path, &l);
    for (int k = 0; k < 4; k++) {
        char run[8];
        snprintf(run, sizeof run, "%d", k);
        ck_assert_int_eq(svg_count(l, n, "data-run", run), 4); /* train_loss, test_loss, test_acc, lr */
        snprintf(path2, sizeof path2, "%s/%s.jsonl", d1, names[k]);
        static char ep[3][1024];
        ck_assert_int_eq(lines_of(path2, "{\"epoch\": ", ep, 3), 3);
        double x[3], tl[3], ta[3];
        for (int e = 0; e < 3; e++) {
            char b[64];
            x[e] = e + 1;
            field(ep[e], "test_loss", b, sizeof b);
            tl[e] = strtod(b, NULL);
            field(ep[e], "test_acc", b, sizeof b);
            ta[e] = strtod(b, NULL);
        }
        expect_line(l, n, run, "test_loss", x, tl, 3);
        expect_line(l, n, run, "test_acc", x, ta, 3);
    }
    svg_lines_free(l, n);
    snprintf(path, sizeof path, "%s/curves-steps.svg", d1);
    n = read_svg(path, &l);
    ck_assert_int_eq(svg_count(l, n, "data-series", "step_loss"), 4); /* --log-every 10 by default */
    svg_lines_free(l, n);
    char *md;
    snprintf(path, sizeof path, "%s/summary.md", d1);
    md = slurp_file(path);
    ck_assert_msg(strstr(md, "Every arm started from the same initial weights (seed 0, CRC-32"), "%s", md);
    ck_assert_msg(strstr(md, "| sgd | 0.1 | ") && strstr(md, "| adam | 0.001 | ") && strstr(md, "| rmsprop | 0.01 | ") &&
                  strstr(md, "| adagrad | 0.01 | "), "%s", md);
    ck_assert_msg(strstr(md, "(the highest final training loss of the arms)"), "%s", md);
    free(md);

    /* reproducible: the same flags give the same numbers and the same summary (but its times) */
    nabla("compare", "--data", tiny(), "--optim", "sgd,adam,rmsprop,adagrad", "--epochs", "3", "--batch", "16",
          "--out", d2, NULL);
    expect_ok();
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/%s.jsonl", d1, names[k]);
        snprintf(path2, sizeof path2, "%s/%s.jsonl", d2, names[k]);
        same_numbers(path, path2, 3);
    }
    static char t1[8192], t2[8192];
    snprintf(path, sizeof path, "%s/summary.md", d1);
    snprintf(path2, sizeof path2, "%s/summary.md", d2);
    table_without_times(path, t1, sizeof t1);
    table_without_times(path2, t2, sizeof t2);
    ck_assert_str_eq(t1, t2);
    ck_assert_int_eq((int)strlen(t1) > 200, 1);
}
END_TEST

START_TEST(test_compare_lrs_target_and_errors) {
    char dir[4096], d[4200], plain[4200], path[4300];
    snprintf(dir, sizeof dir, "%s", temp_dir());
    snprintf(d, sizeof d, "%s/c", dir);
    snprintf(plain, sizeof plain, "%s/plain.jsonl", dir);
    /* one lr per arm, the same optimizer twice, a schedule and a target loss */
    nabla("compare", "--data", tiny(), "--optim", "sgd,sgd", "--lr", "0.05,0.01", "--epochs", "2", "--batch", "16",
          "--sched", "step", "--step-size", "1", "--gamma", "0.5", "--target-loss", "0.5", "--log-every", "2",
          "--out", d, NULL);
    expect_ok();
    nabla("train", "--data", tiny(), "--epochs", "2", "--batch", "16", "--lr", "0.01", "--sched", "step",
          "--step-size", "1", "--gamma", "0.5", "--metrics", plain, NULL);
    expect_ok();
    snprintf(path, sizeof path, "%s/sgd-2.jsonl", d);
    same_numbers(path, plain, 2);
    static char st[16][1024];
    ck_assert_int_eq(lines_of(path, "{\"step\": ", st, 16), 7); /* 14 steps, a line every 2 */
    snprintf(path, sizeof path, "%s/summary.md", d);
    char *md = slurp_file(path);
    ck_assert_msg(strstr(md, "Training loss to reach: 0.5 (--target-loss)") && strstr(md, "| sgd | 0.05 | ") &&
                  strstr(md, "| sgd | 0.01 | ") && strstr(md, "steps to train loss <= 0.5 |"), "%s", md);
    free(md);

    nabla("compare", "--data", tiny(), "--out", d, NULL);
    expect_fail(2, "--optim A,B,... and --out DIR are required");
    nabla("compare", "--optim", "sgd", NULL);
    expect_fail(2, "--optim A,B,... and --out DIR are required");
    nabla("compare", "--optim", "sgd,adam", "--lr", "0.1,0.2,0.3", "--out", d, NULL);
    expect_fail(2, "--lr gives one lr or one per optimizer (2)");
    nabla("compare", "--optim", "sgd", "--metrics", "m.jsonl", "--out", d, NULL);
    expect_fail(2, "--metrics is not for compare");
    nabla("compare", "--optim", "sgd", "--target-loss", "-1", "--out", d, NULL);
    expect_fail(2, "--target-loss must be a positive number");
    nabla("compare", "--optim", "sgd,adamz", "--data", tiny(), "--epochs", "1", "--out", d, NULL);
    expect_fail(2, "unknown optimizer 'adamz'");
    ck_assert_msg(strstr(R.err, "the adamz arm failed"), "%s", R.err);
    nabla("compare", "--optim", "sgd", "--bogus", "--out", d, NULL);
    expect_fail(2, "unknown option '--bogus'");
    nabla("compare", "--optim", "sgd", "--data", tiny(), "--out", "/nonexistent/dir/c", NULL);
    expect_fail(1, "cannot create /nonexistent/dir/c");
    nabla("compare", "--help", NULL);
    expect_ok();
    ck_assert(strstr(R.out, "usage: nabla compare --optim A,B,..."));
}
END_TEST

int main(void) {
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("plot");
    tcase_add_test(tc, test_plot_two_runs);
    tcase_add_test(tc, test_plot_errors);
    tcase_add_test(tc, test_optim_path_rosenbrock_vs_pytorch);
    tcase_add_test(tc, test_optim_path_other_functions);
    tcase_add_test(tc, test_optim_path_picture_and_errors);
    tcase_add_test(tc, test_compare_arms_equal_plain_runs);
    tcase_add_test(tc, test_compare_lrs_target_and_errors);
    suite_add_tcase(s, tc);
    int failed = run_suite(s);
    free(R.out);
    free(R.err);
    return failed ? 1 : 0;
}
