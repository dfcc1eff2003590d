/* dist_cli.c - `mpirun -np N nabla train ...`: the command's side of data-parallel training.
 *
 * Under an MPI launcher every process runs the same `nabla train`: it joins the job, loads the
 * data, builds the model, optimizer and schedule from the same flags and trains on its shard of
 * the training part (a DistributedSampler; --batch is per process, as in DDP) with the model
 * wrapped by nb_ddp, so that every backward averages the gradients. Before training the
 * processes check that they agree: the model, the optimizer, every flag that shapes the run,
 * and the data. The validation and test parts are evaluated in contiguous blocks, one per
 * process, and the sums of their metrics added up. Rank 0 alone prints (the others' stdout
 * goes to /dev/null) and writes files; a checkpoint to resume from is read by rank 0 and sent
 * to the others, so it need only exist on rank 0's machine. An error on one process ends the
 * whole job (MPI_Abort) rather than leave the others waiting for it. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static struct {
    nb_dist *d;
    nb_ddp *dp;
    double timeout;
    bool mpi_allreduce;
    nb_ddp_stats epoch0; /* the wrapper's figures at the start of the epoch */
    int64_t steps0;
} D = {.timeout = 300};

void dist_cli_flags(cli_flags *f) {
    cli_add(f, (arg_spec){"dist-timeout", ARG_DOUBLE, &D.timeout, "under mpirun: seconds a process waits "
                          "for the others before the job ends (0: for ever; default 300)", NULL});
    cli_add(f, (arg_spec){"mpi-allreduce", ARG_FLAG, &D.mpi_allreduce, "under mpirun: sum the gradients with MPI's "
                          "allreduce even when every process is on one machine (the path between machines)", NULL});
}

bool dist_cli_on(void) { return D.d != NULL; }
int dist_cli_rank(void) { return nb_dist_rank(D.d); }
int dist_cli_size(void) { return nb_dist_world_size(D.d); }

int dist_cli_init(void) {
    if (!nb_dist_launched()) return 0;
    if (!nb_dist_available()) {
        fprintf(stderr, "%s: started by an MPI launcher, but this nabla was built without MPI "
                        "(install libopenmpi-dev and reconfigure with meson -Dmpi=enabled)\n", cli_prog);
        return 1;
    }
    if (!(D.d = nb_dist_init()) || nb_dist_set_timeout(D.d, D.timeout)) {
        fprintf(stderr, "%s: %s\n", cli_prog, nb_last_error());
        return dist_cli_end(1);
    }
    if (nb_dist_rank(D.d) != 0 && !freopen("/dev/null", "w", stdout)) { /* rank 0 alone prints */
        fprintf(stderr, "%s: rank %d: cannot silence stdout: %s\n", cli_prog, nb_dist_rank(D.d), strerror(errno));
        return dist_cli_end(1);
    }
    return 0;
}

int dist_cli_check(void) {
    if (!(D.timeout >= 0) || (D.d && nb_dist_set_timeout(D.d, D.timeout))) {
        fprintf(stderr, "%s: --dist-timeout must be a number of seconds >= 0\n", cli_prog);
        return 2;
    }
    return 0;
}

int dist_cli_end(int rc) {
    if (D.d && rc) nb_dist_abort(D.d, rc); /* the others may be waiting for this process */
    nb_dist_free(D.d);
    D.d = NULL;
    return rc;
}

void dist_cli_unwrap(void) {
    nb_ddp_free(D.dp);
    D.dp = NULL;
}

/* ---- checkpoints: read on rank 0, sent to all --------------------------------------------- */
static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0;
    for (*n = 0; f;) {
        if (*n == cap) {
            unsigned char *b = realloc(buf, cap = cap ? 2 * cap : (size_t)1 << 20);
            if (!b) break;
            buf = b;
        }
        size_t k = fread(buf + *n, 1, cap - *n, f);
        *n += k;
        if (k == 0 && !ferror(f)) {
            fclose(f);
            return buf;
        }
        if (k == 0) break;
    }
    int e = errno;
    if (f) fclose(f);
    free(buf);
    errno = e;
    return NULL;
}

nb_ckpt *dist_cli_ckpt_open(const char *path) {
    size_t len = 0;
    unsigned char *buf = NULL;
    if (dist_cli_rank() == 0 && !(buf = read_file(path, &len))) {
        fprintf(stderr, "%s: cannot read %s: %s\n", cli_prog, path, strerror(errno));
        dist_cli_end(1); /* the others are waiting for the file */
    }
    uint64_t n = len;
    if (nb_dist_broadcast(D.d, &n, sizeof n, 0) || (!buf && !(buf = malloc(n ? n : 1))) ||
        nb_dist_broadcast(D.d, buf, n, 0)) {
        free(buf);
        return NULL;
    }
    nb_ckpt *c = nb_ckpt_parse(buf, n);
    free(buf);
    return c;
}

/* ---- the start-up checks -------------------------------------------------------------------- */
/* Flags that may differ between processes: where files are (each machine has its own paths,
 * rank 0 writes and reads the checkpoints), and what only changes speed or output. */
static bool local_flag(const char *name) {
    static const char *const names[] = {"threads", "metrics", "log-every", "help", "save", "save-every", "save-best",
                                        "resume", "dist-timeout", "data", "train", "test"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) return true;
    return false;
}

/* A text of one item per line, grown as needed (NULL on OOM). */
static char *add_line(char *t, size_t *len, const char *fmt, const char *a, const char *b) {
    int k = snprintf(NULL, 0, fmt, a, b);
    char *u = realloc(t, *len + (size_t)k + 1);
    if (!u) {
        free(t);
        return NULL;
    }
    snprintf(u + *len, (size_t)k + 1, fmt, a, b);
    *len += (size_t)k;
    return u;
}

/* "--name=value" for every flag that shapes the run. */
static char *flags_text(const cli_flags *f) {
    char *t = NULL, buf[64];
    size_t len = 0;
    for (int k = 0; k < f->n; k++) {
        const arg_spec *s = &f->specs[k];
        if (local_flag(s->name)) continue;
        const char *v = args_value(s, buf, sizeof buf);
        if (!(t = add_line(t, &len, "--%s=%s\n", s->name, v ? v : "(default)"))) return NULL;
    }
    return t ? t : calloc(1, 1);
}

/* What the training part is: size, shape, targets, and a fingerprint of a few samples (so that
 * two machines with different files under the same name disagree). */
static char *data_text(const nb_dataset *ds) {
    enum { PICK = 32 };
    int64_t idx[PICK], n = ds->len < PICK ? ds->len : PICK;
    for (int64_t i = 0; i < n; i++) idx[i] = i * ds->len / n;
    float *x = malloc(sizeof(float) * (size_t)(n * ds->features + 1));
    float *y = malloc(sizeof(float) * (size_t)(n * (ds->targets > 0 ? ds->targets : 1) + 1));
    char *t = NULL;
    if (x && y && nb_dataset_get(ds, idx, n, x, ds->task == NB_UNLABELED ? NULL : y) == NB_OK) {
        uint32_t h = 2166136261u;
        const unsigned char *p = (const unsigned char *)x;
        for (size_t i = 0; i < sizeof(float) * (size_t)(n * ds->features); i++) h = (h ^ p[i]) * 16777619u;
        p = (const unsigned char *)y;
        size_t ybytes = ds->task == NB_CLASSIFY ? sizeof(int32_t) * (size_t)n
                        : ds->task == NB_REGRESS ? sizeof(float) * (size_t)(n * ds->targets) : 0;
        for (size_t i = 0; i < ybytes; i++) h = (h ^ p[i]) * 16777619u;
        char a[160], b[32];
        snprintf(a, sizeof a, "%lld samples of %lld features, task %d, %lld classes, %lld targets",
                 (long long)ds->len, (long long)ds->features, (int)ds->task, (long long)ds->classes,
                 (long long)ds->targets);
        snprintf(b, sizeof b, "%08x", (unsigned)h);
        size_t len = 0;
        t = add_line(NULL, &len, "%s, samples' fingerprint %s\n", a, b);
    }
    free(x);
    free(y);
    return t;
}

/* One check: every process passes the same text, or every process fails. */
static int same(const char *what, char *text) {
    int rc = text ? nb_dist_check_same(D.d, what, text) : NB_ENOMEM;
    if (rc) fprintf(stderr, "%s: %s\n", cli_prog, text ? nb_last_error() : "out of memory");
    free(text);
    return rc;
}

int dist_cli_setup(nb_module *model, nb_optim *opt, const cli_flags *f, const nb_dataset *train) {
    if (!D.d) return 0;
    if (same("command line", flags_text(f)) || same("training data", data_text(train))) return -1;
    nb_ddp_opts o = nb_ddp_defaults();
    o.shared_memory = !D.mpi_allreduce;
    /* one process has nothing to average: no DDP, so its steps split as without mpirun */
    if ((nb_dist_world_size(D.d) > 1 && !(D.dp = nb_ddp_new(D.d, model, &o))) || nb_dist_check_optim(D.d, opt)) {
        fprintf(stderr, "%s: %s\n", cli_prog, nb_last_error());
        return -1;
    }
    return 0;
}

/* ---- during training ------------------------------------------------------------------------ */
nb_sampler *dist_cli_sampler(int64_t n, long seed) {
    if (!D.d) return NULL;
    nb_distributed_opts o = nb_distributed_defaults();
    o.num_replicas = nb_dist_world_size(D.d);
    o.rank = nb_dist_rank(D.d);
    o.seed = (uint64_t)seed;
    nb_sampler *s = nb_distributed_sampler(n, &o);
    if (!s) fprintf(stderr, "%s: sampler: %s\n", cli_prog, nb_last_error());
    return s;
}

void dist_cli_epoch_begin(nb_sampler *s, long epoch) {
    if (!D.d) return;
    nb_sampler_set_epoch(s, epoch - 1); /* PyTorch's loops count epochs from 0 */
    D.epoch0 = nb_ddp_get_stats(D.dp);
}

double dist_cli_allreduce_ms(void) {
    nb_ddp_stats s = nb_ddp_get_stats(D.dp);
    int64_t steps = s.backwards - D.epoch0.backwards;
    return steps > 0 ? 1e3 * (s.comm_seconds - D.epoch0.comm_seconds) / (double)steps : 0;
}

int dist_cli_sum(double *v, int n) {
    if (!D.d || nb_dist_allreduce_sum(D.d, v, n) == NB_OK) return 0;
    fprintf(stderr, "%s: %s\n", cli_prog, nb_last_error());
    return -1;
}

double dist_cli_mean(double v) {
    if (!D.d) return v;
    return dist_cli_sum(&v, 1) ? NAN : v / nb_dist_world_size(D.d);
}

nb_dataset *dist_cli_block(nb_dataset *ds) {
    if (!D.d) return ds;
    int64_t r = nb_dist_rank(D.d), w = nb_dist_world_size(D.d);
    int64_t lo = r * ds->len / w, hi = (r + 1) * ds->len / w;
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(hi - lo + 1));
    if (!idx) return NULL;
    for (int64_t i = lo; i < hi; i++) idx[i - lo] = i;
    nb_dataset *part = nb_dataset_subset(ds, idx, hi - lo);
    free(idx);
    return part;
}
