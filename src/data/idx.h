/* idx.h - the IDX reader in two steps, for readers of several files (mnist.c): the header
 * of each first, checked against the others, then the bodies. */
#ifndef NABLA_DATA_IDX_H
#define NABLA_DATA_IDX_H

#include "data_internal.h"

enum { IDX_MAX_RANK = 4 };
/* The largest body a header may promise. */
#define IDX_MAX_BYTES ((int64_t)1 << 32)

typedef struct nb__idx {
    nb__stream *s;    /* the open file, positioned at the body */
    const char *path; /* for messages (the caller's string) */
    int ndim;
    int64_t shape[IDX_MAX_RANK];
    int64_t bytes; /* the body's size, as the header promises it (<= IDX_MAX_BYTES) */
} nb__idx;

/* Open path and read and check its header (nothing of the body is read). */
int nb__idx_open(const char *path, nb__idx *f);
/* Read the body into a heap uint8 tensor (NULL with the error set) and close f. */
nb_tensor *nb__idx_read(nb__idx *f);
/* Close without reading (no-op after nb__idx_read). */
void nb__idx_close(nb__idx *f);

#endif
