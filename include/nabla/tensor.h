/* nabla/tensor.h - contiguous row-major tensors and the differentiable ops on them.
 *
 * A tensor is float32 (or int32 for labels/indices, uint8 for stored datasets, bfloat16 for
 * half-size copies: see nb_to_dtype and the arena's autocast in core.h), rank <= 8,
 * contiguous. Tensors made in an arena (ops always do) are freed by nb_arena_reset(); tensors
 * made with a NULL arena live on the heap and are freed with nb_tensor_free().
 *
 * Ops take the arena for their output first, then their inputs. An op given a NULL input
 * returns NULL without touching the error message, so a chain of ops can be checked once at
 * the end. When grad mode is on and an input requires grad, the op records its backward.
 *
 * Ownership and lifetimes:
 * - an op's output (and every tensor it writes to an out array) lives in its arena until
 *   nb_arena_reset or nb_arena_free of that arena; never free it. The few ops that may return
 *   an input itself say so (nb_dropout when not training).
 * - an op borrows its inputs: the output's tape node keeps pointers to them for the backward,
 *   so each input must stay alive (a heap tensor not freed, an arena tensor's arena not reset)
 *   until the backward through it is done or the output's arena is reset.
 * - a view (reshape, view, flatten; nb_detach) is a new struct over its input's data: that
 *   data must outlive the view.
 * - arrays of shapes, values and options are read during the call only (copied where kept).
 */
#ifndef NABLA_TENSOR_H
#define NABLA_TENSOR_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NB_MAX_DIMS 8

/* NB_BF16 is bfloat16 (torch.bfloat16): the top 16 bits of a float32, stored as uint16_t. */
typedef enum nb_dtype { NB_FLOAT32 = 0, NB_INT32 = 1, NB_UINT8 = 2, NB_BF16 = 3 } nb_dtype;

struct nb_tensor;
struct nb_node;
struct nb_life; /* a lifetime token (internal): see nb_module_free and nb_optim */
struct nb_grad_hook;

/* nabla's bookkeeping of a tensor (autograd, arena, gradient slab, lifetimes): do not read or
 * write it. Its fields may change in any release; the functions of this header and autograd.h
 * give what a program needs (nb_tensor_requires_grad, nb_is_sparse, ...). */
struct nb__tensor_private {
    struct nb_node *node;        /* op that produced it; NULL for leaves */
    nb_arena *arena;             /* arena holding it; NULL for heap tensors */
    struct nb_tensor *grad_slot; /* preallocated storage for grad (parameters, heap leaves) */
    struct nb_sparse *sparse;    /* row-sparse gradient storage (see nb_is_sparse) */
    struct nb_life *owner;       /* the module that owns it (its parameters and buffers), or NULL:
                                    lets an optimizer see that module freed */
    struct nb_grad_hook *hook;   /* set by nb_set_grad_hook (heap leaves; owned by the tensor) */
};

/* Read the fields, do not write them (use the functions). data is contiguous row-major. */
typedef struct nb_tensor {
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    int64_t numel;
    void *data;
    struct nb_tensor *grad;      /* NULL until backward writes one (or after zero_grad) */
    uint32_t flags;              /* NB_TENSOR_* below */
    struct nb__tensor_private internal; /* nabla's bookkeeping: do not read or write */
} nb_tensor;

#define NB_TENSOR_REQUIRES_GRAD 0x1u
#define NB_TENSOR_OWNS_DATA 0x2u   /* data is freed with the tensor */
#define NB_TENSOR_OWNS_GRAD 0x4u   /* grad_slot is freed with the tensor */
#define NB_TENSOR_SPARSE 0x8u      /* a row-sparse gradient (nb_sparse_*): data is NULL */

/* ---- creation (ar NULL: heap tensor, free with nb_tensor_free) ----------------------------
 * The caller owns what these return: a heap tensor (ar NULL) until nb_tensor_free, an arena
 * tensor until nb_arena_reset or nb_arena_free of ar. */
/* Uninitialised tensor of a shape. */
nb_tensor *nb_empty(nb_arena *ar, nb_dtype dt, int ndim, const int64_t *shape);
/* float32 tensors filled with 0, 1, or value. */
nb_tensor *nb_zeros(nb_arena *ar, int ndim, const int64_t *shape);
nb_tensor *nb_ones(nb_arena *ar, int ndim, const int64_t *shape);
nb_tensor *nb_full(nb_arena *ar, int ndim, const int64_t *shape, float value);
/* Copy of a C array of numel(shape) elements of dtype dt. */
nb_tensor *nb_from_array(nb_arena *ar, nb_dtype dt, int ndim, const int64_t *shape,
                         const void *values);
/* 1-D float tensor start, start+step, ... < end (as torch.arange). */
nb_tensor *nb_arange(nb_arena *ar, double start, double end, double step);
/* Uniform in [lo, hi) and normal(mean, std) from the given RNG. */
nb_tensor *nb_uniform(nb_arena *ar, int ndim, const int64_t *shape, float lo, float hi,
                      nb_rng *rng);
nb_tensor *nb_normal(nb_arena *ar, int ndim, const int64_t *shape, float mean, float std,
                     nb_rng *rng);
/* kaiming_uniform_(a) as PyTorch: bound = gain(a) * sqrt(3 / fan_in), fan_in = shape[1]*... */
nb_tensor *nb_kaiming_uniform(nb_arena *ar, int ndim, const int64_t *shape, double a,
                              nb_rng *rng);
/* Scalar (0-d) float tensor. */
nb_tensor *nb_scalar(nb_arena *ar, float value);
/* Deep copy (no autograd history). */
nb_tensor *nb_clone(nb_arena *ar, const nb_tensor *t);
/* Free a heap tensor (and its data if owned). NULL is a no-op; arena tensors are ignored; a
 * module's parameter or buffer is refused (NB_EINVAL set, nothing freed): nb_module_free frees
 * it. */
void nb_tensor_free(nb_tensor *t);

/* ---- row-sparse gradients ----------------------------------------------------------------
 * A sparse Embedding (nb_embedding_sparse, Embedding(..., sparse=true)) gives its weight a
 * row-sparse gradient: PyTorch's sparse COO gradient, uncoalesced. Such a grad has
 * NB_TENSOR_SPARSE in its flags, the weight's shape and NULL data: read it with the functions
 * below. It holds nnz rows, in the order they came (a row used twice is there twice; backward
 * calls append, as PyTorch's accumulation of sparse gradients does). What an optimizer or
 * clip_grad_norm_ does with one follows PyTorch 1.13 (docs/optim.md). The indices and values
 * are owned by the weight and valid until its next backward, zero_grad or free. */
bool nb_is_sparse(const nb_tensor *t);
/* Rows held (repeats included); -1 if t is not sparse. */
int64_t nb_sparse_nnz(const nb_tensor *t);
/* The nnz row indices, and the nnz rows of shape[1] values (NULL if t is not sparse). */
const int32_t *nb_sparse_indices(const nb_tensor *t);
const float *nb_sparse_values(const nb_tensor *t);
/* The dense sum of a sparse gradient (to_dense()), into a float32 tensor of its shape. */
int nb_sparse_to_dense(const nb_tensor *t, nb_tensor *dense);

/* ---- access ------------------------------------------------------------------------------
 * nb_f32, nb_i32 and nb_u8 return t->data itself: valid as long as t is (for a view, as long as
 * the tensor whose data it shares). */
static inline float *nb_f32(const nb_tensor *t) { return (float *)t->data; }
static inline int32_t *nb_i32(const nb_tensor *t) { return (int32_t *)t->data; }
static inline uint8_t *nb_u8(const nb_tensor *t) { return (uint8_t *)t->data; }
static inline uint16_t *nb_bf16(const nb_tensor *t) { return (uint16_t *)t->data; }
/* The value of a one-element tensor as a double (NAN if t is NULL or not one element). */
double nb_item(const nb_tensor *t);
/* True if a and b have the same shape. */
bool nb_same_shape(const nb_tensor *a, const nb_tensor *b);
/* Writes "[64, 784]" into the caller's buf (n bytes); returns buf. */
const char *nb_shape_str(const nb_tensor *t, char *buf, size_t n);
/* Fill every element of a float32 (or bfloat16: value rounded) tensor with value (in place, no
 * autograd). */
int nb_fill(nb_tensor *t, float value);
/* Copy src into dst (same numel and dtype; in place, no autograd). */
int nb_copy(nb_tensor *dst, const nb_tensor *src);
/* Bytes per element of a dtype (0 if unknown). */
size_t nb_dtype_size(nb_dtype dt);

/* ---- dtypes -------------------------------------------------------------------------------
 * float32 -> bfloat16 rounds to nearest, ties to even, on the bits (subnormals included;
 * beyond the largest bfloat16: infinity) and turns every NaN into 0xffff, exactly as
 * torch's x.to(torch.bfloat16); bfloat16 -> float32 is exact. */
uint16_t nb_float_to_bf16(float f);
float nb_bf16_to_float(uint16_t b);
/* t.to(dt): a new tensor of dtype dt in ar (ar NULL: heap), or t itself when it already has
 * dtype dt. Converts between float32 and bfloat16 both ways, and int32 / uint8 to either (as
 * exact values, then rounded for bfloat16). Differentiable between float32 and bfloat16, as in
 * PyTorch: the gradient of a bfloat16 result is rounded to bfloat16 on its way back (it is
 * held in float32: gradients are always float32). Floating point to integer is refused. */
nb_tensor *nb_to_dtype(nb_arena *ar, nb_tensor *t, nb_dtype dt);

/* ---- autocast: torch.autocast("cpu", dtype=torch.bfloat16) on an arena ---------------------
 * With an arena's autocast set to NB_BF16, the matrix products of the ops that write into it -
 * nb_linear, nb_matmul, nb_conv1d/2d and the gate products of the recurrent layers - take
 * their operands rounded to bfloat16 (inputs, weights and biases, as PyTorch casts them) and
 * sum the products in float32, in the forward and in their backward; their outputs and every
 * gradient stay float32, and so do all other ops (losses, softmax, norms, reductions, pooling,
 * activations) and the parameters and optimizer state. It is a setting of the arena, kept
 * across resets: a scope is
 *   nb_dtype prev = nb_arena_autocast(ar); nb_arena_set_autocast(ar, NB_BF16); ...;
 *   nb_arena_set_autocast(ar, prev);
 * The backward of an op uses the type its forward used. bfloat16 products run on AMX or
 * AVX512_BF16 where the CPU has them, else on an emulation with the same numbers
 * (nb_bf16_backend()). NB_FLOAT32 (the default) turns autocast off; other dtypes are refused
 * (NB_EINVAL), as is a NULL arena. */
int nb_arena_set_autocast(nb_arena *ar, nb_dtype dt);
/* The arena's autocast dtype: NB_BF16, or NB_FLOAT32 when off (and for NULL). */
nb_dtype nb_arena_autocast(const nb_arena *ar);
/* How this CPU forms bfloat16 products: "amx" (Intel AMX tiles), "avx512bf16" (AVX512_BF16)
 * or "emulated" (float32 arithmetic on the rounded operands: the same results, slower). */
const char *nb_bf16_backend(void);

/* ---- views (share storage with the input; differentiable) -------------------------------
 * The view is a new struct in ar (until its reset) over t's data, which must outlive it. */
/* New shape with the same numel; one entry may be -1. */
nb_tensor *nb_reshape(nb_arena *ar, nb_tensor *t, int ndim, const int64_t *shape);
/* Same as nb_reshape (tensors are always contiguous). */
nb_tensor *nb_view(nb_arena *ar, nb_tensor *t, int ndim, const int64_t *shape);
/* Merge dims start..end (inclusive, negative counts from the end) into one. */
nb_tensor *nb_flatten(nb_arena *ar, nb_tensor *t, int start_dim, int end_dim);

/* ---- elementwise, with broadcasting as in PyTorch ----------------------------------------- */
/* a + b, a - b, a * b, a / b. */
nb_tensor *nb_add(nb_arena *ar, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_sub(nb_arena *ar, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_mul(nb_arena *ar, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_div(nb_arena *ar, nb_tensor *a, nb_tensor *b);
/* a + s, a * s for a float scalar s. */
nb_tensor *nb_add_scalar(nb_arena *ar, nb_tensor *a, float s);
nb_tensor *nb_mul_scalar(nb_arena *ar, nb_tensor *a, float s);

/* ---- unary ------------------------------------------------------------------------------- */
/* -a, e^a, ln a, sqrt a, |a|. */
nb_tensor *nb_neg(nb_arena *ar, nb_tensor *a);
nb_tensor *nb_exp(nb_arena *ar, nb_tensor *a);
nb_tensor *nb_log(nb_arena *ar, nb_tensor *a);
nb_tensor *nb_sqrt(nb_arena *ar, nb_tensor *a);
nb_tensor *nb_abs(nb_arena *ar, nb_tensor *a);
/* a ** exponent */
nb_tensor *nb_pow(nb_arena *ar, nb_tensor *a, float exponent);
/* min(max(a, lo), hi); pass -INFINITY / INFINITY for a one-sided clamp (NaN bounds: error). */
nb_tensor *nb_clamp(nb_arena *ar, nb_tensor *a, float lo, float hi);

/* ---- activations ------------------------------------------------------------------------- */
/* max(a, 0); a > 0 ? a : negative_slope a; tanh a; 1 / (1 + e^-a). Like every op, these
 * propagate NaN and infinities as PyTorch does (relu(NaN) is NaN; tests/test_nonfinite.c). */
nb_tensor *nb_relu(nb_arena *ar, nb_tensor *a);
nb_tensor *nb_leaky_relu(nb_arena *ar, nb_tensor *a, float negative_slope);
nb_tensor *nb_tanh(nb_arena *ar, nb_tensor *a);
nb_tensor *nb_sigmoid(nb_arena *ar, nb_tensor *a);
/* GELU, exact (erf) form as PyTorch's default approximate='none'. */
nb_tensor *nb_gelu(nb_arena *ar, nb_tensor *a);
/* ELU: x > 0 ? x : alpha (exp(x) - 1). */
nb_tensor *nb_elu(nb_arena *ar, nb_tensor *a, float alpha);
/* SiLU (swish): x sigmoid(x). */
nb_tensor *nb_silu(nb_arena *ar, nb_tensor *a);
/* softmax and log_softmax along dim (max subtracted first, as PyTorch). */
nb_tensor *nb_softmax(nb_arena *ar, nb_tensor *a, int dim);
nb_tensor *nb_log_softmax(nb_arena *ar, nb_tensor *a, int dim);

/* Inverted dropout: in training zero each element with probability p (drawn from rng) and
 * scale the others by 1/(1-p); returns x itself when !training or p == 0. */
nb_tensor *nb_dropout(nb_arena *ar, nb_tensor *x, float p, bool training, nb_rng *rng);

/* Channel dropout (F.dropout2d): in training zero each whole channel x[n, c, ...] with
 * probability p and scale the others by 1/(1-p); x is [N, C, ...] (a 3-D input is read as
 * [N, C, L], as PyTorch 1.13 does). Returns x itself when !training or p == 0. */
nb_tensor *nb_dropout2d(nb_arena *ar, nb_tensor *x, float p, bool training, nb_rng *rng);

/* ---- convolution, pooling, normalisation (channels first: [N, C, H, W]) ------------------- */
typedef struct nb_conv_opts {
    int64_t stride[2];   /* {1, 1} */
    int64_t padding[2];  /* {0, 0}: zeros added on both sides */
    int64_t dilation[2]; /* {1, 1} */
    int64_t groups;      /* 1: in and out channels split into groups convolved separately */
    bool same;           /* padding='same' (stride 1 only): output size = input size; any
                          * odd extra padding goes to the bottom/right, as in PyTorch */
} nb_conv_opts;

/* PyTorch's defaults: stride 1, padding 0, dilation 1, groups 1. */
nb_conv_opts nb_conv_defaults(void);
/* F.conv2d(x [N, C, H, W] or unbatched [C, H, W], w [O, C/groups, kH, kW], b [O] or NULL).
 * Entry 0 of each pair in opts is the height, 1 the width. opts NULL: defaults. */
nb_tensor *nb_conv2d(nb_arena *ar, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                     const nb_conv_opts *opts);
/* F.conv1d(x [N, C, L] or [C, L], w [O, C/groups, K], b [O] or NULL); uses entry 0 of opts. */
nb_tensor *nb_conv1d(nb_arena *ar, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                     const nb_conv_opts *opts);

typedef struct nb_pool_opts {
    int64_t stride[2];        /* {0, 0}: the kernel size (PyTorch's stride=None) */
    int64_t padding[2];       /* {0, 0}; at most half the kernel */
    int64_t dilation[2];      /* {1, 1} (max pooling only) */
    bool ceil_mode;           /* false: floor the output size */
    bool count_include_pad;   /* true: padding counts in the average (average pooling only) */
    int64_t divisor_override; /* 0: none; else divide every window sum by it (average only) */
} nb_pool_opts;

/* PyTorch's defaults (as above). */
nb_pool_opts nb_pool_defaults(void);
/* F.max_pool2d(x [N, C, H, W] or [C, H, W], (kh, kw), ...): the gradient goes to the first
 * maximal element of each window (NaN counts as maximal), as in PyTorch. opts NULL: defaults. */
nb_tensor *nb_max_pool2d(nb_arena *ar, nb_tensor *x, int64_t kh, int64_t kw,
                         const nb_pool_opts *opts);
/* F.avg_pool2d(x, (kh, kw), ...). */
nb_tensor *nb_avg_pool2d(nb_arena *ar, nb_tensor *x, int64_t kh, int64_t kw,
                         const nb_pool_opts *opts);
/* F.adaptive_avg_pool2d(x, (oh, ow)): window i spans [floor(i H/oh), ceil((i+1) H/oh)).
 * -1 keeps that input size (PyTorch's None). */
nb_tensor *nb_adaptive_avg_pool2d(nb_arena *ar, nb_tensor *x, int64_t oh, int64_t ow);

/* F.batch_norm(x [N, C, ...], running_mean, running_var, weight, bias, training, momentum,
 * eps). Training: normalise each channel with the batch mean and biased variance and, when
 * the running tensors are given, update them in place (r = (1-momentum) r + momentum s, with
 * the unbiased variance). Otherwise normalise with the running statistics. weight/bias [C]
 * may be NULL. */
nb_tensor *nb_batch_norm(nb_arena *ar, nb_tensor *x, nb_tensor *running_mean,
                         nb_tensor *running_var, nb_tensor *weight, nb_tensor *bias,
                         bool training, double momentum, double eps);
/* F.layer_norm(x, normalized_shape, weight, bias, eps): normalise over the last nshape dims,
 * which must equal shape; weight/bias have that shape (or NULL). */
nb_tensor *nb_layer_norm(nb_arena *ar, nb_tensor *x, int nshape, const int64_t *shape,
                         nb_tensor *weight, nb_tensor *bias, double eps);

/* ---- linear algebra ---------------------------------------------------------------------- */
/* [n,k] @ [k,m] -> [n,m]; [b,n,k] @ [b,k,m] -> [b,n,m]. */
nb_tensor *nb_matmul(nb_arena *ar, nb_tensor *a, nb_tensor *b);
/* Swap two dims (a copy: tensors stay contiguous). */
nb_tensor *nb_transpose(nb_arena *ar, nb_tensor *a, int dim0, int dim1);
/* x @ w^T + b, x [..., in], w [out, in], b [out] or NULL: nn.functional.linear, one GEMM. */
nb_tensor *nb_linear(nb_arena *ar, nb_tensor *x, nb_tensor *w, nb_tensor *b);

/* ---- reductions (dim may be negative) ----------------------------------------------------- */
/* Sum and mean of all elements (0-d), or along dim (kept as size 1 with keepdim). */
nb_tensor *nb_sum(nb_arena *ar, nb_tensor *a);
nb_tensor *nb_mean(nb_arena *ar, nb_tensor *a);
nb_tensor *nb_sum_dim(nb_arena *ar, nb_tensor *a, int dim, bool keepdim);
nb_tensor *nb_mean_dim(nb_arena *ar, nb_tensor *a, int dim, bool keepdim);
/* Max over a dim; the gradient flows to the first maximal element, as PyTorch's max(dim). */
nb_tensor *nb_max_dim(nb_arena *ar, nb_tensor *a, int dim, bool keepdim);
/* Max of all elements (gradient split evenly among ties, as PyTorch's max()). */
nb_tensor *nb_max(nb_arena *ar, nb_tensor *a);
/* Index of the first maximum along dim, int32, not differentiable. */
nb_tensor *nb_argmax(nb_arena *ar, nb_tensor *a, int dim, bool keepdim);

/* ---- indexing and joining ---------------------------------------------------------------- */
/* Rows a[index[i]] along dim 0; index is int32 1-D. */
nb_tensor *nb_index_select(nb_arena *ar, nb_tensor *a, nb_tensor *index);
/* out[i][j] = a[index[i][j]][j] (torch.gather with dim 0); index int32, same rank as a. */
nb_tensor *nb_gather(nb_arena *ar, nb_tensor *a, nb_tensor *index);
/* x.select(dim, index): the slice at index along dim, that dim removed (a copy); index may be
 * negative. */
nb_tensor *nb_select(nb_arena *ar, nb_tensor *a, int dim, int64_t index);
/* F.embedding: rows weight[indices] -> indices.shape + [dim]; indices int32 of any shape. Rows
 * equal to padding_idx (>= 0) get no gradient; pass -1 for none. */
nb_tensor *nb_embedding(nb_arena *ar, nb_tensor *indices, nb_tensor *weight, int64_t padding_idx);
/* F.embedding(..., sparse=True): the same forward; the weight's gradient is row-sparse (see
 * nb_is_sparse) when the weight is a heap leaf whose gradient is not already dense. */
nb_tensor *nb_embedding_sparse(nb_arena *ar, nb_tensor *indices, nb_tensor *weight, int64_t padding_idx);
/* Concatenate n tensors along dim. */
nb_tensor *nb_cat(nb_arena *ar, int n, nb_tensor *const *ts, int dim);
/* Stack n same-shape tensors along a new dim. */
nb_tensor *nb_stack(nb_arena *ar, int n, nb_tensor *const *ts, int dim);
/* Elements start..end-1 along dim (PyTorch a.narrow / a[..., start:end]). A negative start
 * or end counts from the end; unless 0 <= start <= end <= size it is an error (no clamping). */
nb_tensor *nb_slice(nb_arena *ar, nb_tensor *a, int dim, int64_t start, int64_t end);
/* Split into chunks of split_size along dim (the last may be smaller); writes up to max
 * pointers into out and returns the number of chunks (even when more than max: as snprintf,
 * nb_split(ar, a, s, d, NULL, 0) counts them), or a negative nb_status. The chunks live in ar,
 * as any op's output. */
int nb_split(nb_arena *ar, nb_tensor *a, int64_t split_size, int dim, nb_tensor **out, int max);

#ifdef __cplusplus
}
#endif
#endif
