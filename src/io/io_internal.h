/* io_internal.h - what container.c (the gzip'd safetensors file) and checkpoint.c (training
 * state <-> tensors and metadata) share. */
#ifndef NABLA_IO_INTERNAL_H
#define NABLA_IO_INTERNAL_H

#include <cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <zlib.h>
#include "../core/internal.h"
#include "../optim/access.h"
#include "nabla/io.h"

/* A tensor of a parsed container. */
typedef struct nb__ck_entry {
    char *name;
    int dtype; /* index into the dtype table (nb__ck_dtype_name / nb__ck_dtype_size) */
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    uint64_t begin, end; /* data_offsets, relative to the data after the header */
} nb__ck_entry;

/* Where a checkpoint's bytes come from: a file or a buffer, gzip'd or plain (container.c). */
typedef struct nb__ck_src {
    const char *what;         /* path, for messages */
    FILE *f;                  /* file input (owned), or */
    const unsigned char *mem; /* memory input (an owned copy) */
    size_t memlen, mempos;
    unsigned char *buf;       /* file chunk */
    size_t buflen, bufpos;
    bool gz, zinit, zend;
    z_stream z;
} nb__ck_src;

/* An opened checkpoint: its header, parsed; the tensor data stays in the source until read. */
struct nb_ckpt {
    int ntensors;
    nb__ck_entry *t;
    int *by_name;   /* tensor indices sorted by name */
    int *by_offset; /* tensor indices in file order */
    int nmeta;
    char **keys, **vals; /* __metadata__ in file order */
    uint64_t data_len;   /* bytes of tensor data the header describes */
    char *what;          /* path or "buffer" */
    nb__ck_src s;
    uint64_t hdr_len;    /* N: the header's length */
    unsigned long hdr_crc; /* CRC-32 of the first 8 + N bytes (checked when they are read again) */
    unsigned char *data; /* all tensor data, once nb_ckpt_tensor_at / find read it (else NULL) */
    pthread_mutex_t lock; /* the source's position and data */
    bool locked;         /* lock initialised */
};

/* The safetensors dtypes: name <-> element size; -1 if unknown. */
int nb__ck_dtype(const char *name);
const char *nb__ck_dtype_name(int dtype);
size_t nb__ck_dtype_size(int dtype);
/* Index of the safetensors dtype of a nabla dtype. */
int nb__ck_dtype_of(nb_dtype dt);
/* Read the tensor data: tensor k into dst[k] (its host-order conversion is the caller's, with
 * nb__ck_le_inplace), or through a small buffer when dst[k] is NULL, to the end of the stream
 * (gzip CRC and length checked). Memory: the destinations only. */
int nb__ck_read(const nb_ckpt *c, unsigned char *const *dst);
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

/* NB_OK, or NB_ESTATE once the module owning o's parameters was freed (src/optim/optimizer.c):
 * checked before a load or save reads the parameters' shapes. */
int nb__optim_usable(const nb_optim *o, const char *op);

/* Copy n elements of size sz between little-endian file order and host order. */
void nb__ck_copy_le(void *dst, const void *src, size_t n, size_t sz);
/* The same in place. */
void nb__ck_le_inplace(void *p, size_t n, size_t sz);

#endif
