/* svg.c - the SVG writer shared by lr-plot, plot, compare and optim-path (see svg.h). */
#include "svg.h"
#include <math.h>
#include <string.h>

const char *svg_color(int k) {
    static const char *tab10[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    return tab10[(k % 10 + 10) % 10];
}

void svg_text(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

double svg_nice_step(double range) {
    if (!(range > 0) || !isfinite(range)) return 1;
    double raw = range / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

FILE *svg_begin(const char *path, double width, double height, const char *title) {
    FILE *f = fopen(path, "w");
    if (!f) return NULL;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n<title>", width, height, width, height);
    svg_text(f, title);
    fprintf(f, "</title>\n<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", width, height);
    if (title && *title) {
        fprintf(f, "<text x=\"%.1f\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">", width / 2);
        svg_text(f, title);
        fprintf(f, "</text>\n");
    }
    return f;
}

int svg_end(FILE *f) {
    fprintf(f, "</svg>\n");
    int bad = ferror(f);
    return fclose(f) || bad ? -1 : 0;
}

/* [lo, hi] widened to multiples of a round step. */
static double fit(double *lo, double *hi, bool integer) {
    if (!(*hi > *lo)) { /* one value (or none): a unit around it */
        double c = isfinite(*lo) ? *lo : 0, u = c != 0 ? fabs(c) * 0.5 : 1;
        *lo = c - u;
        *hi = c + u;
        if (integer) {
            *lo = floor(*lo);
            *hi = ceil(*hi);
        }
    }
    double step = svg_nice_step(*hi - *lo);
    if (integer && step < 1) step = 1;
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
    return step;
}

void svg_axes_fit(svg_axes *a, double xlo, double xhi, double ylo, double yhi, bool x_integer) {
    a->xmin = xlo;
    a->xmax = xhi;
    a->ymin = ylo;
    a->ymax = yhi;
    a->xstep = fit(&a->xmin, &a->xmax, x_integer);
    a->ystep = fit(&a->ymin, &a->ymax, false);
}

void svg_axes_fit_logy(svg_axes *a, double ylo, double yhi) {
    a->ylog = true;
    a->ymin = pow(10, floor(log10(ylo) + 1e-9));
    a->ymax = pow(10, ceil(log10(yhi) - 1e-9));
    if (!(a->ymax > a->ymin)) a->ymax = a->ymin * 10;
    a->ystep = 1; /* a decade */
}

void svg_clip_begin(FILE *f, const svg_axes *a, const char *id) {
    fprintf(f, "<clipPath id=\"%s\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath>\n"
               "<g clip-path=\"url(#%s)\">\n", id, a->left, a->top, a->width, a->height, id);
}

void svg_clip_end(FILE *f) { fprintf(f, "</g>\n"); }

double svg_px(const svg_axes *a, double x) { return a->left + (x - a->xmin) / (a->xmax - a->xmin) * a->width; }
double svg_py(const svg_axes *a, double y) {
    double t = a->ylog ? log10(y / a->ymin) / log10(a->ymax / a->ymin) : (y - a->ymin) / (a->ymax - a->ymin);
    return a->top + a->height - t * a->height;
}

/* The k-th y tick. */
static double ytick(const svg_axes *a, long k) {
    return a->ylog ? a->ymin * pow(10, (double)k) : a->ymin + (double)k * a->ystep;
}

/* Ticks lo, lo + step, ... up to hi (within rounding): how many. */
static long nticks(double lo, double hi, double step) { return (long)floor((hi - lo) / step + 1e-6) + 1; }

void svg_axes_draw(FILE *f, const svg_axes *a, const char *xlabel, const char *ylabel, const char *title) {
    double bottom = a->top + a->height, right = a->left + a->width;
    fprintf(f, "<g stroke=\"#dddddd\" stroke-width=\"1\">\n");
    long ny = a->ylog ? (long)floor(log10(a->ymax / a->ymin) + 0.5) + 1 : nticks(a->ymin, a->ymax, a->ystep), nx = nticks(a->xmin, a->xmax, a->xstep);
    for (long k = 0; k < ny; k++) {
        double py = svg_py(a, ytick(a, k));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\"/>\n", a->left, py, right, py);
    }
    for (long k = 0; k < nx; k++) {
        double px = svg_px(a, a->xmin + (double)k * a->xstep);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\"/>\n", px, a->top, px, bottom);
    }
    fprintf(f, "</g>\n<g text-anchor=\"end\">\n");
    for (long k = 0; k < ny; k++) {
        double v = ytick(a, k);
        fprintf(f, "<text x=\"%.1f\" y=\"%.2f\">%.4g</text>\n", a->left - 6, svg_py(a, v) + 4,
                !a->ylog && fabs(v) < a->ystep * 1e-6 ? 0.0 : v);
    }
    fprintf(f, "</g>\n<g text-anchor=\"middle\">\n");
    for (long k = 0; k < nx; k++) {
        double v = a->xmin + (double)k * a->xstep;
        fprintf(f, "<text x=\"%.2f\" y=\"%.1f\">%.6g</text>\n", svg_px(a, v), bottom + 18,
                fabs(v) < a->xstep * 1e-6 ? 0.0 : v);
    }
    fprintf(f, "</g>\n");
    if (xlabel) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", a->left + a->width / 2, bottom + 36);
        svg_text(f, xlabel);
        fprintf(f, "</text>\n");
    }
    if (ylabel) {
        double cx = a->left - 54, cy = a->top + a->height / 2;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\">", cx, cy,
                cx, cy);
        svg_text(f, ylabel);
        fprintf(f, "</text>\n");
    }
    if (title) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">", a->left + a->width / 2,
                a->top - 8);
        svg_text(f, title);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333333\"/>\n",
            a->left, a->top, a->width, a->height);
}

static void open_line(FILE *f, const svg_axes *a, const char *color, double sw, const char *dash, const char *attrs) {
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%g\"", color, sw);
    if (dash) fprintf(f, " stroke-dasharray=\"%s\"", dash);
    fprintf(f, " data-x-min=\"%.17g\" data-x-max=\"%.17g\" data-left=\"%g\" data-width=\"%g\" "
               "data-y-min=\"%.17g\" data-y-max=\"%.17g\" data-top=\"%g\" data-height=\"%g\"",
            a->xmin, a->xmax, a->left, a->width, a->ymin, a->ymax, a->top, a->height);
    if (a->ylog) fprintf(f, " data-y-log=\"1\"");
    if (attrs && *attrs) fprintf(f, " %s", attrs);
    fprintf(f, " points=\"");
}

void svg_polyline(FILE *f, const svg_axes *a, const double *x, const double *y, long n, const char *color,
                  double stroke_width, const char *dash, const char *attrs) {
    bool open = false, first = true;
    for (long i = 0; i < n; i++) {
        if (!isfinite(y[i]) || !isfinite(x[i]) || (a->ylog && !(y[i] > 0))) {
            if (open) fprintf(f, "\"/>\n");
            open = false;
            continue;
        }
        if (!open) {
            open_line(f, a, color, stroke_width, dash, attrs);
            open = first = true;
        }
        fprintf(f, "%s%.3f,%.3f", first ? "" : " ", svg_px(a, x[i]), svg_py(a, y[i]));
        first = false;
    }
    if (open) fprintf(f, "\"/>\n");
}

double svg_legend(FILE *f, double x, double y, int n, const char *const *labels, const char *const *colors,
                  const char *const *dashes) {
    for (int i = 0; i < n; i++) {
        double cy = y + 16.0 * i + 8;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s%s%s/>\n",
                x, cy, x + 24, cy, colors[i], dashes && dashes[i] ? " stroke-dasharray=\"" : "",
                dashes && dashes[i] ? dashes[i] : "", dashes && dashes[i] ? "\"" : "");
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", x + 30, cy + 4);
        svg_text(f, labels[i]);
        fprintf(f, "</text>\n");
    }
    return 16.0 * n;
}
