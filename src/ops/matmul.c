/* matmul.c - [n,k] @ [k,m] and batched [b,n,k] @ [b,k,m], one GEMM per batch entry; under
 * bfloat16 autocast (or with a bfloat16 operand) the products take bfloat16 operands and sum in
 * float32, forward and backward. */
#include "ops_internal.h"
#include "../kernels/kernels.h"

/* da = dy @ b^T, db = a^T @ dy (per batch entry), products in the forward's type. */
static void matmul_backward(nb_node *n) {
    nb_tensor *a = n->in[0], *b = n->in[1];
    nb_dtype ct = (nb_dtype)n->arg.i[0];
    int nd = a->ndim;
    int64_t batch = nd == 3 ? a->shape[0] : 1, N = a->shape[nd - 2], K = a->shape[nd - 1],
            M = b->shape[nd - 1];
    const float *gy = nb_f32(n->out->grad);
    float beta, *g;
    if (nb__wants_grad(a) && (g = nb__grad(a, &beta)))
        for (int64_t t = 0; t < batch; t++)
            nb_k_gemm_ex(ct, false, true, N, K, M, 1.0f, nb_k_f32_operand(gy + t * N * M, M),
                         nb_k_tensor_operand(b, t * K * M, M), beta, g + t * N * K, K);
    if (nb__wants_grad(b) && (g = nb__grad(b, &beta)))
        for (int64_t t = 0; t < batch; t++)
            nb_k_gemm_ex(ct, true, false, K, M, N, 1.0f, nb_k_tensor_operand(a, t * N * K, K),
                         nb_k_f32_operand(gy + t * N * M, M), beta, g + t * K * M, M);
}

nb_tensor *nb_matmul(nb_arena *ar, nb_tensor *a, nb_tensor *b) {
    if (!a || !b) return NULL;
    if (nb__check_float("matmul", a, "input") || nb__check_float("matmul", b, "other")) return NULL;
    int nd = a->ndim;
    if (nd != b->ndim || (nd != 2 && nd != 3))
        return nb__null(NB_ESHAPE, "matmul: expected two 2-D or two 3-D tensors, got %s and %s",
                        nb__shape(a, 0), nb__shape(b, 1));
    if (nd == 3 && a->shape[0] != b->shape[0])
        return nb__null(NB_ESHAPE, "matmul: batch sizes differ: %s and %s", nb__shape(a, 0),
                        nb__shape(b, 1));
    int64_t N = a->shape[nd - 2], K = a->shape[nd - 1], M = b->shape[nd - 1];
    if (b->shape[nd - 2] != K)
        return nb__null(NB_ESHAPE, "matmul: shapes %s and %s cannot be multiplied (%lld != %lld)",
                        nb__shape(a, 0), nb__shape(b, 1), (long long)K,
                        (long long)b->shape[nd - 2]);
    int64_t shape[3] = {a->shape[0], N, M};
    if (nd == 2) shape[0] = N, shape[1] = M;
    nb_tensor *y = nb__out(ar, NB_FLOAT32, nd, shape);
    if (!y) return NULL;
    int64_t batch = nd == 3 ? a->shape[0] : 1;
    nb_dtype ct = nb__product_type(ar, a, b);
    for (int64_t t = 0; t < batch; t++)
        nb_k_gemm_ex(ct, false, false, N, M, K, 1.0f, nb_k_tensor_operand(a, t * N * K, K),
                     nb_k_tensor_operand(b, t * K * M, M), 0.0f, nb_f32(y) + t * N * M, M);
    nb_node *n = nb__record(ar, y, "matmul", matmul_backward, 2, NB_INPUTS(a, b));
    if (n) n->arg.i[0] = ct;
    return y;
}
