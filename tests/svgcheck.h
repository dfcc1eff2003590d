/* svgcheck.h - reading the SVGs of the nabla command back in tests: an XML well-formedness
 * check, and the data polylines (tools/cli/svg.h) with their points mapped back to data. */
#ifndef NABLA_TESTS_SVGCHECK_H
#define NABLA_TESTS_SVGCHECK_H

#include <stdbool.h>
#include <stddef.h>

/* NULL if s is well-formed XML (one root, nested tags, quoted attributes, entities), else a
 * pointer to where it breaks. */
const char *xml_check(const char *s);

/* One data polyline: its tag (up to its points) and its points in data coordinates. */
typedef struct svg_line {
    char *tag;
    int n;
    double *x, *y;
    double xres, yres; /* the drawing's rounding, in data units (log10 units when ylog): half of
                        * 1/1000 pixel, plus a margin */
    bool ylog;
} svg_line;
/* Point i of l is (x, y) within the drawing's rounding. */
bool svg_point_is(const svg_line *l, int i, double x, double y);

/* Every polyline of text that carries the data mapping (data-x-min ...), in file order;
 * returns the count and sets *out (free with svg_lines_free). */
int svg_lines(const char *text, svg_line **out);
void svg_lines_free(svg_line *l, int n);
/* The value of attribute name in l's tag, copied to buf; NULL if absent. */
const char *svg_line_attr(const svg_line *l, const char *name, char *buf, size_t n);
/* How many lines have attribute name equal to value. */
int svg_count(const svg_line *l, int n, const char *name, const char *value);
/* The first line with attribute name equal to value and, if name2 is not NULL, name2 equal to
 * value2; NULL if none. */
const svg_line *svg_find(const svg_line *l, int n, const char *name, const char *value, const char *name2,
                         const char *value2);
/* The whole file at path (NUL-terminated, malloc'd); ck_abort if it cannot be read. */
char *slurp_file(const char *path);

#endif
