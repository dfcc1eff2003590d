/* io_internal.h - what container.c (the gzip'd safetensors file) and checkpoint.c (training
 * state <-> tensors and metadata) share. */
#ifndef NABLA_IO_INTERNAL_H
#define NABLA_IO_INTERNAL_H

#include <cJSON.h>
#include "../core/internal.h"

/* A tensor of a parsed container. */
typedef struct nb__ck_entry {
    char *name;
    int dtype; /* index into the dtype table (nb__ck_dtype_name / nb__ck_dtype_size) */
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    uint64_t begin, end; /* data_offsets, relative to the data after the header */
} nb__ck_entry;

struct nb_ckpt {
    int ntensors;
    nb__ck_entry *t;
    int *by_name;  /* tensor indices sorted by name */
    int nmeta;
    char **keys, **vals; /* __metadata__ in file order */
    unsigned char *data;
    uint64_t data_len;
};

/* The safetensors dtypes: name <-> element size; -1 if unknown. */
int nb__ck_dtype(const char *name);
const char *nb__ck_dtype_name(int dtype);
size_t nb__ck_dtype_size(int dtype);
/* Index of the safetensors dtype of a nabla dtype. */
int nb__ck_dtype_of(nb_dtype dt);
/* Index of a tensor by name (-1 if absent). */
int nb__ck_lookup(const nb_ckpt *c, const char *name);
/* "[128,784]": a shape as the header writes it (k selects one of 4 rotating buffers). */
const char *nb__ck_shape(int ndim, const int64_t *shape, int k);

/* A tensor to write. data holds nbytes little-endian... in host order: converted on write. */
typedef struct nb__ck_out {
    const char *name;
    int dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    const void *data;
    size_t nbytes;
} nb__ck_out;

/* cJSON's parser records a failure position in a process-wide variable: nabla's parses go
 * through this, one at a time, so two threads loading checkpoints never race on it. */
cJSON *nb__json_parse(const char *txt, size_t n, const char **end);

/* Write the container atomically to path: meta is a JSON object of string values (taken over
 * and freed), the tensors in order with contiguous data_offsets. level: gzip level 1..9, 0 for
 * the default (run-length + Huffman coding, fast and as small as -9 on float data), -1 to store
 * without compression (still gzip, CRC-checked). */
int nb__ck_write(const char *path, const nb__ck_out *t, int n, cJSON *meta, int level);

/* Test-only pause points of nb__ck_write: when nb__ck_save_hook is set (it is NULL unless a
 * test sets it), a save calls it at each of these stages in this order, so a test can stop the
 * writer exactly there (raise(SIGSTOP)) and kill it. nb__* is not exported (src/nabla.map):
 * only programs linking the static library can set it. */
typedef enum nb__ck_stage {
    NB__CK_CREATED, /* the temp file exists, empty */
    NB__CK_HEADER,  /* the length and header went into the compressor */
    NB__CK_TENSOR,  /* one more tensor's data went in (once per tensor, in order) */
    NB__CK_WRITTEN, /* the gzip stream is complete in the temp file, not yet synced */
    NB__CK_SYNCED,  /* temp file synced and closed; the final name still holds the old file */
    NB__CK_RENAMED, /* the final name holds the new file; the folder is not yet synced */
    NB__CK_CLEANED, /* folder synced, stale temps of killed saves removed: about to return */
} nb__ck_stage;
extern void (*nb__ck_save_hook)(nb__ck_stage stage);

/* Copy n elements of size sz between little-endian file order and host order. */
void nb__ck_copy_le(void *dst, const void *src, size_t n, size_t sz);

#endif
