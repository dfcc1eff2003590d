/* nabla/data.h - IDX (MNIST format) files and a seeded DataLoader.
 *
 * IDX files are read through zlib, gzip-compressed or raw (detected). The header's magic,
 * dtype, rank and sizes are validated against the file's length. Images stay uint8 in memory
 * and are converted per batch to float32 x/255, exactly as torch's x.float()/255.
 */
#ifndef NABLA_DATA_H
#define NABLA_DATA_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Read an IDX file of unsigned bytes into a heap uint8 tensor of the file's shape. The header
 * is checked first (a total of at most 4 GiB); memory then grows only as data arrives. */
nb_tensor *nb_idx_load(const char *path);
/* Same, from a caller's buffer holding the (uncompressed) file. */
nb_tensor *nb_idx_parse(const void *buf, size_t len, const char *what);

/* An MNIST-style split: images uint8 [N, rows, cols], labels uint8 [N]. */
typedef struct nb_mnist {
    nb_tensor *images;
    nb_tensor *labels;
} nb_mnist;

/* Load "<dir>/<prefix>-images-idx3-ubyte[.gz]" and "<dir>/<prefix>-labels-idx1-ubyte[.gz]"
 * (the .gz when it exists), prefix "train" or "t10k". Both headers are read and checked against
 * each other (ranks 3 and 1, one count) before either body is read. */
int nb_mnist_load(const char *dir, const char *prefix, nb_mnist *out);
/* Free both tensors and set them to NULL (NULL is a no-op). */
void nb_mnist_free(nb_mnist *m);
/* Default data folder: $NABLA_DATA, else /usr/share/datasets/fashion-mnist. */
const char *nb_default_data_dir(void);

/* ---- DataLoader -------------------------------------------------------------------------- */
typedef struct nb_loader nb_loader;

typedef struct nb_loader_opts {
    int64_t batch_size; /* 64 */
    bool shuffle;       /* true: a fresh seeded permutation every epoch */
    bool drop_last;     /* false: the last batch may be partial */
    uint64_t seed;      /* 0 */
    bool flatten;       /* false: x is [B, rows, cols]; true: [B, rows*cols] */
} nb_loader_opts;

/* The defaults above: batch 64, shuffled, seed 0, last batch kept, not flattened. */
nb_loader_opts nb_loader_defaults(void);
/* Loader over images [N, ...] (uint8) and labels [N] (uint8 or int32). Borrows both: they
 * must outlive the loader. */
nb_loader *nb_loader_new(const nb_tensor *images, const nb_tensor *labels,
                         const nb_loader_opts *opts);
/* Next batch: *x float32 [B, features...] scaled to [0,1], *y int32 [B], both in ar.
 * Returns 1 with a batch, 0 at the end of the epoch (the next call starts a new epoch), or a
 * negative nb_status. */
int nb_loader_next(nb_loader *ld, nb_arena *ar, nb_tensor **x, nb_tensor **y);
/* An nb_input_fn (nn.h) over a loader (an nb_loader *, passed as user): the images of its next
 * batch, labels dropped. nb_update_bn(model, nb_loader_inputs, loader, ar) is
 * update_bn(loader, model): it runs the loader to the end of its epoch (a whole epoch when the
 * loader is at its start). */
int nb_loader_inputs(void *loader, nb_arena *ar, nb_tensor **x);
/* Batches per epoch. */
int64_t nb_loader_num_batches(const nb_loader *ld);
/* Samples per epoch actually served (N, or fewer with drop_last). */
int64_t nb_loader_num_samples(const nb_loader *ld);

/* Position, for exact resume. With batch >= 0 an epoch is in progress and rng is the state
 * the generator had before drawing that epoch's permutation; with batch == -1 no epoch is in
 * progress and rng is the generator's current state. */
typedef struct nb_loader_state {
    int64_t epoch; /* epochs started so far */
    int64_t batch; /* next batch within the current epoch, or -1 */
    nb_rng rng;
} nb_loader_state;

/* The loader's position (for NULL: epoch 0, batch -1). */
nb_loader_state nb_loader_get_state(const nb_loader *ld);
/* Continue from a position taken by nb_loader_get_state (same data, batch size and seed):
 * the next batches are those the saved loader would have served. */
int nb_loader_set_state(nb_loader *ld, const nb_loader_state *st);
/* Free the loader (not the tensors it borrows). NULL is a no-op. */
void nb_loader_free(nb_loader *ld);

#ifdef __cplusplus
}
#endif
#endif
