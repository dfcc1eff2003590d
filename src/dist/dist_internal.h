/* dist_internal.h - what the files of src/dist share. */
#ifndef NABLA_DIST_INTERNAL_H
#define NABLA_DIST_INTERNAL_H

#include "../autograd/autograd_internal.h"
#include "nabla/dist.h"

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

/* ---- node.c: bucket sums through memory shared by the processes of one machine ------------ */
typedef struct nb__node nb__node;
/* A shared segment for every process's numel gradients and nb buckets, if every process of d
 * runs on this machine; NULL otherwise (*status NB_OK: use MPI's allreduce) or on failure
 * (*status, error set, the same on every process). Collective, as nb__node_free. */
nb__node *nb__node_new(nb_dist *d, int64_t numel, int nb, int *status);
void nb__node_free(nb__node *n);
/* This process's segment: where its gradients must live (numel floats, 64-byte aligned). */
float *nb__node_gradients(const nb__node *n);
/* A new round: once per synchronised backward, before its first bucket starts. */
void nb__node_round(nb__node *n);
/* Bucket k's gradients are final here. */
void nb__node_start(nb__node *n, int k);
/* Move bucket k ([b, e) of the segments) on as far as the other processes allow, without
 * waiting; true when this process's [b, e) holds the sum of every process's gradients times
 * scale and no process reads this process's [b, e) any more. */
bool nb__node_advance(nb__node *n, int k, int64_t b, int64_t e, float scale);
#endif

#endif
