/* nabla/io.h - checkpoints: model weights and the whole training state in one file.
 *
 * A checkpoint is a safetensors container compressed with gzip (docs/checkpoint-format.md):
 * `gunzip` gives a file every safetensors reader opens. Model tensors carry their PyTorch
 * state_dict names ("0.weight"), optimizer state tensors are "optimizer.state.<index>.<name>",
 * the averaged (SWA/EMA) weights "swa.<model name>", further parts "<part>.<name>", and the
 * header's __metadata__ holds the optimizer type and param_groups, the schedulers, the
 * averaging, the RNG, the DataLoader position and the training position as JSON text.
 *
 * Saving is atomic: the file under its final name is always either the old checkpoint or the
 * new one, also after a crash or a kill in the middle of a save. Loading checks everything
 * (gzip CRC, header, offsets, dtypes, every name and shape against the live objects, the
 * optimizer and scheduler types) and either applies completely or changes nothing.
 *
 *   nb_train_state st = {.model = model, .optim = opt, .sched = sched, .rng = &rng,
 *                        .loader = loader, .epoch = epoch, .step = step,
 *                        .averaged = swa, .swa_sched = swalr};   // SWA/EMA runs only
 *   nb_checkpoint_save("run.ckpt", &st);
 *   ...
 *   if (nb_checkpoint_load("run.ckpt", &st)) puts(nb_last_error());  // st.epoch, st.step set
 */
#ifndef NABLA_IO_H
#define NABLA_IO_H

#include "data.h"
#include "nn.h"
#include "sched.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Format written by this version (the "format_version" metadata entry). */
#define NB_CKPT_FORMAT "nabla-checkpoint"
#define NB_CKPT_VERSION 1
/* Limits a file must respect, so that a hostile file cannot exhaust memory. */
#define NB_CKPT_MAX_HEADER (8u << 20) /* bytes of JSON header */
#define NB_CKPT_MAX_TENSORS 32768

/* A user metadata entry (saved as "user.<key>" in __metadata__). */
typedef struct nb_meta {
    const char *key;
    const char *value;
} nb_meta;

/* A further named part of the training state, beyond the built-in ones: tensors the caller
 * owns (e.g. the normalisation statistics of the training data: "normalize" with "mean" and
 * "std"). Saved as "<name>.<tensor name>" and listed in the metadata entry "parts"; loading
 * checks the file has the part with these tensors, of these dtypes and shapes, and copies them
 * in together with the rest of the state (all or nothing). name: letters, digits and '_'. */
typedef struct nb_ckpt_part {
    const char *name;
    const nb_named_tensor *tensors; /* borrowed for the call */
    int ntensors;
} nb_ckpt_part;

/* The training state a checkpoint saves and restores. model is required; every other pointer
 * may be NULL (not saved / not restored). On load, a part the caller passes must be in the file;
 * parts of the file the caller does not pass are ignored. Every object it points to is the
 * caller's, borrowed for the call of a save or load only; a load writes into them (nothing is
 * created or freed). */
typedef struct nb_train_state {
    nb_module *model;
    nb_optim *optim;
    nb_sched *sched;
    nb_rng *rng;       /* the generator of init and dropout */
    nb_loader *loader; /* DataLoader position (epoch, batch, shuffle generator) */
    int64_t epoch;     /* epochs completed; set by load */
    int64_t step;      /* optimizer steps taken; set by load */
    const nb_meta *meta; /* user metadata to save (nmeta entries); not touched by load */
    int nmeta;
    int level;         /* save: 0, the default: run-length + Huffman coding (on float tensors as
                          small as deflate -9, 3x faster than -1); deflate level 1..9; or -1:
                          stored uncompressed (still gzip with its CRC, fastest) */
    nb_averaged *averaged; /* SWA/EMA: the averaged copy of the model's parameters (in
                              nb_module_parameters order), or of its parameters and buffers (in
                              nb_module_state order: AveragedModel(use_buffers=True)) */
    nb_sched *swa_sched;   /* a second schedule, e.g. the SWALR that takes over from sched */
    const nb_ckpt_part *parts; /* further parts (nparts of them), saved and loaded as above */
    int nparts;
} nb_train_state;

/* Save a full training checkpoint atomically (temp file in the same folder, fsync, rename,
 * fsync of the folder). */
int nb_checkpoint_save(const char *path, const nb_train_state *st);
/* Load a checkpoint into the live objects of st (see nb_train_state) and set st->epoch and
 * st->step. On any error nothing is changed and nb_last_error() names the problem. */
int nb_checkpoint_load(const char *path, nb_train_state *st);

/* Save only the model's tensors (plus optional user metadata), atomically. */
int nb_weights_save(const char *path, const nb_module *m, const nb_meta *meta, int nmeta);
/* Load model tensors from a weights file, a full checkpoint, or any safetensors file (gzip'd
 * or not) whose tensors match the model's names, dtypes and shapes exactly. All or nothing. */
int nb_weights_load(const char *path, nb_module *m);
/* Load the averaged model of a checkpoint saved with an averaged copy: its model tensors, then
 * the averaged weights over the tensors they cover (what nb_averaged_swap evaluates; with
 * n_averaged 0, the weights the averaging started from). Fails, changing nothing, if the file
 * has no averaged copy. */
int nb_weights_load_averaged(const char *path, nb_module *m);

/* ---- reading a checkpoint without a model (inspection, tools) -----------------------------
 * Opening reads and checks the header only (the JSON header, the tensors' dtypes, shapes and
 * offsets, the limits above); the metadata is then available at no further cost. Tensor data
 * is inflated only when asked for: nb_ckpt_apply matches the header against the live objects
 * first and inflates each tensor straight into its destination, so a decompression bomb costs
 * what the model and optimizer hold, never what the file promises; nb_ckpt_tensor_at and
 * nb_ckpt_find read all the data (nb_ckpt_data_bytes says how much the header promises; a
 * header that promises more than the file holds costs only what it holds). Every read checks
 * the gzip stream to its end. The functions below may be called from several threads on one
 * nb_ckpt (reads of the source are serialised inside). */
typedef struct nb_ckpt nb_ckpt;

/* A tensor of an opened checkpoint; name, dtype and data point into the checkpoint (valid
 * until nb_ckpt_close). */
typedef struct nb_ckpt_tensor {
    const char *name;
    const char *dtype; /* safetensors name: "F32", "I32", "U8", "F64", "I64", "BOOL", ... */
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    const void *data; /* little-endian bytes */
    size_t nbytes;
} nb_ckpt_tensor;

/* Open a file (gzip'd or plain safetensors) and validate its header. The file stays open, for
 * the tensor data, until nb_ckpt_close; it must not change meanwhile (a read that finds another
 * header fails). The caller owns the nb_ckpt: close it with nb_ckpt_close, which ends every
 * pointer (names, metadata, tensor data) read from it. */
nb_ckpt *nb_ckpt_open(const char *path);
/* Same from a caller's buffer: it is copied (not kept), as the tensor data is read later. */
nb_ckpt *nb_ckpt_parse(const void *buf, size_t len);
/* Number of tensors in the file (0 for NULL). */
int nb_ckpt_num_tensors(const nb_ckpt *c);
/* Bytes of tensor data the header describes: what nb_ckpt_tensor_at / find will read (0 for
 * NULL). */
uint64_t nb_ckpt_data_bytes(const nb_ckpt *c);
/* Tensor i in file order (NB_EINVAL if out of range). The first call (of this or of
 * nb_ckpt_find) reads all the tensor data, and fails if the file is truncated or corrupt. */
int nb_ckpt_tensor_at(const nb_ckpt *c, int i, nb_ckpt_tensor *out);
/* Look a tensor up by name (NB_EINVAL if absent); reads the data as nb_ckpt_tensor_at. */
int nb_ckpt_find(const nb_ckpt *c, const char *name, nb_ckpt_tensor *out);
/* __metadata__ entries: count, i-th key and value, value of a key (NULL if absent). The strings
 * belong to the checkpoint (valid until close). */
int nb_ckpt_num_meta(const nb_ckpt *c);
int nb_ckpt_meta_at(const nb_ckpt *c, int i, const char **key, const char **value);
const char *nb_ckpt_meta(const nb_ckpt *c, const char *key);
/* Apply an opened checkpoint to live objects: nb_checkpoint_load without the file reading (st
 * and its objects are borrowed for the call, as there). */
int nb_ckpt_apply(const nb_ckpt *c, nb_train_state *st);
/* Load the averaged weights of an opened checkpoint into a model: nb_weights_load_averaged
 * without the file reading. */
int nb_ckpt_apply_averaged(const nb_ckpt *c, nb_module *m);
/* Close the file and free an opened checkpoint (its tensors' data with it). NULL is a no-op. */
void nb_ckpt_close(nb_ckpt *c);

#ifdef __cplusplus
}
#endif
#endif
