/* activation.c - relu, leaky_relu, tanh, sigmoid, gelu, elu, silu: forward beside backward. */
#include "ops_internal.h"
#include "../kernels/activation.h"

/* ---- relu: y = max(x, 0); dx = dy where y > 0 ------------------------------------------- */
/* A CNN's feature maps are big enough to split across the pool (elementwise: the same bits). */
enum { RELU_GRAIN = 1 << 15 };

typedef struct relu_job {
    float *out;
    const float *in, *y;
    float beta;
} relu_job;

static void relu_part(void *ctx, int64_t b, int64_t e) {
    const relu_job *j = ctx;
    nb_k_relu(j->out + b, j->in + b, e - b);
}

static void relu_backward_part(void *ctx, int64_t b, int64_t e) {
    const relu_job *j = ctx;
    nb_k_relu_backward(j->out + b, j->in + b, j->y + b, e - b, j->beta);
}

static void relu_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g)
        nb__parallel_for(n->out->numel, RELU_GRAIN, relu_backward_part,
                         &(relu_job){g, nb_f32(n->out->grad), nb_f32(n->out), beta});
}

nb_tensor *nb_relu(nb_arena *ar, nb_tensor *x) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "relu", x);
    if (!y) return NULL;
    nb__parallel_for(x->numel, RELU_GRAIN, relu_part, &(relu_job){.out = nb_f32(y), .in = nb_f32(x)});
    nb__record(ar, y, "relu", relu_backward, 1, &x);
    return y;
}

/* ---- leaky_relu: y = x > 0 ? x : slope x; dx = dy (x > 0 ? 1 : slope) ------------------- */
static void leaky_relu_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_leaky_relu_backward(g, nb_f32(n->out->grad), nb_f32(n->in[0]), n->out->numel,
                                    (float)n->arg.f[0], beta);
}

nb_tensor *nb_leaky_relu(nb_arena *ar, nb_tensor *x, float slope) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "leaky_relu", x);
    if (!y) return NULL;
    nb_k_leaky_relu(nb_f32(y), nb_f32(x), x->numel, slope);
    nb_node *n = nb__record(ar, y, "leaky_relu", leaky_relu_backward, 1, &x);
    if (n) n->arg.f[0] = slope;
    return y;
}

/* ---- tanh: dx = dy (1 - y^2) ------------------------------------------------------------ */
static void tanh_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_tanh_backward(g, nb_f32(n->out->grad), nb_f32(n->out), n->out->numel, beta);
}

nb_tensor *nb_tanh(nb_arena *ar, nb_tensor *x) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "tanh", x);
    if (!y) return NULL;
    nb_k_tanh(nb_f32(y), nb_f32(x), x->numel);
    nb__record(ar, y, "tanh", tanh_backward, 1, &x);
    return y;
}

/* ---- sigmoid: dx = dy y (1 - y) --------------------------------------------------------- */
static void sigmoid_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_sigmoid_backward(g, nb_f32(n->out->grad), nb_f32(n->out), n->out->numel, beta);
}

nb_tensor *nb_sigmoid(nb_arena *ar, nb_tensor *x) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "sigmoid", x);
    if (!y) return NULL;
    nb_k_sigmoid(nb_f32(y), nb_f32(x), x->numel);
    nb__record(ar, y, "sigmoid", sigmoid_backward, 1, &x);
    return y;
}

/* ---- gelu (exact): y = x Phi(x); dx = dy (Phi(x) + x phi(x)) ----------------------------- */
static void gelu_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_gelu_backward(g, nb_f32(n->out->grad), nb_f32(n->in[0]), n->out->numel, beta);
}

nb_tensor *nb_gelu(nb_arena *ar, nb_tensor *x) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "gelu", x);
    if (!y) return NULL;
    nb_k_gelu(nb_f32(y), nb_f32(x), x->numel);
    nb__record(ar, y, "gelu", gelu_backward, 1, &x);
    return y;
}

/* ---- elu: y = x > 0 ? x : alpha (e^x - 1); dx = dy (x > 0 ? 1 : alpha e^x) ------------- */
static void elu_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_elu_backward(g, nb_f32(n->out->grad), nb_f32(n->in[0]), n->out->numel,
                             (float)n->arg.f[0], beta);
}

nb_tensor *nb_elu(nb_arena *ar, nb_tensor *x, float alpha) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "elu", x);
    if (!y) return NULL;
    nb_k_elu(nb_f32(y), nb_f32(x), x->numel, alpha);
    nb_node *n = nb__record(ar, y, "elu", elu_backward, 1, &x);
    if (n) n->arg.f[0] = alpha;
    return y;
}

/* ---- silu: y = x s(x); dx = dy s (1 + x (1 - s)) ----------------------------------------- */
static void silu_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_silu_backward(g, nb_f32(n->out->grad), nb_f32(n->in[0]), n->out->numel, beta);
}

nb_tensor *nb_silu(nb_arena *ar, nb_tensor *x) {
    if (!x) return NULL;
    nb_tensor *y = nb__out_f32(ar, "silu", x);
    if (!y) return NULL;
    nb_k_silu(nb_f32(y), nb_f32(x), x->numel);
    nb__record(ar, y, "silu", silu_backward, 1, &x);
    return y;
}
