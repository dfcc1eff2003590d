/* svg.h - the one small SVG writer of the nabla command (lr-plot, plot, compare, optim-path).
 *
 * A drawing is a file with one or more axes boxes. Each box maps data (x, y) to pixels
 * linearly; every data line carries that mapping as attributes, so a reader (the tests) can
 * turn its points back into data:
 *   data-x-min data-x-max data-left data-width   x = x-min + (px - left) / width * (x-max - x-min)
 *   data-y-min data-y-max data-top data-height   y = y-min + (top + height - py) / height * (y-max - y-min)
 * and with data-y-log="1" the same in log10(y).  * Points are written with 3 decimals (1/1000 of a pixel). */
#ifndef NABLA_CLI_SVG_H
#define NABLA_CLI_SVG_H

#include <stdbool.h>
#include <stdio.h>

/* Colours of series k (tab10, cycling). */
const char *svg_color(int k);

typedef struct svg_axes {
    double left, top, width, height; /* the plotting box, in pixels */
    double xmin, xmax, ymin, ymax;   /* data range (svg_axes_fit widens it to round ticks) */
    double xstep, ystep;             /* tick spacing (set by svg_axes_fit) */
    bool ylog;                       /* y on a log scale (svg_axes_fit_logy) */
} svg_axes;

/* Open path and write the header, a white background and the title (centred, top). NULL (with
 * errno) if the file cannot be created. */
FILE *svg_begin(const char *path, double width, double height, const char *title);
/* Write the closing tag and close f; 0, or -1 if anything failed to write. */
int svg_end(FILE *f);

/* Set the ranges to [xlo, xhi] x [ylo, yhi] widened to whole ticks (1, 2 or 5 times a power of
 * ten, about 5 per axis); x_integer: ticks at whole numbers (steps, epochs). Empty ranges are
 * widened by one unit. */
void svg_axes_fit(svg_axes *a, double xlo, double xhi, double ylo, double yhi, bool x_integer);
/* y on a log scale from the decade at or below ylo to the one at or above yhi (both > 0). */
void svg_axes_fit_logy(svg_axes *a, double ylo, double yhi);
/* Frame, grid lines, tick labels, the axis labels and an optional title above the box. */
void svg_axes_draw(FILE *f, const svg_axes *a, const char *xlabel, const char *ylabel, const char *title);
/* Start a group whose drawing is clipped to a's box (id: a name unique in the file), and end it. */
void svg_clip_begin(FILE *f, const svg_axes *a, const char *id);
void svg_clip_end(FILE *f);
/* Data x, y -> pixels. */
double svg_px(const svg_axes *a, double x);
double svg_py(const svg_axes *a, double y);

/* One data line: n points (x[i], y[i]); points whose y is not finite are skipped (the line
 * breaks there, as a separate polyline with the same attributes). attrs is written as is into
 * the tag (e.g. "data-run=\"0\" data-series=\"test_loss\""), dash NULL for a solid line. */
void svg_polyline(FILE *f, const svg_axes *a, const double *x, const double *y, long n, const char *color,
                  double stroke_width, const char *dash, const char *attrs);

/* Legend entries, top-left at (x, y), one per row: a short line in its colour and dash, and
 * the label. Returns the height used. */
double svg_legend(FILE *f, double x, double y, int n, const char *const *labels, const char *const *colors,
                  const char *const *dashes);

/* Text with &, <, >, " escaped. */
void svg_text(FILE *f, const char *s);
/* A round tick spacing for range: 1, 2 or 5 times a power of ten, about range / 5. */
double svg_nice_step(double range);

#endif
