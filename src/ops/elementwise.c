/* elementwise.c - add, sub, mul, div with PyTorch broadcasting; add_scalar and mul_scalar.
 *
 * Shapes are right-aligned; a dim of size 1 (or a missing leading dim) stretches to the other
 * operand's size. The backward of an operand sums the upstream gradient over the dims it was
 * stretched along (PyTorch's sum_to_size). */
#include "ops_internal.h"
#include "../kernels/binary.h"
#include "../kernels/kernels.h"
#include "../kernels/unary.h"

static const char *const binop_name[] = {"add", "sub", "mul", "div"};

/* The broadcast shape of a and b, or an error naming op and both shapes. */
static int broadcast_shape(const char *op, const nb_tensor *a, const nb_tensor *b, int *ndim,
                           int64_t *shape) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return nb__error(NB_ESHAPE,
                             "%s: shapes %s and %s cannot be broadcast: the size of tensor a "
                             "(%lld) must match the size of tensor b (%lld) at non-singleton "
                             "dimension %d", op, nb__shape(a, 0), nb__shape(b, 1), (long long)da,
                             (long long)db, i);
        shape[i] = da == 1 ? db : da;
    }
    *ndim = nd;
    return NB_OK;
}

static void binary_backward(nb_node *n) {
    nb_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    nb_k_bcast p;
    nb_k_bcast_plan(&p, y->ndim, y->shape, a->ndim, a->shape, b->ndim, b->shape);
    for (int w = 0; w < 2; w++) { /* a and b may be the same tensor: ask for its grad twice */
        float beta, *g;
        if (!nb__wants_grad(n->in[w]) || !(g = nb__grad(n->in[w], &beta))) continue;
        if (y->numel == 0 && beta == 0.0f) /* nothing flows back, but the grad must be set */
            memset(g, 0, sizeof(float) * (size_t)n->in[w]->numel);
        nb_k_binary_grad((nb_k_binop)n->arg.i[0], w, &p, g, beta, nb_f32(y->grad), nb_f32(a),
                         nb_f32(b), nb_f32(y));
    }
}

static nb_tensor *binary(nb_arena *ar, nb_k_binop op, nb_tensor *a, nb_tensor *b) {
    if (!a || !b) return NULL;
    const char *name = binop_name[op];
    if (nb__check_f32(name, a, "input") || nb__check_f32(name, b, "other")) return NULL;
    int nd = 0;
    int64_t shape[NB_MAX_DIMS];
    if (broadcast_shape(name, a, b, &nd, shape)) return NULL;
    nb_tensor *y = nb__out(ar, NB_FLOAT32, nd, shape);
    if (!y) return NULL;
    nb_k_bcast p;
    nb_k_bcast_plan(&p, nd, shape, a->ndim, a->shape, b->ndim, b->shape);
    nb_k_binary(op, &p, nb_f32(y), nb_f32(a), nb_f32(b));
    nb_node *n = nb__record(ar, y, name, binary_backward, 2, NB_INPUTS(a, b));
    if (n) n->arg.i[0] = op;
    return y;
}

nb_tensor *nb_add(nb_arena *ar, nb_tensor *a, nb_tensor *b) { return binary(ar, NB_K_ADD, a, b); }
nb_tensor *nb_sub(nb_arena *ar, nb_tensor *a, nb_tensor *b) { return binary(ar, NB_K_SUB, a, b); }
nb_tensor *nb_mul(nb_arena *ar, nb_tensor *a, nb_tensor *b) { return binary(ar, NB_K_MUL, a, b); }
nb_tensor *nb_div(nb_arena *ar, nb_tensor *a, nb_tensor *b) { return binary(ar, NB_K_DIV, a, b); }

/* ---- add_scalar: y = a + s; da = dy ------------------------------------------------------ */
static void add_scalar_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_acc(g, nb_f32(n->out->grad), n->out->numel, beta);
}

nb_tensor *nb_add_scalar(nb_arena *ar, nb_tensor *a, float s) {
    if (!a) return NULL;
    nb_tensor *y = nb__out_f32(ar, "add_scalar", a);
    if (!y) return NULL;
    nb_k_add_scalar(nb_f32(y), nb_f32(a), s, a->numel);
    nb__record(ar, y, "add_scalar", add_scalar_backward, 1, &a);
    return y;
}

/* ---- mul_scalar: y = a s; da = dy s ------------------------------------------------------ */
static void mul_scalar_backward(nb_node *n) {
    float beta, *g = nb__grad(n->in[0], &beta);
    if (g) nb_k_scale(g, nb_f32(n->out->grad), (float)n->arg.f[0], n->out->numel, beta);
}

nb_tensor *nb_mul_scalar(nb_arena *ar, nb_tensor *a, float s) {
    if (!a) return NULL;
    nb_tensor *y = nb__out_f32(ar, "mul_scalar", a);
    if (!y) return NULL;
    nb_k_scale(nb_f32(y), nb_f32(a), s, a->numel, 0.0f);
    nb_node *n = nb__record(ar, y, "mul_scalar", mul_scalar_backward, 1, &a);
    if (n) n->arg.f[0] = s;
    return y;
}
