/* internal.h - the core layer's internal header: what every subsystem shares and users do not
 * see. Names here start with nb__ (double underscore): not part of the API, not exported.
 *
 * Core is the bottom layer: this header includes only core's public headers (error, core,
 * tensor, value), so a file of src/core/ cannot call autograd, nn, optim or anything above.
 * Each layer has its own internal header that includes this one and the headers of the
 * layers it may use (docs/DESIGN.md draws them; tools/check_layers.sh keeps it true). */
#ifndef NABLA_INTERNAL_H
#define NABLA_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include "nabla/tensor.h"
#include "nabla/value.h"

#if defined(__GNUC__)
#define NB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define NB_UNUSED __attribute__((unused))
#else
#define NB_PRINTF(a, b)
#define NB_UNUSED
#endif

#define NB_ALIGN 64

/* Hot float loops that must round like PyTorch use fmaf (one rounding for add_(x, alpha)).
 * Without FMA hardware enabled at compile time fmaf is a slow libm call, so such loops are
 * also compiled for x86-64-v3 (AVX2+FMA) and picked at load time. GCC only: clang (14) names
 * the dispatcher of a cloned function f "f.ifunc", so calls from other files do not link; every
 * *_CLONES macro of nabla (NB_OPTIM_CLONES too) steps aside when NB_NO_TARGET_CLONES is set. */
#if defined(__clang__) && !defined(NB_NO_TARGET_CLONES)
#define NB_NO_TARGET_CLONES
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__FMA__) && defined(__linux__) && \
    !defined(NB_NO_TARGET_CLONES)
#define NB_FMA_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define NB_FMA_CLONES
#endif

/* ---- errors (src/core/error.c) ---------------------------------------------------------- */
/* Set the thread's last error and return st (so: return nb__error(NB_EINVAL, "...")). */
int nb__error(nb_status st, const char *fmt, ...) NB_PRINTF(2, 3);
/* Same, returning NULL. */
void *nb__null(nb_status st, const char *fmt, ...) NB_PRINTF(2, 3);

/* Python's repr() of a float, in one of 4 rotating thread-local buffers (k selects). */
const char *nb__pyfloat(double v, int k);
/* The same for a float32 argument: the decimal the user wrote (0.1f prints 0.1, as PyTorch
 * prints the Python float it was given), not the double it widens to (0.10000000149011612). */
const char *nb__pyfloat32(float v, int k);

/* ---- heap (src/core/alloc.c): every allocation of nabla goes through these -------------- */
void *nb__malloc(size_t n);  /* sets NB_ENOMEM error on failure */
void *nb__calloc(size_t n, size_t size);
void *nb__realloc(void *p, size_t n);
void nb__free(void *p);
char *nb__strdup(const char *s);
/* zlib's alloc_func / free_func through the hooks (z_stream.zalloc / zfree; opaque unused). */
void *nb__zalloc(void *opaque, unsigned items, unsigned size);
void nb__zfree(void *opaque, void *p);
/* ---- lifetimes: a borrower asks whether what it borrows still exists ---------------------
 * An owner (a module, an optimizer) makes a token at birth and ends it when it is freed; a
 * borrower (an optimizer of a module's parameters, a scheduler of an optimizer) takes a
 * reference on the token and checks it before it touches what it borrowed. The token lives
 * until the last of them lets go, so the check never reads freed memory: using an optimizer
 * whose module was freed fails with a message instead of writing into freed memory. */
struct nb_life {
    atomic_int refs;
    atomic_bool alive;
};
typedef struct nb_life nb_life;
/* A live token with the owner's reference (NULL with the error set on OOM). */
nb_life *nb__life_new(void);
/* The owner is gone: the token says so, and the owner's reference is dropped. NULL: no-op. */
void nb__life_end(nb_life *l);
/* Whether the owner still exists (NULL: an owner that is not tracked, taken as alive). */
static inline bool nb__life_alive(const nb_life *l) { return !l || atomic_load(&((nb_life *)l)->alive); }
/* A borrower's set of tokens, one reference each. */
typedef struct nb__lives {
    nb_life **v;
    int n;
} nb__lives;
/* Reference l (once per distinct token; NULL is ignored). */
int nb__lives_add(nb__lives *s, nb_life *l);
/* Every owner in the set still exists. */
bool nb__lives_alive(const nb__lives *s);
/* Drop the references. */
void nb__lives_free(nb__lives *s);
/* Take one reference (NULL: no-op) / drop it (the last one frees the token). */
nb_life *nb__life_ref(nb_life *l);
void nb__life_unref(nb_life *l);

/* 64-byte aligned block (free with nb__free_aligned). */
void *nb__malloc_aligned(size_t n);
void nb__free_aligned(void *p);
/* Grow an aligned block to n bytes, keeping its first `used` bytes (may move it). */
void *nb__realloc_aligned(void *p, size_t used, size_t n);

/* ---- arena (src/core/arena.c) ------------------------------------------------------------ */
struct nb_node;
typedef struct nb_chunk {
    struct nb_chunk *next;
    size_t cap, used;
    unsigned char *mem;
} nb_chunk;

struct nb_arena {
    nb_chunk *head, *cur;
    size_t used, peak, total_cap;
    struct nb_node *last_node; /* autograd tape: nodes in creation order via prev */
    int64_t nnodes;
    const char *record_failed; /* op whose node could not be recorded (OOM) since the reset */
    nb_dtype autocast;         /* NB_FLOAT32 (off) or NB_BF16: the type of its ops' products */
};

/* 64-byte aligned, uninitialised memory valid until the next reset (NULL + error on OOM). */
void *nb__arena_alloc(nb_arena *ar, size_t n);

/* The type an op writing into ar forms its products in: the arena's autocast, or NB_BF16 when
 * an operand is bfloat16 already. */
static inline nb_dtype nb__product_type(const nb_arena *ar, const struct nb_tensor *a,
                                        const struct nb_tensor *b) {
    if ((a && a->dtype == NB_BF16) || (b && b->dtype == NB_BF16)) return NB_BF16;
    return ar ? ar->autocast : NB_FLOAT32;
}

/* ---- tensors (src/core/tensor.c) --------------------------------------------------------- */
int64_t nb__numel(int ndim, const int64_t *shape);
/* A valid shape: rank 0..NB_MAX_DIMS, sizes >= 0, every partial product below INT64_MAX / 16
 * (so no size computation overflows), a known dtype. Error names op. */
int nb__check_shape(const char *op, nb_dtype dt, int ndim, const int64_t *shape);
/* Validated shape check + allocation; data uninitialised. */
nb_tensor *nb__tensor(nb_arena *ar, nb_dtype dt, int ndim, const int64_t *shape);
nb_tensor *nb__tensor_like(nb_arena *ar, const nb_tensor *t);
/* The output of an op: like nb__tensor, but a NULL arena is an error (ops always write in an
 * arena, so that their autograd node has somewhere to live). */
nb_tensor *nb__out(nb_arena *ar, nb_dtype dt, int ndim, const int64_t *shape);
nb_tensor *nb__out_like(nb_arena *ar, const nb_tensor *t);
/* The output of an elementwise op on a float32 input x (error names op): nb__out_like(ar, x). */
nb_tensor *nb__out_f32(nb_arena *ar, const char *op, const nb_tensor *x);
/* A tensor struct that shares data (no copy). */
nb_tensor *nb__alias(nb_arena *ar, const nb_tensor *t, int ndim, const int64_t *shape, void *data);
/* Normalise a possibly negative dim for a rank (error names op on failure, returns -1). */
int nb__dim(const char *op, int dim, int ndim);
/* Split t's shape around dim d into [outer, C, inner] (a 0-d tensor is [1, 1, 1]). */
void nb__around(const nb_tensor *t, int d, int64_t *outer, int64_t *C, int64_t *inner);
/* "float32", "int32", "uint8", "bfloat16" (for messages). */
const char *nb__dtype_name(nb_dtype dt);
/* Largest kernel size, stride, padding or dilation of a convolution or pooling: with all of
 * them below 2^31 (and sizes below 2^59) the output-size arithmetic cannot overflow. */
#define NB_MAX_WINDOW INT32_MAX
/* One bfloat16 number (src/kernels/bf16.h converts arrays): float32 to bfloat16 rounds to
 * nearest, ties to even, on the bits, and every NaN becomes 0xffff, as torch 1.13's
 * x.to(torch.bfloat16); bfloat16 to float32 is exact. */
static inline uint16_t nb__bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7fffffffu) > 0x7f800000u ? 0xffffu : (uint16_t)r; /* NaN */
}

static inline float nb__bf16_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* f rounded to the nearest bfloat16, as a float32. */
static inline float nb__bf16_rounded(float f) { return nb__bf16_float(nb__bf16_round(f)); }

/* Require a float32 tensor (error names op). */
int nb__check_f32(const char *op, const nb_tensor *t, const char *what);
/* Require a float32 or bfloat16 tensor: an operand of a product (error names op). */
int nb__check_float(const char *op, const nb_tensor *t, const char *what);
/* Format a shape "[2, 3]" into a thread-local buffer (k: which of 4 rotating buffers). */
const char *nb__shape(const nb_tensor *t, int k);
const char *nb__shape_of(int ndim, const int64_t *shape, int k);

/* ---- row-sparse gradients (src/core/tensor.c) -------------------------------------------- */
/* A leaf's sparse gradient storage, kept across steps (a steady state allocates nothing): grad
 * is the gradient as a tensor (NB_TENSOR_SPARSE, the leaf's shape, NULL data, sparse pointing
 * back here), rows and values its nnz rows (values [nnz, shape[1]]), cap the room for them. */
typedef struct nb_sparse {
    nb_tensor grad;
    int32_t *rows;
    float *values;
    int64_t nnz, cap;
} nb_sparse;
/* Append the n rows rows[i] (values vals[i * dim ...]) of a gradient to leaf t's sparse
 * gradient (which becomes t->grad if t had none); rows equal to skip are left out. */
int nb__sparse_append(nb_tensor *t, const int32_t *rows, const float *vals, int64_t n, int64_t skip);
/* The dense sum of sparse gradient g into dst (shape[0] * shape[1] floats, overwritten). */
void nb__sparse_dense(const nb_tensor *g, float *dst);
/* Coalesce sparse gradient g as torch's coalesce(): rows in increasing order, each once, the
 * values of repeated rows summed in the order they came, times sign (-1: maximize). work is
 * nb__sparse_coalesce_size(g) bytes (4-byte aligned); *rows and *vals point into it. Returns the
 * number of rows. */
size_t nb__sparse_coalesce_size(const nb_tensor *g);
int64_t nb__sparse_coalesce(const nb_tensor *g, float sign, void *work, const int32_t **rows, const float **vals);
/* Empty a sparse gradient (zero_grad(set_to_none=false): nnz 0, as PyTorch's zero_()). */
static inline void nb__sparse_clear(nb_tensor *g) { g->internal.sparse->nnz = 0; }

/* ---- named values (src/core/value.c) ----------------------------------------------------- */
/* A value of a kind with a number (name is copied). */
nb_value nb__value(const char *name, nb_value_kind kind, double num);
nb_value *nb__value_find(nb_value *vals, int n, const char *name);
const nb_value *nb__value_cfind(const nb_value *vals, int n, const char *name);
/* Deep copy (lists beyond the inline size, tensors) / release of one value. */
int nb__value_copy(nb_value *dst, const nb_value *src);
void nb__value_clear(nb_value *v);
/* Deep copy / free of a table of n values. */
nb_value *nb__values_copy(const nb_value *src, int n);
void nb__values_free(nb_value *v, int n);
/* Static tables of named values (defaults of optimizers, keyword arguments of schedules). */
#define NB_DEF_NUM(n, v) {.name = n, .kind = NB_VALUE_NUMBER, .num = (v)}
#define NB_DEF_INT(n, v) {.name = n, .kind = NB_VALUE_INT, .num = (v)}
#define NB_DEF_BOOL(n, v) {.name = n, .kind = NB_VALUE_BOOL, .num = (v)}
#define NB_DEF_STR(n, v) {.name = n, .kind = NB_VALUE_STRING, .str = v}
#define NB_DEF_PAIR(n, a, b) {.name = n, .kind = NB_VALUE_LIST, .len = 2, .inl = {(a), (b)}}
#define NB_DEF_TRIPLE(n, a, b, c) {.name = n, .kind = NB_VALUE_LIST, .len = 3, .inl = {(a), (b), (c)}}
#define NB_DEF_NONE(n) {.name = n, .kind = NB_VALUE_NONE}
#define NB_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
/* Keyword arguments as Python takes them: kw (nkw values, names from the table defs of ndefs,
 * each at most once, of the default's kind: a number for a number, an integral number for an
 * int, a list of the same length, anything where the default is None) applied to a copy of
 * the defaults (lists_ok: a list also where the default is a number: schedules' per-group
 * values). who names the callable in messages ("Adam", "StepLR"): PyTorch's "Adam.__init__()
 * got an unexpected keyword argument 'x'". NULL (and the error) on failure. */
nb_value *nb__kwargs_apply(const char *who, const nb_value *defs, int ndefs, const nb_value *kw, int nkw,
                           bool lists_ok);

/* ---- threads (src/core/threads.c) -------------------------------------------------------- */
int nb__num_threads(void);
/* A job over [begin, end) of a range. */
typedef void (*nb__range_fn)(void *ctx, int64_t begin, int64_t end);
/* Run fn over [0, n) split in contiguous parts of at least grain across the pool (the caller
 * runs the first part); serial when one thread or n < 2 grain. Returns when all parts are done. */
void nb__parallel_for(int64_t n, int64_t grain, nb__range_fn fn, void *ctx);
/* Keep OpenBLAS at one thread (once per process): nabla's pool does the parallel work. */
void nb__blas_single_thread(void);

#endif
