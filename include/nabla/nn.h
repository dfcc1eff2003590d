/* nabla/nn.h - modules: a struct with a small vtable, named parameters and buffers.
 *
 * Parameter names, shapes and default initialisation follow PyTorch (Sequential children are
 * "0", "1", ...; Linear has "weight" [out, in] and "bias" [out]), so weights move between
 * PyTorch and nabla by name. A container packs the parameters of its whole tree into one
 * contiguous slab (and their gradients into another); each parameter is a view into it.
 *
 * Constructors that take child modules take ownership of them, also when they fail (then the
 * children are freed), so nb_sequential(3, (nb_module *[]){nb_linear_new(...), ...}) needs
 * one NULL check. A module has one parent: a child that already has one, or is given twice,
 * is refused (and left to its owner). Every module is freed with nb_module_free (NULL is a
 * no-op).
 *
 * Ownership and lifetimes:
 * - the caller owns a module a constructor returns until it frees it or gives it to a
 *   container; a module owns its parameters, buffers and children, and the root of a packed
 *   tree the slabs that hold its parameters and gradients.
 * - tensors and modules a getter returns (nb_module_param, nb_module_state, nb_module_find,
 *   nb_module_parameters, nb_module_child) are borrowed from the module: valid until the root
 *   of the tree is freed. Their full names (nb_named_tensor.name) are valid until a parameter,
 *   buffer or child is registered in the tree, or it is freed.
 * - a constructor reads its options and shape arrays during the call (copied) and draws its
 *   initial weights from rng during the call; only nn.Dropout, nn.Dropout2d and a recurrent
 *   layer's opts.dropout_rng keep their generator, borrowed: it must outlive the module.
 * - a forward's output (and h_n, c_n) lives in the arena it was given, as an op's output
 *   (tensor.h); the module and x are borrowed as an op borrows its inputs.
 */
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_module nb_module;

/* What a module type provides. forward may be NULL for containers with no single input. */
typedef struct nb_module_ops {
    const char *type; /* "Linear" */
    nb_tensor *(*forward)(nb_module *m, nb_arena *ar, nb_tensor *x);
    /* writes PyTorch's extra_repr ("in_features=784, out_features=128, bias=True") */
    void (*extra_repr)(const nb_module *m, char *buf, size_t n);
    void (*free)(nb_module *m); /* frees type-specific data (params/children are freed by base) */
} nb_module_ops;

typedef struct nb_named_tensor {
    const char *name; /* full dotted name, e.g. "0.weight"; owned by the module */
    nb_tensor *tensor;
} nb_named_tensor;

/* nabla's bookkeeping of a module (the slabs, cached names, lifetime): do not read or write
 * it; its fields may change in any release. */
struct nb__module_private {
    float *slab, *grad_slab; /* owned by the root of the tree that packed them */
    int64_t slab_numel;
    nb_named_tensor *named; /* cached full names of params then buffers (root only) */
    int nnamed;
    struct nb_life *life;   /* ended by nb_module_free: its tensors' internal.owner */
};

/* The base. Modules embed it as their first member. Fields are for module implementers, who
 * read them (a forward reads its params) and change them only through the functions below. */
struct nb_module {
    const nb_module_ops *ops;
    bool training;
    int nparams, nbuffers, nchildren;
    char **param_names, **buffer_names, **child_names; /* local names (owned by the module) */
    nb_tensor **params, **buffers;                     /* owned by the module */
    nb_module **children;                              /* owned by the module */
    nb_module *parent;                                 /* NULL for the root */
    struct nb__module_private internal; /* nabla's bookkeeping: do not read or write */
};

/* ---- using a module --------------------------------------------------------------------- */
/* y = module(x). */
nb_tensor *nb_forward(nb_module *m, nb_arena *ar, nb_tensor *x);
/* train(true) / eval (train(false)) for the whole tree. */
void nb_module_train(nb_module *m, bool training);
/* Number of parameter tensors in the tree (nb_module_num_params), and total number of
 * parameter elements (nb_module_numel); 0 for NULL. */
int nb_module_num_params(const nb_module *m);
int64_t nb_module_numel(const nb_module *m);
/* The i-th parameter in PyTorch's order (model.named_parameters()), with its full name. */
nb_named_tensor nb_module_param(const nb_module *m, int i);
/* Parameters then buffers (model.state_dict() order); returns the count, *out owned by m
 * (valid as the names above: until the tree changes or is freed). */
int nb_module_state(const nb_module *m, const nb_named_tensor **out);
/* Fill the caller's out (capacity cap) with pointers to all parameters (owned by m); returns
 * the count. */
int nb_module_parameters(const nb_module *m, nb_tensor **out, int cap);
/* Look up a parameter or buffer by full name (NULL if none). */
nb_tensor *nb_module_find(const nb_module *m, const char *name);
/* Print-style description, as print(model) in PyTorch, into the caller's buf (n bytes);
 * returns bytes needed (snprintf-like). */
int nb_module_repr(const nb_module *m, char *buf, size_t n);
/* Set every parameter's grad to NULL (set_to_none) or zero it. */
void nb_module_zero_grad(nb_module *m, bool set_to_none);
/* Free a module with its parameters, buffers and children (a child added to a container is
 * freed by the container, never on its own). Free an optimizer of its parameters first: one
 * that outlives the module refuses to run (NB_ESTATE) rather than touch freed memory. NULL is
 * a no-op. */
void nb_module_free(nb_module *m);

/* ---- split training steps: the parts of a batch on nabla's threads ----------------------
 * A training step whose forward, loss and backward run as `parts` slices of the batch
 * (consecutive rows; part p: rows [B p / parts, B (p + 1) / parts)), one per thread of nabla's
 * pool (nb_set_num_threads), each in its own arena: one fork and one join per step instead of
 * one per op, so small batches use several cores. The parameter gradients of the parts are
 * added in part order into the parameters' .grad (accumulating like nb_backward), so the result
 * depends on `parts`, never on the number of threads; it differs from one nb_backward over the
 * whole batch only in the order of the float sums over the batch (weight gradients).
 * The model must treat the rows of a batch independently and draw no random numbers in its
 * forward: nb_batch_split_new refuses batch norm, dropout and recurrent layers with dropout. */
typedef struct nb_batch_split nb_batch_split;
/* The loss of some rows of the batch, summed over them (reduction "sum"): out is the model's
 * output for those rows, target the same rows of the target; make it in ar. The step divides
 * by the batch size (so cross_entropy with reduction sum gives the mean cross entropy). */
typedef nb_tensor *(*nb_batch_loss_fn)(nb_arena *ar, nb_tensor *out, nb_tensor *target, void *user);
/* A splitter for model (the root of its tree, parameters packed) in parts slices (1..64); it
 * owns one arena per part, and a private copy of the gradients for every part but the first.
 * Free with nb_batch_split_free (the model must outlive it). */
nb_batch_split *nb_batch_split_new(nb_module *model, int parts);
/* Forward, loss and backward of x ([B, ...], B >= 1) against target (B rows): the gradient of
 * the mean loss (the parts' sums / B) is added to the parameters' .grad (x gets none);
 * *mean_loss (may be NULL) receives it. ar's autocast setting (nb_arena_set_autocast) applies
 * to every part; the parts' outputs live in the splitter's arenas until the next step. On an
 * error in a part (its message is this thread's nb_last_error()), the parameters' gradients
 * are unspecified. */
int nb_batch_split_step(nb_batch_split *s, nb_arena *ar, nb_tensor *x, nb_tensor *target,
                        nb_batch_loss_fn loss, void *user, double *mean_loss);
void nb_batch_split_free(nb_batch_split *s);

/* ---- layers ----------------------------------------------------------------------------- */
/* nn.Linear(in, out, bias): weight kaiming_uniform(a=sqrt 5), bias U(+-1/sqrt(in)). */
nb_module *nb_linear_new(int64_t in_features, int64_t out_features, bool bias, nb_rng *rng);
/* nn.Sequential of n modules (takes ownership of all of them). */
nb_module *nb_sequential(int n, nb_module *const *mods);
/* Child i of a container (NULL if out of range): owned by the container, valid until it is
 * freed. */
nb_module *nb_module_child(const nb_module *m, int i);

/* nn.Dropout(p): rng is borrowed (must outlive the module) so one generator drives the run. */
nb_module *nb_dropout_new(float p, nb_rng *rng);

/* nn.Embedding(num_embeddings, embedding_dim, padding_idx): weight [num, dim] ~ N(0, 1), the
 * padding row zeroed and left out of the gradient. Input: int32 indices of any shape; output
 * shape + [dim]. padding_idx may be negative (counts from the end) or NB_NO_PADDING. */
#define NB_NO_PADDING INT64_MIN
nb_module *nb_embedding_new(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                            nb_rng *rng);
/* Embedding(..., sparse=True): the weight's gradient is row-sparse (nb_is_sparse): only the
 * rows a batch uses, for SparseAdam (or SGD, Adagrad; other optimizers refuse it, as in
 * PyTorch). */
nb_module *nb_embedding_sparse_new(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                                   nb_rng *rng);

/* ---- recurrent layers: nn.RNN, nn.LSTM, nn.GRU and their cells ---------------------------
 * PyTorch's parameters (weight_ih_l0 [G*H, in], weight_hh_l0 [G*H, H], bias_ih_l0, bias_hh_l0,
 * ..._reverse for the second direction; G = 1, 4 (i, f, g, o) or 3 (r, z, n)), all initialised
 * U(-1/sqrt(H), 1/sqrt(H)). Input [T, B, in] ([B, T, in] with batch_first, [T, in] unbatched);
 * output [T, B, D*H] (likewise); states h0, h_n, c0, c_n [num_layers*D, B, H] ([.., H]
 * unbatched), D = 2 if bidirectional. As a Sequential child (nb_forward) a recurrent module
 * starts from zero states and returns its output; nb_select_new(1, -1) then picks the last
 * step: nb_sequential(3, (nb_module *[]){lstm, nb_select_new(1, -1), nb_linear_new(...)}). */
typedef struct nb_rnn_opts {
    int64_t num_layers; /* 1 */
    bool bias;          /* true: bias_ih and bias_hh */
    bool batch_first;   /* false */
    float dropout;      /* 0: else dropout on the outputs of every layer but the last (training) */
    bool bidirectional; /* false */
    bool relu;          /* false: tanh (nn.RNN's nonlinearity; ignored by LSTM and GRU) */
    nb_rng *dropout_rng; /* borrowed (must outlive the module); needed when dropout > 0 */
} nb_rnn_opts;

/* PyTorch's defaults (as above). */
nb_rnn_opts nb_rnn_defaults(void);
/* nn.RNN / nn.LSTM / nn.GRU (opts NULL: defaults). rng draws the initial weights. */
nb_module *nb_rnn_new(int64_t input_size, int64_t hidden_size, const nb_rnn_opts *opts, nb_rng *rng);
nb_module *nb_lstm_new(int64_t input_size, int64_t hidden_size, const nb_rnn_opts *opts, nb_rng *rng);
nb_module *nb_gru_new(int64_t input_size, int64_t hidden_size, const nb_rnn_opts *opts, nb_rng *rng);
/* output, h_n (, c_n) = module(x, h0 (, c0)): returns the output and, when h_n / c_n are not
 * NULL, the final states (c_n: LSTM only, else NULL). h0 / c0 NULL: zeros. The whole sequence
 * is one differentiable op: gradients reach x, h0, c0 and every parameter. NULL on error. */
nb_tensor *nb_rnn_forward(nb_module *m, nb_arena *ar, nb_tensor *x, nb_tensor *h0, nb_tensor *c0,
                          nb_tensor **h_n, nb_tensor **c_n);

/* nn.RNNCell (tanh, or relu) / nn.LSTMCell / nn.GRUCell: weight_ih, weight_hh, bias_ih, bias_hh. */
nb_module *nb_rnn_cell_new(int64_t input_size, int64_t hidden_size, bool bias, bool relu, nb_rng *rng);
nb_module *nb_lstm_cell_new(int64_t input_size, int64_t hidden_size, bool bias, nb_rng *rng);
nb_module *nb_gru_cell_new(int64_t input_size, int64_t hidden_size, bool bias, nb_rng *rng);
/* h' = cell(x, h) for x [B, in] or [in]; h, c [B, H] or [H] (NULL: zeros). An LSTMCell also
 * returns c' in *c_out when c_out is not NULL (c / c_out are for LSTMCell only). */
nb_tensor *nb_rnn_cell_forward(nb_module *cell, nb_arena *ar, nb_tensor *x, nb_tensor *h,
                               nb_tensor *c, nb_tensor **c_out);

/* x.select(dim, index) as a module (no parameters): e.g. the last step of a sequence. */
nb_module *nb_select_new(int dim, int64_t index);

/* Activation modules (no parameters): nn.ReLU, nn.LeakyReLU(negative_slope), nn.Tanh,
 * nn.Sigmoid, nn.GELU, nn.Softmax(dim), nn.LogSoftmax(dim). */
nb_module *nb_relu_new(void);
nb_module *nb_leaky_relu_new(float negative_slope);
nb_module *nb_tanh_new(void);
nb_module *nb_sigmoid_new(void);
nb_module *nb_gelu_new(void);
nb_module *nb_softmax_new(int dim);
nb_module *nb_log_softmax_new(int dim);
/* nn.Flatten(start_dim=1, end_dim=-1). */
nb_module *nb_flatten_new(int start_dim, int end_dim);
/* nn.ELU(alpha=1.0), nn.SiLU(), nn.Identity(). */
nb_module *nb_elu_new(float alpha);
nb_module *nb_silu_new(void);
nb_module *nb_identity_new(void);

/* nn.Conv2d(in, out, (kh, kw), stride, padding, dilation, groups, bias) (opts NULL: PyTorch's
 * defaults, see nb_conv_defaults): weight [out, in/groups, kh, kw] kaiming_uniform(a=sqrt 5),
 * bias [out] U(+-1/sqrt(fan_in)), fan_in = in/groups * kh * kw. rng is used only here. */
nb_module *nb_conv2d_new(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw,
                         const nb_conv_opts *opts, bool bias, nb_rng *rng);
/* nn.Conv1d(in, out, kernel_size, ...): entry 0 of each opts pair is used. */
nb_module *nb_conv1d_new(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                         const nb_conv_opts *opts, bool bias, nb_rng *rng);
/* nn.MaxPool2d((kh, kw), stride, padding, dilation, ceil_mode) and nn.AvgPool2d((kh, kw),
 * stride, padding, ceil_mode, count_include_pad, divisor_override); opts NULL: defaults. */
nb_module *nb_max_pool2d_new(int64_t kh, int64_t kw, const nb_pool_opts *opts);
nb_module *nb_avg_pool2d_new(int64_t kh, int64_t kw, const nb_pool_opts *opts);
/* nn.AdaptiveAvgPool2d((oh, ow)); -1 keeps that input size (None). */
nb_module *nb_adaptive_avg_pool2d_new(int64_t oh, int64_t ow);

typedef struct nb_batchnorm_opts {
    double eps;               /* 1e-5 */
    double momentum;          /* 0.1; NAN is PyTorch's None: a cumulative moving average */
    bool affine;              /* true: learnable weight (ones) and bias (zeros) */
    bool track_running_stats; /* true: buffers running_mean, running_var, num_batches_tracked */
} nb_batchnorm_opts;

/* PyTorch's defaults (as above). */
nb_batchnorm_opts nb_batchnorm_defaults(void);
/* nn.BatchNorm1d(num_features) on [N, C] or [N, C, L]; nn.BatchNorm2d on [N, C, H, W].
 * Parameters weight, bias; buffers running_mean, running_var and num_batches_tracked (an
 * int32 scalar here, int64 in PyTorch), in that state order. Training mode normalises with
 * batch statistics and updates the buffers; eval mode uses the running statistics. */
nb_module *nb_batchnorm1d_new(int64_t num_features, const nb_batchnorm_opts *opts);
nb_module *nb_batchnorm2d_new(int64_t num_features, const nb_batchnorm_opts *opts);
/* A source of inputs: stores the next batch's input (in ar) in *x and returns 1, returns 0 at
 * the end, or a negative nb_status. nb_loader_inputs (data.h) is one over a loader. */
typedef int (*nb_input_fn)(void *user, nb_arena *ar, nb_tensor **x);
/* torch.optim.swa_utils.update_bn(loader, model): recompute every BatchNorm's running
 * statistics from the inputs next gives (after SWA, whose averaged weights have none of their
 * own). Each BatchNorm starts again from running_mean 0, running_var 1, num_batches_tracked 0
 * and, with momentum None for the pass, ends with the cumulative average over the batches; its
 * momentum and the model's training mode are restored (the whole tree is set to the root's
 * mode, as model.train(was_training) does). The model runs in training mode (Dropout too, as in
 * PyTorch), without recording a graph; ar is reset before each batch and after the last. A
 * model without BatchNorm returns at once (next is not called); one with
 * track_running_stats=False is refused (PyTorch fails on it too). On an error from next or a
 * forward, momenta and mode are restored and the statistics are those of the batches so far.
 * next and user are used during the call only. */
int nb_update_bn(nb_module *model, nb_input_fn next, void *user, nb_arena *ar);
/* nn.LayerNorm(normalized_shape, eps, elementwise_affine): weight ones and bias zeros of
 * normalized_shape (PyTorch's defaults: eps 1e-5, elementwise_affine true). */
nb_module *nb_layernorm_new(int nshape, const int64_t *normalized_shape, double eps,
                            bool elementwise_affine);
/* nn.Dropout2d(p=0.5): zeroes whole channels in training; rng is borrowed, as nn.Dropout's. */
nb_module *nb_dropout2d_new(float p, nb_rng *rng);

/* ---- nn.init: fill a float tensor in place (no autograd), drawing from a seeded rng ------ */
typedef enum nb_fan_mode { NB_FAN_IN = 0, NB_FAN_OUT = 1 } nb_fan_mode;

/* torch.nn.init.calculate_gain: 1 for linear, conv* and sigmoid, 5/3 tanh, sqrt 2 relu,
 * sqrt(2/(1+param^2)) leaky_relu (param NAN: 0.01), 3/4 selu; NAN (and an error) otherwise.
 * NULL means "leaky_relu". */
double nb_calculate_gain(const char *nonlinearity, double param);
/* uniform_(a=0, b=1), normal_(mean=0, std=1), constant_, zeros_, ones_. */
int nb_init_uniform(nb_tensor *t, double a, double b, nb_rng *rng);
int nb_init_normal(nb_tensor *t, double mean, double std, nb_rng *rng);
int nb_init_constant(nb_tensor *t, double val);
int nb_init_zeros(nb_tensor *t);
int nb_init_ones(nb_tensor *t);
/* xavier_uniform_(gain=1): U(+-gain sqrt(6/(fan_in+fan_out))); xavier_normal_: N(0, std). */
int nb_init_xavier_uniform(nb_tensor *t, double gain, nb_rng *rng);
int nb_init_xavier_normal(nb_tensor *t, double gain, nb_rng *rng);
/* kaiming_uniform_(a=0, mode=fan_in, nonlinearity="leaky_relu"): U(+-sqrt 3 gain/sqrt(fan));
 * kaiming_normal_: N(0, gain/sqrt(fan)); gain = nb_calculate_gain(nonlinearity, a). */
int nb_init_kaiming_uniform(nb_tensor *t, double a, nb_fan_mode mode, const char *nonlinearity,
                            nb_rng *rng);
int nb_init_kaiming_normal(nb_tensor *t, double a, nb_fan_mode mode, const char *nonlinearity,
                           nb_rng *rng);
/* orthogonal_(gain=1): t viewed as [size(0), rest] becomes gain * Q of the QR of a normal
 * matrix (transposed when wide), Q's columns signed so that R has a positive diagonal. */
int nb_init_orthogonal(nb_tensor *t, double gain, nb_rng *rng);

/* ---- for module implementers ------------------------------------------------------------ */
/* Allocate a base of `size` bytes (>= sizeof(nb_module)) with the given ops, which the module
 * keeps (borrowed: a static table that outlives it). Owned by the caller, as any module. */
nb_module *nb_module_alloc(size_t size, const nb_module_ops *ops);
/* Register a parameter / buffer (the module takes ownership of t: the tensor pointer stays
 * valid until nb_module_free, and nb_tensor_free refuses it) or a child module (the module
 * takes ownership of the child and frees it with itself). name is copied. */
int nb_module_add_param(nb_module *m, const char *name, nb_tensor *t);
int nb_module_add_buffer(nb_module *m, const char *name, nb_tensor *t);
int nb_module_add_child(nb_module *m, const char *name, nb_module *child);
/* Move all parameters of m's tree into one slab (and grads into another). Containers call it
 * after adding their children; leaf constructors call it on themselves. */
int nb_module_pack(nb_module *m);

#ifdef __cplusplus
}
#endif
#endif
