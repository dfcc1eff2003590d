/* to_dtype.c - t.to(dtype): float32 <-> bfloat16 (differentiable), int32 / uint8 -> either.
 * The bfloat16 rounding is PyTorch's (kernels/bf16.h). Gradients are float32 everywhere; the
 * gradient reaching a bfloat16 result is what PyTorch would hold in a bfloat16 tensor, so it is
 * rounded to bfloat16 on its way back to the float32 input. */
#include "ops_internal.h"
#include "../kernels/bf16.h"
#include "../kernels/kernels.h"

/* float32 -> bfloat16: gx += bf16(gy); bfloat16 -> float32: gx += gy. */
static void to_dtype_backward(nb_node *n) {
    nb_tensor *x = n->in[0];
    float beta, *g = nb__grad(x, &beta);
    if (!g) return;
    const float *gy = nb_f32(n->out->grad);
    if (n->out->dtype == NB_BF16) nb_k_bf16_round_acc(g, gy, x->numel, beta);
    else nb_k_acc(g, gy, x->numel, beta);
}

static bool floating(nb_dtype dt) { return dt == NB_FLOAT32 || dt == NB_BF16; }

nb_tensor *nb_to_dtype(nb_arena *ar, nb_tensor *t, nb_dtype dt) {
    if (!t) return NULL;
    if (nb_dtype_size(dt) == 0) return nb__null(NB_EINVAL, "to_dtype: unknown dtype %d", (int)dt);
    if (t->dtype == dt) return t;
    if (!floating(dt))
        return nb__null(NB_EINVAL, "to_dtype: cannot convert %s to %s (only to float32 or bfloat16)",
                        nb__dtype_name(t->dtype), nb__dtype_name(dt));
    nb_tensor *y = nb__tensor(ar, dt, t->ndim, t->shape);
    if (!y) return NULL;
    int64_t n = t->numel;
    switch (t->dtype) {
    case NB_FLOAT32: nb_k_f32_to_bf16(nb_bf16(y), nb_f32(t), n); break;
    case NB_BF16: nb_k_bf16_to_f32(nb_f32(y), nb_bf16(t), n); break;
    case NB_INT32:
    case NB_UINT8:
        for (int64_t i = 0; i < n; i++) {
            float v = t->dtype == NB_INT32 ? (float)nb_i32(t)[i] : (float)nb_u8(t)[i];
            if (dt == NB_BF16) nb_bf16(y)[i] = nb__bf16_round(v);
            else nb_f32(y)[i] = v;
        }
        break;
    }
    if (ar && floating(t->dtype)) nb__record(ar, y, "to_dtype", to_dtype_backward, 1, &t);
    return y;
}
