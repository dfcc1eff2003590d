/* comm.c - the process group of distributed training on MPI: initialisation, rank and size,
 * waiting with a timeout, broadcasts, sums of metrics, the start-up checks, abort. */
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include "dist_internal.h"
#ifdef NB_HAVE_MPI

bool nb_dist_available(void) { return true; }


int nb__dist_mpi_error(int code, const char *what) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", code);
    return nb__error(NB_EIO, "dist: %s: %s (is a process lost?)", what, msg);
}

int nb__dist_wait(nb_dist *d, int n, MPI_Request *req, const char *what, double *waited) {
    double t0 = MPI_Wtime();
    int flag = 0, rc = MPI_SUCCESS;
    for (long polls = 0; !flag; polls++) {
        rc = MPI_Testall(n, req, &flag, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) break;
        /* after a short spin, let the processes this one waits for have the core (they may
         * share it: more processes than cores, or other work on the machine) */
        if (!flag && polls >= 256) sched_yield();
        if (!flag && d->timeout > 0 && MPI_Wtime() - t0 > d->timeout) {
            if (waited) *waited = MPI_Wtime() - t0;
            return nb__error(NB_EIO, "dist: %s: no answer from the other processes after %g s "
                             "(a process is lost or stuck)", what, d->timeout);
        }
    }
    if (waited) *waited = MPI_Wtime() - t0;
    return rc == MPI_SUCCESS ? NB_OK : nb__dist_mpi_error(rc, what);
}

/* Processes alive that nabla made while it owns MPI: the last one's free finalises it. */
static atomic_int owned_live;

static nb_dist *dist_new(MPI_Comm base, bool owns) {
    nb_dist *d = nb__calloc(1, sizeof *d);
    if (!d) return NULL;
    int rc = MPI_Comm_dup(base, &d->comm);
    if (rc != MPI_SUCCESS) {
        nb__free(d);
        nb__dist_mpi_error(rc, "init: duplicating the communicator");
        return NULL;
    }
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    d->owns_mpi = owns;
    if (owns) atomic_fetch_add(&owned_live, 1);
    return d;
}

static bool mpi_finalized(void) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin) nb__error(NB_ESTATE, "dist: MPI was finalised in this process; it cannot start again");
    return fin;
}

static atomic_bool nabla_initialised;

nb_dist *nb_dist_init(void) {
    if (mpi_finalized()) return NULL;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
        if (rc != MPI_SUCCESS) return nb__null(NB_EIO, "dist: init: MPI_Init_thread failed (%d)", rc);
        atomic_store(&nabla_initialised, true);
    }
    return dist_new(MPI_COMM_WORLD, atomic_load(&nabla_initialised));
}

nb_dist *nb_dist_init_fcomm(int fortran_comm) {
    if (mpi_finalized()) return NULL;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited)
        return nb__null(NB_ESTATE, "dist: init_fcomm: MPI is not initialised (the application "
                                   "owns its communicator: call MPI_Init first, or use nb_dist_init)");
    MPI_Comm c = MPI_Comm_f2c((MPI_Fint)fortran_comm);
    if (c == MPI_COMM_NULL) return nb__null(NB_EINVAL, "dist: init_fcomm: the communicator is MPI_COMM_NULL");
    return dist_new(c, false);
}

int nb_dist_rank(const nb_dist *d) { return d ? d->rank : 0; }
int nb_dist_world_size(const nb_dist *d) { return d ? d->size : 1; }

#define CHECK_D(d, op) \
    if (!(d)) return nb__error(NB_EINVAL, "dist: " op ": the process group is NULL")

int nb_dist_set_timeout(nb_dist *d, double seconds) {
    CHECK_D(d, "set_timeout");
    if (!(seconds >= 0) || seconds > 1e9)
        return nb__error(NB_EINVAL, "dist: set_timeout: %g s is not a number of seconds >= 0", seconds);
    d->timeout = seconds;
    return NB_OK;
}

int nb_dist_barrier(nb_dist *d) {
    CHECK_D(d, "barrier");
    MPI_Request r;
    int rc = MPI_Ibarrier(d->comm, &r);
    return rc != MPI_SUCCESS ? nb__dist_mpi_error(rc, "barrier") : nb__dist_wait(d, 1, &r, "barrier", NULL);
}

int nb_dist_broadcast(nb_dist *d, void *buf, size_t n, int root) {
    CHECK_D(d, "broadcast");
    if (!buf && n) return nb__error(NB_EINVAL, "dist: broadcast: buffer is NULL");
    if (root < 0 || root >= d->size)
        return nb__error(NB_EINVAL, "dist: broadcast: root %d is not a rank (world size %d)", root, d->size);
    size_t at = 0;
    do { /* MPI counts are ints */
        size_t part = n - at < (size_t)INT_MAX ? n - at : (size_t)INT_MAX;
        MPI_Request r;
        int rc = MPI_Ibcast((char *)buf + at, (int)part, MPI_BYTE, root, d->comm, &r);
        if (rc != MPI_SUCCESS) return nb__dist_mpi_error(rc, "broadcast");
        if ((rc = nb__dist_wait(d, 1, &r, "broadcast", NULL))) return rc;
        at += part;
    } while (at < n);
    return NB_OK;
}

int nb_dist_allreduce_sum(nb_dist *d, double *vals, int n) {
    CHECK_D(d, "allreduce_sum");
    if (n < 0 || (!vals && n)) return nb__error(NB_EINVAL, "dist: allreduce_sum: %d values at %p", n, (void *)vals);
    MPI_Request r;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, vals, n, MPI_DOUBLE, MPI_SUM, d->comm, &r);
    return rc != MPI_SUCCESS ? nb__dist_mpi_error(rc, "allreduce") : nb__dist_wait(d, 1, &r, "allreduce", NULL);
}

/* Rank 0 and rank `other` swap their texts (for a message that shows both sides). */
static int swap_texts(nb_dist *d, int other, const char *mine, char **theirs) {
    int peer = d->rank == 0 ? other : 0;
    unsigned long long len = strlen(mine) + 1, plen = 0;
    MPI_Request r[2];
    int rc = MPI_Isend(&len, 1, MPI_UNSIGNED_LONG_LONG, peer, 1, d->comm, &r[0]);
    if (rc == MPI_SUCCESS) rc = MPI_Irecv(&plen, 1, MPI_UNSIGNED_LONG_LONG, peer, 1, d->comm, &r[1]);
    if (rc != MPI_SUCCESS) return nb__dist_mpi_error(rc, "check");
    if ((rc = nb__dist_wait(d, 2, r, "check", NULL))) return rc;
    if (plen > INT_MAX || len > INT_MAX || !(*theirs = nb__malloc(plen ? plen : 1)))
        return nb__error(NB_ENOMEM, "dist: check: a description of %llu bytes", plen);
    rc = MPI_Isend(mine, (int)len, MPI_CHAR, peer, 2, d->comm, &r[0]);
    if (rc == MPI_SUCCESS) rc = MPI_Irecv(*theirs, (int)plen, MPI_CHAR, peer, 2, d->comm, &r[1]);
    if (rc != MPI_SUCCESS) return nb__dist_mpi_error(rc, "check");
    if ((rc = nb__dist_wait(d, 2, r, "check", NULL))) return rc;
    (*theirs)[plen ? plen - 1 : 0] = '\0';
    return NB_OK;
}

int nb_dist_check_same(nb_dist *d, const char *what, const char *text) {
    CHECK_D(d, "check_same");
    if (!what || !text) return nb__error(NB_EINVAL, "dist: check_same: %s is NULL", what ? "text" : "what");
    unsigned long long sig[2] = {strlen(text), nb__text_hash(text)};
    unsigned long long *all = nb__malloc(sizeof sig * (size_t)d->size);
    if (!all) return NB_ENOMEM;
    MPI_Request r;
    int rc = MPI_Iallgather(sig, 2, MPI_UNSIGNED_LONG_LONG, all, 2, MPI_UNSIGNED_LONG_LONG, d->comm, &r);
    if (rc != MPI_SUCCESS) rc = nb__dist_mpi_error(rc, "check");
    else rc = nb__dist_wait(d, 1, &r, "check", NULL);
    int bad = -1;
    for (int k = 1; !rc && k < d->size && bad < 0; k++)
        if (all[2 * k] != all[0] || all[2 * k + 1] != all[1]) bad = k;
    nb__free(all);
    if (rc || bad < 0) return rc;
    if (d->rank != 0 && d->rank != bad)
        return nb__error(NB_EINVAL, "dist: the %s differs between processes: rank %d's is not rank 0's",
                         what, bad);
    char *theirs = NULL;
    if ((rc = swap_texts(d, bad, text, &theirs))) {
        nb__free(theirs);
        return rc;
    }
    char l0[256], lk[256];
    nb__first_difference(d->rank == 0 ? text : theirs, d->rank == 0 ? theirs : text, l0, lk, sizeof l0);
    nb__free(theirs);
    return nb__error(NB_EINVAL, "dist: the %s differs between processes: rank %d has \"%s\" where "
                     "rank 0 has \"%s\"", what, bad, lk, l0);
}

int nb_dist_check_optim(nb_dist *d, const nb_optim *o) {
    CHECK_D(d, "check_optim");
    if (!o) return nb__error(NB_EINVAL, "dist: check_optim: the optimizer is NULL");
    char *txt = nb__describe_optim(o);
    if (!txt) return NB_ENOMEM;
    int rc = nb_dist_check_same(d, "optimizer", txt);
    nb__free(txt);
    return rc;
}

void nb_dist_abort(nb_dist *d, int code) {
    if (!d) return;
    MPI_Abort(d->comm, code);
    _Exit(code); /* MPI_Abort does not return; if an implementation did, end anyway */
}

void nb_dist_free(nb_dist *d) {
    if (!d) return;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Comm_free(&d->comm);
    if (d->owns_mpi && atomic_fetch_sub(&owned_live, 1) == 1 && !fin) MPI_Finalize();
    nb__free(d);
}

#endif
