/* optim_path_cli.c - `nabla optim-path`: the picture every optimizer lecture shows. The
 * contours of a 2-D test function and the path of each optimizer from the same start,
 * computed with nabla's own autograd and optimizers:
 *
 *   nabla optim-path --fn rosenbrock --optim sgd,momentum,adam --steps 300 --out path.svg
 *
 * The point (x, y) is one parameter tensor p of 2 elements; each step is PyTorch's loop:
 * loss = f(p[0], p[1]); zero_grad; backward; step (then the schedule of --sched, stepped once
 * per step as an epoch, plateau on the loss). sgd is SGD without momentum, momentum SGD with
 * momentum 0.9, nesterov the same with Nesterov momentum; the others are torch.optim's with
 * their defaults except lr. With --csv the points themselves: optimizer,step,x,y,f (%.9g). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "svg.h"

/* ---- the functions, written once with nabla's ops: elementwise over x and y of one shape, so
 * the same code gives a trajectory's loss (0-d x, y) and the contour grid (x, y of G*G) ---- */
typedef nb_tensor *(*fn2)(nb_arena *ar, nb_tensor *x, nb_tensor *y);

static nb_tensor *sq(nb_arena *ar, nb_tensor *t) { return nb_pow(ar, t, 2); }

/* (1 - x)^2 + 100 (y - x^2)^2; minimum 0 at (1, 1) */
static nb_tensor *rosenbrock(nb_arena *ar, nb_tensor *x, nb_tensor *y) {
    nb_tensor *a = sq(ar, nb_add_scalar(ar, nb_neg(ar, x), 1));
    return nb_add(ar, a, nb_mul_scalar(ar, sq(ar, nb_sub(ar, y, sq(ar, x))), 100));
}

/* (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2; minimum 0 at (3, 0.5) */
static nb_tensor *beale(nb_arena *ar, nb_tensor *x, nb_tensor *y) {
    static const float c[3] = {1.5f, 2.25f, 2.625f};
    nb_tensor *sum = NULL;
    for (int k = 0; k < 3; k++) {
        nb_tensor *yk = k == 0 ? y : nb_pow(ar, y, (float)(k + 1));
        nb_tensor *t = sq(ar, nb_add(ar, nb_add_scalar(ar, nb_neg(ar, x), c[k]), nb_mul(ar, x, yk)));
        sum = sum ? nb_add(ar, sum, t) : t;
    }
    return sum;
}

/* (x^2 + y - 11)^2 + (x + y^2 - 7)^2; four minima of 0 */
static nb_tensor *himmelblau(nb_arena *ar, nb_tensor *x, nb_tensor *y) {
    nb_tensor *a = sq(ar, nb_add_scalar(ar, nb_add(ar, sq(ar, x), y), -11));
    return nb_add(ar, a, sq(ar, nb_add_scalar(ar, nb_add(ar, x, sq(ar, y)), -7)));
}

/* x^2 + 10 y^2: a bowl ten times steeper along y; minimum 0 at (0, 0) */
static nb_tensor *quadratic(nb_arena *ar, nb_tensor *x, nb_tensor *y) {
    return nb_add(ar, sq(ar, x), nb_mul_scalar(ar, sq(ar, y), 10));
}

static const struct function {
    const char *name, *formula;
    fn2 f;
    double start[2], x0, x1, y0, y1; /* default start, and the plotted range */
    double lr_sgd, lr_adaptive;      /* default lrs: the SGD family, the others */
    int nmin;
    double minima[4][2];
} functions[] = {
    {"rosenbrock", "(1 - x)^2 + 100 (y - x^2)^2", rosenbrock, {-1.5, 2}, -2, 2, -1, 3, 5e-4, 0.05, 1, {{1, 1}}},
    {"beale", "(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2", beale, {1, 1.5}, -1, 4, -1.5, 2,
     1e-3, 0.05, 1, {{3, 0.5}}},
    {"himmelblau", "(x^2 + y - 11)^2 + (x + y^2 - 7)^2", himmelblau, {0, 0}, -5, 5, -5, 5, 5e-3, 0.1, 4,
     {{3, 2}, {-2.805118, 3.131312}, {-3.779310, -3.283186}, {3.584428, -1.848126}}},
    {"quadratic", "x^2 + 10 y^2", quadratic, {-4, 2}, -5, 5, -3, 3, 0.02, 0.1, 1, {{0, 0}}},
};
#define NFUNCS ((int)(sizeof functions / sizeof functions[0]))

/* ---- the optimizers ------------------------------------------------------------------------ */
static const char *const optim_names[] = {"sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad",
                                          "adadelta", "adamax", "nadam", "radam", "rprop"};
#define NOPTIMS ((int)(sizeof optim_names / sizeof optim_names[0]))

static bool sgd_family(const char *name) {
    return !strcmp(name, "sgd") || !strcmp(name, "momentum") || !strcmp(name, "nesterov");
}

/* By PyTorch's class name (nb_optim_new, any case); momentum and nesterov are SGD's. */
static nb_optim *make_optim(const char *name, nb_tensor *p, double lr) {
    nb_tensor *ps[1] = {p};
    nb_value kw[3] = {nb_num("lr", lr)};
    int n = 1;
    if (!sgd_family(name)) return nb_optim_new(name, ps, 1, kw, n);
    if (strcmp(name, "sgd")) kw[n++] = nb_num("momentum", 0.9);
    if (!strcmp(name, "nesterov")) kw[n++] = nb_bool("nesterov", true);
    return nb_optim_new("SGD", ps, 1, kw, n);
}

/* One path: pts[2 * (steps + 1)] and f at each point; *done is the number of steps taken
 * (fewer when the point left every sensible range: |x| or |y| > 1e6, or not finite). */
typedef struct path {
    char name[16];
    double lr;
    double *pts, *f;
    long done;
} path;

#define FAIL(what)                                                           \
    do {                                                                     \
        fprintf(stderr, "%s: %s: %s: %s\n", cli_prog, pa->name, what, nb_last_error()); \
        goto out;                                                            \
    } while (0)

static int run_path(const struct function *fn, path *pa, const double start[2], long steps, nb_arena *ar) {
    int rc = 1;
    nb_tensor *p = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){2}, (float[]){(float)start[0], (float)start[1]});
    nb_optim *opt = NULL;
    nb_sched *s = NULL;
    bool failed = false;
    if (!p || nb_requires_grad(p, true)) FAIL("parameter");
    if (!(opt = make_optim(pa->name, p, pa->lr))) FAIL("optimizer");
    s = sched_cli_build(opt, 1, steps, &failed);
    if (failed) goto out;
    pa->done = 0;
    for (long i = 0;; i++) {
        pa->pts[2 * i] = nb_f32(p)[0];
        pa->pts[2 * i + 1] = nb_f32(p)[1];
        nb_arena_reset(ar);
        nb_tensor *loss = fn->f(ar, nb_select(ar, p, 0, 0), nb_select(ar, p, 0, 1)); /* f(p[0], p[1]) */
        if (!loss) FAIL("forward");
        pa->f[i] = nb_item(loss);
        if (i == steps || !(fabs(pa->pts[2 * i]) <= 1e6 && fabs(pa->pts[2 * i + 1]) <= 1e6)) break;
        nb_optim_zero_grad(opt, true);
        if (nb_backward(loss) || nb_optim_step(opt)) FAIL("step");
        if (sched_cli_after_batch(s) || sched_cli_after_epoch(s, pa->f[i])) FAIL("scheduler");
        pa->done = i + 1;
    }
    rc = 0;
out:
    nb_sched_free(s);
    nb_optim_free(opt);
    nb_tensor_free(p);
    return rc;
}

/* ---- contours: marching squares over a grid of f --------------------------------------------- */
#define GRID 160

/* f on a GRID x GRID grid over the plotted range (row j: y, column i: x). */
static int grid_values(const struct function *fn, float *z, nb_arena *ar) {
    int64_t shape[1] = {GRID * GRID};
    nb_tensor *x = nb_empty(ar, NB_FLOAT32, 1, shape), *y = nb_empty(ar, NB_FLOAT32, 1, shape);
    if (!x || !y) return -1;
    for (int j = 0; j < GRID; j++)
        for (int i = 0; i < GRID; i++) {
            nb_f32(x)[j * GRID + i] = (float)(fn->x0 + (fn->x1 - fn->x0) * i / (GRID - 1));
            nb_f32(y)[j * GRID + i] = (float)(fn->y0 + (fn->y1 - fn->y0) * j / (GRID - 1));
        }
    bool prev = nb_set_grad_enabled(false);
    nb_tensor *v = fn->f(ar, x, y);
    nb_set_grad_enabled(prev);
    if (!v) return -1;
    memcpy(z, nb_f32(v), sizeof(float) * GRID * GRID);
    return 0;
}

/* The segments of the level set f = level as one path. */
static void contour(FILE *f, const svg_axes *a, const struct function *fn, const float *z, double level,
                    const char *color) {
    double dx = (fn->x1 - fn->x0) / (GRID - 1), dy = (fn->y1 - fn->y0) / (GRID - 1);
    fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"0.8\" data-level=\"%.6g\" d=\"", color, level);
    for (int j = 0; j + 1 < GRID; j++)
        for (int i = 0; i + 1 < GRID; i++) {
            /* corners counter-clockwise from bottom-left, and the edges between them */
            double v[4] = {z[j * GRID + i], z[j * GRID + i + 1], z[(j + 1) * GRID + i + 1], z[(j + 1) * GRID + i]};
            double cx[4] = {0, 1, 1, 0}, cy[4] = {0, 0, 1, 1};
            double px[4], py[4];
            int n = 0;
            for (int e = 0; e < 4; e++) {
                int b = (e + 1) % 4;
                if ((v[e] < level) == (v[b] < level)) continue;
                double t = (level - v[e]) / (v[b] - v[e]);
                px[n] = svg_px(a, fn->x0 + (i + cx[e] + t * (cx[b] - cx[e])) * dx);
                py[n++] = svg_py(a, fn->y0 + (j + cy[e] + t * (cy[b] - cy[e])) * dy);
            }
            for (int k = 0; k + 1 < n; k += 2) /* 2 crossings: one segment; 4 (a saddle): two */
                fprintf(f, "M%.2f %.2fL%.2f %.2f", px[k], py[k], px[k + 1], py[k + 1]);
        }
    fprintf(f, "\"/>\n");
}

static int write_svg(const char *out, const struct function *fn, const path *paths, int np, long steps,
                     const char *title) {
    const double W = 64 + 520 + 300, H = 560;
    svg_axes a = {.left = 64, .top = 40, .width = 520, .height = 520.0 * (fn->y1 - fn->y0) / (fn->x1 - fn->x0)};
    if (a.height > H - 90) a.height = H - 90;
    a.xmin = fn->x0;
    a.xmax = fn->x1;
    a.ymin = fn->y0;
    a.ymax = fn->y1;
    a.xstep = svg_nice_step(fn->x1 - fn->x0);
    a.ystep = svg_nice_step(fn->y1 - fn->y0);
    float *z = malloc(sizeof(float) * GRID * GRID);
    nb_arena *ar = nb_arena_new(0);
    FILE *f = NULL;
    int rc = 1;
    if (!z || !ar || grid_values(fn, z, ar)) {
        fprintf(stderr, "%s: contours: %s\n", cli_prog, nb_last_error());
        goto out;
    }
    if (!(f = svg_begin(out, W, a.top + a.height + 60, title))) {
        fprintf(stderr, "%s: cannot write %s\n", cli_prog, out);
        goto out;
    }
    svg_axes_draw(f, &a, "x", "y", NULL);
    svg_clip_begin(f, &a, "box");
    /* levels: geometric from just above the smallest value on the grid to the largest */
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < GRID * GRID; k++) {
        lo = fmin(lo, z[k]);
        hi = fmax(hi, z[k]);
    }
    double l0 = fmax(lo, hi * 1e-7) * 1.5, l1 = hi * 0.9;
    const int nlev = 18;
    for (int k = 0; k < nlev && l1 > l0; k++) {
        double t = (double)k / (nlev - 1), level = l0 * pow(l1 / l0, t);
        char color[16]; /* dark blue (low) to light grey (high) */
        snprintf(color, sizeof color, "#%02x%02x%02x", (int)(60 + 150 * t), (int)(90 + 130 * t), (int)(170 + 60 * t));
        contour(f, &a, fn, z, level, color);
    }
    for (int m = 0; m < fn->nmin; m++) /* the minima */
        fprintf(f, "<path d=\"M%.2f %.2fl5 5m-5 -5l-5 5m5 -5l5 -5m-5 5l-5 -5\" stroke=\"#000000\" "
                   "stroke-width=\"2\" data-minimum=\"%g,%g\"/>\n",
                svg_px(&a, fn->minima[m][0]), svg_py(&a, fn->minima[m][1]), fn->minima[m][0], fn->minima[m][1]);
    const char *labels[16], *colors[16];
    char text[16][96];
    for (int k = 0; k < np; k++) {
        const path *pa = &paths[k];
        long n = pa->done + 1;
        double *xs = malloc(sizeof(double) * (size_t)n), *ys = malloc(sizeof(double) * (size_t)n);
        if (!xs || !ys) {
            free(xs);
            free(ys);
            fprintf(stderr, "%s: out of memory\n", cli_prog);
            goto out;
        }
        for (long i = 0; i < n; i++) {
            xs[i] = pa->pts[2 * i];
            ys[i] = pa->pts[2 * i + 1];
        }
        char attrs[96];
        snprintf(attrs, sizeof attrs, "data-run=\"%d\" data-series=\"%.15s\" data-lr=\"%g\"", k, pa->name, pa->lr);
        svg_polyline(f, &a, xs, ys, n, svg_color(k), 2, NULL, attrs);
        free(xs);
        free(ys);
        if (pa->done < steps)
            snprintf(text[k], sizeof text[k], "%.15s lr %g: left the range at step %ld", pa->name, pa->lr, pa->done);
        else
            snprintf(text[k], sizeof text[k], "%.15s lr %g: f = %.3g", pa->name, pa->lr, pa->f[pa->done]);
        labels[k] = text[k];
        colors[k] = svg_color(k);
    }
    svg_clip_end(f);
    fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"#000000\"/>\n", svg_px(&a, paths[0].pts[0]),
            svg_py(&a, paths[0].pts[1]));
    double lx = a.left + a.width + 24;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\">", lx, a.top + 4);
    svg_text(f, fn->name);
    fprintf(f, "</text>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">", lx, a.top + 20);
    svg_text(f, fn->formula);
    fprintf(f, "</text>\n");
    svg_legend(f, lx, a.top + 36, np, labels, colors, NULL);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">start (%g, %g), %ld steps; x: minimum</text>\n", lx,
            a.top + 44 + 16.0 * np, paths[0].pts[0], paths[0].pts[1], steps);
    rc = svg_end(f) ? 1 : 0;
    f = NULL;
    if (rc) fprintf(stderr, "%s: error writing %s\n", cli_prog, out);
out:
    if (f) svg_end(f);
    nb_arena_free(ar);
    free(z);
    return rc;
}

static int write_csv(const char *out, const path *paths, int np) {
    FILE *f = fopen(out, "w");
    if (!f) return -1;
    fprintf(f, "optimizer,step,x,y,f\n");
    for (int k = 0; k < np; k++)
        for (long i = 0; i <= paths[k].done; i++)
            fprintf(f, "%s,%ld,%.9g,%.9g,%.9g\n", paths[k].name, i, paths[k].pts[2 * i], paths[k].pts[2 * i + 1],
                    paths[k].f[i]);
    return fclose(f) ? -1 : 0;
}

int cmd_optim_path(int argc, char **argv) {
    const char *fname = "rosenbrock", *optims = "sgd,momentum,nesterov,adam,rmsprop,adagrad", *lrs = NULL;
    const char *start_arg = NULL, *out = NULL, *csv = NULL, *title = NULL;
    long steps = 200;
    bool help = false;
    cli_flags f = {.n = 0};
    cli_add(&f, (arg_spec){"fn", ARG_STRING, &fname, "rosenbrock | beale | himmelblau | quadratic (default rosenbrock)",
                           NULL});
    cli_add(&f, (arg_spec){"optim", ARG_STRING, &optims, "optimizers, comma-separated: sgd, momentum, nesterov, adam, "
                           "adamw, rmsprop, adagrad, adadelta, adamax, nadam, radam, rprop (default "
                           "sgd,momentum,nesterov,adam,rmsprop,adagrad)", NULL});
    cli_add(&f, (arg_spec){"lr", ARG_STRING, &lrs, "one lr for all, or one per optimizer (default per function: one "
                           "for sgd/momentum/nesterov, one for the others)", NULL});
    cli_add(&f, (arg_spec){"steps", ARG_INT, &steps, "optimizer steps (default 200)", NULL});
    cli_add(&f, (arg_spec){"start", ARG_STRING, &start_arg, "X,Y start point (default per function)", NULL});
    cli_add(&f, (arg_spec){"out", ARG_STRING, &out, "write the SVG here (required)", NULL});
    cli_add(&f, (arg_spec){"csv", ARG_STRING, &csv, "also write optimizer,step,x,y,f here", NULL});
    cli_add(&f, (arg_spec){"title", ARG_STRING, &title, "title of the plot", NULL});
    sched_cli_flags(&f); /* --sched and its options: stepped once per step */
    cli_add(&f, (arg_spec){"help", ARG_FLAG, &help, "this help", NULL});
    char err[256];
    if (args_parse(argc, argv, 2, f.specs, f.n, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", cli_prog, err);
        return 2;
    }
    if (help) {
        printf("usage: nabla optim-path --fn NAME --optim A,B,... --steps N [--lr X[,Y...]] [--sched ...] "
               "--out FILE.svg [--csv FILE]\n");
        args_usage(f.specs, f.n);
        return 0;
    }
    const struct function *fn = NULL;
    for (int k = 0; k < NFUNCS; k++)
        if (!strcmp(fname, functions[k].name)) fn = &functions[k];
    if (!fn) {
        fprintf(stderr, "%s: unknown function '%s' (rosenbrock, beale, himmelblau, quadratic)\n", cli_prog, fname);
        return 2;
    }
    if (!out || steps < 1 || steps > 1000000) {
        fprintf(stderr, "%s: --out FILE.svg is required and --steps must be in 1..1000000\n", cli_prog);
        return 2;
    }
    path paths[16];
    memset(paths, 0, sizeof paths);
    int np = 0;
    for (const char *s = optims; *s && np < 16; np++) {
        size_t len = strcspn(s, ",");
        snprintf(paths[np].name, sizeof paths[np].name, "%.*s", (int)len, s);
        bool known = false;
        for (int k = 0; k < NOPTIMS; k++) known |= !strcmp(paths[np].name, optim_names[k]);
        if (!known || len >= sizeof paths[np].name) {
            fprintf(stderr, "%s: unknown optimizer '%.*s' (sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad, "
                            "adadelta, adamax, nadam, radam, rprop)\n", cli_prog, (int)len, s);
            return 2;
        }
        s += len + (s[len] == ',');
    }
    double lr[16], st[2] = {fn->start[0], fn->start[1]};
    int nlr = lrs ? args_list(lrs, lr, 16) : 0;
    if (np < 1 || (lrs && nlr != 1 && nlr != np)) {
        fprintf(stderr, "%s: --optim names 1..16 optimizers and --lr gives one lr or one per optimizer\n", cli_prog);
        return 2;
    }
    if (start_arg && args_list(start_arg, st, 2) != 2) {
        fprintf(stderr, "%s: --start expects X,Y (got '%s')\n", cli_prog, start_arg);
        return 2;
    }
    for (int k = 0; k < np; k++)
        paths[k].lr = nlr ? lr[nlr == 1 ? 0 : k] : sgd_family(paths[k].name) ? fn->lr_sgd : fn->lr_adaptive;
    int rc = 1;
    nb_arena *ar = nb_arena_new(0);
    for (int k = 0; k < np; k++) {
        paths[k].pts = malloc(sizeof(double) * 2 * (size_t)(steps + 1));
        paths[k].f = malloc(sizeof(double) * (size_t)(steps + 1));
        if (!ar || !paths[k].pts || !paths[k].f) {
            fprintf(stderr, "%s: out of memory\n", cli_prog);
            goto done;
        }
        if (run_path(fn, &paths[k], st, steps, ar)) goto done;
    }
    char dflt[160];
    snprintf(dflt, sizeof dflt, "%s from (%g, %g), %ld steps", fn->name, st[0], st[1], steps);
    if (write_svg(out, fn, paths, np, steps, title ? title : dflt)) goto done;
    if (csv && write_csv(csv, paths, np)) {
        fprintf(stderr, "%s: cannot write %s\n", cli_prog, csv);
        goto done;
    }
    for (int k = 0; k < np; k++) {
        const path *pa = &paths[k];
        if (pa->done < steps) printf("%-9s lr %-8g left the range at step %ld\n", pa->name, pa->lr, pa->done);
        else printf("%-9s lr %-8g (%.6g, %.6g)  f %.6g\n", pa->name, pa->lr, pa->pts[2 * steps],
                    pa->pts[2 * steps + 1], pa->f[steps]);
    }
    rc = 0;
done:
    for (int k = 0; k < np; k++) {
        free(paths[k].pts);
        free(paths[k].f);
    }
    nb_arena_free(ar);
    return rc;
}
