/* bench_csv.c - nabla's side of tools/bench_csv.py: how long nb_dataset_csv takes to load a
 * CSV file (one pass through libcsv into float32 arrays, every value checked).
 *
 *   bench_csv FILE [--skip-rows N] [--target-col K] [--reps R]
 *
 * One JSON object per load on stdout ({"seconds", "rows", "features"}), then the peak resident
 * memory of the process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "nabla.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_csv FILE [--skip-rows N] [--target-col K] [--reps R]\n");
        return 2;
    }
    nb_read_opts o = nb_read_defaults();
    int reps = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--skip-rows")) o.skip_rows = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--target-col")) o.target_col = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        nb_dataset *ds = nb_dataset_csv(argv[1], NULL, &o);
        double dt = now() - t0;
        if (!ds) {
            fprintf(stderr, "bench_csv: %s\n", nb_last_error());
            return 1;
        }
        printf("{\"seconds\": %.6f, \"rows\": %lld, \"features\": %lld}\n", dt, (long long)ds->len,
               (long long)ds->features);
        fflush(stdout);
        nb_dataset_free(ds);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"peak_rss_mib\": %.1f}\n", (double)ru.ru_maxrss / 1024.0);
    return 0;
}
