/* metrics.c - reading the metrics files of `nabla train --metrics` (for plot and compare):
 * a header line {"flags": {...}, ...}, epoch lines {"epoch": ..., "train_loss": ...} and the
 * per-step lines of --log-every {"step": ..., "loss": ...}. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static bool is_step_row(const cJSON *o) {
    return cJSON_GetObjectItemCaseSensitive(o, "step") && cJSON_GetObjectItemCaseSensitive(o, "loss") &&
           !cJSON_GetObjectItemCaseSensitive(o, "train_loss");
}

int metrics_read(metrics_file *m, const char *path) {
    memset(m, 0, sizeof *m);
    m->path = path;
    m->epochs = cJSON_CreateArray();
    m->steps = cJSON_CreateArray();
    FILE *f = fopen(path, "r");
    if (!m->epochs || !m->steps || !f) {
        fprintf(stderr, "%s: cannot read %s: %s\n", cli_prog, path, f ? "out of memory" : strerror(errno));
        if (f) fclose(f);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line)) continue;
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o)) {
            fprintf(stderr, "%s: %s:%ld: not a JSON object\n", cli_prog, path, lineno);
            cJSON_Delete(o);
            rc = -1;
            break;
        }
        const cJSON *flags = cJSON_GetObjectItemCaseSensitive(o, "flags");
        if (cJSON_IsObject(flags) && !m->header) {
            m->header = o;
            m->flags = flags;
        } else if (is_step_row(o)) {
            cJSON_AddItemToArray(m->steps, o);
        } else if (cJSON_GetObjectItemCaseSensitive(o, "epoch")) {
            cJSON_AddItemToArray(m->epochs, o);
        } else {
            cJSON_Delete(o); /* a line of another kind: not ours */
        }
    }
    free(line);
    fclose(f);
    if (!rc && !cJSON_GetArraySize(m->epochs) && !cJSON_GetArraySize(m->steps)) {
        fprintf(stderr, "%s: %s has no epoch or step lines\n", cli_prog, path);
        rc = -1;
    }
    return rc;
}

void metrics_free(metrics_file *m) {
    cJSON_Delete(m->epochs);
    cJSON_Delete(m->steps);
    cJSON_Delete(m->header);
    memset(m, 0, sizeof *m);
}

double metrics_num(const cJSON *row, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
