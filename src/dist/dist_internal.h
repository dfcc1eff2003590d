/* dist_internal.h - what the files of src/dist share. */
#ifndef NABLA_DIST_INTERNAL_H
#define NABLA_DIST_INTERNAL_H

#include "../core/internal.h"

/* ---- config.c: the text the configuration checks compare (one item per line) -------------- */
/* "<name> <dtype> [shape]" for each parameter then buffer of m (heap string, nb__free). */
char *nb__describe_model(const nb_module *m);
/* "type=SGD", then per group "group 0: params=4", "group 0: lr=0.1", ... (nb__free). */
char *nb__describe_optim(const nb_optim *o);
/* The first line where a and b differ, copied (at most n bytes each) into la and lb; a side
 * that has no such line gets "(nothing)". */
void nb__first_difference(const char *a, const char *b, char *la, char *lb, size_t n);
/* FNV-1a hash of a string (to compare texts across processes cheaply). */
uint64_t nb__text_hash(const char *s);

#ifdef NB_HAVE_MPI
#include <mpi.h>

struct nb_dist {
    MPI_Comm comm;   /* nabla's duplicate of the application's communicator */
    int rank, size;
    double timeout;  /* seconds; 0: wait for ever */
    bool owns_mpi;   /* nabla initialised MPI for this one */
};

/* Drive the n requests to completion (MPI_Testall in a loop), within d's timeout. what names
 * the operation in the error. *waited (may be NULL) receives the seconds spent. */
int nb__dist_wait(nb_dist *d, int n, MPI_Request *req, const char *what, double *waited);
/* An MPI return code as an nabla error (NB_EIO, "dist: <what>: <MPI's message>"). */
int nb__dist_mpi_error(int code, const char *what);
#endif

#endif
