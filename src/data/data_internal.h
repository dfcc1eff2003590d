/* data_internal.h - what the files of src/data share: the byte stream of the readers, the
 * datasets that own their float arrays, and the samplers' generator (for the loader). */
#ifndef NABLA_DATA_INTERNAL_H
#define NABLA_DATA_INTERNAL_H

#include "../core/internal.h"
#include "nabla/data.h"

/* ---- stream.c: bytes of a file or a buffer, raw or gzip (detected) ---------------------------
 * Messages start with "<prefix>: <what>: ". */
typedef struct nb__stream nb__stream;
nb__stream *nb__stream_open(const char *path, const char *prefix);
nb__stream *nb__stream_mem(const void *buf, size_t len, const char *what, const char *prefix);
/* Up to n bytes (fewer only at the end of the data); -1 with the error set. A gzip stream is
 * checked (CRC-32, length) when its end is read. */
int64_t nb__stream_read(nb__stream *s, unsigned char *dst, int64_t n);
void nb__stream_close(nb__stream *s);

/* ---- arrays.c: float32 samples in memory ------------------------------------------------------
 * A dataset over x [len, shape...] and y (int32 [len] or float32 [len, k]) that takes ownership
 * of both (freed with nb__free_aligned / nb__free); on failure they are freed too. The labels
 * of a classification dataset are checked by the reader that made them. */
nb_dataset *nb__dataset_owning(const char *type, float *x, int ndim, const int64_t *shape, void *y,
                               nb_task task, int64_t k);

/* The limit a reader's arrays must respect (opts->max_bytes, or the default). */
size_t nb__max_bytes(const nb_read_opts *o);

/* ---- images.c: nb_dataset_images, its messages starting with who ("loader") -------------------- */
nb_dataset *nb__dataset_images(const nb_tensor *images, const nb_tensor *labels, int64_t classes, const char *who);

/* ---- sampler.c ------------------------------------------------------------------------------- */
/* The generator whose state the loader saves (see nb_loader_state). */
nb_rng *nb__sampler_rng(nb_sampler *s);
/* One more than the largest index the sampler can give (what the dataset's length must reach). */
int64_t nb__sampler_bound(const nb_sampler *s);

#endif
