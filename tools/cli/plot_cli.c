/* plot_cli.c - `nabla plot`: training curves from the metrics files of `nabla train`.
 *
 *   nabla plot run1.jsonl run2.jsonl --out curves.svg [--x epoch|step]
 *
 * One panel per kind of number (loss, accuracy, rmse, lr), one colour per run, one dash per
 * split (train solid, val dashed, test dotted). A metrics file holds a header line with the
 * run's flags ({"flags": {...}}), one line per epoch ({"epoch": ...}) and, with --log-every,
 * per-step lines ({"step": ..., "loss": ...}); the legend names each run by the flags in
 * which the runs differ (or by its file name). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "svg.h"

#define MAX_RUNS 32

typedef struct run {
    metrics_file m;
    char label[256];
} run;

/* A panel: its title, the keys it draws from epoch rows (train, val, test), and the key of the
 * per-step rows drawn on it against steps. */
static const struct panel {
    const char *name, *keys[3], *step_key;
} panels[] = {
    {"loss", {"train_loss", "val_loss", "test_loss"}, "loss"},
    {"accuracy", {"train_acc", "val_acc", "test_acc"}, NULL},
    {"rmse", {"train_rmse", "val_rmse", "test_rmse"}, NULL},
    {"lr", {"lr", NULL, NULL}, "lr"},
};
static const char *split_names[3] = {"train", "val", "test"};
static const char *split_dash[3] = {NULL, "7 4", "2 3"};

/* A flag's value as text ("default" when unset). */
static void flag_text(const cJSON *v, char *buf, size_t n) {
    if (cJSON_IsString(v)) snprintf(buf, n, "%s", v->valuestring);
    else if (cJSON_IsNumber(v)) snprintf(buf, n, "%g", v->valuedouble);
    else if (cJSON_IsBool(v)) snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else snprintf(buf, n, "default");
}

static const char *base_name(const char *path, char *buf, size_t n) {
    const char *s = strrchr(path, '/');
    snprintf(buf, n, "%s", s ? s + 1 : path);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = '\0';
    return buf;
}

/* Legend labels: the flags in which the runs differ ("optim=adam lr=0.001"), else file names. */
static void label_runs(run *runs, int n) {
    for (int i = 0; i < n; i++) runs[i].label[0] = '\0';
    for (int i = 0; i < n && n > 1; i++) {
        if (!runs[i].m.flags) continue;
        for (const cJSON *k = runs[i].m.flags->child; k; k = k->next) {
            bool seen = false, differs = false; /* seen: an earlier run has this key (listed then) */
            char a[128], b[128];
            flag_text(k, a, sizeof a);
            for (int j = 0; j < n; j++) {
                const cJSON *o = runs[j].m.flags ? cJSON_GetObjectItemCaseSensitive(runs[j].m.flags, k->string) : NULL;
                if (o && j < i) seen = true;
                flag_text(o, b, sizeof b);
                if (strcmp(a, b)) differs = true;
            }
            if (!differs || seen) continue;
            for (int j = 0; j < n; j++) {
                const cJSON *o = runs[j].m.flags ? cJSON_GetObjectItemCaseSensitive(runs[j].m.flags, k->string) : NULL;
                flag_text(o, b, sizeof b);
                size_t len = strlen(runs[j].label);
                snprintf(runs[j].label + len, sizeof runs[j].label - len, "%s%s=%s", len ? " " : "", k->string, b);
            }
        }
    }
    for (int i = 0; i < n; i++) {
        bool dup = !runs[i].label[0];
        for (int j = 0; j < n && !dup; j++) dup = j != i && !strcmp(runs[i].label, runs[j].label);
        if (!dup) continue;
        char b[128];
        base_name(runs[i].m.path, b, sizeof b);
        size_t len = strlen(runs[i].label);
        if (len) snprintf(runs[i].label + len, sizeof runs[i].label - len, " (%s)", b);
        else snprintf(runs[i].label, sizeof runs[i].label, "%s", b);
    }
}

/* x (epoch or step) and key of every row of rows; returns the count (arrays malloc'd). */
static long series(const cJSON *rows, const char *xkey, const char *key, double **x, double **y) {
    long n = cJSON_GetArraySize(rows), i = 0;
    *x = malloc(sizeof(double) * (size_t)(n ? n : 1));
    *y = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!*x || !*y) return -1;
    for (const cJSON *o = rows->child; o; o = o->next, i++) {
        (*x)[i] = metrics_num(o, xkey);
        (*y)[i] = metrics_num(o, key);
    }
    return n;
}

/* Calls fn for every line a panel draws (run r, key, split s or -1 for per-step rows). */
typedef void (*line_fn)(void *user, const run *r, int ri, const char *key, const double *x, const double *y,
                        long n, int split);

static int each_line(const run *runs, int nr, const struct panel *p, bool by_step, line_fn fn, void *user) {
    for (int ri = 0; ri < nr; ri++) {
        const char *xkey = by_step ? "step" : "epoch";
        for (int s = -1; s < 3; s++) {
            const char *key = s < 0 ? p->step_key : p->keys[s];
            const cJSON *rows = s < 0 ? runs[ri].m.steps : runs[ri].m.epochs;
            if (!key || (s < 0 && !by_step)) continue;
            /* against steps, the lr of a run with per-step lines comes from those */
            if (by_step && s >= 0 && p->step_key && !strcmp(key, p->step_key) && cJSON_GetArraySize(runs[ri].m.steps))
                continue;
            double *x, *y;
            long n = series(rows, xkey, key, &x, &y);
            if (n < 0) {
                free(x);
                free(y);
                return -1;
            }
            bool any = false;
            for (long i = 0; i < n; i++) any |= isfinite(x[i]) && isfinite(y[i]);
            if (any) fn(user, &runs[ri], ri, key, x, y, n, s);
            free(x);
            free(y);
        }
    }
    return 0;
}

typedef struct range {
    double xlo, xhi, ylo, yhi;
    double epoch_yhi; /* the largest value of the epoch lines */
    int lines;
    bool splits[3];
} range;

static void grow(void *user, const run *r, int ri, const char *key, const double *x, const double *y, long n,
                 int split) {
    (void)r, (void)ri, (void)key;
    range *g = user;
    for (long i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        g->xlo = fmin(g->xlo, x[i]);
        g->xhi = fmax(g->xhi, x[i]);
        g->ylo = fmin(g->ylo, y[i]);
        g->yhi = fmax(g->yhi, y[i]);
        if (split >= 0) g->epoch_yhi = fmax(g->epoch_yhi, y[i]);
    }
    g->lines++;
    if (split >= 0) g->splits[split] = true;
}

typedef struct drawer {
    FILE *f;
    const svg_axes *a;
    const char *panel;
} drawer;

static void draw(void *user, const run *r, int ri, const char *key, const double *x, const double *y, long n,
                 int split) {
    (void)r;
    drawer *d = user;
    char attrs[160];
    snprintf(attrs, sizeof attrs, "data-panel=\"%s\" data-run=\"%d\" data-series=\"%s\"%s", d->panel, ri,
             split < 0 ? "step_loss" : key, split < 0 ? " stroke-opacity=\"0.45\"" : "");
    if (split < 0 && !strcmp(key, "lr")) snprintf(attrs, sizeof attrs,
                                                  "data-panel=\"lr\" data-run=\"%d\" data-series=\"step_lr\"", ri);
    svg_polyline(d->f, d->a, x, y, n, svg_color(ri), split < 0 ? 1.0 : 1.8, split < 0 ? NULL : split_dash[split],
                 attrs);
}

/* The figure: one panel per kind of number that some run has, side by side, legend below. */
static int plot_runs(const run *runs, int nr, bool by_step, const char *out, const char *title, double pw,
                     double ph) {
    const double left = 76, gap = 30, top = title ? 64 : 40, below = 52;
    const int np_all = (int)(sizeof panels / sizeof panels[0]);
    range rg[4];
    int np = 0;
    bool splits[3] = {false, false, false}, step_rows = false;
    for (int p = 0; p < np_all; p++) {
        rg[p] = (range){INFINITY, -INFINITY, INFINITY, -INFINITY, -INFINITY, 0, {false, false, false}};
        if (each_line(runs, nr, &panels[p], by_step, grow, &rg[p])) return 1;
        np += rg[p].lines > 0;
        for (int s = 0; s < 3; s++) splits[s] |= rg[p].splits[s] && p != 3;
    }
    for (int i = 0; i < nr && by_step; i++) step_rows |= cJSON_GetArraySize(runs[i].m.steps) > 0;
    if (!np) {
        fprintf(stderr, "%s: nothing to draw: no run has %s numbers%s\n", cli_prog, by_step ? "step" : "epoch",
                by_step ? " (the epoch lines of this file have no \"step\"; per-step lines come from nabla "
                          "train --log-every)" : "");
        return 1;
    }
    /* legend: runs in one column, line styles in the next */
    const char *rl[MAX_RUNS], *rc[MAX_RUNS], *sl[4], *sc[4], *sd[4];
    size_t widest = 0;
    for (int i = 0; i < nr; i++) {
        rl[i] = runs[i].label;
        rc[i] = svg_color(i);
        if (strlen(rl[i]) > widest) widest = strlen(rl[i]);
    }
    int ns = 0;
    for (int s = 0; s < 3; s++)
        if (splits[s]) {
            sl[ns] = split_names[s];
            sc[ns] = "#555555";
            sd[ns++] = split_dash[s];
        }
    if (step_rows) {
        sl[ns] = "per step (mean of the last --log-every batches)";
        sc[ns] = "#aaaaaa";
        sd[ns++] = NULL;
    }
    double legend_h = 16.0 * (nr > ns ? nr : ns);
    double W = left + np * (pw + left) - left + gap + 16;
    double H = top + ph + below + legend_h + 12;
    if (W < left + 60 + 7.0 * (double)widest + 300) W = left + 60 + 7.0 * (double)widest + 300;
    FILE *f = svg_begin(out, W, H, title);
    if (!f) {
        fprintf(stderr, "%s: cannot write %s: %s\n", cli_prog, out, strerror(errno));
        return 1;
    }
    int k = 0;
    for (int p = 0; p < np_all; p++) {
        if (!rg[p].lines) continue;
        svg_axes a = {.left = left + k++ * (pw + left), .top = top, .width = pw, .height = ph};
        double ylo = rg[p].ylo, yhi = rg[p].yhi;
        /* the first per-step losses can be far above the rest (a spike): the epoch lines set
         * the scale, with room for the noise of the per-step lines (clipped) */
        if (p == 0 && isfinite(rg[p].epoch_yhi) && yhi > 2.5 * rg[p].epoch_yhi) yhi = 2.5 * rg[p].epoch_yhi;
        if (p == 1 && ylo > 0) ylo = fmax(0, ylo - 0.05); /* accuracy: a little room below */
        if ((p == 0 || p == 2 || p == 3) && ylo > 0 && ylo < 0.5 * rg[p].yhi) ylo = 0;
        svg_axes_fit(&a, rg[p].xlo, rg[p].xhi, ylo, yhi, true);
        if (p == 3 && rg[p].ylo > 0 && rg[p].yhi > 20 * rg[p].ylo) /* lrs far apart: a log scale */
            svg_axes_fit_logy(&a, rg[p].ylo, rg[p].yhi);
        if (p == 1 && a.ymax > 1 && rg[p].yhi <= 1) a.ymax = 1;
        svg_axes_draw(f, &a, by_step ? "step" : "epoch", panels[p].name, panels[p].name);
        drawer d = {f, &a, panels[p].name};
        svg_clip_begin(f, &a, panels[p].name);
        each_line(runs, nr, &panels[p], by_step, draw, &d);
        svg_clip_end(f);
    }
    double ly = top + ph + below;
    svg_legend(f, left, ly, nr, rl, rc, NULL);
    svg_legend(f, left + 60 + 7.0 * (double)widest, ly, ns, sl, sc, sd);
    if (svg_end(f)) {
        fprintf(stderr, "%s: error writing %s\n", cli_prog, out);
        return 1;
    }
    return 0;
}

int plot_files(int n, const char *const *paths, const char *const *labels, bool by_step, const char *out,
               const char *title, double panel_width, double panel_height) {
    run runs[MAX_RUNS] = {0};
    int rc = 1;
    if (n < 1 || n > MAX_RUNS) return 1;
    for (int i = 0; i < n; i++)
        if (metrics_read(&runs[i].m, paths[i])) goto done;
    label_runs(runs, n);
    for (int i = 0; labels && i < n; i++)
        if (labels[i]) snprintf(runs[i].label, sizeof runs[i].label, "%s", labels[i]);
    rc = plot_runs(runs, n, by_step, out, title, panel_width, panel_height);
done:
    for (int i = 0; i < n; i++) metrics_free(&runs[i].m);
    return rc;
}

int cmd_plot(int argc, char **argv) {
    const char *out = NULL, *xaxis = "epoch", *title = NULL, *labels = NULL;
    long width = 360, height = 260;
    bool help = false;
    cli_flags f = {.n = 0};
    cli_add(&f, (arg_spec){"out", ARG_STRING, &out, "write the SVG here (required)", NULL});
    cli_add(&f, (arg_spec){"x", ARG_STRING, &xaxis, "epoch | step: the horizontal axis (default epoch; step "
                           "also draws the per-step rows of train --log-every)", NULL});
    cli_add(&f, (arg_spec){"labels", ARG_STRING, &labels, "legend names of the runs, comma-separated (default: "
                           "the flags in which the runs differ)", NULL});
    cli_add(&f, (arg_spec){"title", ARG_STRING, &title, "title of the figure", NULL});
    cli_add(&f, (arg_spec){"width", ARG_INT, &width, "width of each panel's box in pixels (360)", NULL});
    cli_add(&f, (arg_spec){"height", ARG_INT, &height, "height of each panel's box in pixels (260)", NULL});
    cli_add(&f, (arg_spec){"help", ARG_FLAG, &help, "this help", NULL});
    int first = 2;
    while (first < argc && strncmp(argv[first], "--", 2)) first++;
    char err[256];
    if (args_parse(argc, argv, first, f.specs, f.n, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", cli_prog, err);
        return 2;
    }
    if (help) {
        printf("usage: nabla plot RUN.jsonl [RUN2.jsonl ...] --out FILE.svg [options]\n"
               "  RUN.jsonl: the --metrics file of nabla train (or of each arm of nabla compare)\n");
        args_usage(f.specs, f.n);
        return 0;
    }
    int nr = first - 2;
    bool by_step = !strcmp(xaxis, "step");
    if (!out || nr < 1 || nr > MAX_RUNS || (!by_step && strcmp(xaxis, "epoch")) || width < 120 || height < 100 ||
        width > 4000 || height > 4000) {
        fprintf(stderr, "%s: give 1..%d metrics files and --out FILE.svg; --x is epoch or step; --width and "
                        "--height in 120..4000 and 100..4000\n", cli_prog, MAX_RUNS);
        return 2;
    }
    const char *names[MAX_RUNS] = {NULL};
    char buf[MAX_RUNS][128];
    for (int i = 0; labels && i < nr; i++) { /* the user's names */
        size_t len = strcspn(labels, ",");
        snprintf(buf[i], sizeof buf[i], "%.*s", (int)len, labels);
        names[i] = buf[i];
        labels += len + (labels[len] == ',');
    }
    int rc = plot_files(nr, (const char *const *)argv + 2, names, by_step, out, title, (double)width, (double)height);
    if (!rc) printf("wrote %s\n", out);
    return rc;
}
