/* nabla/data.h - datasets, samplers and the DataLoader: torch.utils.data in C.
 *
 * A dataset (nb_dataset) is a length, the shape of one sample, a description of its targets
 * (class ids with a class count, or float regression targets with k columns, or none), and one
 * operation: gather the samples at given indices into a float32 batch x and a target batch y.
 * Sources: IDX (MNIST-format) images, kept as uint8 and scaled x/255 per batch as torch's
 * x.float()/255; the caller's arrays (borrowed, no copy); CSV files (libcsv; raw or gzip) and
 * NumPy .npy files, loaded into float32. Subsets and random_split parts are views.
 * A sampler (nb_sampler) gives the order of indices for one epoch: sequential, random (one
 * torch.randperm per epoch), a shuffled subset, or one process's shard (DistributedSampler).
 * The DataLoader joins a dataset and a sampler, serves batches into an arena and keeps its
 * position for checkpoints (exact resume). docs/data.md puts each beside its PyTorch equivalent.
 *
 * Readers check everything and load nothing on error; nb_last_error() names the file, the line
 * and the column (or the sample and element) of the problem. Memory is bounded: the text of a
 * CSV is read in one pass and never held whole, a .npy header's size is checked against the
 * file before anything is allocated, and the loaded arrays may take at most max_bytes
 * (NB_DATA_MAX_BYTES by default), so a gzip bomb is refused, not inflated.
 */
#ifndef NABLA_DATA_H
#define NABLA_DATA_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IDX files ----------------------------------------------------------------------------- */
/* Read an IDX file of unsigned bytes (raw or gzip) into a heap uint8 tensor of the file's shape
 * (the caller owns it: nb_tensor_free). The header is checked first (a total of at most 4 GiB);
 * memory then grows only as data arrives. */
nb_tensor *nb_idx_load(const char *path);
/* Same, from a caller's buffer holding the (uncompressed) file: read during the call (copied);
 * what names the buffer in messages. */
nb_tensor *nb_idx_parse(const void *buf, size_t len, const char *what);

/* An MNIST-style split: images uint8 [N, rows, cols], labels uint8 [N]. */
typedef struct nb_mnist {
    nb_tensor *images;
    nb_tensor *labels;
} nb_mnist;

/* Load "<dir>/<prefix>-images-idx3-ubyte[.gz]" and "<dir>/<prefix>-labels-idx1-ubyte[.gz]"
 * (the .gz when it exists), prefix "train" or "t10k". Both headers are read and checked against
 * each other (ranks 3 and 1, one count) before either body is read. out receives two heap
 * tensors the caller owns (nb_mnist_free); on error it holds none. */
int nb_mnist_load(const char *dir, const char *prefix, nb_mnist *out);
/* Free both tensors and set them to NULL (NULL is a no-op). */
void nb_mnist_free(nb_mnist *m);
/* Default data folder: $NABLA_DATA (the environment's string: valid until the environment
 * changes), else /usr/share/datasets/fashion-mnist (a static string). */
const char *nb_default_data_dir(void);

/* ---- datasets ------------------------------------------------------------------------------ */
/* What a sample's target is. */
typedef enum nb_task {
    NB_CLASSIFY = 0, /* a class id: y is int32 [B], each in 0..classes-1 */
    NB_REGRESS = 1,  /* float targets: y is float32 [B, targets] */
    NB_UNLABELED = 2 /* no target (inputs to predict): no y */
} nb_task;

typedef struct nb_dataset nb_dataset;

/* What a dataset type provides (for implementers of custom datasets). */
typedef struct nb_dataset_ops {
    const char *type; /* "images", "arrays", "csv", "npy", "subset" */
    /* Write samples idx[0..n) (each in 0..len-1) to x (n * features floats, row-major) and to
     * y (NB_CLASSIFY: n int32; NB_REGRESS: n * targets floats; NB_UNLABELED: not touched). */
    int (*gather)(const nb_dataset *ds, const int64_t *idx, int64_t n, float *x, void *y);
    /* Optional: start bringing samples idx[0..n) into the cache (the next batch's first). */
    void (*prefetch)(const nb_dataset *ds, const int64_t *idx, int64_t n);
    /* Free what the type owns (the base frees the struct). */
    void (*free)(nb_dataset *ds);
} nb_dataset_ops;

/* The base: read the fields (a dataset type embeds it as its first member; see
 * nb_dataset_alloc below). */
struct nb_dataset {
    const nb_dataset_ops *ops;
    int64_t len;                    /* samples */
    int ndim;                       /* rank of one sample (1 for a row of features) */
    int64_t shape[NB_MAX_DIMS - 1]; /* shape of one sample */
    int64_t features;               /* elements of one sample (the product of shape) */
    nb_task task;
    int64_t classes;                /* NB_CLASSIFY: number of classes */
    int64_t targets;                /* NB_REGRESS: floats per target */
    float *mean, *std;              /* standardisation applied by nb_dataset_get (NULL: none) */
};

/* Number of samples (0 for NULL). */
int64_t nb_dataset_len(const nb_dataset *ds);
/* Samples idx[0..n) into x (n * features floats) and y (see nb_dataset_ops.gather; may be NULL
 * for NB_UNLABELED data), standardised when nb_dataset_normalize was called. Every index is
 * checked against len. */
int nb_dataset_get(const nb_dataset *ds, const int64_t *idx, int64_t n, float *x, void *y);
/* Free a dataset and what it owns. A subset or split part must be freed before the dataset it
 * views. NULL is a no-op. Every constructor below returns a dataset the caller owns and frees
 * with it; what it borrows (the caller's arrays or tensors, a parent dataset) is said at each,
 * and file names, options and buffers are read during the call. */
void nb_dataset_free(nb_dataset *ds);

/* IDX-style images: uint8 images [N, ...] scaled x/255 per batch (as torch's x.float()/255),
 * labels uint8 or int32 [N]. classes: the number of classes (every label must be below it), or
 * 0 for the largest label + 1. Borrows both tensors: they must outlive the dataset. */
nb_dataset *nb_dataset_images(const nb_tensor *images, const nb_tensor *labels, int64_t classes);
/* nb_mnist_load(dir, prefix) as a dataset that owns the loaded tensors (10 classes at most:
 * classes = largest label + 1). */
nb_dataset *nb_dataset_mnist(const char *dir, const char *prefix);

/* The caller's arrays, borrowed (no copy; they must outlive the dataset and not change size):
 * x float32 [shape[0], shape[1], ...] row-major (ndim >= 1; shape[0] samples), y as the task
 * says: NB_CLASSIFY int32 [N] (k = classes, or 0 for the largest label + 1; labels are checked),
 * NB_REGRESS float32 [N, k] (k = targets per sample), NB_UNLABELED: y NULL, k ignored. This is
 * torch.utils.data.TensorDataset(x, y). */
nb_dataset *nb_dataset_arrays(const float *x, int ndim, const int64_t *shape, const void *y,
                              nb_task task, int64_t k);
/* The same over heap tensors: x float32 [N, ...]; y int32 [N] (classification, classes as
 * above) or float32 [N] / [N, k] (regression). Borrowed. */
nb_dataset *nb_dataset_tensors(const nb_tensor *x, const nb_tensor *y, int64_t classes);

/* Options of the file readers (CSV and .npy). */
#define NB_CSV_WHITESPACE ' ' /* delimiter: fields separated by runs of spaces and tabs */
#define NB_DATA_MAX_BYTES ((size_t)1 << 32) /* default bound on the loaded arrays: 4 GiB */
typedef struct nb_read_opts {
    nb_task task;       /* NB_CLASSIFY (default), NB_REGRESS, or NB_UNLABELED: no target column,
                           every column is a feature (e.g. inputs to predict) */
    int64_t classes;    /* classification: class count (labels must be below it); 0: the
                           largest label + 1 */
    int64_t target_col; /* the target's column when it is in the same file: 0-based, negative
                           counts from the end (default -1: the last) */
    char delimiter;     /* CSV: ',' (default), ';', a tab, any other byte, or NB_CSV_WHITESPACE */
    int64_t skip_rows;  /* CSV: lines skipped at the top (e.g. 1 for a header line) */
    size_t max_bytes;   /* bound on the memory of the loaded arrays (0: NB_DATA_MAX_BYTES) */
} nb_read_opts;

/* The defaults above. */
nb_read_opts nb_read_defaults(void);
/* A CSV file (raw or gzip, detected), parsed with libcsv in one pass: one sample per row,
 * every field a number (quotes allowed, spaces around fields ignored, blank lines skipped).
 * With y_path NULL the target is the column target_col of the file and the other columns are
 * the features; with y_path a second CSV of the same number of rows holds the target(s) (one
 * column for classification, k for regression). Classification targets must be non-negative
 * integers; NaN and infinity are refused. The dataset owns its arrays (float32, [N, features]).
 * Errors name the file, line and column. */
nb_dataset *nb_dataset_csv(const char *path, const char *y_path, const nb_read_opts *opts);
/* The same from a buffer holding a CSV file's bytes (raw or gzip): what names it in messages. */
nb_dataset *nb_csv_parse(const void *buf, size_t len, const char *what, const nb_read_opts *opts);
/* NumPy .npy files as np.save writes them (format 1.0, 2.0 or 3.0; float32, float64, uint8,
 * int32 or int64; little-endian; C order), converted to float32. With y_path NULL, x_path holds
 * a 2-D array whose column target_col is the target; with y_path, x is [N, ...] (e.g. [N, H, W]
 * images) and y [N] or [N, k]. Errors name the file and the element. */
nb_dataset *nb_dataset_npy(const char *x_path, const char *y_path, const nb_read_opts *opts);
/* The same from buffers (y NULL: the target is a column of x). */
nb_dataset *nb_npy_parse(const void *x, size_t xlen, const void *y, size_t ylen, const char *what,
                         const nb_read_opts *opts);

/* Subset(ds, indices): the samples indices[0..n) of ds (copied; each checked against its
 * length), in that order. Borrows ds (free the subset first). */
nb_dataset *nb_dataset_subset(nb_dataset *ds, const int64_t *indices, int64_t n);
/* torch.utils.data.random_split(ds, lengths, generator): k parts of the given lengths (their
 * sum must be ds's length), from one torch.randperm(len, generator) drawn from gen (which
 * advances, as torch's generator does): the same partition as PyTorch for the same seed.
 * parts[0..k) receive subsets of ds (free them before ds). */
int nb_random_split(nb_dataset *ds, const int64_t *lengths, int k, nb_rng *gen, nb_dataset **parts);
/* random_split's fractions: lengths[i] = floor(n * fractions[i]), then the remainder handed
 * out one by one from the first part, as torch does; the fractions must lie in [0, 1] and sum
 * to 1. */
int nb_split_lengths(int64_t n, const double *fractions, int k, int64_t *lengths);

/* Standardisation: per-feature mean and (population) standard deviation over the samples of ds
 * (e.g. the training part only), computed in double; a feature with no spread gets std 1.
 * mean and std receive ds->features floats. As sklearn's StandardScaler().fit(x_train). */
int nb_dataset_fit_standardize(const nb_dataset *ds, float *mean, float *std);
/* From now on nb_dataset_get returns (x - mean) / std per feature, as
 * torchvision.transforms.Normalize does (mean and std are copied; NULL, NULL: off again).
 * Set it on the dataset the parts view, so train, validation and test parts share it. */
int nb_dataset_normalize(nb_dataset *ds, const float *mean, const float *std);

/* ---- for implementers of dataset types -------------------------------------------------------
 * Allocate a zeroed dataset of `size` bytes (>= sizeof(nb_dataset)) with the given ops and
 * description: len samples of shape[0..ndim), targets as task says (k: classes for
 * NB_CLASSIFY, floats per target for NB_REGRESS, ignored for NB_UNLABELED). nb_dataset_free
 * calls ops->free (if any), then frees the struct. ops is kept (borrowed: a static table that
 * outlives the dataset); shape is copied. */
nb_dataset *nb_dataset_alloc(size_t size, const nb_dataset_ops *ops, int64_t len, int ndim,
                             const int64_t *shape, nb_task task, int64_t k);

/* ---- samplers ------------------------------------------------------------------------------
 * A constructor returns a sampler the caller owns (nb_sampler_free) and borrows nothing. */
typedef struct nb_sampler nb_sampler;

/* SequentialSampler: 0, 1, ..., n-1 every epoch. */
nb_sampler *nb_sequential_sampler(int64_t n);
/* A fresh torch.randperm(n, generator) every epoch from one generator seeded with seed:
 * SubsetRandomSampler(range(n), generator=torch.Generator().manual_seed(seed)). (PyTorch's
 * RandomSampler draws one more, unused permutation at the end of each epoch, so its second
 * epoch differs; see docs/data.md.) */
nb_sampler *nb_random_sampler(int64_t n, uint64_t seed);
/* SubsetRandomSampler(indices, generator=torch.Generator().manual_seed(seed)): indices[0..n)
 * (copied) in a fresh random order every epoch. */
nb_sampler *nb_subset_random_sampler(const int64_t *indices, int64_t n, uint64_t seed);

/* DistributedSampler(dataset of n samples, num_replicas, rank, shuffle, seed, drop_last). */
typedef struct nb_distributed_opts {
    int64_t num_replicas; /* 1 */
    int64_t rank;         /* 0: 0..num_replicas-1 */
    bool shuffle;         /* true: torch.randperm(n) seeded with seed + epoch */
    uint64_t seed;        /* 0 */
    bool drop_last;       /* false: pad with the first indices to a multiple of num_replicas;
                             true: drop the tail instead */
} nb_distributed_opts;
nb_distributed_opts nb_distributed_defaults(void);
/* Each epoch: the order (shuffled with seed + epoch, or 0..n-1), padded or cut to
 * num_samples * num_replicas, then every num_replicas-th index from rank: this process's
 * shard, exactly PyTorch's. */
nb_sampler *nb_distributed_sampler(int64_t n, const nb_distributed_opts *opts);
/* sampler.set_epoch(epoch): the epoch that seeds a distributed sampler's next order (as in
 * PyTorch, call it before each epoch, or every epoch repeats the order). Others ignore it. */
int nb_sampler_set_epoch(nb_sampler *s, int64_t epoch);
/* len(sampler): indices per epoch (0 for NULL). */
int64_t nb_sampler_len(const nb_sampler *s);
/* list(sampler): the next epoch's order into out (nb_sampler_len entries); a random sampler's
 * generator advances. */
int nb_sampler_indices(nb_sampler *s, int64_t *out);
/* Free a sampler. NULL is a no-op. */
void nb_sampler_free(nb_sampler *s);

/* ---- DataLoader ---------------------------------------------------------------------------- */
typedef struct nb_loader nb_loader;

typedef struct nb_loader_opts {
    int64_t batch_size; /* 64 */
    bool shuffle;       /* true: a fresh seeded permutation every epoch (without a sampler) */
    bool drop_last;     /* false: the last batch may be partial */
    uint64_t seed;      /* 0 (without a sampler) */
    bool flatten;       /* false: x is [B, sample shape...]; true: [B, features] */
    int interleave;     /* 0 or 1: rows in the sampler's order. k > 1: the batch's samples
                           0, k, 2k, ... first, then 1, k+1, ..., so that its k equal slices of
                           consecutive rows (nb_batch_split with k parts) hold what a
                           DistributedSampler would give each of k processes (0) */
} nb_loader_opts;

/* The defaults above: batch 64, shuffled, seed 0, last batch kept, not flattened. */
nb_loader_opts nb_loader_defaults(void);
/* DataLoader(ds, batch_size, shuffle, drop_last, sampler): batches of ds in the order sampler
 * gives; with sampler NULL, a random sampler seeded with opts->seed (shuffle) or a sequential
 * one, owned by the loader. Borrows ds and sampler: they must outlive the loader. */
nb_loader *nb_loader_over(nb_dataset *ds, nb_sampler *sampler, const nb_loader_opts *opts);
/* Loader over images [N, ...] (uint8, scaled x/255) and labels [N] (uint8 or int32):
 * nb_loader_over an nb_dataset_images of them that the loader owns. Borrows both tensors. */
nb_loader *nb_loader_new(const nb_tensor *images, const nb_tensor *labels,
                         const nb_loader_opts *opts);
/* Next batch: *x float32 [B, ...], *y int32 [B] (classification), float32 [B, targets]
 * (regression) or NULL (unlabeled data), both in ar (valid until its reset; the loader keeps no
 * pointer to them). Returns 1 with a batch, 0 at the end of the epoch (the next call starts a
 * new epoch), or a negative nb_status. */
int nb_loader_next(nb_loader *ld, nb_arena *ar, nb_tensor **x, nb_tensor **y);
/* An nb_input_fn (nn.h) over a loader (an nb_loader *, passed as user): the images of its next
 * batch, labels dropped. nb_update_bn(model, nb_loader_inputs, loader, ar) is
 * update_bn(loader, model): it runs the loader to the end of its epoch (a whole epoch when the
 * loader is at its start). */
int nb_loader_inputs(void *loader, nb_arena *ar, nb_tensor **x);
/* Batches per epoch. */
int64_t nb_loader_num_batches(const nb_loader *ld);
/* Samples per epoch actually served (the sampler's length, or fewer with drop_last). */
int64_t nb_loader_num_samples(const nb_loader *ld);
/* The dataset a loader serves (NULL for NULL): the caller's (nb_loader_over) or the loader's
 * own (nb_loader_new), valid as long as the loader. */
const nb_dataset *nb_loader_dataset(const nb_loader *ld);

/* Position, for exact resume. With batch >= 0 an epoch is in progress and rng is the state
 * the sampler's generator had before drawing that epoch's order; with batch == -1 no epoch is
 * in progress and rng is the generator's current state. (A distributed sampler's generator is
 * the one set_epoch seeded.) */
typedef struct nb_loader_state {
    int64_t epoch; /* epochs started so far */
    int64_t batch; /* next batch within the current epoch, or -1 */
    nb_rng rng;
} nb_loader_state;

/* The loader's position (for NULL: epoch 0, batch -1). */
nb_loader_state nb_loader_get_state(const nb_loader *ld);
/* Continue from a position taken by nb_loader_get_state (same data, batch size and sampler
 * kind): the next batches are those the saved loader would have served. */
int nb_loader_set_state(nb_loader *ld, const nb_loader_state *st);
/* Free the loader (not the dataset and sampler it borrows). NULL is a no-op. */
void nb_loader_free(nb_loader *ld);

#ifdef __cplusplus
}
#endif
#endif
