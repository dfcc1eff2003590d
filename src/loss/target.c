/* target.c - validation shared by the classification losses (cross_entropy, nll_loss). */
#include "loss.h"

int nb__check_class_target(const char *op, const nb_tensor *x, const nb_tensor *target,
                           const nb_cross_entropy_opts *o, bool allow_soft) {
    if (nb__check_f32(op, x, "input")) return NB_EINVAL;
    if (x->ndim != 2)
        return nb__error(NB_ESHAPE, "%s: input must be [N, C], got %s", op, nb__shape(x, 0));
    int64_t N = x->shape[0], C = x->shape[1];
    if (allow_soft && target->dtype == NB_FLOAT32) {
        if (!nb_same_shape(x, target))
            return nb__error(NB_ESHAPE, "%s: probability target has shape %s, expected %s", op,
                             nb__shape(target, 0), nb__shape(x, 1));
    } else {
        if (target->dtype != NB_INT32)
            return nb__error(NB_EINVAL, "%s: target must be int32 class indices", op);
        if (target->ndim != 1 || target->shape[0] != N)
            return nb__error(NB_ESHAPE, "%s: target has shape %s, expected [%lld]", op,
                             nb__shape(target, 0), (long long)N);
        for (int64_t i = 0; i < N; i++) {
            int32_t t = nb_i32(target)[i];
            if (t != o->ignore_index && (t < 0 || t >= C))
                return nb__error(NB_EINVAL, "%s: target %d is out of bounds for %lld classes "
                                 "(row %lld)", op, t, (long long)C, (long long)i);
        }
    }
    if (o->weight && (o->weight->dtype != NB_FLOAT32 || o->weight->numel != C || o->weight->ndim != 1))
        return nb__error(NB_ESHAPE, "%s: weight has shape %s, expected [%lld]", op,
                         nb__shape(o->weight, 0), (long long)C);
    if (!(o->label_smoothing >= 0.0 && o->label_smoothing <= 1.0))
        return nb__error(NB_EINVAL, "%s: label_smoothing must be between 0.0 and 1.0. Got: %g", op,
                         o->label_smoothing);
    if ((unsigned)o->reduction > NB_REDUCTION_NONE)
        return nb__error(NB_EINVAL, "%s: unknown reduction %d", op, (int)o->reduction);
    return NB_OK;
}
