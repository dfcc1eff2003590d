/* activation.c - parameter-free modules wrapping an op (ReLU, ELU, Softmax, Flatten, Identity...). */
#include <stdio.h>
#include "nn_internal.h"

typedef struct act {
    nb_module base;
    float f;       /* negative_slope */
    int d0, d1;    /* dim (softmax) or start_dim/end_dim (flatten) */
} act;

#define A(m) ((const act *)(m))

static nb_tensor *relu_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) { (void)m; return nb_relu(ar, x); }
static nb_tensor *leaky_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) { return nb_leaky_relu(ar, x, A(m)->f); }
static nb_tensor *tanh_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) { (void)m; return nb_tanh(ar, x); }
static nb_tensor *sigmoid_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) { (void)m; return nb_sigmoid(ar, x); }
static nb_tensor *gelu_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) { (void)m; return nb_gelu(ar, x); }
static nb_tensor *softmax_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) { return nb_softmax(ar, x, A(m)->d0); }
static nb_tensor *log_softmax_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) { return nb_log_softmax(ar, x, A(m)->d0); }
static nb_tensor *flatten_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) { return nb_flatten(ar, x, A(m)->d0, A(m)->d1); }
static nb_tensor *elu_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) { return nb_elu(ar, x, A(m)->f); }
static nb_tensor *silu_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) { (void)m; return nb_silu(ar, x); }
static nb_tensor *identity_fwd(nb_module *m, nb_arena *ar, nb_tensor *x) { (void)m; (void)ar; return x; }

static void slope_repr(const nb_module *m, char *b, size_t n) { snprintf(b, n, "negative_slope=%s", nb__pyfloat32(A(m)->f, 0)); }
static void dim_repr(const nb_module *m, char *b, size_t n) { snprintf(b, n, "dim=%d", A(m)->d0); }
static void alpha_repr(const nb_module *m, char *b, size_t n) { snprintf(b, n, "alpha=%s", nb__pyfloat32(A(m)->f, 0)); }
static void flatten_repr(const nb_module *m, char *b, size_t n) { snprintf(b, n, "start_dim=%d, end_dim=%d", A(m)->d0, A(m)->d1); }

static const nb_module_ops relu_ops = {"ReLU", relu_fwd, NULL, NULL};
static const nb_module_ops leaky_ops = {"LeakyReLU", leaky_fwd, slope_repr, NULL};
static const nb_module_ops tanh_ops = {"Tanh", tanh_fwd, NULL, NULL};
static const nb_module_ops sigmoid_ops = {"Sigmoid", sigmoid_fwd, NULL, NULL};
static const nb_module_ops gelu_ops = {"GELU", gelu_fwd, NULL, NULL};
static const nb_module_ops softmax_ops = {"Softmax", softmax_fwd, dim_repr, NULL};
static const nb_module_ops log_softmax_ops = {"LogSoftmax", log_softmax_fwd, dim_repr, NULL};
static const nb_module_ops flatten_ops = {"Flatten", flatten_fwd, flatten_repr, NULL};
static const nb_module_ops elu_ops = {"ELU", elu_fwd, alpha_repr, NULL};
static const nb_module_ops silu_ops = {"SiLU", silu_fwd, NULL, NULL};
static const nb_module_ops identity_ops = {"Identity", identity_fwd, NULL, NULL};

static nb_module *make(const nb_module_ops *ops, float f, int d0, int d1) {
    act *a = (act *)nb_module_alloc(sizeof *a, ops);
    if (!a) return NULL;
    a->f = f;
    a->d0 = d0;
    a->d1 = d1;
    return &a->base;
}

nb_module *nb_relu_new(void) { return make(&relu_ops, 0, 0, 0); }
nb_module *nb_leaky_relu_new(float negative_slope) { return make(&leaky_ops, negative_slope, 0, 0); }
nb_module *nb_tanh_new(void) { return make(&tanh_ops, 0, 0, 0); }
nb_module *nb_sigmoid_new(void) { return make(&sigmoid_ops, 0, 0, 0); }
nb_module *nb_gelu_new(void) { return make(&gelu_ops, 0, 0, 0); }
nb_module *nb_softmax_new(int dim) { return make(&softmax_ops, 0, dim, 0); }
nb_module *nb_log_softmax_new(int dim) { return make(&log_softmax_ops, 0, dim, 0); }
nb_module *nb_flatten_new(int start_dim, int end_dim) { return make(&flatten_ops, 0, start_dim, end_dim); }
nb_module *nb_elu_new(float alpha) { return make(&elu_ops, alpha, 0, 0); }
nb_module *nb_silu_new(void) { return make(&silu_ops, 0, 0, 0); }
nb_module *nb_identity_new(void) { return make(&identity_ops, 0, 0, 0); }
