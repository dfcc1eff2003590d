/* lr_plot.c - `nabla lr-plot`: the learning-rate curve of a schedule, before any training.
 *
 *   nabla lr-plot --sched onecycle --max-lr 0.1 --optim sgd --lr 0.1 --steps 100 --out lr.svg
 *
 * Builds the optimizer and schedule exactly as `nabla train` would (same flags), on one
 * dummy parameter, and records the lr of each of --steps optimizer steps: step i uses the lr
 * after i scheduler steps. Every step is one batch and one epoch (a plateau schedule sees a
 * flat metric, so it decays every patience + 1 steps; --swa-start E --swa-lr X switches to
 * SWALR after step E, as `nabla train` does after epoch E). Writes a self-contained SVG (svg.c; one
 * polyline point per step) and, with --csv, the numbers: step,lr,momentum (%.17g). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "svg.h"

static int write_svg(const char *path, const char *title, const double *lr, long n, double W, double H) {
    double lo = 0, hi = 0;
    for (long i = 0; i < n; i++) {
        if (lr[i] < lo) lo = lr[i];
        if (lr[i] > hi) hi = lr[i];
    }
    svg_axes a = {.left = 72, .top = 34, .width = W - 72 - 20, .height = H - 34 - 46};
    svg_axes_fit(&a, 0, (double)(n - 1), lo, hi, true);
    FILE *f = svg_begin(path, W, H, title);
    if (!f) return -1;
    svg_axes_draw(f, &a, "step", "lr", NULL);
    double *step = malloc(sizeof(double) * (size_t)n);
    if (!step) {
        svg_end(f);
        return -1;
    }
    for (long i = 0; i < n; i++) step[i] = (double)i;
    svg_polyline(f, &a, step, lr, n, svg_color(0), 1.5, NULL, "data-series=\"lr\"");
    free(step);
    return svg_end(f);
}

static int write_csv(const char *path, const double *lr, const double *mom, long n) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "step,lr,momentum\n");
    for (long i = 0; i < n; i++) fprintf(f, "%ld,%.17g,%.17g\n", i, lr[i], mom[i]);
    return fclose(f) ? -1 : 0;
}

static double momentum_of(const nb_optim *o) {
    const nb_value *b = nb_optim_get_value(o, 0, "betas");
    return b && b->kind == NB_VALUE_LIST && b->len > 0 ? nb_value_elems(b)[0] : nb_optim_get(o, 0, "momentum");
}

int cmd_lr_plot(int argc, char **argv) {
    long steps = 100, width = 640, height = 360;
    const char *out = NULL, *csv = NULL, *title = NULL;
    bool help = false;
    cli_flags f = {.n = 0};
    optim_cli_optimizer_flags(&f);
    sched_cli_flags(&f);
    cli_add(&f, (arg_spec){"steps", ARG_INT, &steps, "optimizer steps to plot (default 100): batches for onecycle "
                           "and cyclic, epochs for the others", NULL});
    cli_add(&f, (arg_spec){"out", ARG_STRING, &out, "write the SVG here (required)", NULL});
    cli_add(&f, (arg_spec){"csv", ARG_STRING, &csv, "also write step,lr,momentum here", NULL});
    cli_add(&f, (arg_spec){"title", ARG_STRING, &title, "title of the plot (default: the schedule)", NULL});
    cli_add(&f, (arg_spec){"width", ARG_INT, &width, "SVG width in pixels (640)", NULL});
    cli_add(&f, (arg_spec){"height", ARG_INT, &height, "SVG height in pixels (360)", NULL});
    swa_cli_swalr_flags(&f); /* --swa-start E --swa-lr X: the schedule, then SWALR, as nabla train does */
    cli_add(&f, (arg_spec){"help", ARG_FLAG, &help, "this help", NULL});
    char err[256];
    if (args_parse(argc, argv, 2, f.specs, f.n, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", cli_prog, err);
        return 2;
    }
    if (help) {
        printf("usage: nabla lr-plot --sched NAME [schedule options] [--optim NAME --lr X] --steps N --out FILE.svg [--csv FILE]\n");
        cli_usage(&f);
        return 0;
    }
    if (!out || steps < 1 || steps > 10000000 || width < 200 || height < 150 || width > 10000 || height > 10000) {
        fprintf(stderr, "%s: --out FILE.svg is required, --steps must be in 1..10000000, --width and --height "
                        "in 200..10000 and 150..10000\n", cli_prog);
        return 2;
    }
    if (optim_cli_check() || sched_cli_check() || swa_cli_check()) return 2;
    nb_tensor *p = nb_zeros(NULL, 1, (int64_t[]){1});
    nb_optim *opt = p ? optim_cli_build(&p, 1) : NULL;
    nb_sched *s = NULL;
    double *lr = malloc(sizeof(double) * (size_t)steps), *mom = malloc(sizeof(double) * (size_t)steps);
    int rc = 1;
    bool failed = false;
    if (!opt || !lr || !mom) {
        if (nb_last_status()) fprintf(stderr, "%s: optimizer: %s\n", cli_prog, nb_last_error());
        goto done;
    }
    s = sched_cli_build(opt, 1, steps, &failed);
    if (failed || swa_cli_build(opt, &p, 1)) goto done;
    if (!s) {
        fprintf(stderr, "%s: choose a schedule with --sched (see --help)\n", cli_prog);
        rc = 2;
        goto done;
    }
    for (long i = 0; i < steps; i++) {
        lr[i] = nb_optim_get(opt, 0, "lr");
        mom[i] = momentum_of(opt);
        if (i + 1 < steps && (swa_cli_after_batch(s) || swa_cli_epoch_end(i + 1) || swa_cli_after_epoch(s, 1.0))) {
            fprintf(stderr, "%s: step %ld: %s\n", cli_prog, i + 1, nb_last_error());
            goto done;
        }
    }
    char dflt[128];
    snprintf(dflt, sizeof dflt, "%s (%s), %ld steps", nb_sched_type(s), nb_optim_type(opt), steps);
    if (write_svg(out, title ? title : dflt, lr, steps, (double)width, (double)height)) {
        fprintf(stderr, "%s: cannot write %s\n", cli_prog, out);
        goto done;
    }
    if (csv && write_csv(csv, lr, mom, steps)) {
        fprintf(stderr, "%s: cannot write %s\n", cli_prog, csv);
        goto done;
    }
    printf("wrote %s%s%s\n", out, csv ? " and " : "", csv ? csv : "");
    rc = 0;
done:
    free(lr);
    free(mom);
    swa_cli_free();
    nb_sched_free(s);
    nb_optim_free(opt);
    nb_tensor_free(p);
    return rc;
}
