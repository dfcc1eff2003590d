/* nabla/nn.h - modules: a struct with a small vtable, named parameters and buffers.
 *
 * Parameter names, shapes and default initialisation follow PyTorch (Sequential children are
 * "0", "1", ...; Linear has "weight" [out, in] and "bias" [out]), so weights move between
 * PyTorch and nabla by name. A container packs the parameters of its whole tree into one
 * contiguous slab (and their gradients into another); each parameter is a view into it.
 *
 * Constructors that take child modules take ownership of them, also when they fail (then the
 * children are freed), so nb_sequential(3, (nb_module *[]){nb_linear_new(...), ...}) needs
 * one NULL check. Every module is freed with nb_module_free (NULL is a no-op).
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

/* The base. Modules embed it as their first member. Fields are for module implementers. */
struct nb_module {
    const nb_module_ops *ops;
    bool training;
    int nparams, nbuffers, nchildren;
    char **param_names, **buffer_names, **child_names; /* local names */
    nb_tensor **params, **buffers;
    nb_module **children;
    nb_module *parent;
    float *slab, *grad_slab; /* owned by the root of the tree that packed them */
    int64_t slab_numel;
    nb_named_tensor *named; /* cached full names of params then buffers (root only) */
    int nnamed;
};

/* ---- using a module --------------------------------------------------------------------- */
/* y = module(x). */
nb_tensor *nb_forward(nb_module *m, nb_arena *ar, nb_tensor *x);
/* train(true) / eval (train(false)) for the whole tree. */
void nb_module_train(nb_module *m, bool training);
/* Number of parameter tensors in the tree, and total number of parameter elements. */
int nb_module_num_params(const nb_module *m);
int64_t nb_module_numel(const nb_module *m);
/* The i-th parameter in PyTorch's order (model.named_parameters()), with its full name. */
nb_named_tensor nb_module_param(const nb_module *m, int i);
/* Parameters then buffers (model.state_dict() order); returns the count, *out owned by m. */
int nb_module_state(const nb_module *m, const nb_named_tensor **out);
/* Fill out (capacity cap) with pointers to all parameters; returns the count. */
int nb_module_parameters(const nb_module *m, nb_tensor **out, int cap);
/* Look up a parameter or buffer by full name (NULL if none). */
nb_tensor *nb_module_find(const nb_module *m, const char *name);
/* Print-style description, as print(model) in PyTorch; returns bytes needed (snprintf-like). */
int nb_module_repr(const nb_module *m, char *buf, size_t n);
/* Set every parameter's grad to NULL (set_to_none) or zero it. */
void nb_module_zero_grad(nb_module *m, bool set_to_none);
void nb_module_free(nb_module *m);

/* ---- layers ----------------------------------------------------------------------------- */
/* nn.Linear(in, out, bias): weight kaiming_uniform(a=sqrt 5), bias U(+-1/sqrt(in)). */
nb_module *nb_linear_new(int64_t in_features, int64_t out_features, bool bias, nb_rng *rng);
/* nn.Sequential of n modules (takes ownership of all of them). */
nb_module *nb_sequential(int n, nb_module *const *mods);
/* Child i of a container (NULL if out of range). */
nb_module *nb_module_child(const nb_module *m, int i);

/* nn.Dropout(p): rng is borrowed (must outlive the module) so one generator drives the run. */
nb_module *nb_dropout_new(float p, nb_rng *rng);

/* Activation modules (no parameters). */
nb_module *nb_relu_new(void);
nb_module *nb_leaky_relu_new(float negative_slope);
nb_module *nb_tanh_new(void);
nb_module *nb_sigmoid_new(void);
nb_module *nb_gelu_new(void);
nb_module *nb_softmax_new(int dim);
nb_module *nb_log_softmax_new(int dim);
/* nn.Flatten(start_dim=1, end_dim=-1). */
nb_module *nb_flatten_new(int start_dim, int end_dim);

/* ---- for module implementers ------------------------------------------------------------ */
/* Allocate a base of `size` bytes (>= sizeof(nb_module)) with the given ops. */
nb_module *nb_module_alloc(size_t size, const nb_module_ops *ops);
/* Register a parameter / buffer (the module takes ownership of t) or a child module. */
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
