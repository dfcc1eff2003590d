/* svgcheck.c - reading the SVGs of the nabla command back in tests (see svgcheck.h). */
#include "svgcheck.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool xml_name(const char **p) {
    const char *s = *p;
    if (!(*s == '_' || *s == ':' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return false;
    while (*s == '_' || *s == ':' || *s == '-' || *s == '.' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
           (*s >= '0' && *s <= '9'))
        s++;
    *p = s;
    return true;
}

static bool xml_text_ok(const char *s, const char *end) {
    for (; s < end; s++) {
        if (*s == '<') return false;
        if (*s == '&') {
            const char *semi = memchr(s, ';', (size_t)(end - s));
            if (!semi || semi - s > 8) return false;
            s = semi;
        }
    }
    return true;
}

const char *xml_check(const char *s) {
    const char *stack[64];
    size_t lens[64];
    int depth = 0, roots = 0;
    while (*s == ' ' || *s == '\n') s++;
    if (!strncmp(s, "<?xml", 5)) {
        if (!(s = strstr(s, "?>"))) return "xml declaration";
        s += 2;
    }
    while (*s) {
        const char *lt = strchr(s, '<');
        if (!lt) lt = s + strlen(s);
        if (!xml_text_ok(s, lt)) return s;
        if (depth == 0)
            for (const char *q = s; q < lt; q++)
                if (*q != ' ' && *q != '\n') return q; /* text outside the root */
        if (!*lt) break;
        s = lt + 1;
        if (!strncmp(s, "!--", 3)) {
            if (!(s = strstr(s, "-->"))) return lt;
            s += 3;
            continue;
        }
        bool closing = *s == '/';
        if (closing) s++;
        const char *name = s;
        if (!xml_name(&s)) return s;
        size_t nlen = (size_t)(s - name);
        if (closing) {
            if (depth == 0 || lens[depth - 1] != nlen || strncmp(stack[depth - 1], name, nlen)) return name;
            depth--;
            while (*s == ' ') s++;
            if (*s++ != '>') return s - 1;
            continue;
        }
        for (;;) { /* attributes */
            while (*s == ' ' || *s == '\n') s++;
            if (*s == '>' || !strncmp(s, "/>", 2)) break;
            if (!xml_name(&s)) return s;
            if (*s++ != '=') return s - 1;
            char q = *s++;
            if (q != '"' && q != '\'') return s - 1;
            const char *end = strchr(s, q);
            if (!end || !xml_text_ok(s, end)) return s;
            s = end + 1;
        }
        if (depth == 0) roots++;
        if (*s == '/') {
            s += 2;
        } else {
            if (depth == 64) return s;
            stack[depth] = name;
            lens[depth++] = nlen;
            s++;
        }
    }
    return depth == 0 && roots == 1 ? NULL : "unbalanced";
}


char *slurp_file(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    return b;
}

static const char *find_attr(const char *tag, const char *name, size_t *len) {
    char key[80];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *p = strstr(tag, key);
    if (!p) return NULL;
    p += strlen(key);
    const char *q = strchr(p, '"');
    *len = q ? (size_t)(q - p) : strlen(p);
    return p;
}

const char *svg_line_attr(const svg_line *l, const char *name, char *buf, size_t n) {
    size_t len;
    const char *p = find_attr(l->tag, name, &len);
    if (!p) return NULL;
    if (len >= n) len = n - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return buf;
}

static double num_attr(const char *tag, const char *name) {
    size_t len;
    const char *p = find_attr(tag, name, &len);
    ck_assert_msg(p != NULL, "attribute %s missing in %.200s", name, tag);
    return strtod(p, NULL);
}

int svg_lines(const char *text, svg_line **out) {
    int n = 0, cap = 0;
    svg_line *ls = NULL;
    for (const char *p = strstr(text, "<polyline"); p; p = strstr(p + 1, "<polyline")) {
        const char *pts = strstr(p, " points=\"");
        const char *close = strchr(p, '>');
        ck_assert_msg(pts && close && pts < close, "polyline without points: %.200s", p);
        size_t tlen = (size_t)(pts - p);
        char *tag = malloc(tlen + 1);
        memcpy(tag, p, tlen);
        tag[tlen] = '\0';
        if (!strstr(tag, " data-x-min=\"")) {
            free(tag);
            continue;
        }
        if (n == cap) ls = realloc(ls, sizeof *ls * (size_t)(cap = cap ? 2 * cap : 16));
        svg_line *l = &ls[n++];
        memset(l, 0, sizeof *l);
        l->tag = tag;
        double x0 = num_attr(tag, "data-x-min"), x1 = num_attr(tag, "data-x-max");
        double y0 = num_attr(tag, "data-y-min"), y1 = num_attr(tag, "data-y-max");
        double left = num_attr(tag, "data-left"), width = num_attr(tag, "data-width");
        double top = num_attr(tag, "data-top"), height = num_attr(tag, "data-height");
        ck_assert_msg(x1 > x0 && y1 > y0 && width > 0 && height > 0, "bad mapping: %s", tag);
        l->ylog = strstr(tag, " data-y-log=\"1\"") != NULL;
        if (l->ylog) {
            y0 = log10(y0);
            y1 = log10(y1);
        }
        l->xres = 0.0006 * (x1 - x0) / width;
        l->yres = 0.0006 * (y1 - y0) / height;
        int pcap = 0;
        const char *s = pts + 9;
        while (*s != '"') {
            char *end;
            double px = strtod(s, &end);
            ck_assert_msg(*end == ',', "bad point near %.40s", s);
            double py = strtod(end + 1, &end);
            ck_assert_msg(end != s, "bad point near %.40s", s);
            if (l->n == pcap) {
                pcap = pcap ? 2 * pcap : 64;
                l->x = realloc(l->x, sizeof(double) * (size_t)pcap);
                l->y = realloc(l->y, sizeof(double) * (size_t)pcap);
            }
            l->x[l->n] = x0 + (px - left) / width * (x1 - x0);
            l->y[l->n] = y0 + (top + height - py) / height * (y1 - y0);
            if (l->ylog) l->y[l->n] = pow(10, l->y[l->n]);
            l->n++;
            s = end;
            while (*s == ' ') s++;
        }
    }
    *out = ls;
    return n;
}

bool svg_point_is(const svg_line *l, int i, double x, double y) {
    if (i < 0 || i >= l->n || fabs(l->x[i] - x) > l->xres) return false;
    return l->ylog ? y > 0 && fabs(log10(l->y[i]) - log10(y)) <= l->yres : fabs(l->y[i] - y) <= l->yres;
}

void svg_lines_free(svg_line *l, int n) {
    for (int i = 0; i < n; i++) {
        free(l[i].tag);
        free(l[i].x);
        free(l[i].y);
    }
    free(l);
}

static bool attr_is(const svg_line *l, const char *name, const char *value) {
    char buf[256];
    return svg_line_attr(l, name, buf, sizeof buf) && !strcmp(buf, value);
}

int svg_count(const svg_line *l, int n, const char *name, const char *value) {
    int c = 0;
    for (int i = 0; i < n; i++) c += attr_is(&l[i], name, value);
    return c;
}

const svg_line *svg_find(const svg_line *l, int n, const char *name, const char *value, const char *name2,
                         const char *value2) {
    for (int i = 0; i < n; i++)
        if (attr_is(&l[i], name, value) && (!name2 || attr_is(&l[i], name2, value2))) return &l[i];
    return NULL;
}
